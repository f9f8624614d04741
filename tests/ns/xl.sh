# shellcheck shell=bash
# Debian's real xl (xen-utils-4.17, libxenlight 4.17) in the namespace
# tests, instead of a replay of libxl: tests/xenstore/xl-shim answers the
# hypercalls below libxenctrl, tests/xenstore/netback-sim plays netback
# and a running guest's netfront (a veth pair as the vif), and xl runs in
# a mount namespace of its own where /var/lib/xen, /var/log/xen,
# /etc/xen/scripts and /etc/xen/xl.conf are the test's (the host's are
# never written). Source AFTER lib.sh and xenstore.sh; start xenstored
# with --domains.
#
#   xl_start [--late MS]          the mount namespace, the scripts dir
#                                 (Xen's scripts + vif-xennet), netback-sim
#   xl_add_domain DOMID [NAME [pv|hvm]]   what domain creation leaves
#   xl_run ARGS...                xl ARGS in Dom0 (status: xl's; its stderr
#                                 in $XL_ERR); sets XL_MS, XL_US
#   xl_attach DOMID SPEC...       xl network-attach, the same
#   xl_detach DOMID DEVID         xl network-detach, the same
#   xl_scripts                    the scripts dir as xl sees it
#   be_state DOMID DEVID [WANT]   the backend's state, once it is WANT
#                                 (netback connects right after the
#                                 script; up to 2 s) or the last read
#
# Needs XL_SHIM and NETBACK_SIM (meson).

: "${XL_SHIM:?XL_SHIM must name the xl-shim library (set by meson)}"
: "${NETBACK_SIM:?NETBACK_SIM must name netback-sim (set by meson)}"
XL_BIN=${XL_BIN:-/usr/lib/xen-4.17/bin/xl}
XL_HOLDER=   # a process in xl's mount namespace (and Dom0's network one)
XL_ERR=      # xl's stderr of the last xl_run
XL_MS=       # duration of the last xl_run, in ms
XL_US=       # the same in µs
NB_PID=

for _t in "$XL_BIN" "$NETBACK_SIM"; do
	if [ ! -x "$_t" ]; then
		echo "SKIP: $_t is missing (xen-utils-4.17 / meson build)"
		exit 77
	fi
done
command -v unshare nsenter >/dev/null || { echo "SKIP: unshare/nsenter missing"; exit 77; }
unset _t

# xl_start [--late MS]: the scripts dir is a copy of the host's
# /etc/xen/scripts (Xen's vif-bridge is the baseline) with vif-xennet
# installed as Debian would, xl.conf without autoballoon (no lock file
# outside the test's directory).
xl_start() {
	[ -n "$XS_DOMAINS_FILE" ] || fail "xl_start needs start_xenstored --domains"
	local x=$T/xl
	mkdir -p "$x/lib" "$x/log" "$x/run" "$x/scripts"
	cp -a /etc/xen/scripts/. "$x/scripts/"
	install -m 0755 "$VIF_XENNET" "$x/scripts/vif-xennet"
	printf 'autoballoon="off"\nlockfile="/var/lib/xen/xl.lock"\n' >"$x/xl.conf"
	# The holder: in Dom0's network namespace (the scripts configure
	# Dom0's devices) and a private mount namespace with the binds.
	ip netns exec "$DOM0" unshare -m --propagation private sh -c '
		x=$1
		mount --bind "$x/lib" /var/lib/xen &&
		mount --bind "$x/log" /var/log/xen &&
		mount --bind "$x/scripts" /etc/xen/scripts &&
		mount --bind "$x/xl.conf" /etc/xen/xl.conf &&
		mount -t tmpfs -o size=1m,mode=0755 xl-run /var/run &&
		mkdir -p /var/run/lock /var/run/xen &&
		touch "$x/ready" && exec sleep infinity' xl-holder "$x" \
		>>"$x/holder.log" 2>&1 &
	XL_HOLDER=$!
	BG_PIDS+=("$XL_HOLDER")
	for _ in $(seq 200); do
		[ -e "$x/ready" ] && break
		kill -0 "$XL_HOLDER" 2>/dev/null || fail "xl's mount namespace: $(cat "$x/holder.log")"
		sleep 0.025
	done
	[ -e "$x/ready" ] || fail "xl's mount namespace was not ready in 5 s"
	nb_start "$@"
}

