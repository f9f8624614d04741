#!/bin/bash
# What would break the host is refused or warned about (issue 15):
# a bridge address inside a network the host already uses (the LAN's own
# subnet, a route) is refused by check and apply, naming FILE:LINE, and
# changes nothing; status says so; the plan warns when it would detach
# connected vifs or make a DHCP lease or SLAAC address permanent; a bridge
# xennet adopts keeps its STP and forward delay unless the profile says
# otherwise, and gets them back.
. "$(dirname "$0")/lib.sh"

make_lan_and_dom0
nat_profile "$T/nat.conf"
start_daemon "$T/nat.conf"

# The LAN gateway's own address as the NAT gateway: refused, at line 4.
printf '[xennet]\nmode = nat\n[bridge xenbr1]\naddress = 192.168.50.1/24\n[nat]\nuplink = eth0\nbridge = xenbr1\n' >"$T/lan.conf"
set +e
out=$(xn check "$T/lan.conf" 2>&1); rc=$?
set -e
expect_eq "check of a guest network on the LAN's subnet fails" 1 "$rc"
expect "and names the profile line and what it overlaps" \
	grep -q "$T/lan.conf:4: address 192.168.50.1/24 of bridge xenbr1 overlaps 192.168.50.2/24 on eth0" <<<"$out"
s0=$(kernel_state)
set +e
out=$(xn apply "$T/lan.conf" 2>&1); rc=$?
set -e
expect_eq "apply of it fails" 1 "$rc"
expect "and says why" grep -q "lan.conf:4: address 192.168.50.1/24 of bridge xenbr1 overlaps" <<<"$out"
expect_eq "and changes nothing" "$s0" "$(kernel_state)"
expect "Dom0 still reaches its gateway" in_ns "$DOM0" ping -c 1 -W 2 -q "$LAN_IP"
expect "status says the apply was refused" grep -q "last apply failed: .*lan.conf:4: address 192.168.50.1/24" <(xn status)

# A network the host routes elsewhere (a VPN, a site network).
ip -n "$DOM0" route add 10.99.0.0/16 via "$LAN_IP"
printf '[xennet]\nmode = nat\n[bridge xenbr0]\naddress = 10.0.0.1/24\naddress = 10.99.3.1/24\n[nat]\nuplink = eth0\nbridge = xenbr0\n' >"$T/route.conf"
set +e
out=$(xn check "$T/route.conf" 2>&1); rc=$?
set -e
expect_eq "check of a network the host routes elsewhere fails" 1 "$rc"
expect "and names line 5 and the route" \
	grep -q "route.conf:5: address 10.99.3.1/24 of bridge xenbr0 overlaps the route to 10.99.0.0/16 on eth0" <<<"$out"
expect "the profile in force is still fine" xn check "$T/nat.conf"

# Vifs connected to a bridge the next profile removes.
make_guest 1 10.0.0.11/24 10.0.0.1
attach_vif_to_bridge vif1.0 xenbr0
printf '[xennet]\nmode = nat\n[bridge xenbr2]\naddress = 10.0.2.1/24\n[nat]\nuplink = eth0\nbridge = xenbr2\n' >"$T/other.conf"
out=$(xn check "$T/other.conf")
expect "check warns that vif1.0 is detached" \
	grep -q "^warning: vif1.0 is detached: bridge xenbr0, which the profile no longer has, is removed" <<<"$out"
out=$(xn apply "$T/other.conf")
expect "the apply report warns too" grep -q "^warning: vif1.0 is detached" <<<"$out"
expect "and the log" grep -q "applying $T/other.conf: warning: vif1.0 is detached" "$T/daemon.log"
expect "and status" grep -q "^warning: vif1.0 is detached" <(xn status)
expect "and status --json" grep -q "^vif1.0 is detached: bridge xenbr0" <(xn status --json | jq -r '.last_warnings[0]')
out=$(xn check "$T/nat.conf")
expect_not "no warning without ports" grep -q "warning" <<<"$out"
stop_daemon
rm -rf "$T/state"
ip -n "$DOM0" link del vif1.0
ip -n "$DOM0" link del xenbr2 2>/dev/null || true

