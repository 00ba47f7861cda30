#!/bin/sh
# Build, once, the root file system that tests/systemd.rs boots under systemd-nspawn: a minimal
# Debian of the host's release with systemd as its init (debootstrap --variant=minbase, plus
# systemd and systemd-sysv; about 240 MB, under a minute with a nearby mirror). The test never
# changes it: each run mounts an overlay on top of it.
#
#   tests/lab/systemd-rootfs.sh [DIR]     (root; default target/systemd-rootfs)
#
# DIR may also come from HB_SYSTEMD_ROOTFS, the variable the test reads. A finished tree is
# marked by DIR/.hb-systemd-rootfs and reused as it is; a tree without the mark is built anew.
# The Debian mirror is HB_DEBIAN_MIRROR, else the first one in the host's apt sources, else
# debootstrap's default; the suite is the host's (VERSION_CODENAME in /etc/os-release).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
dir=${1:-${HB_SYSTEMD_ROOTFS:-$(dirname "$(dirname "$here")")/target/systemd-rootfs}}
mark=$dir/.hb-systemd-rootfs

if [ -e "$mark" ] && [ -x "$dir/lib/systemd/systemd" ]; then
	echo "systemd-rootfs: $dir is ready ($(cat "$mark"))"
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "systemd-rootfs: must run as root (debootstrap)" >&2
	exit 1
fi
command -v debootstrap >/dev/null || {
	echo "systemd-rootfs: debootstrap is missing (apt-get install debootstrap)" >&2
	exit 1
}

# shellcheck source=/dev/null
suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
[ -n "$suite" ] || {
	echo "systemd-rootfs: no VERSION_CODENAME in /etc/os-release" >&2
	exit 1
}

# The host's own mirror: deb822 sources first (URIs: of a stanza that has the suite itself),
# then the one-line format.
host_mirror() {
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -r "$f" ] || continue
		awk -v suite="$suite" '
			/^[[:space:]]*$/ { if (uri != "" && has) exit; uri = ""; has = 0; next }
			tolower($1) == "uris:" { uri = $2 }
			tolower($1) == "suites:" { for (i = 2; i <= NF; i++) if ($i == suite) has = 1 }
			END { if (uri != "" && has) print uri }
		' "$f" | head -n1
	done | head -n1
	if [ -r /etc/apt/sources.list ]; then
		awk -v suite="$suite" '$1 == "deb" && $0 !~ /\[/ && $3 == suite { print $2; exit }' \
			/etc/apt/sources.list
	fi
}
mirror=${HB_DEBIAN_MIRROR:-$(host_mirror | head -n1)}

tmp=$dir.tmp.$$
trap 'rm -rf "$tmp"' EXIT
rm -rf "$dir" "$tmp"
mkdir -p "$(dirname "$dir")"
echo "systemd-rootfs: debootstrap $suite into $dir${mirror:+ from $mirror}"
# shellcheck disable=SC2086 # an empty mirror is no argument at all
debootstrap --variant=minbase --include=systemd,systemd-sysv "$suite" "$tmp" $mirror
[ -x "$tmp/lib/systemd/systemd" ] || {
	echo "systemd-rootfs: no /lib/systemd/systemd in the new tree" >&2
	exit 1
}
# A machine id of its own is made at each boot (the test's overlay starts empty).
: >"$tmp/etc/machine-id"
echo "debian $suite, $(date -u '+%Y-%m-%d %H:%M:%S UTC')" >"$tmp/.hb-systemd-rootfs"
mv "$tmp" "$dir"
trap - EXIT
echo "systemd-rootfs: ready"
