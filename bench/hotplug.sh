#!/bin/bash
# vif hotplug latency: xennet (vif-xennet through xennetd) against Xen's own
# /etc/xen/scripts/vif-bridge, both run exactly as libxl runs them, against
# the same test xenstored, in the same namespaces, in this one run.
#   bench/hotplug.sh [--tiny] [--build DIR]
# Per vif: from the start of the script to its exit (it has written
# hotplug-status=connected by then), p50 and p99 over N vifs brought online
# one after the other; then all N at once, as libxl starts them for many
# domains in parallel: the wall time until the last one is connected
# (median of BENCH_ALL_RUNS, 3 by default; each run printed).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$ROOT/build
SIZES=(${BENCH_SIZES:-1 50 500})
ALL_RUNS=${BENCH_ALL_RUNS:-3} # all at once: the median of these
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

# prepare SCRIPT N: N fresh vifs (backend keys as libxl writes them, the
# devices as netback would have made them); sets FIRST, the first domid.
prepare() {
	local script=$1 n=$2
	FIRST=$next
	for d in $(seq "$FIRST" $((FIRST + n - 1))); do
		libxl_add_vif "$d" 0 bridge=xenbr0 script="$script" >/dev/null
	done
	for d in $(seq "$FIRST" $((FIRST + n - 1))); do
		echo "link add vif$d.0 type veth peer name g$d netns $GUESTS"
	done | ip -n "$DOM0" -batch -
	next=$((FIRST + n))
}

# bench/hotplug-driver runs the scripts as libxl does (fork, exec, the
# variables libxl sets), one after another or all at once, inside Dom0's
# namespace, so that no `ip netns exec` is timed.
drive() {
	local a=("$@")
	[ ${#a[@]} -lt 5 ] && a+=(online)
	ip netns exec "$DOM0" "$BUILD/bench/hotplug-driver" "${a[@]}" "$T/errors"
}

# destroy_domains FIRST N: the guests are gone, as libxl destroys them:
# their vif's nodes cleaned up (libxl__device_destroy), their domain's
# nodes removed, the hypervisor no longer has them, xenstored releases
# them. (Its requests also slow down with the number of nodes.)
destroy_domains() {
	local first=$1 n=$2 last=$(($1 + $2 - 1)) d c
	for ((c = first; c <= last; c += 50)); do
		for ((d = c; d < c + 50 && d <= last; d++)); do
			printf 'cleanup\t%s\n' "/local/domain/$d/device/vif/0" "/libxl/$d/device/vif/0" \
				"/local/domain/0/backend/vif/$d/0"
			printf 'rm\t%s\n' "/local/domain/$d" "/libxl/$d" \
				"/vm/$(printf '00000000-0000-0000-0000-%012x' "$d")"
		done | xs_txn || fail "destroy_domains: xenstore transaction failed"
	done
	awk -v a="$first" -v b="$last" '$1 < a || $1 > b' "$XS_DOMAINS_FILE" >"$XS_DOMAINS_FILE.new"
	mv "$XS_DOMAINS_FILE.new" "$XS_DOMAINS_FILE"
	kill -USR1 "$XS_PID"
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
	local first=$1 n=$2 c=0
	for d in $(seq "$first" $((first + n - 1))); do
		[ "$(xs_read "backend/vif/$d/0/hotplug-status")" = connected ] && c=$((c + 1))
	done
	echo "$c"
}

pct() { sort -n | awk -v p="$1" '{v[NR]=$1} END {i=int((NR-1)*p/100)+1; printf "%.2f", v[i]/1000}'; }

declare -A P50 P99 ALL XSFLOOR CPU
KEPT=
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
		# All at once: the same vifs, taken offline and reset first;
		# ALL_RUNS times, the median kept.
		runs=()
		for _ in $(seq "$ALL_RUNS"); do
			drive seq "$script" "$first" "$n" offline >/dev/null
			for d in $(seq "$first" $((first + n - 1))); do echo "backend/vif/$d/0/hotplug-status"; done |
				while read -r k; do printf '%s\0' "/local/domain/0/$k"; done | xargs -0 -n 64 sh -c 'for k; do xenstore-write "$k" ""; done' _
			c0=$(cpu_ms "$DPID") x0=$(cpu_ms "$XS_PID")
			drive all "$script" "$first" "$n" >"$T/all"
			CPU[$impl,$n]="xennetd $(($(cpu_ms "$DPID") - c0)) ms, xenstored $(($(cpu_ms "$XS_PID") - x0)) ms"
			grep -q FAILED "$T/all" && fail "$impl: a vif failed when all came at once: $(tail -3 "$T/errors")"
			[ "$(connected "$first" "$n")" = "$n" ] || fail "$impl: not all $n connected at once"
			runs+=("$(awk '{printf "%.1f", $1/1000}' "$T/all")")
		done
		echo "$impl, $n at once, each run (ms): ${runs[*]}; CPU in the last: ${CPU[$impl,$n]}"
		ALL[$impl,$n]=$(printf '%s\n' "${runs[@]}" | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}')
		[ "$impl" = xennet ] && XSFLOOR[$n]=$(in_ns "$DOM0" "$BUILD/bench/xs-floor" "$first" "$n" | awk '{printf "%.1f", $1/1000}')
		# Done with these vifs: offline, and the devices go (a bridge
		# takes at most 1,024 ports). xennet's last ones stay, for the
		# control round trip below.
		if [ "$impl" = xennet ] && [ "$n" = "${SIZES[-1]}" ]; then
			KEPT=$first
		else
			drive seq "$script" "$first" "$n" offline >/dev/null
			for d in $(seq "$first" $((first + n - 1))); do echo "link del vif$d.0"; done | ip -n "$DOM0" -batch -
			destroy_domains "$first" "$n"
		fi
	done
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
last=${SIZES[-1]}
echo
echo "floor: starting a program that does nothing (/bin/true) the same way: p50 $FLOOR ms; ${SIZES[-1]} at once: $SPAWN_ALL ms"
for n in "${SIZES[@]}"; do
	[ -n "${XSFLOOR[$n]:-}" ] && echo "floor: xenstored alone writing hotplug-status of $n vifs (one write each, as every script must): ${XSFLOOR[$n]} ms"
done
# The daemon's side alone: a request for a vif that is already connected.
if [ -n "$KEPT" ]; then
rtt=$(in_ns "$DOM0" "$BUILD/bench/ctl-rtt" "$XENNET_SOCKET" 200 hotplug online "$KEPT" 0)
echo "control round trip (hotplug online of a connected vif, no process start): p50 $(awk '{printf "%.3f", $1/1000}' <<<"$rtt") ms, p99 $(awk '{printf "%.3f", $2/1000}' <<<"$rtt") ms"
fi
[ ${#IMPLS[@]} -eq 2 ] || exit 0
# The p50 over the most samples: the largest size, one vif after another.
echo "summary: xennet vif online p50 ${P50[xennet,$last]} ms over $last vifs (target <= 1 ms), $(awk -v a="${P50[vif-bridge,$last]}" -v b="${P50[xennet,$last]}" 'BEGIN {printf "%.0f", a/b}')x faster than vif-bridge (target >= 20x); $last at once ${ALL[xennet,$last]} ms (target < 500 ms for 500; xenstored alone: ${XSFLOOR[$last]} ms)"
