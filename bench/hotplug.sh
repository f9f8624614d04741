#!/bin/bash
# vif hotplug latency: xennet (vif-xennet through xennetd) against Xen's own
# /etc/xen/scripts/vif-bridge, both run exactly as libxl runs them, against
# the same test xenstored, in the same namespaces, in this one run.
#   bench/hotplug.sh [--tiny] [--build DIR]
# Against the C xenstored, or oxenstored with XENSTORED_KIND=ocaml (or
# XENSTORED_BIN naming it; see tests/ns/xenstore.sh).
# Per vif: from the start of the script to its exit (it has written
# hotplug-status=connected by then), p50 and p99 over N vifs brought online
# one after the other; then all N at once, as libxl starts them for many
# domains in parallel: the wall time until the last one is connected
# (median of BENCH_ALL_RUNS, 3 by default; each run printed). N vifs are
# on N domains (one each); the largest N also on N/4 domains (four each,
# BENCH_PER_DOMAIN), all at once: xenstored's cost grows with the domains.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$ROOT/build
SIZES=(${BENCH_SIZES:-1 50 500})
ALL_RUNS=${BENCH_ALL_RUNS:-3} # all at once: the median of these
PER=${BENCH_PER_DOMAIN:-4}
IMPLS=(${BENCH_IMPLS:-vif-bridge xennet})
while [ $# -gt 0 ]; do
	case $1 in
	--tiny) SIZES=(1 5 20); ALL_RUNS=${BENCH_ALL_RUNS:-1} ;;
	--build) BUILD=$(cd "$2" && pwd); shift ;;
	*) echo "usage: $0 [--tiny] [--build DIR]" >&2; exit 2 ;;
	esac
	shift
done
export XENNETD=$BUILD/xennetd XENNET=$BUILD/xennet VIF_XENNET=$BUILD/vif-xennet
export NETCHECK=$BUILD/tests/netcheck XS_SHIM=$BUILD/tests/xenstore/xs-shim.so PROFILES=$ROOT/profiles
. "$ROOT/tests/ns/lib.sh"
. "$ROOT/tests/ns/xenstore.sh"
XEN_VIF_BRIDGE=/etc/xen/scripts/vif-bridge
[ -x "$XEN_VIF_BRIDGE" ] || { echo "SKIP: $XEN_VIF_BRIDGE missing"; exit 77; }
mkdir -p /var/log/xen

echo "xenstored: $XENSTORED_KIND ($XENSTORED_BIN)"
echo "machine: $(nproc) CPUs, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1), kernel $(uname -r), $(free -h | awk '/Mem:/ {print $2}') RAM"
make_lan_and_dom0
# The hypervisor knows only the domains made here, and forgets those of a
# finished run (destroy_domains): each run faces xenstored with its own N
# guests, as on a host where the earlier ones were shut down. xenstored
# 4.17 serves every request more slowly the more domains and nodes it has
# (a write takes 0.09 ms with 500 bare domains, 0.4 ms with 1,000, 0.29 ms
# with 500 domains of 40 nodes each).
start_xenstored --domains ""
cat >"$T/bridged.conf" <<CONF
[xennet]
mode = bridged
antispoof = ${BENCH_ANTISPOOF:-yes}
[bridge xenbr0]
mtu = 1500
CONF
start_daemon "$T/bridged.conf"
export XENNET_SOCKET=$T/ctl.sock
GUESTS=${P}guests
new_ns "$GUESTS"
next=1

# vifs FIRST N [PER]: "domid devid" of the N vifs of the domains from
# FIRST on, PER each (1 by default), as the driver numbers them.
vifs() {
	local first=$1 n=$2 per=${3:-1} i
	for ((i = 0; i < n; i++)); do echo "$((first + i / per)) $((i % per))"; done
}

