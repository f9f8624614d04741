#!/bin/bash
# The harness itself, proven against Xen's own /etc/xen/scripts/vif-bridge
# (Debian's xen-utils-common): the same replay of libxl that the xennet
# tests use must make Xen's script attach a vif, report errors, and detach.
# xennetd is not involved.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/xs-lib.sh"
XEN_VIF_BRIDGE=/etc/xen/scripts/vif-bridge
if [ ! -x "$XEN_VIF_BRIDGE" ]; then
	echo "SKIP: $XEN_VIF_BRIDGE is not installed (xen-utils-common)"
	exit 77
fi
mkdir -p /var/log/xen # the scripts append their stderr there

make_lan_and_dom0
start_xenstored
# A bridge as an admin (or xennetd) would have made it, with the LAN port.
ip -n "$DOM0" link add xenbr0 type bridge stp_state 0 forward_delay 0
ip -n "$DOM0" link set eth0 master xenbr0
ip -n "$DOM0" addr flush dev eth0
ip -n "$DOM0" addr add "$DOM0_IP/24" dev xenbr0
ip -n "$DOM0" link set xenbr0 up

make_guest 1 192.168.50.11/24 "$LAN_IP"
libxl_add_vif 1 0 bridge=xenbr0 mac=00:16:3e:00:00:01 script="$XEN_VIF_BRIDGE"
expect "Xen's vif-bridge online exits 0" run_hotplug "$XEN_VIF_BRIDGE" online 1 0
expect_eq "hotplug-status connected" connected "$(xs_read backend/vif/1/0/hotplug-status)"
expect_eq "vif1.0 is a port of xenbr0" xenbr0 "$(ip -n "$DOM0" -j link show vif1.0 | jq -r '.[0].master')"
expect_eq "vif1.0 has the bridge-port MAC" fe:ff:ff:ff:ff:ff \
	"$(ip -n "$DOM0" -j link show vif1.0 | jq -r '.[0].address')"
expect_eq "frontend mtu written" 1500 "$(xs_read /local/domain/1/device/vif/0/mtu)"
expect "the guest reaches the LAN" ping_from "$(guest 1)" "$LAN_IP"

make_guest 2 192.168.50.12/24
libxl_add_vif 2 0 bridge=nosuchbr script="$XEN_VIF_BRIDGE"
expect_not "a missing bridge fails" run_hotplug "$XEN_VIF_BRIDGE" online 2 0
expect_eq "hotplug-status error" error "$(xs_read backend/vif/2/0/hotplug-status)"
expect_eq "hotplug-error as Xen words it" "Could not find bridge device nosuchbr" \
	"$(xs_read backend/vif/2/0/hotplug-error)"

libxl_remove_vif 1 0
expect "offline exits 0" run_hotplug "$XEN_VIF_BRIDGE" offline 1 0
expect_eq "vif1.0 no longer a port" null "$(ip -n "$DOM0" -j link show vif1.0 | jq -r '.[0].master')"

# The instance answers concurrent clients and fires watches.
timeout 10 xenstore-watch -n 2 /local/domain/0/backend/vif/9 >"$T/watch.out" 2>&1 &
wpid=$!
sleep 0.2
writers=()
for i in $(seq 10); do
	xenstore-write "/test/c$i" "$i" &
	writers+=($!)
done
for p in "${writers[@]}"; do wait "$p"; done
xenstore-write /local/domain/0/backend/vif/9/0/x 1
wait "$wpid" || true
expect_eq "10 concurrent writers all landed" 10 "$(xenstore-list /test | wc -l)"
expect "the watch fired" grep -q "backend/vif/9" "$T/watch.out"
