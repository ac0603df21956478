# Sourced by the scripts that make test boards: a network namespace joined to this machine by a
# veth pair, each end with its address in a /30 that exists only on that pair.
#
#   veth_namespace NAMESPACE HOST_IF BOARD_IF HOST_ADDR BOARD_ADDR

veth_namespace() {
    local ns="$1" host_if="$2" board_if="$3" host_addr="$4" board_addr="$5"
    ip netns add "$ns"
    ip link add "$host_if" type veth peer name "$board_if"
    ip link set "$board_if" netns "$ns"
    ip addr add "$host_addr/30" dev "$host_if"
    ip link set "$host_if" up
    ip netns exec "$ns" ip addr add "$board_addr/30" dev "$board_if"
    ip netns exec "$ns" ip link set "$board_if" up
    ip netns exec "$ns" ip link set lo up
}
