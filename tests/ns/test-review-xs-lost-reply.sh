#!/bin/bash
# A script waiting when xennetd loses xenstore (xenstored gone) hears
# why: not "xennetd is exiting", which it is not (it reconnects).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/xenstore.sh"
: "${VIF_XENNET:?}"
export XENNET_SOCKET=$T/ctl.sock

make_lan_and_dom0
start_xenstored
bridged_profile "$T/bridged.conf"
start_daemon "$T/bridged.conf"
wait_log() { for _ in $(seq 100); do grep -q "$1" "$T/daemon.log" && return 0; sleep 0.05; done; return 1; }

# The backend, not its device: the script waits.
libxl_add_vif 1 0 bridge=xenbr0 script="$VIF_XENNET"
run_hotplug "$VIF_XENNET" online 1 0 2>"$T/script.err" &
SPID=$!
sleep 0.5
kill -KILL "$XS_PID"
wait "$XS_PID" 2>/dev/null || true
XS_PID=
expect "the lost connection is logged" wait_log "lost the connection to xenstore"
rc=0
wait "$SPID" || rc=$?
expect_eq "the script fails" 1 "$rc"
expect "it says xennetd lost xenstore" grep -q "vif-xennet: xennetd lost its connection to xenstore" "$T/script.err"
expect "xennetd is still running" daemon_alive
