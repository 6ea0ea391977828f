#!/bin/bash
# vm.sh builds (once) and runs a Debian VM under qemu with software emulation
# (TCG: this machine has no KVM) — the place for tests that need a real
# kernel with systemd as PID 1: cgroup v2 limits through a delegated user
# manager, AppArmor (../shared/TEST-ENVIRONMENTS.md §B and §C). tests/vm
# drives it from Go; `make test-vm` runs those tests.
#
#   hack/vm.sh build [--suite S]       build the image unless cached; print its directory
#   hack/vm.sh path  [--suite S]       print where the image would be; build nothing
#   hack/vm.sh up    [--suite S] [--name N]
#                                      build if needed, boot, wait for ssh; print status
#                                      (idempotent)
#   hack/vm.sh ssh   [--name N] [--user U] [-- CMD...]
#                                      run CMD in the guest as U (default root), in U's
#                                      login session; no CMD: an interactive shell
#   hack/vm.sh copy  [--name N] FILE [AS]
#                                      put FILE into the share: /mnt/host/AS (default
#                                      its base name) in the guest; print that path
#   hack/vm.sh status [--name N]       print KEY=VALUE lines; exit 1 if not running
#   hack/vm.sh down  [--name N]        power off and remove the instance (idempotent)
#
# S is bookworm (default: kernel 6.1, AppArmor 3.0) or trixie (kernel 6.12,
# AppArmor 4.1, which mediates user-namespace creation). N names the instance
# (default: "default"), so several VMs can run at once; ssh, copy, status
# and down find its suite themselves.
#
# The image. debootstrap --variant=minbase, then in the chroot (apt, no
# recommends): the kernel, initramfs-tools, udev, systemd-sysv, dbus,
# dbus-user-session, libpam-systemd, uidmap, openssh-server, apparmor,
# procps (plus $ZVIZ_VM_EXTRA_PACKAGES, e.g. "podman crun conmon
# slirp4netns": part of the recipe, and of the image's name). The user zviztest (uid 1000, 65536
# subordinate uids and gids, lingering enabled so its systemd --user manager
# runs from boot); root and zviztest log in over ssh with a key generated at
# build time and kept beside the image; a static address (10.0.2.15, qemu's
# user network) from systemd-networkd; the share (9p, tag hostshare) mounted
# on /mnt/host from fstab; a volatile journal; units a test VM never needs
# masked. `mkfs.ext4 -d` turns the tree into disk.img (no loop device), and
# the kernel and initrd are copied out: qemu boots them directly. Then the
# image boots once, writable, so that what a first boot computes is kept —
# chiefly AppArmor's policy cache: compiling the distribution's profiles
# under emulation holds up every boot by 11-15 s otherwise.
#
# The image is cached in $ZVIZ_VM_CACHE (default /var/cache/zviz-test) as
# vm-SUITE-HASH, HASH a digest of the recipe (suite, packages, and the text
# of the functions that make the image: change any of them and the next
# build makes a new image and removes the old ones). It is built in a
# temporary directory next to it and renamed into place at the end, so a
# directory with that name is always complete; concurrent builders wait on a
# lock and the second finds the first one's result. The Debian mirror is the
# one apt on this machine uses for SUITE main, else for the host's own suite
# (the same archive serves both), read at run time (apt-get indextargets), or
# $ZVIZ_DEBIAN_MIRROR; it is written nowhere (the build checks the image for
# its host name). An apt HTTP proxy is honoured.
#
# An instance lives in $ZVIZ_VM_STATE/N (default /run/zviz-vm/N): the pid
# file, the serial console log, the ssh configuration and its ControlMaster
# sockets (one per user: a command on a running VM costs one ssh channel),
# and share/, the directory the guest mounts. The disk is opened with
# snapshot=on: the guest's writes go to a deleted temporary file and the
# image stays pristine, so every boot starts from the same state. The guest
# has no network (-nic user,restrict=on); ssh reaches it through a port
# forwarded from 127.0.0.1 (a free one, picked at boot). `down` powers the
# guest off (after a grace period it ends qemu: with snapshot=on there is
# nothing to save), closes the ssh masters and removes the instance
# directory.
#
# Must run as root (debootstrap, chroot, and the image's root-owned files).
# Messages go to stderr; only results go to stdout.
set -euo pipefail

