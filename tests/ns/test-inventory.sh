#!/bin/bash
# The data people script against: `xennet inventory [--json]` per domain
# (its vifs with MAC, addresses, bridge and state; its public addresses
# and forwards), `status` with each vif's MAC and the uplink, and a
# "version" in every JSON answer; strings escaped by the one writer (a
# domain name with quotes and a backslash stays itself).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/xenstore.sh"
: "${VIF_XENNET:?}"
export XENNET_SOCKET=$T/ctl.sock

make_lan_and_dom0
start_xenstored
nat_profile "$T/nat.conf"
start_daemon "$T/nat.conf"
NAME='web "one" \1'
make_guest 5 10.0.0.15/24 10.0.0.1
ip -n "$(guest 5)" link set eth0 address 00:16:3e:00:05:00
libxl_add_domain 5 "$NAME"
libxl_add_vif 5 0 mac=00:16:3e:00:05:00 ip=10.0.0.15 script="$VIF_XENNET"
expect "online exits 0" run_hotplug "$VIF_XENNET" online 5 0
make_guest 6 10.0.0.16/24 10.0.0.1
ip -n "$(guest 6)" link set eth0 address 00:16:3e:00:06:00
libxl_add_vif 6 0 mac=00:16:3e:00:06:00 ip=10.0.0.16 script="$VIF_XENNET"
expect "online exits 0 (domain 6)" run_hotplug "$VIF_XENNET" online 6 0
expect "guest 6 reaches its gateway" ping_from "$(guest 6)" 10.0.0.1
expect "map add" xn map add 192.168.50.10 10.0.0.15 --force --name web
expect "forward add" xn forward add 192.168.50.11:80/tcp 10.0.0.16:8080 --force
expect "a forward to nobody's address" xn forward add 192.168.50.11:81/tcp 10.0.0.99:81 --force

inv=$(xn inventory --json)
expect_eq "inventory --json has a version" 1 "$(jq .version <<<"$inv")"
expect_eq "domains in order, with their names as xenstore has them" "5 $NAME|6 guest6" \
	"$(jq -r '[.domains[] | "\(.domid) \(.name)"] | join("|")' <<<"$inv")"
expect_eq "domain 5's vif: name, mac, addresses, bridge, state" \
	"vif5.0 00:16:3e:00:05:00 10.0.0.15 xenbr0 connected" \
	"$(jq -r '.domains[0].vifs[0] | "\(.name) \(.mac) \(.addresses | join(",")) \(.bridge) \(.state)"' <<<"$inv")"
expect_eq "domain 5's public address" "192.168.50.10 10.0.0.15 web" \
	"$(jq -r '.domains[0].maps[] | "\(.public) \(.guest) \(.name)"' <<<"$inv")"
expect_eq "domain 6's forward" "192.168.50.11:80/tcp 10.0.0.16:8080" \
	"$(jq -r '.domains[1].forwards[] | "\(.public):\(.port)/\(.proto) \(.guest):\(.guest_port)"' <<<"$inv")"
expect_eq "domain 6 has no map" 0 "$(jq '.domains[1].maps | length' <<<"$inv")"
expect_eq "the forward to nobody's address is unattached" "10.0.0.99" \
	"$(jq -r '.unattached.forwards[].guest' <<<"$inv")"
out=$(xn inventory)
expect "inventory text: the domain line" grep -qF "domain 5 ($NAME)" <<<"$out"
expect "inventory text: the vif line" grep -q "^  vif5.0 (5/0): mac 00:16:3e:00:05:00, connected, bridge xenbr0 (nat), addresses 10.0.0.15$" <<<"$out"
expect "inventory text: the map" grep -q "^  public 192.168.50.10 -> 10.0.0.15 (map, cli)$" <<<"$out"

st=$(xn status --json)
expect_eq "status --json has a version" 1 "$(jq .version <<<"$st")"
expect_eq "status --json: the vif's MAC" 00:16:3e:00:05:00 \
	"$(jq -r '.vifs[] | select(.name == "vif5.0") | .mac' <<<"$st")"
expect_eq "status --json: the domain name escaped, not mangled" "$NAME" \
	"$(jq -r '.vifs[] | select(.name == "vif5.0") | .domain' <<<"$st")"
expect_eq "status --json: the uplink" "eth0 true 192.168.50.2/24" \
	"$(jq -r '.uplinks[0] | "\(.name) \(.up) \(.addresses | join(","))"' <<<"$st")"
out=$(xn status)
expect "status: the uplink" grep -q "^uplink eth0: up, mtu 1500, addresses 192.168.50.2/24" <<<"$out"
expect "status: the vif's MAC" grep -q "^vif 5/0 vif5.0 (domain .*): connected, mac 00:16:3e:00:05:00, bridge xenbr0" <<<"$out"
expect "status: the spoofed packets dropped from it" grep -Eq "^vif 5/0 .*, [0-9]+ spoofed packets dropped$" <<<"$out"
drops() { xn status --json | jq ".vifs[] | select(.name == \"$1\") | .spoofed_dropped.packets"; }
d5=$(drops vif5.0)
d6=$(drops vif6.0)
expect_eq "as many as its as_drops element counted" "$d5" \
	"$(in_ns "$DOM0" nft -j list set bridge xennet as_drops | jq '.nftables[1].set.elem[] | select(.elem.val == "vif5.0") | .elem.counter.packets')"

# Guest 5 sends from an address that is not its own: counted on vif5.0.
ip -n "$(guest 5)" addr add 10.0.0.99/32 dev eth0
in_ns "$(guest 5)" ping -c 3 -i 0.2 -W 1 -I 10.0.0.99 10.0.0.1 >/dev/null 2>&1 || true
expect "guest 6 still reaches its gateway" ping_from "$(guest 6)" 10.0.0.1
st=$(xn status --json)
n5=$(jq '.vifs[] | select(.name == "vif5.0") | .spoofed_dropped.packets' <<<"$st")
expect "status --json: vif5.0's spoofed packets are counted ($d5 -> $n5)" test "$n5" -gt "$d5"
expect_eq "status --json: none more on vif6.0" "$d6" "$(jq '.vifs[] | select(.name == "vif6.0") | .spoofed_dropped.packets' <<<"$st")"
expect "status: the count on vif5.0's line" grep -q "^vif 5/0 .*, $n5 spoofed packets dropped$" <(xn status)

# An as_drops element deleted by someone is put back, like the other
# anti-spoofing elements.
in_ns "$DOM0" nft delete element bridge xennet as_drops '{ "vif6.0" }'
back=
for _ in $(seq 20); do
	in_ns "$DOM0" nft list set bridge xennet as_drops | grep -q '"vif6.0"' && { back=yes; break; }
	sleep 0.1
done
expect_eq "a deleted as_drops element is put back" yes "$back"

m=$(xn map list --json)
expect_eq "map list --json is an object with a version" "1 1" "$(jq -r '"\(.version) \(.maps | length)"' <<<"$m")"
f=$(xn forward list --json)
expect_eq "forward list --json too" "1 2" "$(jq -r '"\(.version) \(.forwards | length)"' <<<"$f")"
stop_daemon
