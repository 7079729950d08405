"""One appliance as a QEMU VM (TCG): its disk (a copy of the flashed
image, kept across its reboots), its provisioning files passed by fw_cfg,
its console log and monitor socket, and the files of the lab's pair.
"""

import socket
import subprocess
import time
from pathlib import Path

from topology import PREFIX, PRIORITY, VIP, VRID, Topology, addr, mac

ROOT = Path(__file__).resolve().parent.parent
METRICS_PORT = 9100
SMTP_PORT = 25
CMDLINE = "quiet panic=5"


def node_toml(box: str, web_listen: str) -> str:
    """Box BOX's node file: VRRP on eth0, metrics on every address (the
    tests read /healthz and /metrics from the client namespace)."""
    return f"""name = "gw-{box}"
data_dir = "/data/mxgate"
shutdown_grace_ms = 2000

[web]
listen = "{web_listen}"

[metrics]
listen = "0.0.0.0:{METRICS_PORT}"

[vrrp]
interface = "eth0"
vrid = {VRID}
priority = {PRIORITY[box]}
advert_interval_ms = 100
virtual_ips = ["{VIP}/{PREFIX}"]
preempt = true
"""


def network(box: str) -> str:
    return f"IFACE=eth0\nADDRESS={addr(box)}/{PREFIX}\nGATEWAY=\nDNS=\n"


def policy_toml() -> str:
    """The shared policy: an smtp-mode listener on :25 (its banner is the
    box's own, naming the box) over the one backend MTA."""
    return f"""[relay]
domains = ["lab.test"]

[[pool]]
name = "mta"
balance = "roundrobin"
client_identity = "none"
backend_tls = "off"
check = {{ interval_ms = 500, timeout_ms = 1000, fall = 2, rise = 1 }}

[[pool.server]]
name = "mta1"
address = "{addr('mta')}:25"

[[listener]]
name = "mx"
bind = "0.0.0.0:{SMTP_PORT}"
mode = "smtp"
pool = "mta"
"""


def web_listen(binary: Path | None) -> str:
    """0.0.0.0:443 when this mxgate accepts a web listener off loopback
    (the HTTPS UI), else the loopback-only API address."""
    if binary and binary.exists():
        try_file = Path(f"/tmp/mxgate-qemu-web-{id(binary)}.toml")
        try_file.write_text(node_toml("a", "0.0.0.0:443"))
        ok = subprocess.run([str(binary), "check-config", "--config", str(try_file)],
                            capture_output=True).returncode == 0
        try_file.unlink()
        if ok:
            return "0.0.0.0:443"
    return "127.0.0.1:8443"


class Box:
    """A VM of the appliance. `start` boots it (again), `quit` pulls the
    plug through the QEMU monitor."""

    def __init__(self, name: str, arch: str, image: Path, work: Path, topo: Topology):
        self.name, self.arch, self.image, self.work, self.topo = name, arch, image, work, topo
        self.disk = work / f"{name}.img"
        self.boots = 0
        self.proc = None
        self.started = 0.0

    @property
    def address(self) -> str:
        return addr(self.name)

    @property
    def monitor(self) -> Path:
        return self.work / f"{self.name}.monitor"

    def console(self, boot: int | None = None) -> Path:
        return self.work / f"{self.name}-boot{boot or self.boots}.console.log"

    def flash(self) -> None:
        """The box's disk: a (sparse) copy of the flashed image."""
        subprocess.run(["cp", "--sparse=always", str(self.image / "disk.img"), str(self.disk)], check=True)

    def provision(self, files: dict[str, str]) -> list[str]:
        """Writes FILES (node.toml, network, policy.toml) for fw_cfg; returns the QEMU arguments."""
        args = []
        for fname, text in files.items():
            path = self.work / f"{self.name}.{fname}"
            path.write_text(text)
            args += ["-fw_cfg", f"name=opt/mxgate/{fname},file={path}"]
        return args

    def _boot_args(self, direct: bool) -> list[str]:
        if self.arch == "x86_64" and not direct:
            return ["qemu-system-x86_64", "-M", "pc"]
        if self.arch == "x86_64":
            return ["qemu-system-x86_64", "-M", "pc", "-kernel", str(self.image / "vmlinuz"),
                    "-initrd", str(self.image / "initramfs.cpio.zst"),
                    "-append", f"console=ttyS0,115200 {CMDLINE}"]
        # aarch64: no bootloader on the disk (docs/image.md); QEMU loads the
        # active slot's kernel and initrd from the disk's boot partition.
        kernel, initrd = self._from_boot_partition()
        return ["qemu-system-aarch64", "-M", "virt", "-cpu", "cortex-a57", "-kernel", str(kernel),
                "-initrd", str(initrd), "-append", f"console=ttyAMA0 {CMDLINE} mxgate.slot=A"]

    def _from_boot_partition(self) -> tuple[Path, Path]:
        out = []
        for fname in ("vmlinuz", "initrd.img"):
            dest = self.work / f"{self.name}.{fname}"
            subprocess.run(["mcopy", "-o", "-i", f"{self.disk}@@1M", f"::/A/{fname}", str(dest)],
                           check=True, env={"MTOOLS_SKIP_CHECK": "1", "PATH": "/usr/bin:/bin"})
            out.append(dest)
        return out[0], out[1]

    def argv(self, fw_cfg: list[str], direct: bool = False) -> list[str]:
        return [
            *self._boot_args(direct), "-accel", "tcg", "-m", "256", "-smp", "1",
            "-nodefaults", "-no-user-config", "-display", "none",
            "-chardev", f"file,id=con,path={self.console()}", "-serial", "chardev:con",
            "-monitor", f"unix:{self.monitor},server=on,wait=off",
            "-drive", f"file={self.disk},format=raw,if=none,id=d0", "-device", "virtio-blk-pci,drive=d0",
            "-netdev", f"tap,id=n0,ifname={self.topo.tap(self.name)},script=no,downscript=no",
            "-device", f"virtio-net-pci,netdev=n0,mac={mac(self.name)}",
            *fw_cfg,
        ]

    def start(self, procs, fw_cfg: list[str], direct: bool = False) -> None:
        """Boots the box under QEMU in the bridge namespace (as process BOX-bootN)."""
        self.boots += 1
        self.monitor.unlink(missing_ok=True)
        argv = self.argv(fw_cfg, direct)
        self.started = time.monotonic()
        self.proc = procs.start(f"{self.name}-boot{self.boots}.qemu", self.topo.exec_argv("br", *argv))

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def quit(self, timeout: float = 10.0) -> None:
        """`quit` on the QEMU monitor: the power is cut, no shutdown in the guest."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(str(self.monitor))
            s.sendall(b"quit\n")
            try:
                while s.recv(4096):
                    pass
            except OSError:
                pass
        self.proc.wait(timeout=timeout)

    def console_tail(self, lines: int = 25) -> str:
        try:
            return "\n".join(self.console().read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no console log)"
