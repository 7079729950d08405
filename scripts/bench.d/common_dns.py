"""A tiny authoritative DNS server for the benchmarks (stdlib only, loopback only).

It answers on 127.0.0.1, UDP and TCP on one port, from a fixed table of
records (A, AAAA, TXT, PTR, MX). Every other name is NXDOMAIN and a known
name (or an empty non-terminal above one) without records of the asked type
is NODATA; both carry an SOA in the authority section whose TTL and minimum
are `NEGATIVE_TTL` (300 s), so resolvers cache the negative answer
(RFC 2308). Answers are authoritative (AA), echo the ID, opcode, RD and the
question as sent, use a compression pointer to the question name, and
include an OPT record when the query had one (EDNS0; BADVERS for a version
above 0). A UDP answer larger than the client's limit (512 octets, or its
EDNS size) is sent truncated (TC) so the client retries over TCP.

The server runs as its own process (`start_dns`, stopped with the other
processes when the `Procs` block ends) and rewrites a JSON statistics file
(queries answered, by transport, rcode and name, and its own CPU seconds) at
most every 0.2 s and when it stops; `dns_stats` reads it.

Run directly: `python3 common_dns.py --config CONFIG.json --stats STATS.json`
where CONFIG.json is {"port": N, "zones": [...], "records": [[name, type,
value, ttl], ...]} (a TXT value is a string or a list of strings; an MX value
is "PREF HOST").
"""

import argparse
import json
import os
import signal
import socket
import socketserver
import struct
import sys
import threading
import time
from pathlib import Path

HOST = "127.0.0.1"
NEGATIVE_TTL = 300
DEFAULT_TTL = 300
PLAIN_UDP_MAX = 512
OUR_EDNS_SIZE = 1232
MAX_STAT_NAMES = 500  # distinct "name TYPE" keys counted one by one, the rest as "(other)"
RESPONSE_CACHE = 4096

TYPES = {"A": 1, "NS": 2, "SOA": 6, "PTR": 12, "MX": 15, "TXT": 16, "AAAA": 28, "OPT": 41, "ANY": 255}
TYPE_NAMES = {v: k for k, v in TYPES.items()}
CLASS_IN, CLASS_ANY = 1, 255
RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED", 16: "BADVERS"}

QR, AA, TC, RD = 0x8000, 0x0400, 0x0200, 0x0100


class FormatError(Exception):
    """The query cannot be parsed."""


# --- encoding ------------------------------------------------------------------------


def norm(name: str) -> str:
    return name.strip().rstrip(".").lower()


def encode_name(name: str) -> bytes:
    out = b""
    for label in norm(name).split(".") if norm(name) else []:
        raw = label.encode("idna") if not label.isascii() else label.encode()
        if not 0 < len(raw) < 64:
            raise ValueError(f"bad label in {name!r}")
        out += bytes([len(raw)]) + raw
    return out + b"\x00"


def encode_rdata(rtype: str, value) -> bytes:
    if rtype == "A":
        return socket.inet_pton(socket.AF_INET, value)
    if rtype == "AAAA":
        return socket.inet_pton(socket.AF_INET6, value)
    if rtype == "PTR":
        return encode_name(value)
    if rtype == "MX":
        pref, host = value.split()
        return struct.pack("!H", int(pref)) + encode_name(host)
    if rtype == "TXT":
        out = b""
        for text in [value] if isinstance(value, str) else value:
            raw = text.encode()
            chunks = [raw[i : i + 255] for i in range(0, len(raw), 255)] or [b""]
            out += b"".join(bytes([len(c)]) + c for c in chunks)
        return out
    raise ValueError(f"record type {rtype!r} is not supported (A, AAAA, TXT, PTR, MX)")


def soa_rdata() -> bytes:
    serial, refresh, retry, expire = 1, 3600, 600, 86400
    return (encode_name("ns.bench.test") + encode_name("hostmaster.bench.test")
            + struct.pack("!IIIII", serial, refresh, retry, expire, NEGATIVE_TTL))


