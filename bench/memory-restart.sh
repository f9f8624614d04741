#!/bin/bash
# Memory and restart benchmark of xennetd, in network namespaces made here.
#
#   bench/memory-restart.sh [--tiny] [--build DIR]
#
# (a) xennetd's memory (VmRSS, VmHWM from /proc/PID/status) idle (NAT
#     profile, xenstore up, no vif, no mapping), then with V vifs
#     hot-plugged through xenstore and M public IP mappings (1,000 and
#     10,000; tiny: 50 and 1,000). The vifs are replayed as libxl writes
#     them (script=vif-xennet) and made by "netback" as veth pairs in one
#     `ip -batch`; their vif-xennet scripts run as libxl runs them.
# (b) Restart under that load, while two pings run every 10 ms (a mapped
#     guest -> the LAN, the LAN -> that guest's public address): SIGTERM,
#     start again (BENCH_RESTARTS times, 5; tiny: 1; the median is
#     reported), and time from the start to the control socket answering
#     (the daemon converges, syncs the mappings and adopts the vifs before
#     it answers anything), and count the pings lost.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$REPO/build TINY=0
while [ $# -gt 0 ]; do
	case $1 in
	--tiny) TINY=1 ;;
	--build) BUILD=$(cd "${2:?--build DIR}" && pwd); shift ;;
	*) echo "usage: $0 [--tiny] [--build DIR]" >&2; exit 2 ;;
	esac
	shift
done
export XENNETD=$BUILD/xennetd XENNET=$BUILD/xennet VIF_XENNET=$BUILD/vif-xennet \
	NETCHECK=$BUILD/tests/netcheck XS_SHIM=$BUILD/tests/xenstore/xs-shim.so PROFILES=$REPO/profiles
for f in "$XENNETD" "$XENNET" "$VIF_XENNET" "$NETCHECK" "$XS_SHIM"; do
	[ -e "$f" ] || { echo "$f is missing: meson setup $BUILD && ninja -C $BUILD" >&2; exit 1; }
done
if ! command -v xenstore-read >/dev/null || ! command -v jq >/dev/null; then sh "$REPO/scripts/install-deps"; fi
. "$REPO/tests/ns/lib.sh"      # root or exit 77; $T; namespaces removed on exit
. "$REPO/tests/ns/xenstore.sh" # xenstored of xen-utils-4.17, libxl's writes
export XENNET_SOCKET=$T/ctl.sock

if [ $TINY = 1 ]; then V=50 M=1000; else V=${BENCH_VIFS:-1000} M=${BENCH_MAPPINGS:-10000}; fi
RSS_TARGET_KIB=4096 RECONCILE_TARGET_MS=100

echo "machine: $(nproc) CPUs, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)," \
	"kernel $(uname -r), $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo) RAM," \
	"load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "sizes: $V vifs, $M mappings"
START=$SECONDS

# Mapping i: public 100.64.x.y -> guest 10.0.x.z, which is vif i's address.
pub() { echo "100.64.$(($1 / 250)).$(($1 % 250 + 1))"; }
gst() { echo "10.0.$(($1 / 250)).$(($1 % 250 + 2))"; }

make_lan_and_dom0
ip -n "$LAN" route add 100.64.0.0/16 via "$DOM0_IP" # the provider routes the range
# shellcheck disable=SC2119 # no xenstored arguments
start_xenstored
printf '[xennet]\nmode = nat\n[bridge xenbr0]\naddress = 10.0.0.1/16\n[nat]\nuplink = eth0\nbridge = xenbr0\n' >"$T/nat.conf"

# mem FIELD: from xennetd's /proc status, in KiB.
# (start_daemon's DPID is xennetd itself: `ip netns exec` execs it.)
mem() { awk -v f="$1:" '$1 == f {print $2}' "/proc/$DPID/status"; }
ROWS=() # "measure|value|target|met"
row() { ROWS+=("$1|$2|$3|$4"); }
kib_row() { # NAME KIB [TARGET_KIB]
	local v
	v="$2 KiB ($(awk -v k="$2" 'BEGIN {printf "%.2f MiB", k / 1024}'))"
	if [ -n "${3:-}" ]; then row "$1" "$v" "<= $(($3 / 1024)) MiB" "$([ "$2" -le "$3" ] && echo yes || echo no)"
	else row "$1" "$v" "-" "-"; fi
}

