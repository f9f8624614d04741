#!/bin/bash
# Replies are written without blocking too: a client that asks for a large
# reply (5,000 mappings listed) and never reads it delays nobody; its
# reply is sent as it reads, and it is dropped after 10 s. A client that
# does read gets all of it.
. "$(dirname "$0")/lib.sh"
: "${CTLRAW:?}"
N=5000

make_lan_and_dom0
cat >"$T/nat.conf" <<CONF
[xennet]
mode = nat
[bridge xenbr0]
address = 10.0.0.1/16
[nat]
uplink = eth0
bridge = xenbr0
CONF
mkdir -p "$T/state"
{
	echo "# written by the test"
	for i in $(seq "$N"); do echo "map 100.64.$((i / 250)).$((i % 250 + 1)) 10.0.$((i / 250)).$((i % 250 + 2)) vm$i"; done
} >"$T/state/mappings"
start_daemon "$T/nat.conf"
ms() { echo $(($(date +%s%N) / 1000000)); }

expect_eq "a client that reads gets the whole list" "$N" "$(xn map list --json | jq '.maps | length')"
in_ns "$DOM0" "$CTLRAW" noread "$T/ctl.sock" 12 map list json >"$T/noread" &
BG_PIDS+=($!)
for _ in $(seq 50); do grep -q sent "$T/noread" && break; sleep 0.1; done
sleep 0.2
t0=$(ms)
expect "status answers while a client does not read its reply" xn status
t1=$(ms)
# Blocked, the daemon would wait its 2 s reply deadline on top of the
# status itself (slower under valgrind: XENNETD_WRAP).
limit=1000
[ -z "${XENNETD_WRAP:-}" ] || limit=3000
expect "and is not delayed by it ($((t1 - t0)) ms, limit $limit)" [ $((t1 - t0)) -lt "$limit" ]
expect_eq "another list is whole" "$N" "$(xn map list --json | jq '.maps | length')"
for _ in $(seq 120); do
	grep -q "did not read its reply" "$T/daemon.log" && break
	sleep 0.1
done
expect "the client that did not read is dropped after 10 s" \
	grep -q "dropped 1 client that did not read its reply in time" "$T/daemon.log"
