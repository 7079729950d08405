"""scripts/bench failover: VRRP takeover time in scripts/lab, mxgate vs keepalived.

Builds a scripts/lab topology (network namespaces client, a, b, mta1, mta2
on a bridge in its own namespace; VIP 10.77.0.25), runs box A (priority 150)
and box B (priority 100) with preempt and the same advert interval, first as
mxgate in smtp mode relaying to `mxgate sink --maildir` on mta1/mta2, then as
keepalived (vrrp_version 3) with `mxgate sink --maildir` on each box, in
alternating blocks of one run. A load client in the client namespace sends
messages with unique ids to the VIP all the time (retrying on connection
errors and 4xx). While A is master it is killed like a dead box (SIGKILL of
every process of it, then its link down) and, a few times, stopped
gracefully (SIGTERM); a prober in the client namespace connects to VIP:25
every few ms and notes when the first `220` banner of box B arrives. Box A
is then restored (VIP removed as a reboot would, link up, restarted) and the
bench waits until it has preempted back before the next kill. At the end
every message the client saw a 250 for is looked up in the maildirs
(acknowledged but lost must be 0).

Clock: the kill is timed in this process and the banner in the prober (its
own process, in another network namespace) with time.monotonic(), i.e.
CLOCK_MONOTONIC, which on Linux is one clock for the whole system (network
namespaces do not change it; no time namespace is used), so the two are
subtracted directly.

The file also holds the prober and the load client: the bench runs it with
`--role prober|load` inside the client namespace.
"""

import argparse
import json
import math
import os
import queue
import random
import re
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.dont_write_bytecode = True  # the --role processes import common too: no __pycache__ here
import common  # noqa: E402  (stdlib only; the --role processes find it in this directory)
from common import BenchError, Procs, log

SUMMARY = ("VRRP failover in the lab: takeover time (kill -> first banner on the backup) mxgate vs "
           "keepalived under SMTP load; acknowledged-but-lost messages")

GOAL_P99_MS = 400.0  # RFC 5798 Master_Down_Interval for priority 100 at 100 ms: 3 x 0.1 + 0.061 s
KEEPALIVED = "/usr/sbin/keepalived"
BOXES = ("a", "b")
MAILDIR_HEADER = b"X-Bench-Id: "
SHUTDOWN_GRACE_MS = 3000  # mxgate's graceful stop: sessions get this long (default 30 s)


# --- the prober and the load client (run inside the client namespace) ---------------


def emit(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def probe(vip: str, want: bytes, timeout: float, interval: float, conn_timeout: float) -> dict:
    """Starts a non-blocking connect to VIP:25 every `interval` s (each given
    `conn_timeout` s to connect and send a banner) until a banner starting
    with `want` arrives; returns its time.monotonic() and counters."""
    sel = selectors.DefaultSelector()
    started = time.monotonic()
    deadline = started + timeout
    next_start = started
    attempts = other = refused = timed_out = 0
    open_socks: dict[socket.socket, float] = {}

    def close(s: socket.socket) -> None:
        try:
            sel.unregister(s)
        except (KeyError, ValueError):
            pass
        open_socks.pop(s, None)
        s.close()

    try:
        while True:
            now = time.monotonic()
            if now >= deadline:
                return {"ok": False, "started": started, "attempts": attempts, "other_banners": other,
                        "refused": refused, "timed_out": timed_out}
            if now >= next_start and len(open_socks) < 400:
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.setblocking(False)
                # Close with RST: no TIME_WAIT pile-up from hundreds of probes.
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                attempts += 1
                err = s.connect_ex((vip, 25))
                if err not in (0, 115):  # 115 = EINPROGRESS
                    refused += 1
                    s.close()
                else:
                    open_socks[s] = now
                    sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE)
                next_start = max(next_start + interval, now)
            wait = max(0.0, min(next_start, deadline) - time.monotonic())
            for key, events in sel.select(wait):
                s = key.fileobj
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    refused += 1
                    close(s)
                    continue
                if events & selectors.EVENT_READ:
                    try:
                        data = s.recv(512)
                    except OSError:
                        refused += 1
                        close(s)
                        continue
                    at = time.monotonic()
                    if data.startswith(want):
                        return {"ok": True, "at": at, "started": started, "attempts": attempts,
                                "other_banners": other, "refused": refused, "timed_out": timed_out,
                                "banner": data.split(b"\r\n", 1)[0].decode(errors="replace")}
                    if data.startswith(b"220"):
                        other += 1
                    close(s)
                else:
                    sel.modify(s, selectors.EVENT_READ)  # connected; wait for the banner
            now = time.monotonic()
            for s, t in list(open_socks.items()):
                if now - t > conn_timeout:
                    timed_out += 1
                    close(s)
    finally:
        for s in list(open_socks):
            close(s)
        sel.close()


def prober_main(a) -> int:
    """Reads one JSON command a line ({"want", "timeout", "interval_ms"}),
    answers {"ready": t} at once, then the probe's result."""
    for line in sys.stdin:
        if not line.strip():
            continue
        cmd = json.loads(line)
        emit({"ready": time.monotonic()})
        emit(probe(a.vip, cmd["want"].encode(), cmd["timeout"], cmd["interval_ms"] / 1000,
                   a.conn_timeout_ms / 1000))
    return 0


