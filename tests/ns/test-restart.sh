#!/bin/bash
# Restarting xennetd does not cut guests off: SIGTERM leaves the network up
# and the new daemon reconciles without changing anything.
. "$(dirname "$0")/lib.sh"

make_lan_and_dom0
make_guest 1 10.0.0.11/24 10.0.0.1
nat_profile "$T/nat.conf"
start_daemon "$T/nat.conf"
attach_vif_to_bridge vif1.0 xenbr0
expect "guest reaches the LAN" ping_from "$(guest 1)" "$LAN_IP"
s1=$(kernel_state)

# A steady stream of pings across the restart.
in_ns "$(guest 1)" ping -c 100 -i 0.03 -W 1 "$LAN_IP" >"$T/ping.out" 2>&1 &
ppid=$!
sleep 0.5
stop_daemon
start_daemon "$T/nat.conf"
wait "$ppid" || true
loss=$(sed -n 's/.* \([0-9.]*\)% packet loss.*/\1/p' "$T/ping.out")
expect_eq "no packet lost across the restart" 0 "$loss"
expect "the restarted daemon changed nothing" grep -q "applied .*: 0 changes" <(tail -n 3 "$T/daemon.log")
expect_eq "no duplicate, no orphan: kernel state identical" "$s1" "$(kernel_state)"
expect "status answers" xn status

# Without the daemon, the CLI says so.
stop_daemon
set +e
out=$(xn status 2>&1); rc=$?
set -e
expect_eq "status without a daemon exits 1" 1 "$rc"
expect "and says the daemon is not running" grep -q "xennetd is not running" <<<"$out"

# Without --foreground the daemon detaches once it is ready; its pid is
# in the lock file of the state directory.
in_ns "$DOM0" "$XENNETD" --profile "$T/nat.conf" --socket "$T/ctl.sock" --state-dir "$T/state"
expect "detached daemon answers" xn status
dpid=$(cat "$T/state/lock")
expect "its pid is recorded" kill -0 "$dpid"
kill -TERM "$dpid"
# Gone, or a zombie waiting for a reaper that may not exist in a sandbox.
exited() { [ ! -e "/proc/$1" ] || grep -q '^State:.*Z' "/proc/$1/status"; }
for _ in $(seq 50); do exited "$dpid" && break; sleep 0.1; done
expect "it exits on SIGTERM" exited "$dpid"
expect_not "and removes its socket" test -e "$T/ctl.sock"
expect "the guests keep their network" ping_from "$(guest 1)" "$LAN_IP"
