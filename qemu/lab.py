"""A QEMU lab: the topology, the backend MTA and one or two boxes, set up
and torn down together (used by qemu/run and tests/qemu/run).

    with QemuLab(name, arch, boxes=["a", "b"]) as lab:
        lab.boot("a"); ...

On exit, whatever happened: every QEMU and sink process is stopped and the
namespaces are deleted; the work directory (console logs, disks) is removed
unless `keep` is set or the block raised.
"""

import os
import shutil
import sys
from pathlib import Path

from topology import HOSTS, InNamespace, Topology, addr
from vm import Box, network, node_toml, policy_toml, web_listen

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts" / "bench.d"))
from common import Procs  # noqa: E402  (process groups stopped on exit)

QEMU = {"x86_64": "qemu-system-x86_64", "aarch64": "qemu-system-aarch64"}


def log(msg: str) -> None:
    print(f"[qemu] {msg}", file=sys.stderr, flush=True)


def host_mxgate(arch: str) -> Path | None:
    """An mxgate this machine can run (for the sink MTA and config checks):
    the x86_64 image's static binary, else a workspace build."""
    target = os.environ.get("CARGO_TARGET_DIR", str(ROOT / "target"))
    for path in (ROOT / "out/x86_64/work/rootfs/usr/bin/mxgate",
                 Path(target) / "x86_64-unknown-linux-musl/release/mxgate",
                 Path(target) / "release/mxgate", ROOT / "target/release/mxgate"):
        if path.exists():
            return path
    return None


class QemuLab:
    def __init__(self, name: str, arch: str, boxes: list[str], keep: bool = False, direct: bool = False):
        if len(name) > 10:
            raise SystemExit("qemu: the lab name must be at most 10 characters (interface names)")
        self.name, self.arch, self.keep, self.direct = name, arch, keep, direct
        self.image = ROOT / "out" / arch
        self.work = Path(f"/tmp/mxgate-qemu-{name}")
        self.topo = Topology(name, boxes)
        self.boxes = {b: Box(b, arch, self.image, self.work, self.topo) for b in boxes}
        self.sink_binary = host_mxgate(arch)
        self.web = web_listen(self.sink_binary)
        self.maildir = self.work / "maildir"
        self.procs = None
        self.client = None

    def check(self) -> str | None:
        """Why this lab cannot run here, or None."""
        if os.geteuid() != 0:
            return "needs root (network namespaces, tap devices)"
        if not shutil.which(QEMU[self.arch]):
            return f"{QEMU[self.arch]} is not installed"
        for tool in ("swaks", "mcopy"):
            if not shutil.which(tool):
                return f"{tool} is not installed"
        if not (self.image / "disk.img").exists():
            return f"no image: run image/build --arch {self.arch}"
        if self.sink_binary is None:
            return "no mxgate binary for the host (run image/build --arch x86_64)"
        return None

    def __enter__(self):
        if self.topo.exists():
            raise SystemExit(f"qemu: a lab named {self.name} exists; remove its namespaces ({self.topo.bridge_ns} ...)")
        shutil.rmtree(self.work, ignore_errors=True)
        self.work.mkdir(parents=True)
        self.maildir.mkdir()
        self.procs = Procs(self.work).__enter__()
        try:
            self.topo.build()
            self.client = InNamespace(self.topo.ns("client"))
            self.procs.start("mta.sink", self.topo.exec_argv(
                "mta", str(self.sink_binary), "sink", "--listen", "0.0.0.0:25",
                "--maildir", str(self.maildir), "--hostname", "mta1.lab.test"))
            for box in self.boxes.values():
                box.flash()
        except BaseException:
            self.__exit__(*sys.exc_info())
            raise
        return self

    def __exit__(self, exc_type, *_):
        try:
            if self.client:
                self.client.close()
            if self.procs:
                self.procs.__exit__(None, None, None)
        finally:
            self.topo.destroy()
            failed = exc_type is not None and not issubclass(exc_type, KeyboardInterrupt)
            if not failed and not self.keep:
                shutil.rmtree(self.work, ignore_errors=True)
            else:
                log(f"console logs and disks kept in {self.work}")
        return False

    def boot(self, box: str, policy: bool = True) -> None:
        """Boots BOX, provisioned with its node file and network (and the
        shared policy when POLICY) through fw_cfg."""
        files = {"node.toml": node_toml(box, self.web), "network": network(box)}
        if policy:
            files["policy.toml"] = policy_toml()
        b = self.boxes[box]
        b.start(self.procs, b.provision(files), direct=self.direct)

    def messages(self) -> list[Path]:
        return sorted(p for sub in ("new", "cur") for p in (self.maildir / sub).glob("*") if p.is_file()) \
            if self.maildir.exists() else []

    def describe(self) -> str:
        c, br = self.topo.ns("client"), self.topo.bridge_ns
        lines = [f"QEMU lab {self.name} ({self.arch}) is up; files in {self.work}"]
        for name, box in self.boxes.items():
            lines += [f"  box {name}: {box.address}  console log: {box.console()}",
                      f"    monitor:  socat - UNIX-CONNECT:{box.monitor}   (or: nc -U)",
                      f"    health:   ip netns exec {c} curl -s http://{box.address}:9100/healthz",
                      f"    metrics:  ip netns exec {c} curl -s http://{box.address}:9100/metrics"]
            if not self.web.startswith("127."):
                port = self.web.rsplit(":", 1)[1]
                lines.append(f"    web UI:   ip netns exec {c} curl -k https://{box.address}:{port}/")
        if self.web.startswith("127."):
            lines.append(f"  web API: {self.web} inside each box (loopback only in this mxgate)")
        lines += [f"  send mail:  ip netns exec {c} swaks --server {addr('a') if len(self.boxes) == 1 else '10.77.0.25'} --to user@lab.test",
                  f"  mail lands in {self.maildir}/new (backend MTA {addr('mta')}, namespace {self.topo.ns('mta')})",
                  f"  a shell on the lab's L2: ip netns exec {c} bash   (bridge and taps: ip netns exec {br} ip link)",
                  "  Ctrl-C stops the VMs and removes everything."]
        return "\n".join(lines)


__all__ = ["QemuLab", "HOSTS", "log"]
