# shellcheck shell=sh
# /usr/lib/mxgate/data.sh: mounts the persistent /data partition. Sourced
# by rcS after mounts.sh.
#
# /data is the ext4 partition labelled MXDATA; on a disk-image boot without
# one, partition 4 of the boot disk is used, and formatted if it holds no
# file system at all (never when it holds one that does not mount: that is
# left alone for a person to look at, and /data is a RAM disk this boot).

# has_ext_magic DEV: whether DEV starts with an ext2/3/4 superblock.
has_ext_magic() {
    [ "$(dd if="$1" bs=1 skip=1080 count=2 2>/dev/null | od -An -tx1 | tr -d ' \n')" = "53ef" ]
}

# data_partition: the device of /data, or nothing.
data_partition() {
    findfs LABEL=MXDATA 2>/dev/null && return
    [ "$MODE" = disk ] || return
    for p in /sys/class/block/"$BOOT_DISK"/"$BOOT_DISK"*; do
        [ "$(cat "$p/partition" 2>/dev/null)" = 4 ] && echo "/dev/${p##*/}" && return
    done
}

data_in_ram() {
    echo "data: WARNING: $1; /data is in RAM and will not survive a reboot" >/dev/console
    mount -t tmpfs -o mode=0755 data /data
    DATA_PERSISTENT=no
}

mount_data() {
    DATA_PERSISTENT=yes
    dev=$(data_partition)
    if [ -z "$dev" ]; then
        data_in_ram "no partition labelled MXDATA"
    else
        if ! has_ext_magic "$dev"; then
            echo "data: $dev holds no file system: first boot, formatting it" >/dev/console
            # busybox mke2fs writes ext2 (no journal), mounted by the ext4 driver.
            mke2fs -q -L MXDATA "$dev" || data_in_ram "mke2fs $dev failed"
        fi
        if [ "$DATA_PERSISTENT" = yes ] && ! mount -t ext4 -o noatime "$dev" /data; then
            data_in_ram "$dev does not mount (left untouched)"
        fi
    fi
    mkdir -p /data/etc /data/mxgate
    chmod 0700 /data/mxgate
    DATA_DEV=${dev:-none}
    echo "DATA_DEV=$DATA_DEV" >>/run/boot.env
}
