#!/bin/bash
# kill -9 in the middle of an apply (issue 14, item 4): each kernel step
# is recorded in the ledger before it is made (write-ahead), so that a
# later start finishes or undoes it. Here xennetd is killed (gdb, SIGKILL)
# after it made the bridge, enslaved eth0 and copied Dom0's address, just
# before it moves the default route; the ledger must name all of it, and
# a start with another profile must take it all back.
. "$(dirname "$0")/lib.sh"
command -v gdb >/dev/null || { echo "SKIP: gdb is missing"; exit 77; }

make_lan_and_dom0
bridged_profile "$T/bridged.conf"
cat >"$T/routed.conf" <<CONF
[xennet]
mode = routed
[routed]
uplink = eth0
CONF
master_of() { ip -n "$DOM0" -j link show "$1" | jq -r '.[0].master'; }
addrs_of() { ip -n "$DOM0" -j addr show dev "$1" | jq -r '[.[0].addr_info[] | select(.family == "inet") | "\(.local)/\(.prefixlen)"] | join(" ")'; }

# The first route the daemon writes is the default route it moves to the
# bridge: stop there and kill it.
in_ns "$DOM0" timeout 60 gdb -q -batch -ex 'set pagination off' -ex 'break xn_nl_route_replace' \
	-ex run -ex kill --args "$XENNETD" --foreground --profile "$T/bridged.conf" \
	--socket "$T/ctl.sock" --state-dir "$T/state" >"$T/gdb.log" 2>&1 || true
grep -q "Breakpoint 1, .*xn_nl_route_replace" "$T/gdb.log" || { cat "$T/gdb.log" >&2; fail "gdb did not stop xennetd at the route"; }
rm -f "$T/ctl.sock"
expect "killed half way: xenbr0 was made" ip -n "$DOM0" link show xenbr0
expect_eq "killed half way: eth0 is its port" xenbr0 "$(master_of eth0)"
expect "the ledger names the bridge" grep -qx "bridge xenbr0" "$T/state/ledger"
expect "the ledger names the port" grep -q "^port xenbr0 eth0" "$T/state/ledger"
expect "the ledger names the address copied" grep -q "192.168.50.2/24" "$T/state/ledger"

# A start with another profile: nothing of the killed apply stays.
start_daemon "$T/routed.conf"
expect_not "xenbr0 is gone" ip -n "$DOM0" link show xenbr0
expect_eq "eth0 is nobody's port" null "$(master_of eth0)"
expect_eq "Dom0's address is on eth0, once" 192.168.50.2/24 "$(addrs_of eth0)"
expect_eq "the default route is via eth0" eth0 \
	"$(ip -n "$DOM0" -j route show default | jq -r '.[0].dev')"
expect "Dom0 reaches the LAN" ping_from "$DOM0" "$LAN_IP"
stop_daemon

# Killed again, then started with the same profile: it is finished.
in_ns "$DOM0" timeout 60 gdb -q -batch -ex 'set pagination off' -ex 'break xn_nl_route_replace' \
	-ex run -ex kill --args "$XENNETD" --foreground --profile "$T/bridged.conf" \
	--socket "$T/ctl.sock" --state-dir "$T/state" >"$T/gdb.log" 2>&1 || true
rm -f "$T/ctl.sock"
start_daemon "$T/bridged.conf"
expect_eq "finished: eth0 is xenbr0's port" xenbr0 "$(master_of eth0)"
expect_eq "Dom0's address is on xenbr0" 192.168.50.2/24 "$(addrs_of xenbr0)"
expect_eq "and no longer on eth0" "" "$(addrs_of eth0)"
expect_eq "the default route is via xenbr0" xenbr0 \
	"$(ip -n "$DOM0" -j route show default | jq -r '.[0].dev')"
expect "Dom0 reaches the LAN" ping_from "$DOM0" "$LAN_IP"
stop_daemon
start_daemon "$T/routed.conf"
expect_not "and undone by another profile: xenbr0 is gone" ip -n "$DOM0" link show xenbr0
expect_eq "Dom0's address is back on eth0" 192.168.50.2/24 "$(addrs_of eth0)"
