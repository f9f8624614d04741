#!/bin/bash
# take_addresses: the ledger says which of the uplink's addresses were
# moved to the bridge. When the bridge is deleted and made again, those
# addresses are put back on it; if the kernel refuses one (here: IPv6
# turned off on new devices meanwhile), the ledger must still say where
# it came from, so that `xennet down` gives it back to the uplink. A route
# put back is still one entry of the ledger, not one more each time.
. "$(dirname "$0")/lib.sh"
export XENNET_SOCKET=$T/ctl.sock
V6=fd00:50::2/64

make_lan_and_dom0
in_ns "$DOM0" sysctl -qw net.ipv6.conf.default.disable_ipv6=0
ip -n "$DOM0" addr add "$V6" dev eth0 nodad
bridged_profile "$T/bridged.conf"
start_daemon "$T/bridged.conf"
v6_on() { ip -n "$DOM0" -j addr show dev "$1" 2>/dev/null | jq -r '.[0].addr_info[]? | select(.family == "inet6" and .scope == "global") | "\(.local)/\(.prefixlen)"'; }
v4_on() { ip -n "$DOM0" -j addr show dev "$1" 2>/dev/null | jq -r '.[0].addr_info[]? | select(.family == "inet") | .local'; }
expect_eq "the IPv6 address moved to xenbr0" "$V6" "$(v6_on xenbr0)"

# New devices get no IPv6: the bridge made again cannot take the address.
in_ns "$DOM0" sysctl -qw net.ipv6.conf.default.disable_ipv6=1
ip -n "$DOM0" link del xenbr0
for _ in $(seq 100); do [ "$(v4_on xenbr0)" = "$DOM0_IP" ] && break; sleep 0.05; done
expect_eq "xenbr0 is made again with the IPv4 address" "$DOM0_IP" "$(v4_on xenbr0)"
for _ in $(seq 40); do grep -q "fd00:50::2/64 from eth0 to xenbr0) failed" "$T/daemon.log" && break; sleep 0.05; done
expect "the kernel refused the IPv6 address on the new bridge" \
	grep -q "fd00:50::2/64 from eth0 to xenbr0) failed" "$T/daemon.log"

# IPv6 allowed again; xennet down must give the address back to eth0.
in_ns "$DOM0" sysctl -qw net.ipv6.conf.default.disable_ipv6=0
in_ns "$DOM0" sysctl -qw net.ipv6.conf.xenbr0.disable_ipv6=0
sleep 0.5
# Once more: the default route put back again.
ip -n "$DOM0" link del xenbr0
for _ in $(seq 100); do [ "$(ip -n "$DOM0" -j route show default | jq -r '.[0].dev')" = xenbr0 ] && break; sleep 0.05; done
expect_eq "the default route is back on xenbr0" xenbr0 "$(ip -n "$DOM0" -j route show default | jq -r '.[0].dev')"
out=$(xn down) || fail "xennet down failed: $out"
expect_eq "down moves the default route back once" 1 "$(grep -c 'move default route via 192.168.50.1 back' <<<"$out")"
wait "$DPID" || true
DPID=
expect_eq "eth0 has its IPv6 address back" "$V6" "$(v6_on eth0)"
expect_eq "eth0 has its IPv4 address back" "$DOM0_IP" "$(v4_on eth0)"
