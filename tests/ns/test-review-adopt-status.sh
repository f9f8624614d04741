#!/bin/bash
# At start, xennetd adopts only the vifs whose script reported them
# connected: a vif saved as connected whose hotplug-status says error now
# (its script gave up and told libxl the vif failed, while xennetd was
# away) is undone, not adopted; the next script libxl runs brings it up.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/xenstore.sh"
: "${VIF_XENNET:?}"
export XENNET_SOCKET=$T/ctl.sock

make_lan_and_dom0
start_xenstored
bridged_profile "$T/bridged.conf"
start_daemon "$T/bridged.conf"
master_of() { ip -n "$DOM0" -j link show "$1" | jq -r '.[0].master'; }
as_ports() { in_ns "$DOM0" nft -j list set bridge xennet as_ports | jq -c '[.nftables[].set.elem // empty | .[]]'; }

make_guest 1 192.168.50.11/24 "$LAN_IP"
libxl_add_vif 1 0 bridge=xenbr0 "mac=$(mac_of "$(guest 1)" eth0)" ip=192.168.50.11 script="$VIF_XENNET"
expect "online exits 0" run_hotplug "$VIF_XENNET" online 1 0
expect_eq "vif1.0 on xenbr0" xenbr0 "$(master_of vif1.0)"
stop_daemon
expect "the vif is saved as configured" grep -q "vif1.0" "$T/state/vifs"

# What a script that gave up writes (vif-xennet's report()).
xenstore-write /local/domain/0/backend/vif/1/0/hotplug-error "no answer from xennetd" \
	/local/domain/0/backend/vif/1/0/hotplug-status error
start_daemon "$T/bridged.conf"
for _ in $(seq 100); do grep -q "ready:" "$T/daemon.log" && break; sleep 0.05; done
sleep 0.3
expect_eq "a vif whose hotplug-status is error is not left on xenbr0" null "$(master_of vif1.0)"
expect_eq "nor in the anti-spoofing sets" "[]" "$(as_ports)"
expect_not "status does not call it connected" grep -q "vif 1/0 vif1.0.*: connected" <<<"$(xn status)"
expect_eq "hotplug-status stays error" error "$(xs_read backend/vif/1/0/hotplug-status)"

expect "the next online exits 0" run_hotplug "$VIF_XENNET" online 1 0
expect_eq "vif1.0 on xenbr0 again" xenbr0 "$(master_of vif1.0)"
expect "guest 1 reaches the LAN" ping_from "$(guest 1)" "$LAN_IP"
