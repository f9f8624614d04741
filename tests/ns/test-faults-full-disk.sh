#!/bin/bash
# map del / map add on a full state directory: a change is acknowledged
# only once it is on disk; otherwise it is refused and the kernel is left
# as it was (a removal answered "ok" used to come back at the next start).
# The state directory is a small tmpfs, mounted in a mount namespace of
# this test's own (it goes with the test, whatever happens).
if [ -z "${XN_PRIVATE_MOUNTS:-}" ]; then
	XN_PRIVATE_MOUNTS=1 exec unshare -m --propagation private "$0" "$@"
fi
. "$(dirname "$0")/lib.sh"

make_lan_and_dom0
make_guest 1 10.0.0.11/24 10.0.0.1
make_guest 2 10.0.0.12/24 10.0.0.1
mkdir -p "$T/state"
mount -t tmpfs -o size=256k,mode=0700 xennet-test-state "$T/state"
nat_profile "$T/nat.conf"
start_daemon "$T/nat.conf"
attach_vif_to_bridge vif1.0 xenbr0
attach_vif_to_bridge vif2.0 xenbr0
PUB=100.64.9.1 # routed to Dom0 by the LAN's router
ip -n "$LAN" route add 100.64.9.0/24 via "$DOM0_IP"
xn map add "$PUB" 10.0.0.11 --name web >/dev/null
dnat() { nft_json | jq -r '[.nftables[] | select(.map.name == "map_dnat") | .map.elem[]? | "\(.[0]) \(.[1])"] | sort | join(",")'; }
routes() { ip -n "$DOM0" -j route show table local proto 120 | jq -r '[.[].dst] | sort | join(",")'; }
expect_eq "the mapping is in the kernel" "$PUB 10.0.0.11" "$(dnat)"

# Fill the disk. The mappings file is made to end on a page boundary
# first (a comment line), so that the next line needs a new page, as on a
# disk whose last block is full.
size=$(stat -c %s "$T/state/mappings")
printf '#%*s\n' $((4096 - size - 2)) '' | tr ' ' x >>"$T/state/mappings"
dd if=/dev/zero of="$T/state/fill" bs=4k 2>/dev/null || true
before=$(kernel_state)

refused() {
	local what=$1
	shift
	local rc=0 out
	out=$(xn "$@" 2>&1) || rc=$?
	expect_eq "$what on a full disk: refused" 1 "$rc"
	expect "$what: says why ($out)" grep -q "mappings: No space left on device; nothing changed" <<<"$out"
	expect_eq "$what: the kernel is unchanged" "$before" "$(kernel_state)"
}
refused "map del" map del "$PUB"
expect_eq "the mapping is still listed" "$PUB" "$(xn map list --json | jq -r '[.maps[].public] | join(",")')"
expect "and still carries traffic" ping_from "$LAN" "$PUB"
refused "map add" map add 100.64.9.2 10.0.0.12
refused "forward add" forward add 100.64.9.3:80/tcp 10.0.0.12:80
expect "status reports the full state directory" \
	grep -q "state directory $T/state: No space left on device" <(xn status)
expect_eq "status --json too" "No space left on device" "$(xn status --json | jq -r .state_dir.error)"
expect "the log says it" grep -q "state directory $T/state: No space left on device" "$T/daemon.log"

# What was refused never happened: after a restart the mapping is there.
stop_daemon
start_daemon "$T/nat.conf"
expect_eq "after a restart the mapping is still in force" "$PUB 10.0.0.11" "$(dnat)"
expect_eq "and its public address routed" "$PUB" "$(routes)"

# Room again: the same removal is acknowledged, and lasts.
rm "$T/state/fill"
expect "map del with room" xn map del "$PUB"
expect_eq "status: the state directory is writable" "null" "$(xn status --json | jq -r .state_dir.error)"
stop_daemon
start_daemon "$T/nat.conf"
expect_eq "after a restart the removed mapping stays removed" "" "$(dnat)"
expect_eq "no public address routed" "" "$(routes)"
