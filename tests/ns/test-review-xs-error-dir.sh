#!/bin/bash
# A vif's backend directory that cannot be read (xenstored gone between
# the watch event and the read) is not a backend that was removed: the
# connected vif stays as it is, and its guest keeps its traffic.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/xenstore.sh"
: "${VIF_XENNET:?}"
export XENNET_SOCKET=$T/ctl.sock

make_lan_and_dom0
start_xenstored
bridged_profile "$T/bridged.conf"
start_daemon "$T/bridged.conf"
master_of() { ip -n "$DOM0" -j link show "$1" | jq -r '.[0].master'; }
wait_log() { for _ in $(seq 100); do grep -q "$1" "$T/daemon.log" && return 0; sleep 0.05; done; return 1; }

make_guest 1 192.168.50.11/24 "$LAN_IP"
libxl_add_vif 1 0 bridge=xenbr0 "mac=$(mac_of "$(guest 1)" eth0)" ip=192.168.50.11 script="$VIF_XENNET"
expect "vif 1 online" run_hotplug "$VIF_XENNET" online 1 0

# An event for the backend directory itself waits in xennetd's socket;
# xenstored dies before xennetd reads the directory back.
kill -STOP "$DPID"
xenstore-write /local/domain/0/backend/vif/1/0 ""
sleep 0.2
kill -KILL "$XS_PID"
wait "$XS_PID" 2>/dev/null || true
XS_PID=
kill -CONT "$DPID"
expect "the lost connection is logged" wait_log "lost the connection to xenstore"
sleep 0.3
expect_not "vif1.0 was not taken offline" grep -q "vif 1/0 (vif1.0.*): offline" "$T/daemon.log"
expect_eq "vif1.0 still on xenbr0" xenbr0 "$(master_of vif1.0)"
expect "guest 1 keeps its traffic" ping_from "$(guest 1)" "$LAN_IP"
