#!/bin/bash
# STATE_DIR/mappings that cannot be read (a directory, a FIFO) is an error
# that changes nothing: never read as "no mappings", which would remove
# every acknowledged mapping from the kernel.
. "$(dirname "$0")/lib.sh"

make_lan_and_dom0
make_guest 1 10.0.0.11/24 10.0.0.1
nat_profile "$T/nat.conf"
start_daemon "$T/nat.conf"
attach_vif_to_bridge vif1.0 xenbr0
PUB=100.64.7.1
xn map add "$PUB" 10.0.0.11 --name web >/dev/null
stop_daemon

dnat_keys() { nft_json | jq -r '[.nftables[] | select(.map.name == "map_dnat") | .map.elem[]?[0]] | join(" ")'; }
public_routes() { ip -n "$DOM0" -j route show table local proto 120 | jq -r '[.[].dst] | join(" ")'; }
expect_eq "the mapping is in the kernel" "$PUB" "$(dnat_keys)"
before=$(kernel_state)

# start_refused WHAT: the daemon must exit non-zero at start (in 10 s:
# a FIFO must not block it) and say which file and why.
start_refused() {
	local what=$1 want=$2 rc=0
	timeout 10 ip netns exec "$DOM0" "$XENNETD" --foreground --profile "$T/nat.conf" \
		--socket "$T/ctl.sock" --state-dir "$T/state" >"$T/start.log" 2>&1 || rc=$?
	[ "$rc" != 124 ] || echo "$what: the daemon was still running (or blocked) after 10 s" >&2
	expect_eq "$what: the mapping is still in the kernel" "$PUB" "$(dnat_keys)"
	[ "$rc" != 0 ] && [ "$rc" != 124 ] || fail "$what: the daemon did not refuse to start"
	expect "$what: refused to start, naming the file and why ($(tail -n 1 "$T/start.log"))" \
		grep -q "$T/state/mappings: cannot read the public IP mappings: $want" "$T/start.log"
	expect_eq "$what: its public address is still routed" "$PUB" "$(public_routes)"
	expect_eq "$what: nothing in the kernel changed" "$before" "$(kernel_state)"
}

mv "$T/state/mappings" "$T/mappings.saved"
mkdir "$T/state/mappings"
start_refused "mappings is a directory" "a directory, not a regular file"
rmdir "$T/state/mappings"
mkfifo "$T/state/mappings"
start_refused "mappings is a FIFO" "not a regular file"
rm "$T/state/mappings"

# The file back: the daemon starts and the mapping still works.
mv "$T/mappings.saved" "$T/state/mappings"
start_daemon "$T/nat.conf"
expect_eq "the mapping is listed again" "$PUB 10.0.0.11 web" \
	"$(xn map list --json | jq -r '.maps[] | "\(.public) \(.guest) \(.name)"')"
expect_eq "and unchanged in the kernel" "$before" "$(kernel_state)"