def read_phase(path: Path) -> str:
    try:
        return path.read_text().strip() or "pause"
    except OSError:
        return "pause"


def sender(a, n: int, phase_file: Path, records: list, lock: threading.Lock) -> None:
    import smtplib

    period = a.senders / a.rate if a.rate > 0 else 0.0
    seq = 0
    next_at = time.monotonic()
    while True:
        phase = read_phase(phase_file)
        if phase == "stop":
            return
        if phase == "pause":
            time.sleep(0.02)
            next_at = time.monotonic()
            continue
        seq += 1
        mid = f"s{n}-{seq}"
        msg = (f"From: load@client.lab.test\r\nTo: user@lab.test\r\nSubject: failover {mid}\r\n"
               f"Message-ID: <{mid}@client.lab.test>\r\n{MAILDIR_HEADER.decode()}{mid}\r\n\r\n"
               + "failover bench message\r\n" * 20)
        attempts, status, code, t_ack, last_err = 0, "gave_up", 0, None, ""
        t_first = None
        while attempts < a.max_attempts:
            attempts += 1
            phase = read_phase(phase_file)
            if phase == "stop":
                status = "stopped"
                break
            if phase == "pause":
                attempts -= 1  # nothing to talk to on purpose: not a retry
                time.sleep(0.02)
                continue
            if t_first is None:
                t_first = time.monotonic()
            try:
                smtp = smtplib.SMTP(a.vip, 25, local_hostname="client.lab.test", timeout=a.smtp_timeout)
                try:
                    smtp.sendmail("load@client.lab.test", ["user@lab.test"], msg)
                    status, code, t_ack = "acked", 250, time.monotonic()
                finally:
                    try:
                        smtp.quit()
                    except (OSError, smtplib.SMTPException):
                        smtp.close()
                break
            except smtplib.SMTPRecipientsRefused as e:
                code = next(iter(e.recipients.values()))[0]
                last_err = f"rcpt {code}"
            except smtplib.SMTPResponseException as e:
                code, last_err = e.smtp_code, f"{e.smtp_code} {e.smtp_error[:60]!r}"
            except (OSError, smtplib.SMTPException) as e:
                code, last_err = 0, type(e).__name__
            if 500 <= code < 600:
                status = "rejected"
                break
            time.sleep(a.retry_ms / 1000)
        with lock:
            took_ms = round((t_ack - t_first) * 1000, 1) if t_ack and t_first else None
            records.append([mid, phase, status, code, attempts, t_ack, last_err, took_ms])
        if period:
            next_at += period
            time.sleep(max(0.0, next_at - time.monotonic()))


