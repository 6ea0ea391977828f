#!/bin/bash
# systemd-user.sh starts and stops a real `systemd --user` manager, with the
# user D-Bus that dbus-user-session socket-activates, for an unprivileged user
# on a machine whose PID 1 is not systemd (../shared/TEST-ENVIRONMENTS.md §A).
# Tests of the systemd/ package and of `--systemd-cgroup` use it. Run as root.
#
#   hack/systemd-user.sh start [USER]   start it (idempotent); print the session
#   hack/systemd-user.sh status [USER]  print the session; exit 1 if not running
#   hack/systemd-user.sh stop [USER]    stop it; leave nothing behind (idempotent)
#   hack/systemd-user.sh run [USER] -- CMD [ARG...]
#                                       run CMD as USER "in the session"
#
# USER defaults to $ZVIZ_TEST_USER or zviztest. start and status print
# shell-quoted KEY=VALUE lines (eval-able):
#
#   ZVIZ_SYSTEMD_MANAGER_PID   the `systemd --user` process (host pid namespace)
#   ZVIZ_SYSTEMD_CGROUP        the environment's cgroup directory on the host
#                              (the root of the session's cgroup namespace)
#   ZVIZ_SYSTEMD_SESSION_CGROUP  where a session process must be put first
#   ZVIZ_SYSTEMD_ENTER         the nsenter command that enters the session's
#                              mount and cgroup namespaces (then drop to USER)
#   XDG_RUNTIME_DIR, DBUS_SESSION_BUS_ADDRESS  the user's environment there
#
# How it works. As root, the cgroup v2 directories
#   /sys/fs/cgroup/unified/$ZVIZ_SYSTEMD_ENV/{user@UID.service,session.scope}
# are made and delegated to USER ($ZVIZ_SYSTEMD_ENV defaults to
# zviz-systemd-UID; give each concurrent environment its own name). A launcher
# enters the environment's cgroup, unshares a mount and a cgroup namespace (so
# the environment is the cgroup namespace's root) and there mounts a fresh
# cgroup2 on /sys/fs/cgroup (systemd then sees a pure unified hierarchy), a
# tmpfs on /run/systemd holding /run/systemd/system (systemd --user refuses to
# start without it; never create that directory on the host: apt's scripts
# would then take systemd for PID 1) and a private tmpfs on /run/user/UID,
# then execs `systemd --user` as USER. Nothing is mounted on the host, and
# nothing is written to the cgroup v1 hierarchies. "In the session" means: in
# session.scope (owned by USER, so the manager may move the process into a
# scope of its own) and in the manager's mount and cgroup namespaces.
#
# stop SIGTERMs the manager (after checking that the pid is that manager),
# kills what is left with cgroup.kill and removes the cgroup subtree. The
# namespaces and their mounts vanish with their last process.
set -euo pipefail

die() { echo "systemd-user.sh: $*" >&2; exit 1; }

