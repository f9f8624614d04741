# shellcheck shell=bash
# The real xenstored (xen-utils-4.17) for the namespace tests, and a replay
# of what libxl 4.17 and netback write and run around a vif hotplug script
# (shared/xen-hotplug-spec.md, sections 1 and 2). Source AFTER lib.sh.
#
# Needs XS_SHIM (meson: tests/xenstore/xs-shim.so); the helper tools xs-txn
# and xs-introduce, and oxs-shim.so, are built beside it.
#
# Which xenstored: XENSTORED_KIND=c (default: xenstored) or ocaml
# (oxenstored, under oxs-shim), or XENSTORED_BIN naming either binary (the
# kind then follows from its name). XS_MAXWATCHEVENTS sets oxenstored's
# quota-maxwatchevents (the C xenstored has no such quota and ignores it).
#
#   start_xenstored [--domains "D..."] [XENSTORED_ARGS...]
#   xs_read PATH                       xs_exists PATH       xs_perms PATH
#   xs_txn < OPS                       (one transaction, see xs-txn.c)
#   xs_domain_exists DOMID             xs_domain_vanish DOMID
#   xs_domains_recheck                 (the VIRQ_DOM_EXC event channel fires)
#   libxl_add_domain DOMID [NAME [pv|pvh|hvm]]
#   libxl_add_vif DOMID DEVID [key=value ...]
#   netback_connect DOMID DEVID
#   run_hotplug SCRIPT ACTION DOMID DEVID [TYPE_IF]
#   libxl_remove_vif DOMID DEVID [--netdev-gone]
#   libxl_destroy_vif DOMID DEVID
# Relative xenstore paths (backend/vif/1/0) are relative to
# /local/domain/0, as for every dom0 client.

: "${XS_SHIM:?XS_SHIM must name the xs-shim library (set by meson)}"
XS_TOOLS=${XS_TOOLS:-$(dirname "$XS_SHIM")}
if [ -z "${XENSTORED_KIND:-}" ]; then
	case ${XENSTORED_BIN:-} in
	*/oxenstored | oxenstored) XENSTORED_KIND=ocaml ;;
	*) XENSTORED_KIND=c ;;
	esac
fi
case $XENSTORED_KIND in
c) XENSTORED_BIN=${XENSTORED_BIN:-/usr/lib/xen-4.17/bin/xenstored} ;;
ocaml)
	XENSTORED_BIN=${XENSTORED_BIN:-/usr/lib/xen-4.17/bin/oxenstored}
	# shellcheck disable=SC2034 # used by start_xenstored
	OXS_SHIM=${OXS_SHIM:-$XS_TOOLS/oxs-shim.so}
	;;
*)
	echo "FAIL: XENSTORED_KIND must be c or ocaml, not '$XENSTORED_KIND'" >&2
	exit 1
	;;
esac
XEN_SCRIPT_DIR=/etc/xen/scripts
XEN_HOTPLUG_LOG=/var/log/xen/xen-hotplug.log
LIBXL_HOTPLUG_TIMEOUT=40 # s, libxl_internal.h
XS_PID=
XS_DOMAINS_FILE= # set in "--domains" mode
HOTPLUG_MS=      # duration of the last run_hotplug, in ms
_XS_HOTPLUG_LOG_START=

for _t in "$XENSTORED_BIN" "$XS_TOOLS/xs-txn" "$XS_TOOLS/xs-introduce" ${OXS_SHIM:+"$OXS_SHIM"}; do
	if [ ! -x "$_t" ]; then
		echo "SKIP: $_t is missing (xen-utils-4.17 / meson build)"
		exit 77
	fi
done
for _t in xenstore-read xenstore-write xenstore-ls xenstore-watch; do
	command -v "$_t" >/dev/null || { echo "SKIP: $_t is missing (xenstore-utils)"; exit 77; }
done
unset _t

