#!/bin/bash
# vif hotplug in bridged mode, replayed as libxl does it: backend keys in a
# real xenstored, the device created, then vif-xennet run with libxl's argv
# and environment. Exit status, hotplug-status, kernel state and traffic.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/xenstore.sh"
: "${VIF_XENNET:?}"
export XENNET_SOCKET=$T/ctl.sock

make_lan_and_dom0
start_xenstored
cat >"$T/bridged.conf" <<CONF
[xennet]
mode = bridged
[bridge xenbr0]
uplink = eth0
take_addresses = yes
[bridge xenbr9]
mtu = 4000
CONF
start_daemon "$T/bridged.conf"


# Guest 1: a normal PV vif.
make_guest 1 192.168.50.11/24 "$LAN_IP"
libxl_add_vif 1 0 bridge=xenbr0 "mac=$(mac_of "$(guest 1)" eth0)" ip=192.168.50.11 script="$VIF_XENNET"
expect "online exits 0" run_hotplug "$VIF_XENNET" online 1 0
expect_eq "hotplug-status connected" connected "$(xs_read backend/vif/1/0/hotplug-status)"
expect_eq "vif1.0 is a port of xenbr0" xenbr0 "$(ip -n "$DOM0" -j link show vif1.0 | jq -r '.[0].master')"
expect_eq "vif1.0 is up" true "$(ip -n "$DOM0" -j link show vif1.0 | jq -r '.[0].flags | index("UP") != null')"
expect_eq "vif1.0 has the bridge-port MAC" fe:ff:ff:ff:ff:ff "$(mac_of "$DOM0" vif1.0)"
expect_eq "frontend mtu written" 1500 "$(xs_read /local/domain/1/device/vif/0/mtu)"

# No mtu key, a bridge with another MTU: the vif takes the bridge's, and
# the frontend's mtu (libxl wrote 1500; xennetd knows it without asking)
# is corrected.
make_guest 21 192.168.50.31/24 "$LAN_IP"
libxl_add_vif 21 0 bridge=xenbr9 "mac=$(mac_of "$(guest 21)" eth0)" script="$VIF_XENNET"
expect "online on xenbr9 exits 0" run_hotplug "$VIF_XENNET" online 21 0
expect_eq "vif21.0 takes xenbr9's mtu" 4000 "$(ip -n "$DOM0" -j link show vif21.0 | jq -r '.[0].mtu')"
expect_eq "and the frontend mtu is corrected" 4000 "$(xs_read /local/domain/21/device/vif/0/mtu)"
expect "vif 21 offline" run_hotplug "$VIF_XENNET" offline 21 0
expect_eq "xenbr9 keeps its mtu when its last port leaves" 4000 \
	"$(ip -n "$DOM0" -j link show xenbr9 | jq -r '.[0].mtu')"
# Detached and attached again with the same devid: libxl writes a new
# frontend (mtu 1500), which must be corrected again.
libxl_destroy_vif 21 0
libxl_add_vif 21 0 bridge=xenbr9 "mac=$(mac_of "$(guest 21)" eth0)" script="$VIF_XENNET"
expect "vif 21 attached again: online exits 0" run_hotplug "$VIF_XENNET" online 21 0
expect_eq "the new frontend's mtu is corrected too" 4000 "$(xs_read /local/domain/21/device/vif/0/mtu)"
expect "vif 21 offline" run_hotplug "$VIF_XENNET" offline 21 0
expect "guest 1 reaches the LAN" ping_from "$(guest 1)" "$LAN_IP"
src=$(exchange tcp "$(guest 1)" "$LAN" "$LAN_IP" 7401) || fail "TCP guest 1 -> LAN"
expect_eq "TCP from the guest's own address" 192.168.50.11 "$src"
expect "online again is idempotent" run_hotplug "$VIF_XENNET" online 1 0
expect_eq "no duplicate element" 1 "$(nft_json | jq '[.nftables[] | select(.set.name == "as_ports") | .set.elem[]?] | length')"

# Anti-spoofing: another source IP, another MAC, ARP for another address.
ip -n "$(guest 1)" addr add 192.168.50.99/24 dev eth0
set +e
NETCHECK_SRC=192.168.50.99 exchange udp "$(guest 1)" "$LAN" "$LAN_IP" 7402 >/dev/null
rc=$?
set -e
expect_eq "a packet from another IP does not reach the LAN" 1 "$rc"
expect_eq "and the LAN never learnt that address" "" \
	"$(ip -n "$LAN" -j neigh show 192.168.50.99 | jq -r '.[] | select(.state[0] != "FAILED" and .state[0] != "INCOMPLETE") | .lladdr')"
