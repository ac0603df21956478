#!/usr/bin/env bash
# An emulated Raspberry Pi for the linux-ssh driver: an arm64 Debian 12 root filesystem, built only
# from Debian's package archive, whose own (arm64) sshd runs in a network namespace under QEMU's
# user-mode emulation. Everything a session runs there (the shell, sha256sum, the agent) is arm64
# code executed instruction by instruction on this x86 machine, so its times are labelled emulated.
#
#   scripts/emulated-pi.sh image   # builds the root filesystem, or finds it cached; prints its path
#   scripts/emulated-pi.sh up      # image, then starts the board; idempotent: a live board is kept
#   scripts/emulated-pi.sh down    # cuts the board's power: kills every process in its namespace,
#                                  # removes the namespace, the overlay and the state
#
# The image is cached by content under $GAUNTLET_EMULATED_PI_IMAGES (default target/emulated-pi):
# rootfs-<key>/, where <key> hashes the recipe below (suite, architecture, packages, mirror). A new
# recipe builds a new image and removes the old one. The board runs on an overlay of the image, so
# the image stays as built and `down` forgets everything the board wrote (its agent cache too).
#
# State lives in $GAUNTLET_EMULATED_PI_STATE (default /tmp/gauntlet-emulated-pi), as rigs/emulated-pi.toml
# expects: user_key (root's key on the board), known_hosts (the board's real host key), sshd.pid.
# The board is 10.231.8.2, reached from 10.231.8.1 on a veth pair that exists only inside this
# machine (scripts/ssh-test-boards.sh uses 10.231.7.0/24). Needs root: namespaces, mounts, binfmt.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/netns.sh
. scripts/netns.sh

state="${GAUNTLET_EMULATED_PI_STATE:-/tmp/gauntlet-emulated-pi}"
images="${GAUNTLET_EMULATED_PI_IMAGES:-$PWD/target/emulated-pi}"
ns="gauntlet-pi"
veth_host="gnt-pi-h"
veth_board="gnt-pi-b"
host_addr="10.231.8.1"
board_addr="10.231.8.2"
qemu_cpu="cortex-a72"     # a Raspberry Pi 4's core

# The recipe: what the image is. Changing any line changes the key and so rebuilds it.
suite="bookworm"
mirror="http://deb.debian.org/debian"
# minbase has coreutils (sha256sum, df) and libc-bin (getconf) for deployment and health checks;
# procps gives the board `ps` and `free` for whoever logs in to look.
include="openssh-server,procps"
recipe="suite=$suite arch=arm64 variant=minbase include=$include mirror=$mirror no-docs=1 v=1"
key="$(printf '%s' "$recipe" | sha256sum | cut -c1-16)"
image="$images/rootfs-$key"

say() { echo "emulated-pi: $*" >&2; }

need_root() {
    if [ "$(id -u)" -ne 0 ]; then
        say "needs root (network namespace, overlay mount, binfmt_misc registration)"
        exit 1
    fi
}

install_missing() {
    local missing=() p
    for p in qemu-user-static mmdebstrap arch-test openssh-client iproute2 util-linux; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        say "installing ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
}

# The kernel runs arm64 binaries through qemu-aarch64-static once binfmt_misc knows it. The `F`
# flag opens the interpreter now, so it works inside the board's chroot without a copy there.
register_binfmt() {
    local fs=/proc/sys/fs/binfmt_misc
    [ -e "$fs/register" ] || mount -t binfmt_misc binfmt_misc "$fs" || {
        say "cannot mount binfmt_misc at $fs: arm64 binaries cannot run on this machine"
        exit 1
    }
    [ -e "$fs/qemu-aarch64" ] && return 0
    local conf=/usr/lib/binfmt.d/qemu-aarch64.conf
    [ -r "$conf" ] || { say "no $conf: is qemu-user-static installed?"; exit 1; }
    tr -d '\n' <"$conf" >"$fs/register" || {
        say "cannot register qemu-aarch64 with binfmt_misc (from $conf)"
        exit 1
    }
}

