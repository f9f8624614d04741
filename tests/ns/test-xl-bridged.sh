#!/bin/bash
# Debian's real xl drives the vif hotplug (tests/ns/xl.sh): `xl
# network-attach` / `network-detach` of a running guest, with Xen's own
# vif-bridge as the baseline and with vif-xennet under xennetd in bridged
# mode: xl's exit status, the backend's states (netback-sim connects only
# on hotplug-status=connected), the bridge port, the anti-spoofing
# elements, packets from the guest; then a failing attach
# (bridge=nosuchbr) and the detach that must clean it up.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/xenstore.sh"
. "$(dirname "$0")/xl.sh"
: "${VIF_XENNET:?}"
export XENNET_SOCKET=$T/ctl.sock

master_of() { ip -n "$DOM0" -j link show "$1" 2>/dev/null | jq -r '.[0].master // "null"'; }
be_read() { xs_read "/local/domain/0/backend/vif/$1/$2/$3"; }
status_vifs() { xn status --json | jq -c '[.vifs[]? | "\(.domid)/\(.devid)"]'; }
as_ports() {
	nft_json | jq -c '[.nftables[] | select(.set.family == "bridge" and .set.name == "as_ports") | .set.elem[]?] | length'
}
# guest_addr DOMID ADDR/PREFIX [GATEWAY]: the guest configures the eth0
# its netfront brought (netback-sim made it at attach).
guest_addr() {
	ip -n "$(guest "$1")" addr add "$2" dev eth0
	[ -z "${3:-}" ] || ip -n "$(guest "$1")" route add default via "$3"
}

make_lan_and_dom0
start_xenstored --domains ""
bridged_profile "$T/bridged.conf"
start_daemon "$T/bridged.conf"
xl_start
xl_add_domain 1 web
xl_add_domain 2 db

expect "xl list shows the guests" xl_run list
expect_eq "xl list: Domain-0, web, db" "Domain-0 web db" \
	"$(awk 'NR > 1 { printf "%s%s", sep, $1; sep = " " }' <(xl_run list 2>&1; cat "$XL_ERR"))"

# ---- what a script gets from xl: libxl's variables on top of xl's
# environment, without the shim's LD_PRELOAD.
printf '#!/bin/sh\nenv >"/var/log/xen/env.$1"\n' >"$T/xl/scripts/vif-env"
chmod +x "$T/xl/scripts/vif-env"
expect "a script that records its environment: attach exits 0" \
	xl_attach 2 bridge=xenbr0 mac=00:16:3e:00:02:00 script=vif-env
expect "online ran with libxl's XENBUS_PATH" grep -qx "XENBUS_PATH=backend/vif/2/0" "$T/xl/log/env.online"
expect "and vif" grep -qx "vif=vif2.0" "$T/xl/log/env.online"
expect "and xl's own XENSTORED_PATH" grep -qx "XENSTORED_PATH=$XENSTORED_PATH" "$T/xl/log/env.online"
expect_not "but not the shim's LD_PRELOAD" grep -q "^LD_PRELOAD=" "$T/xl/log/env.online"
expect "its detach exits 0" xl_detach 2 0
expect "and ran offline" test -s "$T/xl/log/env.offline"

# ---- the baseline: Xen's vif-bridge, driven by xl
expect "vif-bridge: xl network-attach exits 0" \
	xl_attach 2 bridge=xenbr0 mac=00:16:3e:00:02:00 script=vif-bridge
echo "   (vif-bridge attach: ${XL_MS} ms)"
expect_eq "vif-bridge: hotplug-status connected" connected "$(be_read 2 0 hotplug-status)"
expect_eq "vif-bridge: the backend connected" 4 "$(be_state 2 0 4)"
expect_eq "vif-bridge: libxl wrote the script's absolute path" /etc/xen/scripts/vif-bridge \
	"$(be_read 2 0 script)"
expect_eq "vif-bridge: vif2.0 is a port of xenbr0" xenbr0 "$(master_of vif2.0)"
guest_addr 2 192.168.50.12/24
expect "vif-bridge: the guest pings the LAN" ping_from "$(guest 2)" "$LAN_IP"
expect_eq "xennetd did not take vif-bridge's vif" '["2/0 waiting"]' \
	"$(xn status --json | jq -c '[.vifs[]? | "\(.domid)/\(.devid) \(.state)"]')"