ip -n "$(guest 1)" addr del 192.168.50.99/24 dev eth0
expect "its own traffic still passes" ping_from "$(guest 1)" "$LAN_IP"
ip -n "$(guest 1)" link set eth0 address 00:16:3e:66:66:66
ip -n "$LAN" neigh flush all
expect_not "a frame from another MAC is dropped" in_ns "$(guest 1)" ping -c 2 -i 0.2 -W 1 -q "$LAN_IP"
ip -n "$(guest 1)" link set eth0 address "$(xs_read backend/vif/1/0/mac)"
expect "back to its own MAC, it passes again" ping_from "$(guest 1)" "$LAN_IP"

# vifname and mtu.
make_guest 3 192.168.50.13/24 "$LAN_IP"
# A device that comes with an address of its own loses it (a port has none).
ip -n "$DOM0" addr add 10.99.0.1/24 dev vif3.0
libxl_add_vif 3 0 bridge=xenbr0 "mac=$(mac_of "$(guest 3)" eth0)" vifname=web0 mtu=1400 script="$VIF_XENNET"
expect "online with vifname exits 0" run_hotplug "$VIF_XENNET" online 3 0
expect_eq "the port's IPv4 address was flushed" 0 \
	"$(ip -n "$DOM0" -j addr show dev web0 | jq '[.[0].addr_info[] | select(.family == "inet")] | length')"
expect_eq "and only the port's: the LAN side keeps its own" 1 \
	"$(ip -n "$DOM0" -j addr show dev xenbr0 | jq '[.[0].addr_info[] | select(.family == "inet")] | length')"
expect "vif3.0 renamed web0" ip -n "$DOM0" link show web0
expect_eq "web0 on xenbr0" xenbr0 "$(ip -n "$DOM0" -j link show web0 | jq -r '.[0].master')"
expect_eq "web0 mtu from the backend key" 1400 "$(ip -n "$DOM0" -j link show web0 | jq -r '.[0].mtu')"
expect_eq "frontend mtu written by domid/devid, not vifname" 1400 "$(xs_read /local/domain/3/device/vif/0/mtu)"
ip -n "$(guest 3)" link set eth0 mtu 1400
expect "guest 3 (MAC-only filter) reaches the LAN" ping_from "$(guest 3)" "$LAN_IP"
# Removing the backend directory (the domain was destroyed) undoes it too.
libxl_destroy_vif 3 0
for _ in $(seq 50); do
	[ "$(ip -n "$DOM0" -j link show web0 | jq -r '.[0].master')" = null ] && break
	sleep 0.1
done
expect_eq "backend gone: web0 released" null "$(ip -n "$DOM0" -j link show web0 | jq -r '.[0].master')"
expect_eq "backend gone: its filter elements too" 0 \
	"$(nft_json | jq '[.nftables[] | select(.set.family == "bridge") | .set.elem[]? | tostring | select(test("web0"))] | length')"
# A second vif asking for a name that is taken.
make_guest 4 192.168.50.14/24
libxl_add_vif 4 0 bridge=xenbr0 "mac=$(mac_of "$(guest 4)" eth0)" vifname=web0 script="$VIF_XENNET"
expect_not "a vifname already in use fails" run_hotplug "$VIF_XENNET" online 4 0
expect "and says so" grep -q "web0 already exists" <<<"$(xs_read backend/vif/4/0/hotplug-error)"
expect_eq "hotplug-status error" error "$(xs_read backend/vif/4/0/hotplug-status)"
expect_eq "vif4.0 is attached nowhere" null "$(ip -n "$DOM0" -j link show vif4.0 | jq -r '.[0].master')"