def load_main(a) -> int:
    """Senders until the phase file says `stop`; then one JSON line per
    message into --out."""
    phase_file = Path(a.phase_file)
    records: list = []
    lock = threading.Lock()
    threads = [threading.Thread(target=sender, args=(a, n, phase_file, records, lock), daemon=True)
               for n in range(a.senders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with open(a.out, "w") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")
    return 0


def role_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="failover.py --role")
    p.add_argument("--role", choices=("prober", "load"), required=True)
    p.add_argument("--vip", required=True)
    p.add_argument("--conn-timeout-ms", type=float, default=100)
    p.add_argument("--phase-file")
    p.add_argument("--out")
    p.add_argument("--senders", type=int, default=3)
    p.add_argument("--rate", type=float, default=60)
    p.add_argument("--smtp-timeout", type=float, default=3)
    p.add_argument("--retry-ms", type=float, default=50)
    p.add_argument("--max-attempts", type=int, default=400)
    a = p.parse_args(argv)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    return prober_main(a) if a.role == "prober" else load_main(a)


# --- the controller --------------------------------------------------------------------

def load_lab():
    """scripts/lab as a module (it has no .py suffix)."""
    import importlib.machinery
    import importlib.util

    path = str(common.ROOT / "scripts" / "lab")
    loader = importlib.machinery.SourceFileLoader("mxgate_lab", path)
    spec = importlib.util.spec_from_loader("mxgate_lab", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="scripts/bench failover",
        description="In a scripts/lab topology, kill the VRRP master (SIGKILL + link down) --kills times "
        "and stop it gracefully (SIGTERM) --graceful times under SMTP load, for mxgate and for keepalived "
        "with the same advert interval, in alternating blocks of one run. Prints the takeover time (kill "
        "-> first SMTP banner of the backup on the VIP) min/p50/p99, the graceful p50, acknowledged-but-"
        "lost and retried messages; writes bench-results/failover-<timestamp>.json. Needs root.",
    )
    p.add_argument("--kills", type=int, default=20, help="SIGKILLs of the master per target (default 20)")
    p.add_argument("--graceful", type=int, default=5, help="graceful stops (SIGTERM) per target (default 5)")
    p.add_argument("--no-keepalived", action="store_true", help="mxgate rows only")
    p.add_argument("--advert-ms", type=int, default=100, help="advert interval of both (default 100)")
    p.add_argument("--blocks", type=int, default=2,
                   help="split each target's kills into this many blocks, alternating the targets (default 2)")
    p.add_argument("--senders", type=int, default=3, help="parallel SMTP senders of the load client (default 3)")
    p.add_argument("--rate", type=float, default=60, help="load client messages/s in total (default 60)")
    p.add_argument("--probe-ms", type=float, default=5, help="prober: a new connection every N ms (default 5)")
    p.add_argument("--settle-s", type=float, default=1.0,
                   help="seconds under load after the master is back before the next kill, plus a random "
                   "0..1 advert interval (default 1)")
    p.add_argument("--seed", type=int, default=None,
                   help="seed of the random pause before each kill (default: from the time; recorded)")
    p.add_argument("--binary", help="mxgate binary to use (implies --no-build)")
    p.add_argument("--no-build", action="store_true", help="use the existing target/release/mxgate")
    p.add_argument("--keep-tmp", action="store_true", help="keep the temp dir (configs, logs, maildirs)")
    a = p.parse_args(argv)
    if a.kills < 1 or a.graceful < 0 or a.blocks < 1:
        p.error("--kills must be >= 1, --graceful >= 0, --blocks >= 1")
    if a.seed is None:
        a.seed = int(time.time())
    if a.advert_ms < 10 or a.advert_ms % 10:
        p.error("--advert-ms: 10.. in steps of 10 (keepalived and VRRPv3 count centiseconds)")
    return a


def loadavg() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


def pctl(xs: list[float], q: float) -> float | None:
    """Nearest-rank percentile (with 20 samples p99 is the largest)."""
    if not xs:
        return None
    s = sorted(xs)
    return s[max(0, math.ceil(q / 100 * len(s)) - 1)]


def sh(*argv: str, check: bool = True) -> str:
    r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    if check and r.returncode != 0:
        raise BenchError(f"{' '.join(argv)}: {r.stderr.strip()}")
    return r.stdout


class Lab:
    """One scripts/lab topology and what runs in it."""

    def __init__(self, lab, procs: Procs, work: Path, mxgate: Path, a):
        self.lab, self.procs, self.work, self.mxgate, self.a = lab, procs, work, mxgate, a
        self.topo = lab.Topology(f"mxf{os.getpid() % 100000}")
        self.vip = lab.VIP

    def ns(self, node: str) -> str:
        return self.topo.ns(node)

    def build(self) -> None:
        if self.topo.bridge_ns in sh("ip", "netns", "list", check=False):
            raise BenchError(f"lab {self.topo.name} exists; `scripts/lab down {self.topo.name}`")
        self.procs.on_exit(self.topo.destroy)  # registered first: a half-built lab goes too
        try:
            self.topo.build()
        except subprocess.CalledProcessError as e:
            raise BenchError(f"building the lab: {' '.join(e.cmd)}: {e.stderr}") from e

    def has_vip(self, box: str) -> bool:
        out = sh("ip", "-n", self.ns(box), "-o", "-4", "addr", "show", "dev", "eth0", check=False)
        return f" {self.vip}/" in out

    def del_vip(self, box: str) -> None:
        if self.has_vip(box):
            sh("ip", "-n", self.ns(box), "addr", "del", f"{self.vip}/24", "dev", "eth0", check=False)

    def link(self, box: str, up: bool) -> None:
        """The box's cable: its veth peer on the bridge."""
        sh("ip", "-n", self.topo.bridge_ns, "link", "set", f"v{box}", "up" if up else "down")

    def forget(self, proc: subprocess.Popen) -> None:
        """Drops an exited process from Procs (no group signal to a reused pid later)."""
        self.procs.running = [(n, p) for n, p in self.procs.running if p is not proc]


class Prober:
    """The prober process in the client namespace."""

    def __init__(self, lab: Lab):
        argv = lab.lab.in_ns(lab.ns("client"), sys.executable, str(Path(__file__).resolve()),
                             "--role", "prober", "--vip", lab.vip)
        logf = open(lab.procs.log_path("prober"), "ab")
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=logf,
                                     start_new_session=True, text=True)
        logf.close()
        lab.procs.running.append(("prober", self.proc))
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        # A thread reads the lines: select() on a buffered pipe misses a line
        # that arrived together with the one before.
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put("")

    def _line(self, timeout: float) -> dict:
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            line = ""
        if not line:
            raise BenchError(f"the prober gave no answer in {timeout:.0f} s (exit {self.proc.poll()})")
        return json.loads(line)

    def start(self, want: str, timeout: float, interval_ms: float) -> float:
        try:
            self.proc.stdin.write(json.dumps({"want": want, "timeout": timeout, "interval_ms": interval_ms}) + "\n")
            self.proc.stdin.flush()
        except OSError as e:
            raise BenchError(f"the prober is gone ({e}; exit {self.proc.poll()})") from None
        return self._line(10)["ready"]

    def result(self, timeout: float) -> dict:
        return self._line(timeout + 10)

    def until(self, want: str, timeout: float, interval_ms: float = 20) -> dict:
        self.start(want, timeout, interval_ms)
        return self.result(timeout)


