#!/bin/bash
# Backend keys changed between two runs of the script while xennetd could
# not read its watch events (stopped, thousands of events behind). The C
# xenstored sends them (a duplicate of one still queued at most once)
# before any later reply. Against
# oxenstored (XENSTORED_KIND=ocaml; its quota-maxwatchevents lowered to
# 64 here, so that the flood is small): past that quota oxenstored
# holds a watch's events back (each watch has a queue of its own, flushed
# only when that watch fires again; what does not fit stays with the
# client that caused it, and is dropped when that client exits), so a
# reply, and even another watch's event, overtakes events sent before it.
# xennetd must answer from the keys as they are, not from what its watch
# told it so far. (Not at quota 1: oxenstored then stops answering
# xennetd's writer connection after its hotplug-error transaction.)
. "$(dirname "$0")/lib.sh"
export XS_MAXWATCHEVENTS=${XS_MAXWATCHEVENTS:-64}
. "$(dirname "$0")/xenstore.sh"
: "${VIF_XENNET:?}"
export XENNET_SOCKET=$T/ctl.sock

make_lan_and_dom0
start_xenstored
cat >"$T/bridged.conf" <<CONF
[xennet]
mode = bridged
[bridge xenbr0]
uplink = eth0
take_addresses = yes
CONF
start_daemon "$T/bridged.conf"
note="may hold watch events back: backend keys are read at each request"
for _ in $(seq 100); do grep -q "connected to xenstore" "$T/daemon.log" && break; sleep 0.05; done
if [ "$XENSTORED_KIND" = ocaml ]; then
	expect "xennetd knows oxenstored may hold events back" grep -q "$note" "$T/daemon.log"
else
	expect_not "xennetd trusts the C xenstored's order" grep -q "$note" "$T/daemon.log"
fi

mac_of() { ip -n "$1" -j link show dev "$2" | jq -r '.[0].address'; }

# flood_while_stopped: with xennetd stopped, its socket fills, then
# oxenstored's queue for it (the quota), then the watch's own queue of
# held events (the quota again); an event past that stays with the
# connection that caused it and is gone when that client exits. Then the
# commands given run (their events are held back or lost), and xennetd
# goes on.
flood_while_stopped() {
	local i j
	kill -STOP "$DPID"
	for ((j = 0; j < 8; j++)); do
		for ((i = 0; i < 500; i++)); do
			printf 'write\tbackend/vif/99/0/flood%d\t%d\n' $((i % 20)) "$i"
		done | xs_txn || fail "flood: xenstore transaction failed"
	done
	"$@"
	kill -CONT "$DPID"
}

make_guest 13 192.168.50.23/24 "$LAN_IP"
good_mac=$(mac_of "$(guest 13)" eth0)
libxl_add_vif 13 0 bridge=xenbr0 "mac=$good_mac" mtu=1400 script="$VIF_XENNET"
expect "vif 13 online" run_hotplug "$VIF_XENNET" online 13 0
expect_eq "vif13.0 mtu 1400" 1400 "$(ip -n "$DOM0" -j link show vif13.0 | jq -r '.[0].mtu')"

expect "vif 13 offline" run_hotplug "$VIF_XENNET" offline 13 0
flood_while_stopped xenstore-write /local/domain/0/backend/vif/13/0/mtu 1300
expect "vif 13 online after mtu=1300 was written" run_hotplug "$VIF_XENNET" online 13 0
expect_eq "vif13.0 takes the new mtu" 1300 "$(ip -n "$DOM0" -j link show vif13.0 | jq -r '.[0].mtu')"

expect "vif 13 offline" run_hotplug "$VIF_XENNET" offline 13 0
flood_while_stopped xenstore-write /local/domain/0/backend/vif/13/0/mac "00:16:3e:zz"
expect_not "a mac made bad meanwhile fails" run_hotplug "$VIF_XENNET" online 13 0
expect "and hotplug-error names the key" \
	grep -q "backend/vif/13/0/mac" <<<"$(xs_read backend/vif/13/0/hotplug-error)"
expect_eq "vif13.0 is attached nowhere" null "$(ip -n "$DOM0" -j link show vif13.0 | jq -r '.[0].master')"
flood_while_stopped xenstore-write /local/domain/0/backend/vif/13/0/mac "$good_mac"
expect "mac fixed: online succeeds" run_hotplug "$VIF_XENNET" online 13 0
expect_eq "vif13.0 is a port of xenbr0 again" xenbr0 \
	"$(ip -n "$DOM0" -j link show vif13.0 | jq -r '.[0].master')"
ip -n "$(guest 13)" link set eth0 mtu 1280
expect "guest 13 reaches the LAN" ping_from "$(guest 13)" "$LAN_IP"

# A new vif whose backend was written while the events could not come:
# its run must not wait for them.
make_guest 14 192.168.50.24/24 "$LAN_IP"
flood_while_stopped libxl_add_vif 14 0 bridge=xenbr0 "mac=$(mac_of "$(guest 14)" eth0)" \
	script="$VIF_XENNET"
expect "a new vif comes online" run_hotplug "$VIF_XENNET" online 14 0
expect_eq "vif14.0 is a port of xenbr0" xenbr0 "$(ip -n "$DOM0" -j link show vif14.0 | jq -r '.[0].master')"
echo "PASS"
