# shellcheck shell=bash
# image/lib/rootfs.sh: assembles the root tree of one slot in WORK/rootfs:
# busybox-static and its applet links, the mxgate binary, the kernel
# modules the appliance loads (with their dependencies), rootfs-overlay/
# on top, and /boot with the slot's own kernel and stage-1 initrd (so a
# slot image is a complete update). Sourced, not run.

# modules_closure LIST_FILE...: the .ko paths (relative to the kernel tree)
# of the modules named in the files and of everything they depend on.
# Names absent from this kernel or built in are skipped.
modules_closure() {
    local tree=$CACHE/kernel name
    grep -hv '^[[:space:]]*\(#\|$\)' "$@" | while read -r name _; do
        modprobe -d "$tree" -S "$KVER" --show-depends "$name" 2>/dev/null || true
    done | awk '$1 == "insmod" { print $2 }' | sed "s|^$tree/||" | sort -u
}

# copy_modules DEST LIST_FILE...: the closure of the lists into DEST, with
# its own modules.dep / modules.alias (busybox modprobe reads them).
copy_modules() {
    local dest=$1 ko
    shift
    rm -rf "$dest/lib/modules"
    mkdir -p "$dest/lib/modules/$KVER"
    modules_closure "$@" | while read -r ko; do
        install -D -m 0644 "$CACHE/kernel/$ko" "$dest/$ko"
    done
    cp "$CACHE/kernel/lib/modules/$KVER"/modules.{order,builtin,builtin.modinfo} "$dest/lib/modules/$KVER/" 2>/dev/null || true
    depmod -b "$dest" "$KVER"
    # Only the text forms are read on the box.
    rm -f "$dest/lib/modules/$KVER"/*.bin
}

# busybox_tree DEST: busybox-static with one link per applet.
busybox_tree() {
    local dest=$1 applet
    install -D -m 0755 "$CACHE/busybox/bin/busybox" "$dest/bin/busybox"
    # The host's busybox-static is the same Debian build: its applet list
    # holds for the target (which may not run here).
    busybox --list-full | while read -r applet; do
        [[ $applet == bin/busybox ]] && continue
        mkdir -p "$dest/$(dirname "$applet")"
        ln -sfn /bin/busybox "$dest/$applet"
    done
}

# make_rootfs: WORK/rootfs from scratch.
make_rootfs() {
    local r=$WORK/rootfs
    rm -rf "$r"
    mkdir -p "$r"/{dev,proc,sys,run,tmp,var,data,mnt/boot,newroot,root,boot}
    chmod 1777 "$r/tmp"
    busybox_tree "$r"
    install -D -m 0755 "$BINARY" "$r/usr/bin/mxgate"
    "$STRIP" --strip-all "$r/usr/bin/mxgate" || die "$STRIP failed on the mxgate binary"
    copy_modules "$r" "$OVERLAY/etc/modules-boot" "$OVERLAY/etc/modules" "$OVERLAY/etc/modules-hw"
    cp -a "$OVERLAY/." "$r/"
    # The CA bundle rustls reads (DNS over TLS, backend certificate checks).
    mkdir -p "$r/etc/ssl/certs"
    cat "$CACHE/ca-certificates/usr/share/ca-certificates/mozilla"/*.crt >"$r/etc/ssl/certs/ca-certificates.crt"
    local version
    version=$("$r/usr/bin/mxgate" version 2>/dev/null | head -n1 || true)
    [[ -n $version ]] || version="mxgate $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)"
    cat >"$r/etc/os-release" <<EOF
NAME="mxgate appliance"
ID=mxgate
PRETTY_NAME="$version ($ARCH)"
VERSION_ID="$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)"
BUILD_KERNEL="$KVER"
EOF
}

# make_boot_initrd: the stage-1 initrd (busybox, /init, the storage modules)
# into WORK/rootfs/boot/initrd.img; the kernel next to it.
make_boot_initrd() {
    local i=$WORK/initrd r=$WORK/rootfs
    rm -rf "$i"
    mkdir -p "$i"/{dev,proc,sys,run,newroot,etc}
    busybox_tree "$i"
    copy_modules "$i" "$OVERLAY/etc/modules-boot"
    install -m 0755 "$OVERLAY/init" "$i/init"
    cpio_of "$i" >"$r/boot/initrd.img"
    install -m 0644 "$CACHE/kernel/boot/vmlinuz-$KVER" "$r/boot/vmlinuz"
}

# make_full_initramfs: the whole root tree as one initramfs (direct boot
# with -kernel/-initrd or PXE: no disk needed, /data on a disk if found).
make_full_initramfs() {
    local r=$WORK/rootfs
    # /boot is left out: the kernel is the other half of the pair.
    (cd "$r" && find . -path ./boot -prune -o -print | LC_ALL=C sort |
        cpio --quiet -o -H newc -R 0:0 | zstd -q -12 -T2) >"$OUT/initramfs.cpio.zst"
    install -m 0644 "$r/boot/vmlinuz" "$OUT/vmlinuz"
}

# cpio_of DIR: DIR as a gzip newc archive on stdout (root-owned entries).
cpio_of() {
    (cd "$1" && find . | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0 | gzip -9n)
}
