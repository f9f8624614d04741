# Shared helpers for the namespace tests: each test builds its own small
# world of network namespaces (a LAN, a Dom0 running xennetd, guests
# attached by veth pairs named like vifs) and removes it on exit. Nothing
# outside those namespaces is changed.
# Needs: XENNETD, XENNET, NETCHECK, PROFILES (set by meson).
set -euo pipefail

if [ "$(id -u)" != 0 ]; then
	echo "SKIP: namespace tests need root"
	exit 77
fi
: "${XENNETD:?}" "${XENNET:?}" "${NETCHECK:?}" "${PROFILES:?}"

T=$(mktemp -d /tmp/xennet-test.XXXXXX)
P="xn$$"
# A namespace left behind by a test that was killed (its pid reused now)
# must not make this one fail.
while ls /run/netns/"$P"* >/dev/null 2>&1; do P="xn$$x$RANDOM"; done
LAN=${P}lan
DOM0=${P}d0
DPID=
NAMESPACES=()
BG_PIDS=()

LAN_IP=192.168.50.1
DOM0_IP=192.168.50.2

cleanup() {
	local rc=$?
	set +e
	for p in "${BG_PIDS[@]}"; do kill "$p" 2>/dev/null; done
	if [ -n "$DPID" ]; then
		kill -TERM "$DPID" 2>/dev/null
		wait "$DPID" 2>/dev/null
		local drc=$?
		# A clean exit is part of passing (valgrind/ASan report here).
		if [ $rc = 0 ] && [ $drc != 0 ]; then
			echo "FAIL: xennetd exited with status $drc on SIGTERM" >&2
			rc=1
		fi
	fi
	if [ $rc != 0 ] && [ -f "$T/daemon.log" ]; then
		echo "---- xennetd log ----" >&2
		cat "$T/daemon.log" >&2
	fi
	for ns in "${NAMESPACES[@]}"; do ip netns del "$ns" 2>/dev/null; done
	rm -rf "$T"
	exit $rc
}
trap cleanup EXIT

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

pass() {
	echo "ok: $*"
}

# expect DESCRIPTION COMMAND...: the command must succeed.
expect() {
	local what=$1
	shift
	if "$@"; then pass "$what"; else fail "$what"; fi
}

# expect_not DESCRIPTION COMMAND...: the command must fail.
expect_not() {
	local what=$1
	shift
	if "$@"; then fail "$what"; else pass "$what"; fi
}

# expect_eq DESCRIPTION WANT GOT
expect_eq() {
	if [ "$2" == "$3" ]; then pass "$1"; else fail "$1: wanted '$2', got '$3'"; fi
}

new_ns() {
	ip netns add "$1"
	NAMESPACES+=("$1")
	ip -n "$1" link set lo up
	# No duplicate address detection delay for the test's IPv6 addresses.
	ip netns exec "$1" sh -c 'echo 0 > /proc/sys/net/ipv6/conf/default/accept_dad; echo 0 > /proc/sys/net/ipv6/conf/all/accept_dad'
}

in_ns() {
	local ns=$1
	shift
	ip netns exec "$ns" "$@"
}

# A LAN namespace (the router at LAN_IP) and Dom0 with eth0 as its NIC.
make_lan_and_dom0() {
	new_ns "$LAN"
	new_ns "$DOM0"
	ip -n "$DOM0" link add eth0 type veth peer name eth0 netns "$LAN"
	ip -n "$LAN" addr add "$LAN_IP/24" dev eth0
	ip -n "$LAN" link set eth0 up
	ip -n "$DOM0" addr add "$DOM0_IP/24" dev eth0
	ip -n "$DOM0" link set eth0 up
	ip -n "$DOM0" route add default via "$LAN_IP"
}

# make_guest N ADDR/PREFIX [GATEWAY]: guest namespace ${P}gN whose eth0 is
# the peer of vifN.0 in Dom0 (not attached anywhere yet).
make_guest() {
	local n=$1 addr=$2 gw=${3:-}
	local g=${P}g$n
	new_ns "$g"
	ip -n "$DOM0" link add "vif$n.0" type veth peer name eth0 netns "$g"
	ip -n "$g" addr add "$addr" dev eth0
	ip -n "$g" link set eth0 up
	if [ -n "$gw" ]; then ip -n "$g" route add default via "$gw"; fi
}

guest() { echo "${P}g$1"; }

# What libxl's vif-bridge would do until hotplug lands: port of BRIDGE, up.
attach_vif_to_bridge() {
	ip -n "$DOM0" link set "$1" master "$2"
	ip -n "$DOM0" link set "$1" up
}

