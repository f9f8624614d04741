#!/bin/bash
# Anti-spoofing fails closed through the vif's device group (0x78656e):
# a vif whose as_ports element goes is still checked. So the group is
# kept like the rest: put back when someone resets it, and set on a vif
# adopted at start without it (attached by an older xennet, or reset
# while xennetd was away).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/xenstore.sh"
: "${VIF_XENNET:?}"
export XENNET_SOCKET=$T/ctl.sock
GROUP=7890286

make_lan_and_dom0
start_xenstored
bridged_profile "$T/bridged.conf"
start_daemon "$T/bridged.conf"
group_of() { ip -n "$DOM0" -d -j link show "$1" | jq -r '.[0].group'; }
wait_group() { for _ in $(seq 40); do [ "$(group_of vif1.0)" = "$GROUP" ] && return 0; sleep 0.05; done; return 1; }

make_guest 1 192.168.50.11/24 "$LAN_IP"
libxl_add_vif 1 0 bridge=xenbr0 "mac=$(mac_of "$(guest 1)" eth0)" ip=192.168.50.11 script="$VIF_XENNET"
expect "online exits 0" run_hotplug "$VIF_XENNET" online 1 0
expect_eq "vif1.0 in xennet's device group" "$GROUP" "$(group_of vif1.0)"

ip -n "$DOM0" link set vif1.0 group default
expect "a group reset by someone is put back" wait_group

stop_daemon
ip -n "$DOM0" link set vif1.0 group default
start_daemon "$T/bridged.conf"
for _ in $(seq 100); do grep -q "adopted" "$T/daemon.log" && break; sleep 0.05; done
expect "an adopted vif without the group gets it" wait_group

# What the group is for: without its as_ports element (nothing heals
# it: xennetd stopped), the vif is still checked.
stop_daemon
in_ns "$DOM0" nft delete element bridge xennet as_ports '{ "vif1.0" }'
ip -n "$(guest 1)" addr add 192.168.50.99/24 dev eth0
set +e
NETCHECK_SRC=192.168.50.99 exchange udp "$(guest 1)" "$LAN" "$LAN_IP" 7821 >/dev/null 2>&1
rc=$?
set -e
expect_eq "a spoofed datagram is dropped" 1 "$rc"
