#!/bin/bash
# rootfs.sh builds (once) the Debian bookworm minbase root filesystem that the
# workload corpus (tests/workloads) runs in, and prints its path.
#
#   hack/rootfs.sh            build unless cached; print the rootfs directory
#   hack/rootfs.sh --path     print where it would be, build nothing
#
# The rootfs is cached in $ZVIZ_ROOTFS_CACHE (default /var/cache/zviz-test)
# as rootfs-bookworm-HASH, HASH being a digest of the recipe below: change the
# recipe and the next run builds a new one (and removes the old ones). It is
# built in a temporary directory next to it and renamed into place at the end,
# so a directory with the right name is always complete. Concurrent callers
# wait on a lock; the second one finds the first one's result.
#
# Must run as root (debootstrap chroots and creates device nodes and files
# owned by many users). The Debian mirror is the one apt on this machine uses
# for bookworm main (apt-get indextargets), or $ZVIZ_DEBIAN_MIRROR; an apt
# HTTP proxy (Acquire::http::Proxy) is honoured. Messages go to stderr; only
# the path goes to stdout.
set -euo pipefail

die() { echo "rootfs.sh: $*" >&2; exit 1; }
say() { echo "rootfs.sh: $*" >&2; }

# --- the recipe: everything that changes the result goes in here -----------
SUITE=bookworm
VARIANT=minbase
# What the workloads run: python3 (threads, sockets, sqlite3, multiprocessing),
# git, nodejs, tar with gzip and xz, bash, coreutils, findutils, procps, and
# getent (libc-bin). No ca-certificates: the workloads never leave loopback.
INCLUDE=python3,git,nodejs,xz-utils,procps,bash,coreutils,tar,gzip,findutils,libc-bin
# Directories the tests mount over: /work is the workloads' writable cwd
# and HOME, /opt/workloads holds their scripts (both mounted by the test; a
# rootless runtime cannot create mount points in a root-owned rootfs).
MOUNTPOINTS=(/work /opt/workloads)
# Bump when the steps after debootstrap change.
POSTPROCESS=2
ARCH=$(dpkg --print-architecture)

recipe() {
	printf 'suite=%s\nvariant=%s\narch=%s\ninclude=%s\nmountpoints=%s\npostprocess=%s\n' \
		"$SUITE" "$VARIANT" "$ARCH" "$INCLUDE" "${MOUNTPOINTS[*]}" "$POSTPROCESS"
}

CACHE=${ZVIZ_ROOTFS_CACHE:-/var/cache/zviz-test}
HASH=$(recipe | sha256sum | cut -c1-16)
NAME=rootfs-$SUITE-$HASH
DEST=$CACHE/$NAME
STAMP=etc/zviz-rootfs.recipe # inside the rootfs: the recipe, then the build record

cached() { [[ -f $DEST/$STAMP ]] && cmp -s <(recipe) <(head -n "$(recipe | wc -l)" "$DEST/$STAMP"); }

if [[ ${1:-} == --path ]]; then
	echo "$DEST"
	exit 0
