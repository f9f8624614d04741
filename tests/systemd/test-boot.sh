#!/bin/bash
# xennetd under a real systemd: a Debian 12 container (systemd-nspawn, its
# own network namespace) with the DESTDIR install of a --prefix=/usr build,
# the unit enabled, a stand-in for the host's network set-up
# (networking.service: eth0) and one for xendomains.service (a guest's
# namespace on vif1.0). Checks: the unit verifies; xennetd is ready, its
# profile applied, before xendomains starts, and the guest reaches its
# gateway; `systemctl reload` returns once the new profile is applied (and
# fails, changing nothing, with a bad one); `systemctl stop` leaves the
# network up; after `systemctl reboot` the same state comes back.
# Only with XENNET_BOOT_TEST=1 (.ci/run sets it): it builds a Debian image
# once (tests/systemd/image.sh, cached in /var/cache/xennet-test). With
# XENNET_DEB=PATH it installs that package (dpkg -i) instead of the
# DESTDIR tree.
set -euo pipefail
if [ "${XENNET_BOOT_TEST:-}" != 1 ]; then
	echo "SKIP: boots a Debian 12 container; set XENNET_BOOT_TEST=1 (.ci/run does)"
	exit 77
fi
[ "$(id -u)" = 0 ] || { echo "FAIL: needs root" >&2; exit 1; }
: "${SOURCE_ROOT:?}"
for tool in systemd-nspawn debootstrap nsenter jq; do
	command -v "$tool" >/dev/null || { echo "FAIL: $tool missing (scripts/install-deps)" >&2; exit 1; }
done

T=$(mktemp -d /tmp/xennet-boot.XXXXXX)
M=xnboot$$
CG=/sys/fs/cgroup/unified/$M
ROOT=$T/merged
NSPAWN=
PID1=

fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { echo "ok: $*"; }
expect() { local what=$1; shift; if "$@"; then pass "$what"; else fail "$what"; fi; }
expect_eq() { if [ "$2" == "$3" ]; then pass "$1"; else fail "$1: wanted '$2', got '$3'"; fi; }
# expect_same DESCRIPTION WANT GOT: shows the lines that differ
expect_same() {
	[ "$2" == "$3" ] && { pass "$1"; return; }
	diff <(echo "$2" | jq . 2>/dev/null || echo "$2") <(echo "$3" | jq . 2>/dev/null || echo "$3") >&2 || true
	fail "$1"
}
in_ct() { nsenter -t "$PID1" -a "$@"; }

# Everything the container left: its processes (through its cgroup), the
# cgroups nspawn made under ours, its overlay, nspawn's propagation dir.
kill_container() {
	if [ -d "$CG" ]; then
		echo 1 >"$CG/cgroup.kill" 2>/dev/null || true
		[ -z "$NSPAWN" ] || wait "$NSPAWN" 2>/dev/null || true
		# The kill is asynchronous: a cgroup is removable once empty.
		for _ in $(seq 100); do
			grep -qx "populated 0" "$CG/cgroup.events" && break
			sleep 0.05
		done
		find "$CG" -depth -type d -exec rmdir {} \; 2>/dev/null ||
			echo "warning: could not remove the cgroup $CG" >&2
	fi
	NSPAWN=
	PID1=
	rm -rf "/run/systemd/nspawn/propagate/$M"
}
cleanup() {
	local rc=$?
	set +e
	if [ $rc != 0 ] && [ -n "$PID1" ]; then
		echo "---- journal of xennetd ----" >&2
		in_ct journalctl -b --no-pager -u xennetd -u xendomains -u networking >&2
	fi
	[ $rc = 0 ] || tail -n 30 "$T/console.log" >&2 2>/dev/null
	kill_container
	mountpoint -q "$ROOT" && umount "$ROOT"
	rm -rf "$T"
	exit $rc
}
trap cleanup EXIT

image=$("$SOURCE_ROOT/tests/systemd/image.sh")

# The package as a distribution builds it.
meson setup "$T/build" "$SOURCE_ROOT" --prefix=/usr >"$T/build.log" 2>&1 &&
	ninja -C "$T/build" xennetd xennet vif-xennet \
		man/xennetd.8 man/xennet.8 man/xennet.conf.5 man/vif-xennet.8 >>"$T/build.log" 2>&1 &&
	DESTDIR="$T/dest" meson install -C "$T/build" --no-rebuild --quiet >>"$T/build.log" 2>&1 ||
	{ tail -n 30 "$T/build.log"; fail "build and DESTDIR install"; }

mkdir -p "$T/upper" "$T/work" "$ROOT"
mount -t overlay overlay -o "lowerdir=$image,upperdir=$T/upper,workdir=$T/work" "$ROOT"
if [ -n "${XENNET_DEB:-}" ]; then
	# The package, as an administrator installs it (its postinst enables
	# the unit; nothing runs it before the boot).
	cp "$XENNET_DEB" "$ROOT/tmp/xennet.deb"
	chroot "$ROOT" dpkg -i /tmp/xennet.deb >"$T/dpkg.log" 2>&1 || { cat "$T/dpkg.log"; fail "dpkg -i"; }
	rm "$ROOT/tmp/xennet.deb"
	expect "the package enabled the unit" test -L "$ROOT/etc/systemd/system/multi-user.target.wants/xennetd.service"
