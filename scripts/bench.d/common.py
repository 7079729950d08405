"""Shared helpers for scripts/bench subcommands (stdlib only, loopback only).

Processes started through `Procs` run in their own process group and are
stopped (TERM, then KILL) when the `with` block ends, whether by return,
exception, Ctrl-C, SIGTERM or SIGHUP.
"""

import json
import os
import platform
import random
import select
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
        self.cleanups: list = []

    def on_exit(self, fn) -> None:
        """Runs fn() (before the processes are stopped) when the block ends,
        for what is not a child process group, e.g. a daemonized Postfix."""
        self.cleanups.append(fn)

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
            for fn in reversed(self.cleanups):
                try:
                    fn()
                except Exception as e:  # noqa: BLE001 - keep cleaning up
                    log(f"warning: cleanup failed: {e}")
            self.cleanups.clear()
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


def metric_sum(text: str, name: str, where: str = "") -> float:
    """Sum of every sample of metric `name` in Prometheus text (only the
    samples whose line contains `where`, e.g. 'result="accepted"')."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and line[len(name) : len(name) + 1] in (" ", "{") and where in line:
            try:
                total += float(line.rsplit(None, 1)[1])
            except (ValueError, IndexError):
                pass
    return total


# --- shared by the SMTP benchmarks (l4, smtp) ---------------------------------------

SINK_MAX_CONN = 8000  # smtp-sink -m: concurrent sessions each sink serves
SINK_BACKLOG = 4096
FROM, TO, HELO = "bench@example.test", "sink@example.test", "bench.example.test"


def start_sink(procs: Procs, name: str, count: bool = False) -> tuple[int, subprocess.Popen]:
    """Starts Postfix's smtp-sink on a free port; with `count` it keeps
    running counters in WORKDIR/NAME.log (read them with `sink_messages`)."""
    port = free_port()
    argv = ["smtp-sink"]
    if os.geteuid() == 0:
        argv += ["-u", "postfix"]  # required when run as root
    if count:
        argv.append("-c")
    argv += ["-m", str(SINK_MAX_CONN), f"{HOST}:{port}", str(SINK_BACKLOG)]
    proc = procs.start(name, argv)
    wait_tcp(procs, name, proc, port)
    return port, proc


def sink_messages(procs: Procs, name: str) -> int:
    """Messages (".") an smtp-sink started with count=True has received:
    the last 'mesg=N' of the counter line it rewrites with CR."""
    path = procs.log_path(name)
    try:
        with open(path, "rb") as f:
            f.seek(max(0, path.stat().st_size - 256))
            tail = f.read().decode(errors="replace")
    except OSError:
        return 0
    at = tail.rfind("mesg=")
    if at < 0:
        return 0
    digits = ""
    for ch in tail[at + 5 :]:
        if not ch.isdigit():
            break
        digits += ch
    return int(digits or 0)


def start_mxgate(procs: Procs, work: Path, binary: Path, policy: str, port: int, level: str,
                 servers: int, name: str = "mxgate", node_extra: str = "") -> tuple[int, subprocess.Popen]:
    """Writes WORK/node.toml (log level, metrics port, then `node_extra`, e.g.
    a `[dns]` table) and WORK/policy.toml (WORK is created if missing; pass a
    subdirectory per instance), runs `mxgate run` as process `name`, waits
    for /healthz, the listener on `port` and mxgate_backend_up of `servers`
    servers; returns (metrics port, proc)."""
    mport = free_port()
    work.mkdir(parents=True, exist_ok=True)
    node, policy_path = work / "node.toml", work / "policy.toml"
    log_line = f'log = "{level}"\n' if level else ""
    # Extra node-file lines for experiments, e.g. MXGATE_BENCH_NODE_EXTRA='workers = 1'.
    log_line += os.environ.get("MXGATE_BENCH_NODE_EXTRA", "") + "\n"
    node.write_text(
        f'name = "bench"\ndata_dir = "{work / "data"}"\n{log_line}\n[metrics]\nlisten = "{HOST}:{mport}"\n'
        + (f"\n{node_extra}\n" if node_extra else "")
    )
    policy_path.write_text(policy)
    proc = procs.start(name, [str(binary), "run", "--config", str(node), "--policy", str(policy_path)])
    wait_http_200(procs, name, proc, f"http://{HOST}:{mport}/healthz")
    wait_tcp(procs, name, proc, port)
    # Wait (up to 15 s) until the health checks mark the servers up.
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        _, text = http_get(f"http://{HOST}:{mport}/metrics")
        if metric_sum(text, "mxgate_backend_up") >= servers:
            break
        time.sleep(0.2)
    else:
        log(f"warning: {name}: mxgate_backend_up did not reach 1 for every server within 15 s")
    return mport, proc


def mxgate_metric(metrics_port: int, name: str, where: str = "") -> float:
    _, text = http_get(f"http://{HOST}:{metrics_port}/metrics")
    return metric_sum(text, name, where)


def smtp_source(procs: Procs, a, port: int, messages: int) -> tuple[float, float]:
    """One smtp-source run (a.sessions parallel sessions, a.size bytes, one
    message per connection); returns (msgs/s, seconds) on the monotonic
    clock. smtp-source exits non-zero on any reply other than the expected
    2xx/3xx, so a run that returns accepted every message."""
    argv = ["smtp-source", "-s", str(a.sessions), "-l", str(a.size), "-m", str(messages),
            "-M", HELO, "-f", FROM, "-t", TO, f"{HOST}:{port}"]
    rc, elapsed, _ = procs.run("smtp-source", argv, timeout=600)
    if rc != 0:
        raise BenchError(f"smtp-source to port {port} exited {rc}:\n{procs.log_tail('smtp-source')}")
    return messages / elapsed, elapsed


def loadgen_sessions(procs: Procs, a, loadgen: Path, port: int) -> dict:
    """`mxgate-loadgen sessions` (a.lat_count sessions, a.lat_concurrency at
    a time); returns its JSON result (p50_ms, p99_ms, failed, ...)."""
    argv = [str(loadgen), "sessions", "--target", f"{HOST}:{port}", "--count", str(a.lat_count),
            "--concurrency", str(a.lat_concurrency), "--size", str(a.size), "--from", FROM, "--to", TO]
    rc, _, out = procs.run("loadgen", argv, timeout=600)
    if rc != 0 or not out.strip():
        raise BenchError(f"mxgate-loadgen sessions exited {rc}:\n{procs.log_tail('loadgen')}")
    res = json.loads(out.strip().splitlines()[-1])
    if res["failed"]:
        log(f"warning: {res['failed']} of {res['sessions']} loadgen sessions to port {port} failed "
            f"(see {procs.log_path('loadgen')})")
    return res


def hold_rss(procs: Procs, a, loadgen: Path, port: int, pid: int, name: str, during=None) -> dict:
    """Holds a.hold_count idle connections (banner read) to `port` for
    a.hold_s seconds; returns the server's RSS (KiB) and open fds while
    they are held (and, with `during`, what during() returns then)."""
    argv = [str(loadgen), "hold", "--target", f"{HOST}:{port}", "--count", str(a.hold_count),
            "--hold-s", str(a.hold_s)]
    proc = procs.start(f"hold-{name}", argv, capture=True)
    ready, _, _ = select.select([proc.stdout], [], [], 120)
    line = proc.stdout.readline().decode() if ready else ""
    if not line.strip():
        raise BenchError(f"mxgate-loadgen hold gave no result:\n{procs.log_tail(f'hold-{name}')}")
    first = json.loads(line)
    time.sleep(1.0)  # let the server settle (buffers, backend connects)
    rss = rss_kb(pid)
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    extra = during() if during else None
    try:
        rest, _ = proc.communicate(timeout=a.hold_s + 60)
    except subprocess.TimeoutExpired:
        procs.stop(proc)
        rest = b""
    last = {}
    for ln in rest.decode().splitlines():
        if ln.strip():
            last = json.loads(ln)
    res = {"held": first["held"], "failed": first["failed"], "rss_kb": rss, "fds": fds,
           "still_open_at_quit": last.get("still_open")}
    if during:
        res["during"] = extra
    return res


def first_line(argv: list[str]) -> str | None:
    """First line of a command's output (stdout, else stderr), or None."""
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        return (r.stdout or r.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.SubprocessError):
        return None


