#!/bin/bash
# Idempotence and convergence: applying the same profile twice changes
# nothing; switching profiles leaves nothing of the old one; what xennet
# did not create is never touched.
. "$(dirname "$0")/lib.sh"

make_lan_and_dom0
make_guest 1 10.0.0.11/24 10.0.0.1

# Things that belong to someone else.
ip -n "$DOM0" link add other0 type bridge
ip -n "$DOM0" addr add 172.31.0.1/24 dev other0
in_ns "$DOM0" nft -f - <<'NFT'
table inet other {
	chain input { type filter hook input priority 0; policy accept; tcp dport 9999 counter accept; }
}
NFT
foreign() {
	{
		ip -n "$DOM0" -j addr show dev other0 | jq -c '[.[0].addr_info[] | .local]'
		in_ns "$DOM0" nft -j list table inet other | jq -c '[.nftables[1:][] | del(.rule.handle?)]'
	}
}
foreign_before=$(foreign)

nat_profile "$T/a.conf"
cat >"$T/b.conf" <<CONF
[xennet]
mode = bridged
[bridge xenbr1]
uplink = eth0
take_addresses = yes
CONF

start_daemon "$T/a.conf"
attach_vif_to_bridge vif1.0 xenbr0
expect "A: guest reaches the LAN through NAT" ping_from "$(guest 1)" "$LAN_IP"

s1=$(kernel_state)
out=$(xn apply "$T/a.conf")
expect "applying A again reports no change" grep -q "0 changes" <<<"$out"
s2=$(kernel_state)
expect_eq "applying A again leaves links, addresses, routes and nft identical" "$s1" "$s2"
out=$(xn check "$T/a.conf")
expect "check of the profile in force: nothing to change" grep -q "nothing to change" <<<"$out"

# A -> B
out=$(xn check "$T/b.conf")
expect "check B plans removing xenbr0" grep -q "remove bridge xenbr0" <<<"$out"
expect "check changed nothing" test "$(kernel_state)" == "$s2"
xn apply "$T/b.conf" >/dev/null
expect_not "A's bridge xenbr0 is gone" ip -n "$DOM0" link show xenbr0
expect_not "A's nft table is gone" in_ns "$DOM0" nft list table inet xennet
expect_eq "ip_forward restored to its value before xennet" 0 "$(sysctl_in "$DOM0" net/ipv4/ip_forward)"
expect_eq "B: Dom0's address on xenbr1" "$DOM0_IP/24" \
	"$(ip -n "$DOM0" -j addr show dev xenbr1 | jq -r '.[0].addr_info[] | select(.family == "inet") | "\(.local)/\(.prefixlen)"')"
ip -n "$(guest 1)" addr flush dev eth0
ip -n "$(guest 1)" addr add 192.168.50.11/24 dev eth0
attach_vif_to_bridge vif1.0 xenbr1
expect "B: bridged guest reaches the LAN" ping_from "$(guest 1)" "$LAN_IP"
expect "B: Dom0 reaches the LAN" ping_from "$DOM0" "$LAN_IP"

# B -> A: everything of B undone, Dom0's address and route back on eth0.
xn apply "$T/a.conf" >/dev/null
expect_not "B's bridge xenbr1 is gone" ip -n "$DOM0" link show xenbr1
expect_eq "Dom0's address is back on eth0" "$DOM0_IP/24" \
	"$(ip -n "$DOM0" -j addr show dev eth0 | jq -r '.[0].addr_info[] | select(.family == "inet") | "\(.local)/\(.prefixlen)"')"
expect_eq "default route back on eth0" "eth0 $LAN_IP" \
	"$(ip -n "$DOM0" -j route show default | jq -r '.[0] | "\(.dev) \(.gateway)"')"
expect "A again: Dom0 reaches the LAN" ping_from "$DOM0" "$LAN_IP"
ip -n "$(guest 1)" addr flush dev eth0
ip -n "$(guest 1)" addr add 10.0.0.11/24 dev eth0
ip -n "$(guest 1)" route add default via 10.0.0.1
attach_vif_to_bridge vif1.0 xenbr0
expect "A again: guest reaches the LAN through NAT" ping_from "$(guest 1)" "$LAN_IP"
expect_eq "one inet xennet table, no duplicate rules" 12 \
	"$(nft_json | jq '[.nftables[] | select(.rule.table == "xennet" and .rule.family == "inet")] | length')"

expect_eq "the foreign bridge and nft table are untouched" "$foreign_before" "$(foreign)"

# Drift: someone deletes the bridge xennet manages; the daemon sees the
# link event and puts it back.
ip -n "$DOM0" link del xenbr0
for _ in $(seq 50); do ip -n "$DOM0" link show xenbr0 >/dev/null 2>&1 && break; sleep 0.1; done
expect "xenbr0 deleted by hand is recreated by the daemon" ip -n "$DOM0" link show xenbr0
for _ in $(seq 50); do
	ip -n "$DOM0" -j addr show dev xenbr0 | jq -e '.[0].addr_info[] | select(.local == "10.0.0.1")' >/dev/null && break
	sleep 0.1
done
expect "with its gateway address" bash -c "ip -n $DOM0 -j addr show dev xenbr0 | jq -e '.[0].addr_info[] | select(.local == \"10.0.0.1\")' >/dev/null"
grep -q "repaired drift" "$T/daemon.log" && pass "the repair is logged" || fail "the repair is logged"

# Someone flushes the whole ruleset (nftables.service does at start): the
# daemon notices and puts its tables back.
in_ns "$DOM0" nft flush ruleset
for _ in $(seq 50); do in_ns "$DOM0" nft list table inet xennet >/dev/null 2>&1 && break; sleep 0.1; done
expect "after a flush ruleset, the xennet tables are back" in_ns "$DOM0" nft list table inet xennet
expect "and the logs say why" grep -q "someone else changed xennet's nftables tables" "$T/daemon.log"
attach_vif_to_bridge vif1.0 xenbr0 # it left with the bridge deleted above
expect "the guest is NATed again" ping_from "$(guest 1)" "$LAN_IP"