else
	cp -a "$T/dest/." "$ROOT/"
fi
mkdir -p "$ROOT/etc/xennet" "$ROOT/usr/local/sbin"
cat >"$ROOT/etc/xennet/xennet.conf" <<'PROFILE'
[xennet]
mode = nat
[bridge xenbr0]
address = 10.0.0.1/24
[nat]
uplink = eth0
bridge = xenbr0
PROFILE
# Stand-in for the host's own network set-up (ifupdown's unit name).
cat >"$ROOT/etc/systemd/system/networking.service" <<'UNIT'
[Unit]
Description=stand-in for the host's network set-up
Before=network.target
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/sbin/ip link add eth0 type veth peer name lan0
ExecStart=/usr/sbin/ip link set lan0 up
ExecStart=/usr/sbin/ip addr add 192.168.50.2/24 dev eth0
ExecStart=/usr/sbin/ip link set eth0 up
ExecStart=/usr/sbin/ip route add default via 192.168.50.1
[Install]
WantedBy=multi-user.target
UNIT
# Stand-in for xendomains: records what it finds when it starts, then
# starts a "guest" (a namespace on vif1.0, a port of xenbr0).
cat >"$ROOT/usr/local/sbin/xendomains-standin" <<'SCRIPT'
#!/bin/sh
out=/var/lib/standin/boot-$(cat /proc/sys/kernel/random/boot_id)
mkdir -p /var/lib/standin
{
	echo "xennetd=$(systemctl show -p ActiveState --value xennetd)"
	ip link show xenbr0 >/dev/null 2>&1 && echo "xenbr0=yes"
	nft list table inet xennet >/dev/null 2>&1 && echo "table=yes"
} >"$out"
ip netns add g1
ip link add vif1.0 type veth peer name eth0 netns g1
ip -n g1 link set lo up
ip -n g1 addr add 10.0.0.11/24 dev eth0
ip -n g1 link set eth0 up
ip -n g1 route add default via 10.0.0.1
ip link set vif1.0 master xenbr0 up
ip netns exec g1 ping -c 1 -W 5 10.0.0.1 >/dev/null && echo "guest=reaches-gateway" >>"$out"
exit 0
SCRIPT
chmod +x "$ROOT/usr/local/sbin/xendomains-standin"
cat >"$ROOT/etc/systemd/system/xendomains.service" <<'UNIT'
[Unit]
Description=stand-in for Xen's xendomains
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/sbin/xendomains-standin
[Install]
WantedBy=multi-user.target
UNIT
systemctl --root="$ROOT" enable xennetd.service networking.service xendomains.service >/dev/null 2>&1 ||
	fail "systemctl enable"

boot() {
	mkdir "$CG"
	(
		echo "$BASHPID" >"$CG/cgroup.procs"
		SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 exec timeout -k 10 300 systemd-nspawn -q -D "$ROOT" \
			-M "$M" --boot --register=no --keep-unit --private-network \
			--console=read-only </dev/null >>"$T/console.log" 2>&1
	) &
	NSPAWN=$!
	for _ in $(seq 200); do
		PID1=$(head -n 1 "$CG/payload/init.scope/cgroup.procs" 2>/dev/null) || true
		[ -n "$PID1" ] && break
		sleep 0.05
	done
	[ -n "$PID1" ] || fail "the container did not start"
	local state=
	# Until the manager's bus is up, systemctl cannot ask it.
	for _ in $(seq 300); do
		state=$(timeout 60 nsenter -t "$PID1" -a systemctl is-system-running --wait 2>/dev/null) || true
		[ -n "$state" ] && break
		sleep 0.1
	done
	if [ "$state" != running ]; then
		in_ct systemctl --failed --no-pager >&2 || true
		fail "the system is $state, not running"
	fi
}

# wait_exit: the container is down (after reboot or poweroff).
wait_exit() {
	local rc=0
	wait "$NSPAWN" || rc=$?
	NSPAWN=
	kill_container
	return 0
}

# What a user would compare: links, addresses, routes, nftables (without
# counters), ip_forward, the mappings.
state() {
	in_ct ip -j -d link show | jq -c '[.[] | {ifname, mtu, master, up: (.flags | index("UP") != null), kind: .linkinfo.info_kind}]'
	in_ct ip -j addr show | jq -c '[.[] | {ifname, a: [.addr_info[] | select(.scope != "link") | "\(.local)/\(.prefixlen)"]}]'
	in_ct ip -j route show table all | jq -c '[.[] | select(.dst | test("^(fe80|ff00)") | not)] | sort_by(.dst, .table)'
	in_ct nft -j list ruleset | jq -c '.nftables[1:] | walk(if type == "object" then del(.handle) | (if has("counter") then .counter = "c" else . end) else . end)'
	in_ct cat /proc/sys/net/ipv4/ip_forward
}