# take_addresses of a DHCP lease and a SLAAC address (not permanent).
ip -n "$DOM0" addr add 192.168.50.3/24 dev eth0 valid_lft 3600 preferred_lft 3600
ip -n "$DOM0" addr add 2001:db8:51::2/64 dev eth0 valid_lft 7200 preferred_lft 7200 nodad
printf '[xennet]\nmode = bridged\n[bridge xenbr0]\nuplink = eth0\ntake_addresses = yes\n' >"$T/bridged.conf"
out=$(xn check "$T/bridged.conf")
expect "check warns of the DHCP lease" \
	grep -Eq "^warning: address 192.168.50.3/24 on eth0 is dynamic \(a DHCP lease, valid for [0-9]+ s more\): moved to xenbr0 it becomes permanent" <<<"$out"
expect "and of the SLAAC address" grep -q "^warning: address 2001:db8:51::2/64 on eth0 is dynamic (SLAAC or DHCPv6" <<<"$out"
expect_not "not of the static one" grep -q "address 192.168.50.2/24 on eth0 is dynamic" <<<"$out"

# A bridge made by someone else, with STP on and a forward delay of 4 s.
ip -n "$DOM0" addr del 192.168.50.3/24 dev eth0
ip -n "$DOM0" addr del 2001:db8:51::2/64 dev eth0
stp() { ip -n "$DOM0" -j -d link show xenbr0 | jq -r '.[0].linkinfo.info_data | "\(.stp_state) \(.forward_delay)"'; }
ip -n "$DOM0" link add xenbr0 type bridge stp_state 1 forward_delay 400
printf '[xennet]\nmode = bridged\n[bridge xenbr0]\nuplink = eth0\n' >"$T/adopt.conf"
out=$(xn check "$T/adopt.conf")
expect_not "check plans no STP change on an adopted bridge" grep -q "STP" <<<"$out"
start_daemon "$T/adopt.conf"
expect_eq "the adopted bridge keeps STP on and its forward delay" "1 400" "$(stp)"
expect "eth0 is its port" grep -q "master xenbr0" <(ip -n "$DOM0" link show eth0)
printf '[xennet]\nmode = bridged\n[bridge xenbr0]\nuplink = eth0\nstp = no\nforward_delay = 0\n' >"$T/stpoff.conf"
xn apply "$T/stpoff.conf" >/dev/null
expect_eq "stp = no, forward_delay = 0 set them" "0 0" "$(stp)"
expect "the ledger keeps what the bridge had" grep -qx "tuned xenbr0 1 400" "$T/state/ledger"
xn apply "$T/adopt.conf" >/dev/null
expect_eq "a profile without them puts them back" "1 400" "$(stp)"
expect_not "and the ledger forgets them" grep -q "^tuned" "$T/state/ledger"
xn apply "$T/stpoff.conf" >/dev/null
expect_eq "set again" "0 0" "$(stp)"
xn down >/dev/null
wait "$DPID" || true
DPID=
expect_eq "xennet down puts them back too" "1 400" "$(stp)"
expect_not "and releases eth0" grep -q "master" <(ip -n "$DOM0" link show eth0)

# A bridge xennet makes: the profile's values, else STP off and 0.
ip -n "$DOM0" link del xenbr0
printf '[xennet]\nmode = bridged\n[bridge xenbr0]\nuplink = eth0\nstp = yes\nforward_delay = 3\n' >"$T/stpon.conf"
start_daemon "$T/stpon.conf"
expect_eq "a bridge made with stp = yes, forward_delay = 3" "1 300" "$(stp)"
xn apply "$T/adopt.conf" >/dev/null
expect_eq "its own bridge without the keys: STP off, 0" "0 0" "$(stp)"
printf '[xennet]\nmode = bridged\n[bridge xenbr0]\nstp = yes\nforward_delay = 1\n' >"$T/badfd.conf"
set +e
out=$(xn check "$T/badfd.conf" 2>&1); rc=$?
set -e
expect_eq "forward_delay 1 with stp = yes is refused" 1 "$rc"
expect "at its line" grep -q "badfd.conf:5: forward_delay = 1 in \[bridge xenbr0\]" <<<"$out"
stop_daemon