def rr(owner: bytes, qtype: int, ttl: int, rdata: bytes, rclass: int = CLASS_IN) -> bytes:
    return owner + struct.pack("!HHIH", qtype, rclass, ttl, len(rdata)) + rdata


# --- the zone data -----------------------------------------------------------------


class Zone:
    """The record table: (name, type) -> [(ttl, rdata)], the names that
    exist (record owners and every name above them: empty non-terminals are
    NODATA, not NXDOMAIN), and the zone apexes for the SOA owner."""

    def __init__(self, records: list, zones: list[str]):
        self.records: dict[tuple[str, int], list[tuple[int, bytes]]] = {}
        self.names: set[str] = set()
        for entry in records:
            name, rtype, value = entry[0], entry[1].upper(), entry[2]
            ttl = int(entry[3]) if len(entry) > 3 else DEFAULT_TTL
            key = (norm(name), TYPES[rtype])
            self.records.setdefault(key, []).append((ttl, encode_rdata(rtype, value)))
            labels = norm(name).split(".")
            for i in range(len(labels)):
                self.names.add(".".join(labels[i:]))
        self.zones = sorted({norm(z) for z in zones}, key=lambda z: -z.count("."))

    def apex(self, qname: str) -> str:
        """The longest configured zone containing qname, else the root."""
        for z in self.zones:
            if z and (qname == z or qname.endswith("." + z)):
                return z
        return ""

    def lookup(self, qname: str, qtype: int) -> list[tuple[int, int, bytes]]:
        if qtype == TYPES["ANY"]:
            return [(t, ttl, rd) for (n, t), rs in self.records.items() if n == qname for ttl, rd in rs]
        return [(qtype, ttl, rd) for ttl, rd in self.records.get((qname, qtype), [])]


# --- one query -------------------------------------------------------------------------


def read_question(msg: bytes) -> tuple[str, list[int], int, int, int]:
    """(name, offsets of its labels, type, class, offset after the question);
    a query's question name carries no compression pointer."""
    pos, labels, offsets = 12, [], []
    while True:
        if pos >= len(msg):
            raise FormatError("question runs past the end")
        n = msg[pos]
        if n == 0:
            pos += 1
            break
        if n & 0xC0:
            raise FormatError("compressed or extended label in the question")
        offsets.append(pos)
        labels.append(msg[pos + 1 : pos + 1 + n].decode("ascii", "replace"))
        pos += 1 + n
    if pos + 4 > len(msg):
        raise FormatError("question runs past the end")
    qtype, qclass = struct.unpack_from("!HH", msg, pos)
    return ".".join(labels).lower(), offsets, qtype, qclass, pos + 4


def skip_name(msg: bytes, pos: int) -> int:
    while True:
        if pos >= len(msg):
            raise FormatError("name runs past the end")
        n = msg[pos]
        if n & 0xC0 == 0xC0:
            return pos + 2
        if n & 0xC0:
            raise FormatError("unknown label type")
        pos += 1 + n
        if n == 0:
            return pos


def read_edns(msg: bytes, pos: int, an: int, ns: int, ar: int) -> tuple[int, int] | None:
    """(UDP payload size, version) of the query's OPT record, or None."""
    for i in range(an + ns + ar):
        pos = skip_name(msg, pos)
        if pos + 10 > len(msg):
            raise FormatError("record runs past the end")
        rtype, rclass, ttl, rdlen = struct.unpack_from("!HHIH", msg, pos)
        pos += 10 + rdlen
        if pos > len(msg):
            raise FormatError("record data runs past the end")
        if i >= an + ns and rtype == TYPES["OPT"]:
            return max(PLAIN_UDP_MAX, rclass), (ttl >> 16) & 0xFF
    return None


