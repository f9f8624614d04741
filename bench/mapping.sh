#!/bin/bash
# Installing public IP mappings: xennet against the classic recipe (one
# iptables DNAT rule per VM, loaded with iptables-restore) and against
# `nft -f` of an equivalent map, for N mappings (median of BENCH_RUNS, 5 by
# default); then one more mapping added and removed on top of N. All in
# this one run, on this machine.
#   bench/mapping.sh [--tiny] [--build DIR]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$ROOT/build
SIZES=(1000 10000)
while [ $# -gt 0 ]; do
	case $1 in
	--tiny) SIZES=(100 1000); BENCH_RUNS=${BENCH_RUNS:-1} ;;
	--build) BUILD=$(cd "$2" && pwd); shift ;;
	*) echo "usage: $0 [--tiny] [--build DIR]" >&2; exit 2 ;;
	esac
	shift
done
if ! command -v iptables-restore >/dev/null; then
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends iptables >/dev/null
fi
export XENNETD=$BUILD/xennetd XENNET=$BUILD/xennet VIF_XENNET=$BUILD/vif-xennet
export NETCHECK=$BUILD/tests/netcheck XS_SHIM=$BUILD/tests/xenstore/xs-shim.so PROFILES=$ROOT/profiles
. "$ROOT/tests/ns/lib.sh"
echo "machine: $(nproc) CPUs, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1), kernel $(uname -r)"
echo "iptables: $(iptables --version), nft: $(nft --version)"

pub() { echo "100.64.$(($1 / 250)).$(($1 % 250 + 1))"; }
gst() { echo "10.0.$(($1 / 250)).$(($1 % 250 + 2))"; }
ms() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", (b - a) / 1000}'; }
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
# Each install is measured RUNS times (a fresh table each time: a host
# that boots with its mappings) and the median reported.
RUNS=${BENCH_RUNS:-5}
now() { echo "${EPOCHREALTIME/./}"; }

make_lan_and_dom0
BASE=${P}base
new_ns "$BASE"

