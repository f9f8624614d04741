#!/bin/bash
# What the real toolstack needs of a hotplug script (issue 12,
# shared/xen-hotplug-spec.md section 7), replayed against the real
# xenstored:
# - hotplug-status is written only in answer to the script libxl ran (a
#   connected status before it lets a running guest take the backend to
#   state 4 before libxl sees 2, and the attach times out);
# - a request whose script has given up, or that is older than 30 s, is
#   not carried out later;
# - online on a connected vif re-applies the backend keys as they are now
#   (also when they changed while xennetd was stopped);
# - every vif event is one line of the daemon's log.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/xenstore.sh"
: "${VIF_XENNET:?}"
export XENNET_SOCKET=$T/ctl.sock

make_lan_and_dom0
start_xenstored
bridged_profile "$T/bridged.conf"
start_daemon "$T/bridged.conf"

master_of() { ip -n "$DOM0" -j link show "$1" | jq -r '.[0].master'; }
# The as_ip4 elements, one "VIF ADDRESS" a line.
as_ip4() {
	in_ns "$DOM0" nft list set bridge xennet as_ip4 | tr -d '\n\t' |
		grep -o '"[^"]*" \. [0-9a-f.:/]*' | sed 's/"//g; s/ \. / /' || true
}
log_has() { grep -q "$1" "$T/daemon.log"; }
wait_log() { for _ in $(seq 100); do log_has "$1" && return 0; sleep 0.05; done; return 1; }

# 1. Backend and device there, the script not run yet: nothing is written,
#    nothing attached; a running guest's frontend cannot connect.
make_guest 1 192.168.50.11/24 "$LAN_IP"
libxl_add_vif 1 0 bridge=xenbr0 "mac=$(mac_of "$(guest 1)" eth0)" ip=192.168.50.11 script="$VIF_XENNET"
sleep 1
expect_eq "before the script runs, hotplug-status stays as libxl wrote it" "" \
	"$(xs_read backend/vif/1/0/hotplug-status)"
expect_eq "and vif1.0 is attached nowhere" null "$(master_of vif1.0)"
expect_not "a running guest's frontend cannot take the backend to state 4 yet" netback_connect 1 0
expect_eq "backend state stays 2 (InitWait), what libxl waits for" 2 "$(xs_read backend/vif/1/0/state)"
expect "the script libxl runs then: online exits 0" run_hotplug "$VIF_XENNET" online 1 0
expect_eq "hotplug-status connected" connected "$(xs_read backend/vif/1/0/hotplug-status)"
expect_eq "vif1.0 on xenbr0" xenbr0 "$(master_of vif1.0)"
expect "the log says so, with the domain's name" log_has "vif 1/0 (vif1.0, domain guest1): connected"
expect "guest 1 reaches the LAN" ping_from "$(guest 1)" "$LAN_IP"

# 2. The keys of a connected vif change; online again re-applies them.
xenstore-write /local/domain/0/backend/vif/1/0/ip 192.168.50.21
expect "online after ip changed exits 0" run_hotplug "$VIF_XENNET" online 1 0
expect_eq "anti-spoofing now has the new address only" "vif1.0 192.168.50.21" "$(as_ip4 | grep vif1.0)"
expect "the log says it was configured again" log_has "vif 1/0 (vif1.0, domain guest1): backend keys changed"
set +e
exchange udp "$(guest 1)" "$LAN" "$LAN_IP" 7701 >/dev/null 2>&1
rc=$?
set -e
expect_eq "a packet from the old, now unassigned address is dropped" 1 "$rc"
ip -n "$(guest 1)" addr add 192.168.50.21/24 dev eth0
src=$(NETCHECK_SRC=192.168.50.21 exchange udp "$(guest 1)" "$LAN" "$LAN_IP" 7702) ||
	fail "a packet from the new address does not pass"
