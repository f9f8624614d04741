#!/bin/bash
# The vif hotplug harness (tests/ns/xenstore.sh: the real xenstored under
# tests/xenstore/xs-shim, libxl 4.17's xenstore writes and script exec
# replayed), proven by running Xen's own /etc/xen/scripts/vif-bridge
# through it, unchanged: it must attach a vif, report a missing bridge the
# way Xen does, and detach. xennetd is not involved. Also checks the
# xenstored instance itself: concurrent clients, watches, domains that
# come and go.
. "$(dirname "$0")/lib.sh"
XEN_VIF_BRIDGE=/etc/xen/scripts/vif-bridge
if [ ! -x "$XEN_VIF_BRIDGE" ]; then
	echo "SKIP: $XEN_VIF_BRIDGE is not installed (Debian package xen-utils-common)"
	exit 77
fi
. "$(dirname "$0")/xenstore.sh"

port_of() { # the bridge VIF is a port of, "null" if none
	ip -n "$DOM0" -j link show "$1" | jq -r '.[0].master // "null"'
}
is_up() {
	ip -n "$DOM0" -j link show "$1" | jq -e '.[0].flags | index("UP") != null' >/dev/null
}

# ---- the world: LAN <- eth0 -> xenbr0 in Dom0, Dom0's address on the bridge
make_lan_and_dom0
ip -n "$DOM0" link add xenbr0 type bridge stp_state 0 forward_delay 0
ip -n "$DOM0" addr flush dev eth0
ip -n "$DOM0" link set eth0 master xenbr0
ip -n "$DOM0" addr add "$DOM0_IP/24" dev xenbr0
ip -n "$DOM0" link set xenbr0 up
# A bridge MTU of its own, to see vif-bridge's set_mtu at work.
ip -n "$DOM0" link set xenbr0 mtu 1400
ip -n "$DOM0" route replace default via "$LAN_IP"

start_xenstored --domains ""

# ---- the xenstored instance itself
# 10 concurrent clients, half of them from inside Dom0's namespace, each
# writing then reading back its own 20 keys.
client() {
	local c=$1 i
	for i in $(seq 20); do
		xenstore-write "/test/c$c/k$i" "v$c.$i" || return 1
		[ "$(xenstore-read "/test/c$c/k$i")" = "v$c.$i" ] || return 1
	done
}
pids=()
for c in $(seq 10); do
	if ((c % 2)); then
		client "$c" &
	else
		in_ns "$DOM0" bash -c "$(declare -f client); client $c" &
	fi
	pids+=($!)
done
bad=0
for p in "${pids[@]}"; do wait "$p" || bad=$((bad + 1)); done
expect_eq "10 concurrent clients all succeeded" 0 "$bad"
expect_eq "and all 200 keys are there" 200 "$(xenstore-ls -f /test | grep -c '/k[0-9]* = ')"

# A watch (first event: the registration itself, then the change).
watch_events() { # FILE: number of events seen
	grep -c . "$1" 2>/dev/null || true
}
wait_events() { # FILE N: wait up to 5 s for N events
	local i
	for i in $(seq 100); do
		[ "$(watch_events "$1")" -ge "$2" ] && return 0
		sleep 0.05
	done
	return 1
}
in_ns "$DOM0" timeout 10 xenstore-watch -n 2 /test/watched >"$T/watch1" 2>&1 &
wpid=$!
expect "the watch is registered" wait_events "$T/watch1" 1
xenstore-write /test/watched/leaf 1
expect "the watch fires on a write below it" wait_events "$T/watch1" 2
expect "xenstore-watch got both events and exited" wait "$wpid"

# Domains: introduced (as libxl does), then destroyed by the "hypervisor".
timeout 10 xenstore-watch -n 2 @releaseDomain >"$T/release" 2>&1 &
rpid=$!
timeout 10 xenstore-watch -n 2 @introduceDomain >"$T/introduce" 2>&1 &
ipid=$!
if ! wait_events "$T/release" 1 || ! wait_events "$T/introduce" 1; then
	fail "the @releaseDomain and @introduceDomain watches were not registered"