# prepare SCRIPT N [PER]: N fresh vifs, PER per domain (backend keys as
# libxl writes them, the devices as netback would have made them); sets
# FIRST, the first domid.
prepare() {
	local script=$1 n=$2 per=${3:-1} d v
	FIRST=$next
	vifs "$FIRST" "$n" "$per" | while read -r d v; do
		libxl_add_vif "$d" "$v" bridge=xenbr0 script="$script" >/dev/null
	done
	vifs "$FIRST" "$n" "$per" | while read -r d v; do
		echo "link add vif$d.$v type veth peer name g$d.$v netns $GUESTS"
	done | ip -n "$DOM0" -batch -
	next=$((FIRST + (n + per - 1) / per))
}

# drive seq|all SCRIPT FIRST N [ACTION [PER]]: bench/hotplug-driver runs
# the scripts as libxl does (fork, exec, the variables libxl sets), one
# after another or all at once, inside Dom0's namespace, so that no `ip
# netns exec` is timed.
drive() {
	ip netns exec "$DOM0" "$BUILD/bench/hotplug-driver" "$1" "$2" "$3" "$4" "${5:-online}" \
		"$T/errors" "${6:-1}"
}

# destroy_domains FIRST N [PER]: the guests are gone, as libxl destroys
# them: their vifs' nodes cleaned up (libxl__device_destroy), their
# domain's nodes removed, the hypervisor no longer has them, xenstored
# releases them. (Its requests also slow down with the number of nodes.)
destroy_domains() {
	local first=$1 n=$2 per=${3:-1} last=$(($1 + $2 - 1)) d c v
	local chunk=$(((50 + per - 1) / per)) # xenstored limits a transaction's nodes
	for ((c = first; c <= last; c += chunk)); do
		for ((d = c; d < c + chunk && d <= last; d++)); do
			for ((v = 0; v < per; v++)); do
				printf 'cleanup\t%s\n' "/local/domain/$d/device/vif/$v" \
					"/libxl/$d/device/vif/$v" "/local/domain/0/backend/vif/$d/$v"
			done
			printf 'rm\t%s\n' "/local/domain/$d" "/libxl/$d" \
				"/vm/$(printf '00000000-0000-0000-0000-%012x' "$d")"
		done | xs_txn || fail "destroy_domains: xenstore transaction failed"
	done
	awk -v a="$first" -v b="$last" '$1 < a || $1 > b' "$XS_DOMAINS_FILE" >"$XS_DOMAINS_FILE.new"
	mv "$XS_DOMAINS_FILE.new" "$XS_DOMAINS_FILE"
	xs_domains_recheck
	local rc
	for _ in $(seq 200); do
		rc=0
		"$XS_TOOLS/xs-introduce" -q "$last" || rc=$?
		[ "$rc" = 1 ] && return 0 # released
		[ "$rc" = 0 ] || fail "destroy_domains: cannot ask xenstored (status $rc)"
		sleep 0.05
	done
	fail "xenstored did not release domains $first..$last"
}

# cpu_ms PID: the CPU time (user and system) PID has used.
cpu_ms() {
	awk -v hz="$(getconf CLK_TCK)" '{print int(($14 + $15) * 1000 / hz)}' "/proc/$1/stat"
}

connected() {
	local c=0 d v
	while read -r d v; do
		[ "$(xs_read "backend/vif/$d/$v/hotplug-status")" = connected ] && c=$((c + 1))
	done < <(vifs "$@")
	echo "$c"
}

