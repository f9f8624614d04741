#!/bin/bash
# Restarting xennetd while vifs are up and traffic flows: no packet lost,
# nothing duplicated; a vif removed while the daemon was away is cleaned
# up; one that appeared meanwhile is configured when its script runs.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/xenstore.sh"
: "${VIF_XENNET:?}"
export XENNET_SOCKET=$T/ctl.sock

make_lan_and_dom0
start_xenstored
nat_profile "$T/nat.conf"
start_daemon "$T/nat.conf"
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
# vif3.0 came meanwhile, its script not run yet: hotplug-status is
# written only in answer to the script libxl runs (a status written
# before libxl saw netback's state 2 makes the attach time out).
sleep 0.5
expect_eq "vif3.0, added meanwhile, waits for its script" "" "$(xs_read backend/vif/3/0/hotplug-status)"
expect_eq "and is attached nowhere until then" null "$(ip -n "$DOM0" -j link show vif3.0 | jq -r '.[0].master')"
expect "vif3.0's script runs: online exits 0" run_hotplug "$VIF_XENNET" online 3 0
expect_eq "vif3.0 connected" connected "$(xs_read backend/vif/3/0/hotplug-status)"
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

# The vifs saved at exit are adopted at start from one link dump and one
# xenstore listing, without reading their keys again; a vif that changed
# while the daemon was away, or a saved file that is wrong, means the slow
# way (xenstore), never a vif left as it is by mistake.
stop_daemon
start_daemon "$T/nat.conf"
wait_log() { for _ in $(seq 100); do grep -q "$1" "$T/daemon.log" && return 0; sleep 0.05; done; return 1; }
: >"$T/daemon.log"
stop_daemon
expect "the saved file names vif1.0 and vif3.0" \
	grep -q ' name=vif3.0 ' "$T/state/vifs" && grep -q ' name=vif1.0 ' "$T/state/vifs"
start_daemon "$T/nat.conf"
expect "both adopted as saved, none looked up" wait_log "vifs at start: 2 adopted as saved in .*, 0 looked up"
expect "guest 1 still reaches the LAN" ping_from "$(guest 1)" "$LAN_IP"
expect_eq "xennet status: vif1.0 connected" connected \
	"$("$XENNET" --socket "$T/ctl.sock" status --json | jq -r '.vifs[] | select(.name == "vif1.0") | .state')"

stop_daemon
ip -n "$DOM0" link set vif3.0 nomaster # someone took it off the bridge meanwhile
: >"$T/daemon.log"
start_daemon "$T/nat.conf"
expect "vif1.0 adopted, vif3.0 looked up again" wait_log "vifs at start: 1 adopted as saved in .*, 1 looked up"
expect_eq "vif3.0 is back on the guest bridge" xenbr0 "$(ip -n "$DOM0" -j link show vif3.0 | jq -r '.[0].master')"
expect "guest 3 reaches the LAN again" ping_from "$(guest 3)" "$LAN_IP"

stop_daemon
# A saved file someone else wrote: hostile or garbled lines are not believed.
{
	echo "boot $(cat /proc/sys/kernel/random/boot_id)"
	echo "vif 1 0 emu=0 ifindex=1;reboot name=vif1.0 mode=nat bridge=xenbr0 antispoof=1 uplink= mac= mtu=0 vifname= gatewaydev= keybridge= ioemu=0 ip="
	echo "vif 3 0 emu=0 ifindex=$(ip -n "$DOM0" -j link show vif3.0 | jq .[0].ifindex) name=../../etc mode=nat bridge=xenbr0 antispoof=1 uplink= mac= mtu=0 vifname= gatewaydev= keybridge= ioemu=0 ip="
	echo "garbage"
} >"$T/state/vifs"
: >"$T/daemon.log"
start_daemon "$T/nat.conf"
expect "nothing adopted from a bad file, both looked up" wait_log "vifs at start: 0 adopted as saved in .*, 2 looked up"
expect "guest 1 reaches the LAN" ping_from "$(guest 1)" "$LAN_IP"
expect "guest 3 reaches the LAN" ping_from "$(guest 3)" "$LAN_IP"
stop_daemon
expect "the file is rewritten whole at exit" grep -q ' name=vif3.0 ' "$T/state/vifs"
expect_not "without the bad lines" grep -q 'reboot\|garbage\|\.\./' "$T/state/vifs"
# Another boot's file is not believed at all.
sed -i 's/^boot .*/boot 00000000-0000-0000-0000-000000000000/' "$T/state/vifs"
: >"$T/daemon.log"
start_daemon "$T/nat.conf"
expect "another boot's vifs are looked up, not adopted" wait_log "vifs at start: 0 adopted as saved in .*, 2 looked up"
expect_eq "vif1.0 still a port of the guest bridge" xenbr0 "$(ip -n "$DOM0" -j link show vif1.0 | jq -r '.[0].master')"
