#!/bin/bash
# 10,000 public IP mappings loaded at start (one batch), then a random
# sample of them verified by traffic from the LAN.
. "$(dirname "$0")/lib.sh"
N=${XENNET_SCALE_MAPPINGS:-10000}

make_lan_and_dom0
cat >"$T/nat.conf" <<CONF
[xennet]
mode = nat
[bridge xenbr0]
address = 10.0.0.1/16
[nat]
uplink = eth0
bridge = xenbr0
CONF
# The public addresses are routed to Dom0 by the "provider" (the LAN).
ip -n "$LAN" route add 100.64.0.0/16 via "$DOM0_IP"
pub() { echo "100.64.$(($1 / 250)).$(($1 % 250 + 1))"; }
gst() { echo "10.0.$(($1 / 250)).$(($1 % 250 + 2))"; }
mkdir -p "$T/state"
{
	echo "# written by the test"
	for i in $(seq "$N"); do echo "map $(pub "$i") $(gst "$i") vm$i"; done
} >"$T/state/mappings"
start_daemon "$T/nat.conf"

expect_eq "all $N mappings listed" "$N" "$(xn map list --json | jq '.maps | length')"
expect_eq "all $N in the DNAT map" "$N" \
	"$(nft_json | jq '[.nftables[] | select(.map.name == "map_dnat") | .map.elem[]?] | length')"
expect_eq "all $N in the SNAT map" "$N" \
	"$(nft_json | jq '[.nftables[] | select(.map.name == "map_snat") | .map.elem[]?] | length')"
expect "the maps are fixed-size hashes with room for twice as many" test \
	"$(nft_json | jq '[.nftables[] | select(.map.name == "map_dnat" or .map.name == "map_snat") | .map.size // 0] | min')" -ge $((2 * N))
expect_eq "the rules stay fixed (no rule per VM)" 12 \
	"$(nft_json | jq '[.nftables[] | select(.rule.family == "inet" and .rule.table == "xennet")] | length')"

for k in 1 2 3 4 5; do
	i=$(( (RANDOM * 32768 + RANDOM) % N + 1 ))
	new_ns "${P}s$k"
	ip -n "$DOM0" link add "vs$k" type veth peer name eth0 netns "${P}s$k"
	ip -n "${P}s$k" addr add "$(gst "$i")/16" dev eth0
	ip -n "${P}s$k" link set eth0 up
	ip -n "${P}s$k" route add default via 10.0.0.1
	attach_vif_to_bridge "vs$k" xenbr0
	in_ns "${P}s$k" "$NETCHECK" serve tcp "$(gst "$i")" 7800 10 >"$T/s$k" &
	sp=$!
	expect "mapping $i: the LAN reaches $(gst "$i") through $(pub "$i")" \
		in_ns "$LAN" "$NETCHECK" send tcp "$(pub "$i")" 7800 hello 8
	wait "$sp" || true
	expect_eq "mapping $i: the guest sees the LAN client" "peer $LAN_IP" "$(cat "$T/s$k")"
	src=$(exchange udp "${P}s$k" "$LAN" "$LAN_IP" 7801) || fail "mapping $i: outbound"
	expect_eq "mapping $i: the LAN sees the guest as $(pub "$i")" "$(pub "$i")" "$src"
done
