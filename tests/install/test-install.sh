#!/bin/sh
# A DESTDIR install as a distribution makes it (--prefix=/usr), then one
# with every directory moved: the files land where the options say, and
# the paths compiled into the programs follow sysconfdir, localstatedir
# and runstatedir. Needs no root: nothing outside its temporary directory.
set -eu
: "${SOURCE_ROOT:?}"
T=$(mktemp -d "${TMPDIR:-/tmp}/xennet-install.XXXXXX")
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
check_file() { [ -f "$1" ] || fail "missing $1"; }
check_exec() { if [ ! -x "$1" ] || [ ! -f "$1" ]; then fail "missing executable $1"; fi; }

# build_install NAME MESON-OPTIONS...: configure, build, install into $T/NAME/dest
build_install() {
	name=$1; shift
	meson setup "$T/$name/build" "$SOURCE_ROOT" "$@" >"$T/$name.log" 2>&1 ||
		{ cat "$T/$name.log"; fail "meson setup $*"; }
	ninja -C "$T/$name/build" xennetd xennet vif-xennet \
		man/xennetd.8 man/xennet.8 man/xennet.conf.5 man/vif-xennet.8 >>"$T/$name.log" 2>&1 ||
		{ tail -n 30 "$T/$name.log"; fail "build"; }
	DESTDIR="$T/$name/dest" meson install -C "$T/$name/build" --no-rebuild --quiet >>"$T/$name.log" 2>&1 ||
		{ tail -n 30 "$T/$name.log"; fail "meson install"; }
}

# check_layout DEST SBIN LIBEXEC XENSCRIPTS UNITDIR DOCDIR SYSCONF MANDIR
check_layout() {
	D=$1
	check_exec "$D$2/xennetd"
	check_exec "$D$2/xennet"
	check_exec "$D$3/xennet/vif-xennet"
	[ -L "$D$4/vif-xennet" ] || fail "$4/vif-xennet is not a link"
	[ "$(readlink "$D$4/vif-xennet")" = "$3/xennet/vif-xennet" ] ||
		fail "$4/vif-xennet points to $(readlink "$D$4/vif-xennet")"
	check_file "$D$5/xennetd.service"
	grep -qx "ExecStart=$2/xennetd --foreground" "$D$5/xennetd.service" ||
		fail "the unit does not start $2/xennetd"
	grep -qx "ExecReload=$2/xennet reload" "$D$5/xennetd.service" ||
		fail "the unit does not reload with $2/xennet"
	for p in bridged routed nat; do check_file "$D$6/examples/$p.conf"; done
	check_file "$D$7/iproute2/rt_protos.d/xennet.conf"
	grep -Eq '^120[[:space:]]+xennet$' "$D$7/iproute2/rt_protos.d/xennet.conf" ||
		fail "rt_protos.d/xennet.conf does not name protocol 120"
	for m in man8/xennetd.8 man8/xennet.8 man8/vif-xennet.8 man5/xennet.conf.5; do
		check_file "$D$8/$m"
	done
	# The pages name the paths of this install (roff writes ".\&").
	sed 's/\\&//g' "$D$8/man5/xennet.conf.5" | grep -qF "$7/xennet/xennet.conf" ||
		fail "xennet.conf(5) does not name $7/xennet/xennet.conf"
	# Nothing is installed as a profile: the host's own goes there.
	[ ! -e "$D$7/xennet/xennet.conf" ] || fail "a profile was installed in $7/xennet"
}

# check_paths DEST SBIN PROFILE SOCKET STATE: what the programs say they use
check_paths() {
	help=$(env -u XENNET_SOCKET "$1$2/xennetd" --help)
	echo "$help" | grep -qF "(default $3," || fail "xennetd's default profile is not $3: $help"
	echo "$help" | grep -qF "or $4)" || fail "xennetd's default socket is not $4: $help"
	echo "$help" | grep -qF "(default $5)" || fail "xennetd's default state directory is not $5: $help"
	help=$(env -u XENNET_SOCKET "$1$2/xennet" --help)
	echo "$help" | grep -qF "$4;" || fail "xennet's default socket is not $4"
	echo "$help" | grep -qF "to $5." || fail "xennet's default state directory is not $5"
	for p in xennetd xennet; do
		"$1$2/$p" --version | grep -qx "$p [0-9.]*" || fail "$p --version"
		"$1$2/$p" -V | grep -qx "$p [0-9.]*" || fail "$p -V"
	done
	# vif-xennet asks the daemon at the compiled-in socket: its binary holds it.
	grep -qaF "$4" "$1$6" || fail "vif-xennet does not use $4"
}

build_install usr --prefix=/usr
D=$T/usr/dest
check_layout "$D" /usr/sbin /usr/libexec /etc/xen/scripts /usr/lib/systemd/system \
	/usr/share/doc/xennet /etc /usr/share/man
check_paths "$D" /usr/sbin /etc/xennet/xennet.conf /run/xennet/control.sock /var/lib/xennet \
	/usr/libexec/xennet/vif-xennet
echo "ok: --prefix=/usr"

build_install opt --prefix=/opt/xn -Dsysconfdir=/opt/xn/conf -Dlocalstatedir=/opt/xn/state \
	-Drunstatedir=/opt/xn/run -Dxen_scripts_dir=/opt/xen/scripts \
	-Dsystemdsystemunitdir=/opt/xn/units -Dlibexecdir=lib/xn
D=$T/opt/dest
check_layout "$D" /opt/xn/sbin /opt/xn/lib/xn /opt/xen/scripts /opt/xn/units \
	/opt/xn/share/doc/xennet /opt/xn/conf /opt/xn/share/man
check_paths "$D" /opt/xn/sbin /opt/xn/conf/xennet/xennet.conf /opt/xn/run/xennet/control.sock \
	/opt/xn/state/lib/xennet /opt/xn/lib/xn/xennet/vif-xennet
echo "ok: every directory moved"
