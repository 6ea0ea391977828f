package landlock

import (
	"fmt"
	"os"
	"os/exec"

	"golang.org/x/sys/unix"
)

// check is one operation the enforcement child attempts, and the errno it
// must get, as a function of the ABI whose features are in force (0: none).
type check struct {
	name string
	root bool // uses the device nodes, which only root can make
	run  func(pr *probe) error
	want func(abi int) string
}

func always(s string) func(int) string { return func(int) string { return s } }

// deniedFrom: allowed below ABI n (not restricted), errno from n on.
func deniedFrom(n int, errno string) func(int) string {
	return func(abi int) string {
		if abi >= n {
			return errno
		}
		return "ok"
	}
}

// reparent is what cross-directory rename and link inside one writable
// tree give: ABI 1 cannot grant "refer", so the kernel refuses with EXDEV
// (landlock.rst, "File renaming and linking (ABI < 2)").
func reparent(abi int) string {
	if abi == 1 {
		return "EXDEV"
	}
	return "ok"
}

func readFile(pr *probe, f string) error { _, err := os.ReadFile(pr.tr.p(f)); return err }
func listDir(pr *probe, d string) error  { _, err := os.ReadDir(pr.tr.p(d)); return err }
func create(pr *probe, f string) error   { return os.WriteFile(pr.tr.p(f), []byte("x"), 0o644) }
func run(pr *probe, f string) error      { return inheritStdio(exec.Command(pr.tr.p(f))).Run() }

// inheritStdio passes the child's own stdio on: with nil streams os/exec
// would open /dev/null, which the rules do not grant.
func inheritStdio(cmd *exec.Cmd) *exec.Cmd {
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stderr, os.Stderr
	return cmd
}

