# shellcheck shell=bash
# image/lib/deps.sh: the host tools image/build needs (Debian packages,
# installed once) and the target's Debian packages (kernel, busybox-static,
# ca-certificates),
# downloaded into out/cache/DEB_ARCH and unpacked there. Sourced, not run.

HOST_PACKAGES=(musl-tools busybox-static syslinux syslinux-common mtools dosfstools fdisk
    squashfs-tools e2fsprogs cpio kmod zstd xz-utils file binutils)
# Per architecture: a strip that knows the target's ELF.
declare -A ARCH_PACKAGES=([x86_64]="" [aarch64]="binutils-aarch64-linux-gnu")

# host_tools: installs the missing HOST_PACKAGES (nothing when all are there).
host_tools() {
    local missing=() p
    # shellcheck disable=SC2206
    local want=("${HOST_PACKAGES[@]}" ${ARCH_PACKAGES[$ARCH]})
    for p in "${want[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    if ((${#missing[@]})); then
        log "installing host packages: ${missing[*]}"
        apt_get install -y --no-install-recommends "${missing[@]}"
    fi
}

apt_get() {
    DEBIAN_FRONTEND=noninteractive apt-get -q "$@" >"$WORK/apt.log" 2>&1 ||
        {
            DEBIAN_FRONTEND=noninteractive apt-get -q update >>"$WORK/apt.log" 2>&1
            DEBIAN_FRONTEND=noninteractive apt-get -q "$@" >>"$WORK/apt.log" 2>&1
        } || die "apt-get $* failed; see $WORK/apt.log"
}

# foreign_arch: adds DEB_ARCH to dpkg's architectures when it is not the host's.
foreign_arch() {
    [[ $DEB_ARCH == "$(dpkg --print-architecture)" ]] && return
    if ! dpkg --print-foreign-architectures | grep -qx "$DEB_ARCH"; then
        log "adding dpkg architecture $DEB_ARCH"
        dpkg --add-architecture "$DEB_ARCH"
        apt_get update
    fi
}

# fetch_debs: downloads and unpacks the kernel and busybox-static for
# DEB_ARCH into CACHE/{kernel,busybox}; sets KVER (the kernel release).
fetch_debs() {
    foreign_arch
    mkdir -p "$CACHE"
    # The meta package names the versioned kernel package.
    local kpkg
    kpkg=$(apt-cache depends "$KERNEL_PKG:$DEB_ARCH" 2>/dev/null | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
    [[ -n $kpkg ]] || { apt_get update; kpkg=$(apt-cache depends "$KERNEL_PKG:$DEB_ARCH" | awk '/Depends: linux-image-[0-9]/ { print $2; exit }'); }
    [[ -n $kpkg ]] || die "apt cannot resolve $KERNEL_PKG for $DEB_ARCH"
    kpkg=${kpkg%:*}
    unpack_deb "$kpkg" kernel
    unpack_deb busybox-static busybox
    unpack_deb ca-certificates ca-certificates all
    KVER=$(ls "$CACHE/kernel/lib/modules")
    [[ -n $KVER ]] || die "no modules directory in $kpkg"
    # modules.dep is made by the package's postinst; make it for the copy.
    [[ -s $CACHE/kernel/lib/modules/$KVER/modules.dep ]] || depmod -b "$CACHE/kernel" "$KVER"
}

# unpack_deb PKG DIR [all]: downloads PKG:DEB_ARCH (PKG when "all": an
# architecture-independent package), once per version, and unpacks it
# into CACHE/DIR.
unpack_deb() {
    local pkg=$1 dir=$2 spec=$1:$DEB_ARCH arch=$DEB_ARCH version deb
    [[ ${3:-} == all ]] && spec=$1 arch=all
    version=$(apt-cache policy "$spec" | awk '/Candidate:/ { print $2 }')
    [[ -n $version && $version != "(none)" ]] || die "apt has no candidate for $spec"
    deb=$(ls "$CACHE"/"${pkg}"_*"${version#*:}"_"$arch".deb 2>/dev/null | head -n1 || true)
    if [[ -z $deb ]]; then
        log "downloading $spec $version"
        (cd "$CACHE" && apt-get -q download "$spec=$version" >>"$WORK/apt.log" 2>&1) ||
            die "apt-get download $spec failed; see $WORK/apt.log"
        deb=$(ls "$CACHE"/"${pkg}"_*"${version#*:}"_"$arch".deb | head -n1)
    fi
    if [[ ! -e $CACHE/$dir/.unpacked-$version ]]; then
        rm -rf "${CACHE:?}/$dir"
        dpkg-deb -x "$deb" "$CACHE/$dir"
        touch "$CACHE/$dir/.unpacked-$version"
    fi
}
