#!/bin/bash
# Restarting xennetd while vifs are up and traffic flows: no packet lost,
# nothing duplicated; a vif removed while the daemon was away is cleaned
# up; one that appeared meanwhile is configured.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/xenstore.sh"
: "${VIF_XENNET:?}"
export XENNET_SOCKET=$T/ctl.sock

make_lan_and_dom0
start_xenstored
nat_profile "$T/nat.conf"
start_daemon "$T/nat.conf"
mac_of() { ip -n "$1" -j link show dev "$2" | jq -r '.[0].address'; }
for n in 1 2; do
	make_guest "$n" "10.0.0.1$n/24" 10.0.0.1
	libxl_add_vif "$n" 0 "mac=$(mac_of "$(guest "$n")" eth0)" ip="10.0.0.1$n" script="$VIF_XENNET"
	expect "vif$n.0 online" run_hotplug "$VIF_XENNET" online "$n" 0
done
expect "guest 1 reaches the LAN" ping_from "$(guest 1)" "$LAN_IP"
link_before=$(ip -n "$DOM0" -j link show vif1.0 | jq -c '.[0] | {ifindex, master, flags, address, mtu}')

in_ns "$(guest 1)" ping -c 150 -i 0.02 -W 1 "$LAN_IP" >"$T/ping.out" 2>&1 &
ppid=$!
sleep 0.3
stop_daemon
# While the daemon is away: guest 2 goes, guest 3 comes (no script run).
ip -n "$DOM0" link del vif2.0
libxl_destroy_vif 2 0
make_guest 3 10.0.0.13/24 10.0.0.1
libxl_add_vif 3 0 "mac=$(mac_of "$(guest 3)" eth0)" ip=10.0.0.13 script="$VIF_XENNET"
start_daemon "$T/nat.conf"
wait "$ppid" || true
loss=$(sed -n 's/.* \([0-9.]*\)% packet loss.*/\1/p' "$T/ping.out")
expect_eq "no packet lost across the restart" 0 "$loss"
expect_eq "vif1.0 adopted untouched (same ifindex, flags, MAC, port)" "$link_before" \
	"$(ip -n "$DOM0" -j link show vif1.0 | jq -c '.[0] | {ifindex, master, flags, address, mtu}')"
elems() { nft_json | jq -r '.nftables[] | select(.set.family == "bridge" and .set.name == "as_ports") | .set.elem[]?'; }
expect_eq "vif1.0 filtered exactly once" 1 "$(elems | grep -cx vif1.0)"
expect_eq "the vanished vif2.0 left no filter element" 0 "$(elems | grep -c vif2.0 || true)"
for _ in $(seq 50); do [ "$(xs_read backend/vif/3/0/hotplug-status)" = connected ] && break; sleep 0.1; done
expect_eq "vif3.0, added meanwhile, is configured on start" connected "$(xs_read backend/vif/3/0/hotplug-status)"
expect_eq "vif3.0 on the guest bridge" xenbr0 "$(ip -n "$DOM0" -j link show vif3.0 | jq -r '.[0].master')"
expect "guest 3 reaches the LAN" ping_from "$(guest 3)" "$LAN_IP"
ip -n "$(guest 1)" addr add 10.0.0.99/24 dev eth0
set +e
NETCHECK_SRC=10.0.0.99 exchange udp "$(guest 1)" "$LAN" "$LAN_IP" 7601 >/dev/null 2>&1
rc=$?
set -e
expect_eq "the spoof filter still holds for guest 1 after the restart" 1 "$rc"

# A tampered table is replaced at start, before xenstore answers: the
# filter elements of the vifs it does not know yet are kept meanwhile.
stop_daemon
in_ns "$DOM0" nft add rule bridge xennet antispoof counter
XENSTORED_PATH=$T/no-xenstored start_daemon "$T/nat.conf"
expect "the daemon replaced the tampered tables" grep -q "replace the nftables tables" <(tail -n 20 "$T/daemon.log")
expect_eq "vif1.0 is still under anti-spoofing, with xenstore unreachable" 1 "$(elems | grep -cx vif1.0)"
set +e
NETCHECK_SRC=10.0.0.99 exchange udp "$(guest 1)" "$LAN" "$LAN_IP" 7602 >/dev/null 2>&1
rc=$?
set -e
expect_eq "and spoofed packets are still dropped" 1 "$rc"
