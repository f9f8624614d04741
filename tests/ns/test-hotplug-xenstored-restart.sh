#!/bin/bash
# xenstored restarts (issue 14, item 7): xennetd notices the lost
# connection within seconds, says so in its log and status, reconnects
# (soon at first, then with backoff), rescans, adopts the vifs that are
# still there, and serves new ones.
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
xs_connected() { xn status --json | jq -r .xenstore; }

make_guest 1 192.168.50.11/24 "$LAN_IP"
libxl_add_vif 1 0 bridge=xenbr0 "mac=$(mac_of "$(guest 1)" eth0)" ip=192.168.50.11 script="$VIF_XENNET"
expect "vif 1 online" run_hotplug "$VIF_XENNET" online 1 0

# 0. xenstored stops answering (SIGSTOP): status does not wait for it
#    (issue 14, item 6: it read the domains' names from xenstore).
kill -STOP "$XS_PID"
t0=$(date +%s%N)
expect "status answers with xenstored stopped" timeout 2 "$XENNET" --socket "$T/ctl.sock" status
expect "and shows the vif with its domain's name" grep -q "domain guest1" <<<"$(timeout 2 "$XENNET" --socket "$T/ctl.sock" status)"
ms=$((($(date +%s%N) - t0) / 1000000))
expect "within a second ($ms ms)" test "$ms" -lt 1000
kill -CONT "$XS_PID"

# 1. xenstored dies and stays away: noticed, logged, status says so.
kill -KILL "$XS_PID"
wait "$XS_PID" 2>/dev/null || true
XS_PID=
expect "the lost connection is logged" wait_log "lost the connection to xenstore"
expect_eq "status says xenstore is not connected" false "$(xs_connected)"
expect "guest 1 keeps its traffic meanwhile" ping_from "$(guest 1)" "$LAN_IP"

# 2. A new xenstored with the state the guests need (what a restore or a
#    live update keeps): xennetd reconnects, adopts vif1.0 untouched.
link_before=$(ip -n "$DOM0" -j link show vif1.0 | jq -c '.[0] | {ifindex, master, flags}')
kill -STOP "$DPID" # so that the new xenstored is filled before it looks
rm -f "$T/xs/socket"
start_xenstored
libxl_add_vif 1 0 bridge=xenbr0 "mac=$(mac_of "$(guest 1)" eth0)" ip=192.168.50.11 script="$VIF_XENNET"
xenstore-write /local/domain/0/backend/vif/1/0/hotplug-status connected
: >"$T/daemon.log"
kill -CONT "$DPID"
expect "xennetd reconnects" wait_log "connected to xenstore"
expect_eq "status says connected again" true "$(xs_connected)"
expect "vif1.0 is adopted" wait_log "vif 1/0 (vif1.0, domain guest1): adopted"
expect_eq "vif1.0 untouched" "$link_before" "$(ip -n "$DOM0" -j link show vif1.0 | jq -c '.[0] | {ifindex, master, flags}')"

# 3. New vifs are served through the new connection.
make_guest 2 192.168.50.12/24 "$LAN_IP"
libxl_add_vif 2 0 bridge=xenbr0 "mac=$(mac_of "$(guest 2)" eth0)" ip=192.168.50.12 script="$VIF_XENNET"
expect "vif 2 online after the restart" run_hotplug "$VIF_XENNET" online 2 0
expect_eq "vif2.0 on xenbr0" xenbr0 "$(master_of vif2.0)"
expect "guest 2 reaches the LAN" ping_from "$(guest 2)" "$LAN_IP"
