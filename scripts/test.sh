#!/usr/bin/env bash
# Installs everything the test suite needs on Debian 12 and runs the whole suite.
# This is the README's test command; .ci/run calls it.
set -euo pipefail
cd "$(dirname "$0")/.."

# Resolve the host toolchain before installing Debian's Rust (for the STM32 firmware), whose
# /usr/bin/cargo must not take over the host workspace.
cargo_bin="$(command -v cargo)"

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi

packages=(
    socat                                 # a real pty pair for the serial-transport tests
    chromium libxml2-utils fonts-dejavu-core   # HTML report in headless Chromium; JUnit XSD check
    openssh-server openssh-client iproute2     # real sshd "boards" in network namespaces
    rustc-web cargo-web rust-web-src lld qemu-system-arm  # STM32 firmware, run on QEMU's netduinoplus2
    postgresql libssl-dev pkg-config      # the PostgreSQL store: a real server; the TLS client's build
)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# onnxruntime's C library, which the agent loads at run time (no download at build time). Debian
# packages none, so it comes from the `onnxruntime` wheel: into the user site, or into a virtual
# environment this script creates when pip refuses the user site (PEP 668).
if ! python3 -c "import importlib.util as u, sys; sys.exit(u.find_spec('onnxruntime') is None)" 2>/dev/null; then
    if ! python3 -m pip install --user --quiet onnxruntime 2>/dev/null; then
        dpkg-query -W -f='${Status}' python3-venv 2>/dev/null | grep -q "install ok installed" || {
            $sudo apt-get update -qq
            DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends python3-venv python3-pip
        }
        python3 -m venv .gauntlet-venv
        .gauntlet-venv/bin/pip install --quiet onnxruntime
        # The agent's discovery asks `python3`; the venv's comes first on PATH.
        export PATH="$PWD/.gauntlet-venv/bin:$PATH"
    fi
fi

# The emulated Raspberry Pi (harness/gauntlet/tests/emulated_pi.rs): the aarch64 agent and the
# onnxruntime wheel's aarch64 library (scripts/cross-agent.sh, Debian's cross toolchain) and the
# arm64 board's root filesystem from Debian's archive (scripts/emulated-pi.sh), each cached. The
# agent is built unoptimised (Cargo.toml's `emulated-test` profile): an optimised cold build of
# tract for aarch64 alone took 14 of CI's 2-core minutes, and the test checks answers, not speed.
# GAUNTLET_EMULATED_PI=0 leaves the board out (its tests then print SKIPPED).
if [ "${GAUNTLET_EMULATED_PI:-1}" = 1 ]; then
    export GAUNTLET_EMULATED_PI=1 GAUNTLET_CROSS_PROFILE="${GAUNTLET_CROSS_PROFILE:-emulated-test}"
    export GAUNTLET_AGENT_AARCH64_UNKNOWN_LINUX_GNU="$PWD/target/aarch64-agent/aarch64-unknown-linux-gnu/$GAUNTLET_CROSS_PROFILE/gauntlet-agent"
    started=$SECONDS
    bash scripts/cross-agent.sh
    $sudo bash scripts/emulated-pi.sh image >/dev/null
    echo "test.sh: the emulated Pi's agent and image ready in $((SECONDS - started)) s" >&2
fi

# A throw-away PostgreSQL cluster (temporary folder, loopback port, an unprivileged owner): every
# store test runs on it as well as on SQLite, and the shared-lab tests drive it. Stopped at exit.
export GAUNTLET_TEST_PG_DIR="$(mktemp -d /tmp/gauntlet-pg.XXXXXX)"
trap 'scripts/test-postgres.sh stop' EXIT
GAUNTLET_TEST_PG_URL="$(scripts/test-postgres.sh start)"
export GAUNTLET_TEST_PG_URL

# One feature set for everything: building binaries separately would compile tract twice.
# `cargo test` builds each tested package's binaries too (the integration tests start the real
# `gauntlet` and `gauntlet-agent`).
"$cargo_bin" test --workspace --no-run
"$cargo_bin" test --workspace