# Hostile backend values: refused with a precise error, nothing applied.
hostile() {
	local n=$1 want=$2
	shift 2
	make_guest "$n" 192.168.50.$((20 + n))/24
	libxl_add_vif "$n" 0 script="$VIF_XENNET" "$@"
	expect_not "vif $n ($*) fails" run_hotplug "$VIF_XENNET" online "$n" 0
	local err
	err=$(xs_read "backend/vif/$n/0/hotplug-error")
	expect "vif $n: hotplug-error names the key and value ($err)" grep -qF "$want" <<<"$err"
	expect_eq "vif $n: hotplug-status error" error "$(xs_read "backend/vif/$n/0/hotplug-status")"
	expect_eq "vif $n: not attached" null "$(ip -n "$DOM0" -j link show "vif$n.0" | jq -r '.[0].master')"
}
hostile 5 'backend/vif/5/0/ip: "1.2.3.4;reboot"' bridge=xenbr0 mac=00:16:3e:00:00:05 "ip=1.2.3.4;reboot"
hostile 6 'backend/vif/6/0/bridge' mac=00:16:3e:00:00:06 bridge=bridge-name-of-forty-characters-000000000
hostile 7 'backend/vif/7/0/mac: "00:16:3e:zz:00:07"' bridge=xenbr0 mac=00:16:3e:zz:00:07
hostile 8 'backend/vif/8/0/mtu: "0"' bridge=xenbr0 mac=00:16:3e:00:00:08 mtu=0
hostile 9 'Could not find bridge device nosuchbr' bridge=nosuchbr mac=00:16:3e:00:00:09

# A vif whose backend names another script (vif-openvswitch) is left to
# it: xennetd does not take it on its own.
make_guest 12 192.168.50.32/24
libxl_add_vif 12 0 bridge=xenbr0 mac=00:16:3e:00:00:0c script=/etc/xen/scripts/vif-openvswitch
sleep 0.5
expect_eq "another script's vif is not attached" null "$(ip -n "$DOM0" -j link show vif12.0 | jq -r '.[0].master')"
expect_eq "nor reported on" "" "$(xs_read backend/vif/12/0/hotplug-status)"

# HVM: the emulated tap QEMU made, vifD.N-emu, with `add type_if=tap`.
# (QEMU's tap only: no PV vif10.0 device, as before the PV driver loads.)
new_ns "$(guest 10)"
ip -n "$DOM0" link add vif10.0-emu type veth peer name eth0 netns "$(guest 10)"
libxl_add_vif 10 0 bridge=xenbr0 mac=00:16:3e:00:00:0a type=vif_ioemu script="$VIF_XENNET"
expect "tap add exits 0" run_hotplug "$VIF_XENNET" add 10 0 tap
expect_eq "vif10.0-emu on xenbr0" xenbr0 "$(ip -n "$DOM0" -j link show vif10.0-emu | jq -r '.[0].master')"
expect_eq "a tap run writes no hotplug-status" "" "$(xs_read backend/vif/10/0/hotplug-status)"
expect "tap remove exits 0" run_hotplug "$VIF_XENNET" remove 10 0 tap
expect_eq "vif10.0-emu released" null "$(ip -n "$DOM0" -j link show vif10.0-emu | jq -r '.[0].master')"

# A backend key changed between two runs is the one used: the daemon keeps
# the keys it read and must see the change (its watch, then one round trip
# to xenstore before it trusts them), even when the script runs at once.
make_guest 13 192.168.50.23/24 "$LAN_IP"
libxl_add_vif 13 0 bridge=xenbr0 "mac=$(mac_of "$(guest 13)" eth0)" mtu=1400 script="$VIF_XENNET"
expect "vif 13 online" run_hotplug "$VIF_XENNET" online 13 0
expect_eq "vif13.0 mtu 1400" 1400 "$(ip -n "$DOM0" -j link show vif13.0 | jq -r '.[0].mtu')"
for mtu in 1300 1450 1280; do
	expect "vif 13 offline" run_hotplug "$VIF_XENNET" offline 13 0
	xenstore-write /local/domain/0/backend/vif/13/0/mtu "$mtu"
	expect "vif 13 online after mtu=$mtu was written" run_hotplug "$VIF_XENNET" online 13 0
	expect_eq "vif13.0 takes the new mtu $mtu" "$mtu" "$(ip -n "$DOM0" -j link show vif13.0 | jq -r '.[0].mtu')"
	expect_eq "and writes it to the frontend" "$mtu" "$(xs_read /local/domain/13/device/vif/0/mtu)"