def versions(tools: dict[str, list[str]]) -> dict:
    """Each tool's version line (tools: name -> argv), the git revision,
    kernel and core count."""
    out = {name: first_line(argv) for name, argv in tools.items()}
    out.update({
        "mxgate_git": first_line(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"]),
        "kernel": platform.release(),
        "nproc": os.cpu_count(),
    })
    return out


def log_findings(path: Path, words: tuple[str, ...] = ("ERROR", "WARN"), keep: int = 10) -> dict:
    """Lines of a log file containing any of `words`: their count and the
    first `keep` of them (for the results JSON and the report)."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return {"lines": 0, "matching": 0, "first": []}
    hits = [ln for ln in lines if any(w in ln for w in words)]
    return {"lines": len(lines), "matching": len(hits), "first": hits[:keep]}


def drive(name: str, packages: list[str], a, run, finish) -> int:
    """The part every benchmark shares: build `packages` once (unless
    --no-build), run `run(procs, release, work)` in a fresh work directory
    with every process cleaned up, then hand the raw figures to
    `finish(raw, release, work, keep)`. Returns the exit code."""
    try:
        release = cargo_build(packages) if not a.no_build else ROOT / "target" / "release"
    except BenchError as e:
        log(f"error: {e}")
        return 1
    except KeyboardInterrupt:
        log("interrupted during the build")
        return 130
    work = make_workdir(name)
    keep = a.keep_tmp
    try:
        with Procs(work) as procs:
            raw = run(procs, release, work)
    except KeyboardInterrupt:
        log("interrupted; every process started was stopped")
        return 130
    except BenchError as e:
        log(f"error: {e}")
        log(f"configs and logs kept in {work}")
        keep = True
        return 1
    finally:
        if not keep:
            remove_workdir(work)
    finish(raw, release)
    if keep:
        log(f"configs and logs kept in {work}")
    return 0


def add_load_args(p, messages: int, warmup: int, lat_count: int, hold_count: int, hold_what: str) -> None:
    """The options every load benchmark takes, with its own defaults."""
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds (default 3, at least 2 advised)")
    p.add_argument("--messages", type=int, default=messages, help=f"smtp-source messages per run (default {messages})")
    p.add_argument("--sessions", type=int, default=50, help="smtp-source parallel sessions (default 50)")
    p.add_argument("--size", type=int, default=1024, help="message payload bytes (default 1024)")
    p.add_argument("--warmup", type=int, default=warmup, help=f"unreported warm-up messages per target (default {warmup})")
    p.add_argument("--lat-count", type=int, default=lat_count, help=f"mxgate-loadgen sessions per run (default {lat_count})")
    p.add_argument("--lat-concurrency", type=int, default=50, help="mxgate-loadgen concurrency (default 50)")
    p.add_argument("--hold-count", type=int, default=hold_count, help=f"{hold_what} held for the RSS figure (default {hold_count})")
    p.add_argument("--hold-s", type=int, default=5, help="seconds to hold them (default 5)")
