#!/bin/bash
# Per-VM public IP mapping on a NAT host: 1:1 (every protocol) and port
# forwards, hairpin, conntrack hygiene, conflicts, persistence.
. "$(dirname "$0")/lib.sh"

make_lan_and_dom0
make_guest 1 10.0.0.11/24 10.0.0.1
make_guest 2 10.0.0.12/24 10.0.0.1
nat_profile "$T/nat.conf"
start_daemon "$T/nat.conf"
attach_vif_to_bridge vif1.0 xenbr0
attach_vif_to_bridge vif2.0 xenbr0
PUB=192.168.50.101
public_routes() { ip -n "$DOM0" -j route show table local dev eth0 proto 120; }

out=$(xn map add "$PUB" 10.0.0.11 --name web)
expect "map add" grep -q "mapped $PUB to 10.0.0.11" <<<"$out"
expect_eq "map list shows it, made by the CLI" "$PUB 10.0.0.11 web cli" \
	"$(xn map list --json | jq -r '.maps[] | "\(.public) \(.guest) \(.name) \(.source)"')"
expect_eq "the public address is a local route on the uplink (xennet's protocol)" "$PUB local" \
	"$(public_routes | jq -r ".[] | select(.dst == \"$PUB\") | \"\(.dst) \(.type)\"")"
expect_eq "not one of the uplink's addresses" "" \
	"$(ip -n "$DOM0" -j addr show dev eth0 | jq -r ".[0].addr_info[] | select(.local == \"$PUB\") | .local")"

# Inbound: the LAN reaches the guest through the public address, and the
# guest sees the client's real address.
expect "LAN pings the public address" ping_from "$LAN" "$PUB"
in_ns "$(guest 1)" "$NETCHECK" serve tcp 10.0.0.11 7702 10 >"$T/s1" &
s1=$!
expect "TCP from the LAN to the public address reaches guest 1" \
	in_ns "$LAN" "$NETCHECK" send tcp "$PUB" 7702 hello 8
wait "$s1"
expect_eq "guest 1 sees the LAN client's own address" "peer $LAN_IP" "$(cat "$T/s1")"
in_ns "$(guest 1)" "$NETCHECK" serve udp 10.0.0.11 7703 10 >"$T/s2" &
s2=$!
expect "UDP from the LAN to the public address reaches guest 1" \
	in_ns "$LAN" "$NETCHECK" send udp "$PUB" 7703 hello 8
wait "$s2"
expect_eq "guest 1 sees the LAN client's own address (UDP)" "peer $LAN_IP" "$(cat "$T/s2")"
set +e
in_ns "$LAN" "$NETCHECK" send tcp "$PUB" 22 x 1 >/dev/null 2>&1
rc=$?
set -e
expect_eq "Dom0 itself does not answer on the public address" 1 "$rc"

# Outbound: the mapped guest leaves with its public address, the other
# one with Dom0's.
src=$(exchange tcp "$(guest 1)" "$LAN" "$LAN_IP" 7704) || fail "TCP guest 1 -> LAN"
expect_eq "the LAN sees guest 1 as its public address" "$PUB" "$src"
src=$(exchange udp "$(guest 2)" "$LAN" "$LAN_IP" 7705) || fail "UDP guest 2 -> LAN"
expect_eq "the LAN sees unmapped guest 2 as Dom0's address" "$DOM0_IP" "$src"

# Hairpin: guest 2 and Dom0 reach guest 1 through the public address.
in_ns "$(guest 1)" "$NETCHECK" serve tcp 10.0.0.11 7706 10 >"$T/s3" &
s3=$!
expect "hairpin: guest 2 reaches guest 1 through the public address" \
	in_ns "$(guest 2)" "$NETCHECK" send tcp "$PUB" 7706 hello 8
wait "$s3"
in_ns "$(guest 1)" "$NETCHECK" serve tcp 10.0.0.11 7707 10 >"$T/s4" &
s4=$!
expect "hairpin: Dom0 reaches guest 1 through the public address" \
	in_ns "$DOM0" "$NETCHECK" send tcp "$PUB" 7707 hello 8
