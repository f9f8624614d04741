#!/bin/bash
# Drift of single set and map elements: someone deletes a vif's
# anti-spoofing element or a mapping's, or adds an element of their own.
# xennetd puts each back within 1 s (events, and a check each second),
# and a restart removes what someone added while it was away. Real
# packets: a spoofed datagram is dropped after each heal.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/xenstore.sh"
: "${VIF_XENNET:?}"
export XENNET_SOCKET=$T/ctl.sock

PUB=192.168.50.100
make_lan_and_dom0
start_xenstored
nat_profile "$T/nat.conf"
start_daemon "$T/nat.conf"
make_guest 1 10.0.0.11/24 10.0.0.1
mac=$(ip -n "$(guest 1)" -j link show dev eth0 | jq -r '.[0].address')
libxl_add_vif 1 0 "mac=$mac" ip=10.0.0.11 script="$VIF_XENNET"
expect "online exits 0" run_hotplug "$VIF_XENNET" online 1 0
xn map add "$PUB" 10.0.0.11 >/dev/null
# A second address in the guest to spoof with (its ARP entry for the
# gateway made from the real one first).
ip -n "$(guest 1)" addr add 10.0.0.99/24 dev eth0
in_ns "$(guest 1)" ping -c 1 -W 1 -q 10.0.0.1 >/dev/null

