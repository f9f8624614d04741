#!/bin/bash
# The profile in force lives in the state directory: `xennet apply FILE`
# copies FILE there, a restart uses that copy even when FILE is gone (a
# profile under /tmp), `xennet status` says where it came from, a reload
# reads FILE again (its copy when FILE is gone). Without a profile the
# daemon says what to do, in one line. `xennet help`, `CMD --help`, -V.
. "$(dirname "$0")/lib.sh"
quiet() { "$@" >/dev/null; }

make_lan_and_dom0
make_guest 1 10.0.0.11/24 10.0.0.1
nat_profile "$T/nat.conf"
start_daemon "$T/nat.conf"
attach_vif_to_bridge vif1.0 xenbr0

mkdir "$T/vanishing"
sed 's|^address = 10.0.0.1/24|&\naddress = 10.0.1.1/24|' "$T/nat.conf" >"$T/vanishing/p.conf"
expect "xennet apply of a profile in a directory that will go" xn apply "$T/vanishing/p.conf"
expect_eq "the copy in the state directory is the applied file" \
	"$(cat "$T/vanishing/p.conf")" "$(cat "$T/state/profile.conf")"
expect "status says where the profile came from" \
	grep -qx "profile: $T/state/profile.conf (a copy of $T/vanishing/p.conf, as applied)" <(xn status)
expect_eq "and so does status --json" "$T/vanishing/p.conf" "$(xn status --json | jq -r .profile_source)"
s1=$(kernel_state)

# The file goes; a restart without --profile uses the copy.
rm -rf "$T/vanishing"
stop_daemon
ip netns exec "$DOM0" "$XENNETD" --foreground --socket "$T/ctl.sock" --state-dir "$T/state" \
	>>"$T/daemon.log" 2>&1 &
# shellcheck disable=SC2034 # stopped by stop_daemon (lib.sh)
DPID=$!
for _ in $(seq 200); do [ -S "$T/ctl.sock" ] && break; sleep 0.05; done
expect "the restarted daemon answers" quiet xn status
expect "it applied the copy and changed nothing" \
	grep -q "applied $T/state/profile.conf (nat mode, at start): 0 changes" "$T/daemon.log"
expect_eq "the same kernel state" "$s1" "$(kernel_state)"
expect "status still names the source" grep -q "(a copy of $T/vanishing/p.conf, as applied)" <(xn status)
expect "a reload with the source gone reloads the copy" xn reload
expect "and says so" grep -q "$T/vanishing/p.conf, which the profile in force came from, is gone" "$T/daemon.log"
expect "the guest keeps its network" ping_from "$(guest 1)" 10.0.0.1

# A reload reads the source again, where it is edited.
nat_profile "$T/nat.conf"
expect "apply the first profile again" xn apply "$T/nat.conf"
echo "# edited" >>"$T/nat.conf"
expect "reload" xn reload
expect_eq "the copy follows the edited source" "$(cat "$T/nat.conf")" "$(cat "$T/state/profile.conf")"
expect_not "the second address went with the other profile" grep -q 10.0.1.1 <(ip -n "$DOM0" addr show xenbr0)
stop_daemon

# No profile: one line that says what to do.
set +e
err=$(ip netns exec "$DOM0" "$XENNETD" --foreground --socket "$T/ctl2.sock" --state-dir "$T/state2" 2>&1)
rc=$?
set -e
expect_eq "without a profile xennetd exits 1" 1 "$rc"
expect_eq "with one line" 1 "$(wc -l <<<"$err")"
expect "that says what to do" grep -q "no profile: .*/xennet/xennet.conf does not exist; copy one of .*/doc/xennet/examples to it and edit it, or start with --profile FILE" <<<"$err"

# Help and version.
expect "xennet help" quiet "$XENNET" help
expect "xennet help map names map's forms" grep -q "map add PUBLIC GUEST" <("$XENNET" help map)
expect "xennet map --help exits 0" quiet "$XENNET" map --help
expect "xennet status --help exits 0" quiet "$XENNET" status --help
set +e; "$XENNET" help nosuch >/dev/null 2>&1; rc=$?; set -e
expect_eq "xennet help of an unknown command is a usage error" 2 "$rc"
for p in "$XENNETD" "$XENNET" "$VIF_XENNET"; do
	expect "$(basename "$p") -V" grep -q "^$(basename "$p") [0-9]" <("$p" -V)
	expect "$(basename "$p") --help exits 0" quiet "$p" --help
done
