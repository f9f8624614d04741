#!/bin/bash
# A vif whose backend is gone is forgotten, also when its device still
# changes afterwards (netback deletes it late, after libxl's offline and
# the removal of the backend directory): xennet status must not list it
# as "waiting" for ever.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/xenstore.sh"
: "${VIF_XENNET:?}"
export XENNET_SOCKET=$T/ctl.sock

make_lan_and_dom0
start_xenstored
bridged_profile "$T/bridged.conf"
start_daemon "$T/bridged.conf"
make_guest 1 192.168.50.11/24 "$LAN_IP"
libxl_add_vif 1 0 bridge=xenbr0 "mac=$(mac_of "$(guest 1)" eth0)" script="$VIF_XENNET"
expect "online exits 0" run_hotplug "$VIF_XENNET" online 1 0
libxl_remove_vif 1 0
expect "offline exits 0" run_hotplug "$VIF_XENNET" offline 1 0
libxl_destroy_vif 1 0
sleep 0.3
# The device, still there, changes (a link event) and then goes.
ip -n "$DOM0" link set vif1.0 mtu 1400
sleep 0.3
ip -n "$DOM0" link del vif1.0
sleep 0.3
expect_eq "xennet status lists no vif" "[]" "$(xn status --json | jq -c .vifs)"
