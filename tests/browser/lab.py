"""A gateway under test for the browser and API-fuzz stages (Python 3.11 stdlib).

Starts, on loopback with free ports, an `mxgate sink` backend and an
`mxgate run` gateway with an smtp-mode listener (relay domain
example.test) over a pool `mta` whose one server is the sink, in a
temporary directory (node.toml, policy.toml, data/), like the Rust tests'
`Gateway::start_smtp_with_sink`. `Lab` is a context manager: leaving it
stops both processes (SIGTERM, then SIGKILL) and removes the directory,
also after a failure. `stop_on_signals()` turns SIGTERM/SIGHUP into an
exception so that the cleanup runs when the caller is killed.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SETUP_CODE = re.compile(r"setup code: ([A-Z0-9]{4}-[A-Z0-9]{4})")


def mxgate_bin() -> Path:
    """The binary under test: $MXGATE_BIN, else the debug build of the
    current cargo target dir (scripts/test has just built it)."""
    if os.environ.get("MXGATE_BIN"):
        return Path(os.environ["MXGATE_BIN"]).resolve()
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    return (target if target.is_absolute() else REPO / target) / "debug" / "mxgate"


def free_addr() -> str:
    """`127.0.0.1:PORT` with a port that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


def wait_until(what: str, timeout_s: float, probe):
    """Calls `probe` until it returns something true; raises after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        time.sleep(0.2)


def http_get(url: str) -> tuple[int, str] | None:
    """A plain HTTP GET: (status, body), or None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=3) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError:
        return None


def skip(stage: str, reason: str) -> None:
    """Prints `SKIPPED (reason): stage`, adds it to $MXGATE_SKIP_LOG (which
    scripts/test lists at the end) and exits 0."""
    print(f"SKIPPED ({reason}): {stage}")
    if os.environ.get("MXGATE_SKIP_LOG"):
        with open(os.environ["MXGATE_SKIP_LOG"], "a") as log:
            log.write(f"{stage} ({reason})\n")
    sys.exit(0)


def stop_on_signals() -> None:
    """SIGTERM and SIGHUP raise SystemExit, so `with Lab()` cleans up."""

    def leave(signum, _frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, leave)
    signal.signal(signal.SIGHUP, leave)


@dataclass
class Proc:
    """A child process with its output in a log file."""

    name: str
    popen: subprocess.Popen
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        if self.popen.poll() is not None:
            return
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()


@dataclass
class Lab:
    """A sink and a gateway (see the module doc). `with_admin`: create the
    admin with `mxgate user add` before the start (no setup code then).
    `with_policy=False`: start without a policy (no pool, no listener, as a
    new box); `smtp_addr` is then only a free port for one to be made."""

    node_name: str = "mx1"
    with_admin: tuple[str, str] | None = None
    with_policy: bool = True
    binary: Path = field(default_factory=mxgate_bin)
    dir: Path = field(init=False)
    sink_addr: str = field(init=False)
    smtp_addr: str = field(init=False)
    web_addr: str = field(init=False)
    metrics_addr: str = field(init=False)
    procs: list[Proc] = field(init=False, default_factory=list)

    def __enter__(self) -> "Lab":
        if not self.binary.is_file():
            raise FileNotFoundError(
                f"{self.binary}: no mxgate binary (cargo build, or set MXGATE_BIN)"
            )
        self.dir = Path(tempfile.mkdtemp(prefix="mxgate-lab."))
        try:
            self._start()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *_exc) -> None:
        for proc in reversed(self.procs):
            proc.stop()
        if os.environ.get("MXGATE_KEEP_LAB"):
            print(f"lab: kept {self.dir}", file=sys.stderr)
            return
        # A browser that is still closing may write into its profile here.
        for _ in range(10):
            shutil.rmtree(self.dir, ignore_errors=True)
            if not self.dir.exists():
                return
            time.sleep(0.5)

    @property
    def base_url(self) -> str:
        return f"https://{self.web_addr}"

    @property
    def data_dir(self) -> Path:
        return self.dir / "data"

    @property
    def cert(self) -> Path:
        """The box's self-signed web certificate."""
        return self.data_dir / "web" / "cert.pem"

    def gateway(self) -> Proc:
        return self.procs[-1]

    def _spawn(self, name: str, *args: str) -> Proc:
        log = self.dir / f"{name}.log"
        with open(log, "wb") as out:
            popen = subprocess.Popen(
                [str(self.binary), *args],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        proc = Proc(name, popen, log)
        self.procs.append(proc)
        return proc

    def _start(self) -> None:
        self.sink_addr, self.smtp_addr = free_addr(), free_addr()
        self.web_addr, self.metrics_addr = free_addr(), free_addr()
        self._spawn(
            "sink",
            "sink",
            "--listen",
            self.sink_addr,
            "--maildir",
            str(self.dir / "maildir"),
            "--hostname",
            "sink.test",
        )
        (self.dir / "node.toml").write_text(self._node_toml())
        args = ["run", "--config", str(self.dir / "node.toml")]
        if self.with_policy:
            (self.dir / "policy.toml").write_text(self._policy_toml())
            args += ["--policy", str(self.dir / "policy.toml")]
        if self.with_admin:
            self.add_user(*self.with_admin, role="admin")
        self._wait_healthy(self._spawn("gateway", *args))

    def _node_toml(self) -> str:
        return (
            f'name = "{self.node_name}"\ndata_dir = "{self.data_dir}"\n'
            'shutdown_grace_ms = 2000\nlog = "info"\n'
            f'[metrics]\nlisten = "{self.metrics_addr}"\n'
            f'[web]\nlisten = "{self.web_addr}"\n'
        )

    def _policy_toml(self) -> str:
        return (
            '[relay]\ndomains = ["example.test"]\n'
            '[[pool]]\nname = "mta"\n'
            "check = { interval_ms = 300, timeout_ms = 1000, fall = 1, rise = 1 }\n"
            f'[[pool.server]]\nname = "mta1"\naddress = "{self.sink_addr}"\n'
            f'[[listener]]\nname = "mx"\nbind = "{self.smtp_addr}"\nmode = "smtp"\n'
            'pool = "mta"\nhostname = "mx.gw.test"\n'
        )

    def _wait_healthy(self, gw: Proc) -> None:
        def healthy():
            if gw.popen.poll() is not None:
                raise RuntimeError(f"mxgate run exited:\n{gw.output()}")
            if not self.with_policy:
                r = http_get(f"http://{self.metrics_addr}/healthz")
                return r and r[0] == 200
            r = http_get(f"http://{self.metrics_addr}/metrics")
            return r and 'mxgate_backend_up{pool="mta",server="mta1"} 1' in r[1]

        try:
            wait_until("the gateway and its backend to be up", 30, healthy)
        except TimeoutError as e:
            raise TimeoutError(f"{e}\n{gw.output()}") from None

    def setup_code(self) -> str:
        """The one-time setup code from the gateway's log."""

        def found():
            m = SETUP_CODE.search(self.gateway().output())
            return m and m.group(1)

        return wait_until("'setup code:' in the log", 15, found)

    def add_user(self, name: str, password: str, role: str) -> None:
        """`mxgate user add` on the data dir, the password on stdin."""
        subprocess.run(
            [str(self.binary), "user", "add", "--data", str(self.data_dir), name, "--role", role],
            input=f"{password}\n",
            text=True,
            check=True,
            capture_output=True,
        )