wait "$s4"

# Conflicts are refused and change nothing.
rules_before=$(nft_json | jq -c '[.nftables[] | select(.map or .set) ]')
refuse() {
	local what=$1 want=$2
	shift 2
	set +e
	local err
	err=$(xn "$@" 2>&1)
	local rc=$?
	set -e
	expect_eq "$what: refused" 1 "$rc"
	expect "$what: says why ($err)" grep -qF "$want" <<<"$err"
}
refuse "the same public address twice" "already mapped" map add "$PUB" 10.0.0.12
refuse "the same guest twice" "already has the public address" map add 192.168.50.120 10.0.0.11
refuse "a public address inside the guest network" "inside the guest network" map add 10.0.0.50 10.0.0.12
refuse "a guest outside the guest network" "outside the guest network" map add 192.168.50.121 192.168.50.12
refuse "the gateway as guest" "gateway" map add 192.168.50.122 10.0.0.1
refuse "a forward on a 1:1 public address" "collide" forward add "$PUB:80/tcp" 10.0.0.12:80
refuse "a malformed address" "bad address" map add 192.168.50 10.0.0.12
refuse "a malformed port" "bad address" forward add 192.168.50.102:99999/tcp 10.0.0.12:80
refuse "a protocol other than tcp/udp" "bad address" forward add 192.168.50.102:80/sctp 10.0.0.12:80
refuse "deleting what is not mapped" "not mapped" map del 192.168.50.99
expect_eq "the ruleset is unchanged after the refusals" "$rules_before" \
	"$(nft_json | jq -c '[.nftables[] | select(.map or .set) ]')"

# A port forward.
out=$(xn forward add 192.168.50.102:8080/tcp 10.0.0.12:7708 --name api)
in_ns "$(guest 2)" "$NETCHECK" serve tcp 10.0.0.12 7708 10 >"$T/s5" &
s5=$!
expect "a port forward reaches guest 2" in_ns "$LAN" "$NETCHECK" send tcp 192.168.50.102 8080 hello 8
wait "$s5"
expect_eq "guest 2 sees the client's address" "peer $LAN_IP" "$(cat "$T/s5")"
refuse "the same forward twice" "already forwarded" forward add 192.168.50.102:8080/tcp 10.0.0.11:80
# The forward's other ports never reach Dom0 itself (a server of Dom0's
# listening on every address does not see them); the set public_addrs
# lists the addresses only forwarded, the DNAT map's keys stand for the
# 1:1 ones (10,000 mappings are not 10,000 more elements).
in_ns "$DOM0" "$NETCHECK" serve udp 0.0.0.0 7798 6 >"$T/d0" &
d0=$!
set +e
in_ns "$LAN" "$NETCHECK" send udp 192.168.50.102 7798 x 1.5 >/dev/null 2>&1
rc=$?
set -e
expect_eq "another port of the forwarded address does not reach Dom0" 1 "$rc"
expect "Dom0's server is reachable on Dom0's own address" in_ns "$LAN" "$NETCHECK" send udp "$DOM0_IP" 7798 hello 4
wait "$d0" || true
expect_eq "Dom0's server saw only that one" "peer $LAN_IP" "$(cat "$T/d0")"
expect_eq "public_addrs lists the forwarded address, not the 1:1 one" 192.168.50.102 \
	"$(nft_json | jq -r '[.nftables[] | select(.set.name == "public_addrs") | .set.elem[]?] | join(" ")')"
expect_eq "Dom0 drops untranslated traffic to the DNAT map's keys too" 1 \
	"$(nft_json | jq '[.nftables[] | select(.rule.chain == "input") | .rule.expr[] | select(.match.right == "@map_dnat")] | length')"
expect_eq "forward list" "192.168.50.102 8080 tcp 10.0.0.12 7708 api" \
	"$(xn forward list --json | jq -r '.forwards[] | "\(.public) \(.port) \(.proto) \(.guest) \(.guest_port) \(.name)"')"

