#!/bin/bash
# Bridged mode: xenbr0 takes eth0 as its uplink and Dom0's address and
# default route; a guest on vif1.0 talks to the LAN across the bridge.
. "$(dirname "$0")/lib.sh"

make_lan_and_dom0
make_guest 1 192.168.50.11/24 "$LAN_IP"
# IPv6 too: Dom0 has a global address and an IPv6 default route on eth0.
ip -n "$LAN" addr add fd00:50::1/64 dev eth0 nodad
ip -n "$DOM0" addr add fd00:50::2/64 dev eth0 nodad
ip -n "$DOM0" -6 route add default via fd00:50::1 dev eth0
ip -n "$(guest 1)" addr add fd00:50::11/64 dev eth0 nodad

cat >"$T/bridged.conf" <<CONF
[xennet]
mode = bridged

[bridge xenbr0]
uplink = eth0
take_addresses = yes
CONF

start_daemon "$T/bridged.conf"
attach_vif_to_bridge vif1.0 xenbr0

# Kernel state, read back.
link=$(ip -n "$DOM0" -j -d link show xenbr0)
expect_eq "xenbr0 is a bridge" bridge "$(jq -r '.[0].linkinfo.info_kind' <<<"$link")"
expect_eq "STP off" 0 "$(jq -r '.[0].linkinfo.info_data.stp_state' <<<"$link")"
expect_eq "forward delay 0" 0 "$(jq -r '.[0].linkinfo.info_data.forward_delay' <<<"$link")"
expect_eq "xenbr0 up" true "$(jq -r '.[0].flags | index("UP") != null' <<<"$link")"
ports=$(bridge -n "$DOM0" -j link show | jq -r '[.[] | select(.master == "xenbr0") | .ifname] | sort | join(" ")')
expect_eq "eth0 and vif1.0 are ports of xenbr0" "eth0 vif1.0" "$ports"
expect_eq "Dom0's address moved to xenbr0" "$DOM0_IP/24" \
	"$(ip -n "$DOM0" -j addr show dev xenbr0 | jq -r '.[0].addr_info[] | select(.family == "inet") | "\(.local)/\(.prefixlen)"')"
expect_eq "eth0 keeps no IPv4 address" "" \
	"$(ip -n "$DOM0" -j addr show dev eth0 | jq -r '.[0].addr_info[] | select(.family == "inet") | .local')"
expect_eq "default route now through xenbr0" "xenbr0 $LAN_IP" \
	"$(ip -n "$DOM0" -j route show default | jq -r '.[0] | "\(.dev) \(.gateway)"')"
expect_eq "Dom0's IPv6 address moved to xenbr0" "fd00:50::2/64" \
	"$(ip -n "$DOM0" -j -6 addr show dev xenbr0 scope global | jq -r '.[0].addr_info[0] | "\(.local)/\(.prefixlen)"')"
expect_eq "eth0 keeps no global IPv6 address" "" \
	"$(ip -n "$DOM0" -j -6 addr show dev eth0 scope global | jq -r '.[0].addr_info[]?.local')"
expect_eq "IPv6 default route now through xenbr0" "xenbr0 fd00:50::1" \
	"$(ip -n "$DOM0" -j -6 route show default | jq -r '.[0] | "\(.dev) \(.gateway)"')"

# Traffic.
expect "guest pings the LAN across xenbr0" ping_from "$(guest 1)" "$LAN_IP"
expect "the LAN pings the guest" ping_from "$LAN" 192.168.50.11
expect "Dom0 still reaches the LAN" ping_from "$DOM0" "$LAN_IP"
expect "Dom0 still reaches the LAN over IPv6" ping_from "$DOM0" fd00:50::1
expect "the guest reaches the LAN over IPv6" ping_from "$(guest 1)" fd00:50::1
src=$(exchange tcp "$(guest 1)" "$LAN" "$LAN_IP" 7001) || fail "TCP guest -> LAN"
expect_eq "TCP guest -> LAN, seen from the guest's own address" 192.168.50.11 "$src"
src=$(exchange udp "$LAN" "$(guest 1)" 192.168.50.11 7002) || fail "UDP LAN -> guest"
expect_eq "UDP LAN -> guest" "$LAN_IP" "$src"

# No nft table in bridged mode without guests.
expect_not "no xennet table in bridged mode" in_ns "$DOM0" nft list table inet xennet

status=$(xn status --json)
expect_eq "status: mode" bridged "$(jq -r .mode <<<"$status")"
expect_eq "status: ports" "eth0 vif1.0" "$(jq -r '.bridges[0].ports | sort | join(" ")' <<<"$status")"

# SIGTERM leaves the network up.
stop_daemon
expect "after xennetd exits, the guest still reaches the LAN" ping_from "$(guest 1)" "$LAN_IP"
expect "after xennetd exits, xenbr0 still has Dom0's address" \
	bash -c "ip -n $DOM0 -j addr show dev xenbr0 | jq -e '.[0].addr_info[] | select(.local == \"$DOM0_IP\")' >/dev/null"
