#!/bin/bash
# Fault injection: the NAT world with a guest (hotplugged, anti-spoofed)
# and a public address, traffic running, and every second one random
# fault of those xennetd must heal (set and map elements deleted or added,
# the NAT table's sets, a table deleted, ip_forward reset, the bridge
# deleted), for XENNET_DRIFT_LOOP_S seconds (20; the issue's run is 60).
# Then: links, addresses, routes, ruleset with its elements, sysctls as
# before; the guest and its public address reachable; spoofed datagrams
# dropped.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/xenstore.sh"
: "${VIF_XENNET:?}"
export XENNET_SOCKET=$T/ctl.sock
DURATION=${XENNET_DRIFT_LOOP_S:-20}
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
ip -n "$(guest 1)" addr add 10.0.0.99/24 dev eth0
in_ns "$(guest 1)" ping -c 1 -W 1 -q 10.0.0.1 >/dev/null

# What a user compares: kernel_state without what legitimately differs
# after a repair (rule handles, element order, counters).
state() {
	{
		ip -n "$DOM0" -j -d link show | jq -c '[.[] | {ifname, mtu, master, up: (.flags | index("UP") != null), kind: .linkinfo.info_kind}] | sort_by(.ifname)'
		ip -n "$DOM0" -j addr show | jq -c '[.[] | {ifname, a: [.addr_info[] | select(.scope != "link") | "\(.local)/\(.prefixlen)"]}] | sort_by(.ifname)'
		ip -n "$DOM0" -j route show | jq -c 'sort_by(.dst)'
		in_ns "$DOM0" nft -j list ruleset | jq -S -c '.nftables[1:] | walk(if type == "object" then del(.handle) | (if has("counter") then .counter = "c" else . end) else . end) | walk(if type == "object" and has("elem") then .elem |= sort_by(tostring) else . end)'
		sysctl_in "$DOM0" net/ipv4/ip_forward
	}
}
spoofed_count() {
	in_ns "$LAN" "$NETCHECK" count udp "$LAN_IP" 7900 "$1" >"$T/count" &
	local cpid=$!
	sleep 0.2
	NETCHECK_SRC=10.0.0.99 in_ns "$(guest 1)" "$NETCHECK" send udp "$LAN_IP" 7900 spoof "$1" >/dev/null 2>&1 || true
	wait "$cpid" || true
	cat "$T/count"
}
before=$(state)

faults=(
	"nft delete element bridge xennet as_ports '{ \"vif1.0\" }'"
	"nft add element bridge xennet as_ip4 '{ \"vif1.0\" . 0.0.0.0/0 }'"
	"nft delete element bridge xennet as_mac '{ \"vif1.0\" . $mac }'"
	"nft delete element inet xennet map_dnat '{ $PUB }'"
	"nft delete element inet xennet nat_uplinks '{ \"eth0\" }'"
	"nft delete table bridge xennet"
	"echo 0 > /proc/sys/net/ipv4/ip_forward"
	"ip link del xenbr0"
)
# Traffic meanwhile: the LAN pings the guest's public address.
in_ns "$LAN" ping -i 0.1 -W 1 -w "$DURATION" -q "$PUB" >"$T/ping.out" 2>&1 &
PING=$!
BG_PIDS+=("$PING")
RANDOM=42
declare -A applied=()
end=$((SECONDS + DURATION))
while [ $SECONDS -lt $end ]; do
	k=$((RANDOM % ${#faults[@]}))
	in_ns "$DOM0" sh -c "${faults[k]}" 2>/dev/null || true
	applied[$k]=$((${applied[$k]:-0} + 1))
	sleep 1
done
wait "$PING" || true
sleep 2 # the heal window (links: 1 s) and then some
for k in "${!applied[@]}"; do echo "fault applied ${applied[$k]} times: ${faults[k]}"; done
grep -E "packets transmitted" "$T/ping.out" || true

expect "the daemon is alive" daemon_alive
after=$(state)
if [ "$before" != "$after" ]; then
	diff <(echo "$before" | tr ',' '\n') <(echo "$after" | tr ',' '\n') | head -40
	fail "the kernel state differs from before the faults"
fi
pass "links, addresses, routes, ruleset with its elements and ip_forward as before"
expect "the LAN reaches the guest on its public address" ping_from "$LAN" "$PUB"
expect "the guest reaches the LAN" ping_from "$(guest 1)" "$LAN_IP"
expect_eq "no spoofed datagram forwarded after the heal window" 0 "$(spoofed_count 2)"
stop_daemon
