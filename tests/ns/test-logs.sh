#!/bin/bash
# The daemon's log as an administrator reads it: under systemd (stderr is
# the journal, JOURNAL_STREAM) every line carries its syslog priority and
# none is printed twice; every change an operator makes is logged with
# who made it (apply, reload, SIGHUP, map/forward add|del, refusals);
# 5,000 refused clients write a handful of lines and one saying how many
# were left out.
. "$(dirname "$0")/lib.sh"
: "${UNIX_HAMMER:?}"

make_lan_and_dom0
make_guest 1 10.0.0.11/24 10.0.0.1
nat_profile "$T/nat.conf"
: >"$T/daemon.log"
# What systemd sets when stderr is a journal stream: its device and inode.
JOURNAL_STREAM=$(stat -c "%d:%i" "$T/daemon.log")
export JOURNAL_STREAM
start_daemon "$T/nat.conf"
unset JOURNAL_STREAM
LOG=$T/daemon.log
# wait_log PATTERN [COUNT]: until grep -c PATTERN reaches COUNT (1), 10 s
wait_log() {
	for _ in $(seq 200); do
		[ "$(grep -c -- "$1" "$LOG" || true)" -ge "${2:-1}" ] && return 0
		sleep 0.05
	done
	return 1
}

expect "the start is logged at info, with its changes" \
	grep -qx "<6>applied $T/nat.conf (nat mode, at start): [1-9][0-9]* changes" "$LOG"
expect "each change on a line of its own, at info" grep -qx "<6>create bridge xenbr0.*" "$LOG"
expect_eq "the start's result is written once" 1 "$(grep -c "applied $T/nat.conf" "$LOG")"

expect "xennet reload" xn reload
expect "the reload is logged with who asked" \
	wait_log "^<6>applied $T/nat.conf (nat mode, requested by uid 0 pid [0-9]*): 0 changes$"
kill -HUP "$DPID"
expect "SIGHUP is logged with who sent it" \
	wait_log "^<6>applied $T/nat.conf (nat mode, SIGHUP from pid [0-9]*): 0 changes$"
cp "$T/nat.conf" "$T/nat.good"
echo "mode = bogus" >>"$T/nat.conf"
kill -HUP "$DPID"
expect "a refused profile is an error, with file:line" wait_log "^<3>$T/nat.conf:[0-9]*: "
expect "and says nothing changed" \
	wait_log "^<3>$T/nat.conf: profile rejected (SIGHUP from pid [0-9]*), nothing changed$"
# Many errors, many times: none is left out (one message per refusal).
for i in $(seq 15); do echo "bogus$i = 1" >>"$T/nat.conf"; done
for _ in $(seq 12); do
	n=$(grep -c "profile rejected (SIGHUP" "$LOG")
	kill -HUP "$DPID"
	wait_log "profile rejected (SIGHUP" $((n + 1)) || fail "a refusal was not logged"
done
expect "the twelfth refusal of 16 errors is logged whole" \
	test "$(tail -n 18 "$LOG" | grep -c "^<3>$T/nat.conf:[0-9]*: ")" -ge 16
cp "$T/nat.good" "$T/nat.conf"

expect "map add" xn map add 192.168.50.10 10.0.0.11 --name g1
expect "is logged with who asked" \
	wait_log "^<6>map add 192.168.50.10 10.0.0.11 g1 (requested by uid 0 pid [0-9]*): done$"
expect_not "a conflicting map add is refused" xn map add 192.168.50.10 10.0.0.12
expect "the refusal is logged as a warning, with why" \
	wait_log "^<4>map add 192.168.50.10 10.0.0.12 (requested by uid 0 pid [0-9]*): not done: refused: public address 192.168.50.10 is already mapped"
expect "forward add" xn forward add 192.168.50.20:80/tcp 10.0.0.11:8080
expect "is logged" wait_log "^<6>forward add 192.168.50.20:80/tcp 10.0.0.11:8080 (requested by uid 0 pid [0-9]*): done$"
expect "forward del" xn forward del 192.168.50.20:80/tcp
expect "is logged" wait_log "^<6>forward del 192.168.50.20:80/tcp (requested by uid 0 pid [0-9]*): done$"
expect "map del" xn map del 192.168.50.10
expect "is logged" wait_log "^<6>map del 192.168.50.10 (requested by uid 0 pid [0-9]*): done$"

# 5,000 clients that are not root: refused, and not 5,000 lines.
chmod 666 "$T/ctl.sock"
chmod 755 "$T"
made=$(in_ns "$DOM0" setpriv --reuid=65534 --regid=65534 --clear-groups \
	"$UNIX_HAMMER" "$T/ctl.sock" 5000)
expect_eq "5,000 clients connected" 5000 "$made"
expect "the count of those left out comes within the window (5 s)" \
	wait_log "more like this left out in 5 s: control: refused a client that is not root"
printed=$(grep -c "^<4>control: refused a client that is not root$" "$LOG" || true)
left_out=$(sed -n 's/^<4>\([0-9]*\) more like this left out in 5 s: control: refused a client that is not root$/\1/p' "$LOG" |
	awk '{ s += $1 } END { print s + 0 }')
expect "a handful printed ($printed)" test "$printed" -le 30
expect_eq "printed and left out add up to 5,000" 5000 "$((printed + left_out))"
expect "root still gets status" xn status >/dev/null

expect_eq "every line carries its priority" "" "$(grep -v '^<[0-7]>' "$LOG" || true)"
[ -z "${SHOW_LOG:-}" ] || cat "$LOG" >&2
stop_daemon

# Without the journal: the program's name and the level, as before.
: >"$LOG"
start_daemon "$T/nat.conf"
expect "on a terminal: name and level" grep -q "^xennetd: info: applied $T/nat.conf" "$LOG"
expect_eq "and no priority prefix" "" "$(grep '^<[0-7]>' "$LOG" || true)"