class Target:
    """One VRRP implementation on boxes a and b."""

    name = ""

    def __init__(self, lab: Lab):
        self.lab = lab
        self.a = lab.a

    def start_box(self, box: str) -> None:
        raise NotImplementedError

    def kill(self, box: str) -> float:
        """SIGKILLs every process of BOX; returns time.monotonic() just before."""
        raise NotImplementedError

    def term(self, box: str) -> float:
        """Gracefully stops BOX's VRRP; returns time.monotonic() just before."""
        raise NotImplementedError

    def wait_stopped(self, box: str) -> None:
        raise NotImplementedError

    def stop_all(self) -> None:
        raise NotImplementedError

    def _signal(self, proc: subprocess.Popen, sig: int) -> None:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass

    def _reap(self, proc: subprocess.Popen | None, timeout: float) -> None:
        if proc is None:
            return
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._signal(proc, signal.SIGKILL)
            proc.wait(timeout=5)
        self.lab.forget(proc)


class Mxgate(Target):
    name = "mxgate"

    def __init__(self, lab: Lab):
        super().__init__(lab)
        self.proc: dict[str, subprocess.Popen | None] = {b: None for b in BOXES}
        extra = f"shutdown_grace_ms = {SHUTDOWN_GRACE_MS}\n"
        for box in BOXES:
            lab.lab.write_box_files(lab.work, box, lab.lab.node_toml(box, lab.work, True, self.a.advert_ms,
                                                                     extra=extra),
                                    lab.lab.policy_toml("smtp", hostname=None))

    def start_box(self, box: str) -> None:
        self.proc[box] = self.lab.lab.start_box(self.lab.procs, self.lab.topo, self.lab.mxgate, self.lab.work, box)
        try:
            self.lab.lab.wait_healthy(self.lab.procs, self.lab.ns(box), f"box-{box}")
        except SystemExit as e:
            raise BenchError(str(e)) from None

    def kill(self, box: str) -> float:
        t0 = time.monotonic()
        self._signal(self.proc[box], signal.SIGKILL)
        return t0

    def term(self, box: str) -> float:
        t0 = time.monotonic()
        self._signal(self.proc[box], signal.SIGTERM)
        return t0

    def wait_stopped(self, box: str) -> None:
        self._reap(self.proc[box], SHUTDOWN_GRACE_MS / 1000 + 5)
        self.proc[box] = None

    def stop_all(self) -> None:
        for box in BOXES:
            if self.proc[box] is not None:
                self.term(box)
        for box in BOXES:
            self.wait_stopped(box)


class Keepalived(Target):
    name = "keepalived"

    def __init__(self, lab: Lab):
        super().__init__(lab)
        self.ka: dict[str, subprocess.Popen | None] = {b: None for b in BOXES}
        self.sink: dict[str, subprocess.Popen | None] = {b: None for b in BOXES}
        self.sink_killed = {b: False for b in BOXES}
        for box in BOXES:
            d = lab.work / f"ka-{box}"
            d.mkdir(parents=True, exist_ok=True)
            (d / "keepalived.conf").write_text(self.conf(box))

    def conf(self, box: str) -> str:
        lab = self.lab.lab
        return f"""global_defs {{
    router_id {self.lab.topo.name}_{box}
    vrrp_version 3
}}

vrrp_instance VI_{lab.VRID} {{
    state BACKUP
    interface eth0
    virtual_router_id {lab.VRID}
    priority {lab.PRIORITY[box]}
    advert_int {self.a.advert_ms / 1000:g}
    virtual_ipaddress {{
        {self.lab.vip}/24 dev eth0
    }}
}}
"""

    def start_box(self, box: str) -> None:
        lab = self.lab
        if self.sink[box] is None or self.sink[box].poll() is not None:
            self.sink[box] = lab.lab.start_sink(lab.procs, lab.topo, lab.mxgate, box, box,
                                                maildir=lab.work / f"maildir-ka-{box}", name=f"sink-{box}")
        d = lab.work / f"ka-{box}"
        for pid in ("keepalived.pid", "vrrp.pid", "checkers.pid"):
            (d / pid).unlink(missing_ok=True)
        self.ka[box] = lab.procs.start(f"keepalived-{box}", lab.lab.in_ns(
            lab.ns(box), KEEPALIVED, "-n", "-l", "-D", "-f", str(d / "keepalived.conf"),
            "-p", str(d / "keepalived.pid"), "-r", str(d / "vrrp.pid"), "-c", str(d / "checkers.pid")))
        # Ready when the VRRP child has written its pid file.
        deadline = time.monotonic() + 15
        while not (d / "vrrp.pid").exists():
            if self.ka[box].poll() is not None:
                raise BenchError(f"keepalived on {box} exited {self.ka[box].returncode}:\n"
                                 f"{lab.procs.log_tail(f'keepalived-{box}')}")
            if time.monotonic() > deadline:
                raise BenchError(f"keepalived on {box}: no vrrp.pid after 15 s")
            time.sleep(0.05)

    def vrrp_child_alive(self, box: str) -> bool:
        try:
            pid = int((self.lab.work / f"ka-{box}" / "vrrp.pid").read_text().split()[0])
            os.kill(pid, 0)
            return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
        except (OSError, ValueError, IndexError):
            return False

    def kill(self, box: str) -> float:
        t0 = time.monotonic()
        self._signal(self.ka[box], signal.SIGKILL)
        self._signal(self.sink[box], signal.SIGKILL)  # a dead box: its SMTP server too
        self.sink_killed[box] = True
        return t0

    def term(self, box: str) -> float:
        t0 = time.monotonic()
        self._signal(self.ka[box], signal.SIGTERM)  # the box stays up (its sink keeps running)
        return t0

    def wait_stopped(self, box: str) -> None:
        self._reap(self.ka[box], 10)
        self.ka[box] = None
        if self.sink_killed[box]:
            self._reap(self.sink[box], 5)
            self.sink[box] = None
            self.sink_killed[box] = False
        deadline = time.monotonic() + 5
        while self.vrrp_child_alive(box):  # the VRRP child is in the same group; make sure
            if time.monotonic() > deadline:
                raise BenchError(f"keepalived's VRRP child on {box} outlived its parent")
            time.sleep(0.05)

    def stop_all(self) -> None:
        for box in BOXES:
            if self.ka[box] is not None:
                self.term(box)
        for box in BOXES:
            self.wait_stopped(box)
            if self.sink[box] is not None:
                self._signal(self.sink[box], signal.SIGTERM)
                self._reap(self.sink[box], 5)
                self.sink[box] = None


