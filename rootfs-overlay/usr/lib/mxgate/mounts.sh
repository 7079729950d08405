# shellcheck shell=sh
# /usr/lib/mxgate/mounts.sh: the virtual file systems and the boot facts.
# Sourced by rcS and rcK.

# uptime_s: whole seconds since boot.
uptime_s() { cut -d. -f1 /proc/uptime; }

mounted() { grep -q " $1 " /proc/mounts; }

# mount_basics: proc, sys, dev (already there after stage 1), /run, /tmp, /var.
mount_basics() {
    [ -e /proc/self ] || mount -t proc proc /proc
    mounted /sys || mount -t sysfs sys /sys
    mounted /dev || mount -t devtmpfs -o mode=0755 dev /dev
    mounted /run || mount -t tmpfs -o mode=0755,nosuid,nodev run /run
    mkdir -p /dev/pts /dev/shm
    mounted /dev/pts || mount -t devpts devpts /dev/pts
    mounted /tmp || mount -t tmpfs -o mode=1777,nosuid,nodev tmp /tmp
    mounted /var || mount -t tmpfs -o mode=0755,nosuid,nodev var /var
    mkdir -p /var/log /var/run /var/lib /run/mxgate
    [ -s /run/boot.env ] || echo "MODE=ram" >/run/boot.env
    . /run/boot.env
}

# load_modules: the fixed list, then the drivers of the devices present
# (one modprobe per pass: each process start is slow under emulation).
# File system and VLAN modules not listed are loaded by the kernel on
# first use (mount -t vfat, ip link add type vlan).
load_modules() {
    # shellcheck disable=SC2046  # one word per module
    modprobe -qa $(grep -v '^#' /etc/modules)
    # PCI first: a virtio PCI function becomes a virtio device once
    # virtio_pci has probed it. (Platform devices need nothing loadable:
    # their drivers are built into Debian's kernels.)
    for bus in pci virtio; do
        # shellcheck disable=SC2046  # one word per modalias
    modprobe -qa $(cat /sys/bus/$bus/devices/*/modalias 2>/dev/null)
    done
}
