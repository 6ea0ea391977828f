// The pre-runtime stage of `zviz exec`, and of a container's init that
// joins a user, mount or pid namespace by path: see doc.go and README.md.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

// send_msg sends one datagram of package wire's protocol on the sync socket.
static void send_msg(int sync, const char *fmt, ...) {
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	if (n > 0 && n < (int)sizeof buf)
		(void)send(sync, buf, (size_t)n, MSG_NOSIGNAL);
}

// fail reports the root cause to the parent (a wire Error message; the
// strerror text has no characters JSON would need escaped) and exits.
static void fail(int sync, const char *what, int err) {
	send_msg(sync, "{\"kind\":\"error\",\"payload\":{\"message\":\"%s: %s\"}}", what, strerror(err));
	_exit(1);
}

// malformed is a marker set by hand, not by zviz.
static void malformed(const char *name, const char *v) {
	fprintf(stderr, "zviz: %s=%s: malformed (this is zviz's internal entry point)\n", name, v);
	_exit(2);
}

// set_oom writes process.oomScoreAdj (_ZVIZ_OOM, when set) while the
// process is still dumpable: an undumpable process's /proc files belong to
// root of the user namespace it exec'd in, which a rootless caller's
// process is not, and cannot open.
static void set_oom(int sync) {
	const char *adj = getenv("_ZVIZ_OOM");
	if (adj == NULL)
		return;
	int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, adj, strlen(adj)) < 0) {
		char what[64];
		snprintf(what, sizeof what, "set process.oomScoreAdj to %.16s", adj);
		fail(sync, what, errno);
	}
	close(fd);
}

// undumpable: the zviz binary is about to run inside the container's
// namespaces, with their privileges: nothing there may open /proc/PID/exe
// or /proc/PID/mem of it (CVE-2019-5736) or ptrace it. execve of the
// workload makes it dumpable again.
static void undumpable(int sync) {
	set_oom(sync);
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		fail(sync, "set the process undumpable", errno);
}

// fork_into_children forks once, for the pid and time namespaces, which
// apply to children only. The parent reports the child's pid (as the
// caller's pid namespace sees it) and leaves; the child is reparented to
// the subreaper (the zviz process that started us, or conmon). Without a
// fork the process reports itself. A forked child calls setsid: a session
// of its own, as the init has, so that a --tty terminal becomes its
// controlling terminal.
static void fork_into_children(int sync, int needed) {
	pid_t pid = getpid();
	if (needed) {
		pid = fork();
		if (pid < 0)
			fail(sync, "fork into the container's pid namespace", errno);
		if (pid == 0) {
			if (setsid() < 0)
				fail(sync, "setsid", errno);
			return;
		}
	}
	send_msg(sync, "{\"kind\":\"pid\",\"payload\":{\"pid\":%d}}", (int)pid);
	if (needed)
		_exit(0);
}

// exec_stage: _ZVIZ_NSENTER=PIDFD,FLAGS,SYNCFD, set by `zviz exec`. One
// setns on a pidfd of the init enters all the namespaces at once, the user
// namespace first (setns(2), "pidfd"), with the capabilities it gives.
static void exec_stage(const char *v) {
	int pidfd, sync;
	unsigned long flags;
	if (sscanf(v, "%d,%lu,%d", &pidfd, &flags, &sync) != 3)
		malformed("_ZVIZ_NSENTER", v);
	undumpable(sync);
	if (flags != 0 && setns(pidfd, (int)flags) < 0)
		fail(sync, "join the namespaces of the container's init", errno);
	close(pidfd);
	int fork_needed = (flags & (CLONE_NEWPID | CLONE_NEWTIME)) != 0;
	fork_into_children(sync, fork_needed);
	if (!fork_needed && setsid() < 0)
		fail(sync, "setsid", errno);
}

// ns_name names a namespace flag for errors, as linux.namespaces does.
static const char *ns_name(unsigned long flag) {
	switch (flag) {
	case CLONE_NEWUSER: return "user";
	case CLONE_NEWNS: return "mount";
	case CLONE_NEWPID: return "pid";
	}
	return "unknown";
}

// init_stage: _ZVIZ_INITNS=SYNCFD,UNSHARE,FD:FLAG[,FD:FLAG...], set by
// `zviz create` when the config joins a user, mount or pid namespace by
// path. The descriptors were opened and checked by the parent, the user
// namespace first: enter them in that order, then make the new namespaces
// (owned by the joined user namespace), then fork for a pid namespace.
static void init_stage(const char *v) {
	int sync, n;
	unsigned long unshare_flags;
	if (sscanf(v, "%d,%lu%n", &sync, &unshare_flags, &n) != 2)
		malformed("_ZVIZ_INITNS", v);
	undumpable(sync);
	int fork_needed = (unshare_flags & (CLONE_NEWPID | CLONE_NEWTIME)) != 0;
	for (const char *p = v + n; *p == ','; p += n) {
		int fd;
		unsigned long flag;
		if (sscanf(p, ",%d:%lu%n", &fd, &flag, &n) != 2)
			malformed("_ZVIZ_INITNS", v);
		if (setns(fd, (int)flag) < 0) {
			char what[96];
			snprintf(what, sizeof what, "join the %s namespace given in linux.namespaces", ns_name(flag));
			fail(sync, what, errno);
		}
		close(fd);
		if (flag == CLONE_NEWPID)
			fork_needed = 1;
	}
	if (unshare_flags != 0 && unshare((int)unshare_flags) < 0)
		fail(sync, "create the container's namespaces (unshare)", errno);
	// Not forked, the process leads the session Go's clone made for it.
	fork_into_children(sync, fork_needed);
}

// zviz_nsenter runs before the Go runtime starts any thread, in every zviz
// process; it acts only in the two processes marked for it.
__attribute__((constructor)) static void zviz_nsenter(void) {
	const char *v = getenv("_ZVIZ_NSENTER");
	if (v != NULL) {
		exec_stage(v);
		return;
	}
	v = getenv("_ZVIZ_INITNS");
	if (v != NULL)
		init_stage(v);
}