usage() {
	sed -n '/^#   hack/,/^#  *run CMD/p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

CGROOT=/sys/fs/cgroup/unified
MANAGER=/lib/systemd/systemd
SESSION_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
READY_TIMEOUT=${ZVIZ_SYSTEMD_READY_TIMEOUT:-20} # seconds

cmd=${1:-}
[[ -n $cmd ]] || usage
shift
user=${ZVIZ_TEST_USER:-zviztest}
if [[ $# -gt 0 && $1 != -- ]]; then
	user=$1
	shift
fi

[[ $(id -u) -eq 0 ]] || die "must run as root"
uid=$(id -u "$user" 2>/dev/null) || die "no user $user (run hack/setup.sh)"
gid=$(id -g "$user")
((uid != 0)) || die "the session user must not be root"
home=$(getent passwd "$user" | cut -d: -f6)
name=${ZVIZ_SYSTEMD_ENV:-zviz-systemd-$uid}
[[ $name =~ ^[A-Za-z0-9_.-]+$ && $name != . && $name != .. ]] || die "bad ZVIZ_SYSTEMD_ENV $name"
env_cg=$CGROOT/$name
manager_cg=$env_cg/user@$uid.service
session_cg=$env_cg/session.scope
rundir=/run/user/$uid
bus=unix:path=$rundir/bus

# manager_pid: the running manager's pid, or nothing. systemd --user moves
# itself into init.scope of its own cgroup; it is only ever this user's
# systemd, started with --user, in this environment's cgroup.
manager_pid() {
	local f pid
	for f in "$manager_cg/init.scope/cgroup.procs" "$manager_cg/cgroup.procs"; do
		[[ -r $f ]] || continue
		while read -r pid; do
			if is_manager "$pid"; then
				echo "$pid"
				return
			fi
		done <"$f"
	done
}

is_manager() {
	local pid=$1 cmdline
	[[ $(stat -c %u "/proc/$pid" 2>/dev/null) == "$uid" ]] || return 1
	[[ $(cat "/proc/$pid/comm" 2>/dev/null) == systemd ]] || return 1
	cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
	[[ $cmdline == *--user* ]] || return 1
	grep -qx "0::/$name/user@$uid.service\(/init.scope\)\{0,1\}" "/proc/$pid/cgroup" 2>/dev/null
}

print_session() {
	local pid=$1
	printf '%s=%q\n' \
		ZVIZ_SYSTEMD_MANAGER_PID "$pid" \
		ZVIZ_SYSTEMD_CGROUP "$env_cg" \
		ZVIZ_SYSTEMD_SESSION_CGROUP "$session_cg" \
		ZVIZ_SYSTEMD_ENTER "nsenter --target $pid --mount --cgroup" \
		XDG_RUNTIME_DIR "$rundir" \
		DBUS_SESSION_BUS_ADDRESS "$bus"
}

# delegate DIR: make the cgroup DIR and hand it to the user (cgroups(7),
# "Cgroups v2 delegation": the directory, cgroup.procs, cgroup.threads and
# cgroup.subtree_control).
delegate() {
	mkdir -p "$1"
	chown "$uid:$gid" "$1" "$1/cgroup.procs" "$1/cgroup.threads" "$1/cgroup.subtree_control"
}

# in_session CMD...: run CMD as the user in the session (see the header).
in_session() {
	local pid
	pid=$(manager_pid)
	[[ -n $pid ]] || die "no systemd --user running for $user in $env_cg (start it first)"
	echo $BASHPID >"$session_cg/cgroup.procs"
	exec 9<&-
	exec nsenter --target "$pid" --mount --cgroup \
		setpriv --reuid="$uid" --regid="$gid" --init-groups --reset-env \
		env PATH="$SESSION_PATH" XDG_RUNTIME_DIR="$rundir" DBUS_SESSION_BUS_ADDRESS="$bus" "$@"
}

# remove_env: kill whatever is left in the environment and remove its cgroups.
remove_env() {
	[[ -d $env_cg ]] || return 0
	echo 1 >"$env_cg/cgroup.kill"
	local i
	for ((i = 0; i < 500; i++)); do
		grep -qx 'populated 0' "$env_cg/cgroup.events" && break
		sleep 0.01
	done
	find "$env_cg" -depth -type d -exec rmdir {} + 2>/dev/null || true
	[[ ! -d $env_cg ]] || die "could not remove $env_cg"
}

stop() {
	local pid i
	pid=$(manager_pid)
	if [[ -n $pid ]]; then
		kill -TERM "$pid" 2>/dev/null || true
		for ((i = 0; i < 500; i++)); do
			[[ -d /proc/$pid ]] || break
			sleep 0.01
		done
	fi
	remove_env
}

start() {
	local pid log i
	pid=$(manager_pid)
	if [[ -n $pid ]]; then
		print_session "$pid"
		return
	fi
	remove_env # a stale environment (the manager died)
	[[ -x $MANAGER ]] || die "$MANAGER missing (apt-get install systemd)"
	[[ -e /usr/lib/systemd/user/dbus.socket ]] || die "no user bus socket unit (apt-get install dbus-user-session)"
	[[ $(stat -f -c %T "$CGROOT" 2>/dev/null) == cgroup2fs ]] || die "no cgroup v2 hierarchy at $CGROOT"
	[[ -d /run/systemd ]] || die "/run/systemd missing (needed as a mount point)"
	[[ -d $rundir ]] || die "$rundir missing (needed as a mount point; run hack/setup.sh)"
	mkdir -p "$env_cg"
	# The manager moves session processes into its scopes: it must be allowed
	# to write cgroup.procs of their common ancestor, the environment's root
	# (cgroup-v2.rst, "Delegation Containment"). The environment's own parent
	# stays root's: nothing can be moved out of it.
	chown "$uid:$gid" "$env_cg/cgroup.procs"
	delegate "$manager_cg"
	delegate "$session_cg"

	# The launcher's output goes here until its private /run/systemd exists.
	log=$(mktemp /tmp/zviz-systemd-user.XXXXXX)
	# shellcheck disable=SC2016 # expanded by the inner shell
	local inner='
		set -e
		mount -t cgroup2 cgroup2 /sys/fs/cgroup
		# size: systemd refuses daemon-reload with less than 16M free there
		mount -t tmpfs -o mode=0755,size=32m tmpfs /run/systemd
		mkdir /run/systemd/system
		mount -t tmpfs -o mode=0700,uid=$1,gid=$2,size=64m tmpfs /run/user/$1
		exec >/run/systemd/manager.log 2>&1
		echo $$ >/sys/fs/cgroup/user@$1.service/cgroup.procs
		exec setpriv --reuid=$1 --regid=$2 --init-groups --reset-env \
			env PATH=$4 HOME=$3 XDG_RUNTIME_DIR=/run/user/$1 \
			DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/$1/bus \
			SYSTEMD_LOG_TARGET=console '"$MANAGER"' --user'
	(
		exec 9<&- # the lock stays with this script
		echo $BASHPID >"$env_cg/cgroup.procs"
		exec setsid unshare --mount --cgroup --propagation private \
			sh -c "$inner" launcher "$uid" "$gid" "$home" "$SESSION_PATH"
	) </dev/null >"$log" 2>&1 &

	# Ready: the manager is in init.scope, has finished starting up
	# (default.target brings up dbus.socket, i.e. the bus socket), and the bus
	# answers.
	for ((i = 0; i < READY_TIMEOUT * 50; i++)); do
		pid=$(manager_pid)
		[[ -n $pid && -S /proc/$pid/root/$rundir/systemd/private ]] && break
		pid=
		sleep 0.02
	done
	if [[ -n $pid ]]; then
		# "degraded" (a unit failed) exits 1 and is still up.
		(in_session timeout "$READY_TIMEOUT" systemctl --user is-system-running --wait >/dev/null) || true
		# The bus daemon is socket-activated: start it now, as a login would,
		# so that the first client does not pay for (or time) its start.
		(in_session timeout "$READY_TIMEOUT" busctl --user call org.freedesktop.DBus /org/freedesktop/DBus \
			org.freedesktop.DBus GetId >/dev/null) || true
	fi
	if [[ -n $pid && -S /proc/$pid/root/$rundir/bus ]]; then
		rm -f "$log"
		print_session "$pid"
		return
	fi
	{
		echo "systemd-user.sh: systemd --user for $user did not come up in ${READY_TIMEOUT}s; its output:"
		cat "$log"
		[[ -z $pid ]] || cat "/proc/$pid/root/run/systemd/manager.log" 2>/dev/null
	} >&2
	rm -f "$log"
	stop
	exit 1
}

exec 9<"$0"
case $cmd in
start)
	flock 9
	start
	;;
stop)
	flock 9
	stop
	;;
status)
	pid=$(manager_pid)
	[[ -n $pid ]] || { echo "systemd-user.sh: not running for $user in $env_cg" >&2; exit 1; }
	print_session "$pid"
	;;
run)
	[[ ${1:-} == -- ]] && shift
	[[ $# -gt 0 ]] || usage
	in_session "$@"
	;;
*) usage ;;
esac