class Bench:
    def __init__(self, a, lab: Lab, prober: Prober):
        self.a, self.lab, self.prober = a, lab, prober
        self.phase_file = lab.work / "phase"
        self.events: list[dict] = []
        self.rng = random.Random(a.seed)

    def set_phase(self, phase: str) -> None:
        tmp = self.phase_file.with_suffix(".tmp")
        tmp.write_text(phase + "\n")
        tmp.replace(self.phase_file)

    def wait_master(self, target: Target, box: str, timeout: float = 30) -> float:
        """Waits until BOX holds the VIP, the other box does not, and a
        client gets BOX's banner on the VIP; returns the seconds waited."""
        t0 = time.monotonic()
        other = "b" if box == "a" else "a"
        while not (self.lab.has_vip(box) and not self.lab.has_vip(other)):
            if time.monotonic() - t0 > timeout:
                raise BenchError(f"{target.name}: box {box} did not become master within {timeout:.0f} s "
                                 f"(VIP on a: {self.lab.has_vip('a')}, on b: {self.lab.has_vip('b')})")
            time.sleep(0.02)
        res = self.prober.until(f"220 {box} ", max(1.0, timeout - (time.monotonic() - t0)))
        if not res["ok"]:
            raise BenchError(f"{target.name}: box {box} holds the VIP but no banner of it came through")
        return time.monotonic() - t0

    def bring_up(self, target: Target) -> None:
        self.set_phase("pause")
        for box in BOXES:
            self.lab.del_vip(box)
        target.start_box("b")
        target.start_box("a")
        self.wait_master(target, "a")
        self.set_phase(target.name)
        self.settle()

    def take_down(self, target: Target) -> None:
        self.set_phase("pause")
        time.sleep(self.a.smtp_drain_s)  # let the sessions in flight end
        target.stop_all()
        for box in BOXES:
            self.lab.del_vip(box)

    def one(self, target: Target, kind: str, n: int) -> dict:
        """One failover of master A to backup B and A's return."""
        master, backup = "a", "b"
        la = loadavg()[0]
        ready = self.prober.start(f"220 {backup} ", 15.0, self.a.probe_ms)
        if kind == "kill":
            t0 = target.kill(master)
            self.lab.link(master, up=False)
            t_link = time.monotonic()
            target.wait_stopped(master)
            t_dead = time.monotonic()
        else:
            t0 = target.term(master)
            t_dead = t_link = None
        res = self.prober.result(15.0)
        ev = {"target": target.name, "kind": kind, "n": n, "loadavg_1m": la,
              "prober_ready_before_kill_ms": round((t0 - ready) * 1000, 2),
              "ok": res["ok"], "probe_attempts": res["attempts"], "probe_refused": res["refused"],
              "probe_timed_out": res["timed_out"], "probe_banners_of_master": res["other_banners"]}
        if t_dead is not None:
            ev["processes_gone_ms"] = round((t_dead - t0) * 1000, 2)
            ev["link_down_ms"] = round((t_link - t0) * 1000, 2)
        if res["ok"]:
            ev["takeover_ms"] = round((res["at"] - t0) * 1000, 2)
            ev["banner"] = res["banner"]
        if kind != "kill":
            target.wait_stopped(master)
        # Restore: a rebooted box has no VIP; cable back; start; wait until it preempted back.
        self.lab.del_vip(master)
        if kind == "kill":
            self.lab.link(master, up=True)
        t_restart = time.monotonic()
        target.start_box(master)
        ev["master_wait_s"] = round(self.wait_master(target, master), 3)
        ev["restore_s"] = round(time.monotonic() - t_restart, 3)
        took = f"{ev['takeover_ms']:.0f} ms" if res["ok"] else "NO BANNER"
        log(f"{target.name} {kind} {n}: takeover {took} (load {la:.1f}), back in {ev['restore_s']:.1f} s")
        self.events.append(ev)
        self.settle()
        return ev

    def settle(self) -> None:
        """Load for settle_s plus a random part of an advert interval, so the
        next kill falls at a random point of the master's advert cycle (a
        fixed pause would kill at nearly the same phase every time)."""
        time.sleep(self.a.settle_s + self.rng.uniform(0, self.a.advert_ms / 1000))