fi
[[ $# -eq 0 ]] || die "usage: rootfs.sh [--path]"

if cached; then
	echo "$DEST"
	exit 0
fi

[[ $(id -u) -eq 0 ]] || die "must run as root to build $DEST (debootstrap needs it; try: sudo hack/rootfs.sh)"
command -v debootstrap >/dev/null || die "debootstrap not installed (run hack/setup.sh as root)"

# The cache must be traversable by the unprivileged test user, who reads the
# rootfs through a bind mount.
install -d -m 0755 "$CACHE"
exec 9>"$CACHE/.lock"
flock 9
if cached; then # built by whoever held the lock before us
	echo "$DEST"
	exit 0
fi

# --- where the packages come from -------------------------------------------
mirror=${ZVIZ_DEBIAN_MIRROR:-}
if [[ -z $mirror ]]; then
	# shellcheck disable=SC2016 # apt's format syntax, not the shell's
	mirror=$(apt-get indextargets --format '$(REPO_URI)' "Release: $SUITE" 'Component: main' \
		'Identifier: Packages' 2>/dev/null | head -n1 || true)
fi
[[ -n $mirror ]] || die "no Debian mirror: apt has no '$SUITE main' source (apt-get indextargets); set ZVIZ_DEBIAN_MIRROR"
proxy=$(apt-config dump --format '%v%n' Acquire::http::Proxy 2>/dev/null | head -n1 || true)
if [[ -n $proxy && $proxy != DIRECT && -z ${http_proxy:-} ]]; then
	export http_proxy=$proxy
fi
keyring=()
for k in /usr/share/keyrings/debian-archive-keyring.gpg /etc/apt/trusted.gpg.d/debian-archive-$SUITE-stable.gpg; do
	if [[ -f $k ]]; then
		keyring=(--keyring="$k")
		break
	fi
done
((${#keyring[@]})) || die "no Debian archive keyring (apt-get install debian-archive-keyring): refusing to build unverified"

# --- build ------------------------------------------------------------------
if [[ -e $DEST ]]; then # incomplete or damaged (no matching stamp)
	say "removing $DEST: it does not match the recipe"
	rm -rf --one-file-system "$DEST"
fi
tmp=$(mktemp -d "$CACHE/.build-$NAME.XXXXXX")
cleanup() {
	# debootstrap leaves /proc (and sometimes /sys) mounted in the target
	# when it fails half way.
	local m
	for m in proc sys dev/pts; do
		mountpoint -q "$tmp/$m" 2>/dev/null && umount -l "$tmp/$m"
	done
	rm -rf --one-file-system "$tmp"
}
trap cleanup EXIT

say "building $DEST ($SUITE $VARIANT + $INCLUDE from $mirror); takes a few minutes"
start=$SECONDS
log=$CACHE/.build-$NAME.log
if ! debootstrap --variant="$VARIANT" --arch="$ARCH" --include="$INCLUDE" "${keyring[@]}" \
	"$SUITE" "$tmp" "$mirror" >"$log" 2>&1; then
	tail -n 30 "$log" >&2
	[[ -f $tmp/debootstrap/debootstrap.log ]] && tail -n 30 "$tmp/debootstrap/debootstrap.log" >&2
	die "debootstrap failed (log: $log)"
fi

# Post-processing: drop the package caches (they are only for apt, which the
# workloads never run), replace the files debootstrap copied from this host
# (resolv.conf, hostname: host data has no place in a shared cache), write
# the /etc/hosts a Debian installer would (getent hosts localhost reads it:
# minbase has none), and add the mount points.
rm -rf "$tmp"/var/cache/apt/archives/*.deb "$tmp"/var/lib/apt/lists/*_* "$tmp"/debootstrap
printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >"$tmp/etc/hosts"
echo zviz >"$tmp/etc/hostname"
echo '# no name servers: the workloads stay on loopback' >"$tmp/etc/resolv.conf"
chmod 0644 "$tmp/etc/hosts" "$tmp/etc/hostname" "$tmp/etc/resolv.conf"
for m in "${MOUNTPOINTS[@]}"; do
	install -d -m 0755 "$tmp$m"
done
chmod 0755 "$tmp"
{
	recipe
	echo "mirror=$mirror"
	echo "built=$(date -u +%Y-%m-%dT%H:%M:%SZ) in $((SECONDS - start))s"
	# shellcheck disable=SC2016 # dpkg-query's format syntax
	chroot "$tmp" dpkg-query -W -f '${Package} ${Version}\n' | sed 's/^/package=/'
} >"$tmp/$STAMP"

mv -T "$tmp" "$DEST"
trap - EXIT
rm -f "$log"
say "built $DEST in $((SECONDS - start))s ($(du -sh --one-file-system "$DEST" | cut -f1))"

# Rootfs trees of older recipes are dead weight (a few hundred MB each).
for old in "$CACHE"/rootfs-"$SUITE"-*; do
	[[ -d $old && $old != "$DEST" ]] || continue
	say "removing $old (another recipe)"
	rm -rf --one-file-system "$old"
done
echo "$DEST"