fi
libxl_add_domain 7 doomed
expect "@introduceDomain fires when libxl introduces domain 7" wait_events "$T/introduce" 2
expect_eq "domain 7's home is guest-readable, dom0-owned" n0,r7 "$(xs_perms /local/domain/7)"
xenstore-write /local/domain/7/data/x 1 # dom0 writes, so dom0 owns it
printf 'write\t/local/domain/7/device/owned\t1\nchmod\t/local/domain/7/device/owned\tn7\n' | xs_txn
xs_domain_vanish 7
expect "@releaseDomain fires when domain 7 vanishes" wait_events "$T/release" 2
expect_not "xenstored deleted the node domain 7 owned" xs_exists /local/domain/7/device/owned
expect "but kept dom0's nodes (libxl removes those)" xs_exists /local/domain/7/data/x
wait "$rpid" "$ipid" || true
xenstore-rm /test /local/domain/7 /vm/00000000-0000-0000-0000-000000000007 /libxl/7

# ---- Xen's vif-bridge, online: vif1.0 joins xenbr0
make_guest 1 192.168.50.11/24
libxl_add_domain 1 web
libxl_add_vif 1 0 bridge=xenbr0 script="$XEN_VIF_BRIDGE" mac=00:16:3e:00:00:01
be=/local/domain/0/backend/vif/1/0
expect_eq "backend state InitWait before the script" 2 "$(xs_read $be/state)"
expect_eq "hotplug-status starts empty" "" "$(xs_read $be/hotplug-status)"
expect_eq "backend perms: dom0 owns, guest reads" n0,r1 "$(xs_perms $be)"
expect_eq "backend keys inherit them" n0,r1 "$(xs_perms $be/bridge)"
expect_eq "frontend perms: guest owns, dom0 reads" n1,r0 "$(xs_perms /local/domain/1/device/vif/0)"
expect_eq "frontend mtu is read-only for the guest" n0,r1 "$(xs_perms /local/domain/1/device/vif/0/mtu)"
expect_eq "libxl's copy of the script key" "$XEN_VIF_BRIDGE" "$(xs_read /libxl/1/device/vif/0/script)"
expect_eq "libxl wrote the default mtu to the frontend" 1500 "$(xs_read /local/domain/1/device/vif/0/mtu)"
expect_not "but no mtu key in the backend (1500 is the default)" xs_exists $be/mtu

rc=0
run_hotplug "$XEN_VIF_BRIDGE" online 1 0 || rc=$?
expect_eq "vif-bridge online exits 0 (${HOTPLUG_MS} ms)" 0 "$rc"
expect_eq "hotplug-status connected" connected "$(xs_read backend/vif/1/0/hotplug-status)"
expect_eq "vif1.0 is a port of xenbr0" xenbr0 "$(port_of vif1.0)"
expect "vif1.0 is up" is_up vif1.0
expect_eq "vif1.0 has the bridge-port MAC" fe:ff:ff:ff:ff:ff \
	"$(ip -n "$DOM0" -j link show vif1.0 | jq -r '.[0].address')"
expect_eq "bridge -j link lists vif1.0 on xenbr0, forwarding" "xenbr0 forwarding" \
	"$(ip netns exec "$DOM0" bridge -j link show | jq -r '.[] | select(.ifname == "vif1.0") | "\(.master) \(.state)"')"
expect_eq "vif1.0 took the bridge's MTU" 1400 "$(ip -n "$DOM0" -j link show vif1.0 | jq -r '.[0].mtu')"
expect_eq "set_mtu wrote it over libxl's frontend mtu" 1400 "$(xs_read /local/domain/1/device/vif/0/mtu)"
expect "netback can connect" netback_connect 1 0
expect "the guest pings the LAN through xenbr0" ping_from "$(guest 1)" "$LAN_IP"
expect "the guest pings Dom0" ping_from "$(guest 1)" "$DOM0_IP"

# ---- a second vif of the same guest on a bridge that does not exist
ip -n "$DOM0" link add vif1.1 type veth peer name eth1 netns "$(guest 1)"
libxl_add_vif 1 1 bridge=nosuchbr script="$XEN_VIF_BRIDGE" mac=00:16:3e:00:01:01
rc=0
run_hotplug "$XEN_VIF_BRIDGE" online 1 1 2>"$T/libxl.err" || rc=$?
expect_eq "vif-bridge online with a missing bridge exits 1" 1 "$rc"
expect_eq "hotplug-status error" error "$(xs_read backend/vif/1/1/hotplug-status)"
expect_eq "hotplug-error as Xen words it" "Could not find bridge device nosuchbr" \
	"$(xs_read backend/vif/1/1/hotplug-error)"