# lib.sh's cleanup runs from the EXIT trap; ours runs first. It stops
# xennetd (as cleanup would: status 0 required) while xenstored still
# answers, then xenstored, and when the test failed shows xenstored's log
# and what the hotplug scripts appended to theirs (concurrent tests
# included).
_xs_cleanup() {
	local rc=$?
	set +e
	# A test that stopped xenstored (SIGSTOP) and failed before it let it
	# go on: xennetd and xenstored must end.
	[ -n "$XS_PID" ] && kill -CONT "$XS_PID" 2>/dev/null
	if [ -n "${DPID:-}" ]; then
		kill -TERM "$DPID" 2>/dev/null
		wait "$DPID" 2>/dev/null
		local drc=$?
		DPID=
		if [ "$rc" = 0 ] && [ "$drc" != 0 ]; then
			echo "FAIL: xennetd exited with status $drc on SIGTERM" >&2
			rc=1
		fi
	fi
	if [ -n "$XS_PID" ]; then
		kill -TERM "$XS_PID" 2>/dev/null
		wait "$XS_PID" 2>/dev/null
	fi
	if [ "$rc" != 0 ]; then
		local f
		for f in "$T/xs/log" "$T/xs/oxenstored.log"; do
			[ -s "$f" ] || continue
			echo "---- $XENSTORED_KIND xenstored log $f (tail) ----" >&2
			tail -n 40 "$f" >&2
		done
		if [ -n "$_XS_HOTPLUG_LOG_START" ] && [ -f "$XEN_HOTPLUG_LOG" ] &&
			[ "$(stat -c %s "$XEN_HOTPLUG_LOG")" -gt "$_XS_HOTPLUG_LOG_START" ]; then
			echo "---- $XEN_HOTPLUG_LOG (this test) ----" >&2
			tail -c +"$((_XS_HOTPLUG_LOG_START + 1))" "$XEN_HOTPLUG_LOG" >&2
		fi
	fi
	(exit "$rc")
	cleanup
}
trap _xs_cleanup EXIT

# start_xenstored [--domains "D..."] [XENSTORED_ARGS...]: an instance of
# its own in $T/xs (socket, and the tdb if it were on disk: 4.17 keeps it in
# memory; no trace file, no pid file; its syslog goes to $T/xs/log through
# the shim). With --domains only dom0 and the listed domids exist for the
# "hypervisor" (xs_domain_exists / xs_domain_vanish change that); without,
# every domid exists. Exports XENSTORED_PATH for every later client.
start_xenstored() {
	if [ "${1:-}" = --domains ]; then
		XS_DOMAINS_FILE=$T/xs/domains
		mkdir -p "$T/xs"
		# shellcheck disable=SC2086 # a list of domids
		printf '%s\n' 0 $2 >"$XS_DOMAINS_FILE"
		shift 2
	fi
	mkdir -p "$T/xs"
	[ -n "$XS_PID" ] && fail "start_xenstored: already running"
	if [ "$XENSTORED_KIND" = ocaml ]; then
		_start_oxenstored "$@"
	else
		# -N: no fork (the pid is ours). Never -D: without dom0 the
		# daemon crashes on the first socket client.
		XENSTORED_RUNDIR=$T/xs XS_SHIM_DOMAINS=$XS_DOMAINS_FILE LD_PRELOAD=$XS_SHIM \
			"$XENSTORED_BIN" -N "$@" </dev/null >>"$T/xs/log" 2>&1 &
	fi
	XS_PID=$!
	BG_PIDS+=("$XS_PID")
	export XENSTORED_PATH=$T/xs/socket
	local i=0
	until [ -S "$XENSTORED_PATH" ] && xenstore-read /tool/xenstored >/dev/null 2>&1; do
		if ! kill -0 "$XS_PID" 2>/dev/null; then
			wait "$XS_PID" || true
			XS_PID=
			fail "xenstored exited at start: $(cat "$T/xs/log")"
		fi
		i=$((i + 1))
		[ "$i" -lt 400 ] || fail "xenstored did not open $XENSTORED_PATH in 10 s"
		sleep 0.025
	done
	# Which one answers: oxenstored names itself in /tool/xenstored.
	case $XENSTORED_KIND:$(xs_read /tool/xenstored) in
	ocaml:*oxenstored | c:*) ;;
	*) fail "start_xenstored: $XENSTORED_BIN is not the $XENSTORED_KIND xenstored" ;;
	esac
	# What xen-init-dom0 writes at boot, so that path cleanups stop at
	# dom0's home as on a real host.
	printf 'write\t%s\t%s\n' /local/domain/0/domid 0 /local/domain/0/name Domain-0 | xs_txn
	if [ -f "$XEN_HOTPLUG_LOG" ]; then
		_XS_HOTPLUG_LOG_START=$(stat -c %s "$XEN_HOTPLUG_LOG")
	else
		_XS_HOTPLUG_LOG_START=0
	fi
}

