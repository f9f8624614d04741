#!/bin/bash
# A deleted bridge (bridged mode, take_addresses): xennetd makes it
# again, puts Dom0's address and default route back on it, and its vifs
# join it again, within 2 s; the guests and Dom0 reach the LAN.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/xenstore.sh"
: "${VIF_XENNET:?}"
export XENNET_SOCKET=$T/ctl.sock

make_lan_and_dom0
start_xenstored
bridged_profile "$T/bridged.conf"
start_daemon "$T/bridged.conf"
for n in 1 2; do
	make_guest $n 192.168.50.1$n/24 "$LAN_IP"
	libxl_add_vif $n 0 bridge=xenbr0 "mac=$(mac_of "$(guest $n)" eth0)" ip=192.168.50.1$n script="$VIF_XENNET"
	expect "vif $n online exits 0" run_hotplug "$VIF_XENNET" online $n 0
done
expect "Dom0 reaches the LAN through xenbr0" ping_from "$DOM0" "$LAN_IP"
expect "guest 1 reaches the LAN" ping_from "$(guest 1)" "$LAN_IP"

now_ms() { echo $(($(date +%s%N) / 1000000)); }
# Under valgrind (XENNETD_WRAP) everything takes several times longer.
slow=1
[ -z "${XENNETD_WRAP:-}" ] || slow=5
limit=$((2000 * slow))
healed() {
	[ "$(ip -n "$DOM0" -j link show vif1.0 | jq -r '.[0].master')" = xenbr0 ] &&
		[ "$(ip -n "$DOM0" -j link show vif2.0 | jq -r '.[0].master')" = xenbr0 ] &&
		[ "$(ip -n "$DOM0" -j link show eth0 | jq -r '.[0].master')" = xenbr0 ] &&
		[ "$(ip -n "$DOM0" -j addr show dev xenbr0 | jq -r '.[0].addr_info[] | select(.family == "inet") | .local')" = "$DOM0_IP" ] &&
		[ "$(ip -n "$DOM0" -j route show default | jq -r '.[0].dev')" = xenbr0 ]
}
for round in 1 2; do
	t0=$(now_ms)
	ip -n "$DOM0" link del xenbr0
	ok=
	while [ $(($(now_ms) - t0)) -le $((limit + 1000)) ]; do
		if healed; then ok=1; break; fi
		sleep 0.01
	done
	[ -n "$ok" ] || {
		ip -n "$DOM0" -br link; ip -n "$DOM0" -br addr; ip -n "$DOM0" route
		fail "round $round: the bridge, its ports, address and route are not back"
	}
	ms=$(($(now_ms) - t0))
	expect "round $round: back within $limit ms ($ms ms)" test "$ms" -le "$limit"
	expect "round $round: Dom0 reaches the LAN" ping_from "$DOM0" "$LAN_IP"
	expect "round $round: guest 1 reaches the LAN" ping_from "$(guest 1)" "$LAN_IP"
	expect "round $round: guest 2 reaches guest 1" ping_from "$(guest 2)" 192.168.50.11
	expect_eq "round $round: vifs still connected" "connected connected" \
		"$(xs_read backend/vif/1/0/hotplug-status) $(xs_read backend/vif/2/0/hotplug-status)"
done
# Deleted while the daemon is away: a restart makes it again, with the
# address, the route and the vifs.
stop_daemon
ip -n "$DOM0" link del xenbr0
start_daemon "$T/bridged.conf"
t0=$(now_ms)
while ! healed && [ $(($(now_ms) - t0)) -le $((limit + 1000)) ]; do sleep 0.01; done
expect "after a restart: the bridge, its ports, address and route are back" healed
expect "after a restart: guest 1 reaches the LAN" ping_from "$(guest 1)" "$LAN_IP"
expect "after a restart: Dom0 reaches the LAN" ping_from "$DOM0" "$LAN_IP"
# Anti-spoofing still on after the bridge came back.
ip -n "$(guest 1)" addr add 192.168.50.99/24 dev eth0
set +e
NETCHECK_SRC=192.168.50.99 exchange udp "$(guest 1)" "$LAN" "$LAN_IP" 7801 >/dev/null
rc=$?
set -e
expect_eq "a spoofed datagram is still dropped" 1 "$rc"

# A vif taken off its bridge (the bridge stays), or set down, by someone:
# put back.
for how in "nomaster" "down"; do
	t0=$(now_ms)
	ip -n "$DOM0" link set vif2.0 $how
	ok=
	for _ in $(seq 200); do
		if [ "$(ip -n "$DOM0" -j link show vif2.0 | jq -r '.[0].master')" = xenbr0 ] &&
			ip -n "$DOM0" -j link show vif2.0 | jq -e '.[0].flags | index("UP") != null' >/dev/null; then
			ok=1
			break
		fi
		sleep 0.01
	done
	[ -n "$ok" ] || fail "vif2.0 ($how) not put back within 2 s"
	pass "vif2.0 ($how) put back in $(($(now_ms) - t0)) ms"
	expect "guest 2 reaches guest 1 after it ($how)" ping_from "$(guest 2)" 192.168.50.11
done
expect "the repair is logged" grep -q "vif 2/0 (vif2.0, domain guest2): taken off its bridge, down or out of its device group by someone: put back" "$T/daemon.log"
stop_daemon
