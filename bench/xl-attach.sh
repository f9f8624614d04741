#!/bin/bash
# `xl network-attach` latency with Debian's real xl (tests/ns/xl.sh: xl-shim
# below libxenctrl, netback-sim as netback and a running guest's
# netfront), the same guest attached and detached N times in a row with
# each script: /bin/true (the toolstack's own floor: it writes nothing,
# so the backend never connects, but libxl only looks at its exit
# status), Xen's vif-bridge, and vif-xennet under xennetd (bridged).
# Per attach: from the start of xl to its exit; p50, p99, and the
# attaches that failed out of N (each failure waits libxl's 10 s).
#   bench/xl-attach.sh [--tiny] [--build DIR]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$ROOT/build
N=${BENCH_XL_N:-200}
while [ $# -gt 0 ]; do
	case $1 in
	--tiny) N=${BENCH_XL_N:-20} ;;
	--build) BUILD=$(cd "$2" && pwd); shift ;;
	*) echo "usage: $0 [--tiny] [--build DIR]" >&2; exit 2 ;;
	esac
	shift
done
export XENNETD=$BUILD/xennetd XENNET=$BUILD/xennet VIF_XENNET=$BUILD/vif-xennet
export NETCHECK=$BUILD/tests/netcheck XS_SHIM=$BUILD/tests/xenstore/xs-shim.so PROFILES=$ROOT/profiles
export XL_SHIM=$BUILD/tests/xenstore/xl-shim.so NETBACK_SIM=$BUILD/tests/xenstore/netback-sim
. "$ROOT/tests/ns/lib.sh"
. "$ROOT/tests/ns/xenstore.sh"
. "$ROOT/tests/ns/xl.sh"
[ -x /etc/xen/scripts/vif-bridge ] || { echo "SKIP: /etc/xen/scripts/vif-bridge missing"; exit 77; }

echo "machine: $(nproc) CPUs, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1), kernel $(uname -r)"
make_lan_and_dom0
start_xenstored --domains ""
cat >"$T/bridged.conf" <<CONF
[xennet]
mode = bridged
[bridge xenbr0]
uplink = eth0
take_addresses = yes
CONF
start_daemon "$T/bridged.conf"
export XENNET_SOCKET=$T/ctl.sock
xl_start
xl_add_domain 1 bench

# percentile FILE P: the P-th percentile (nearest rank) of the µs in FILE.
percentile() {
	sort -n "$1" | awk -v p="$2" '{ v[NR] = $1 } END {
		r = int((p * NR + 99) / 100); if (r < 1) r = 1; print v[r] }'
}
ms() { awk -v us="$1" 'BEGIN { printf "%.1f ms", us / 1000 }'; }

SCRIPTS=(/bin/true vif-bridge vif-xennet)
declare -A P50 P99 FAILS
# one SCRIPT: one attach and detach; its time appended to $T/bench.SCRIPT,
# or FAILS[SCRIPT] counted.
one() {
	local script=$1
	if xl_attach 1 bridge=xenbr0 mac=00:16:3e:00:01:00 "script=$script"; then
		echo "$XL_US" >>"$T/bench.${script//\//_}"
	else
		FAILS[$script]=$((FAILS[$script] + 1))
		local be=/local/domain/0/backend/vif/1/0
		echo "  $script: an attach failed after ${XL_MS} ms (backend state" \
			"$(xs_read $be/state), hotplug-status $(xs_read $be/hotplug-status))" >&2
	fi
	xl_detach 1 0 || echo "  $script: a detach failed: $(grep -m1 error "$XL_ERR")" >&2
}

# The scripts take turns, so that the machine's ups and downs fall on all
# three alike.
for s in "${SCRIPTS[@]}"; do
	FAILS[$s]=0
	: >"$T/bench.${s//\//_}"
done
for ((i = 0; i < N; i++)); do
	for s in "${SCRIPTS[@]}"; do one "$s"; done
done
for s in "${SCRIPTS[@]}"; do
	f=$T/bench.${s//\//_}
	P50[$s]=$(percentile "$f" 50)
	P99[$s]=$(percentile "$f" 99)
	echo "  $s: p50 $(ms "${P50[$s]}"), p99 $(ms "${P99[$s]}"), ${FAILS[$s]} of $N failed"
done

echo
echo "xl network-attach, $N in a row (xl started through nsenter and env in every row):"
echo
echo "| script | p50 | p99 | p50 over /bin/true | failed |"
echo "|---|---:|---:|---:|---:|"
floor=${P50[/bin/true]}
for s in "${SCRIPTS[@]}"; do
	over=$((P50[$s] - floor))
	printf '| %s | %s | %s | %s | %d of %d |\n' "$s" "$(ms "${P50[$s]}")" "$(ms "${P99[$s]}")" \
		"$([ "$s" = /bin/true ] && echo || ms "$over")" "${FAILS[$s]}" "$N"
done