func openWrite(pr *probe, f string) error {
	file, err := os.OpenFile(pr.tr.p(f), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	_, err = file.WriteString("more")
	file.Close()
	return err
}

// ioctlTCGETS asks a /dev/null twin for terminal attributes: ENOTTY means
// the ioctl reached the driver, EACCES that Landlock stopped it.
func ioctlTCGETS(pr *probe, f string, flag int) error {
	fd, err := unix.Open(pr.tr.p(f), flag|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	_, err = unix.IoctlGetTermios(fd, unix.TCGETS)
	return err
}

func ftruncate(pr *probe, f string) error {
	file, err := os.OpenFile(pr.tr.p(f), os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer file.Close()
	return file.Truncate(1)
}

var checks = []check{
	// Reading and executing.
	{"read file under read-exec", false, func(pr *probe) error { return readFile(pr, "rx/file.txt") }, always("ok")},
	{"list dir under read-exec", false, func(pr *probe) error { return listDir(pr, "rx") }, always("ok")},
	{"read file under read-only", false, func(pr *probe) error { return readFile(pr, "ro/file.txt") }, always("ok")},
	{"read file outside all rules", false, func(pr *probe) error { return readFile(pr, "out/file.txt") }, deniedFrom(1, "EACCES")},
	{"list dir outside all rules", false, func(pr *probe) error { return listDir(pr, "out") }, deniedFrom(1, "EACCES")},
	{"exec under read-exec", false, func(pr *probe) error { return run(pr, "rx/true") }, always("ok")},
	{"exec under writable", false, func(pr *probe) error { return run(pr, "rw/true") }, always("ok")},
	{"exec under read-only", false, func(pr *probe) error { return run(pr, "ro/true") }, deniedFrom(1, "EACCES")},
	{"exec outside all rules", false, func(pr *probe) error { return run(pr, "out/true") }, deniedFrom(1, "EACCES")},

	// Landlock checks at open(2): a file opened before enforcement (the
	// init's stdio, console, sync pipe) keeps working, but reopening it by
	// path, as /dev/stdout does through /proc/self/fd, is checked like any
	// other open (pipes and sockets are exempt: landlock.rst, "Special
	// filesystems").
	{"write to a file opened before", false, func(pr *probe) error { _, err := unix.Write(pr.outFD, []byte("x")); return err }, always("ok")},
	{"reopen it through /proc/self/fd", false, func(pr *probe) error {
		fd, err := unix.Open(fmt.Sprintf("/proc/self/fd/%d", pr.outFD), unix.O_WRONLY|unix.O_CLOEXEC, 0)
		if err == nil {
			unix.Close(fd)
		}
		return err
	}, deniedFrom(1, "EACCES")},

	// Writing outside writable paths.
	{"write file under read-exec", false, func(pr *probe) error { return openWrite(pr, "rx/file.txt") }, deniedFrom(1, "EACCES")},
	{"create file under read-exec", false, func(pr *probe) error { return create(pr, "rx/new") }, deniedFrom(1, "EACCES")},
	{"create file under read-only", false, func(pr *probe) error { return create(pr, "ro/new") }, deniedFrom(1, "EACCES")},
	{"create file outside all rules", false, func(pr *probe) error { return create(pr, "out/new") }, deniedFrom(1, "EACCES")},
	{"remove file under read-exec", false, func(pr *probe) error { return os.Remove(pr.tr.p("rx/del")) }, deniedFrom(1, "EACCES")},
	{"truncate file under read-exec", false, func(pr *probe) error { return unix.Truncate(pr.tr.p("rx/file.txt"), 0) }, deniedFrom(3, "EACCES")},
	// The destination lacks make_reg: EACCES takes precedence over EXDEV
	// (LANDLOCK_ACCESS_FS_REFER in include/uapi/linux/landlock.h), at
	// every ABI.
	{"rename writable to read-only", false, func(pr *probe) error { return os.Rename(pr.tr.p("rw/x"), pr.tr.p("ro/x")) }, deniedFrom(1, "EACCES")},
	{"rename read-exec to writable", false, func(pr *probe) error { return os.Rename(pr.tr.p("rx/y"), pr.tr.p("rw/y")) }, deniedFrom(1, "EACCES")},

	// Everything a program does in a writable place.
	{"write file under writable", false, func(pr *probe) error { return openWrite(pr, "rw/file.txt") }, always("ok")},
	{"create file under writable", false, func(pr *probe) error { return create(pr, "rw/new") }, always("ok")},
	{"remove file under writable", false, func(pr *probe) error { return os.Remove(pr.tr.p("rw/del")) }, always("ok")},
	{"mkdir under writable", false, func(pr *probe) error { return os.Mkdir(pr.tr.p("rw/dir"), 0o755) }, always("ok")},
	{"rmdir under writable", false, func(pr *probe) error { return os.Remove(pr.tr.p("rw/dir")) }, always("ok")},
	{"symlink under writable", false, func(pr *probe) error { return os.Symlink("file.txt", pr.tr.p("rw/sym")) }, always("ok")},
	{"mkfifo under writable", false, func(pr *probe) error { return unix.Mkfifo(pr.tr.p("rw/fifo"), 0o600) }, always("ok")},
	{"unix socket bind+connect under writable", false, func(pr *probe) error { return listenConnect(pr.tr.p("rw/sock")) }, always("ok")},
	{"rename within a writable dir", false, func(pr *probe) error { return os.Rename(pr.tr.p("rw/a/same"), pr.tr.p("rw/a/same2")) }, always("ok")},
	{"rename across writable dirs", false, func(pr *probe) error { return os.Rename(pr.tr.p("rw/a/ren"), pr.tr.p("rw/b/ren")) }, reparent},
	{"hard link across writable dirs", false, func(pr *probe) error { return os.Link(pr.tr.p("rw/a/lnk"), pr.tr.p("rw/b/lnk")) }, reparent},
	{"truncate file under writable", false, func(pr *probe) error { return unix.Truncate(pr.tr.p("rw/file.txt"), 2) }, always("ok")},
	{"ftruncate file under writable", false, func(pr *probe) error { return ftruncate(pr, "rw/file.txt") }, always("ok")},
	{"mknod char device under writable", true, func(pr *probe) error {
		return unix.Mknod(pr.tr.p("rw/null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3)))
	}, deniedFrom(1, "EACCES")},

	// Device files.
	{"write writable device", true, func(pr *probe) error { return openWrite(pr, "rwdev/null") }, always("ok")},
	{"ioctl on writable device", true, func(pr *probe) error { return ioctlTCGETS(pr, "rwdev/null", unix.O_RDWR) }, always("ENOTTY")},
	{"ioctl on read-exec device", true, func(pr *probe) error { return ioctlTCGETS(pr, "rx/null", unix.O_RDONLY) }, func(abi int) string {
		if abi >= 5 {
			return "EACCES"
		}
		return "ENOTTY"
	}},

	// TCP (RestrictNetwork).
	{"TCP connect to a listed port", false, func(pr *probe) error { return tcpConnect(pr.okPort, 0) }, always("ok")},
	{"TCP connect to another port", false, func(pr *probe) error { return tcpConnect(pr.otherPort, 0) }, deniedFrom(4, "EACCES")},
	{"TCP bind to a listed port", false, func(pr *probe) error { return tcpBind(pr.bindPort) }, always("ok")},
	{"TCP bind to another port", false, func(pr *probe) error { return tcpBind(pr.otherBind) }, deniedFrom(4, "EACCES")},

	// Scoping (Scope).
	{"abstract socket created outside", false, func(pr *probe) error { return unixConnect(pr.abstract) }, deniedFrom(6, "EPERM")},
	{"abstract socket created inside", false, func(pr *probe) error {
		return listenConnect(fmt.Sprintf("@zviz-landlock-inside-%d", os.Getpid()))
	}, always("ok")},
	{"signal a process outside", false, func(pr *probe) error { return unix.Kill(os.Getppid(), 0) }, deniedFrom(6, "EPERM")},
	{"signal a process inside", false, func(pr *probe) error { return signalOwnChild() }, always("ok")},
}
