#!/bin/bash
# `apply` of a FIFO, a directory or a device over the control socket is
# refused at once with a clear error (the daemon must not block in open()
# or read()), changes nothing, and the daemon goes on serving.
. "$(dirname "$0")/lib.sh"
: "${CTLRAW:?}"

make_lan_and_dom0
nat_profile "$T/nat.conf"
start_daemon "$T/nat.conf"
before=$(kernel_state)
mkfifo "$T/fifo.conf"
mkdir "$T/dir.conf"

# refused PATH WANT: apply PATH sent as is (the CLI would open it itself).
refused() {
	local path=$1 want=$2 rc=0 out
	out=$(timeout 10 ip netns exec "$DOM0" "$CTLRAW" call "$T/ctl.sock" apply "$path" 2>&1) || rc=$?
	[ "$rc" != 124 ] || fail "apply $path: no answer in 10 s (the daemon blocked)"
	expect_eq "apply $path: refused" 1 "$rc"
	expect "apply $path: says why ($(head -n 1 <<<"$out"))" grep -qF "$path: cannot open: $want" <<<"$out"
	expect "apply $path: the daemon still answers" timeout 5 ip netns exec "$DOM0" "$XENNET" \
		--socket "$T/ctl.sock" status
}
refused "$T/fifo.conf" "not a regular file"
refused "$T/dir.conf" "a directory, not a regular file"
refused /dev/zero "not a regular file"
expect_eq "nothing changed in the kernel" "$before" "$(kernel_state)"
expect "status names the profile in force, not the refused ones" \
	grep -q "$T/nat.conf" <(xn status)