declare -A T_LOAD T_ADD
for n in "${SIZES[@]}"; do
	# xennet: a profile with N [map] sections applied to a running daemon;
	# the daemon logs the time of its nftables work (dump, diff, batch).
	{
		printf '[xennet]\nmode = nat\n[bridge xenbr0]\naddress = 10.0.0.1/16\n[nat]\nuplink = eth0\nbridge = xenbr0\n'
		for i in $(seq "$n"); do printf '[map vm%d]\npublic = %s\nguest = %s\n' "$i" "$(pub "$i")" "$(gst "$i")"; done
	} >"$T/maps-$n.conf"
	printf '[xennet]\nmode = nat\n[bridge xenbr0]\naddress = 10.0.0.1/16\n[nat]\nuplink = eth0\nbridge = xenbr0\n' >"$T/empty.conf"
	runs=()
	for _ in $(seq "$RUNS"); do
		[ -n "$DPID" ] && stop_daemon
		in_ns "$DOM0" nft delete table inet xennet 2>/dev/null || true
		rm -rf "$T/state"
		start_daemon "$T/empty.conf"
		xn apply "$T/maps-$n.conf" >/dev/null
		line=$(grep "public IP mappings: $n maps" "$T/daemon.log" | tail -1)
		t=$(sed -n 's/.*nftables \([0-9.]*\) ms.*/\1/p' <<<"$line")
		[ -n "$t" ] || fail "xennet did not report loading $n mappings"
		runs+=("$t")
	done
	T_LOAD[xennet,$n]=$(median "${runs[@]}")
	echo "xennet, $n mappings, each run (ms): ${runs[*]}"
	[ "$(xn map list --json | jq '.maps | length')" = "$n" ] || fail "xennet: not all $n mappings in force"
	# One more on top, through the control socket (no process start), and
	# through the CLI (with it).
	# Isolated requests (50 ms apart): after replying, the daemon drops
	# the conntrack entries of the address, a walk of the whole conntrack
	# table; back to back, each request would wait for the previous walk.
	rtt=$(CTL_RTT_GAP_US=50000 in_ns "$DOM0" "$BUILD/bench/ctl-rtt" "$T/ctl.sock" 40 map add 100.65.0.1 10.0.255.250 -- map del 100.65.0.1)
	T_ADD[xennet-socket,$n]=$(awk '{printf "%.3f", $1/1000}' <<<"$rtt")
	rtt=$(in_ns "$DOM0" "$BUILD/bench/ctl-rtt" "$T/ctl.sock" 40 map add 100.65.0.1 10.0.255.250 -- map del 100.65.0.1)
	T_ADD[xennet-b2b,$n]=$(awk '{printf "%.3f", $1/1000}' <<<"$rtt")
	sleep 0.1
	t0=$(now); xn map add 100.65.0.1 10.0.255.250 >/dev/null; t1=$(now)
	xn map del 100.65.0.1 >/dev/null
	T_ADD[xennet-cli,$n]=$(ms "$t0" "$t1")
	# What the disk costs: the same with the mappings file on a tmpfs
	# (fdatasync returns at once there). Not how xennet is installed.
	shm=$(mktemp -d /dev/shm/xennet-bench.XXXXXX)
	mv "$T/state/mappings" "$shm/mappings"
	ln -s "$shm/mappings" "$T/state/mappings"
	rtt=$(CTL_RTT_GAP_US=50000 in_ns "$DOM0" "$BUILD/bench/ctl-rtt" "$T/ctl.sock" 40 map add 100.65.0.1 10.0.255.250 -- map del 100.65.0.1)
	T_ADD[xennet-tmpfs,$n]=$(awk '{printf "%.3f", $1/1000}' <<<"$rtt")
	if [ -L "$T/state/mappings" ]; then # (not rewritten whole meanwhile)
		rm "$T/state/mappings"
		mv "$shm/mappings" "$T/state/mappings"
	fi
	rm -rf "$shm"

	# The classic recipe: one DNAT rule per VM.
	in_ns "$BASE" iptables -t nat -F PREROUTING 2>/dev/null || true
	{
		echo "*nat"
		echo ":PREROUTING ACCEPT [0:0]"
		for i in $(seq "$n"); do echo "-A PREROUTING -d $(pub "$i")/32 -j DNAT --to-destination $(gst "$i")"; done
		echo "COMMIT"
	} >"$T/ipt-$n"
	runs=()
	for _ in $(seq "$RUNS"); do
		in_ns "$BASE" iptables -t nat -F PREROUTING
		t0=$(now); in_ns "$BASE" iptables-restore <"$T/ipt-$n"; t1=$(now)
		runs+=("$(ms "$t0" "$t1")")
	done
	T_LOAD[iptables,$n]=$(median "${runs[@]}")
	t0=$(now); in_ns "$BASE" iptables -t nat -A PREROUTING -d 100.65.0.1/32 -j DNAT --to-destination 10.0.255.250; t1=$(now)
	T_ADD[iptables,$n]=$(ms "$t0" "$t1")
	in_ns "$BASE" iptables -t nat -D PREROUTING -d 100.65.0.1/32 -j DNAT --to-destination 10.0.255.250
	in_ns "$BASE" iptables -t nat -F PREROUTING

	# nft -f of an equivalent map (what xennet does, by hand).
	in_ns "$BASE" nft delete table ip bench 2>/dev/null || true
	{
		echo "table ip bench { map m { type ipv4_addr : ipv4_addr; elements = {"
		for i in $(seq "$n"); do echo "$(pub "$i") : $(gst "$i"),"; done
		echo "} }"
		echo "chain pre { type nat hook prerouting priority dstnat; dnat to ip daddr map @m; }"
		echo "}"
	} >"$T/nft-$n"
	runs=()
	for _ in $(seq "$RUNS"); do
		in_ns "$BASE" nft delete table ip bench 2>/dev/null || true
		t0=$(now); in_ns "$BASE" nft -f "$T/nft-$n"; t1=$(now)
		runs+=("$(ms "$t0" "$t1")")
	done
	T_LOAD[nft,$n]=$(median "${runs[@]}")
	t0=$(now); in_ns "$BASE" nft add element ip bench m "{ 100.65.0.1 : 10.0.255.250 }"; t1=$(now)
	T_ADD[nft,$n]=$(ms "$t0" "$t1")
	in_ns "$BASE" nft delete table ip bench
done

printf '\n%-28s %8s %12s %14s\n' "install N mappings" N "ms" "xennet is"
for n in "${SIZES[@]}"; do
	for impl in xennet iptables nft; do
		printf '%-28s %8s %12s %13sx\n' "$impl" "$n" "${T_LOAD[$impl,$n]}" \
			"$(awk -v a="${T_LOAD[$impl,$n]}" -v b="${T_LOAD[xennet,$n]}" 'BEGIN {printf "%.1f", a/b}')"
	done
done
printf '\n%-28s %8s %12s\n' "one more mapping on top" N "ms"
for n in "${SIZES[@]}"; do
	printf '%-28s %8s %12s\n' "xennet (control socket)" "$n" "${T_ADD[xennet-socket,$n]}"
	printf '%-28s %8s %12s\n' "xennet, file on tmpfs" "$n" "${T_ADD[xennet-tmpfs,$n]}"
	printf '%-28s %8s %12s\n' "xennet, back to back" "$n" "${T_ADD[xennet-b2b,$n]}"
	printf '%-28s %8s %12s\n' "xennet map add (CLI)" "$n" "${T_ADD[xennet-cli,$n]}"
	printf '%-28s %8s %12s\n' "iptables -A" "$n" "${T_ADD[iptables,$n]}"
	printf '%-28s %8s %12s\n' "nft add element" "$n" "${T_ADD[nft,$n]}"
done
last=${SIZES[-1]}
echo
echo "conntrack: $(cat /proc/sys/net/netfilter/nf_conntrack_buckets 2>/dev/null || echo ?) hash buckets walked per purge"
echo "summary: $last mappings installed by xennetd in ${T_LOAD[xennet,$last]} ms (target <= 20 ms for 10000; one batch), one more in ${T_ADD[xennet-socket,$last]} ms over the socket (target <= 1 ms), iptables-restore ${T_LOAD[iptables,$last]} ms"
