"""What the client sees of a box: its SMTP banner, its /healthz and
/metrics. Plain sockets and urllib, meant to run on a thread that joined the
client namespace (topology.InNamespace); swaks runs there through
`ip netns exec`.
"""

import re
import socket
import subprocess
import time
import urllib.request

from vm import METRICS_PORT, SMTP_PORT


def smtp_banner(host: str, timeout: float = 1.0) -> str | None:
    """The first line the server at HOST:25 sends, if it is a 220 banner."""
    try:
        with socket.create_connection((host, SMTP_PORT), timeout=timeout) as s:
            s.settimeout(timeout)
            data = b""
            while b"\n" not in data:
                chunk = s.recv(512)
                if not chunk:
                    break
                data += chunk
            try:
                s.sendall(b"QUIT\r\n")
            except OSError:
                pass
    except OSError:
        return None
    line = data.split(b"\n", 1)[0].decode(errors="replace").strip()
    return line if line.startswith("220") else None


def http_get(host: str, path: str, timeout: float = 1.0) -> str | None:
    """The body of http://HOST:9100PATH when it answers 200."""
    try:
        with urllib.request.urlopen(f"http://{host}:{METRICS_PORT}{path}", timeout=timeout) as r:
            return r.read().decode(errors="replace") if r.status == 200 else None
    except OSError:
        return None


def metric(text: str | None, name: str, **labels: str) -> float | None:
    """The value of metric NAME with at least these LABELS in a /metrics TEXT."""
    for line in (text or "").splitlines():
        m = re.match(rf"{re.escape(name)}(\{{[^}}]*\}})?\s+(\S+)$", line)
        if m and all(f'{k}="{v}"' in (m.group(1) or "") for k, v in labels.items()):
            return float(m.group(2))
    return None


def wait_for(what: str, fn, timeout: float, interval: float = 0.2):
    """Calls FN until it returns something truthy; raises TimeoutError naming WHAT."""
    deadline = time.monotonic() + timeout
    while True:
        got = fn()
        if got:
            return got
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:.0f} s")
        time.sleep(interval)


def swaks(ns_argv: list[str], server: str, subject: str, timeout: float = 30.0) -> subprocess.CompletedProcess:
    """One message to user@lab.test through SERVER:25, sent with swaks from
    the namespace NS_ARGV enters (`ip netns exec NS`)."""
    return subprocess.run(
        [*ns_argv, "swaks", "--server", server, "--port", str(SMTP_PORT), "--from", "qemu-test@client.test",
         "--to", "user@lab.test", "--header", f"Subject: {subject}", "--timeout", "20"],
        capture_output=True, text=True, timeout=timeout)
