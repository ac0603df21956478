#!/usr/bin/env bash
# Starts N real sshd "boards" for the SSH deployment tests (harness/ssh/tests) and writes where they are.
#
#   scripts/ssh-test-boards.sh up [N]     # default N=3; idempotent: boards already up are kept
#   scripts/ssh-test-boards.sh down       # stops the boards and removes namespaces, mounts and state
#
# State lives in $GAUNTLET_SSH_BOARDS (default /tmp/gauntlet-ssh-boards):
#   boards.tsv            one board a line: id host port user identity cache_dir (tab-separated)
#   mode                  `netns` (each board in its own network namespace with its own address) or
#                         `loopback` (sshd instances on 127.0.0.1 with distinct ports)
#   known_hosts           the boards' real host keys
#   known_hosts_impostor  the same hosts paired with a different key (host-key-mismatch test)
#   small_cache           a 1 MiB tmpfs directory (disk-full test); empty when it could not be mounted
#
# Network namespaces need root. The boards' addresses are a private /24 (10.231.7.0/24, one /30 per
# board) that exists only on veth pairs inside this machine's own namespaces: no traffic leaves it.
set -euo pipefail
# shellcheck source=scripts/netns.sh
. "$(dirname "$0")/netns.sh"

state="${GAUNTLET_SSH_BOARDS:-/tmp/gauntlet-ssh-boards}"
subnet="10.231.7"
ns_prefix="gauntlet-b"
veth_prefix="gnt"
loop_base_port=22201

say() { echo "ssh-test-boards: $*" >&2; }

install_missing() {
    local missing=()
    command -v sshd >/dev/null || [ -x /usr/sbin/sshd ] || missing+=(openssh-server)
    command -v ssh >/dev/null || missing+=(openssh-client)
    command -v ssh-keygen >/dev/null || missing+=(openssh-client)
    command -v ip >/dev/null || missing+=(iproute2)
    command -v flock >/dev/null || missing+=(util-linux)
    if [ "${#missing[@]}" -gt 0 ]; then
        if [ "$(id -u)" -ne 0 ]; then
            say "missing ${missing[*]} and not root: install them first"
            exit 1
        fi
        say "installing ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
}

sshd_bin() { command -v sshd || echo /usr/sbin/sshd; }

netns_usable() {
    [ "$(id -u)" -eq 0 ] || return 1
    local probe="${ns_prefix}-probe$$"
    ip netns add "$probe" 2>/dev/null || return 1
    ip netns del "$probe"
}

# Whether every board listed in boards.tsv has a live sshd; then `up` has nothing to do.
all_up() {
    [ -s "$state/boards.tsv" ] || return 1
    if [ -s "$state/small_cache" ]; then mountpoint -q "$(cat "$state/small_cache")" || return 1; fi
    local id
    while IFS=$'\t' read -r id _; do
        [ -s "$state/$id/sshd.pid" ] && kill -0 "$(cat "$state/$id/sshd.pid")" 2>/dev/null || return 1
    done <"$state/boards.tsv"
}

down() {
    local d
    for d in "$state"/b*/; do
        [ -d "$d" ] || continue
        if [ -s "$d/sshd.pid" ]; then kill "$(cat "$d/sshd.pid")" 2>/dev/null || true; fi
    done
    for d in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^${ns_prefix}[0-9]*$" || true); do
        ip netns pids "$d" 2>/dev/null | xargs -r kill 2>/dev/null || true
        ip netns del "$d"
    done
    for d in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1 | grep "^${veth_prefix}-h[0-9]*$" || true); do
        ip link del "$d" 2>/dev/null || true
    done
    if mountpoint -q "$state/small_cache_dir" 2>/dev/null; then umount "$state/small_cache_dir"; fi
    rm -rf "${state:?}"/b* "$state"/boards.tsv "$state"/mode "$state"/known_hosts* "$state"/small_cache \
        "$state"/small_cache_dir "$state"/user_key* "$state"/authorized_keys "$state"/impostor_key*
}

