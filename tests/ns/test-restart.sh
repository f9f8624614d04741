#!/bin/bash
# Restarting xennetd does not cut guests off: SIGTERM leaves the network up
# and the new daemon reconciles without changing anything.
. "$(dirname "$0")/lib.sh"

make_lan_and_dom0
make_guest 1 10.0.0.11/24 10.0.0.1
cat >"$T/nat.conf" <<CONF
[xennet]
mode = nat
[bridge xenbr0]
address = 10.0.0.1/24
[nat]
uplink = eth0
bridge = xenbr0
CONF
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
