# xenstore for the hotplug tests: the real xenstored from xen-utils-4.17,
# run under the LD_PRELOAD shim (tests/xs/xs-shim.c) in the test's temp
# directory, and functions that replay what libxl 4.17 writes and runs
# (shared/xen-hotplug-spec.md, sections 1 and 2). Source after lib.sh.
: "${XS_SHIM:?}"
XENSTORED=${XENSTORED:-/usr/lib/xen-4.17/bin/xenstored}

start_xenstored() {
	mkdir -p "$T/xs"
	XENSTORED_RUNDIR=$T/xs LD_PRELOAD=$XS_SHIM "$XENSTORED" -N >"$T/xs/log" 2>&1 &
	BG_PIDS+=($!)
	export XENSTORED_PATH=$T/xs/socket
	for _ in $(seq 100); do
		[ -S "$XENSTORED_PATH" ] && xenstore-read / >/dev/null 2>&1 && return 0
		sleep 0.05
	done
	fail "xenstored did not start: $(cat "$T/xs/log")"
}

xs_read() {
	xenstore-read "$1" 2>/dev/null || true
}

# libxl_add_vif DOMID DEVID [key=value ...]: what libxl writes for a new
# vif (libxl__device_add_async + libxl__set_xenstore_nic), in one
# transaction, with libxl's permissions; then netback's state=2.
libxl_add_vif() {
	local d=$1 n=$2
	shift 2
	local be=/local/domain/0/backend/vif/$d/$n fe=/local/domain/$d/device/vif/$n
	local -A k=([bridge]=xenbr0 [mac]=$(printf '00:16:3e:%02x:%02x:%02x' $((d / 256 % 256)) $((d % 256)) "$n")
		[script]=/etc/xen/scripts/vif-bridge [type]=vif)
	local kv
	for kv in "$@"; do k[${kv%%=*}]=${kv#*=}; done
	local args=("$be/frontend" "$fe" "$be/frontend-id" "$d" "$be/online" 1 "$be/state" 1
		"$be/handle" "$n" "$be/hotplug-status" "")
	for key in "${!k[@]}"; do args+=("$be/$key" "${k[$key]}"); done
	args+=("$fe/backend" "$be" "$fe/backend-id" 0 "$fe/state" 1 "$fe/handle" "$n"
		"$fe/mac" "${k[mac]}" "$fe/mtu" "${k[mtu]:-1500}" "$fe/trusted" 1
		"/libxl/$d/device/vif/$n/frontend" "$fe" "/libxl/$d/device/vif/$n/backend" "$be"
		"/local/domain/$d/name" "guest$d")
	xenstore-write "${args[@]}"
	xenstore-chmod -r "$be" n0 "r$d"
	xenstore-chmod -r "$fe" "n$d" r0
	xenstore-chmod "$fe/mtu" n0 "r$d"
	xenstore-write "$be/state" 2 # netback_probe: InitWait
}

# libxl__initiate_device_generic_remove, then netback's Closed.
libxl_remove_vif() {
	local be=/local/domain/0/backend/vif/$1/$2
	xenstore-write "$be/online" 0 "$be/state" 5
	xenstore-write "$be/state" 6
}

# libxl__device_destroy after the offline script.
libxl_destroy_vif() {
	xenstore-rm "/local/domain/0/backend/vif/$1/$2"
	xenstore-rm "/local/domain/$1/device/vif/$2"
	xenstore-rm "/libxl/$1/device/vif/$2"
}

# run_hotplug SCRIPT ACTION DOMID DEVID [tap]: exec the script as libxl
# does (argv, environment on top of ours, stdin /dev/null, 40 s limit) in
# Dom0's namespace. Returns its exit status.
run_hotplug() {
	local script=$1 action=$2 d=$3 n=$4 kind=${5:-vif}
	local be=backend/vif/$d/$n
	local env=(script="$script" XENBUS_TYPE=vif XENBUS_PATH="$be" XENBUS_BASE_PATH=backend
		netdev="$(xs_read "/local/domain/0/$be/gatewaydev")" vif="vif$d.$n")
	if [ "$(xs_read "/local/domain/0/$be/type")" = vif_ioemu ]; then
		env+=(INTERFACE="vif$d.$n-emu")
	fi
	ip netns exec "$DOM0" env "${env[@]}" timeout -s KILL 40 \
		"$script" "$action" "type_if=$kind" </dev/null
}
