#!/bin/bash
# An HVM guest's `type=ioemu` vif attached by Debian's real xl
# (tests/ns/xl.sh): libxl runs the script twice, `online type_if=vif`
# for the PV vif and `add type_if=tap` with INTERFACE=vifD.N-emu for
# QEMU's tap (and `offline`, `remove` on detach). No QEMU runs here: the
# tap stands ready as QEMU would have made it (a veth, so that packets
# reach the guest namespace through it). Xen's vif-bridge first, as the
# baseline, then vif-xennet under xennetd in bridged mode.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/xenstore.sh"
. "$(dirname "$0")/xl.sh"
: "${VIF_XENNET:?}"
export XENNET_SOCKET=$T/ctl.sock

master_of() { ip -n "$DOM0" -j link show "$1" 2>/dev/null | jq -r '.[0].master // "null"'; }
be_read() { xs_read "/local/domain/0/backend/vif/$1/$2/$3"; }

make_lan_and_dom0
start_xenstored --domains ""
bridged_profile "$T/bridged.conf"
start_daemon "$T/bridged.conf"
xl_start

# hvm_round DOMID SCRIPT: attach, check both devices, traffic through the
# emulated NIC, detach.
hvm_round() {
	local d=$1 script=$2 mac tap=vif$1.0-emu
	mac=$(printf '00:16:3e:00:%02x:00' "$d")
	xl_add_domain "$d" "hvm$d" hvm
	ip -n "$DOM0" link add "$tap" type veth peer name emu0 netns "$(guest "$d")"
	ip -n "$(guest "$d")" link set emu0 address "$mac" up
	expect "$script: xl network-attach type=ioemu exits 0" \
		xl_attach "$d" type=ioemu bridge=xenbr0 "mac=$mac" "script=$script"
	expect_eq "$script: libxl wrote type vif_ioemu" vif_ioemu "$(be_read "$d" 0 type)"
	expect_eq "$script: hotplug-status connected" connected "$(be_read "$d" 0 hotplug-status)"
	expect_eq "$script: the PV vif is a port of xenbr0" xenbr0 "$(master_of "vif$d.0")"
	expect_eq "$script: the tap is a port of xenbr0" xenbr0 "$(master_of "$tap")"
	# The guest uses its emulated NIC (no PV driver).
	ip -n "$(guest "$d")" link set eth0 down
	ip -n "$(guest "$d")" addr add "192.168.50.$((30 + d))/24" dev emu0
	expect "$script: the guest pings the LAN through the tap" ping_from "$(guest "$d")" "$LAN_IP"
	expect "$script: xl network-detach exits 0" xl_detach "$d" 0
	expect_eq "$script: the tap left xenbr0" null "$(master_of "$tap")"
	expect_not "$script: the backend is gone" xs_exists "/local/domain/0/backend/vif/$d/0"
}

hvm_round 3 vif-bridge
hvm_round 4 vif-xennet
expect_eq "nothing left in xennet status" 0 "$(xn status --json | jq '[.vifs[]?] | length')"