def split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def scan_maildirs(work: Path) -> dict[str, dict[str, int]]:
    """Every X-Bench-Id in WORK/maildir-*/new: {maildir: {id: copies}}."""
    found: dict[str, dict[str, int]] = {}
    for md in sorted(work.glob("maildir-*")):
        ids: dict[str, int] = {}
        for f in (md / "new").iterdir():
            with open(f, "rb") as fh:
                head = fh.read(4096)
            at = head.find(MAILDIR_HEADER)
            if at >= 0:
                mid = head[at + len(MAILDIR_HEADER):].split(b"\r\n", 1)[0].decode()
                ids[mid] = ids.get(mid, 0) + 1
        found[md.name] = ids
    return found


def run(a, procs: Procs, release: Path, work: Path) -> dict:
    if os.geteuid() != 0:
        raise BenchError("needs root (network namespaces)")
    lab_mod = load_lab()
    mxgate = Path(a.binary).resolve() if a.binary else release / "mxgate"
    if not mxgate.exists():
        raise BenchError(f"no mxgate binary at {mxgate}")
    want_ka = not a.no_keepalived
    if want_ka and not Path(KEEPALIVED).exists():
        raise BenchError(f"{KEEPALIVED} not found (or use --no-keepalived)")
    raw: dict = {"loadavg_start": loadavg(), "lab": None}
    lab = Lab(lab_mod, procs, work, mxgate, a)
    raw["lab"] = lab.topo.name
    log(f"lab {lab.topo.name}: building namespaces")
    lab.build()
    for mta in ("mta1", "mta2"):
        lab_mod.start_sink(procs, lab.topo, mxgate, mta, f"{mta}.lab.test", maildir=work / f"maildir-{mta}")
    prober = Prober(lab)
    bench = Bench(a, lab, prober)
    bench.set_phase("pause")
    load_out = work / "load.jsonl"
    loader = procs.start("load", lab_mod.in_ns(
        lab.ns("client"), sys.executable, str(Path(__file__).resolve()), "--role", "load", "--vip", lab.vip,
        "--phase-file", str(bench.phase_file), "--out", str(load_out), "--senders", str(a.senders),
        "--rate", str(a.rate)))
    targets: list[Target] = [Mxgate(lab)]
    if want_ka:
        targets.append(Keepalived(lab))
    kills, graceful = split(a.kills, a.blocks), split(a.graceful, a.blocks)
    t_start = time.monotonic()
    for block in range(a.blocks):
        for target in targets:
            if not kills[block] and not graceful[block]:
                continue
            log(f"block {block + 1}/{a.blocks}: {target.name}, {kills[block]} kills, {graceful[block]} graceful")
            bench.bring_up(target)
            done = sum(kills[:block])
            for i in range(kills[block]):
                bench.one(target, "kill", done + i + 1)
            done = sum(graceful[:block])
            for i in range(graceful[block]):
                bench.one(target, "graceful", done + i + 1)
            bench.take_down(target)
    raw["seconds"] = round(time.monotonic() - t_start, 1)
    bench.set_phase("stop")
    try:
        loader.wait(timeout=a.smtp_drain_s + 30)
    except subprocess.TimeoutExpired:
        raise BenchError("the load client did not stop") from None
    lab.forget(loader)
    if loader.returncode != 0:
        raise BenchError(f"the load client exited {loader.returncode}:\n{procs.log_tail('load')}")
    raw["messages"] = [json.loads(ln) for ln in load_out.read_text().splitlines() if ln.strip()]
    raw["maildirs"] = scan_maildirs(work)
    raw["events"] = bench.events
    raw["logs"] = {name: common.log_findings(procs.log_path(name)) for name in
                   ("box-a", "box-b", "keepalived-a", "keepalived-b", "mta1", "mta2")
                   if procs.log_path(name).exists()}
    raw["loadavg_end"] = loadavg()
    return raw


