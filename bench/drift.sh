#!/bin/bash
# Heal times: how long xennetd takes to put back what someone changed
# (issue 14), from the kernel's event of the change to its event of the
# repair, both read by one monitor (bench/drift-heal.py). NAT world with
# one hotplugged vif and N port forwards in force (the maps are compared
# whole); each kind BENCH_RUNS times (5), median and worst.
#   bench/drift.sh [--tiny] [--build DIR]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$ROOT/build
SIZES=(1 10000)
while [ $# -gt 0 ]; do
	case $1 in
	--tiny) SIZES=(1 100); BENCH_RUNS=${BENCH_RUNS:-1} ;;
	--build) BUILD=$(cd "$2" && pwd); shift ;;
	*) echo "usage: $0 [--tiny] [--build DIR]" >&2; exit 2 ;;
	esac
	shift
done
export XENNETD=$BUILD/xennetd XENNET=$BUILD/xennet VIF_XENNET=$BUILD/vif-xennet
export NETCHECK=$BUILD/tests/netcheck XS_SHIM=$BUILD/tests/xenstore/xs-shim.so PROFILES=$ROOT/profiles
. "$ROOT/tests/ns/lib.sh"
. "$ROOT/tests/ns/xenstore.sh"
export XENNET_SOCKET=$T/ctl.sock
RUNS=${BENCH_RUNS:-5}
HEAL=$ROOT/bench/drift-heal.py
echo "machine: $(nproc) CPUs, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1), kernel $(uname -r)"

stats() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {printf "%s ms (worst %s)", v[int((NR + 1) / 2)], v[NR]}'; }
# from_log WHAT TAMPER: the daemon's own figure, from the event it read to
# the repair made (the kernel's nftables monitor does not print elements
# of concatenated-range sets, and the repair is often faster than a
# reader wakes up).
from_log() {
	local what=$1 tamper=$2 v=() n
	for _ in $(seq "$RUNS"); do
		n=$(wc -l <"$T/daemon.log")
		in_ns "$DOM0" sh -c "$tamper"
		sleep 0.3
		v+=("$(tail -n +$((n + 1)) "$T/daemon.log" | sed -n 's/.* \([0-9.]*\) ms after the event.*/\1/p' | head -1)")
		[ -n "${v[-1]}" ] || fail "$what: not healed"
	done
	printf '| %s | %s | %s |\n' "$what" "$N" "$(stats "${v[@]}")"
}
# measure WHAT MONITOR TAMPER START END...
measure() {
	local what=$1 v=()
	shift
	for _ in $(seq "$RUNS"); do
		v+=("$("$HEAL" "$DOM0" "$@")") || fail "$what: not healed"
		sleep 0.3
	done
	printf '| %s | %s | %s |\n' "$what" "$N" "$(stats "${v[@]}")"
}

make_lan_and_dom0
start_xenstored
make_guest 1 10.0.0.11/24 10.0.0.1
echo
echo "| drift | forwards in force | event to repaired |"
echo "|---|---:|---:|"
for N in "${SIZES[@]}"; do
	nat_profile "$T/nat.conf"
	for i in $(seq "$N"); do
		printf '[forward f%d]\npublic = 100.64.%d.%d:80/tcp\nguest = 10.0.0.11:80\n' \
			"$i" $((i / 250)) $((i % 250 + 1))
	done >>"$T/nat.conf"
	printf '[map web]\npublic = 192.168.50.100\nguest = 10.0.0.11\n' >>"$T/nat.conf"
	start_daemon "$T/nat.conf"
	libxl_add_vif 1 0 "mac=$(ip -n "$(guest 1)" -j link show dev eth0 | jq -r '.[0].address')" \
		ip=10.0.0.11 script="$VIF_XENNET"
	run_hotplug "$VIF_XENNET" online 1 0 || fail "vif online"
	sleep 1.5 # the first periodic check after our own commits
	from_log "as_ports element of a vif deleted (daemon's figure)" \
		"nft delete element bridge xennet as_ports '{ \"vif1.0\" }'"
	from_log "foreign as_ip4 element added (daemon's figure)" \
		"nft add element bridge xennet as_ip4 '{ \"vif1.0\" . 0.0.0.0/0 }'"
	from_log "map_dnat element deleted (daemon's figure)" \
		"nft delete element inet xennet map_dnat '{ 192.168.50.100 }'"
	from_log "ip_forward set to 0 (daemon's figure)" "echo 0 > /proc/sys/net/ipv4/ip_forward"
	from_log "bridge deleted: made again, its address, its vif a port again (daemon's figure)" \
		"ip link del xenbr0"
	measure "bridge deleted, as above (kernel events, read by one monitor)" "ip monitor link address" \
		"ip link del xenbr0" "^Deleted [0-9]+: xenbr0:" \
		"^[0-9]+: vif1\.0.* master xenbr0 state UP" "xenbr0 +inet 10\.0\.0\.1/24"
	stop_daemon
	libxl_remove_vif 1 0
done
