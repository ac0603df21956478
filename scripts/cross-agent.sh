#!/usr/bin/env bash
# Builds the aarch64 agent (Raspberry Pi 4/5, Jetson, the emulated Pi of scripts/emulated-pi.sh)
# with Debian's cross toolchain, installing it where missing, and fetches the aarch64 onnxruntime
# library the rig deploys beside it. A second run rebuilds nothing and downloads nothing.
#
#   scripts/cross-agent.sh
#
# Writes:
#   target/aarch64-agent/                                 the cross build's own target directory, so
#                                                         it never invalidates the host build's
#   target/aarch64-unknown-linux-gnu/release/gauntlet-agent   where `gauntlet` looks for the agent of
#                                                         a board whose `arch` is this triple (a
#                                                         release build; GAUNTLET_CROSS_PROFILE
#                                                         builds another profile, left in
#                                                         target/aarch64-agent/<triple>/<profile>/)
#   target/aarch64-agent/onnxruntime/libonnxruntime.so    the `onnxruntime` wheel's library for
#                                                         manylinux aarch64, the host's version
#
# Debian's rustc builds it, not rustup's: the arm64 standard library is Debian's package
# (libstd-rust-web-dev:arm64), which only the same compiler release can use.
set -euo pipefail
cd "$(dirname "$0")/.."

triple="aarch64-unknown-linux-gnu"
target_dir="$PWD/target/aarch64-agent"
installed="$PWD/target/$triple/release/gauntlet-agent"
ort_dir="$target_dir/onnxruntime"

# The suite builds the unoptimised `emulated-test` profile (Cargo.toml says why); a real board
# wants the default, `release`.
profile="${GAUNTLET_CROSS_PROFILE:-release}"

say() { echo "cross-agent: $*" >&2; }

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi

install_toolchain() {
    local missing=() p
    for p in rustc-web cargo-web libstd-rust-web-dev:arm64 gcc-aarch64-linux-gnu libc6-dev-arm64-cross; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    say "installing ${missing[*]}"
    if ! dpkg --print-foreign-architectures | grep -qx arm64; then
        $sudo dpkg --add-architecture arm64
    fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

build_agent() {
    local started=$SECONDS
    RUSTC=/usr/bin/rustc CARGO_TARGET_DIR="$target_dir" \
        CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
        /usr/bin/cargo build --profile "$profile" --quiet -p gauntlet-agent --target "$triple"
    local built="$target_dir/$triple/$profile/gauntlet-agent"
    # Only a release build goes where `gauntlet` looks by default, so an unoptimised one never
    # stands in for it unnoticed; another profile's is named by $GAUNTLET_AGENT_<TRIPLE>.
    if [ "$profile" != release ]; then
        say "agent ($profile profile) ready in $((SECONDS - started)) s: $built (name it in GAUNTLET_AGENT_AARCH64_UNKNOWN_LINUX_GNU)"
        return 0
    fi
    mkdir -p "$(dirname "$installed")"
    if ! cmp -s "$built" "$installed"; then
        cp "$built" "$installed.tmp"
        mv "$installed.tmp" "$installed"
    fi
    say "agent ($profile profile) ready in $((SECONDS - started)) s: $installed"
}

# The wheel is fetched for the platform, not installed: only its C library is used, by the agent on
# the board. Its version follows the host's onnxruntime (the agent's API level is built for it).
fetch_onnxruntime() {
    local version spec
    version="$(python3 -c 'import onnxruntime; print(onnxruntime.__version__)' 2>/dev/null || true)"
    spec="onnxruntime${version:+==$version}"
    if [ -s "$ort_dir/libonnxruntime.so" ] && [ "$(cat "$ort_dir/spec" 2>/dev/null)" = "$spec" ]; then
        say "onnxruntime for aarch64 cached ($spec): $ort_dir/libonnxruntime.so"
        return 0
    fi
    rm -rf "$ort_dir"
    mkdir -p "$ort_dir/wheel"
    # Newer wheels are tagged manylinux_2_28 only; manylinux2014 alone would pick an old release.
    if ! python3 -m pip download --quiet --no-deps --only-binary=:all: \
        --platform manylinux_2_28_aarch64 --platform manylinux_2_27_aarch64 \
        --platform manylinux2014_aarch64 -d "$ort_dir/wheel" "$spec"; then
        say "pip could not fetch $spec for manylinux aarch64"
        exit 1
    fi
    python3 - "$ort_dir" <<'EOF'
import pathlib, sys, zipfile
out = pathlib.Path(sys.argv[1])
wheel = next((out / "wheel").glob("onnxruntime-*.whl"))
with zipfile.ZipFile(wheel) as z:
    name = next(n for n in z.namelist() if "/libonnxruntime.so." in n)
    (out / "libonnxruntime.so").write_bytes(z.read(name))
EOF
    rm -rf "$ort_dir/wheel"
    printf '%s\n' "$spec" >"$ort_dir/spec"
    say "onnxruntime for aarch64 fetched ($spec): $ort_dir/libonnxruntime.so"
}

install_toolchain
build_agent
fetch_onnxruntime