# map del during a running UDP flow stops it at once; map add for another
# guest takes the same flow's new packets there.
in_ns "$LAN" bash -c "exec 3>/dev/udp/$PUB/7709; for i in \$(seq 120); do echo x >&3; sleep 0.05; done" &
sender=$!
BG_PIDS+=($sender)
n1=$(in_ns "$(guest 1)" "$NETCHECK" count udp 10.0.0.11 7709 1.5)
expect "the UDP flow reaches guest 1 (got $n1)" test "$n1" -ge 10
xn map del "$PUB" >/dev/null
# The purge follows the reply by a few milliseconds (the client is answered
# first); without it the flow would keep its translation for minutes.
sleep 0.05
n2=$(in_ns "$(guest 1)" "$NETCHECK" count udp 10.0.0.11 7709 1.0)
expect_eq "after map del, not one more datagram reaches guest 1" 0 "$n2"
expect_eq "the public address left the uplink" "" \
	"$(public_routes | jq -r ".[] | select(.dst == \"$PUB\") | .dst")"
xn map add "$PUB" 10.0.0.12 >/dev/null
n3=$(in_ns "$(guest 2)" "$NETCHECK" count udp 10.0.0.12 7709 1.0)
expect "after map add to guest 2, the same flow reaches guest 2 (got $n3)" test "$n3" -ge 5
wait "$sender" || true

# Persistence: a restart keeps the mappings and their traffic.
in_ns "$LAN" ping -c 80 -i 0.03 -W 1 "$PUB" >"$T/ping.out" 2>&1 &
ppid=$!
sleep 0.3
stop_daemon
start_daemon "$T/nat.conf"
wait "$ppid" || true
expect_eq "no ping to the public address lost across a restart" 0 \
	"$(sed -n 's/.* \([0-9.]*\)% packet loss.*/\1/p' "$T/ping.out")"
expect_eq "mappings survive the restart" "$PUB 10.0.0.12 cli" \
	"$(xn map list --json | jq -r '.maps[] | "\(.public) \(.guest) \(.source)"')"
