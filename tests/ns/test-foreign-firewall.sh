#!/bin/bash
# Other firewalls on the host: Docker's `ip filter FORWARD` with policy
# drop, firewalld's `inet firewalld` forward chain ending in a reject, and
# a drop reached by bridged frames through br_netfilter each drop the
# guests' traffic (checked with packets). xennet leaves them alone but
# says so: a warning in the log without being asked, `xennet status`
# (and --json) degraded with exit status 1, and back to ok once the
# remedy from the README is applied.
. "$(dirname "$0")/lib.sh"

wait_log() {
	for _ in $(seq 300); do grep -q -- "$1" "$T/daemon.log" && return 0; sleep 0.05; done
	return 1
}
status_rc() { local rc=0; xn status >"$T/status.out" 2>&1 || rc=$?; echo "$rc"; }
nftd() { in_ns "$DOM0" nft "$@"; }

make_lan_and_dom0
make_guest 1 10.0.0.11/24 10.0.0.1
nat_profile "$T/nat.conf"
start_daemon "$T/nat.conf"
attach_vif_to_bridge vif1.0 xenbr0
expect "the guest reaches the LAN" ping_from "$(guest 1)" "$LAN_IP"
expect_eq "status exits 0" 0 "$(status_rc)"
expect "and says the firewalls are ok" grep -qx "firewalls: ok" "$T/status.out"

# Docker: iptables-nft's FORWARD chain with policy drop.
nftd add table ip filter
nftd add chain ip filter FORWARD '{ type filter hook forward priority 0; policy drop; }'
expect_not "Docker's policy drop blocks the guest" ping_from "$(guest 1)" "$LAN_IP"
expect "the daemon warns on its own (within 10 s)" wait_log "the chain ip filter FORWARD (not xennet's) has policy drop"
expect_eq "status exits 1" 1 "$(status_rc)"
expect "status says degraded, naming the chain and the remedy" \
	grep -q "ip filter FORWARD.*DOCKER-USER" "$T/status.out"
expect "on stdout, with the rest of the status" grep -qx "firewalls: DEGRADED, guests' traffic is dropped" "$T/status.out"
expect_eq "status --json: degraded" true "$(xn status --json | jq .degraded || true)"
# The README's remedy (what `iptables -I DOCKER-USER -i xenbr0 -j ACCEPT` makes).
nftd add chain ip filter DOCKER-USER
nftd add rule ip filter FORWARD jump DOCKER-USER
nftd add rule ip filter DOCKER-USER iifname xenbr0 accept
nftd add rule ip filter DOCKER-USER oifname xenbr0 accept
expect "with the remedy the guest reaches the LAN" ping_from "$(guest 1)" "$LAN_IP"
expect_eq "and status exits 0" 0 "$(status_rc)"
expect "the log says so" wait_log "no other firewall drops the guests' traffic any more"
nftd delete table ip filter

# firewalld: a forward chain that ends with a reject.
nftd add table inet firewalld
nftd add chain inet firewalld filter_FORWARD '{ type filter hook forward priority 10; policy accept; }'
nftd add rule inet firewalld filter_FORWARD ct state established,related accept
nftd add rule inet firewalld filter_FORWARD reject with icmpx type admin-prohibited
expect_not "firewalld's final reject blocks the guest" ping_from "$(guest 1)" "$LAN_IP"
expect_eq "status exits 1" 1 "$(status_rc)"
expect "naming the chain and firewalld's remedy" \
	grep -q "inet firewalld filter_FORWARD (not xennet's) ends with a drop or reject.*--zone=trusted" "$T/status.out"
nftd delete table inet firewalld
expect_eq "without it status exits 0" 0 "$(status_rc)"
stop_daemon

# Bridged mode: Docker's drop reaches bridged frames only through
# br_netfilter (its sysctls are per network namespace).
rm -rf "$T/state"
ip netns del "$DOM0"; ip netns del "$LAN"; ip netns del "$(guest 1)"
make_lan_and_dom0
make_guest 1 192.168.50.11/24 "$LAN_IP"
printf '[xennet]\nmode = bridged\n[bridge xenbr0]\nuplink = eth0\ntake_addresses = yes\n' >"$T/bridged.conf"
start_daemon "$T/bridged.conf"
attach_vif_to_bridge vif1.0 xenbr0
in_ns "$DOM0" sh -c 'echo 1 >/proc/sys/net/bridge/bridge-nf-call-iptables'
nftd add table ip filter
nftd add chain ip filter FORWARD '{ type filter hook forward priority 0; policy drop; }'
expect_not "with br_netfilter the drop blocks the bridged guest" ping_from "$(guest 1)" "$LAN_IP"
expect_eq "status exits 1" 1 "$(status_rc)"
expect "naming br_netfilter and its remedy" \
	grep -q "through br_netfilter.*bridge-nf-call-iptables=0" "$T/status.out"
in_ns "$DOM0" sh -c 'echo 0 >/proc/sys/net/bridge/bridge-nf-call-iptables; echo 0 >/proc/sys/net/bridge/bridge-nf-call-ip6tables'
expect "without br_netfilter's call the bridged guest reaches the LAN" ping_from "$(guest 1)" "$LAN_IP"
expect_eq "and status exits 0, the chain still there" 0 "$(status_rc)"