die() { echo "vm.sh: $*" >&2; exit 1; }
say() { echo "vm.sh: $*" >&2; }

CACHE=${ZVIZ_VM_CACHE:-/var/cache/zviz-test}
STATE_ROOT=${ZVIZ_VM_STATE:-/run/zviz-vm}
TEST_USER=zviztest
TEST_UID=1000
GUEST_SHARE=/mnt/host
BOOT_TIMEOUT=${ZVIZ_VM_BOOT_TIMEOUT:-180}

SUITE=bookworm
NAME=default
USER_=root
args=()
cmd=${1:-}
(($#)) && shift
while (($#)); do
	case $1 in
	--suite) (($# >= 2)) || die "--suite needs a value"; SUITE=$2; shift 2 ;;
	--name) (($# >= 2)) || die "--name needs a value"; NAME=$2; shift 2 ;;
	--user) (($# >= 2)) || die "--user needs a value"; USER_=$2; shift 2 ;;
	--) shift; args+=("$@"); break ;;
	-*) die "unknown option $1 (see the comment at the top of hack/vm.sh)" ;;
	*) args+=("$1"); shift ;;
	esac
done
case $SUITE in bookworm | trixie) ;; *) die "suite $SUITE: want bookworm or trixie" ;; esac
[[ $NAME =~ ^[A-Za-z0-9_.-]{1,40}$ ]] || die "instance name $NAME: want 1-40 of [A-Za-z0-9_.-]"
STATE=$STATE_ROOT/$NAME

# --- the recipe: everything that changes the image goes in here -------------
# Installed in the chroot with apt, without recommends.
PACKAGES=(linux-image-amd64 initramfs-tools udev kmod systemd-sysv dbus dbus-user-session
	libpam-systemd uidmap openssh-server apparmor procps)
# Installed when the suite has them as packages of their own.
OPTIONAL_PACKAGES=(systemd-networkd)
read -r -a EXTRA_PACKAGES <<<"${ZVIZ_VM_EXTRA_PACKAGES:-}"
# Units a short-lived test VM never needs; masked so they cost no boot time.
MASKED_UNITS=(apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer e2scrub_all.timer
	e2scrub_reap.service fstrim.timer systemd-networkd-wait-online.service
	systemd-timesyncd.service getty@tty1.service)
# What the initramfs needs to mount the root disk (MODULES=list: a small
# initramfs unpacks and boots faster under emulation than MODULES=most).
INITRAMFS_MODULES=(virtio_pci virtio_blk ext4)
ARCH=amd64
DISK_SIZE=4G
APPEND="root=/dev/vda rw console=ttyS0 apparmor=1 security=apparmor"

recipe() {
	printf 'suite=%s\narch=%s\npackages=%s\noptional=%s\nextra=%s\nmasked=%s\ninitramfs=%s\n' \
		"$SUITE" "$ARCH" "${PACKAGES[*]}" "${OPTIONAL_PACKAGES[*]}" "${EXTRA_PACKAGES[*]}" \
		"${MASKED_UNITS[*]}" "${INITRAMFS_MODULES[*]}"
	printf 'disk=%s\nuser=%s:%s\nshare=%s\nappend=%s\n' "$DISK_SIZE" "$TEST_USER" "$TEST_UID" "$GUEST_SHARE" "$APPEND"
	# The steps themselves: declare -f prints them without comments, so only a
	# change that does something changes the hash.
	declare -f customize in_chroot first_boot
}

# customize ROOT: the image's configuration, written from the host.
customize() {
	local root=$1
	printf '127.0.0.1\tlocalhost\n127.0.1.1\tzviz-vm\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >"$root/etc/hosts"
	echo zviz-vm >"$root/etc/hostname"
	echo '# no name servers: the test VM has no network' >"$root/etc/resolv.conf"
	echo '# no sources: the test VM has no network' >"$root/etc/apt/sources.list"
	printf '/dev/vda\t/\text4\trw,noatime\t0\t0\n' >"$root/etc/fstab"
	printf 'hostshare\t%s\t9p\ttrans=virtio,version=9p2000.L,msize=262144,nofail\t0\t0\n' \
		"$GUEST_SHARE" >>"$root/etc/fstab"
	install -d -m 0755 "$root$GUEST_SHARE"
	printf '9p\n9pnet_virtio\n' >"$root/etc/modules-load.d/zviz-9p.conf"
	install -d -m 0755 "$root/etc/systemd/network" "$root/etc/systemd/journald.conf.d"
	printf '[Match]\nType=ether\n\n[Network]\nAddress=10.0.2.15/24\nGateway=10.0.2.2\nLinkLocalAddressing=no\nIPv6AcceptRA=no\n' \
		>"$root/etc/systemd/network/10-zviz.network"
	printf '[Journal]\nStorage=volatile\n' >"$root/etc/systemd/journald.conf.d/zviz.conf"
	install -d -m 0755 "$root/etc/ssh/sshd_config.d"
	printf 'PasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nUseDNS no\nMaxSessions 100\nMaxStartups 100\n' \
		>"$root/etc/ssh/sshd_config.d/zviz.conf"
	install -d -m 0755 "$root/var/lib/systemd/linger"
	: >"$root/var/lib/systemd/linger/$TEST_USER"
	# Only the image's own files: no package caches, lists, or logs naming the mirror.
	rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*_* "$root"/var/log/apt/* \
		"$root/var/log/bootstrap.log" "$root/debootstrap" "$root/usr/sbin/policy-rc.d"
}

# in_chroot: run inside the chroot (with /proc mounted) after debootstrap.
in_chroot() {
	export DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 PATH=/usr/sbin:/usr/bin:/sbin:/bin
	# Install no service into a running state (there is no init here).
	printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
	chmod 0755 /usr/sbin/policy-rc.d
	# Before the kernel's package makes the initramfs: only the root disk's
	# modules, and no probing for a resume device.
	mkdir -p /etc/initramfs-tools/conf.d
	printf 'MODULES=list\nRESUME=none\n' >/etc/initramfs-tools/conf.d/zviz.conf
	printf '%s\n' "${INITRAMFS_MODULES[@]}" >>/etc/initramfs-tools/modules
	apt-get update -q
	local p optional=()
	for p in "${OPTIONAL_PACKAGES[@]}"; do
		apt-cache show "$p" >/dev/null 2>&1 && optional+=("$p")
	done
	apt-get install -y -q --no-install-recommends -o Dpkg::Options::=--force-confold "${PACKAGES[@]}" "${optional[@]}" "${EXTRA_PACKAGES[@]}"
	apt-get clean
	useradd --create-home --shell /bin/bash --uid "$TEST_UID" --groups systemd-journal "$TEST_USER"
	local f
	for f in /etc/subuid /etc/subgid; do
		grep -q "^$TEST_USER:" "$f" 2>/dev/null || echo "$TEST_USER:100000:65536" >>"$f"
	done
	install -d -m 0700 -o "$TEST_USER" -g "$TEST_USER" "/home/$TEST_USER/.ssh"
	install -m 0600 -o "$TEST_USER" -g "$TEST_USER" /root/.ssh/authorized_keys "/home/$TEST_USER/.ssh/"
	systemctl enable systemd-networkd.service
	systemctl mask "${MASKED_UNITS[@]}"
}

# first_boot DIR: boot the image in DIR writable, once, until the system is
# up (AppArmor's cache written), then power it off cleanly.
first_boot() {
	local dir=$1 port
	install -d -m 0755 "$dir/share" # fstab mounts it: an empty one
	port=$(start_qemu "$dir" "$dir" "" -virtfs "local,path=$dir/share,mount_tag=hostshare,security_model=none") ||
		return 1
	write_ssh_config "$dir" "$port" "$dir" no
	wait_ssh "$dir" || return 1
	local state
	state=$(ssh -F "$dir/ssh_config" -l root zviz-vm 'timeout 150 systemctl is-system-running --wait' 8>&- 9>&-) || true
	[[ $state == running ]] || {
		ssh -F "$dir/ssh_config" -l root zviz-vm 'systemctl --failed --no-legend' >&2 8>&- 9>&- || true
		say "first boot: the system is $state, not running (failed units above)"
		return 1
	}
	stop_qemu "$dir" 120 || { say "first boot: no clean poweroff"; return 1; }
}

HASH=$(recipe | sha256sum | cut -c1-16)
# Images with extra packages have names of their own: building one does not
# remove the plain one (nor one with other extras).
FLAVOR=$SUITE
if ((${#EXTRA_PACKAGES[@]})); then
	FLAVOR=$SUITE+$(IFS=.; echo "${EXTRA_PACKAGES[*]}" | tr -c 'a-z0-9.+\n-' _)
fi
IMAGE=$CACHE/vm-$FLAVOR-$HASH

image_ok() {
	local d=$1
	[[ -f $d/recipe && -f $d/disk.img && -f $d/vmlinuz && -f $d/initrd.img && -f $d/id_ed25519 &&
		-f $d/known_hosts ]] && cmp -s <(recipe) <(head -n "$(recipe | wc -l)" "$d/recipe")
}

need_root() { [[ $(id -u) -eq 0 ]] || die "must run as root ($1; try: sudo hack/vm.sh $cmd)"; }

need_tools() {
	local t
	for t in "$@"; do
		command -v "$t" >/dev/null || die "$t not installed (run hack/setup.sh as root)"
	done
}

# elapsed T0: seconds since $EPOCHREALTIME was T0, to a tenth.
elapsed() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f\n", b - a }'; }

# debian_mirror: the mirror apt uses for SUITE main, else for the host's suite.
debian_mirror() {
	local mirror=${ZVIZ_DEBIAN_MIRROR:-} host_suite s
	if [[ -z $mirror ]]; then
		# shellcheck disable=SC1091 # the host's, not ours
		host_suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
		for s in "$SUITE" "$host_suite"; do
			[[ -n $s ]] || continue
			# shellcheck disable=SC2016 # apt's format syntax, not the shell's
			mirror=$(apt-get indextargets --format '$(REPO_URI)' "Release: $s" 'Component: main' \
				'Identifier: Packages' 2>/dev/null | head -n1 || true)
			[[ -n $mirror ]] && break
		done
	fi
	[[ -n $mirror ]] || die "no Debian mirror: apt has no '$SUITE main' source (apt-get indextargets); set ZVIZ_DEBIAN_MIRROR"
	echo "$mirror"
}

# --- building -----------------------------------------------------------------

tmp=
# shellcheck disable=SC2317 # called by the EXIT trap
build_cleanup() {
	[[ -n $tmp ]] || return 0
	local pid m
	if pid=$(qemu_pid "$tmp"); then # the first boot's
		kill -KILL "$pid" 2>/dev/null || true
	fi
	# debootstrap leaves /proc (and sometimes /sys) mounted in the target
	# when it fails half way; the chroot steps mount in a namespace of their own.
	for m in proc sys dev/pts; do
		mountpoint -q "$tmp/root/$m" 2>/dev/null && umount -l "$tmp/root/$m"
	done
	rm -rf --one-file-system "$tmp"
}

# build: make $IMAGE unless it is cached; print it.
build() {
	if image_ok "$IMAGE"; then
		echo "$IMAGE"
		return 0
	fi
	need_root "debootstrap and chroot need it"
	need_tools debootstrap mkfs.ext4 ssh-keygen unshare qemu-system-x86_64
	install -d -m 0755 "$CACHE"
	exec 9>"$CACHE/.lock-vm-$FLAVOR"
	flock 9
	if image_ok "$IMAGE"; then # built by whoever held the lock before us
		echo "$IMAGE"
		return 0
	fi
	if [[ -e $IMAGE ]]; then # incomplete or damaged (no matching recipe)
		say "removing $IMAGE: it does not match the recipe"
		rm -rf --one-file-system "$IMAGE"
	fi
	tmp=$(mktemp -d "$CACHE/.build-vm-$FLAVOR-$HASH.XXXXXX")
	trap build_cleanup EXIT
	local start=$SECONDS
	make_image "$tmp"
	say "image made after $((SECONDS - start))s; first boot"
	first_boot "$tmp" || { tail -n 30 "$tmp/console.log" >&2; die "first boot of the new image failed (console above)"; }
	rm -rf "$tmp/console.log" "$tmp/ssh_config" "$tmp/qemu.pid" "$tmp/share"
	sed -i "s/^# built .*/& (first boot included: $((SECONDS - start))s)/" "$tmp/recipe"
	mv -T "$tmp" "$IMAGE"
	tmp=
	trap - EXIT
	say "built $IMAGE in $((SECONDS - start))s ($(du -sh "$IMAGE" | cut -f1) on disk)"
	local old
	for old in "$CACHE"/vm-"$FLAVOR"-*; do
		[[ -d $old && $old != "$IMAGE" ]] || continue
		say "removing $old (another recipe)"
		rm -rf --one-file-system "$old"
	done
	echo "$IMAGE"
}

# make_image DIR: debootstrap, the chroot steps, the disk, kernel, initrd,
# ssh key and known_hosts in DIR.
make_image() {
	local dir=$1 start=$SECONDS mirror proxy keyring=/usr/share/keyrings/debian-archive-keyring.gpg
	local log=$dir/build.log root=$dir/root
	mirror=$(debian_mirror)
	proxy=$(apt-config dump --format '%v%n' Acquire::http::Proxy 2>/dev/null | head -n1 || true)
	if [[ -n $proxy && $proxy != DIRECT && -z ${http_proxy:-} ]]; then
		export http_proxy=$proxy
	fi
	[[ -f $keyring ]] || die "no $keyring (apt-get install debian-archive-keyring): refusing to build unverified"
	say "building $IMAGE ($SUITE from $mirror); takes a few minutes (log: $log)"
	if ! debootstrap --variant=minbase --arch="$ARCH" --keyring="$keyring" \
		"$SUITE" "$root" "$mirror" >"$log" 2>&1; then
		tail -n 30 "$log" >&2
		[[ -f $root/debootstrap/debootstrap.log ]] && tail -n 30 "$root/debootstrap/debootstrap.log" >&2
		die "debootstrap $SUITE failed"
	fi
	say "debootstrap done after $((SECONDS - start))s; installing the packages"
	ssh-keygen -q -t ed25519 -N '' -C "zviz-vm-$SUITE" -f "$dir/id_ed25519"
	install -d -m 0700 "$root/root/.ssh"
	install -m 0600 "$dir/id_ed25519.pub" "$root/root/.ssh/authorized_keys"
	# The chroot's mounts live and die with a private mount namespace.
	if ! unshare --mount --propagation private -- chroot "$root" /bin/bash -c \
		"set -euo pipefail; mount -t proc proc /proc; $(declare -p PACKAGES OPTIONAL_PACKAGES \
			EXTRA_PACKAGES MASKED_UNITS INITRAMFS_MODULES TEST_USER TEST_UID); $(declare -f in_chroot); in_chroot" \
		>>"$log" 2>&1; then
		tail -n 40 "$log" >&2
		die "installing the packages in the $SUITE chroot failed"
	fi
	customize "$root"
	local host=${mirror#*://}
	host=${host%%/*}
	if [[ -n $host ]] && grep -rIlsF -- "$host" "$root/etc" "$root/var/lib/apt" "$root/var/log" "$root/root" >&2; then
		die "the image names the mirror host in the files above"
	fi
	local k
	for k in "$root"/etc/ssh/ssh_host_*_key.pub; do
		echo "zviz-vm $(cut -d' ' -f1,2 "$k")"
	done >"$dir/known_hosts"
	cp "$(readlink -f "$root/vmlinuz")" "$dir/vmlinuz"
	cp "$(readlink -f "$root/initrd.img")" "$dir/initrd.img"
	say "packages done after $((SECONDS - start))s; making the disk"
	mkfs.ext4 -q -d "$root" -L zviz-root -m 0 "$dir/disk.img" "$DISK_SIZE" >>"$log" 2>&1 ||
		{ tail -n 20 "$log" >&2; die "mkfs.ext4 -d failed"; }
	{
		recipe
		echo "# built $(date -u +%Y-%m-%dT%H:%M:%SZ) in $((SECONDS - start))s;" \
			"tree $(du -sm --one-file-system "$root" | cut -f1) MiB;" \
			"kernel $(basename "$(readlink -f "$root/vmlinuz")")"
		# shellcheck disable=SC2016 # dpkg-query's format syntax
		chroot "$root" dpkg-query -W -f '# package ${Package} ${Version}\n'
	} >"$dir/recipe"
	rm -rf --one-file-system "$root" "$log"
}

# --- running ------------------------------------------------------------------
# A running qemu is described by a directory DIR: DIR/qemu.pid, DIR/console.log,
# DIR/ssh_config (an instance's $STATE, or the build directory at first boot).

# qemu_pid DIR: the pid of DIR's qemu, if it is running (checked by its
# command line: a recycled pid is not ours).
qemu_pid() {
	local pid
	pid=$(cat "$1/qemu.pid" 2>/dev/null) || return 1
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "-pidfile $1/qemu.pid" || return 1
	echo "$pid"
}

free_port() {
	local p i
	for i in $(seq 50); do
		p=$((20000 + RANDOM % 40000))
		[[ -z $(ss -Htln "sport = :$p" 2>/dev/null) ]] && { echo "$p"; return 0; }
		: "$i"
	done
	say "no free port found"
	return 1
}

# start_qemu DIR IMAGE DRIVEOPTS [QEMU ARGS...]: boot IMAGE's disk (with
# DRIVEOPTS, e.g. ",snapshot=on") daemonized; print the forwarded ssh port.
# Retries with another port if the one picked was taken meanwhile. The lock
# descriptors (8, 9) are closed in qemu and ssh: both outlive this script
# (-daemonize, ControlPersist) and would hold the locks.
start_qemu() {
	local dir=$1 image=$2 drive=$3 port try err
	shift 3
	for try in 1 2 3 4 5; do
		port=$(free_port) || return 1
		if err=$(qemu-system-x86_64 -name "zviz-vm-$NAME" \
			-machine q35,accel=tcg -cpu max -smp 2 -m 3072 \
			-kernel "$image/vmlinuz" -initrd "$image/initrd.img" -append "$APPEND" \
			-drive "file=$image/disk.img,if=virtio,format=raw$drive" \
			-nic "user,model=virtio-net-pci,restrict=on,hostfwd=tcp:127.0.0.1:$port-:22" \
			-device virtio-rng-pci -vga none -display none -monitor none -parallel none \
			-serial "file:$dir/console.log" -no-reboot "$@" \
			-daemonize -pidfile "$dir/qemu.pid" 2>&1 8>&- 9>&-); then
			echo "$port"
			return 0
		fi
		if ! grep -qi 'host forwarding\|address already in use' <<<"$err"; then
			say "qemu failed: $err"
			return 1
		fi
		say "port $port taken (try $try): $err"
	done
	say "qemu could not forward a port"
	return 1
}

# write_ssh_config DIR PORT IMAGE MASTER: DIR/ssh_config for host zviz-vm;
# MASTER yes: keep a ControlMaster per user in DIR.
write_ssh_config() {
	local dir=$1 port=$2 image=$3 master=$4
	{
		printf 'Host zviz-vm\n  HostName 127.0.0.1\n  Port %s\n  HostKeyAlias zviz-vm\n' "$port"
		printf '  UserKnownHostsFile %s/known_hosts\n  StrictHostKeyChecking yes\n' "$image"
		printf '  IdentityFile %s/id_ed25519\n  IdentitiesOnly yes\n  BatchMode yes\n  LogLevel ERROR\n' "$image"
		printf '  ConnectTimeout 10\n  ServerAliveInterval 5\n  ServerAliveCountMax 6\n'
		if [[ $master == yes ]]; then
			printf '  ControlMaster auto\n  ControlPath %s/ctl-%%r\n  ControlPersist yes\n' "$dir"
		fi
	} >"$dir/ssh_config"
}

# wait_ssh DIR: until root can log in; fails (console shown) when qemu exits
# or after BOOT_TIMEOUT seconds.
wait_ssh() {
	local dir=$1 start=$SECONDS
	until ssh -F "$dir/ssh_config" -o ConnectTimeout=2 -l root zviz-vm true 2>/dev/null 8>&- 9>&-; do
		if ! qemu_pid "$dir" >/dev/null; then
			tail -n 40 "$dir/console.log" >&2 || true
			say "qemu exited during boot (console above)"
			return 1
		fi
		if ((SECONDS - start > BOOT_TIMEOUT)); then
			tail -n 40 "$dir/console.log" >&2 || true
			say "no ssh after ${BOOT_TIMEOUT}s (console above)"
			return 1
		fi
		sleep 0.5
	done
}

# stop_qemu DIR GRACE: power the guest off; after GRACE seconds end qemu.
# Fails if qemu had to be ended.
stop_qemu() {
	local dir=$1 grace=$2 pid i
	pid=$(qemu_pid "$dir") || return 0
	ssh -F "$dir/ssh_config" -o ConnectTimeout=5 -l root zviz-vm 'systemctl poweroff --no-block' \
		2>/dev/null 8>&- 9>&- || true
	for i in $(seq $((grace * 10))); do
		[[ -d /proc/$pid ]] || return 0
		sleep 0.1
		: "$i"
	done
	kill -TERM "$pid" 2>/dev/null || true
	for i in $(seq 50); do
		[[ -d /proc/$pid ]] || return 1
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	return 1
}

# --- instances ----------------------------------------------------------------

ssh_cmd() { ssh -F "$STATE/ssh_config" "$@" 8>&- 9>&-; }

running() { [[ -f $STATE/ssh_config && -d $STATE/share ]] && qemu_pid "$STATE" >/dev/null; }

# vm_lock: serialise up and down (of all instances).
vm_lock() {
	install -d -m 0755 "$CACHE"
	exec 8>"$CACHE/.lock-vm-instances"
	flock -w 600 8 || die "another vm.sh up or down has held $CACHE/.lock-vm-instances for 10 minutes"
}

up() {
	need_root "the image and its ssh key are root's"
	need_tools qemu-system-x86_64 ssh
	local image
	image=$(build)
	vm_lock
	if [[ -d $STATE ]]; then
		if running && [[ $(cat "$STATE/image" 2>/dev/null) == "$image" ]] && ssh_cmd -l root zviz-vm true 2>/dev/null; then
			say "$NAME is already up"
			status
			return 0
		fi
		say "$NAME: removing a stale or different instance"
		teardown 5
	fi
	local t0=$EPOCHREALTIME port
	install -d -m 0755 "$STATE_ROOT"
	install -d -m 0700 "$STATE"
	# The guest's users read (and write) the share.
	install -d -m 1777 "$STATE/share"
	echo "$image" >"$STATE/image"
	echo "$SUITE" >"$STATE/suite"
	port=$(start_qemu "$STATE" "$image" ",snapshot=on" \
		-virtfs "local,path=$STATE/share,mount_tag=hostshare,security_model=none") ||
		{ teardown 0; die "$NAME: qemu did not start"; }
	echo "$port" >"$STATE/port"
	write_ssh_config "$STATE" "$port" "$image" yes
	say "$NAME: qemu up (pid $(cat "$STATE/qemu.pid"), ssh on 127.0.0.1:$port); waiting for ssh"
	wait_ssh "$STATE" || { teardown 0; die "$NAME: boot failed"; }
	elapsed "$t0" >"$STATE/boot-seconds"
	# The user's master too: its login starts the user's session (pam_systemd).
	# Retried: trixie's sshd (OpenSSH 10, PerSourcePenalties) refuses the
	# next connection for a while after wait_ssh's attempts that timed out
	# in the banner exchange on a loaded host ("kex_exchange_identification:
	# Connection closed by remote host").
	local try
	for try in 1 2 3 4 5 6 7 8 9 10; do
		ssh_cmd -l "$TEST_USER" zviz-vm true && break
		((try < 10)) || { teardown 0; die "$NAME: ssh as $TEST_USER failed"; }
		sleep 3
	done
	say "$NAME: up: ssh after $(cat "$STATE/boot-seconds")s ($SUITE, $(ssh_cmd -l root zviz-vm uname -r))"
	status
}

# teardown GRACE: power off (qemu ended after GRACE seconds), end the ssh
# masters, remove the instance directory.
teardown() {
	local sock
	stop_qemu "$STATE" "$1" || say "$NAME: no poweroff after $1s: ended qemu"
	for sock in "$STATE"/ctl-*; do
		[[ -S $sock ]] || continue
		ssh -o ControlPath="$sock" -O exit zviz-vm 2>/dev/null 8>&- 9>&- || true
	done
	rm -rf --one-file-system "$STATE"
	rmdir "$STATE_ROOT" 2>/dev/null || true
}

down() {
	need_root "the instance is root's"
	vm_lock
	if [[ ! -d $STATE ]]; then
		say "$NAME is not up"
		return 0
	fi
	local t0=$EPOCHREALTIME
	teardown 30
	say "$NAME: down in $(elapsed "$t0")s"
}

status() {
	[[ -d $STATE ]] || { say "$NAME is not up"; return 1; }
	local pid
	pid=$(qemu_pid "$STATE") || { say "$NAME: qemu is not running (stale: hack/vm.sh down --name $NAME)"; return 1; }
	printf 'name=%s\nsuite=%s\nimage=%s\npid=%s\nport=%s\nstate=%s\nshare=%s\nguest_share=%s\n' \
		"$NAME" "$(cat "$STATE/suite")" "$(cat "$STATE/image")" "$pid" "$(cat "$STATE/port" 2>/dev/null)" \
		"$STATE" "$STATE/share" "$GUEST_SHARE"
	printf 'ssh_config=%s\nssh_host=zviz-vm\nconsole=%s\nboot_seconds=%s\n' \
		"$STATE/ssh_config" "$STATE/console.log" "$(cat "$STATE/boot-seconds" 2>/dev/null)"
}

vm_ssh() {
	running || die "$NAME is not up (hack/vm.sh up --name $NAME)"
	if ((${#args[@]} == 0)); then
		exec ssh -F "$STATE/ssh_config" -t -l "$USER_" zviz-vm 8>&- 9>&-
	fi
	exec ssh -F "$STATE/ssh_config" -l "$USER_" zviz-vm -- "${args[@]}" 8>&- 9>&-
}

copy() {
	((${#args[@]} >= 1 && ${#args[@]} <= 2)) || die "usage: vm.sh copy [--name N] FILE [AS]"
	local src=${args[0]} as=${args[1]:-}
	[[ -f $src ]] || die "$src: not a file"
	[[ -n $as ]] || as=$(basename "$src")
	[[ $as != */* && $as != . && $as != .. ]] || die "$as: want a plain file name"
	running || die "$NAME is not up (hack/vm.sh up --name $NAME)"
	local mode=0644
	[[ -x $src ]] && mode=0755
	# Renamed into place: the guest never sees half a file.
	install -m "$mode" "$src" "$STATE/share/.$as.tmp"
	mv -f "$STATE/share/.$as.tmp" "$STATE/share/$as"
	echo "$GUEST_SHARE/$as"
}

case $cmd in
build) ((${#args[@]} == 0)) || die "usage: vm.sh build [--suite S]"; build ;;
path) echo "$IMAGE" ;;
up) up ;;
ssh) vm_ssh ;;
copy) copy ;;
status) status ;;
down) down ;;
*) die "usage: vm.sh build|path|up|ssh|copy|status|down [--suite S] [--name N] (see the top of hack/vm.sh)" ;;
esac