expect_eq "forwards survive the restart" 1 "$(xn forward list --json | jq '.forwards | length')"
expect_eq "each element once" 1 \
	"$(nft_json | jq "[.nftables[] | select(.map.name == \"map_dnat\") | .map.elem[]?] | length")"

# Mappings in the profile are set up by an apply (and at boot), listed as
# the profile's, and cannot be removed with the CLI.
cp "$T/nat.conf" "$T/nat2.conf"
cat >>"$T/nat2.conf" <<CONF
[map fixed]
public = 192.168.50.110
guest = 10.0.0.11
[forward ssh]
public = 192.168.50.111:2222/tcp
guest = 10.0.0.11:7710
CONF
xn apply "$T/nat2.conf" >/dev/null
expect_eq "the profile's map is listed as such" "192.168.50.110 10.0.0.11 fixed profile" \
	"$(xn map list --json | jq -r '.maps[] | select(.source == "profile") | "\(.public) \(.guest) \(.name) \(.source)"')"
expect_eq "the CLI's map is still there" 1 "$(xn map list --json | jq '[.maps[] | select(.source == "cli")] | length')"
in_ns "$(guest 1)" "$NETCHECK" serve tcp 10.0.0.11 7710 10 >"$T/s6" &
s6=$!
expect "the profile's forward works" in_ns "$LAN" "$NETCHECK" send tcp 192.168.50.111 2222 hello 8
wait "$s6" || true
refuse "removing the profile's map with the CLI" "edit the profile" map del 192.168.50.110

# An element someone else put in one map only is removed by the next
# apply, without failing it (each map is compared with its own dump).
in_ns "$DOM0" nft add element inet xennet map_dnat "{ 100.127.9.9 : 10.0.0.201 }"
# And a public address route of xennet's that nothing maps any more (left
# by a run that did not finish) goes too; Dom0's own routes stay.
ip -n "$DOM0" route add local 192.168.50.199 dev eth0 table local proto 120
ip -n "$DOM0" route add local 192.168.50.198 dev eth0 table local proto static
expect "apply with a foreign element in the DNAT map" xn apply "$T/nat2.conf"
expect_eq "the public routes are those mapped, no orphan" "192.168.50.101 192.168.50.102 192.168.50.110 192.168.50.111" \
	"$(public_routes | jq -r '[.[].dst] | sort | join(" ")')"
expect_eq "a local route that is not xennet's stays" 192.168.50.198 \
	"$(ip -n "$DOM0" -j route show table local dev eth0 proto static | jq -r '.[].dst')"
expect_eq "the foreign element is gone, xennet's are there" "192.168.50.101 192.168.50.110" \
	"$(nft_json | jq -r '[.nftables[] | select(.map.name == "map_dnat") | .map.elem[][0]] | sort | join(" ")')"

# The NAT maps are fixed-size hashes (the kernel fills those twice as
# fast), made with room for twice the mappings in force. When one is full
# (here filled behind xennet's back), a map add makes them larger (the
# table again, in one batch, without the foreign elements) and goes in.
make_guest 3 10.0.0.13/24 10.0.0.1
attach_vif_to_bridge vif3.0 xenbr0
dnat_map() { nft_json | jq -c '.nftables[] | select(.map.name == "map_dnat") | .map'; }
size=$(dnat_map | jq '.size // 0')
have=$(dnat_map | jq '[.elem[]?] | length')
expect "the DNAT map has a size, room for twice the mappings ($size for $have)" \
	test "$size" -ge $((2 * have))
{
	echo "add element inet xennet map_dnat {"
	for i in $(seq $((size - have))); do echo "100.127.$((i / 250)).$((i % 250 + 1)) : 10.0.0.200,"; done
	echo "}"
} >"$T/fill.nft"
# The daemon removes elements it did not make within milliseconds: it is
# stopped while the map is filled, and the map add is queued before it
# goes on, so that it meets the full map (the request is served before
# the elements are checked, in the same turn of its loop).
kill -STOP "$DPID"
in_ns "$DOM0" nft -f "$T/fill.nft"
set +e
in_ns "$DOM0" nft add element inet xennet map_dnat "{ 100.126.0.1 : 10.0.0.200 }" 2>/dev/null
rc=$?
set -e
expect_eq "the DNAT map is full" 1 "$rc"
# (--force: no ARP probe of the LAN first, which would let the repair
# of the foreign elements come before the add.)
xn map add --force 192.168.50.130 10.0.0.13 --name grown >"$T/grown.out" &
adder=$!
sleep 0.3
kill -CONT "$DPID"
wait "$adder" || fail "map add on full maps: the CLI failed"
out=$(cat "$T/grown.out")
expect "map add on full maps" grep -q "mapped 192.168.50.130 to 10.0.0.13" <<<"$out"
expect "the daemon made the maps larger" grep -q "NAT maps are full" "$T/daemon.log"
expect "the DNAT map is larger now ($(dnat_map | jq .size))" test "$(dnat_map | jq .size)" -gt "$size"
expect_eq "only xennet's mappings are in it" "$((have + 1))" "$(dnat_map | jq '[.elem[]?] | length')"
expect "LAN pings guest 3 through its new public address" ping_from "$LAN" 192.168.50.130
src=$(exchange udp "$(guest 3)" "$LAN" "$LAN_IP" 7712) || fail "UDP guest 3 -> LAN"
expect_eq "the LAN sees guest 3 as its new public address" 192.168.50.130 "$src"
expect_eq "the earlier mappings are all still listed" "$((have + 1))" "$(xn map list --json | jq '.maps | length')"

# An apply that makes the table anew (here: one more guest network) and
# moves a mapping to another guest in the same batch: the running flow to
# the old guest stops and its next packets reach the new one (its
# conntrack entry is dropped although no map was read back and diffed).
sed 's/^guest = 10.0.0.11$/guest = 10.0.0.13/; s|^address = 10.0.0.1/24$|address = 10.0.0.1/24\naddress = 10.9.0.1/24|' \
	"$T/nat2.conf" >"$T/nat3.conf"
expect "the new profile moves the map" grep -q "guest = 10.0.0.13" "$T/nat3.conf"
xn map del 192.168.50.130 >/dev/null
in_ns "$LAN" bash -c "exec 3>/dev/udp/192.168.50.110/7720; for i in \$(seq 100); do echo x >&3; sleep 0.05; done" &
sender=$!
BG_PIDS+=($sender)
n1=$(in_ns "$(guest 1)" "$NETCHECK" count udp 10.0.0.11 7720 1.0)
expect "the UDP flow reaches guest 1 (got $n1)" test "$n1" -ge 5
before=$(grep -c "with the table, made anew" "$T/daemon.log" || true)
expect "apply of the profile that moves the map" xn apply "$T/nat3.conf"
expect "the table was made anew with its maps" \
	test "$(grep -c "with the table, made anew" "$T/daemon.log")" -gt "$before"
n3=$(in_ns "$(guest 3)" "$NETCHECK" count udp 10.0.0.13 7720 1.0)
n2=$(in_ns "$(guest 1)" "$NETCHECK" count udp 10.0.0.11 7720 0.5)
expect "the same flow now reaches guest 3 (got $n3)" test "$n3" -ge 5
expect_eq "and not one more datagram guest 1" 0 "$n2"
wait "$sender" || true

# A forward on an address Dom0 holds on another device (a management
# interface): xennet adds no route for it, takes nothing over, and Dom0
# keeps its address when the forward goes, also after an apply.
ip -n "$DOM0" link add mgmt0 type veth peer name mgmt1
ip -n "$DOM0" addr add 192.168.77.1/24 dev mgmt0
ip -n "$DOM0" link set mgmt0 up
expect "forward on Dom0's management address" xn forward add 192.168.77.1:8081/tcp 10.0.0.12:7711
expect "apply again" xn apply "$T/nat3.conf"
expect_eq "no public route of xennet's for it" "" \
	"$(public_routes | jq -r '.[] | select(.dst == "192.168.77.1") | .dst')"
expect_eq "its local route is still the kernel's, on mgmt0" "mgmt0 kernel" \
	"$(ip -n "$DOM0" -j route show table local 192.168.77.1 | jq -r '.[0] | "\(.dev) \(.protocol)"')"
expect_eq "public_addrs does not list it" "" \
	"$(nft_json | jq -r '.nftables[] | select(.set.name == "public_addrs") | .set.elem[]? | select(. == "192.168.77.1")')"
expect "forward del" xn forward del 192.168.77.1:8081/tcp
expect "Dom0 still has its management address" \
	bash -c "ip -n $DOM0 -j route show table local 192.168.77.1 | jq -e '.[0].dev == \"mgmt0\"' >/dev/null"

# Public addresses are local routes, which Linux answers ARP for only with
# arp_ignore 0: with 1, the daemon says so.
ip netns exec "$DOM0" sysctl -qw net.ipv4.conf.eth0.arp_ignore=1
expect "apply with arp_ignore 1" xn apply "$T/nat3.conf"
expect "the daemon warns about arp_ignore" grep -q "arp_ignore is 1 on eth0" "$T/daemon.log"
ip netns exec "$DOM0" sysctl -qw net.ipv4.conf.eth0.arp_ignore=0

# Leaving NAT mode: none of the public address routes stays.
xn map del "$PUB" >/dev/null
xn forward del 192.168.50.102:8080/tcp >/dev/null
expect "public routes are there before" test -n "$(public_routes | jq -r '.[].dst')"
printf '[xennet]\nmode = bridged\n[bridge xenbr0]\naddress = 10.0.0.1/24\n' >"$T/bridged.conf"
expect "apply a bridged profile" xn apply "$T/bridged.conf"
expect_eq "no public address route is left" "" "$(public_routes | jq -r '.[].dst')"
