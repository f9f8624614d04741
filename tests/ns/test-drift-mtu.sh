#!/bin/bash
# One vif's backend mtu (smaller than the bridge's) stays on that vif: the
# bridge keeps its own MTU (the profile's, else the uplink's, else 1500),
# and the other guests keep full-size frames.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/xenstore.sh"
: "${VIF_XENNET:?}"
export XENNET_SOCKET=$T/ctl.sock

make_lan_and_dom0
start_xenstored
mtu_of() { ip -n "$DOM0" -j link show dev "$1" | jq -r '.[0].mtu'; }
# big_ping NS ADDR: 1500-byte packets, not fragmented.
big_ping() { in_ns "$1" ping -c 2 -i 0.2 -W 2 -q -M do -s 1472 "$2" >/dev/null; }

# ---- a bridge xennet makes (NAT) ----
nat_profile "$T/nat.conf"
start_daemon "$T/nat.conf"
make_guest 1 10.0.0.11/24 10.0.0.1
ip -n "$(guest 1)" link set eth0 mtu 1400
libxl_add_vif 1 0 "mac=$(mac_of "$(guest 1)" eth0)" ip=10.0.0.11 mtu=1400 script="$VIF_XENNET"
expect "vif 1 (mtu 1400) online" run_hotplug "$VIF_XENNET" online 1 0
make_guest 2 10.0.0.12/24 10.0.0.1
libxl_add_vif 2 0 "mac=$(mac_of "$(guest 2)" eth0)" ip=10.0.0.12 script="$VIF_XENNET"
expect "vif 2 online" run_hotplug "$VIF_XENNET" online 2 0
expect_eq "vif1.0 has its own mtu" 1400 "$(mtu_of vif1.0)"
expect_eq "the bridge keeps 1500" 1500 "$(mtu_of xenbr0)"
expect_eq "vif2.0 takes the bridge's" 1500 "$(mtu_of vif2.0)"
expect "guest 2 sends 1500-byte packets to Dom0" big_ping "$(guest 2)" 10.0.0.1
expect "guest 1 reaches Dom0" ping_from "$(guest 1)" 10.0.0.1
stop_daemon

# ---- a bridge made by hand before xennet (its MTU follows its ports) ----
ip -n "$DOM0" link del xenbr0
ip -n "$DOM0" link add xenbr1 type bridge
ip -n "$DOM0" link set xenbr1 up
cat >"$T/bridged.conf" <<CONF
[xennet]
mode = bridged
[bridge xenbr1]
uplink = eth0
take_addresses = yes
CONF
start_daemon "$T/bridged.conf"
make_guest 3 192.168.50.13/24 "$LAN_IP"
ip -n "$(guest 3)" link set eth0 mtu 1400
libxl_add_vif 3 0 bridge=xenbr1 "mac=$(mac_of "$(guest 3)" eth0)" ip=192.168.50.13 mtu=1400 script="$VIF_XENNET"
expect "vif 3 (mtu 1400) online" run_hotplug "$VIF_XENNET" online 3 0
expect_eq "vif3.0 has its own mtu" 1400 "$(mtu_of vif3.0)"
expect_eq "the bridge keeps the uplink's 1500" 1500 "$(mtu_of xenbr1)"
expect "Dom0 sends 1500-byte packets to the LAN" big_ping "$DOM0" "$LAN_IP"
expect "guest 3 reaches the LAN" ping_from "$(guest 3)" "$LAN_IP"
stop_daemon