# The NAT profile most tests use: guests on xenbr0 (10.0.0.1/24) behind
# eth0.
nat_profile() {
	printf '[xennet]\nmode = nat\n[bridge xenbr0]\naddress = 10.0.0.1/24\n[nat]\nuplink = eth0\nbridge = xenbr0\n' >"$1"
}

# The bridged profile most hotplug tests use: xenbr0 with eth0 as its
# uplink, Dom0's address and routes moved to it.
bridged_profile() {
	printf '[xennet]\nmode = bridged\n[bridge xenbr0]\nuplink = eth0\ntake_addresses = yes\n' >"$1"
}

# spoofed_arrives GUEST_NS SRC: a UDP datagram the guest sends from SRC
# (not its vif's address) reaches the LAN.
spoofed_arrives() {
	local n cpid
	in_ns "$LAN" "$NETCHECK" count udp "$LAN_IP" 7600 1.5 >"$T/count" &
	cpid=$!
	sleep 0.2
	NETCHECK_SRC=$2 in_ns "$1" "$NETCHECK" send udp "$LAN_IP" 7600 spoof 1 >/dev/null 2>&1 || true
	wait "$cpid" || true
	n=$(cat "$T/count")
	[ "${n:-0}" -gt 0 ]
}

# mac_of NS DEV: the device's MAC address.
mac_of() { ip -n "$1" -j link show dev "$2" | jq -r '.[0].address'; }

start_daemon() {
	local profile=$1
	# XENNETD_WRAP runs the daemon under e.g. valgrind.
	# shellcheck disable=SC2086
	ip netns exec "$DOM0" ${XENNETD_WRAP:-} "$XENNETD" --foreground --profile "$profile" \
		--socket "$T/ctl.sock" --state-dir "$T/state" >>"$T/daemon.log" 2>&1 &
	DPID=$!
	# Up to 60 s: 10,000 mappings under valgrind or ASan take a while.
	for _ in $(seq 1200); do
		[ -S "$T/ctl.sock" ] && return 0
		kill -0 "$DPID" 2>/dev/null || { wait "$DPID" || true; DPID=; fail "xennetd exited at start"; }
		sleep 0.05
	done
	fail "xennetd did not open its control socket"
}

# SIGTERM; the daemon must exit cleanly (status 0, and no leak or error
# when it runs under valgrind with --error-exitcode).
stop_daemon() {
	local rc=0
	kill -TERM "$DPID"
	wait "$DPID" || rc=$?
	DPID=
	[ "$rc" = 0 ] || fail "xennetd exited with status $rc on SIGTERM"
}

daemon_alive() {
	[ -n "$DPID" ] && kill -0 "$DPID" 2>/dev/null
}

xn() {
	in_ns "$DOM0" "$XENNET" --socket "$T/ctl.sock" --state-dir "$T/state" "$@"
}

ping_from() {
	in_ns "$1" ping -c 2 -i 0.2 -W 2 -q "$2" >/dev/null
}

# tcp_exchange CLIENT_NS SERVER_NS SERVER_ADDR PORT: prints the source
# address the server saw; fails unless the echo came back.
exchange() {
	local proto=$1 cns=$2 sns=$3 addr=$4 port=$5
	local out="$T/serve.$proto.$port"
	ip netns exec "$sns" "$NETCHECK" serve "$proto" "$addr" "$port" 10 >"$out" &
	local spid=$!
	if ! in_ns "$cns" "$NETCHECK" send "$proto" "$addr" "$port" "hello-$port" 8 >/dev/null; then
		kill "$spid" 2>/dev/null
		return 1
	fi
	wait "$spid" || return 1
	sed -n 's/^peer //p' "$out"
}

sysctl_in() {
	in_ns "$1" cat "/proc/sys/$2"
}

nft_json() {
	in_ns "$DOM0" nft -j list ruleset
}

# A fingerprint of the kernel state a user would compare: links with
# master and mtu, addresses, routes and the nft ruleset.
kernel_state() {
	{
		ip -n "$DOM0" -j -d link show | jq -c '[.[] | {ifname, mtu, master, up: (.flags | index("UP") != null), kind: .linkinfo.info_kind, stp: .linkinfo.info_data.stp_state, fd: .linkinfo.info_data.forward_delay}]'
		ip -n "$DOM0" -j addr show | jq -c '[.[] | {ifname, a: [.addr_info[] | select(.scope != "link") | "\(.local)/\(.prefixlen)"]}]'
		ip -n "$DOM0" -j route show table all | jq -c '[.[] | select(.dst | test("^(fe80|ff00)") | not)] | sort_by(.dst)'
		in_ns "$DOM0" nft -j list ruleset | jq -c '.nftables[1:] | walk(if type == "object" and has("counter") then .counter = "c" else . end)'
		for s in net/ipv4/ip_forward net/ipv4/conf/eth0/proxy_arp; do sysctl_in "$DOM0" $s; done
	}
}