# nb_start [--late MS]: (re)start netback-sim in Dom0.
nb_start() {
	if [ -n "$NB_PID" ]; then
		kill -TERM "$NB_PID" 2>/dev/null
		wait "$NB_PID" 2>/dev/null || true
	fi
	local before
	before=$(grep -c "watching" "$T/netback.log" 2>/dev/null || true)
	ip netns exec "$DOM0" "$NETBACK_SIM" --guest-ns "${P}g%u" "$@" \
		>>"$T/netback.log" 2>&1 &
	NB_PID=$!
	BG_PIDS+=("$NB_PID")
	for _ in $(seq 200); do
		[ "$(grep -c "watching" "$T/netback.log")" -gt "${before:-0}" ] && return 0
		sleep 0.025
	done
	fail "netback-sim did not start: $(cat "$T/netback.log")"
}

# The scripts dir as xl (and libxl's script key) sees it.
xl_scripts() {
	echo /etc/xen/scripts
}

be_state() {
	local path=/local/domain/0/backend/vif/$1/$2/state want=${3:-} st
	for _ in $(seq 40); do
		st=$(xs_read "$path" || true)
		[ -z "$want" ] || [ "$st" = "$want" ] && break
		sleep 0.05
	done
	echo "$st"
}

xl_uuid() {
	printf '00000000-0000-0000-0000-%012x' "$1"
}

# xl_add_domain DOMID [NAME [pv|hvm]]: what libxl__domain_make and
# libxl__build_post leave for a running guest (libxl_add_domain of
# xenstore.sh, plus /local/domain/D/domid), the guest in the
# "hypervisor" (xl-shim) with its uuid, libxl's saved configuration
# /var/lib/xen/userdata-d.D.UUID.libxl-json (network-attach reads it and
# adds the nic to it), and the guest's network namespace.
xl_add_domain() {
	local d=$1 name=${2:-guest$1} type=${3:-pv} uuid
	uuid=$(xl_uuid "$d")
	libxl_add_domain "$d" "$name" "$type"
	xenstore-write "/local/domain/$d/domid" "$d"
	local extra=
	[ "$type" = pv ] || extra=" $type"
	sed -i "s/^$d\$/$d uuid=$uuid$extra/" "$XS_DOMAINS_FILE"
	printf '{"c_info":{"type":"%s","name":"%s","uuid":"%s"},"b_info":{"max_vcpus":1,"max_memkb":262144,"target_memkb":262144,"type.%s":{}}}\n' \
		"$type" "$name" "$uuid" "$type" >"$T/xl/lib/userdata-d.$d.$uuid.libxl-json"
	new_ns "$(guest "$d")"
}

# xl_run ARGS...: Debian's xl in Dom0's network namespace and its own
# mount namespace, LD_PRELOAD=xl-shim, with our XENSTORED_PATH and
# XENNET_SOCKET (the hotplug scripts inherit xl's environment). Returns
# xl's status; its stderr is in $XL_ERR (and appended to $T/xl/xl.log).
xl_run() {
	local rc=0 t0 t1
	XL_ERR=$T/xl/last.err
	t0=$(date +%s%N)
	nsenter -t "$XL_HOLDER" -m -n env LD_PRELOAD="$XL_SHIM" \
		XL_SHIM_DOMAINS="$XS_DOMAINS_FILE" XENSTORED_PATH="$XENSTORED_PATH" \
		XENNET_SOCKET="${XENNET_SOCKET:-$T/ctl.sock}" \
		"$XL_BIN" ${XL_VERBOSE:+-vvv} "$@" </dev/null 2>"$XL_ERR" || rc=$?
	t1=$(date +%s%N)
	XL_US=$(((t1 - t0) / 1000))
	XL_MS=$((XL_US / 1000))
	{
		echo "== xl $* -> $rc (${XL_MS} ms)"
		cat "$XL_ERR"
	} >>"$T/xl/xl.log"
	return "$rc"
}

xl_attach() {
	local d=$1
	shift
	xl_run network-attach "$d" "$@"
}

xl_detach() {
	xl_run network-detach "$1" "$2"
}

# Show what xl and netback-sim did when the test failed (before
# xenstore.sh's cleanup, which shows xenstored's log).
_xl_cleanup() {
	local rc=$?
	set +e # errexit would end the trap at "(exit $rc)" below
	if [ "$rc" != 0 ]; then
		for f in "$T/xl/xl.log" "$T/netback.log" "$T/xl/log/xen-hotplug.log"; do
			[ -s "$f" ] || continue
			echo "---- $f (tail) ----" >&2
			tail -n 60 "$f" >&2
		done
	fi
	(exit "$rc")
	_xs_cleanup
}
trap _xl_cleanup EXIT
