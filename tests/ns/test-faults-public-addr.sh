#!/bin/bash
# map add / forward add refuse dangerous public addresses: the reserved
# classes and (for a 1:1 map) Dom0's own addresses always; an address
# another host on the uplink's link is using (it answers an ARP probe, as
# in duplicate address detection) unless --force. The probes do not hold
# up the event loop.
. "$(dirname "$0")/lib.sh"

make_lan_and_dom0
make_guest 1 10.0.0.11/24 10.0.0.1
make_guest 2 10.0.0.12/24 10.0.0.1
nat_profile "$T/nat.conf"
start_daemon "$T/nat.conf"
attach_vif_to_bridge vif1.0 xenbr0
attach_vif_to_bridge vif2.0 xenbr0
# Another host on the LAN's link: 192.168.50.77.
ip -n "$LAN" addr add 192.168.50.77/24 dev eth0
public_routes() { ip -n "$DOM0" -j route show table local proto 120 | jq -r '[.[].dst] | sort | join(" ")'; }
ms() { echo $(($(date +%s%N) / 1000000)); }
before=$(kernel_state)

refuse() {
	local what=$1 want=$2
	shift 2
	local rc=0 out
	out=$(xn "$@" 2>&1) || rc=$?
	expect_eq "$what: refused" 1 "$rc"
	expect "$what: says why ($out)" grep -qF "$want" <<<"$out"
}
for force in "" --force; do
	refuse "0.0.0.0 $force" "0.0.0.0 is in 0.0.0.0/8" map add 0.0.0.0 10.0.0.11 $force
	refuse "255.255.255.255 $force" "is the limited broadcast address" map add 255.255.255.255 10.0.0.11 $force
	refuse "loopback $force" "127.0.0.1 is a loopback address" map add 127.0.0.1 10.0.0.11 $force
	refuse "multicast $force" "224.0.0.1 is a multicast address" map add 224.0.0.1 10.0.0.11 $force
	refuse "link-local $force" "169.254.1.1 is a link-local address" map add 169.254.1.1 10.0.0.11 $force
	refuse "class E $force" "240.0.0.1 is a reserved address" map add 240.0.0.1 10.0.0.11 $force
	refuse "a forward on loopback $force" "127.0.0.2 is a loopback address" forward add 127.0.0.2:80/tcp 10.0.0.11:80 $force
	refuse "Dom0's own address, 1:1 $force" "one of Dom0's own addresses" map add "$DOM0_IP" 10.0.0.11 $force
	refuse "the uplink's broadcast address $force" "network or broadcast address of 192.168.50.0/24" map add 192.168.50.255 10.0.0.11 $force
done
expect_eq "nothing changed in the kernel after these refusals" "$before" "$(kernel_state)"

# Addresses other hosts on the link are using: the LAN's router, another host.
t0=$(ms)
refuse "the LAN router's address" "192.168.50.1 is in use on eth0: $(ip -n "$LAN" -j link show eth0 | jq -r '.[0].address') answered ARP" \
	map add "$LAN_IP" 10.0.0.11
t1=$(ms)
refuse "another host's address" "192.168.50.77 is in use on eth0" map add 192.168.50.77 10.0.0.11
refuse "a forward on another host's address" "192.168.50.77 is in use on eth0" forward add 192.168.50.77:80/tcp 10.0.0.11:80
expect_eq "no public address taken" "" "$(public_routes)"
expect_eq "nothing changed in the kernel" "$before" "$(kernel_state)"
echo "note: a refusal took $((t1 - t0)) ms"

# A free address on the link: probed, then taken; the loop serves others
# during the probes.
xn map add 192.168.50.101 10.0.0.11 >"$T/add.out" 2>&1 &
addpid=$!
sleep 0.05
t0=$(ms)
xn status >/dev/null
t1=$(ms)
expect "status is answered while the probes run ($((t1 - t0)) ms)" kill -0 "$addpid"
wait "$addpid" || fail "map add of a free address: $(cat "$T/add.out")"
pass "a free address on the link is taken after its probes"
expect "the LAN reaches the guest through it" ping_from "$LAN" 192.168.50.101
# A forward on an address already ours needs no probe; off the link, none.
expect "a public address routed to Dom0 (off the link) is taken" xn map add 100.64.1.1 10.0.0.12
expect "a forward on Dom0's own address is still allowed" xn forward add "$DOM0_IP:8080/tcp" 10.0.0.12:80

# --force takes an address another host answers for.
expect "map del of the off-link one (guest 2 free again)" xn map del 100.64.1.1
expect "map add --force" xn map add 192.168.50.77 10.0.0.12 --force
expect_eq "public addresses taken" "192.168.50.101 192.168.50.77" "$(public_routes)"