done
good_mac=$(xs_read backend/vif/13/0/mac)
expect "vif 13 offline" run_hotplug "$VIF_XENNET" offline 13 0
xenstore-write /local/domain/0/backend/vif/13/0/mac "00:16:3e:zz"
expect_not "a mac made bad meanwhile fails" run_hotplug "$VIF_XENNET" online 13 0
expect "and hotplug-error names the key" grep -q "backend/vif/13/0/mac" <<<"$(xs_read backend/vif/13/0/hotplug-error)"
expect_eq "vif13.0 is attached nowhere" null "$(ip -n "$DOM0" -j link show vif13.0 | jq -r '.[0].master')"
xenstore-write /local/domain/0/backend/vif/13/0/mac "$good_mac"
expect "mac fixed: online succeeds" run_hotplug "$VIF_XENNET" online 13 0
expect_eq "hotplug-status connected again" connected "$(xs_read backend/vif/13/0/hotplug-status)"
ip -n "$(guest 13)" link set eth0 mtu 1280
expect "guest 13 reaches the LAN" ping_from "$(guest 13)" "$LAN_IP"

# An online run still waiting for its device (netback has not made it)
# fails when the vif is taken offline meanwhile: it must not hang until
# its timeout, and no hotplug-status=connected comes after.
libxl_add_vif 15 0 bridge=xenbr0 script="$VIF_XENNET"
run_hotplug "$VIF_XENNET" online 15 0 2>/dev/null &
waiting=$!
sleep 0.3
expect "online 15 is still waiting for vif15.0" kill -0 "$waiting"
expect "offline 15 exits 0" run_hotplug "$VIF_XENNET" offline 15 0
rc=0
wait "$waiting" || rc=$?
expect_eq "the waiting online run exits 1" 1 "$rc"
expect "its hotplug-error says why" grep -q "taken offline" <<<"$(xs_read backend/vif/15/0/hotplug-error)"
expect_eq "hotplug-status is error" error "$(xs_read backend/vif/15/0/hotplug-status)"

# offline undoes everything of vif1.0.
libxl_remove_vif 1 0
expect "offline exits 0" run_hotplug "$VIF_XENNET" offline 1 0
expect_eq "vif1.0 is no longer a port" null "$(ip -n "$DOM0" -j link show vif1.0 | jq -r '.[0].master')"
expect_eq "its filter elements are gone" 0 \
	"$(nft_json | jq '[.nftables[] | select(.set.family == "bridge") | .set.elem[]? | tostring | select(test("vif1.0"))] | length')"
expect "offline twice is fine" run_hotplug "$VIF_XENNET" offline 1 0

# xenstored stops answering while a script waits (its request needs a
# round trip to xenstore first): SIGTERM still ends xennetd within seconds,
# cleanly (what it could not write is left), and the script is told.
# (No device: xennetd has not configured it on its own.)
libxl_add_vif 16 0 bridge=xenbr0 script="$VIF_XENNET"
sleep 0.2
kill -STOP "$XS_PID"
# (as run_hotplug runs it, without its reads of xenstore first)
ip netns exec "$DOM0" env script="$VIF_XENNET" XENBUS_TYPE=vif XENBUS_PATH=backend/vif/16/0 \
	XENBUS_BASE_PATH=backend netdev= vif=vif16.0 "$VIF_XENNET" online type_if=vif 2>/dev/null &
waiting=$!
sleep 0.5
t0=$(date +%s%N)
kill -TERM "$DPID"
for _ in $(seq 400); do kill -0 "$DPID" 2>/dev/null || break; sleep 0.05; done # 20 s
stopped_ms=$((($(date +%s%N) - t0) / 1000000))
expect_not "xennetd exits on SIGTERM with xenstored stopped (after $stopped_ms ms)" kill -0 "$DPID"
kill -CONT "$XS_PID"
rc=0
wait "$DPID" || rc=$?
DPID=
expect_eq "xennetd's exit status" 0 "$rc"
rc=0
wait "$waiting" || rc=$?
expect_eq "the waiting online run exits 1" 1 "$rc"
expect "its hotplug-error says xennetd exited" grep -q "exiting" <<<"$(xs_read backend/vif/16/0/hotplug-error)"

# Without a daemon: a clear hotplug-error.
make_guest 11 192.168.50.31/24
libxl_add_vif 11 0 bridge=xenbr0 mac=00:16:3e:00:00:0b script="$VIF_XENNET"
expect_not "online without xennetd fails" run_hotplug "$VIF_XENNET" online 11 0
expect "hotplug-error says xennetd is not running" grep -q "xennetd is not running" <<<"$(xs_read backend/vif/11/0/hotplug-error)"
