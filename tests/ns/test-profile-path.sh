#!/bin/bash
# The profile path given to `xennet apply` is kept as given: a daemon
# restarted without --profile applies the profile last applied, also from
# a path with a space; a path with a newline (which would forge a line of
# the ledger) is refused and changes nothing.
. "$(dirname "$0")/lib.sh"

# start_daemon, without --profile: the ledger says which profile.
start_daemon_from_ledger() {
	# shellcheck disable=SC2086
	ip netns exec "$DOM0" ${XENNETD_WRAP:-} "$XENNETD" --foreground \
		--socket "$T/ctl.sock" --state-dir "$T/state" >>"$T/daemon.log" 2>&1 &
	DPID=$!
	for _ in $(seq 1200); do
		[ -S "$T/ctl.sock" ] && return 0
		kill -0 "$DPID" 2>/dev/null || { wait "$DPID" || true; DPID=; fail "xennetd exited at start: $(tail -n 3 "$T/daemon.log")"; }
		sleep 0.05
	done
	fail "xennetd did not open its control socket"
}

make_lan_and_dom0
nat_profile "$T/nat.conf"
start_daemon "$T/nat.conf"
mkdir "$T/my profiles"
spaced="$T/my profiles/nat 1.conf"
printf '[xennet]\nmode = nat\n[bridge xenbr1]\naddress = 10.0.1.1/24\n[nat]\nuplink = eth0\nbridge = xenbr1\n' >"$spaced"
expect "a profile at a path with spaces is applied" xn apply "$spaced"
expect "its bridge is made" ip -n "$DOM0" link show xenbr1
expect_not "the previous profile's bridge is gone" ip -n "$DOM0" link show xenbr0
stop_daemon

start_daemon_from_ledger
expect "restarted without --profile, xennetd applies that profile" \
	grep -qF "(a copy of $spaced, as applied)" <(xn status)
expect "its bridge stays" ip -n "$DOM0" link show xenbr1
ledger=$(cat "$T/state/ledger")

newline="$T/my profiles/x
bridge eth0.conf"
cp "$T/nat.conf" "$newline"
set +e
out=$(xn apply "$newline" 2>&1); rc=$?
set -e
expect_eq "a profile path with a newline: apply exits 1" 1 "$rc"
expect "saying why" grep -q "a profile path with a newline is not accepted" <<<"$out"
expect_eq "the ledger is unchanged" "$ledger" "$(cat "$T/state/ledger")"
expect "the profile applied is unchanged" grep -qF "(a copy of $spaced, as applied)" <(xn status)
stop_daemon

# A relative --profile is kept as an absolute path (a daemon works from /,
# and a reload must find the file again).
(cd "$T" && exec ip netns exec "$DOM0" "$XENNETD" --foreground --profile nat.conf \
	--socket "$T/ctl.sock" --state-dir "$T/state" >>"$T/daemon.log" 2>&1) &
DPID=$!
for _ in $(seq 200); do [ -S "$T/ctl.sock" ] && break; sleep 0.05; done
expect "a relative --profile is shown as an absolute path" grep -qF "(a copy of $T/nat.conf" <(xn status)
expect "and a reload finds it" xn reload
stop_daemon
