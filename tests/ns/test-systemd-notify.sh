#!/bin/bash
# Readiness as systemd sees it (Type=notify), without systemd: a stand-in
# notification socket gets READY=1 from xennetd's main process only once
# the profile is applied and the control socket listens, RELOADING=1 then
# READY=1 around each reload (SIGHUP, `xennet reload`, `xennet apply`,
# also a rejected one), STATUS= lines, and STOPPING=1 on SIGTERM.
. "$(dirname "$0")/lib.sh"
: "${NOTIFY_LISTEN:?}"

make_lan_and_dom0
nat_profile "$T/nat.conf"
in_ns "$DOM0" "$NOTIFY_LISTEN" "$T/notify.sock" "$T/ctl.sock" /sys/class/net/xenbr0 \
	>"$T/notify.log" 2>&1 &
BG_PIDS+=($!)
for _ in $(seq 100); do [ -S "$T/notify.sock" ] && break; sleep 0.02; done
export NOTIFY_SOCKET=$T/notify.sock
start_daemon "$T/nat.conf"
unset NOTIFY_SOCKET

# wait_lines N: until the listener has printed N lines (5 s at most)
wait_lines() {
	for _ in $(seq 250); do
		[ "$(wc -l <"$T/notify.log")" -ge "$1" ] && return 0
		sleep 0.02
	done
	cat "$T/notify.log" >&2
	return 1
}
expect "READY=1 arrives" wait_lines 1
first=$(sed -n 1p "$T/notify.log")
expect "the first message is READY=1" grep -q " READY=1" <<<"$first"
expect "from the daemon's main process" grep -q "pid=$DPID " <<<"$first"
expect "after the control socket listens" grep -q "exists:$T/ctl.sock" <<<"$first"
expect "after the profile is applied (xenbr0 made)" grep -q "exists:/sys/class/net/xenbr0" <<<"$first"
expect "with a STATUS line naming the mode and profile" grep -q "STATUS=nat mode, profile $T/nat.conf" <<<"$first"

expect "xennet reload" xn reload
expect "RELOADING=1 then READY=1" wait_lines 3
expect_eq "around the reload" "RELOADING=1 READY=1" \
	"$(sed -n '2,3p' "$T/notify.log" | grep -o 'RELOADING=1\|READY=1' | xargs)"

kill -HUP "$DPID"
expect "SIGHUP: RELOADING=1 then READY=1" wait_lines 5
expect_eq "around SIGHUP" "RELOADING=1 READY=1" \
	"$(sed -n '4,5p' "$T/notify.log" | grep -o 'RELOADING=1\|READY=1' | xargs)"

printf '[xennet]\nmode = bogus\n' >"$T/bad.conf"
expect_not "a bad profile is refused" xn apply "$T/bad.conf"
# The CLI refuses that one itself; this one is valid but not for this
# host (no such uplink): the daemon is asked and refuses it.
sed 's/uplink = eth0/uplink = nosuch0/' "$T/nat.conf" >"$T/other.conf"
expect_not "a profile the daemon refuses" xn apply "$T/other.conf"
expect "still READY=1 after a rejected apply" wait_lines 7
expect "READY=1 is the last word" grep -q " READY=1" <(tail -n 1 "$T/notify.log")

stop_daemon
expect "STOPPING=1 on SIGTERM" wait_lines 8
expect "STOPPING=1 comes last" grep -q "STOPPING=1" <(tail -n 1 "$T/notify.log")
