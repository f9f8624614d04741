#!/bin/bash
# Routed mode: Dom0 routes the guest; the LAN reaches the guest's address
# through Dom0 by proxy ARP on the uplink.
. "$(dirname "$0")/lib.sh"

make_lan_and_dom0
make_guest 1 192.168.50.21/24 "$DOM0_IP"

cat >"$T/routed.conf" <<CONF
[xennet]
mode = routed

[routed]
uplink = eth0
CONF

before_fwd=$(sysctl_in "$DOM0" net/ipv4/ip_forward)
expect_eq "forwarding is off before xennetd" 0 "$before_fwd"
start_daemon "$T/routed.conf"

expect_eq "forwarding on" 1 "$(sysctl_in "$DOM0" net/ipv4/ip_forward)"
expect_eq "proxy_arp on the uplink" 1 "$(sysctl_in "$DOM0" net/ipv4/conf/eth0/proxy_arp)"

# What vif-route does for the vif, until hotplug lands: up, host route
# with Dom0's address as source, proxy_arp on the vif.
ip -n "$DOM0" link set vif1.0 up
ip -n "$DOM0" route add 192.168.50.21/32 dev vif1.0 src "$DOM0_IP"
in_ns "$DOM0" sh -c 'echo 1 > /proc/sys/net/ipv4/conf/vif1.0/proxy_arp'

expect "the LAN reaches the routed guest" ping_from "$LAN" 192.168.50.21
expect "the guest reaches the LAN" ping_from "$(guest 1)" "$LAN_IP"
src=$(exchange tcp "$LAN" "$(guest 1)" 192.168.50.21 7101) || fail "TCP LAN -> guest"
expect_eq "TCP LAN -> guest keeps the LAN address (routed, not NATed)" "$LAN_IP" "$src"

status=$(xn status --json)
expect_eq "status: mode" routed "$(jq -r .mode <<<"$status")"
expect_eq "status: ip_forward managed, was 0" "1 0" \
	"$(jq -r '.sysctls[] | select(.path == "net/ipv4/ip_forward") | "\(.value) \(.original)"' <<<"$status")"
