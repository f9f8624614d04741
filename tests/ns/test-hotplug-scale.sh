#!/bin/bash
# 200 vifs hot-plugged at once, as libxl starts the scripts of many
# domains in parallel: the scripts start before netback has made the
# devices, so every request waits in the daemon until its device appears.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/xenstore.sh"
: "${VIF_XENNET:?}"
export XENNET_SOCKET=$T/ctl.sock
N=${XENNET_SCALE_VIFS:-200}

make_lan_and_dom0
start_xenstored
cat >"$T/bridged.conf" <<CONF
[xennet]
mode = bridged
[bridge xenbr0]
mtu = 1500
CONF
start_daemon "$T/bridged.conf"
GUESTS=${P}guests
new_ns "$GUESTS"

for i in $(seq "$N"); do
	libxl_add_vif "$i" 0 bridge=xenbr0 ip="10.1.$((i / 250)).$((i % 250 + 1))" script="$VIF_XENNET"
done
pids=()
for i in $(seq "$N"); do
	run_hotplug "$VIF_XENNET" online "$i" 0 >"$T/hp.$i" 2>&1 &
	pids+=($!)
done
# Now netback "creates" the devices.
for i in $(seq "$N"); do
	echo "link add vif$i.0 type veth peer name g$i netns $GUESTS"
done | ip -n "$DOM0" -batch -
failed=0
for i in "${!pids[@]}"; do
	if ! wait "${pids[i]}"; then
		failed=$((failed + 1))
		[ "$failed" -gt 3 ] || echo "script $((i + 1)): $(cat "$T/hp.$((i + 1))")" >&2
	fi
done
expect_eq "all $N scripts exit 0" 0 "$failed"
connected=$(xenstore-ls /local/domain/0/backend/vif | grep -c 'hotplug-status = "connected"')
expect_eq "all $N report hotplug-status connected" "$N" "$connected"
ports=$(ip -n "$DOM0" -j link show master xenbr0 | jq 'length')
expect_eq "all $N are ports of xenbr0" "$N" "$ports"
elems=$(nft_json | jq '[.nftables[] | select(.set.family == "bridge" and .set.name == "as_ports") | .set.elem[]?] | length')
expect_eq "all $N are under anti-spoofing" "$N" "$elems"
errors=$(cat "$T"/hp.* | grep -c . || true)
expect_eq "no script printed an error" 0 "$errors"
