#!/bin/bash
# A script that asked for a vif whose device was not there yet, then went
# (killed: libxl aborting the attach, an admin's Ctrl-C on xl): when the
# device appears, nobody waits for it any more and the toolstack was told
# the vif failed. xennetd must not attach it (not even for a moment) nor
# write hotplug-status=connected.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/xenstore.sh"
: "${VIF_XENNET:?}"
export XENNET_SOCKET=$T/ctl.sock

make_lan_and_dom0
start_xenstored
bridged_profile "$T/bridged.conf"
start_daemon "$T/bridged.conf"
master_of() { ip -n "$DOM0" -j link show "$1" | jq -r '.[0].master'; }

libxl_add_vif 1 0 bridge=xenbr0 script="$VIF_XENNET"
ip -n "$DOM0" monitor link >"$T/monitor" 2>&1 &
MON=$!
BG_PIDS+=("$MON")
set +e
LIBXL_HOTPLUG_TIMEOUT=1 run_hotplug "$VIF_XENNET" online 1 0 2>/dev/null
rc=$?
set -e
expect_eq "the script was killed while it waited for the device" 137 "$rc"
make_guest 1 192.168.50.11/24 "$LAN_IP"
sleep 1
kill "$MON" 2>/dev/null || true
expect_eq "vif1.0 is attached nowhere" null "$(master_of vif1.0)"
expect_not "vif1.0 was never a port of xenbr0, not even for a moment" \
	grep -q "vif1.0.*master xenbr0" "$T/monitor"
expect_eq "hotplug-status stays as libxl wrote it" "" "$(xs_read backend/vif/1/0/hotplug-status)"
expect "the dropped request is logged" \
	grep -q "vif 1/0 (vif1.0, domain guest1): request not carried out: its hotplug script has gone" "$T/daemon.log"
# The next script libxl runs brings it up.
xenstore-write /local/domain/0/backend/vif/1/0/mac "$(mac_of "$(guest 1)" eth0)"
expect "the next online exits 0" run_hotplug "$VIF_XENNET" online 1 0
expect_eq "vif1.0 on xenbr0" xenbr0 "$(master_of vif1.0)"
expect "guest 1 reaches the LAN" ping_from "$(guest 1)" "$LAN_IP"
