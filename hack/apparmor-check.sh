#!/bin/bash
# apparmor-check.sh compile-checks AppArmor profiles with the apparmor_parser
# of a Debian suite, run in a cached minbase chroot of that suite.
#
#   hack/apparmor-check.sh PROFILE...            check with trixie's parser (4.1)
#   hack/apparmor-check.sh --suite S PROFILE...  check with suite S's parser
#   hack/apparmor-check.sh [--suite S] --path    print where the chroot would be
#   hack/apparmor-check.sh [--suite S] --build   build unless cached; print it
#
# Why a chroot: zviz's profile (apparmor/) is AppArmor 4 syntax (`abi
# <abi/4.0>`, the `userns` rule), and this host's bookworm apparmor_parser is
# 3.0.8, which predates both and rejects the profile. Trixie ships 4.1.
# `--suite bookworm` is there to show that (apparmor/'s tests do).
#
# Each PROFILE is fed to `chroot DIR apparmor_parser -Q -K` on stdin (-Q: do
# not load it into the kernel, -K: no cache), so the profile is parsed and
# compiled with the chroot's /etc/apparmor.d (abi/, tunables/, abstractions/)
# and the cached chroot is never written. The parser warns that the kernel
# interface is missing (this kernel has no AppArmor); its exit status is what
# counts.
#
# Exit status: 0 every profile compiles; 1 some profile was rejected (the
# parser's messages are on stderr); 2 usage or environment (not root, no
# debootstrap, no mirror, the chroot build failed) — so a caller can tell a
# rejected profile from a broken set-up.
#
# The chroot is cached in $ZVIZ_APPARMOR_CACHE (default /var/cache/zviz-test)
# as SUITE-apparmor-HASH, HASH a digest of the recipe below: change the recipe
# and the next run builds a new one (and removes the old ones). It is built in
# a temporary directory next to it and renamed into place at the end, so a
# directory with that name is always complete; concurrent callers wait on a
# lock and the second finds the first one's result. The first build takes
# about two minutes.
#
# Must run as root (debootstrap and chroot). The Debian mirror is the one apt
# on this machine uses for SUITE main, else the one it uses for the host's own
# suite (the same archive serves both), else $ZVIZ_DEBIAN_MIRROR, read at run
# time with apt-get indextargets; an apt HTTP proxy is honoured.
set -euo pipefail

die() { echo "apparmor-check.sh: $*" >&2; exit 2; }
say() { echo "apparmor-check.sh: $*" >&2; }

SUITE=trixie
mode=check
profiles=()
while (($#)); do
	case $1 in
	--suite) (($# >= 2)) || die "--suite needs a value"; SUITE=$2; shift 2 ;;
	--path) mode=path; shift ;;
	--build) mode=build; shift ;;
	--) shift; profiles+=("$@"); break ;;
	-*) die "unknown option $1 (usage: apparmor-check.sh [--suite S] [--path|--build|PROFILE...])" ;;
	*) profiles+=("$1"); shift ;;
	esac
