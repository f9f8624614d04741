#!/bin/bash
# While xenstored is away the connected vifs keep their anti-spoofing
# elements, also when xennet's tables are made anew meanwhile (someone
# deleted one; a NAT map grown): a table without them would cut every
# filtered guest off (fail closed by device group) until xenstored is back.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/xenstore.sh"
: "${VIF_XENNET:?}"
export XENNET_SOCKET=$T/ctl.sock

make_lan_and_dom0
start_xenstored
bridged_profile "$T/bridged.conf"
start_daemon "$T/bridged.conf"
wait_log() { for _ in $(seq 100); do grep -q "$1" "$T/daemon.log" && return 0; sleep 0.05; done; return 1; }
as_ports() { in_ns "$DOM0" nft -j list set bridge xennet as_ports 2>/dev/null | jq -c '[.nftables[].set.elem // empty | .[]]'; }

make_guest 1 192.168.50.11/24 "$LAN_IP"
libxl_add_vif 1 0 bridge=xenbr0 "mac=$(mac_of "$(guest 1)" eth0)" ip=192.168.50.11 script="$VIF_XENNET"
expect "vif 1 online" run_hotplug "$VIF_XENNET" online 1 0
expect "guest 1 reaches the LAN" ping_from "$(guest 1)" "$LAN_IP"

kill -KILL "$XS_PID"
wait "$XS_PID" 2>/dev/null || true
XS_PID=
expect "the lost connection is logged" wait_log "lost the connection to xenstore"
in_ns "$DOM0" nft delete table bridge xennet
for _ in $(seq 100); do [ "$(as_ports)" != "" ] && break; sleep 0.05; done
sleep 0.3
expect_eq "the table made anew still has vif1.0's element" '["vif1.0"]' "$(as_ports)"
expect "guest 1 still reaches the LAN" ping_from "$(guest 1)" "$LAN_IP"
ip -n "$(guest 1)" addr add 192.168.50.99/24 dev eth0
set +e
NETCHECK_SRC=192.168.50.99 exchange udp "$(guest 1)" "$LAN" "$LAN_IP" 7811 >/dev/null 2>&1
rc=$?
set -e
expect_eq "a spoofed datagram is still dropped" 1 "$rc"
