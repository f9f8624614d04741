#!/bin/sh
# Builds (once) the Debian 12 image the systemd boot test boots with
# systemd-nspawn, and prints its path. Cached under $XENNET_IMAGE_CACHE
# (default /var/cache/xennet-test) so CI reuses it; a half-built image
# is never used (it is built aside and renamed when complete).
set -eu
cache=${XENNET_IMAGE_CACHE:-/var/cache/xennet-test}
image=$cache/bookworm
# The packages the image must have; a change here builds it anew.
include=systemd,systemd-sysv,dbus,iproute2,nftables,procps,libsystemd0,libnl-3-200,libnl-route-3-200,libnftnl11,libmnl0,libinih1,libxenstore4,iputils-ping
stamp=$(printf '%s\n' "$include" | cksum | cut -d' ' -f1)
if [ -f "$image/.xennet-image-$stamp" ]; then
	echo "$image"
	exit 0
fi
mirror=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n 1)
mirror=${mirror:-http://deb.debian.org/debian}
mkdir -p "$cache"
rm -rf "$image.new" "$image"
debootstrap --variant=minbase --include="$include" bookworm "$image.new" "$mirror" >"$cache/debootstrap.log" 2>&1 || {
	tail -n 20 "$cache/debootstrap.log" >&2
	exit 1
}
touch "$image.new/.xennet-image-$stamp"
mv "$image.new" "$image"
echo "$image"
