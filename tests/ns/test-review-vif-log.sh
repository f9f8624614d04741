#!/bin/bash
# Every vif event is one line of the daemon's log (issue 12, item 5),
# also when many vifs fail at once: the log's rate limit (10 warnings or
# errors per call site in 5 s) must not leave out which vifs failed.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/xenstore.sh"
: "${VIF_XENNET:?}"
export XENNET_SOCKET=$T/ctl.sock
N=14

make_lan_and_dom0
start_xenstored
bridged_profile "$T/bridged.conf"
start_daemon "$T/bridged.conf"
pids=()
for d in $(seq "$N"); do
	ip -n "$DOM0" link add "vif$d.0" type veth peer name "peer$d"
	libxl_add_vif "$d" 0 bridge=nosuchbr script="$VIF_XENNET"
done
for d in $(seq "$N"); do
	run_hotplug "$VIF_XENNET" online "$d" 0 2>/dev/null &
	pids+=($!)
done
failed=0
for p in "${pids[@]}"; do wait "$p" || failed=$((failed + 1)); done
expect_eq "every script fails" "$N" "$failed"
sleep 0.2
for d in $(seq "$N"); do
	expect "vif $d/0's failure is in the log" \
		grep -q "vif $d/0 (vif$d.0, domain guest$d): failed: Could not find bridge device nosuchbr" "$T/daemon.log"
done