elems() { in_ns "$DOM0" nft -j list set "$1" xennet "$2" | jq -c '[.nftables[].set.elem // empty | .[]]'; }
elems_map() { in_ns "$DOM0" nft -j list map "$1" xennet "$2" | jq -c "[.nftables[].map.elem // empty | .[]]"; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
# wait_for WHAT CMD...: up to 1 s (5 s under valgrind, XENNETD_WRAP),
# polled with nft; prints the ms it took.
slow=1
[ -z "${XENNETD_WRAP:-}" ] || slow=5
wait_for() {
	local what=$1 t0
	shift
	t0=$(now_ms)
	while [ $(($(now_ms) - t0)) -le $((1000 * slow)) ]; do
		if "$@"; then
			echo $(($(now_ms) - t0))
			return 0
		fi
		sleep 0.01
	done
	fail "$what: not healed in time"
}
public_answers() {
	ip netns exec "$(guest 1)" "$NETCHECK" serve tcp 10.0.0.11 7601 5 >/dev/null &
	local spid=$!
	if ! in_ns "$LAN" "$NETCHECK" send tcp "$PUB" 7601 hello 4 >/dev/null; then
		kill "$spid" 2>/dev/null
		return 1
	fi
	wait "$spid"
}

expect_not "a spoofed datagram is dropped" spoofed_arrives "$(guest 1)" 10.0.0.99
expect "the LAN reaches the guest on its public address" public_answers
ports0=$(elems bridge as_ports)
ip40=$(elems bridge as_ip4)
dnat0=$(elems_map inet map_dnat)

# 1. A vif's as_ports element deleted: put back.
has_port() { [ "$(elems bridge as_ports)" == "$ports0" ]; }
in_ns "$DOM0" nft delete element bridge xennet as_ports '{ "vif1.0" }'
ms=$(wait_for "as_ports element" has_port)
pass "as_ports element of vif1.0 put back in $ms ms"
heal_ports=$ms
expect_not "after the heal, a spoofed datagram is dropped" spoofed_arrives "$(guest 1)" 10.0.0.99

# 2. A foreign element that lets vif1.0 send from any address: removed.
in_ns "$DOM0" nft add element bridge xennet as_ip4 '{ "vif1.0" . 0.0.0.0/0 }'
same_ip4() { [ "$(elems bridge as_ip4)" == "$ip40" ]; }
ms=$(wait_for "foreign as_ip4 element" same_ip4)
pass "foreign as_ip4 element removed in $ms ms"
heal_foreign=$ms
expect_not "after the heal, a spoofed datagram is dropped" spoofed_arrives "$(guest 1)" 10.0.0.99

# 3. A vif's as_mac element deleted (the vif is cut off meanwhile: fail
# closed), then put back: traffic again.
in_ns "$DOM0" nft delete element bridge xennet as_mac "{ \"vif1.0\" . $mac }"
mac0() { [ "$(elems bridge as_mac | jq length)" == 1 ]; }
ms=$(wait_for "as_mac element" mac0)
pass "as_mac element put back in $ms ms"

# 4. A mapping's map_dnat element deleted: put back, inbound works.
in_ns "$DOM0" nft delete element inet xennet map_dnat "{ $PUB }"
same_dnat() { [ "$(elems_map inet map_dnat)" == "$dnat0" ]; }
ms=$(wait_for "map_dnat element" same_dnat)
pass "map_dnat element put back in $ms ms"
heal_dnat=$ms
expect "after the heal, the LAN reaches the guest on its public address" public_answers

# 5. The NAT table's fixed sets: the uplink's element deleted (no
# masquerade, and new connections from the uplink into the guest network
# no longer refused) or the guest network's: the table is made again.
uplinks0=$(elems inet nat_uplinks)
nets0=$(elems inet nat_networks)
in_ns "$DOM0" nft delete element inet xennet nat_uplinks '{ "eth0" }'
same_uplinks() { [ "$(elems inet nat_uplinks)" == "$uplinks0" ]; }
ms=$(wait_for "nat_uplinks element" same_uplinks)
pass "nat_uplinks element put back in $ms ms"
in_ns "$DOM0" nft delete element inet xennet nat_networks '{ 10.0.0.0/24 }'
same_nets() { [ "$(elems inet nat_networks)" == "$nets0" ]; }
ms=$(wait_for "nat_networks element" same_nets)
pass "nat_networks element put back in $ms ms"
expect_eq "the vif's elements are still there" "$ports0" "$(elems bridge as_ports)"
expect_eq "the mapping is still there" "$dnat0" "$(elems_map inet map_dnat)"
src=$(exchange udp "$(guest 1)" "$LAN" "$LAN_IP" 7603) || fail "guest -> LAN after the NAT sets healed"
expect_eq "the guest leaves with its public address again" "$PUB" "$src"

# 6. Fail closed: with the daemon stopped (nothing heals), a vif whose
# as_ports element is gone is still checked (its device group), with what
# is left of its elements: its own traffic passes, spoofed does not.
expect_eq "the vif is in xennet's device group" 7890286 \
	"$(ip -n "$DOM0" -d -j link show vif1.0 | jq -r '.[0].group')"
legit_arrives() { exchange udp "$(guest 1)" "$LAN" "$LAN_IP" 7602 >/dev/null; }
stop_daemon
in_ns "$DOM0" nft delete element bridge xennet as_ports '{ "vif1.0" }'
expect_not "without its as_ports element, a spoofed datagram is still dropped" spoofed_arrives "$(guest 1)" 10.0.0.99
expect "without its as_ports element, the vif's own traffic passes" legit_arrives

# 7. Foreign elements added while the daemon is away: a restart removes
# them (and puts the missing one back).
in_ns "$DOM0" nft add element bridge xennet as_ip4 '{ "vif1.0" . 10.0.0.0/24 }'
in_ns "$DOM0" nft add element bridge xennet as_ports '{ "vif9.0" }'
start_daemon "$T/nat.conf"
ms=$(wait_for "foreign as_ip4 element after a restart" same_ip4)
wait_for "foreign as_ports element after a restart" has_port >/dev/null
pass "a restart removed the foreign elements ($ms ms after the control socket)"
expect_not "after the restart, a spoofed datagram is dropped" spoofed_arrives "$(guest 1)" 10.0.0.99
expect "the daemon logged the repair" grep -q "set elements were changed by someone" "$T/daemon.log"
echo "heal times (ms, polled every 10 ms with nft): as_ports $heal_ports, foreign as_ip4 $heal_foreign, map_dnat $heal_dnat"