# all_at_once IMPL SCRIPT FIRST N [PER]: the vifs taken offline and reset,
# then all brought online at once, ALL_RUNS times; prints each run, and
# sets ALL_MS (the median) and CPU_USED (of the last run).
all_at_once() {
	local impl=$1 script=$2 first=$3 n=$4 per=${5:-1} runs=() c0 x0
	for _ in $(seq "$ALL_RUNS"); do
		drive seq "$script" "$first" "$n" offline "$per" >/dev/null
		vifs "$first" "$n" "$per" | while read -r d v; do
			printf '%s\0' "/local/domain/0/backend/vif/$d/$v/hotplug-status"
		done | xargs -0 -n 64 sh -c 'for k; do xenstore-write "$k" ""; done' _
		c0=$(cpu_ms "$DPID") x0=$(cpu_ms "$XS_PID")
		drive all "$script" "$first" "$n" online "$per" >"$T/all"
		CPU_USED="xennetd $(($(cpu_ms "$DPID") - c0)) ms, xenstored $(($(cpu_ms "$XS_PID") - x0)) ms"
		grep -q FAILED "$T/all" && fail "$impl: a vif failed when all came at once: $(tail -3 "$T/errors")"
		[ "$(connected "$first" "$n" "$per")" = "$n" ] || fail "$impl: not all $n connected at once"
		runs+=("$(awk '{printf "%.1f", $1/1000}' "$T/all")")
	done
	echo "$impl, $n at once on $(((n + per - 1) / per)) domains, each run (ms): ${runs[*]}; CPU in the last: $CPU_USED"
	ALL_MS=$(printf '%s\n' "${runs[@]}" | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}')
}

# forget SCRIPT FIRST N [PER]: offline, the devices go (a bridge takes at
# most 1,024 ports), the domains are destroyed.
forget() {
	local script=$1 first=$2 n=$3 per=${4:-1}
	drive seq "$script" "$first" "$n" offline "$per" >/dev/null
	vifs "$first" "$n" "$per" | while read -r d v; do echo "link del vif$d.$v"; done |
		ip -n "$DOM0" -batch -
	destroy_domains "$first" $(((n + per - 1) / per)) "$per"
}

pct() { sort -n | awk -v p="$1" '{v[NR]=$1} END {i=int((NR-1)*p/100)+1; printf "%.2f", v[i]/1000}'; }

declare -A P50 P99 ALL XSFLOOR
# The floor: starting any program the same way (fork, exec, exit); and
# all at once, as many as the largest size.
FLOOR=$(drive seq /bin/true 1 50 | pct 50)
SPAWN_ALL=$(drive all /bin/true 1 "${SIZES[-1]}" | awk '{printf "%.1f", $1/1000}')
for n in "${SIZES[@]}"; do
	for impl in "${IMPLS[@]}"; do
		script=$XEN_VIF_BRIDGE
		[ "$impl" = xennet ] && script=$VIF_XENNET
		prepare "$script" "$n"
		first=$FIRST
		drive seq "$script" "$first" "$n" >"$T/seq"
		grep -q FAILED "$T/seq" && fail "$impl: a vif failed: $(grep FAILED "$T/seq" | head -3): $(tail -3 "$T/errors")"
		[ "$(connected "$first" "$n")" = "$n" ] || fail "$impl: not all $n connected"
		P50[$impl,$n]=$(pct 50 <"$T/seq")
		P99[$impl,$n]=$(pct 99 <"$T/seq")
		# All at once: the same vifs, taken offline and reset first.
		all_at_once "$impl" "$script" "$first" "$n"
		ALL[$impl,$n]=$ALL_MS
		[ "$impl" = xennet ] && XSFLOOR[$n]=$(in_ns "$DOM0" "$BUILD/bench/xs-floor" "$first" "$n" | awk '{printf "%.1f", $1/1000}')
		# The daemon's side alone: a request for a vif that is already
		# connected, over the control socket, no process started.
		if [ "$impl" = xennet ] && [ "$n" = "${SIZES[-1]}" ]; then
			RTT=$(in_ns "$DOM0" "$BUILD/bench/ctl-rtt" "$XENNET_SOCKET" 200 hotplug online "$first" 0)
		fi
		forget "$script" "$first" "$n"
	done
done

