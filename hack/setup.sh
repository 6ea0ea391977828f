#!/bin/bash
# setup.sh prepares a Debian 12 machine (run as root) for building and testing
# zviz: Debian packages, the unprivileged test user with subordinate id ranges
# and a runtime directory, and /dev/net/tun access. Idempotent; when everything
# is already in place it makes no changes and takes well under a second.
set -euo pipefail

TEST_USER=${ZVIZ_TEST_USER:-zviztest}
GO_BIN=/usr/local/go/bin

# Debian packages the build, the tests and the benchmarks need. Extend here.
PACKAGES=(
	# build
	build-essential gcc pkg-config libseccomp-dev git
	# runtimes and tools the tests compare against or drive
	runc bubblewrap busybox-static uidmap iproute2 debootstrap
	util-linux procps psmisc
	# rootless user-mode networking (zviz run --network slirp4netns|pasta)
	slirp4netns passt
	# a real systemd user manager and user bus for the systemd/ tests
	# (hack/systemd-user.sh); --no-install-recommends keeps systemd-sysv out
	systemd dbus-daemon dbus-user-session
	# the VM stage (hack/vm.sh): qemu, ssh into the guest, mkfs.ext4 -d
	qemu-system-x86 openssh-client e2fsprogs
	# benchmarks and lint
	hyperfine shellcheck
	# podman 4.3 + conmon 2.1 driving zviz (tests/podman, make bench), rootless:
	# slirp4netns for the default network, fuse-overlayfs, catatonit for --init
	podman conmon slirp4netns fuse-overlayfs catatonit containernetworking-plugins
)

die() { echo "setup.sh: $*" >&2; exit 1; }

[[ $(id -u) -eq 0 ]] || die "must run as root (try: sudo make setup)"

changes=()

# --- packages ---------------------------------------------------------------
missing=()
for p in "${PACKAGES[@]}"; do
	if [[ $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null) != "install ok installed" ]]; then
		missing+=("$p")
	fi
done
if ((${#missing[@]})); then
	export DEBIAN_FRONTEND=noninteractive
	log=$(mktemp /tmp/zviz-setup-apt.XXXXXX)
	apt() { "$@" >>"$log" 2>&1 || { cat "$log" >&2; rm -f "$log"; die "failed: $*"; }; }
	# Refresh the package lists only when they are missing or older than a day.
	if [[ -z $(find /var/lib/apt/lists -maxdepth 1 -name '*_Packages*' -mmin -1440 -print -quit) ]]; then
		apt apt-get update -q
	fi
	if ! apt-get install -y -q --no-install-recommends "${missing[@]}" >>"$log" 2>&1; then
		# A stale list can name versions the mirror no longer has: refresh once.
		apt apt-get update -q
		apt apt-get install -y -q --no-install-recommends "${missing[@]}"
	fi
	rm -f "$log"
	changes+=("installed ${missing[*]}")
fi

# --- Go ---------------------------------------------------------------------
# The Makefile puts $GO_BIN on PATH (sudo's secure_path drops it).
if [[ ! -x $GO_BIN/go ]] && ! command -v go >/dev/null; then
	die "Go not found: install it at $GO_BIN (see go.mod for the version)"
fi

# --- the unprivileged test user ---------------------------------------------
if ! id -u "$TEST_USER" >/dev/null 2>&1; then
	useradd --create-home --shell /bin/bash "$TEST_USER"
	changes+=("created user $TEST_USER")
fi
uid=$(id -u "$TEST_USER")
gid=$(id -g "$TEST_USER")

# add_subid FILE: give the test user 65536 subordinate ids in FILE unless it
# already has a range, starting after the highest range in use (subuid(5)).
add_subid() {
	local file=$1 start
	touch "$file"
	if grep -q "^$TEST_USER:\|^$uid:" "$file"; then
		return
	fi
	start=$(awk -F: 'BEGIN { m = 100000 } NF == 3 && $2 + $3 > m { m = $2 + $3 } END { print m }' "$file")
	echo "$TEST_USER:$start:65536" >>"$file"
	changes+=("added $file range $start:65536")
}
add_subid /etc/subuid
add_subid /etc/subgid

# XDG_RUNTIME_DIR, as pam_systemd would make it (/run is a tmpfs: redo at boot).
rundir=/run/user/$uid
if [[ ! -d $rundir ]] || [[ $(stat -c '%u:%g:%a' "$rundir") != "$uid:$gid:700" ]]; then
	install -d -o "$uid" -g "$gid" -m 0700 "$rundir"
	changes+=("made $rundir")
fi

# --- devices ----------------------------------------------------------------
# Rootless network drivers (slirp4netns, pasta) open /dev/net/tun as the user.
if [[ -c /dev/net/tun ]] && [[ $(stat -c '%a' /dev/net/tun) != 666 ]]; then
	chmod 0666 /dev/net/tun
	changes+=("chmod 0666 /dev/net/tun")
fi

if ((${#changes[@]})); then
	summary=$(printf '%s; ' "${changes[@]}")
	echo "setup.sh: ok (${summary%; }); test user $TEST_USER uid $uid"
else
	echo "setup.sh: ok (nothing to do); test user $TEST_USER uid $uid"
fi
