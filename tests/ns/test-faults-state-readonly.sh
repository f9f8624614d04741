#!/bin/bash
# The daemon starts and serves when its state directory is read-only or
# full: vif hotplug, status, repairs. Only the changes that must be saved
# are refused, and status and the log say what is wrong with the
# directory. (It used to refuse to start: the lock file opened for
# writing, the ledger rewritten even with 0 changes.) The state directory
# is a small tmpfs in a mount namespace of this test's own.
if [ -z "${XN_PRIVATE_MOUNTS:-}" ]; then
	XN_PRIVATE_MOUNTS=1 exec unshare -m --propagation private "$0" "$@"
fi
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/xenstore.sh"
: "${VIF_XENNET:?}"
export XENNET_SOCKET=$T/ctl.sock

make_lan_and_dom0
start_xenstored
mkdir -p "$T/state"
mount -t tmpfs -o size=256k,mode=0700 xennet-test-state "$T/state"
nat_profile "$T/nat.conf"
start_daemon "$T/nat.conf"
ip -n "$LAN" route add 100.64.9.0/24 via "$DOM0_IP"
make_guest 1 10.0.0.11/24 10.0.0.1
libxl_add_vif 1 0 "mac=$(mac_of "$(guest 1)" eth0)" ip=10.0.0.11 script="$VIF_XENNET"
expect "vif 1 online" run_hotplug "$VIF_XENNET" online 1 0
xn map add 100.64.9.1 10.0.0.11 >/dev/null
stop_daemon
n=2
ruleset() {
	nft_json | jq -c '.nftables[1:] | walk(if type == "object" then del(.handle) | (if has("counter") then .counter = "c" else . end) else . end)'
}

# check_serves WHY: the daemon (started on a broken state directory) serves.
check_serves() {
	local why=$1
	before=$(kernel_state)
	start_daemon "$T/nat.conf"
	expect "$why: the daemon started with 0 changes" \
		grep -q "applied $T/nat.conf.*: 0 changes" <(tail -n 20 "$T/daemon.log")
	expect_eq "$why: the kernel is as it was" "$before" "$(kernel_state)"
	expect "$why: the log names the problem" grep -q "state directory $T/state: $why" "$T/daemon.log"
	expect "$why: status names it" grep -q "state directory $T/state: $why: changes that must be saved are refused" <(xn status)
	expect_eq "$why: status --json too" "$why" "$(xn status --json | jq -r .state_dir.error)"
	expect_eq "$why: the mapping is listed" 100.64.9.1 "$(xn map list --json | jq -r '[.maps[].public] | join(",")')"
	expect "$why: and carries traffic" ping_from "$LAN" 100.64.9.1
	make_guest "$n" "10.0.0.1$n/24" 10.0.0.1
	libxl_add_vif "$n" 0 "mac=$(mac_of "$(guest "$n")" eth0)" "ip=10.0.0.1$n" script="$VIF_XENNET"
	expect "$why: vif-xennet online exits 0" run_hotplug "$VIF_XENNET" online "$n" 0
	expect_eq "$why: hotplug-status connected" connected "$(xs_read "backend/vif/$n/0/hotplug-status")"
	expect "$why: the new guest reaches the LAN" ping_from "$(guest "$n")" "$LAN_IP"
	before=$(kernel_state)
	local rc=0 out
	out=$(xn map add 100.64.9.2 "10.0.0.1$n" 2>&1) || rc=$?
	expect_eq "$why: a map add (it must be saved) is refused" 1 "$rc"
	expect "$why: saying why ($out)" grep -q "mappings: $why; nothing changed" <<<"$out"
	# A repair needs no write: xennet's table put back after someone
	# deleted it.
	rules=$(ruleset)
	in_ns "$DOM0" nft delete table inet xennet
	sleep 0.5
	expect_eq "$why: the deleted nft table is put back, with its elements" "$rules" "$(ruleset)"
	expect "$why: and the mapping carries traffic again" ping_from "$LAN" 100.64.9.1
	stop_daemon
	n=$((n + 1))
}

mount -o remount,ro "$T/state"
check_serves "Read-only file system"
mount -o remount,rw "$T/state"
# The mappings file ends on a page boundary (a comment line), so that its
# next line needs a new page, as on a disk whose last block is full.
size=$(stat -c %s "$T/state/mappings")
printf '#%*s\n' $((4096 - size % 4096 - 2)) '' | tr ' ' x >>"$T/state/mappings"
dd if=/dev/zero of="$T/state/fill" bs=4k 2>/dev/null || true
check_serves "No space left on device"
