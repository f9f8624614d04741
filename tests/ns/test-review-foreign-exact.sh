#!/bin/bash
# Another firewall's forward chain with policy drop whose table accepts an
# interface that merely starts like the guests' bridge ("x", "xenbr" as
# exact names, not the wildcards "x*", "xenbr*") still drops the guests'
# traffic: xennet status must say degraded. A wildcard that covers the
# bridge is an accept.
. "$(dirname "$0")/lib.sh"

status_rc() { local rc=0; xn status >"$T/status.out" 2>&1 || rc=$?; echo "$rc"; }
nftd() { in_ns "$DOM0" nft "$@"; }

make_lan_and_dom0
make_guest 1 10.0.0.11/24 10.0.0.1
nat_profile "$T/nat.conf"
start_daemon "$T/nat.conf"
attach_vif_to_bridge vif1.0 xenbr0
expect_eq "status exits 0" 0 "$(status_rc)"

nftd add table ip filter
nftd add chain ip filter FORWARD '{ type filter hook forward priority 0; policy drop; }'
nftd add rule ip filter FORWARD iifname x accept
nftd add rule ip filter FORWARD oifname xenbr accept
expect_not "the drop blocks the guest" ping_from "$(guest 1)" "$LAN_IP"
expect_eq "status exits 1 (degraded)" 1 "$(status_rc)"
nftd add rule ip filter FORWARD iifname 'xenbr*' accept
nftd add rule ip filter FORWARD oifname 'xenbr*' accept
expect "with a wildcard for the bridge the guest reaches the LAN" ping_from "$(guest 1)" "$LAN_IP"
expect_eq "and status exits 0" 0 "$(status_rc)"