def answer(zone: Zone, msg: bytes, udp: bool) -> tuple[bytes, str, int] | None:
    """The response to `msg` (None to drop it: too short, or a response),
    the "name TYPE" it asked and its rcode."""
    if len(msg) < 12:
        return None
    qid, flags, qd, an, ns, ar = struct.unpack_from("!HHHHHH", msg, 0)
    if flags & QR:
        return None
    opcode = (flags >> 11) & 0xF
    base = QR | AA | (flags & (0xF << 11)) | (flags & RD)
    if qd != 1:
        return struct.pack("!HHHHHH", qid, base | 1, 0, 0, 0, 0), "(no question)", 1
    try:
        qname, offsets, qtype, qclass, end = read_question(msg)
        edns = read_edns(msg, end, an, ns, ar)
    except FormatError:
        return struct.pack("!HHHHHH", qid, base | 1, 0, 0, 0, 0), "(malformed)", 1
    question = msg[12:end]
    key = f"{qname or '.'} {TYPE_NAMES.get(qtype, str(qtype))}"
    limit, version = edns if edns is not None else (PLAIN_UDP_MAX, 0)

    def reply(rcode: int, answers: bytes = b"", ancount: int = 0, authority: bytes = b"",
              nscount: int = 0) -> tuple[bytes, str, int]:
        # Extended rcodes (BADVERS = 16): the upper 8 bits go in the OPT TTL.
        opt = b"" if edns is None else rr(b"\x00", TYPES["OPT"], (rcode >> 4) << 24, b"", rclass=OUR_EDNS_SIZE)
        arcount = 1 if opt else 0
        head = struct.pack("!HHHHHH", qid, base | (rcode & 0xF), 1, ancount, nscount, arcount)
        out = head + question + answers + authority + opt
        if udp and len(out) > limit:
            head = struct.pack("!HHHHHH", qid, base | TC | (rcode & 0xF), 1, 0, 0, arcount)
            out = head + question + opt
        return out, key, rcode

    if edns is not None and version != 0:
        return reply(16)
    if opcode != 0:
        return reply(4)
    if qclass not in (CLASS_IN, CLASS_ANY):
        return reply(5)
    found = zone.lookup(qname, qtype)
    if found:
        return reply(0, b"".join(rr(b"\xc0\x0c", t, ttl, rd) for t, ttl, rd in found), len(found))
    apex = zone.apex(qname)
    if apex:
        # A pointer to where the apex starts inside the echoed question name.
        owner = struct.pack("!H", 0xC000 | offsets[len(offsets) - len(apex.split("."))])
    else:
        owner = b"\x00"
    soa = rr(owner, TYPES["SOA"], NEGATIVE_TTL, soa_rdata())
    return reply(0 if qname in zone.names else 3, authority=soa, nscount=1)


# --- the server ------------------------------------------------------------------------


class Stats:
    def __init__(self, path: Path):
        self.path = path
        self.lock = threading.Lock()
        self.data = {"queries": 0, "udp": 0, "tcp": 0, "dropped": 0, "rcode": {}, "names": {}}
        self.version = 0
        self.written = -1

    def count(self, transport: str, key: str, rcode: int) -> None:
        with self.lock:
            d = self.data
            d["queries"] += 1
            d[transport] += 1
            rc = RCODES.get(rcode, str(rcode))
            d["rcode"][rc] = d["rcode"].get(rc, 0) + 1
            names = d["names"]
            if key not in names and len(names) >= MAX_STAT_NAMES:
                key = "(other)"
            names[key] = names.get(key, 0) + 1
            self.version += 1

    def drop(self) -> None:
        with self.lock:
            self.data["dropped"] += 1
            self.version += 1

    def write(self) -> None:
        with self.lock:
            if self.version == self.written:
                return
            text = json.dumps({**self.data, "cpu_s": round(time.process_time(), 3), "written_unix": time.time()})
            self.written = self.version
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, self.path)