done
[[ $SUITE =~ ^[a-z]+$ ]] || die "suite $SUITE: not a Debian code name"
if [[ $mode == check ]] && ((${#profiles[@]} == 0)); then
	die "usage: apparmor-check.sh [--suite S] [--path|--build|PROFILE...]"
fi

# --- the recipe: everything that changes the result goes in here -----------
VARIANT=minbase
INCLUDE=apparmor
# Bump when the steps after debootstrap change.
POSTPROCESS=1
ARCH=$(dpkg --print-architecture)

recipe() {
	printf 'suite=%s\nvariant=%s\narch=%s\ninclude=%s\npostprocess=%s\n' \
		"$SUITE" "$VARIANT" "$ARCH" "$INCLUDE" "$POSTPROCESS"
}

CACHE=${ZVIZ_APPARMOR_CACHE:-/var/cache/zviz-test}
HASH=$(recipe | sha256sum | cut -c1-16)
NAME=$SUITE-apparmor-$HASH
DEST=$CACHE/$NAME
STAMP=etc/zviz-apparmor-check.recipe # inside the chroot: the recipe, then the build record

cached() {
	[[ -f $DEST/$STAMP && -x $DEST/sbin/apparmor_parser ]] &&
		cmp -s <(recipe) <(head -n "$(recipe | wc -l)" "$DEST/$STAMP")
}

if [[ $mode == path ]]; then
	echo "$DEST"
	exit 0
fi
[[ $(id -u) -eq 0 ]] || die "must run as root (debootstrap and chroot need it; try: sudo hack/apparmor-check.sh)"
for p in "${profiles[@]}"; do
	[[ -f $p && -r $p ]] || die "$p: not a readable file"
done

tmp=
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
	# debootstrap leaves /proc (and sometimes /sys) mounted in the target
	# when it fails half way.
	local m
	for m in proc sys dev/pts; do
		mountpoint -q "$tmp/$m" 2>/dev/null && umount -l "$tmp/$m"
	done
	rm -rf --one-file-system "$tmp"
}

# build makes $DEST unless it is cached.
build() {
	cached && return 0
	command -v debootstrap >/dev/null || die "debootstrap not installed (apt-get install debootstrap)"
	install -d -m 0755 "$CACHE"
	exec 9>"$CACHE/.lock-apparmor-$SUITE"
	flock 9
	cached && return 0 # built by whoever held the lock before us

	local mirror=${ZVIZ_DEBIAN_MIRROR:-} host_suite
	if [[ -z $mirror ]]; then
		# shellcheck disable=SC1091 # the host's, not ours
		host_suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
		local s
		for s in "$SUITE" "$host_suite"; do
			[[ -n $s ]] || continue
			# shellcheck disable=SC2016 # apt's format syntax, not the shell's
			mirror=$(apt-get indextargets --format '$(REPO_URI)' "Release: $s" 'Component: main' \
				'Identifier: Packages' 2>/dev/null | head -n1 || true)
			[[ -n $mirror ]] && break
		done
	fi
	[[ -n $mirror ]] || die "no Debian mirror: apt has no '$SUITE main' source (apt-get indextargets); set ZVIZ_DEBIAN_MIRROR"
	local proxy
	proxy=$(apt-config dump --format '%v%n' Acquire::http::Proxy 2>/dev/null | head -n1 || true)
	if [[ -n $proxy && $proxy != DIRECT && -z ${http_proxy:-} ]]; then
		export http_proxy=$proxy
	fi
	local keyring=/usr/share/keyrings/debian-archive-keyring.gpg
	[[ -f $keyring ]] || die "no $keyring (apt-get install debian-archive-keyring): refusing to build unverified"

	if [[ -e $DEST ]]; then # incomplete or damaged (no matching stamp)
		say "removing $DEST: it does not match the recipe"
		rm -rf --one-file-system "$DEST"
	fi
	tmp=$(mktemp -d "$CACHE/.build-$NAME.XXXXXX")
	trap cleanup EXIT
	say "building $DEST ($SUITE $VARIANT + $INCLUDE from $mirror); takes about two minutes"
	local start=$SECONDS log=$CACHE/.build-$NAME.log
	if ! debootstrap --variant="$VARIANT" --arch="$ARCH" --include="$INCLUDE" --keyring="$keyring" \
		"$SUITE" "$tmp" "$mirror" >"$log" 2>&1; then
		tail -n 30 "$log" >&2
		[[ -f $tmp/debootstrap/debootstrap.log ]] && tail -n 30 "$tmp/debootstrap/debootstrap.log" >&2
		die "debootstrap $SUITE failed (log: $log)"
	fi
	# Only the parser and its /etc/apparmor.d are used: drop the package
	# caches and the host data debootstrap copied in.
	rm -rf "$tmp"/var/cache/apt/archives/*.deb "$tmp"/var/lib/apt/lists/*_* "$tmp"/debootstrap
	: >"$tmp/etc/resolv.conf"
	echo zviz-apparmor-check >"$tmp/etc/hostname"
	chmod 0755 "$tmp"
	{
		recipe
		echo "mirror=$mirror"
		echo "built=$(date -u +%Y-%m-%dT%H:%M:%SZ) in $((SECONDS - start))s"
		echo "parser=$(chroot "$tmp" apparmor_parser --version 2>&1 | head -n1)"
	} >"$tmp/$STAMP"
	mv -T "$tmp" "$DEST"
	trap - EXIT
	rm -f "$log"
	say "built $DEST in $((SECONDS - start))s ($(du -sh --one-file-system "$DEST" | cut -f1))"
	local old
	for old in "$CACHE/$SUITE"-apparmor-*; do
		[[ -d $old && $old != "$DEST" ]] || continue
		say "removing $old (another recipe)"
		rm -rf --one-file-system "$old"
	done
}

build
if [[ $mode == build ]]; then
	echo "$DEST"
	exit 0
fi

version=$(chroot "$DEST" apparmor_parser --version 2>&1 | head -n1)
rejected=0
for p in "${profiles[@]}"; do
	if chroot "$DEST" apparmor_parser -Q -K <"$p"; then
		say "ok: $p compiles ($version, $SUITE)"
	else
		say "rejected: $p ($version, $SUITE)"
		rejected=1
	fi
done
exit "$rejected"