# The largest N again, all at once, on a quarter of the domains.
last=${SIZES[-1]}
declare -A ALLPD
for impl in "${IMPLS[@]}"; do
	script=$XEN_VIF_BRIDGE
	[ "$impl" = xennet ] && script=$VIF_XENNET
	prepare "$script" "$last" "$PER"
	all_at_once "$impl" "$script" "$FIRST" "$last" "$PER"
	ALLPD[$impl]=$ALL_MS
	[ "$impl" = xennet ] && XSFLOOR_PD=$(in_ns "$DOM0" "$BUILD/bench/xs-floor" "$FIRST" "$last" "$PER" | awk '{printf "%.1f", $1/1000}')
	forget "$script" "$FIRST" "$last" "$PER"
done

printf '\n%-11s %6s %10s %10s %16s\n' impl vifs "p50 ms" "p99 ms" "all at once ms"
for n in "${SIZES[@]}"; do
	for impl in "${IMPLS[@]}"; do
		printf '%-11s %6s %10s %10s %16s\n' "$impl" "$n" "${P50[$impl,$n]}" "${P99[$impl,$n]}" "${ALL[$impl,$n]}"
	done
	[ ${#IMPLS[@]} -eq 2 ] || continue
	printf '%-11s %6s %9sx %9sx %15sx\n' "ratio" "$n" \
		"$(awk -v a="${P50[vif-bridge,$n]}" -v b="${P50[xennet,$n]}" 'BEGIN {printf "%.1f", a/b}')" \
		"$(awk -v a="${P99[vif-bridge,$n]}" -v b="${P99[xennet,$n]}" 'BEGIN {printf "%.1f", a/b}')" \
		"$(awk -v a="${ALL[vif-bridge,$n]}" -v b="${ALL[xennet,$n]}" 'BEGIN {printf "%.1f", a/b}')"
done
echo
pd=$(((last + PER - 1) / PER))
for impl in "${IMPLS[@]}"; do
	echo "all at once, $last vifs on $pd domains ($PER each): $impl ${ALLPD[$impl]} ms"
done
[ ${#IMPLS[@]} -eq 2 ] &&
	echo "all at once, $last vifs on $pd domains: ratio $(awk -v a="${ALLPD[vif-bridge]}" -v b="${ALLPD[xennet]}" 'BEGIN {printf "%.1f", a/b}')x"
echo
echo "floor: starting a program that does nothing (/bin/true) the same way: p50 $FLOOR ms; ${SIZES[-1]} at once: $SPAWN_ALL ms"
for n in "${SIZES[@]}"; do
	[ -n "${XSFLOOR[$n]:-}" ] && echo "floor: xenstored alone writing hotplug-status of $n vifs (one write each, as every script must): ${XSFLOOR[$n]} ms"
done
[ -n "${XSFLOOR_PD:-}" ] && echo "floor: xenstored alone writing hotplug-status of $last vifs on $pd domains: $XSFLOOR_PD ms"
if [ -n "${RTT:-}" ]; then
	echo "control round trip (hotplug online of a connected vif, no process start): p50 $(awk '{printf "%.3f", $1/1000}' <<<"$RTT") ms, p99 $(awk '{printf "%.3f", $2/1000}' <<<"$RTT") ms"
fi
[ ${#IMPLS[@]} -eq 2 ] || exit 0
# The p50 over the most samples: the largest size, one vif after another.
echo "summary: xennet vif online p50 ${P50[xennet,$last]} ms over $last vifs (target <= 1 ms), $(awk -v a="${P50[vif-bridge,$last]}" -v b="${P50[xennet,$last]}" 'BEGIN {printf "%.0f", a/b}')x faster than vif-bridge (target >= 20x); $last at once ${ALL[xennet,$last]} ms on $last domains (xenstored alone: ${XSFLOOR[$last]} ms), ${ALLPD[xennet]} ms on $pd domains (xenstored alone: $XSFLOOR_PD ms) (target < 500 ms for 500)"
