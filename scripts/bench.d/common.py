"""Shared helpers for scripts/bench subcommands (stdlib only, loopback only).

Processes started through `Procs` run in their own process group and are
stopped (TERM, then KILL) when the `with` block ends, whether by return,
exception, Ctrl-C, SIGTERM or SIGHUP.
"""

import json
import os
import random
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
HOST = "127.0.0.1"


class BenchError(Exception):
    """A benchmark step failed; the message says which and why."""


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def raise_nofile(want: int = 65536) -> int:
    """Raises this process's open-files limit (inherited by children) as far
    as the hard limit allows; returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    for limit in (want, target):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (limit, max(limit, hard)))
            return limit
        except (ValueError, OSError):
            continue
    return soft


def _interrupt(signum, _frame):
    raise KeyboardInterrupt(f"signal {signum}")


class Procs:
    """Starts background processes and stops every one of them on exit."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.running: list[tuple[str, subprocess.Popen]] = []

    def __enter__(self):
        # SIGINT too: a shell may start a background job with it ignored.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, _interrupt)
        return self

    def __exit__(self, *exc):
        self.stop_all()
        return False

    def start(self, name: str, argv: list[str], capture: bool = False, **kw) -> subprocess.Popen:
        """Starts argv with stdout/stderr in WORKDIR/NAME.log (stdout piped
        instead when `capture`)."""
        logf = open(self.workdir / f"{name}.log", "ab")
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if capture else logf,
            stderr=logf,
            start_new_session=True,
            **kw,
        )
        logf.close()
        self.running.append((name, proc))
        return proc

    def run(self, name: str, argv: list[str], timeout: float) -> tuple[int, float, str]:
        """Runs argv to completion; returns (exit code, seconds on the
        monotonic clock from just before start to exit, stdout)."""
        t0 = time.monotonic()
        proc = self.start(name, argv, capture=True)
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop(proc)
            raise BenchError(f"{name} did not finish in {timeout:.0f}s; see {self.log_path(name)}")
        elapsed = time.monotonic() - t0
        self.running = [(n, p) for n, p in self.running if p is not proc]
        return proc.returncode, elapsed, out.decode(errors="replace")

    def log_path(self, name: str) -> Path:
        return self.workdir / f"{name}.log"

    def log_tail(self, name: str, lines: int = 15) -> str:
        try:
            text = self.log_path(name).read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(text[-lines:])

    @staticmethod
    def _signal_group(proc: subprocess.Popen, sig: int) -> None:
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def stop(self, proc: subprocess.Popen, grace: float = 3.0) -> None:
        if proc.poll() is None:
            self._signal_group(proc, signal.SIGTERM)
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self._signal_group(proc, signal.SIGKILL)
                proc.wait(timeout=5)
        # Leftover children in the group (if any) go too.
        self._signal_group(proc, signal.SIGKILL)

    def stop_all(self) -> None:
        # Ignore further Ctrl-C while cleaning up, so nothing is left behind.
        sigs = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
        old = {sig: signal.signal(sig, signal.SIG_IGN) for sig in sigs}
        try:
            for _, proc in reversed(self.running):
                self.stop(proc)
            self.running.clear()
        finally:
            for sig, handler in old.items():
                signal.signal(sig, handler)


def make_workdir(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"mxgate-bench-{prefix}-"))


def remove_workdir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


_handed_out: set[int] = set()


def free_port() -> int:
    """A free TCP port on 127.0.0.1 below the ephemeral range, so heavy
    client load cannot take it between choosing and binding."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    lo, hi = 20000, max(20100, low - 1)
    for _ in range(500):
        port = random.randint(lo, hi)
        if port in _handed_out:
            continue
        with socket.socket() as s:
            try:
                s.bind((HOST, port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise BenchError("no free port found on 127.0.0.1")


def _check_alive(procs: Procs, name: str, proc: subprocess.Popen | None) -> None:
    if proc is not None and proc.poll() is not None:
        raise BenchError(
            f"{name} exited with {proc.returncode}:\n{procs.log_tail(name)}"
        )


def wait_tcp(procs: Procs, name: str, proc, port: int, timeout: float = 15.0) -> None:
    """Waits until 127.0.0.1:port accepts (failing fast if proc died)."""
    deadline = time.monotonic() + timeout
    while True:
        _check_alive(procs, name, proc)
        try:
            with socket.create_connection((HOST, port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise BenchError(f"{name} is not accepting on {HOST}:{port} after {timeout:.0f}s")
            time.sleep(0.1)


def http_get(url: str, timeout: float = 2.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, ""
    except OSError:
        return 0, ""


def wait_http_200(procs: Procs, name: str, proc, url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        _check_alive(procs, name, proc)
        status, _ = http_get(url)
        if status == 200:
            return
        if time.monotonic() > deadline:
            raise BenchError(f"{url} did not return 200 within {timeout:.0f}s (last: {status})")
        time.sleep(0.2)


def proc_status(pid: int, key: str) -> int:
    """A numeric field of /proc/PID/status (VmRSS in KiB, Threads, ...)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1])
    raise BenchError(f"no {key} for pid {pid}")


def rss_kb(pid: int) -> int:
    """VmRSS of pid in KiB."""
    return proc_status(pid, "VmRSS")


def cargo_build(packages: list[str]) -> Path:
    """`cargo build --release -p ...` once; returns the release directory."""
    argv = ["cargo", "build", "--release"]
    for p in packages:
        argv += ["-p", p]
    log(" ".join(argv))
    res = subprocess.run(argv, cwd=ROOT)
    if res.returncode != 0:
        raise BenchError(f"{' '.join(argv)} failed")
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    if not target.is_absolute():
        target = ROOT / target
    return target / "release"


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else 0.0


def write_results(name: str, data: dict) -> Path:
    out = ROOT / "bench-results"
    out.mkdir(exist_ok=True)
    path = out / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


def metric_sum(text: str, name: str) -> float:
    """Sum of every sample of metric `name` in Prometheus text."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and line[len(name) : len(name) + 1] in (" ", "{"):
            try:
                total += float(line.rsplit(None, 1)[1])
            except (ValueError, IndexError):
                pass
    return total