expect "vif-bridge: xl network-detach exits 0" xl_detach 2 0
expect_not "vif-bridge: the backend is gone" xs_exists /local/domain/0/backend/vif/2/0
expect_not "vif-bridge: netback deleted vif2.0" ip -n "$DOM0" link show vif2.0

# ---- vif-xennet
expect "vif-xennet: xl network-attach exits 0" \
	xl_attach 1 bridge=xenbr0 mac=00:16:3e:00:01:00 ip=192.168.50.11 script=vif-xennet
echo "   (vif-xennet attach: ${XL_MS} ms)"
expect_eq "vif-xennet: hotplug-status connected" connected "$(be_read 1 0 hotplug-status)"
expect_eq "vif-xennet: the backend connected" 4 "$(be_state 1 0 4)"
expect_eq "vif-xennet: vif1.0 is a port of xenbr0" xenbr0 "$(master_of vif1.0)"
expect_eq "vif-xennet: the bridge-port MAC" fe:ff:ff:ff:ff:ff \
	"$(ip -n "$DOM0" -j link show vif1.0 | jq -r '.[0].address')"
expect_eq "vif-xennet: xennet status lists it" '["1/0"]' "$(status_vifs)"
expect_eq "vif-xennet: one anti-spoofing port" 1 "$(as_ports)"
expect "xl network-list shows it" grep -q "/local/domain/0/backend/vif/1/0" \
	<(xl_run network-list 1 2>&1; cat "$XL_ERR")
guest_addr 1 192.168.50.11/24
expect "vif-xennet: the guest pings the LAN" ping_from "$(guest 1)" "$LAN_IP"
ip -n "$(guest 1)" addr add 192.168.50.99/24 dev eth0
set +e
NETCHECK_SRC=192.168.50.99 exchange udp "$(guest 1)" "$LAN" "$LAN_IP" 7402 >/dev/null
rc=$?
set -e
expect_eq "vif-xennet: a packet from an address not in ip= is dropped" 1 "$rc"
expect "vif-xennet: xl network-detach exits 0" xl_detach 1 0
expect_not "vif-xennet: the backend is gone" xs_exists /local/domain/0/backend/vif/1/0
expect_not "vif-xennet: the libxl copy is gone" xs_exists /libxl/1/device/vif/0
expect_not "vif-xennet: netback deleted vif1.0" ip -n "$DOM0" link show vif1.0
expect_eq "vif-xennet: xennet status no longer lists it" "[]" "$(status_vifs)"
expect_eq "vif-xennet: no anti-spoofing element left" 0 "$(as_ports)"

# Attached again (same devid): as new.
expect "vif-xennet: attached again" \
	xl_attach 1 bridge=xenbr0 mac=00:16:3e:00:01:00 ip=192.168.50.11 script=vif-xennet
guest_addr 1 192.168.50.11/24
expect "vif-xennet: the guest pings the LAN again" ping_from "$(guest 1)" "$LAN_IP"
expect "vif-xennet: and detached again" xl_detach 1 0

# ---- a failing attach, then its detach (issue 12, defect 4)
expect_not "bridge=nosuchbr: xl network-attach fails" \
	xl_attach 1 bridge=nosuchbr mac=00:16:3e:00:01:00 script=vif-xennet
expect "bridge=nosuchbr: xl reports the script's error" \
	grep -q "Could not find bridge device nosuchbr" "$XL_ERR"
expect_eq "bridge=nosuchbr: hotplug-status error" error "$(be_read 1 0 hotplug-status)"
expect "bridge=nosuchbr: hotplug-error says why" \
	grep -q nosuchbr <<<"$(be_read 1 0 hotplug-error)"
expect_eq "bridge=nosuchbr: vif1.0 is attached nowhere" null "$(master_of vif1.0)"
expect_not "bridge=nosuchbr: the backend did not connect" test "$(be_state 1 0 4)" = 4
expect "a failed attach leaves its backend behind (libxl does not clean up)" \
	xs_exists /local/domain/0/backend/vif/1/0
expect "its detach exits 0" xl_detach 1 0
expect_not "the backend is gone" xs_exists /local/domain/0/backend/vif/1/0
expect_not "the libxl copy is gone" xs_exists /libxl/1/device/vif/0
expect_eq "nothing of it in xennet status" "[]" "$(status_vifs)"
expect_eq "nothing of it in the nft sets" 0 "$(as_ports)"
expect_eq "xenbr0's only port is the uplink" '["eth0"]' \
	"$(ip -n "$DOM0" -j link show master xenbr0 | jq -c '[.[].ifname]')"
expect "the daemon is still running" daemon_alive