class Server:
    def __init__(self, zone: Zone, stats: Stats):
        self.zone = zone
        self.stats = stats
        # Response (without its ID) by query (without its ID) and transport:
        # a resolver asking the same question again costs a dict look-up.
        self.cache: dict[tuple[bool, bytes], tuple[bytes, str, int] | None] = {}

    def handle(self, msg: bytes, udp: bool) -> bytes | None:
        ck = (udp, msg[2:])
        hit = self.cache.get(ck)
        if hit is None:
            got = answer(self.zone, msg, udp)
            if got is None:
                self.stats.drop()
                return None
            if len(self.cache) >= RESPONSE_CACHE:
                self.cache.clear()
            hit = (got[0][2:], got[1], got[2])
            self.cache[ck] = hit
        self.stats.count("udp" if udp else "tcp", hit[1], hit[2])
        return msg[:2] + hit[0]


def serve(config: dict, stats_path: Path) -> int:
    zone = Zone(config.get("records", []), config.get("zones", []))
    stats = Stats(stats_path)
    server = Server(zone, stats)
    port = int(config["port"])
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    udp.bind((HOST, port))

    class TcpHandler(socketserver.BaseRequestHandler):
        def handle(self):
            sock = self.request
            sock.settimeout(30)
            try:
                while True:
                    head = recv_exact(sock, 2)
                    if head is None:
                        return
                    msg = recv_exact(sock, struct.unpack("!H", head)[0])
                    if msg is None:
                        return
                    out = server.handle(msg, udp=False)
                    if out is not None:
                        sock.sendall(struct.pack("!H", len(out)) + out)
            except OSError:
                return

    socketserver.ThreadingTCPServer.allow_reuse_address = True
    socketserver.ThreadingTCPServer.daemon_threads = True
    tcp = socketserver.ThreadingTCPServer((HOST, port), TcpHandler)
    threading.Thread(target=tcp.serve_forever, daemon=True).start()

    def writer():
        while True:
            time.sleep(0.2)
            stats.write()

    threading.Thread(target=writer, daemon=True).start()

    def stop(_signum, _frame):
        stats.write()
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    stats.write()
    print(f"common_dns: serving on {HOST}:{port} (udp, tcp)", file=sys.stderr, flush=True)
    while True:
        try:
            msg, peer = udp.recvfrom(65535)
        except InterruptedError:
            continue
        out = server.handle(msg, udp=True)
        if out is not None:
            try:
                udp.sendto(out, peer)
            except OSError:
                pass


def recv_exact(sock, n: int) -> bytes | None:
    buf = b""
    while len(buf) < n:
        part = sock.recv(n - len(buf))
        if not part:
            return None
        buf += part
    return buf


# --- the benchmarks' side --------------------------------------------------------------


def start_dns(procs, name: str, records: list, zones: list[str]) -> tuple[int, Path]:
    """Starts the server as process `name` (stopped with procs) on a free
    port; returns (port, path of its statistics file)."""
    import common  # the benchmarks' helpers; not needed when run as a script

    stats = procs.workdir / f"{name}-stats.json"
    for attempt in range(3):
        port = common.free_port()
        cfg = procs.workdir / f"{name}.json"
        cfg.write_text(json.dumps({"port": port, "zones": zones, "records": records}, indent=2))
        proc = procs.start(name, [sys.executable, "-B", str(Path(__file__).resolve()),
                                  "--config", str(cfg), "--stats", str(stats)])
        try:
            common.wait_tcp(procs, name, proc, port)
        except common.BenchError:
            procs.stop(proc)
            if attempt == 2:
                raise
            continue
        return port, stats
    raise common.BenchError("unreachable")


def dns_stats(path: Path, settle: float = 0.5) -> dict:
    """The server's statistics (after `settle` seconds, so the last queries
    are written)."""
    time.sleep(settle)
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {"queries": 0, "udp": 0, "tcp": 0, "dropped": 0, "rcode": {}, "names": {}}


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="common_dns.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--config", required=True, help="JSON: port, zones, records")
    p.add_argument("--stats", required=True, help="statistics file to rewrite")
    a = p.parse_args(argv)
    return serve(json.loads(Path(a.config).read_text()), Path(a.stats))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
