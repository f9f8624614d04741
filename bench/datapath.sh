#!/bin/bash
# Datapath benchmark: forwarding through xennet's NAT with 1 and with N
# public IP mappings (nft maps: one hash lookup whatever N), against a
# hand-kept linear chain of 1 and of N `ip daddr X dnat to Y` rules in a
# table of its own. The mapping under test is always the LAST of the N, the
# worst case for the chain. Everything runs in network namespaces made here.
#
#   bench/datapath.sh [--tiny] [--build DIR]
#
# Four worlds side by side (LAN -- eth0 [Dom0] xenbr0 -- vif1.0 -- guest),
# each configured once, measured in interleaved rounds so that a noisy
# neighbour hurts every scenario alike. Interference only ever lowers a
# rate and adds CPU, so the best round is kept (highest rate, lowest CPU).
# Per scenario: TCP Gbit/s (one iperf3 stream from the LAN to the guest's
# PUBLIC address), UDP at a fixed offered rate (100 kpps of 64-byte
# datagrams): received kpps and CPU per packet, and new flows/s (a 1-byte
# datagram from a fresh socket to a new port each). NAT rules run only for
# a flow's FIRST packet (conntrack keeps the translation): TCP and UDP show
# the steady state, new flows the lookup itself. CPU is the softirq column
# of /proc/stat (all CPUs) over the run, where forwarding and NAT run;
# user+system would mostly measure iperf3 and the other tenants.
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
export XENNETD=$BUILD/xennetd XENNET=$BUILD/xennet NETCHECK=$BUILD/tests/netcheck \
	PROFILES=$REPO/profiles
for f in "$XENNETD" "$XENNET" "$NETCHECK"; do
	[ -x "$f" ] || { echo "$f is missing: meson setup $BUILD && ninja -C $BUILD" >&2; exit 1; }
done
. "$REPO/tests/ns/lib.sh" # root or exit 77; $T; namespaces removed on exit

if [ $TINY = 1 ]; then N=1000 SECS=1 REPS=1; else N=10000 SECS=3 REPS=5; fi

# Tools: what the project installs, and iperf3 (asks debconf: no daemon).
if ! command -v nft >/dev/null || ! command -v jq >/dev/null; then sh "$REPO/scripts/install-deps"; fi
if ! command -v iperf3 >/dev/null; then
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -q --no-install-recommends iperf3 >/dev/null ||
		{ apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends iperf3 >/dev/null; }
fi

echo "machine: $(nproc) CPUs, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)," \
	"kernel $(uname -r), $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo) RAM," \
	"load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "sizes: N=$N, ${SECS}s per run, best of $REPS rounds"

# Mapping i: public 100.64.x.y -> guest 10.0.x.z (as test-mapping-scale).
pub() { echo "100.64.$(($1 / 250)).$(($1 % 250 + 1))"; }
gst() { echo "10.0.$(($1 / 250)).$(($1 % 250 + 2))"; }
PUB=$(pub "$N") GST=$(gst "$N") # the one under test: the last
printf '[xennet]\nmode = nat\n[bridge xenbr0]\naddress = 10.0.0.1/16\n[nat]\nuplink = eth0\nbridge = xenbr0\n' >"$T/nat.conf"

# world W KIND K: namespaces ${P}lW, ${P}dW, ${P}gW; xennetd with K
# mappings (kind xennet) or none plus K linear rules (kind linear).
world() {
	local w=$1 kind=$2 k=$3 i
	LAN=${P}l$w DOM0=${P}d$w
	make_lan_and_dom0
	ip -n "$LAN" route add 100.64.0.0/16 via "$DOM0_IP" # the provider routes the range
	mkdir -p "$T/w$w/state"
	for ((i = N - k + 1; i <= N; i++)); do
		[ "$kind" = linear ] || echo "map $(pub $i) $(gst $i) vm$i"
	done >"$T/w$w/state/mappings"
	ip netns exec "$DOM0" "$XENNETD" --foreground --profile "$T/nat.conf" --socket "$T/w$w/ctl" \
		--state-dir "$T/w$w/state" >>"$T/daemon.log" 2>&1 &
	BG_PIDS+=($!)
	for ((i = 0; i < 600; i++)); do [ -S "$T/w$w/ctl" ] && break; sleep 0.05; done
	[ -S "$T/w$w/ctl" ] || fail "world $w: xennetd did not start"
	if [ "$kind" = linear ]; then
		{
			echo "table ip linear_dnat {"
			echo " chain prerouting { type nat hook prerouting priority dstnat; policy accept;"
			for ((i = N - k + 1; i <= N; i++)); do echo "  ip daddr $(pub $i) dnat to $(gst $i)"; done
			printf ' }\n}\n'
		} >"$T/w$w/linear.nft"
		in_ns "$DOM0" nft -f "$T/w$w/linear.nft"
	else
		[ "$(nft_json | jq '[.nftables[] | select(.map.name == "map_dnat") | .map.elem[]?] | length')" = "$k" ] ||
			fail "world $w: xennetd did not load $k mappings"
	fi
	make_guest "$w" "$GST/16" 10.0.0.1
	attach_vif_to_bridge "vif$w.0" xenbr0
	# Stale flows of one round must not skip the NAT lookup of the next.
	in_ns "$DOM0" sh -c 'echo 2 >/proc/sys/net/netfilter/nf_conntrack_udp_timeout'
	ip netns exec "$(guest "$w")" iperf3 -s -B "$GST" >/dev/null 2>&1 &
	BG_PIDS+=($!)
	for ((i = 0; i < 100; i++)); do in_ns "$(guest "$w")" ss -ltn | grep -q ":5201 " && break; sleep 0.05; done
	ping_from "$LAN" "$PUB" || fail "world $w: the LAN does not reach $PUB"
	echo "$w $kind $k" >>"$T/worlds"
}

