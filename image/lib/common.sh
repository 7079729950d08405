# shellcheck shell=bash
# image/lib/common.sh: shared settings of image/build: the architecture
# table, the output layout and small helpers. Sourced, not run.

log() { printf '[image] %s\n' "$*" >&2; }
die() {
    printf 'image/build: %s\n' "$*" >&2
    exit 1
}

# set_arch ARCH: the per-architecture names every step uses.
set_arch() {
    ARCH=$1
    case $ARCH in
    x86_64)
        DEB_ARCH=amd64
        RUST_TARGET=x86_64-unknown-linux-musl
        KERNEL_PKG=linux-image-amd64
        CONSOLE=ttyS0
        STRIP="strip"
        BOOT_MIB=64
        ;;
    aarch64)
        DEB_ARCH=arm64
        RUST_TARGET=aarch64-unknown-linux-musl
        KERNEL_PKG=linux-image-arm64
        CONSOLE=ttyAMA0
        STRIP=aarch64-linux-gnu-strip
        # Debian's arm64 kernel is an uncompressed Image (31 MiB): two slots' worth.
        BOOT_MIB=128
        ;;
    *) die "unknown --arch '$ARCH' (valid: x86_64, aarch64)" ;;
    esac
    OUT=$ROOT/out/$ARCH
    CACHE=$ROOT/out/cache/$DEB_ARCH
    WORK=$OUT/work
}

# Sizes of the disk image, MiB (BOOT_MIB is set per architecture above).
# The boot partition holds one kernel and initrd per slot; a root slot
# holds one squashfs; /data is grown by the owner (see docs/image.md).
SLOT_MIB=96
DATA_MIB=256

# human BYTES: "12.3 MiB".
human() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }

# size_of PATH: apparent bytes of a file, or the sum of a tree's files.
size_of() {
    if [[ -d $1 ]]; then
        du -sb --apparent-size "$1" | cut -f1
    else
        stat -c %s "$1"
    fi
}
