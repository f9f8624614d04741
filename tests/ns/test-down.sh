#!/bin/bash
# `xennet down` leaves the host as it was before xennet: bridges gone, the
# uplink's addresses and routes back on it, sysctls restored, nftables
# tables and public addresses removed; then xennetd exits (status 0).
# With mappings made by the CLI it refuses and changes nothing.
. "$(dirname "$0")/lib.sh"

wait_exit() {
	local rc=0
	wait "$DPID" || rc=$?
	DPID=
	return $rc
}

# Bridged, the uplink's addresses taken by the bridge.
make_lan_and_dom0
ip -n "$DOM0" addr add 2001:db8:50::2/64 dev eth0 nodad
s0=$(kernel_state)
printf '[xennet]\nmode = bridged\n[bridge xenbr0]\nuplink = eth0\ntake_addresses = yes\n' >"$T/bridged.conf"
start_daemon "$T/bridged.conf"
expect "the bridge has Dom0's address" grep -q "$DOM0_IP" <(ip -n "$DOM0" addr show xenbr0)
expect "xennet down" xn down
expect "xennetd exits with status 0" wait_exit
expect_eq "the host is as before xennet" "$s0" "$(kernel_state)"
expect "Dom0 reaches the LAN through eth0" in_ns "$DOM0" ping -c 1 -W 2 -q "$LAN_IP"
expect "the log says what was undone" grep -q "down (requested by uid 0 pid [0-9]*): [1-9][0-9]* changes" "$T/daemon.log"

# NAT with a mapping made by the CLI: refused until it is removed.
nat_profile "$T/nat.conf"
s0=$(kernel_state)
start_daemon "$T/nat.conf"
expect "map add" xn map add 192.168.50.10 10.0.0.11
s1=$(kernel_state)
set +e
out=$(xn down 2>&1); rc=$?
set -e
expect_eq "down with a CLI mapping fails" 1 "$rc"
expect "and says why" grep -q "need a profile in nat mode; remove them first" <<<"$out"
expect_eq "and changes nothing" "$s1" "$(kernel_state)"
expect "xennetd still runs" daemon_alive
expect "map del" xn map del 192.168.50.10
expect "xennet down" xn down
expect "xennetd exits with status 0" wait_exit
expect_eq "the host is as before xennet (NAT)" "$s0" "$(kernel_state)"
expect_eq "ip_forward is back to 0" 0 "$(sysctl_in "$DOM0" net/ipv4/ip_forward)"