# oxenstored in the background (start_xenstored takes $!): a config file
# of its own instead of /etc/xen/oxenstored.conf, with dom0's event channel
# and ring page as files (the port with no newline), its pid file and log
# here; its fixed socket and database paths are moved to $T/xs by oxs-shim.
_start_oxenstored() {
	printf 1 >"$T/xs/xsd_port"
	truncate -s "$(getconf PAGESIZE)" "$T/xs/xsd_kva"
	# Everything else as built in (Debian's file says the same).
	printf '%s\n' "xenstored-port = $T/xs/xsd_port" "xenstored-kva = $T/xs/xsd_kva" \
		"pid-file = $T/xs/pid" "xenstored-log-file = $T/xs/oxenstored.log" \
		"persistent = false" "quota-maxwatchevents = ${XS_MAXWATCHEVENTS:-1024}" \
		>"$T/xs/oxenstored.conf"
	OXS_SHIM_RUNDIR=$T/xs XS_SHIM_DOMAINS=$XS_DOMAINS_FILE LD_PRELOAD=$OXS_SHIM \
		"$XENSTORED_BIN" --no-fork --no-access-log --config-file "$T/xs/oxenstored.conf" "$@" \
		</dev/null >>"$T/xs/log" 2>&1 &
}

# xs_read PATH: the value (nothing and status 1 if the node is missing).
xs_read() {
	xenstore-read "$1" 2>/dev/null
}

xs_exists() {
	xenstore-exists "$1" 2>/dev/null
}

# xs_perms PATH: the node's permissions as xenstore-ls shows them, "n0,r1".
xs_perms() {
	local parent=${1%/*} name=${1##*/}
	xenstore-ls -p "${parent:-/}" 2>/dev/null |
		sed -n "s/^$name = .*(\([^)]*\))\$/\1/p"
}

# xs_txn: the operations on stdin (TAB separated: mkdir P | rm P |
# write P V | chmod P PERMS | cleanup P) in one transaction.
xs_txn() {
	"$XS_TOOLS/xs-txn"
}

# xs_domain_exists DOMID: the "hypervisor" now has DOMID (--domains mode).
xs_domain_exists() {
	[ -n "$XS_DOMAINS_FILE" ] || return 0
	grep -qx "$1" "$XS_DOMAINS_FILE" || echo "$1" >>"$XS_DOMAINS_FILE"
}

# xs_domain_vanish DOMID: the domain is destroyed by the hypervisor
# (VIRQ_DOM_EXC): xenstored drops it, deletes the nodes it owned (unless
# run with -K) and, if it was introduced, fires @releaseDomain. Needs
# --domains. Asynchronous: wait for the effect you test.
xs_domain_vanish() {
	[ -n "$XS_DOMAINS_FILE" ] || fail "xs_domain_vanish needs start_xenstored --domains"
	grep -vx "$1" "$XS_DOMAINS_FILE" >"$XS_DOMAINS_FILE.new" || true
	mv "$XS_DOMAINS_FILE.new" "$XS_DOMAINS_FILE"
	xs_domains_recheck
}

# xs_domains_recheck: the VIRQ_DOM_EXC event channel fires, xenstored
# looks at its domains again. The shims take it as a signal: SIGUSR1 for
# xenstored, SIGUSR2 for oxenstored (which has a SIGUSR1 handler of its
# own).
xs_domains_recheck() {
	if [ "$XENSTORED_KIND" = ocaml ]; then
		kill -USR2 "$XS_PID"
	else
		kill -USR1 "$XS_PID"
	fi
}