# (a) Idle: no mapping, no vif.
mkdir -p "$T/state" && : >"$T/state/mappings"
start_daemon "$T/nat.conf"
sleep 0.5
kib_row "idle VmRSS" "$(mem VmRSS)"
kib_row "idle VmHWM" "$(mem VmHWM)"
stop_daemon

# Loaded: M mappings in the state (as `xennet map add` leaves them), then V vifs.
for ((i = 1; i <= M; i++)); do echo "map $(pub $i) $(gst $i) vm$i"; done >"$T/state/mappings"
t0=$EPOCHREALTIME
start_daemon "$T/nat.conf"
row "cold start with $M mappings (to socket)" "$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.0f ms", (b - a) * 1000}')" "-" "-"
for ((i = 1; i <= V; i++)); do
	libxl_add_vif "$i" 0 bridge=xenbr0 ip="$(gst "$i")" script="$VIF_XENNET"
done
# netback makes the devices: vif1.0 goes to a real guest (its backend MAC
# and address, so that anti-spoofing lets it through), the rest to one
# namespace where they stay down.
G=$(guest 1) GUESTS=${P}guests
new_ns "$G"
new_ns "$GUESTS"
t0=$EPOCHREALTIME
{
	echo "link add vif1.0 type veth peer name eth0 netns $G"
	for ((i = 2; i <= V; i++)); do echo "link add vif$i.0 type veth peer name g$i netns $GUESTS"; done
} | ip -n "$DOM0" -batch -
ip -n "$G" link set eth0 address "$(xs_read backend/vif/1/0/mac)" up
ip -n "$G" addr add "$(gst 1)/16" dev eth0
ip -n "$G" route add default via 10.0.0.1
# Their scripts, as libxl runs them (xennetd writes hotplug-status only
# in answer to a script), all at once.
ip netns exec "$DOM0" "$BUILD/bench/hotplug-driver" all "$VIF_XENNET" 1 "$V" online "$T/errors" >/dev/null
connected() { xenstore-ls /local/domain/0/backend/vif | grep -c 'hotplug-status = "connected"' || :; }
[ "$(connected)" = "$V" ] || fail "only $(connected) of $V vifs connected: $(head -n 3 "$T/errors")"
row "hotplug: $V devices made to all connected" "$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.1f s", b - a}')" "-" "-"
sleep 0.5
kib_row "loaded VmRSS" "$(mem VmRSS)" $RSS_TARGET_KIB
kib_row "loaded VmHWM (peak)" "$(mem VmHWM)"
kib_row "  of which RssAnon (heap, stacks)" "$(mem RssAnon)"
kib_row "  of which RssFile (binary, libraries)" "$(mem RssFile)"
ping_from "$LAN" "$(pub 1)" || fail "the LAN does not reach $(pub 1)"
ping_from "$G" "$LAN_IP" || fail "the guest does not reach the LAN"

# (b) Restart under the pings (1 s before, then until COUNT are sent). A status
# call alone first, for the record.
t0=$EPOCHREALTIME
"$XENNET" --socket "$T/ctl.sock" status >/dev/null || fail "xennet status failed"
row "\`xennet status\` alone (loaded, steady)" "$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.0f ms", (b - a) * 1000}')" "-" "-"