def summarize(a, raw: dict, targets: list[str]) -> dict:
    delivered: dict[str, int] = {}
    for ids in raw["maildirs"].values():
        for mid, k in ids.items():
            delivered[mid] = delivered.get(mid, 0) + k
    rows = {}
    for name in targets:
        evs = [e for e in raw["events"] if e["target"] == name]
        kill = [e["takeover_ms"] for e in evs if e["kind"] == "kill" and e["ok"]]
        grace = [e["takeover_ms"] for e in evs if e["kind"] == "graceful" and e["ok"]]
        msgs = [m for m in raw["messages"] if m[1] == name]
        acked = [m for m in msgs if m[2] == "acked"]
        lost = [m[0] for m in acked if m[0] not in delivered]
        rows[name] = {
            "kills": sum(1 for e in evs if e["kind"] == "kill"),
            "kills_without_banner": sum(1 for e in evs if e["kind"] == "kill" and not e["ok"]),
            "kill_min_ms": min(kill) if kill else None,
            "kill_p50_ms": pctl(kill, 50),
            "kill_p99_ms": pctl(kill, 99),
            "kill_max_ms": max(kill) if kill else None,
            "kill_ms": kill,
            "graceful": sum(1 for e in evs if e["kind"] == "graceful"),
            "graceful_min_ms": min(grace) if grace else None,
            "graceful_p50_ms": pctl(grace, 50),
            "graceful_max_ms": max(grace) if grace else None,
            "graceful_ms": grace,
            "messages": len(msgs),
            "acked": len(acked),
            "acked_lost": len(lost),
            "acked_lost_ids": lost[:50],
            "retried": sum(1 for m in msgs if m[4] > 1),
            "acked_max_ms": max((m[7] for m in acked if m[7] is not None), default=None),
            "acked_over_500ms": sum(1 for m in acked if m[7] is not None and m[7] > 500),
            "failed_attempts": sum(m[4] - 1 for m in msgs),
            "not_acked": {st: sum(1 for m in msgs if m[2] == st) for st in ("rejected", "gave_up", "stopped")},
            "delivered_more_than_once": sum(1 for m in acked if delivered.get(m[0], 0) > 1),
            "master_back_p50_s": pctl([e["restore_s"] for e in evs], 50),
        }
    s: dict = {"rows": rows, "advert_ms": a.advert_ms}
    mx = rows.get("mxgate", {})
    s["goal_p99_met"] = mx.get("kill_p99_ms") is not None and mx["kill_p99_ms"] <= GOAL_P99_MS \
        and not mx["kills_without_banner"]
    s["goal_lost_met"] = all(r["acked_lost"] == 0 for r in rows.values())
    ka = rows.get("keepalived")
    if ka and ka.get("kill_p99_ms") and mx.get("kill_p99_ms"):
        s["mxgate_over_keepalived_p99"] = round(mx["kill_p99_ms"] / ka["kill_p99_ms"], 3)
        s["mxgate_over_keepalived_p50"] = round(mx["kill_p50_ms"] / ka["kill_p50_ms"], 3)
        # The prober connects every probe_ms: differences below that are not measured.
        s["goal_vs_keepalived_met"] = mx["kill_p99_ms"] <= ka["kill_p99_ms"] + a.probe_ms
        s["mxgate_minus_keepalived_p99_ms"] = round(mx["kill_p99_ms"] - ka["kill_p99_ms"], 2)
        if mx.get("graceful_p50_ms") and ka.get("graceful_p50_ms"):
            s["mxgate_over_keepalived_graceful_p50"] = round(mx["graceful_p50_ms"] / ka["graceful_p50_ms"], 3)
    unknown = [m for m in raw["messages"] if m[1] not in targets]
    s["messages_other_phase"] = len(unknown)
    return s


def fmt(x: float | None, spec: str = ".0f") -> str:
    return "-" if x is None else format(x, spec)


def print_report(a, s: dict, raw: dict, path: Path) -> None:
    ok = lambda met: "MET" if met else "NOT MET"  # noqa: E731
    rows = s["rows"]
    print()
    print(f"failover: scripts/lab, box A priority 150 (master, preempt) / box B 100, advert {a.advert_ms} ms, "
          f"{a.blocks} block{'s' if a.blocks > 1 else ''} per target, alternating; load {a.rate:g} msgs/s from {a.senders} senders to the VIP")
    print("    takeover = kill of A (SIGKILL of its processes, then its link down) -> first '220' banner of B "
          f"on VIP:25 (a connect every {a.probe_ms:g} ms); graceful = SIGTERM of A's VRRP -> same")
    print()
    print(f"  {'target':<11} {'kills':>5} {'min ms':>7} {'p50 ms':>7} {'p99 ms':>7} {'graceful p50 ms':>16} "
          f"{'lost':>5} {'retried':>8} {'acked':>7}")
    for name, r in rows.items():
        print(f"  {name:<11} {r['kills']:>5} {fmt(r['kill_min_ms']):>7} {fmt(r['kill_p50_ms']):>7} "
              f"{fmt(r['kill_p99_ms']):>7} {fmt(r['graceful_p50_ms']):>16} {r['acked_lost']:>5} "
              f"{r['retried']:>8} {r['acked']:>7}")
    print()
    for name, r in rows.items():
        if r["kills_without_banner"]:
            print(f"  {name}: {r['kills_without_banner']} kills without a banner of the backup within 15 s")
        print(f"  {name}: SIGKILL max {fmt(r['kill_max_ms'])} ms; graceful {r['graceful']}x, min/max "
              f"{fmt(r['graceful_min_ms'])}/{fmt(r['graceful_max_ms'])} ms; master back (restart -> its banner) "
              f"p50 {fmt(r['master_back_p50_s'], '.2f')} s; not acked {r['not_acked']}; "
              f"{r['failed_attempts']} failed attempts; {r['delivered_more_than_once']} delivered twice (retried after "
              f"an ack was lost); {r['acked_over_500ms']} messages took > 0.5 s (first attempt -> 250; longest "
              f"{fmt(r['acked_max_ms'])} ms: SYN retries or a stalled session across a move of the VIP)")
    print()
    mx = rows["mxgate"]
    print(f"  mxgate p99 {fmt(mx['kill_p99_ms'])} ms   goal <= {GOAL_P99_MS:.0f} ms   {ok(s['goal_p99_met'])}")
    if "mxgate_over_keepalived_p99" in s:
        print(f"  mxgate/keepalived p99 {s['mxgate_over_keepalived_p99']:.2f}x "
              f"({s['mxgate_minus_keepalived_p99_ms']:+.0f} ms), p50 {s['mxgate_over_keepalived_p50']:.2f}x   "
              f"goal: no worse than keepalived (within the {a.probe_ms:g} ms probe step)   "
              f"{ok(s['goal_vs_keepalived_met'])}")
        if "mxgate_over_keepalived_graceful_p50" in s:
            print(f"  mxgate/keepalived graceful p50 {s['mxgate_over_keepalived_graceful_p50']:.2f}x")
    print(f"  acknowledged but lost: {sum(r['acked_lost'] for r in rows.values())}   goal 0   {ok(s['goal_lost_met'])}")
    for name, f in raw["logs"].items():
        if f["matching"]:
            first = re.sub(r"\x1b\[[0-9;]*m", "", f["first"][0])  # tracing's colours
            print(f"  {name} log: {f['matching']} WARN/ERROR lines of {f['lines']}, e.g. {first[:140]}")
    la0, la1 = raw["loadavg_start"], raw["loadavg_end"]
    las = [e["loadavg_1m"] for e in raw["events"]]
    print(f"  {raw['seconds']:.0f} s; load average {la0[0]:.1f} at start, {la1[0]:.1f} at end, "
          f"{min(las):.1f}-{max(las):.1f} at the kills (1 min; {os.cpu_count()} cores; other work shares them)")
    print(f"\n  results: {path.relative_to(common.ROOT)}")


