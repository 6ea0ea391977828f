// The pre-runtime stage of `zviz exec`: see doc.go and README.md.
#define _GNU_SOURCE
#include <errno.h>
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

// zviz_nsenter runs before the Go runtime starts any thread, in every zviz
// process; it acts only when the parent marked this one as the exec stage
// with _ZVIZ_NSENTER=PIDFD,FLAGS,SYNCFD.
__attribute__((constructor)) static void zviz_nsenter(void) {
	const char *v = getenv("_ZVIZ_NSENTER");
	if (v == NULL)
		return;
	int pidfd, sync;
	unsigned long flags;
	if (sscanf(v, "%d,%lu,%d", &pidfd, &flags, &sync) != 3) {
		fprintf(stderr, "zviz: _ZVIZ_NSENTER=%s: malformed (this is zviz's internal entry point)\n", v);
		_exit(2);
	}
	// The zviz binary is about to run inside the container: nothing there
	// may open /proc/PID/exe or /proc/PID/mem of it (CVE-2019-5736).
	// execve of the workload makes it dumpable again.
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		fail(sync, "set the exec process undumpable", errno);
	// One setns on a pidfd enters all the namespaces at once, the user
	// namespace first (setns(2), "pidfd"), with the capabilities it gives.
	if (flags != 0 && setns(pidfd, (int)flags) < 0)
		fail(sync, "join the namespaces of the container's init", errno);
	close(pidfd);
	pid_t pid = getpid();
	// pid and time namespaces apply to children only: fork once. The
	// parent reports the child's pid (as the caller's pid namespace sees
	// it) and leaves; the child is reparented to the subreaper.
	if (flags & (CLONE_NEWPID | CLONE_NEWTIME)) {
		pid = fork();
		if (pid < 0)
			fail(sync, "fork into the container's pid namespace", errno);
		if (pid > 0) {
			send_msg(sync, "{\"kind\":\"exec-pid\",\"payload\":{\"pid\":%d}}", (int)pid);
			_exit(0);
		}
	} else {
		send_msg(sync, "{\"kind\":\"exec-pid\",\"payload\":{\"pid\":%d}}", (int)pid);
	}
	// A session of its own, as the init has: a terminal given with --tty
	// becomes its controlling terminal.
	if (setsid() < 0)
		fail(sync, "setsid", errno);
}
