# shellcheck shell=bash
# image/lib/binary.sh: the static musl mxgate binary for ARCH. x86_64 is
# built natively (musl-tools gives ring its C compiler); aarch64 is
# cross-built with cargo-zigbuild, zig (the PyPI `ziglang` wheel) being the
# C compiler and linker for ring and the bundled SQLite. Both tools live
# under out/cache/tools. Sourced, not run.

TOOLS=$ROOT/out/cache/tools
# The versions the aarch64 build was made with (pinned: a new zig can break cargo-zigbuild).
ZIGLANG_VERSION=0.17.1
CARGO_ZIGBUILD_VERSION=0.24.1

# zig_tools: cargo-zigbuild and ziglang under TOOLS (installed once); puts them on PATH.
zig_tools() {
    if [[ ! -x $TOOLS/venv/bin/python-zig ]]; then
        log "installing ziglang (PyPI) into $TOOLS/venv"
        python3 -m venv "$TOOLS/venv" || die "python3 -m venv failed (apt-get install python3-venv)"
        "$TOOLS/venv/bin/pip" -q install "ziglang==$ZIGLANG_VERSION" >"$WORK/pip.log" 2>&1 || die "pip install ziglang failed; see $WORK/pip.log"
        # cargo-zigbuild finds zig as `python -m ziglang` through this name.
        ln -sf python "$TOOLS/venv/bin/python-zig"
    fi
    if [[ ! -x $TOOLS/bin/cargo-zigbuild ]]; then
        log "installing cargo-zigbuild into $TOOLS"
        cargo install -q -j 2 --locked --root "$TOOLS" cargo-zigbuild --version "$CARGO_ZIGBUILD_VERSION" >"$WORK/cargo-install.log" 2>&1 ||
            die "cargo install cargo-zigbuild failed; see $WORK/cargo-install.log"
    fi
    export PATH=$TOOLS/venv/bin:$TOOLS/bin:$PATH
}

# build_binary: builds mxgate for RUST_TARGET and sets BINARY to its path.
# SMALL=1: the release profile tuned for size (opt-level s, fat LTO, one
# codegen unit; ~40 % smaller, ~3 times the build time), in its own target
# directory so it does not evict the normal release build.
build_binary() {
    rustup target add "$RUST_TARGET" >/dev/null 2>&1 || log "rustup target add $RUST_TARGET failed (offline?); trying anyway"
    local target_dir=${CARGO_TARGET_DIR:-$ROOT/target}
    if ((SMALL)); then
        export CARGO_PROFILE_RELEASE_OPT_LEVEL=s CARGO_PROFILE_RELEASE_LTO=fat CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1
        target_dir=$target_dir/image-small
    fi
    local build=(build)
    if [[ $ARCH == aarch64 ]]; then
        zig_tools
        build=(zigbuild)
    fi
    log "cargo ${build[*]} --release --target $RUST_TARGET -p mxgate"
    (cd "$ROOT" && CARGO_TARGET_DIR=$target_dir cargo "${build[@]}" -j "${JOBS:-2}" --release \
        --target "$RUST_TARGET" -p mxgate) || die "cargo build for $RUST_TARGET failed"
    BINARY=$target_dir/$RUST_TARGET/release/mxgate
    check_binary
}

# check_binary: BINARY is a static executable for ARCH.
check_binary() {
    [[ -x $BINARY ]] || die "no binary at $BINARY"
    local kind machine
    kind=$(file -b "$BINARY")
    machine=$([[ $ARCH == x86_64 ]] && echo x86-64 || echo aarch64)
    [[ $kind == *"$machine"* ]] || die "$BINARY is not an $ARCH binary: $kind"
    [[ $kind == *"static"* ]] || die "$BINARY is not statically linked: $kind"
}