# Several restarts under the same pings: the median is reported (a shared
# machine varies from run to run), and every packet lost in any of them.
RESTARTS=${BENCH_RESTARTS:-$((TINY ? 1 : 5))}
COUNT=$(((TINY ? 400 : 1000) + RESTARTS * 150)) # every 10 ms
PSTART=$EPOCHREALTIME
ip netns exec "$G" ping -q -i 0.01 -c $COUNT -w $((COUNT / 100 + 4)) "$LAN_IP" >"$T/ping.out" 2>&1 &
P1=$!
ip netns exec "$LAN" ping -q -i 0.01 -c $COUNT -w $((COUNT / 100 + 4)) "$(pub 1)" >"$T/ping.in" 2>&1 &
P2=$!
BG_PIDS+=("$P1" "$P2")
sleep 1
RMS_ALL=() STOP_ALL=()
for ((k = 0; k < RESTARTS; k++)); do
	t0=$EPOCHREALTIME
	stop_daemon
	t1=$EPOCHREALTIME
	# BENCH_RESTART_WRAP: profile the restart (e.g. "strace -c -f -o FILE"); its memory rows are then the wrapper's.
	# shellcheck disable=SC2086
	ip netns exec "$DOM0" ${BENCH_RESTART_WRAP:-} "$XENNETD" --foreground --profile "$T/nat.conf" --socket "$T/ctl.sock" \
		--state-dir "$T/state" >>"$T/daemon.log" 2>&1 &
	DPID=$!
	until "$BUILD/bench/ctl-rtt" "$T/ctl.sock" 1 ping >/dev/null 2>&1; do
		daemon_alive || fail "xennetd exited at restart"
	done
	t2=$EPOCHREALTIME
	RMS_ALL+=("$(awk -v a="$t1" -v b="$t2" 'BEGIN {printf "%.0f", (b - a) * 1000}')")
	STOP_ALL+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.0f", (b - a) * 1000}')")
	sleep 0.5 # settled (the vifs saved when idle), as between real restarts
done
median() { printf '%s\n' "$@" | sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
RMS=$(median "${RMS_ALL[@]}")
row "stop (SIGTERM to exit), median of $RESTARTS" "$(median "${STOP_ALL[@]}") ms" "-" "-"
row "restart: start to answering, median of $RESTARTS" "$RMS ms" "<= $RECONCILE_TARGET_MS ms" \
	"$([ "$RMS" -le $RECONCILE_TARGET_MS ] && echo yes || echo no)"
row "  each restart (ms)" "$(IFS=' '; echo "${RMS_ALL[*]}")" "-" "-"
awk -v a="$PSTART" -v b="$EPOCHREALTIME" -v c=$COUNT 'BEGIN {exit !(b - a < c / 100 - 0.5)}' ||
	echo "note: the pings ended before the restart did; raise COUNT" >&2
wait "$P1" "$P2" || :
lost() { awk '/packets transmitted/ {print $1 - $4}' "$1"; }
for d in "out guest -> LAN" "in LAN -> public address"; do
	l=$(lost "$T/ping.${d%% *}")
	[ -n "$l" ] || fail "ping ${d#* } did not run: $(cat "$T/ping.${d%% *}")"
	row "pings lost, ${d#* } (of $COUNT, $RESTARTS restarts)" "$l" "0" "$([ "$l" = 0 ] && echo yes || echo no)"
done
[ "$(connected)" = "$V" ] || fail "after the restart only $(connected) of $V vifs are connected"
[ "$(xn map list --json | jq '.maps | length')" = "$M" ] || fail "after the restart the mappings are not all there"
sleep 0.5
kib_row "after restart VmRSS" "$(mem VmRSS)" $RSS_TARGET_KIB
kib_row "after restart VmHWM (peak)" "$(mem VmHWM)"

# The table, and a one-line summary.
echo
printf '%-56s %-21s %-10s %s\n' measure value target met
missed=()
for r in "${ROWS[@]}"; do
	IFS='|' read -r name value target met <<<"$r"
	printf '%-56s %-21s %-10s %s\n' "$name" "$value" "$target" "$met"
	[ "$met" != no ] || missed+=("$name")
done
echo
if [ ${#missed[@]} = 0 ]; then
	echo "summary: all targets met with $V vifs and $M mappings ($((SECONDS - START)) s)"
else
	echo "summary: $((${#missed[@]})) target(s) missed with $V vifs and $M mappings: $(IFS=';'; echo "${missed[*]}") ($((SECONDS - START)) s)"
fi