# libxl_add_domain DOMID [NAME [TYPE]]: the part of libxl__domain_make and
# libxl__build_post a vif relies on: /local/domain/D (dom0 owns, guest
# reads) with name and vm, its device dir (guest owns), /vm/UUID, the
# /libxl/D dir (dom0 only) with the domain TYPE (default pv), one
# transaction; then XS_INTRODUCE as
# xs_introduce_domain does (@introduceDomain fires).
libxl_add_domain() {
	local d=$1 name=${2:-guest$1} type=${3:-pv}
	local dp=/local/domain/$d vm
	vm=/vm/$(printf '00000000-0000-0000-0000-%012x' "$d")
	xs_domain_exists "$d"
	{
		printf 'rm\t%s\n' "$dp"
		printf 'mkdir\t%s\nchmod\t%s\tn0 r%s\n' "$dp" "$dp" "$d"
		printf 'rm\t%s\n' "$vm"
		printf 'mkdir\t%s\nchmod\t%s\tn0 r%s\n' "$vm" "$vm" "$d"
		printf 'write\t%s\t%s\n' "$dp/vm" "$vm" "$dp/name" "$name" \
			"$vm/uuid" "${vm#/vm/}" "$vm/name" "$name"
		printf 'mkdir\t%s\nchmod\t%s\tn%s\n' "$dp/device" "$dp/device" "$d"
		printf 'rm\t%s\nmkdir\t%s\nchmod\t%s\tn0\n' "/libxl/$d" "/libxl/$d" "/libxl/$d"
		printf 'write\t%s\t%s\n' "/libxl/$d/type" "$type"
	} | xs_txn || fail "libxl_add_domain $d: xenstore transaction failed"
	"$XS_TOOLS/xs-introduce" "$d" || fail "libxl_add_domain $d: XS_INTRODUCE failed"
}