# cpu: softirq jiffies since boot, all CPUs.
cpu() { awk '/^cpu / {print $8}' /proc/stat; }
HZ=$(getconf CLK_TCK)

# measure W: one round in world W, appended to $T/runs as
# "W gbps kpps sirq_ns/pkt flows/s sirq_us/flow".
measure() {
	local w=$1 lan=${P}l$1 s0 s1 p0 p1 tcp udp
	tcp=$(in_ns "$lan" iperf3 -c "$PUB" -t "$SECS" -J | jq '.end.sum_received.bits_per_second / 1e9') ||
		fail "world $w: iperf3 tcp"
	s0=$(cpu)
	udp=$(in_ns "$lan" iperf3 -c "$PUB" -u -b 51.2M -l 64 -t "$SECS" -J) || fail "world $w: iperf3 udp"
	s1=$(cpu)
	udp=$(jq -r --argjson t "$SECS" --argjson ds $((s1 - s0)) --argjson hz "$HZ" \
		'.end.sum | (.packets - .lost_packets) as $p | "\($p / $t / 1000) \($ds * 1e9 / $hz / $p)"' <<<"$udp")
	# New flows: each bash redirection is a new connected UDP socket.
	p0=$(in_ns "$(guest "$w")" cat /sys/class/net/eth0/statistics/rx_packets)
	s0=$(cpu)
	# shellcheck disable=SC2016 # expanded by the inner bash
	in_ns "$lan" timeout "$SECS" bash -c \
		'p=0; while :; do printf x 2>/dev/null >/dev/udp/$0/$((1024 + p++ % 60000)) || :; done' "$PUB" || :
	s1=$(cpu)
	p1=$(in_ns "$(guest "$w")" cat /sys/class/net/eth0/statistics/rx_packets)
	[ $((p1 - p0)) -gt 0 ] || fail "world $w: no new flow reached the guest"
	echo "$w $tcp $udp $(awk -v n=$((p1 - p0)) -v t="$SECS" -v ds=$((s1 - s0)) -v hz="$HZ" \
		'BEGIN {print n / t, ds * 1e6 / hz / n}')" >>"$T/runs"
}

START=$SECONDS
world 1 linear 1
world 2 linear "$N"
world 3 xennet 1
world 4 xennet "$N"
echo "setup: $((SECONDS - START)) s"
for ((r = 0; r < REPS; r++)); do for w in 1 2 3 4; do measure $w; done; done

# The table: per world the best round, ratios to xennet with 1 mapping.
echo
awk -v n="$N" '
	# best(W, C, SIGN): highest of column C over the rounds of world W
	# (SIGN 1), or lowest (SIGN -1).
	function best(w, c, sign,   i, b) {
		for (i = 1; i <= nr; i++)
			if (run[i, 1] == w && (b == "" || sign * run[i, c] > sign * b)) b = run[i, c]
		return b
	}
	FILENAME ~ /worlds$/ { kind[$1] = $2; k[$1] = $3; next }
	{ nr++; for (c = 1; c <= NF; c++) run[nr, c] = $c }
	END {
		for (w = 1; w <= 4; w++) for (c = 2; c <= 6; c++) v[w, c] = best(w, c, c == 4 || c == 6 ? -1 : 1)
		printf "%-8s %8s %8s %6s %8s %6s %9s %9s %6s %9s\n", "scenario", "mappings",
			"TCP Gb/s", "ratio", "UDP kpps", "ratio", "sirq ns/p", "flows/s", "ratio", "sirq us/f"
		for (w = 1; w <= 4; w++)
			printf "%-8s %8d %8.2f %6.2f %8.1f %6.2f %9.0f %9.0f %6.2f %9.1f\n", kind[w], k[w],
				v[w, 2], v[w, 2] / v[3, 2], v[w, 3], v[w, 3] / v[3, 3], v[w, 4],
				v[w, 5], v[w, 5] / v[3, 5], v[w, 6]
		rg = v[4, 2] / v[3, 2]; rp = v[4, 3] / v[3, 3]; rf = v[4, 5] / v[3, 5]
		printf "\nsummary: xennet with %d mappings = %.0f%% TCP Gbit/s, %.0f%% UDP pps, %.0f%% new flows/s of xennet with 1 (target >= 95%%: %s); linear chain of %d: %.0f%% new flows/s\n",
			n, rg * 100, rp * 100, rf * 100, (rg >= 0.95 && rp >= 0.95 && rf >= 0.95) ? "met" : "NOT met",
			n, v[2, 5] / v[3, 5] * 100
	}' "$T/worlds" "$T/runs"
echo "(took $((SECONDS - START)) s; load now $(cut -d' ' -f1-3 /proc/loadavg): other tenants' work lowers every number)"
