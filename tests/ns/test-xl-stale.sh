#!/bin/bash
# Issue 12, defect 2, with Debian's real xl (tests/ns/xl.sh): xennetd is
# stopped (SIGSTOP) while xl attaches a vif; vif-xennet gives up at its
# 35 s deadline, writes hotplug-status=error, and xl reports the attach as
# failed. When xennetd runs again, nothing may bring that vif up: the
# toolstack believes it broken, so a live port would be one nobody knows
# of. Takes about 40 s.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/xenstore.sh"
. "$(dirname "$0")/xl.sh"
: "${VIF_XENNET:?}"
export XENNET_SOCKET=$T/ctl.sock

be=/local/domain/0/backend/vif/1/0
master_of() { ip -n "$DOM0" -j link show "$1" 2>/dev/null | jq -r '.[0].master // "null"'; }

make_lan_and_dom0
start_xenstored --domains ""
bridged_profile "$T/bridged.conf"
start_daemon "$T/bridged.conf"
xl_start
xl_add_domain 1 web

kill -STOP "$DPID"
rc=0
xl_attach 1 bridge=xenbr0 mac=00:16:3e:00:01:00 script=vif-xennet || rc=$?
kill -CONT "$DPID"
expect_not "xl network-attach fails while xennetd is stopped (${XL_MS} ms)" test "$rc" = 0
expect "it failed at the script's deadline, before libxl's 40 s kill" \
	test "$XL_MS" -ge 30000 -a "$XL_MS" -lt 40000
expect "xl says the vif could not be added" grep -q "Unable to add vif" "$XL_ERR"
expect_eq "hotplug-status error" error "$(xs_read $be/hotplug-status)"
err=$(xs_read $be/hotplug-error || true)
expect "hotplug-error says why ($err)" test -n "$err"

# xennetd runs again: give it time to read what waited on its socket
# (xennet status is answered after it), then look for a while.
xn status >/dev/null
late=
for _ in $(seq 20); do
	if [ "$(master_of vif1.0)" != null ] || [ "$(xs_read $be/hotplug-status)" != error ]; then
		late=yes
		break
	fi
	sleep 0.1
done
expect_eq "after SIGCONT, vif1.0 is attached to no bridge" null "$(master_of vif1.0)"
expect_eq "hotplug-status stays error" error "$(xs_read $be/hotplug-status)"
expect_eq "hotplug-error stays" "$err" "$(xs_read $be/hotplug-error || true)"
expect_not "the backend did not connect" test "$(xs_read $be/state)" = 4
expect_eq "nothing brought it up late" "" "$late"

expect "the detach exits 0" xl_detach 1 0
expect_not "the backend is gone" xs_exists $be
expect_eq "nothing of it in xennet status" 0 "$(xn status --json | jq '[.vifs[]?] | length')"