# shellcheck disable=SC2016 # expanded in the container
standin_saw() { in_ct sh -c 'cat /var/lib/standin/boot-$(cat /proc/sys/kernel/random/boot_id)'; }

# ---- first boot
boot
pass "the container boots to running"
out=$(in_ct systemd-analyze verify --man=no xennetd.service 2>&1) || fail "systemd-analyze verify: $out"
expect_eq "systemd-analyze verify is clean" "" "$out"
score=$(in_ct systemd-analyze security xennetd.service 2>/dev/null | sed -n 's/.*Overall exposure level for xennetd.service: \([0-9.]*\).*/\1/p')
expect "systemd-analyze security: $score (at most 2.5)" awk -v s="$score" 'BEGIN { exit !(s != "" && s <= 2.5) }'
expect_eq "xennetd is active" active "$(in_ct systemctl is-active xennetd)"
saw=$(standin_saw)
expect "xendomains started after xennetd was ready" grep -qx "xennetd=active" <<<"$saw"
expect "with its bridge" grep -qx "xenbr0=yes" <<<"$saw"
expect "and its nftables table" grep -qx "table=yes" <<<"$saw"
expect "the guest reaches its gateway" grep -qx "guest=reaches-gateway" <<<"$saw"
ready=$(in_ct systemctl show -p ActiveEnterTimestampMonotonic --value xennetd)
started=$(in_ct systemctl show -p ExecMainStartTimestampMonotonic --value xendomains)
expect "systemd saw it ready ($ready) before starting xendomains ($started)" test "$ready" -le "$started"
net=$(in_ct systemctl show -p ExecMainExitTimestampMonotonic --value networking)
main=$(in_ct systemctl show -p ExecMainStartTimestampMonotonic --value xennetd)
expect "xennetd started after the host's network set-up" test "$net" -le "$main"
expect "vif-xennet is where libxl looks" in_ct /etc/xen/scripts/vif-xennet --version

# ---- reload: returns once the new profile is applied
sed -i 's|^address = 10.0.0.1/24|&\naddress = 10.0.1.1/24|' "$ROOT/etc/xennet/xennet.conf"
expect "systemctl reload" in_ct systemctl reload xennetd
expect "the new address is there when reload returns" \
	grep -q '"10.0.1.1"' <(in_ct ip -j addr show dev xenbr0)
expect_eq "and the service is active" active "$(in_ct systemctl show -p ActiveState --value xennetd)"
cp "$ROOT/etc/xennet/xennet.conf" "$T/good.conf"
before=$(state)
echo "mode = bogus" >>"$ROOT/etc/xennet/xennet.conf"
expect "systemctl reload of a bad profile fails" bash -c "! nsenter -t $PID1 -a systemctl reload xennetd 2>/dev/null"
expect_same "and changes nothing" "$before" "$(state)"
expect_eq "the service stays active" active "$(in_ct systemctl is-active xennetd)"
journal() { in_ct journalctl -b --no-pager -o cat -u xennetd "$@"; }
expect "journalctl -p err says why" grep -q "xennet.conf: profile rejected" <(journal -p err)
expect_eq "the journal parsed every priority prefix" "" "$(journal | grep '^<[0-7]>' || true)"
expect_eq "the start's result is in the journal once" 1 \
	"$(journal | grep -c '^applied /etc/xennet/xennet.conf (nat mode, at start)')"
cp "$T/good.conf" "$ROOT/etc/xennet/xennet.conf"
expect "a public address for the guest" in_ct xennet map add 192.168.50.10 10.0.0.11 --name g1 >/dev/null

# ---- stop leaves the network up
s1=$(state)
expect "systemctl stop" in_ct systemctl stop xennetd
expect_eq "xennetd is stopped, not failed" inactive "$(in_ct systemctl is-active xennetd || true)"
expect_same "the network stays as it was" "$s1" "$(state)"
expect "the guest still reaches its gateway" in_ct ip netns exec g1 ping -q -c 1 -W 2 10.0.0.1 >/dev/null
expect "systemctl start" in_ct systemctl start xennetd
expect_same "a start changes nothing" "$s1" "$(state)"

# ---- reboot: the same state comes back
in_ct systemctl reboot || true
wait_exit
boot
pass "the container boots again"
expect_eq "xennetd is active after the reboot" active "$(in_ct systemctl is-active xennetd)"
saw=$(standin_saw)
expect "xendomains again after xennetd was ready" grep -qx "xennetd=active" <<<"$saw"
expect "the guest reaches its gateway again" grep -qx "guest=reaches-gateway" <<<"$saw"
expect_same "the same state after the reboot" "$s1" "$(state)"
expect "the mapping is back" grep -q 192.168.50.10 <(in_ct xennet map list)
expect "from the copy of the profile in the state directory" \
	grep -qx "profile: /var/lib/xennet/profile.conf (a copy of /etc/xennet/xennet.conf, as applied)" <(in_ct xennet status)

in_ct systemctl poweroff || true
wait_exit
pass "powered off"