def main(argv: list[str]) -> int:
    a = parse(argv)
    a.smtp_drain_s = 1.0
    if a.binary:
        a.no_build = True
    if os.geteuid() != 0:
        raise SystemExit("scripts/bench failover: needs root (network namespaces)")
    targets = ["mxgate"] + ([] if a.no_keepalived else ["keepalived"])

    def finish(raw, release):
        summary = summarize(a, raw, targets)
        # Keep the results file small: per message only what was not plain.
        msgs = raw.pop("messages")
        raw["messages_total"] = len(msgs)
        raw["messages_not_plain"] = [m for m in msgs if m[2] != "acked" or m[4] > 1 or (m[7] or 0) > 500]
        raw["maildirs"] = {md: {"messages": sum(ids.values()), "ids": len(ids)}
                           for md, ids in raw["maildirs"].items()}
        mxgate = Path(a.binary).resolve() if a.binary else release / "mxgate"
        data = {
            "bench": "failover",
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "versions": common.versions({
                "mxgate": [str(mxgate), "--version"],
                "keepalived": [KEEPALIVED, "--version"],
            }),
            "params": {k: v for k, v in vars(a).items()},
            "goals": {"mxgate_kill_p99_ms_max": GOAL_P99_MS, "mxgate_kill_p99_vs_keepalived": "<=",
                      "acked_lost": 0},
            "notes": {
                "takeover_ms": "time.monotonic() just before the SIGKILL (SIGTERM for graceful) of the master's "
                               "processes, in the bench, to time.monotonic() when the prober (client namespace, "
                               "own process) read a banner starting '220 b ' on VIP:25; CLOCK_MONOTONIC is "
                               "system-wide on Linux (namespaces do not change it), so the two are comparable",
                "kill": "SIGKILL of the master's process group (mxgate; or keepalived with its VRRP child and "
                        "the box's SMTP sink), then its veth peer on the bridge set down (link_down_ms after the "
                        "kill), then the processes reaped; restore: VIP removed from the dead box as a reboot would, link up, "
                        "restart, wait until it holds the VIP again and its banner answers on the VIP",
                "graceful": "SIGTERM of mxgate (it sends priority 0) or of keepalived (same); link stays up",
                "p99": "nearest rank: with 20 samples it is the largest",
                "kill_phase": "before each kill the bench waits settle_s plus a random 0..1 advert interval "
                              "(seed in params), so kills fall at random points of the master's advert cycle",
                "vs_keepalived": "met when mxgate p99 <= keepalived p99 + probe_ms (the prober's resolution)",
                "acked_lost": "messages the load client got 250 for (smtplib sendmail returned) whose "
                              "X-Bench-Id is in no maildir (mta1/mta2 for mxgate, each box's sink for keepalived)",
                "retried": "messages needing more than one attempt (connection error, timeout or 4xx; retried "
                           f"after 50 ms with the same id); includes the moves of the VIP back to A (preempt)",
                "messages_not_plain": "[id, phase, status, last code, attempts, monotonic time of the 250, last "
                                      "error, ms from the first attempt to the 250] of each message that was "
                                      "retried, not acknowledged or took over 0.5 s",
                "mxgate_banner": "the listener has no hostname, so each box greets with its node name (a, b); "
                                 "the keepalived boxes run `mxgate sink --hostname a|b`",
            },
            "summary": summary,
            "raw": raw,
        }
        path = common.write_results("failover", data)
        print_report(a, summary, raw, path)

    def guarded(procs, release, work):
        try:
            return run(a, procs, release, work)
        except (BenchError, KeyboardInterrupt):
            raise
        except Exception:  # noqa: BLE001 - keep the logs: drive keeps WORK on BenchError
            import traceback

            raise BenchError(f"unexpected failure:\n{traceback.format_exc()}") from None

    return common.drive("failover", ["mxgate"], a, guarded, finish)


if __name__ == "__main__":
    sys.exit(role_main(sys.argv[1:]))
