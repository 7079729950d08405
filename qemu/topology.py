"""The network of a QEMU lab: namespaces on a bridge, and a way to talk
from one of them.

    NAME-br      the bridge br0 and the boxes' tap devices (QEMU runs here)
    NAME-client  10.77.0.10  a client (swaks, curl)
    NAME-mta     10.77.0.21  the backend MTA (`mxgate sink`)
    box a        10.77.0.11  VM on tap `ta`, VRRP priority 150
    box b        10.77.0.12  VM on tap `tb`, VRRP priority 100
    VIP          10.77.0.25  VRRP vrid 51

Addresses follow scripts/lab. Everything lives in namespaces this module
creates (names carry the caller's pid) and `destroy` removes them; the host's
interfaces and routes are never touched.
"""

import concurrent.futures
import ctypes
import os
import subprocess

NET = "10.77.0"
PREFIX = 24
VIP = f"{NET}.25"
VRID = 51
HOSTS = {"client": 10, "a": 11, "b": 12, "mta": 21}
PRIORITY = {"a": 150, "b": 100}
CLONE_NEWNET = 0x40000000


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(argv, check=check, capture_output=True, text=True)


def addr(node: str) -> str:
    return f"{NET}.{HOSTS[node]}"


def mac(box: str) -> str:
    return f"52:54:00:77:00:{HOSTS[box]:02x}"


class Topology:
    """The bridge namespace with one tap per box, plus the client and MTA
    namespaces joined to it by veth pairs."""

    def __init__(self, name: str, boxes: list[str]):
        self.name = name
        self.boxes = boxes
        self.bridge_ns = f"{name}-br"

    def ns(self, node: str) -> str:
        return f"{self.name}-{node}"

    def namespaces(self) -> list[str]:
        return [self.bridge_ns, self.ns("client"), self.ns("mta")]

    @staticmethod
    def tap(box: str) -> str:
        return f"t{box}"

    def build(self) -> None:
        for ns in self.namespaces():
            sh("ip", "netns", "add", ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        br = self.bridge_ns
        sh("ip", "-n", br, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", br, "link", "set", "br0", "up")
        for node in ("client", "mta"):
            ns = self.ns(node)
            sh("ip", "-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", f"v{node}")
            sh("ip", "-n", ns, "link", "set", f"v{node}", "netns", br)
            sh("ip", "-n", br, "link", "set", f"v{node}", "master", "br0", "up")
            sh("ip", "-n", ns, "addr", "add", f"{addr(node)}/{PREFIX}", "dev", "eth0")
            sh("ip", "-n", ns, "link", "set", "eth0", "up")
        for box in self.boxes:
            # Persistent taps: a VM that is quit and started again finds its NIC.
            sh("ip", "-n", br, "tuntap", "add", "dev", self.tap(box), "mode", "tap")
            sh("ip", "-n", br, "link", "set", self.tap(box), "master", "br0", "up")

    def destroy(self) -> None:
        for ns in self.namespaces():
            sh("ip", "netns", "del", ns, check=False)

    def exists(self) -> bool:
        return self.bridge_ns in sh("ip", "netns", "list", check=False).stdout

    def exec_argv(self, node: str, *argv: str) -> list[str]:
        ns = self.bridge_ns if node == "br" else self.ns(node)
        return ["ip", "netns", "exec", ns, *argv]


class InNamespace:
    """Runs Python callables on one thread that has joined a network
    namespace (setns is per thread), so sockets and urllib calls made there
    see that namespace while the rest of the program stays on the host's."""

    def __init__(self, ns: str):
        self.ns = ns
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, initializer=self._enter)

    def _enter(self) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(f"/run/netns/{self.ns}", os.O_RDONLY)
        try:
            if libc.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), f"setns into {self.ns} failed")
        finally:
            os.close(fd)

    def call(self, fn, *args, **kw):
        return self.pool.submit(fn, *args, **kw).result()

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
