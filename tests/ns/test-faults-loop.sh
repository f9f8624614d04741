#!/bin/bash
# Fault injection (issue 14, "Proof"): the NAT world with traffic, and a
# random fault from the list below every second for XENNET_FAULT_SECONDS
# (60). Then, after the heal window: the ruleset with its sets and maps,
# the sysctls, the bridge and its ports, Dom0's addresses and routes equal
# to what they were (what the profile, the vifs and the mappings want),
# every acknowledged mapping present and carrying traffic, and no spoofed
# packet forwarded.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/xenstore.sh"
: "${VIF_XENNET:?}"
export XENNET_SOCKET=$T/ctl.sock
SECONDS_OF_FAULTS=${XENNET_FAULT_SECONDS:-60}
PUB=192.168.50.100 PUB2=192.168.50.101

make_lan_and_dom0
start_xenstored
nat_profile "$T/nat.conf"
start_daemon "$T/nat.conf"
for n in 1 2; do
	make_guest $n 10.0.0.1$n/24 10.0.0.1
	libxl_add_vif $n 0 "mac=$(mac_of "$(guest $n)" eth0)" ip=10.0.0.1$n script="$VIF_XENNET"
	expect "vif $n online" run_hotplug "$VIF_XENNET" online $n 0
done
expect "map add" xn map add "$PUB" 10.0.0.11
expect "forward add" xn forward add "$PUB2:8080/tcp" 10.0.0.12:80
ip -n "$(guest 1)" addr add 10.0.0.99/24 dev eth0
in_ns "$(guest 1)" ping -c 1 -W 1 -q 10.0.0.1 >/dev/null

# What a user compares: rules, sets and maps (no counters or handles),
# links with their masters, addresses, routes, the sysctls.
world() {
	in_ns "$DOM0" nft -j list ruleset | jq -S -c '[.nftables[1:][] | walk(if type == "object" then del(.handle) | (if has("counter") then .counter = "c" else . end) | (if has("packets") then del(.packets, .bytes) else . end) else . end)] | map(if .set then .set.elem |= (. // [] | sort_by(tostring)) elif .map then .map.elem |= (. // [] | sort_by(tostring)) else . end)'
	ip -n "$DOM0" -j link show | jq -c '[.[] | {ifname, master, up: (.flags | index("UP") != null)}] | sort_by(.ifname)'
	ip -n "$DOM0" -j addr show | jq -c '[.[] | {ifname, a: [.addr_info[] | select(.scope != "link") | "\(.local)/\(.prefixlen)"]}] | sort_by(.ifname)'
	ip -n "$DOM0" -j route show | jq -c 'sort_by(.dst)'
	sysctl_in "$DOM0" net/ipv4/ip_forward
}
want=$(world)

reaches() { # reaches ADDR PORT GUEST_ADDR GUEST_PORT GUEST: the LAN reaches the guest's port through ADDR:PORT
	ip netns exec "$(guest "$5")" "$NETCHECK" serve tcp "$3" "$4" 5 >/dev/null &
	local spid=$!
	if ! in_ns "$LAN" "$NETCHECK" send tcp "$1" "$2" hello 4 >/dev/null; then
		kill "$spid" 2>/dev/null
		return 1
	fi
	wait "$spid"
}
expect "before: the map carries traffic" reaches "$PUB" 7700 10.0.0.11 7700 1
expect "before: the forward carries traffic" reaches "$PUB2" 8080 10.0.0.12 80 2
expect_not "before: a spoofed datagram is dropped" spoofed_arrives "$(guest 1)" 10.0.0.99

# Traffic all along: guest 2 pings the LAN.
in_ns "$(guest 2)" ping -q -i 0.1 -w $((SECONDS_OF_FAULTS + 15)) "$LAN_IP" >"$T/ping.out" 2>&1 &
BG_PIDS+=($!)

mac1=$(mac_of "$(guest 1)" eth0)
faults=(as_ports as_mac map_dnat nat_uplinks foreign_elem ip_forward bridge_deleted table_deleted
	port_released kill_restart)
fault() {
	case $1 in
	as_ports) in_ns "$DOM0" nft delete element bridge xennet as_ports '{ "vif1.0" }' ;;
	as_mac) in_ns "$DOM0" nft delete element bridge xennet as_mac "{ \"vif1.0\" . $mac1 }" ;;
	map_dnat) in_ns "$DOM0" nft delete element inet xennet map_dnat "{ $PUB }" ;;
	nat_uplinks) in_ns "$DOM0" nft flush set inet xennet nat_uplinks ;;
	foreign_elem) in_ns "$DOM0" nft add element bridge xennet as_ip4 '{ "vif1.0" . 0.0.0.0/0 }' ;;
	ip_forward) in_ns "$DOM0" sh -c 'echo 0 > /proc/sys/net/ipv4/ip_forward' ;;
	bridge_deleted) ip -n "$DOM0" link del xenbr0 ;;
	table_deleted) in_ns "$DOM0" nft delete table inet xennet ;;
	port_released) ip -n "$DOM0" link set vif2.0 nomaster ;;
	kill_restart)
		kill -KILL "$DPID"
		wait "$DPID" 2>/dev/null || true
		DPID=
		rm -f "$T/ctl.sock"
		start_daemon "$T/nat.conf" ;;
	esac
}
declare -A count
end=$((SECONDS + SECONDS_OF_FAULTS))
while [ $SECONDS -lt $end ]; do
	f=${faults[RANDOM % ${#faults[@]}]}
	fault "$f" 2>/dev/null || true # one may find its target gone already
	count[$f]=$((${count[$f]:-0} + 1))
	sleep 1
done
summary=
for f in "${faults[@]}"; do summary+="$f ${count[$f]:-0}, "; done
pass "faults applied: ${summary%, }"

# The heal window: links within 2 s, the rest within 1 s.
healed=
for _ in $(seq 40); do
	if [ "$(world)" == "$want" ]; then healed=1; break; fi
	sleep 0.1
done
if [ -z "$healed" ]; then
	diff <(echo "$want" | tr ',' '\n') <(world | tr ',' '\n') >&2 || true
	fail "the world is not as wanted 4 s after the last fault"
fi
pass "ruleset, sets, maps, links, addresses, routes and sysctls are as wanted"
expect_eq "every acknowledged mapping is listed" "$PUB,$PUB2" \
	"$(xn map list --json | jq -r '[.maps[].public] | join(",")'),$(xn forward list --json | jq -r '[.forwards[].public | sub(":.*"; "")] | join(",")')"
expect "the map carries traffic" reaches "$PUB" 7701 10.0.0.11 7701 1
expect "the forward carries traffic" reaches "$PUB2" 8080 10.0.0.12 80 2
expect_not "no spoofed datagram is forwarded" spoofed_arrives "$(guest 1)" 10.0.0.99
expect "xennetd is alive" daemon_alive
