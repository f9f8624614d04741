#!/bin/bash
# Bad input changes nothing: a bad profile by `xennet apply` or SIGHUP, a
# profile the host cannot take, a client that is not root.
. "$(dirname "$0")/lib.sh"

make_lan_and_dom0
make_guest 1 10.0.0.11/24 10.0.0.1
nat_profile "$T/nat.conf"
start_daemon "$T/nat.conf"
attach_vif_to_bridge vif1.0 xenbr0
s1=$(kernel_state)

cat >"$T/bad.conf" <<CONF
[xennet]
mode = nat
[bridge xenbr0]
address = 10.0.0.300/24
[nat]
uplink = eth0
bridge = xenbr0
CONF
set +e
err=$(xn apply "$T/bad.conf" 2>&1); rc=$?
set -e
expect_eq "apply of a bad profile exits 1" 1 "$rc"
expect "the error names file:line and the bad value" grep -q "bad.conf:4:.*10.0.0.300/24" <<<"$err"
set +e
err=$(xn check "$T/bad.conf" 2>&1); rc=$?
set -e
expect_eq "check of a bad profile exits 1" 1 "$rc"
expect "check names file:line" grep -q "bad.conf:4:" <<<"$err"

# Valid profile, but the host cannot take it: no such uplink.
sed 's/uplink = eth0/uplink = eth9/' "$T/nat.conf" >"$T/nouplink.conf"
set +e
err=$(xn apply "$T/nouplink.conf" 2>&1); rc=$?
set -e
expect_eq "apply with a missing uplink fails" 1 "$rc"
expect "it says which uplink" grep -q "uplink eth9 does not exist" <<<"$err"
expect "daemon still running" daemon_alive
expect_eq "kernel state unchanged" "$s1" "$(kernel_state)"

# SIGHUP with the profile in force made invalid.
cp "$T/nat.conf" "$T/nat.good"
cp "$T/bad.conf" "$T/nat.conf"
kill -HUP "$DPID"
for _ in $(seq 50); do grep -q "reload failed" "$T/daemon.log" && break; sleep 0.05; done
expect "SIGHUP with a bad profile is logged with file:line" grep -q "nat.conf:4:" "$T/daemon.log"
expect "daemon still running after the bad SIGHUP" daemon_alive
expect_eq "kernel state unchanged after the bad SIGHUP" "$s1" "$(kernel_state)"
expect "traffic still flows" ping_from "$(guest 1)" "$LAN_IP"
src=$(exchange tcp "$(guest 1)" "$LAN" "$LAN_IP" 7301) || fail "TCP after the bad reload"
expect_eq "and is still masqueraded" "$DOM0_IP" "$src"
cp "$T/nat.good" "$T/nat.conf"

# The control socket: mode 0600, and a non-root peer is refused even if
# someone loosened the file mode (SO_PEERCRED).
expect_eq "control socket is 0600" 600 "$(stat -c %a "$T/ctl.sock")"
chmod 666 "$T/ctl.sock"
chmod 755 "$T"
set +e
err=$(in_ns "$DOM0" setpriv --reuid=65534 --regid=65534 --clear-groups \
	"$XENNET" --socket "$T/ctl.sock" status 2>&1); rc=$?
set -e
expect_eq "a non-root client is refused" 1 "$rc"
expect "the refusal is logged" grep -q "refused a client that is not root" "$T/daemon.log"
expect "root still gets status" xn status

# A second daemon on the same state directory refuses to start.
set +e
out=$(in_ns "$DOM0" "$XENNETD" --foreground --profile "$T/nat.conf" --socket "$T/ctl2.sock" \
	--state-dir "$T/state" 2>&1); rc=$?
set -e
expect_eq "a second xennetd on the same state exits 1" 1 "$rc"
expect "it says why" grep -q "another xennetd is running" <<<"$out"
expect "the first one is still running" daemon_alive