# Waits until sshd answers with a banner, so the tests never race its start.
wait_for_sshd() {
    local ns="$1" host="$2" port="$3" log="$4" i
    for i in $(seq 1 100); do
        if $ns bash -c "exec 3<>/dev/tcp/$host/$port && head -c 4 <&3" 2>/dev/null | grep -q SSH-; then
            return 0
        fi
        sleep 0.05
    done
    say "sshd on $host:$port did not start; its log:"
    cat "$log" >&2
    exit 1
}

up() {
    local n="$1" mode user i id host port ns dir
    install_missing
    mkdir -p "$state"
    if all_up; then
        say "boards already up ($(cat "$state/mode")): $state/boards.tsv"
        return 0
    fi
    down
    mkdir -p "$state" /run/sshd
    chmod 755 "$state"
    if netns_usable; then mode=netns; else mode=loopback; fi
    say "mode: $mode ($([ "$mode" = netns ] && echo "one network namespace per board" ||
        echo "network namespaces unavailable: sshd instances on 127.0.0.1"))"
    echo "$mode" >"$state/mode"
    user="$(id -un)"

    ssh-keygen -q -t ed25519 -N '' -C gauntlet-test-user -f "$state/user_key"
    cp "$state/user_key.pub" "$state/authorized_keys"
    ssh-keygen -q -t ed25519 -N '' -C gauntlet-test-impostor -f "$state/impostor_key"
    : >"$state/known_hosts"
    : >"$state/known_hosts_impostor"
    : >"$state/boards.tsv.new"

    # Mounted before any sshd starts: each board's namespace copies the mounts that exist then.
    mkdir -p "$state/small_cache_dir"
    if [ "$(id -u)" -eq 0 ] && mount -t tmpfs -o size=1m gauntlet-small-cache "$state/small_cache_dir"; then
        echo "$state/small_cache_dir" >"$state/small_cache"
    else
        say "could not mount a 1 MiB tmpfs: the disk-full test will be skipped"
        : >"$state/small_cache"
    fi

    for i in $(seq 1 "$n"); do
        id="b$i"
        dir="$state/$id"
        mkdir -p "$dir"
        ssh-keygen -q -t ed25519 -N '' -C "gauntlet-test-$id" -f "$dir/host_key"
        if [ "$mode" = netns ]; then
            host="$subnet.$((4 * i + 2))"
            port=22
            veth_namespace "$ns_prefix$i" "$veth_prefix-h$i" "$veth_prefix-b$i" \
                "$subnet.$((4 * i + 1))" "$host"
            ns="ip netns exec $ns_prefix$i"
        else
            host=127.0.0.1
            port=$((loop_base_port + i - 1))
            ns=""
        fi
        cat >"$dir/sshd_config" <<EOF
Port $port
ListenAddress $host
HostKey $dir/host_key
PidFile $dir/sshd.pid
AuthorizedKeysFile $state/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
StrictModes no
UsePAM no
AllowUsers $user
MaxSessions 64
MaxStartups 64
Subsystem sftp internal-sftp
EOF
        # setsid: sshd must outlive this script and the test process that may have started it.
        setsid $ns "$(sshd_bin)" -D -f "$dir/sshd_config" -E "$dir/sshd.log" </dev/null >/dev/null 2>&1 &
        wait_for_sshd "$ns" "$host" "$port" "$dir/sshd.log"
        local known="$host"
        [ "$port" = 22 ] || known="[$host]:$port"
        echo "$known $(cut -d' ' -f1,2 "$dir/host_key.pub")" >>"$state/known_hosts"
        echo "$known $(cut -d' ' -f1,2 "$state/impostor_key.pub")" >>"$state/known_hosts_impostor"
        mkdir -p "$dir/cache"
        printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$id" "$host" "$port" "$user" "$state/user_key" "$dir/cache" \
            >>"$state/boards.tsv.new"
    done

    mv "$state/boards.tsv.new" "$state/boards.tsv"
    say "$n boards up ($mode): $state/boards.tsv"
}

main() {
    local cmd="${1:-up}"
    mkdir -p "$(dirname "$state")"
    # One caller at a time: test binaries run in parallel and each may call `up`.
    exec 9>"$state.lock"
    flock 9
    case "$cmd" in
    up) up "${2:-3}" ;;
    down) down; say "boards down" ;;
    *) say "usage: $0 up [N] | down"; exit 2 ;;
    esac
}

main "$@"