expect "libxl's error line carries hotplug-error" \
	grep -q "Could not find bridge device nosuchbr" "$T/libxl.err"
expect_eq "vif1.1 was left alone" null "$(port_of vif1.1)"
expect_not "netback cannot connect it" netback_connect 1 1
# libxl aborts the device and destroys the domain (force: the paths go
# even when the offline script fails). Xen's vif-bridge looks the bridge
# up before it looks at the command, so offline fails the same way.
libxl_remove_vif 1 1
rc=0
run_hotplug "$XEN_VIF_BRIDGE" offline 1 1 2>/dev/null || rc=$?
expect_eq "offline with the bridge missing exits 1 too" 1 "$rc"
libxl_destroy_vif 1 1

# ---- an HVM guest (type=ioemu): the PV vif, then QEMU's tap, one run each
make_guest 2 192.168.50.12/24
ip -n "$DOM0" tuntap add vif2.0-emu mode tap # QEMU made it
libxl_add_vif 2 0 type=ioemu bridge=xenbr0 script=vif-bridge
expect_eq "libxl writes type vif_ioemu" vif_ioemu "$(xs_read backend/vif/2/0/type)"
expect_eq "and the script's absolute path" "$XEN_VIF_BRIDGE" "$(xs_read backend/vif/2/0/script)"
expect "vif-bridge online (PV vif of an HVM guest) exits 0" run_hotplug "" online 2 0
expect_eq "vif2.0 is a port of xenbr0" xenbr0 "$(port_of vif2.0)"
xenstore-write backend/vif/2/0/hotplug-status "" # to see that the tap run leaves it alone
expect "vif-bridge add type_if=tap exits 0" run_hotplug "" add 2 0
expect_eq "vif2.0-emu is a port of xenbr0" xenbr0 "$(port_of vif2.0-emu)"
expect_eq "the tap run writes no hotplug-status" "" "$(xs_read backend/vif/2/0/hotplug-status)"
expect "the HVM guest pings the LAN" ping_from "$(guest 2)" "$LAN_IP"
libxl_remove_vif 2 0
expect "vif-bridge offline exits 0" run_hotplug "" offline 2 0
expect "vif-bridge remove type_if=tap exits 0" run_hotplug "" remove 2 0
expect_eq "vif2.0 left xenbr0" null "$(port_of vif2.0)"
expect_eq "vif2.0-emu left xenbr0" null "$(port_of vif2.0-emu)"
libxl_destroy_vif 2 0

# ---- offline for vif1.0: it leaves the bridge
libxl_remove_vif 1 0
expect_not "hotplug-status gone (netback_remove)" xs_exists $be/hotplug-status
rc=0
run_hotplug "$XEN_VIF_BRIDGE" offline 1 0 || rc=$?
expect_eq "vif-bridge offline exits 0 (${HOTPLUG_MS} ms)" 0 "$rc"
expect_eq "vif1.0 is no longer a port" null "$(port_of vif1.0)"
expect_not "vif1.0 is down" is_up vif1.0
expect_not "the guest no longer reaches the LAN" ping_from "$(guest 1)" "$LAN_IP"
expect "eth0 is still a port of xenbr0" test "$(port_of eth0)" = xenbr0
# offline is idempotent: again, and with the netdev gone (netback freed it)
expect "offline again exits 0" run_hotplug "$XEN_VIF_BRIDGE" offline 1 0
ip -n "$DOM0" link del vif1.0
expect "offline with vif1.0 gone exits 0" run_hotplug "$XEN_VIF_BRIDGE" offline 1 0
libxl_destroy_vif 1 0
expect_not "backend paths removed with their empty parents" xs_exists /local/domain/0/backend
expect_not "frontend paths removed" xs_exists /local/domain/1/device/vif
expect_not "libxl's copy removed" xs_exists /libxl/1/device
expect_eq "the domain's own nodes stay" web "$(xs_read /local/domain/1/name)"
expect_eq "dom0's home stays" Domain-0 "$(xs_read /local/domain/0/name)"