build_image() {
    if [ -e "$image/.complete" ]; then
        echo "$image"
        return 0
    fi
    need_root
    install_missing
    register_binfmt
    mkdir -p "$images"
    # Disk is precious: an image of an older recipe, or a build that died half-way, goes.
    find "$images" -mindepth 1 -maxdepth 1 -name 'rootfs-*' ! -name "rootfs-$key" -exec rm -rf {} +
    rm -rf "$image" "$image.tmp"
    say "building the arm64 root filesystem ($recipe) into $image"
    local started=$SECONDS
    # Documentation, manual pages and translations are a third of a minimal system and nobody
    # reads them on a test board.
    mmdebstrap --mode=root --arch=arm64 --variant=minbase --include="$include" \
        --aptopt='Apt::Install-Recommends "false"' \
        --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
        --dpkgopt='path-include=/usr/share/doc/*/copyright' \
        --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*' \
        --customize-hook='rm -f "$1"/etc/ssh/ssh_host_*' \
        --customize-hook='rm -rf "$1"/var/cache/apt/* "$1"/var/lib/apt/lists/*' \
        --quiet "$suite" "$image.tmp" "deb $mirror $suite main" >&2
    mkdir -p "$image.tmp/etc/gauntlet" "$image.tmp/run/sshd"
    printf '%s\n' "$recipe" >"$image.tmp/etc/gauntlet/recipe"
    touch "$image.tmp/.complete"
    mv "$image.tmp" "$image"
    say "image built in $((SECONDS - started)) s ($(du -sh "$image" | cut -f1))"
    echo "$image"
}

board_live() {
    [ -s "$state/sshd.pid" ] && kill -0 "$(cat "$state/sshd.pid")" 2>/dev/null &&
        [ -e "$state/root/etc/gauntlet/recipe" ] &&
        cmp -s "$state/root/etc/gauntlet/recipe" <(printf '%s\n' "$recipe")
}

down() {
    local pids
    if ip netns list 2>/dev/null | awk '{print $1}' | grep -qx "$ns"; then
        # Every process of the board at once, as a pulled plug would: sshd, sessions, agents.
        pids="$(ip netns pids "$ns" 2>/dev/null || true)"
        if [ -n "$pids" ]; then
            # shellcheck disable=SC2086
            kill -9 $pids 2>/dev/null || true
            for _ in $(seq 1 100); do
                [ -z "$(ip netns pids "$ns" 2>/dev/null)" ] && break
                sleep 0.05
            done
        fi
        ip netns del "$ns"
    fi
    ip link del "$veth_host" 2>/dev/null || true
    if mountpoint -q "$state/root" 2>/dev/null; then umount "$state/root" || umount -l "$state/root"; fi
    rm -rf "${state:?}/upper" "$state/work" "$state/root" "$state/sshd.pid" "$state/known_hosts" \
        "$state/user_key" "$state/user_key.pub"
}

wait_for_sshd() {
    local i
    for i in $(seq 1 600); do
        if ip netns exec "$ns" bash -c "exec 3<>/dev/tcp/$board_addr/22 && head -c 4 <&3" 2>/dev/null |
            grep -q SSH-; then
            return 0
        fi
        kill -0 "$(cat "$state/sshd.pid")" 2>/dev/null || break
        sleep 0.05
    done
    say "the board's sshd did not start; its log:"
    cat "$state/root/var/log/gauntlet-sshd.log" >&2 || true
    exit 1
}

up() {
    need_root
    build_image >/dev/null
    register_binfmt
    if board_live; then
        say "board already up at $board_addr: $state"
        return 0
    fi
    down
    local started=$SECONDS root="$state/root"
    mkdir -p "$state/upper" "$state/work" "$root"
    chmod 755 "$state"
    mount -t overlay gauntlet-pi -o "lowerdir=$image,upperdir=$state/upper,workdir=$state/work" "$root"

    ssh-keygen -q -t ed25519 -N '' -C gauntlet-emulated-pi-user -f "$state/user_key"
    ssh-keygen -q -t ed25519 -N '' -C gauntlet-emulated-pi -f "$root/etc/gauntlet/host_key"
    install -d -m 700 "$root/root/.ssh"
    install -m 600 "$state/user_key.pub" "$root/root/.ssh/authorized_keys"
    echo "$board_addr $(cut -d' ' -f1,2 "$root/etc/gauntlet/host_key.pub")" >"$state/known_hosts"
    # The CPU is QEMU's Cortex-A72 model, a Pi 4's core: tract and onnxruntime choose the kernels a
    # Pi 4 would (no dot-product or SVE instructions). User-mode emulation shows the host's own
    # /proc/cpuinfo, which aarch64 code cannot parse (onnxruntime's cpuinfo crashes on x86's), so
    # the board gets what a Pi 4's kernel reports for that core, one entry per host core.
    local i
    for i in $(seq 0 $(($(nproc) - 1))); do
        printf 'processor\t: %d\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\n' "$i"
        printf 'CPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd08\n'
        printf 'CPU revision\t: 3\n\n'
    done >"$root/etc/gauntlet/cpuinfo"
    cat >"$root/etc/gauntlet/sshd_config" <<EOF
Port 22
ListenAddress $board_addr
HostKey /etc/gauntlet/host_key
PidFile /run/gauntlet-sshd.pid
AuthorizedKeysFile /root/.ssh/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
StrictModes no
UsePAM no
MaxSessions 64
MaxStartups 64
Subsystem sftp internal-sftp
SetEnv QEMU_CPU=$qemu_cpu
EOF

    veth_namespace "$ns" "$veth_host" "$veth_board" "$host_addr" "$board_addr"

    # The board's /proc, /dev and /sys live in a mount namespace of its own, so they vanish with
    # its last process. setsid: the board outlives this script and the test that started it.
    QEMU_CPU="$qemu_cpu" setsid ip netns exec "$ns" unshare --mount --propagation private sh -c '
        r="$1"
        mount -t proc proc "$r/proc" && mount --bind "$r/etc/gauntlet/cpuinfo" "$r/proc/cpuinfo" &&
        mount --rbind /dev "$r/dev" && mount --rbind /sys "$r/sys" &&
        exec chroot "$r" /usr/sbin/sshd -D -f /etc/gauntlet/sshd_config -E /var/log/gauntlet-sshd.log
    ' sh "$root" </dev/null >/dev/null 2>&1 &
    echo $! >"$state/sshd.pid"
    wait_for_sshd
    say "board up at $board_addr in $((SECONDS - started)) s: $state"
}

main() {
    local cmd="${1:-up}"
    mkdir -p "$state"
    exec 9>"$state.lock"
    flock 9
    case "$cmd" in
    image) build_image ;;
    up) up ;;
    down) need_root; down; say "board down" ;;
    *) say "usage: $0 image | up | down"; exit 2 ;;
    esac
}

main "$@"
