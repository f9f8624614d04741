#!/bin/bash
# Debian's real xl (tests/ns/xl.sh) attaches and detaches vifs with
# vif-xennet under xennetd in routed mode, then in NAT mode: xl's exit
# status, the kernel state each mode makes, packets both ways where the
# mode allows, and nothing left after the detach.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/xenstore.sh"
. "$(dirname "$0")/xl.sh"
: "${VIF_XENNET:?}"
export XENNET_SOCKET=$T/ctl.sock

be_read() { xs_read "/local/domain/0/backend/vif/$1/$2/$3"; }
inet_as_elems() {
	nft_json | jq '[.nftables[] | select(.set.family == "inet" and (.set.name | startswith("as_"))) | .set.elem[]?] | length'
}
vif_count() { xn status --json | jq '[.vifs[]?] | length'; }

make_lan_and_dom0
start_xenstored --domains ""
xl_start
xl_add_domain 1 web
xl_add_domain 2 app

# ---- routed
cat >"$T/routed.conf" <<CONF
[xennet]
mode = routed
[routed]
uplink = eth0
CONF
start_daemon "$T/routed.conf"
expect "routed: xl network-attach exits 0" \
	xl_attach 1 mac=00:16:3e:00:01:00 ip=192.168.50.21 script=vif-xennet
expect_eq "routed: hotplug-status connected" connected "$(be_read 1 0 hotplug-status)"
expect_eq "routed: the backend connected" 4 "$(be_state 1 0 4)"
expect_eq "routed: a host route through vif1.0 from Dom0's address" "vif1.0 $DOM0_IP" \
	"$(ip -n "$DOM0" -j route show 192.168.50.21 | jq -r '.[0] | "\(.dev) \(.prefsrc)"')"
expect_eq "routed: proxy_arp on the vif" 1 "$(sysctl_in "$DOM0" net/ipv4/conf/vif1.0/proxy_arp)"
expect "routed: anti-spoofing elements for vif1.0" test "$(inet_as_elems)" -ge 2
ip -n "$(guest 1)" addr add 192.168.50.21/24 dev eth0
ip -n "$(guest 1)" route add default via "$DOM0_IP"
expect "routed: the LAN reaches the guest" ping_from "$LAN" 192.168.50.21
src=$(exchange tcp "$LAN" "$(guest 1)" 192.168.50.21 7601) || fail "routed: TCP LAN -> guest"
expect_eq "routed: the guest sees the LAN's address" "$LAN_IP" "$src"
expect "routed: the guest reaches the LAN" ping_from "$(guest 1)" "$LAN_IP"
expect "routed: xl network-detach exits 0" xl_detach 1 0
expect_eq "routed: the host route is gone" "" \
	"$(ip -n "$DOM0" -j route show 192.168.50.21 | jq -r '.[0].dev // empty')"
expect_not "routed: the backend is gone" xs_exists /local/domain/0/backend/vif/1/0
expect_eq "routed: nothing left in xennet status" 0 "$(vif_count)"
expect_eq "routed: no anti-spoofing element left" 0 "$(inet_as_elems)"
expect_not "routed: the LAN no longer reaches the guest" in_ns "$LAN" ping -c 1 -W 1 -q 192.168.50.21
stop_daemon

# ---- NAT
nat_profile "$T/nat.conf"
start_daemon "$T/nat.conf"
expect "nat: xl network-attach exits 0" \
	xl_attach 2 bridge=xenbr0 mac=00:16:3e:00:02:00 ip=10.0.0.5 script=vif-xennet
expect_eq "nat: hotplug-status connected" connected "$(be_read 2 0 hotplug-status)"
expect_eq "nat: the backend connected" 4 "$(be_state 2 0 4)"
expect_eq "nat: vif2.0 joined the guest bridge" xenbr0 \
	"$(ip -n "$DOM0" -j link show vif2.0 | jq -r '.[0].master')"
ip -n "$(guest 2)" addr add 10.0.0.5/24 dev eth0
ip -n "$(guest 2)" route add default via 10.0.0.1
expect "nat: the guest pings its gateway" ping_from "$(guest 2)" 10.0.0.1
src=$(exchange tcp "$(guest 2)" "$LAN" "$LAN_IP" 7602) || fail "nat: TCP guest -> LAN"
expect_eq "nat: the LAN sees Dom0's address (masqueraded)" "$DOM0_IP" "$src"
expect "nat: xl network-detach exits 0" xl_detach 2 0
expect_not "nat: the backend is gone" xs_exists /local/domain/0/backend/vif/2/0
expect_eq "nat: nothing left in xennet status" 0 "$(vif_count)"
expect_eq "nat: xenbr0 has no port left" 0 \
	"$(ip -n "$DOM0" -j link show master xenbr0 | jq length)"