# libxl_add_vif DOMID DEVID [key=value ...]: exactly what libxl 4.17 writes
# for a new vif (libxl__device_add_async, libxl__set_xenstore_nic,
# libxl__device_generic_add), in one transaction and in libxl's order,
# with libxl's permissions; then what netback_probe writes (features,
# state 2 = InitWait). Keys (all optional):
#   script=PATH|NAME (default vif-bridge; relative to /etc/xen/scripts)
#   mac=XX:..  (default 00:16:3e:<domid hi>:<domid lo>:<devid>)
#   bridge=BR  (default xenbr0)   vifname=NAME   ip="A [B...]"
#   gatewaydev=DEV   rate=BYTES,USECS   mtu=N (backend key only if != 1500)
#   type=vif|vif_ioemu|ioemu   trusted=1|0   forwarddev=DEV
#   model=M (accepted, but libxl never writes it to xenstore)
# The domain's own nodes (libxl_add_domain) are made first if missing
# (an hvm domain for type vif_ioemu).
libxl_add_vif() {
	local d=$1 n=$2
	shift 2
	local -A k=(
		[script]=vif-bridge [bridge]=xenbr0 [type]=vif [trusted]=1 [mtu]=1500
		[mac]=$(printf '00:16:3e:%02x:%02x:%02x' $((d >> 8 & 255)) $((d & 255)) $((n & 255)))
	)
	local kv key
	for kv in "$@"; do
		key=${kv%%=*}
		[ "$key" != "$kv" ] || fail "libxl_add_vif: '$kv' is not key=value"
		case $key in
		script | mac | bridge | vifname | ip | gatewaydev | rate | mtu | type | trusted | model | forwarddev) ;;
		*) fail "libxl_add_vif: unknown key '$key'" ;;
		esac
		k[$key]=${kv#*=}
	done
	case ${k[type]} in
	vif | vif_ioemu) ;;
	ioemu) k[type]=vif_ioemu ;;
	*) fail "libxl_add_vif: type must be vif or vif_ioemu" ;;
	esac
	case ${k[rate]:-} in
	'' | [0-9]*,[0-9]*) ;;
	*) fail "libxl_add_vif: rate is BYTES,USECS as libxl writes it" ;;
	esac
	[ "${k[script]#/}" != "${k[script]}" ] || k[script]=$XEN_SCRIPT_DIR/${k[script]}

	if ! xs_exists "/local/domain/$d/name"; then
		if [ "${k[type]}" = vif_ioemu ]; then
			libxl_add_domain "$d" "guest$d" hvm
		else
			libxl_add_domain "$d"
		fi
	fi

	local be=/local/domain/0/backend/vif/$d/$n fe=/local/domain/$d/device/vif/$n
	local lp=/libxl/$d/device/vif/$n
	# Backend entries, in libxl's order (device_add_async, then
	# set_xenstore_nic).
	local -a bents=(frontend-id "$d" online 1 state 1 script "${k[script]}")
	[ -n "${k[vifname]:-}" ] && bents+=(vifname "${k[vifname]}")
	[ -n "${k[forwarddev]:-}" ] && bents+=(forwarddev "${k[forwarddev]}")
	bents+=(mac "${k[mac]}")
	[ -n "${k[ip]:-}" ] && bents+=(ip "${k[ip]}")
	[ -n "${k[gatewaydev]:-}" ] && bents+=(gatewaydev "${k[gatewaydev]}")
	[ -n "${k[rate]:-}" ] && bents+=(rate "${k[rate]}")
	[ "${k[mtu]}" != 1500 ] && bents+=(mtu "${k[mtu]}")
	bents+=(bridge "${k[bridge]}" handle "$n" type "${k[type]}" hotplug-status "")
	local -a fents=(backend-id 0 state 1 handle "$n" mac "${k[mac]}" trusted "${k[trusted]}")
	local i
	{
		printf 'rm\t%s\n' "$lp"
		printf 'write\t%s\t%s\n' "$lp/frontend" "$fe" "$lp/backend" "$be"
		# frontend: the guest owns it, dom0 reads; mtu is read-only
		printf 'rm\t%s\nmkdir\t%s\nchmod\t%s\tn%s r0\n' "$fe" "$fe" "$fe" "$d"
		printf 'write\t%s\t%s\n' "$fe/backend" "$be"
		for ((i = 0; i < ${#fents[@]}; i += 2)); do
			printf 'write\t%s\t%s\nchmod\t%s\tn%s r0\n' "$fe/${fents[i]}" "${fents[i + 1]}" \
				"$fe/${fents[i]}" "$d"
		done
		printf 'write\t%s\t%s\nchmod\t%s\tn0 r%s\n' "$fe/mtu" "${k[mtu]}" "$fe/mtu" "$d"
		# backend: dom0 owns it, the guest reads
		printf 'rm\t%s\nmkdir\t%s\nchmod\t%s\tn0 r%s\n' "$be" "$be" "$be" "$d"
		printf 'write\t%s\t%s\n' "$be/frontend" "$fe"
		for ((i = 0; i < ${#bents[@]}; i += 2)); do
			printf 'write\t%s\t%s\n' "$be/${bents[i]}" "${bents[i + 1]}"
		done
		# libxl's own copy (it trusts only this one)
		for ((i = 0; i < ${#bents[@]}; i += 2)); do
			printf 'write\t%s\t%s\n' "$lp/${bents[i]}" "${bents[i + 1]}"
		done
	} | xs_txn || fail "libxl_add_vif $d $n: xenstore transaction failed"

	# netback_probe: features, then InitWait (this is what libxl waits for)
	{
		local f
		for f in feature-sg feature-gso-tcpv4 feature-gso-tcpv6 feature-ipv6-csum-offload \
			feature-rx-copy feature-multicast-control feature-dynamic-multicast-control \
			feature-split-event-channels feature-ctrl-ring feature-xdp-headroom; do
			printf 'write\t%s\t1\n' "$be/$f"
		done
		printf 'write\t%s\t%s\n' "$be/feature-rx-flip" 0 "$be/multi-queue-max-queues" "$(nproc)"
	} | xs_txn || fail "libxl_add_vif $d $n: netback features"
	xenstore-write "$be/state" 2
}

# netback_connect DOMID DEVID: the guest's netfront connects (frontend
# state 4); netback goes Connected (backend state 4) only once the script
# wrote hotplug-status=connected, as since Xen 4.17 / Linux netback's
# hotplug_status watch. Returns 1 if the backend cannot connect.
netback_connect() {
	local be=/local/domain/0/backend/vif/$1/$2 fe=/local/domain/$1/device/vif/$2
	xenstore-write "$fe/state" 4
	[ "$(xs_read "$be/hotplug-status")" = connected ] || return 1
	xenstore-write "$be/state" 4
}

# run_hotplug SCRIPT ACTION DOMID DEVID [TYPE_IF]: exec the script as libxl
# does (libxl__hotplug_nic, get_hotplug_env, libxl__exec): argv
# "SCRIPT ACTION type_if=T" (T defaults to vif for online/offline, tap for
# add/remove), libxl's variables set on top of our environment, stdin
# /dev/null, stdout to our stderr, in Dom0's namespace, SIGKILLed after
# 40 s. SCRIPT "" means the script key of libxl's copy, as libxl reads it.
# Returns the script's exit status (137 if killed); on failure prints
# libxl's error lines. Sets HOTPLUG_MS.
run_hotplug() {
	local script=$1 action=$2 d=$3 n=$4 type_if=${5:-}
	local lp=/libxl/$d/device/vif/$n be=backend/vif/$d/$n
	if [ -z "$type_if" ]; then
		case $action in add | remove) type_if=tap ;; *) type_if=vif ;; esac
	fi
	if [ -z "$script" ]; then
		script=$(xs_read "$lp/script") || {
			echo "libxl: error: unable to read script from $lp" >&2
			return 1
		}
	fi
	local nictype
	nictype=$(xs_read "$lp/type") || {
		echo "libxl: error: unable to read nic type from $lp" >&2
		return 1
	}
	local -a env=(script="$script" XENBUS_TYPE=vif XENBUS_PATH="$be" XENBUS_BASE_PATH=backend
		netdev="$(xs_read "/local/domain/0/$be/gatewaydev" || true)")
	[ "$nictype" = vif_ioemu ] && env+=(INTERFACE="vif$d.$n-emu")
	env+=(vif="vif$d.$n")
	mkdir -p /var/log/xen
	local rc=0 t0 t1
	t0=$(date +%s%N)
	ip netns exec "$DOM0" env "${env[@]}" \
		timeout -s KILL "$LIBXL_HOTPLUG_TIMEOUT" "$script" "$action" "type_if=$type_if" \
		</dev/null >&2 || rc=$?
	t1=$(date +%s%N)
	# shellcheck disable=SC2034 # for the tests
	HOTPLUG_MS=$(((t1 - t0) / 1000000))
	if [ "$rc" != 0 ]; then
		[ "$rc" = 137 ] && echo "libxl: error: killing execution of $script because of timeout" >&2
		echo "libxl: error: $script: $(xs_read "/local/domain/0/$be/hotplug-error" || true)" >&2
		echo "libxl: error: $script $action exited with error status $rc" >&2
	fi
	return "$rc"
}

# libxl_remove_vif DOMID DEVID [--netdev-gone]: libxl's
# initiate_device_generic_remove (online=0, state=5 = Closing, one
# transaction), then netback: Closed (6) and netback_remove deletes
# hotplug-status; --netdev-gone also deletes vifD.N in Dom0, as netback
# frees it before libxl runs the offline script. Run the offline script
# next, then libxl_destroy_vif.
libxl_remove_vif() {
	local d=$1 n=$2 be=/local/domain/0/backend/vif/$1/$2
	xs_exists "$be/state" || fail "libxl_remove_vif $d $n: no such device"
	printf 'write\t%s\t%s\n' "$be/online" 0 "$be/state" 5 | xs_txn ||
		fail "libxl_remove_vif $d $n: xenstore transaction failed"
	xs_exists "/local/domain/$d/device/vif/$n/state" &&
		xenstore-write "/local/domain/$d/device/vif/$n/state" 6
	xenstore-write "$be/state" 6
	xenstore-rm "$be/hotplug-status" 2>/dev/null || true
	if [ "${3:-}" = --netdev-gone ]; then
		ip -n "$DOM0" link del "vif$d.$n" 2>/dev/null || true
	fi
}

# libxl_destroy_vif DOMID DEVID: libxl__device_destroy, after the offline
# script: frontend, libxl copy and backend removed with their empty
# parents (libxl__xs_path_cleanup), one transaction.
libxl_destroy_vif() {
	printf 'cleanup\t%s\n' "/local/domain/$1/device/vif/$2" "/libxl/$1/device/vif/$2" \
		"/local/domain/0/backend/vif/$1/$2" | xs_txn ||
		fail "libxl_destroy_vif $1 $2: xenstore transaction failed"
}
