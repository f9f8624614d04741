#!/bin/bash
# Control requests are read without blocking: each connection has its own
# buffer and deadline, and the others are served meanwhile. An idle client
# delays nobody; 130 half-sent requests do not make vif-xennet fail; those
# that never finish are dropped after their deadline (2 s), in one log
# line, and hold no file descriptor afterwards.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/xenstore.sh"
: "${VIF_XENNET:?}" "${CTLRAW:?}"
export XENNET_SOCKET=$T/ctl.sock

make_lan_and_dom0
start_xenstored
nat_profile "$T/nat.conf"
start_daemon "$T/nat.conf"
ms() { echo $(($(date +%s%N) / 1000000)); }
fds() { find "/proc/$DPID/fd" -mindepth 1 | wc -l; }

# stall N: N clients that send half a request and wait; returns once they
# are all connected (or after 10 s: a daemon that blocks fills its backlog
# and the connections beyond it wait).
stall() {
	local n=$1 out=$T/stall.$1
	ip netns exec "$DOM0" "$CTLRAW" stall "$T/ctl.sock" "$n" 20 >"$out" 2>&1 &
	BG_PIDS+=($!)
	for _ in $(seq 100); do
		grep -q "stalled $n" "$out" && return 0
		sleep 0.1
	done
	echo "note: the $n stalled clients are not all connected after 10 s" >&2
}

# One idle client: a status right after it is answered at once.
stall 1
t0=$(ms)
expect "status answers while a client is idle" xn status
t1=$(ms)
expect "status is not delayed by the idle client ($((t1 - t0)) ms)" [ $((t1 - t0)) -lt 1000 ]
for _ in $(seq 40); do
	grep -q "dropped 1 client that sent no complete request" "$T/daemon.log" && break
	sleep 0.1
done
expect "the idle client is dropped after its deadline" \
	grep -q "dropped 1 client that sent no complete request" "$T/daemon.log"
# The daemon's descriptors once it is serving (xenstore's are opened after
# the control socket).
fds_before=$(fds)

# 130 half-sent requests (more than the listen backlog), then a vif.
stall 130
make_guest 1 10.0.0.11/24 10.0.0.1
mac=$(ip -n "$(guest 1)" -j link show dev eth0 | jq -r '.[0].address')
libxl_add_vif 1 0 bridge=xenbr0 "mac=$mac" ip=10.0.0.11 script="$VIF_XENNET"
expect "vif-xennet online exits 0 behind 130 stalled clients" run_hotplug "$VIF_XENNET" online 1 0
expect "and took less than 1 s (${HOTPLUG_MS} ms)" [ "$HOTPLUG_MS" -lt 1000 ]
expect_eq "hotplug-status connected" connected "$(xs_read backend/vif/1/0/hotplug-status)"
expect_eq "vif1.0 joins the guest bridge" xenbr0 "$(ip -n "$DOM0" -j link show vif1.0 | jq -r '.[0].master')"
expect "the guest reaches the LAN" ping_from "$(guest 1)" "$LAN_IP"

# Past their deadline the stalled clients are dropped (said once), and
# their descriptors go.
lines_before=$(grep -c "sent no complete request" "$T/daemon.log" || true)
sleep 2.5
dropped=$(grep "sent no complete request" "$T/daemon.log" | tail -n +$((lines_before + 1)))
expect_eq "the daemon says it dropped the 130 stalled clients" 130 \
	"$(sed -n 's/.*dropped \([0-9]*\) client.*/\1/p' <<<"$dropped" | awk '{ s += $1 } END { print s }')"
expect "in a few lines, not one per client ($(wc -l <<<"$dropped"))" [ "$(wc -l <<<"$dropped")" -le 3 ]
expect "no descriptor left behind ($(fds) now, $fds_before before)" [ "$(fds)" -le $((fds_before + 2)) ]

# Far more than it keeps (256): the oldest go first; requests still served.
stall 400
expect "status answers behind 400 stalled clients" timeout 5 ip netns exec "$DOM0" "$XENNET" \
	--socket "$T/ctl.sock" status
expect "the daemon holds no more than 256 of them ($(fds) descriptors)" [ "$(fds)" -le $((fds_before + 260)) ]
expect "vif-xennet offline exits 0" run_hotplug "$VIF_XENNET" offline 1 0