expect_eq "the new address passes" 192.168.50.21 "$src"
# A hostile value: online fails, the vif is undone.
xenstore-write /local/domain/0/backend/vif/1/0/ip "192.168.50.21;reboot"
expect_not "online with a hostile ip fails" run_hotplug "$VIF_XENNET" online 1 0
expect "hotplug-error names the key" grep -q 'backend/vif/1/0/ip' <<<"$(xs_read backend/vif/1/0/hotplug-error)"
expect_eq "hotplug-status error" error "$(xs_read backend/vif/1/0/hotplug-status)"
expect_eq "vif1.0 attached nowhere" null "$(master_of vif1.0)"
expect_eq "no filter element left for vif1.0" "" "$(as_ip4 | grep vif1.0 || true)"
expect "the failure is logged at error with the hotplug-error" log_has "vif 1/0 (vif1.0, domain guest1): failed: backend/vif/1/0/ip"
xenstore-write /local/domain/0/backend/vif/1/0/ip 192.168.50.11
expect "fixed: online exits 0" run_hotplug "$VIF_XENNET" online 1 0
expect_eq "back on xenbr0" xenbr0 "$(master_of vif1.0)"

# 3. Changed while xennetd is stopped: the restart does not adopt the saved
#    record over xenstore.
stop_daemon
xenstore-write /local/domain/0/backend/vif/1/0/ip 192.168.50.31
start_daemon "$T/bridged.conf"
for _ in $(seq 50); do [ "$(as_ip4 | grep vif1.0)" = "vif1.0 192.168.50.31" ] && break; sleep 0.1; done
expect_eq "after the restart anti-spoofing has the address xenstore has now" "vif1.0 192.168.50.31" \
	"$(as_ip4 | grep vif1.0)"
expect_eq "and vif1.0 is still on xenbr0" xenbr0 "$(master_of vif1.0)"
xenstore-write /local/domain/0/backend/vif/1/0/ip 192.168.50.11
expect "online with the first address again" run_hotplug "$VIF_XENNET" online 1 0
stop_daemon
start_daemon "$T/bridged.conf"
expect "an unchanged vif is adopted, and the log says so" wait_log "vif 1/0 (vif1.0, domain guest1): adopted"

# 4. A request its script gave up on: xennetd was stopped while the script
#    waited; the script was killed (as libxl does at 40 s) and reported
#    failure. When xennetd runs again it must not attach the vif.
make_guest 2 192.168.50.12/24 "$LAN_IP"
libxl_add_vif 2 0 bridge=xenbr0 "mac=$(mac_of "$(guest 2)" eth0)" ip=192.168.50.12 script="$VIF_XENNET"
kill -STOP "$DPID"
LIBXL_HOTPLUG_TIMEOUT=2 run_hotplug "$VIF_XENNET" online 2 0 2>/dev/null && fail "the script should have been killed"
xenstore-write /local/domain/0/backend/vif/2/0/hotplug-error "killed" \
	/local/domain/0/backend/vif/2/0/hotplug-status error
kill -CONT "$DPID"
sleep 1
expect_eq "the vif of a script that gave up is not attached" null "$(master_of vif2.0)"
expect_eq "hotplug-status stays error" error "$(xs_read backend/vif/2/0/hotplug-status)"
expect "the dropped request is logged" log_has "vif 2/0 (vif2.0, domain guest2): request not carried out: its hotplug script has gone"
# A request sent more than 30 s ago (a time from the script) is refused.
reply=$(in_ns "$DOM0" perl -e '
	use IO::Socket::UNIX;
	my $s = IO::Socket::UNIX->new(Type => SOCK_STREAM, Peer => $ARGV[0]) or die "connect: $!";
	my $req = join("\0", "hotplug", "online", "2", "0", "1") . "\0";
	print $s pack("L", length $req), $req;
	read($s, my $hdr, 8) == 8 or die "no reply";
	my ($st, $len) = unpack("LL", $hdr);
	read($s, my $body, $len);
	print "$st $body";' "$T/ctl.sock")
expect "an online request sent long ago is refused ($reply)" grep -q "older than 30 s" <<<"$reply"
expect_eq "and not carried out" null "$(master_of vif2.0)"
expect "the script libxl runs next succeeds" run_hotplug "$VIF_XENNET" online 2 0
expect_eq "vif2.0 on xenbr0" xenbr0 "$(master_of vif2.0)"

# 5. offline is logged too.
expect "offline exits 0" run_hotplug "$VIF_XENNET" offline 2 0
expect "the log says offline" log_has "vif 2/0 (vif2.0, domain guest2): offline"
