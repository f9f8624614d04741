#!/bin/bash
# vif hotplug in routed and NAT mode, replayed as libxl does it.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/xenstore.sh"
: "${VIF_XENNET:?}"
export XENNET_SOCKET=$T/ctl.sock

make_lan_and_dom0
start_xenstored

# ---- routed ----
cat >"$T/routed.conf" <<CONF
[xennet]
mode = routed
[routed]
uplink = eth0
CONF
start_daemon "$T/routed.conf"
expect_eq "routed: IPv6 forwarding on" 1 "$(sysctl_in "$DOM0" net/ipv6/conf/all/forwarding)"
expect_eq "routed: proxy NDP on the uplink" 1 "$(sysctl_in "$DOM0" net/ipv6/conf/eth0/proxy_ndp)"
ip -n "$LAN" addr add fd00:50::1/64 dev eth0
ip -n "$DOM0" addr add fd00:50::2/64 dev eth0
make_guest 1 192.168.50.21/24 "$DOM0_IP"
ip -n "$(guest 1)" addr add fd00:50::21/128 dev eth0
libxl_add_vif 1 0 "mac=$(mac_of "$(guest 1)" eth0)" "ip=192.168.50.21 fd00:50::21" script="$VIF_XENNET"
expect "routed: online exits 0" run_hotplug "$VIF_XENNET" online 1 0
expect_eq "routed: hotplug-status connected" connected "$(xs_read backend/vif/1/0/hotplug-status)"
route=$(ip -n "$DOM0" -j route show 192.168.50.21)
expect_eq "routed: host route through vif1.0 from Dom0's address" "vif1.0 $DOM0_IP" \
	"$(jq -r '.[0] | "\(.dev) \(.prefsrc)"' <<<"$route")"
expect_eq "routed: proxy_arp on the vif" 1 "$(sysctl_in "$DOM0" net/ipv4/conf/vif1.0/proxy_arp)"
expect_eq "routed: IPv6 host route through vif1.0" vif1.0 \
	"$(ip -n "$DOM0" -j -6 route show fd00:50::21 | jq -r '.[0].dev')"
expect_eq "routed: neighbour proxy on the uplink" eth0 \
	"$(ip -n "$DOM0" -j -6 neigh show proxy | jq -r '.[] | select(.dst == "fd00:50::21") | .dev')"
# The guest routes IPv6 through Dom0's link-local address on its vif.
for _ in $(seq 50); do
	ll=$(ip -n "$DOM0" -j -6 addr show dev vif1.0 scope link | jq -r '.[0].addr_info[0].local // empty')
	[ -n "$ll" ] && break
	sleep 0.1
done
ip -n "$(guest 1)" -6 route add default via "$ll" dev eth0
expect "routed: the LAN reaches the guest over IPv6" ping_from "$LAN" fd00:50::21
expect "routed: the LAN reaches the guest" ping_from "$LAN" 192.168.50.21
src=$(exchange tcp "$LAN" "$(guest 1)" 192.168.50.21 7501) || fail "routed TCP LAN -> guest"
expect_eq "routed: the guest sees the LAN's address" "$LAN_IP" "$src"
# Anti-spoofing on a routed vif: another source address is dropped.
ip -n "$(guest 1)" addr add 192.168.50.98/24 dev eth0
set +e
NETCHECK_SRC=192.168.50.98 exchange udp "$(guest 1)" "$LAN" "$LAN_IP" 7502 >/dev/null
rc=$?
set -e
expect_eq "routed: a packet from another IP is dropped" 1 "$rc"
drops=$(nft_json | jq '[.nftables[] | select(.rule.family == "inet" and .rule.chain == "antispoof") | .rule.expr[] | select(has("counter")) | .counter.packets] | add')
expect "routed: the drop is counted" test "$drops" -ge 1
libxl_remove_vif 1 0
expect "routed: offline exits 0" run_hotplug "$VIF_XENNET" offline 1 0
expect_eq "routed: host route removed" "" "$(ip -n "$DOM0" -j route show 192.168.50.21 | jq -r '.[0].dev // empty')"
expect_not "routed: the LAN no longer reaches the guest" in_ns "$LAN" ping -c 1 -W 1 -q 192.168.50.21
expect_eq "routed: the neighbour proxy is gone" "" \
	"$(ip -n "$DOM0" -j -6 neigh show proxy | jq -r '.[] | select(.dst == "fd00:50::21") | .dev')"
stop_daemon

# ---- nat ----
nat_profile "$T/nat.conf"
start_daemon "$T/nat.conf"
make_guest 2 10.0.0.12/24 10.0.0.1
# libxl writes bridge=xenbr0 by default; the vif joins the NAT bridge.
libxl_add_vif 2 0 "mac=$(mac_of "$(guest 2)" eth0)" ip=10.0.0.12 script="$VIF_XENNET"
expect "nat: online exits 0" run_hotplug "$VIF_XENNET" online 2 0
expect_eq "nat: vif2.0 joins the guest bridge" xenbr0 "$(ip -n "$DOM0" -j link show vif2.0 | jq -r '.[0].master')"
src=$(exchange tcp "$(guest 2)" "$LAN" "$LAN_IP" 7503) || fail "nat TCP guest -> LAN"
expect_eq "nat: masqueraded to Dom0's uplink address" "$DOM0_IP" "$src"
status=$(xn status --json)
expect_eq "status lists the vif" "2/0 connected true" \
	"$(jq -r '.vifs[] | select(.domid == 2) | "\(.domid)/\(.devid) \(.state) \(.antispoof)"' <<<"$status")"
# The whole backend/vif/2 directory goes at once (one watch event, on
# the domain's directory): the vif is undone all the same.
xenstore-rm /local/domain/0/backend/vif/2
for _ in $(seq 50); do
	[ "$(ip -n "$DOM0" -j link show vif2.0 | jq -r '.[0].master')" = null ] && break
	sleep 0.1
done
expect_eq "nat: vif2.0 left the bridge when its domain's backend went" null \
	"$(ip -n "$DOM0" -j link show vif2.0 | jq -r '.[0].master')"
expect_eq "nat: and its filter elements" 0 \
	"$(nft_json | jq '[.nftables[] | select(.set.family == "bridge") | .set.elem[]? | tostring | select(test("vif2.0"))] | length')"
