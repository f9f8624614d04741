#!/bin/bash
# NAT mode: two guests on a private bridge behind Dom0, masqueraded out of
# the uplink; the LAN server sees Dom0's uplink address.
. "$(dirname "$0")/lib.sh"

make_lan_and_dom0
make_guest 1 10.0.0.11/24 10.0.0.1
make_guest 2 10.0.0.12/24 10.0.0.1

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
attach_vif_to_bridge vif2.0 xenbr0

expect_eq "gateway address on xenbr0" 10.0.0.1/24 \
	"$(ip -n "$DOM0" -j addr show dev xenbr0 | jq -r '.[0].addr_info[] | select(.family == "inet") | "\(.local)/\(.prefixlen)"')"
expect_eq "Dom0 keeps its uplink address" "$DOM0_IP" \
	"$(ip -n "$DOM0" -j addr show dev eth0 | jq -r '.[0].addr_info[] | select(.family == "inet") | .local')"
expect_eq "forwarding on" 1 "$(sysctl_in "$DOM0" net/ipv4/ip_forward)"
rules=$(nft_json)
expect_eq "one inet xennet table" 1 "$(jq '[.nftables[] | select(.table.name == "xennet" and .table.family == "inet")] | length' <<<"$rules")"
expect "masquerade rule for the guest network in postrouting" \
	jq -e '[.nftables[] | select(.rule.chain == "postrouting" and .rule.comment == "xennet: masquerade guest networks") | .rule.expr[] | select(has("masquerade"))] | length == 1' <<<"$rules"
expect_eq "guest network in the set" "10.0.0.0/24" \
	"$(jq -r '.nftables[] | select(.set.name == "nat_networks") | .set.elem[0].prefix | "\(.addr)/\(.len)"' <<<"$rules")"

expect "guest 1 pings the LAN" ping_from "$(guest 1)" "$LAN_IP"
expect "guest 2 pings the LAN" ping_from "$(guest 2)" "$LAN_IP"
expect "guests reach each other on the bridge" ping_from "$(guest 1)" 10.0.0.12
src=$(exchange tcp "$(guest 1)" "$LAN" "$LAN_IP" 7201) || fail "TCP guest 1 -> LAN"
expect_eq "TCP: the LAN server sees Dom0's uplink address" "$DOM0_IP" "$src"
src=$(exchange udp "$(guest 2)" "$LAN" "$LAN_IP" 7202) || fail "UDP guest 2 -> LAN"
expect_eq "UDP: the LAN server sees Dom0's uplink address" "$DOM0_IP" "$src"

# The private network is not reachable from the LAN, even with a route.
ip -n "$LAN" route add 10.0.0.0/24 via "$DOM0_IP"
expect_not "the LAN cannot open connections into the guest network" \
	in_ns "$LAN" ping -c 1 -W 1 -q 10.0.0.11

packets=$(nft_json | jq '[.nftables[] | select(.rule.comment == "xennet: masquerade guest networks") | .rule.expr[] | select(has("counter")) | .counter.packets] | add')
expect "masquerade counter counted the guests' flows" test "$packets" -ge 2
status=$(xn status)
expect "status shows the table and its counters" grep -q "table inet xennet present" <<<"$status"
