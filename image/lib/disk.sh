# shellcheck shell=bash
# image/lib/disk.sh: the flashable raw disk image OUT/disk.img, built
# without loop mounts (sfdisk, mkfs.vfat + mtools, mksquashfs,
# mkfs.ext4 -d, dd):
#
#   MBR (syslinux mbr.bin on x86_64), disk id 0x4d584754
#   p1  BOOT_MIB  FAT32 "MXBOOT"  syslinux (x86_64), A/ and B/ {vmlinuz,initrd.img}, syslinux.cfg
#   p2  SLOT_MIB  squashfs        root slot A (active)
#   p3  SLOT_MIB  squashfs        root slot B (spare; the same build at first)
#   p4  DATA_MIB  ext4 "MXDATA"   /data: store, keys, certificates, node files
#
# The layout is fixed, so writing only the first 1+BOOT+2*SLOT MiB of a
# newer image reflashes the system and keeps /data. Sourced, not run.

DISK_ID=0x4d584754

# make_slot_image: WORK/rootfs as a squashfs (zstd: fast to read under
# emulation) into OUT/rootfs.squashfs.
make_slot_image() {
    mksquashfs "$WORK/rootfs" "$OUT/rootfs.squashfs" -comp zstd -Xcompression-level 12 \
        -noappend -all-root -quiet -no-progress >/dev/null || die "mksquashfs failed"
    (($(size_of "$OUT/rootfs.squashfs") <= SLOT_MIB * 1048576)) || die "rootfs.squashfs does not fit a $SLOT_MIB MiB slot"
}

# syslinux_cfg: the boot menu; DEFAULT is the active slot (mxgate-slot flips it).
syslinux_cfg() {
    local slot
    printf 'SERIAL 0 115200\nDEFAULT A\nPROMPT 0\nTIMEOUT 0\n'
    for slot in A B; do
        printf 'LABEL %s\n  KERNEL /%s/vmlinuz\n  INITRD /%s/initrd.img\n' "$slot" "$slot" "$slot"
        printf '  APPEND console=tty0 console=ttyS0,115200n8 quiet panic=5 mxgate.slot=%s\n' "$slot"
    done
}

# make_boot_fs FILE: the FAT boot partition image.
make_boot_fs() {
    local fat=$1 slot
    rm -f "$fat"
    mkfs.vfat -F 32 -n MXBOOT -i 4d584754 -C "$fat" $((BOOT_MIB * 1024)) >/dev/null || die "mkfs.vfat failed"
    export MTOOLS_SKIP_CHECK=1
    for slot in A B; do
        mmd -i "$fat" "::/$slot"
        mcopy -i "$fat" "$WORK/rootfs/boot/vmlinuz" "$WORK/rootfs/boot/initrd.img" "::/$slot/"
    done
    if [[ $ARCH == x86_64 ]]; then
        syslinux_cfg >"$WORK/syslinux.cfg"
        mcopy -i "$fat" "$WORK/syslinux.cfg" ::/syslinux.cfg
        syslinux --install "$fat" || die "syslinux --install failed"
    else
        printf 'slot=A\ncmdline=console=%s quiet panic=5 mxgate.slot=A\n' "$CONSOLE" >"$WORK/boot.txt"
        mcopy -i "$fat" "$WORK/boot.txt" ::/boot.txt
    fi
}

# make_data_fs FILE: an empty /data (ext4, label MXDATA).
make_data_fs() {
    local ext=$1
    rm -f "$ext"
    mkdir -p "$WORK/data-seed/etc"
    mkfs.ext4 -q -F -L MXDATA -d "$WORK/data-seed" "$ext" "${DATA_MIB}M" >/dev/null || die "mkfs.ext4 failed"
}

# make_disk: OUT/disk.img from the parts.
make_disk() {
    local img=$OUT/disk.img mib=1048576
    local p1=1 p2=$((1 + BOOT_MIB)) p3=$((1 + BOOT_MIB + SLOT_MIB)) p4=$((1 + BOOT_MIB + 2 * SLOT_MIB))
    local total=$((p4 + DATA_MIB))
    make_slot_image
    make_boot_fs "$WORK/boot.vfat"
    make_data_fs "$WORK/data.ext4"
    rm -f "$img"
    truncate -s $((total * mib)) "$img"
    sfdisk -q "$img" <<EOF || die "sfdisk failed"
label: dos
label-id: $DISK_ID
unit: sectors

start=$((p1 * 2048)), size=$((BOOT_MIB * 2048)), type=c, bootable
start=$((p2 * 2048)), size=$((SLOT_MIB * 2048)), type=83
start=$((p3 * 2048)), size=$((SLOT_MIB * 2048)), type=83
start=$((p4 * 2048)), size=$((DATA_MIB * 2048)), type=83
EOF
    put "$WORK/boot.vfat" "$img" "$p1"
    put "$OUT/rootfs.squashfs" "$img" "$p2"
    put "$OUT/rootfs.squashfs" "$img" "$p3"
    put "$WORK/data.ext4" "$img" "$p4"
    if [[ $ARCH == x86_64 ]]; then
        dd if=/usr/lib/syslinux/mbr/mbr.bin of="$img" bs=440 count=1 conv=notrunc status=none
    fi
    SYSTEM_MIB=$p4
}

# put FILE IMAGE START_MIB: FILE written into IMAGE at START_MIB, sparse.
put() {
    dd if="$1" of="$2" bs=1M seek="$3" conv=notrunc,sparse status=none || die "dd $1 into $2 failed"
}
