package integration

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/zviz/zviz/tests/probe/report"
	"github.com/zviz/zviz/tests/testutil"
)

// consoleSocket listens on a unix socket the runtime's user may connect
// to and returns its path and a channel delivering the first pty master
// received with SCM_RIGHTS.
func consoleSocket(t *testing.T, user string) (string, <-chan *os.File) {
	t.Helper()
	path := filepath.Join(hostTempDir(t, user), "console.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	if err := os.Chmod(path, 0o777); err != nil {
		t.Fatal(err)
	}
	ch := make(chan *os.File, 1)
	go func() {
		defer close(ch)
		c, err := l.AcceptUnix()
		if err != nil {
			return
		}
		defer c.Close()
		buf, oob := make([]byte, 4096), make([]byte, unix.CmsgSpace(4))
		_, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
		if err != nil {
			return
		}
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil || len(msgs) != 1 {
			return
		}
		fds, err := unix.ParseUnixRights(&msgs[0])
		if err != nil || len(fds) != 1 {
			return
		}
		ch <- os.NewFile(uintptr(fds[0]), "pty-master")
	}()
	return path, ch
}

// TestTerminalConsoleSocket: create with --console-socket hands the pty
// master over; the test drives sh through it, reads the output back, and
// sees the status through the console; the probe's stdio are a tty.
func TestTerminalConsoleSocket(t *testing.T) {
	forEachUser(t, func(t *testing.T, r *rt) {
		sock, masters := consoleSocket(t, r.user)
		b := r.bundle(func(s *specs.Spec) {
			s.Process.Terminal = true
			s.Process.Args = []string{"sh"}
		})
		d := r.createLogged(b, "--console-socket", sock)
		master := <-masters
		if master == nil {
			t.Fatal("no pty master received on the console socket")
		}
		defer master.Close()
		out := testutil.ReadPTY(master)
		r.ok("start", d.id)
		if _, err := master.WriteString("echo h''i; exit 3\n"); err != nil {
			t.Fatal(err)
		}
		out.WaitFor(t, "hi\r\n", 0)
		d.wait()

		sock, masters = consoleSocket(t, r.user)
		b = r.bundle(func(s *specs.Spec) { s.Process.Terminal = true })
		d = r.createLogged(b, "--console-socket", sock)
		master = <-masters
		if master == nil {
			t.Fatal("no pty master received on the console socket")
		}
		defer master.Close()
		out = testutil.ReadPTY(master)
		r.ok("start", d.id)
		<-out.Done()
		d.wait()
		var in report.Info
		testutil.DecodeJSON(t, []byte(out.String()), &in)
		if in.TTY != [3]bool{true, true, true} {
			t.Errorf("probe stdio tty %v, want all three", in.TTY)
		}
	})
}

// TestTerminalRunConsoleSocketExitCode: `zviz run --console-socket`
// passes the master and returns the process's exit status.
func TestTerminalRunConsoleSocketExitCode(t *testing.T) {
	forEachUser(t, func(t *testing.T, r *rt) {
		sock, masters := consoleSocket(t, r.user)
		b := r.bundle(func(s *specs.Spec) {
			s.Process.Terminal = true
			s.Process.Args = []string{"sh"}
		})
		c := r.cmd("run", "--console-socket", sock, "--bundle", b, "tty-"+randID())
		resc := make(chan result, 1)
		go func() { resc <- r.runCmd(c) }()
		var master *os.File
		select {
		case master = <-masters:
		case res := <-resc:
			t.Fatalf("run exited before handing over the console: %v", res)
		}
		if master == nil {
			t.Fatal("no pty master received on the console socket")
		}
		defer master.Close()
		out := testutil.ReadPTY(master)
		if _, err := master.WriteString("echo h''i; exit 3\n"); err != nil {
			t.Fatal(err)
		}
		res := <-resc
		if res.code != 3 {
			t.Errorf("run: %v, want exit 3", res)
		}
		if strings.Contains(res.stdout, "hi") || strings.Contains(res.stdout, "BusyBox") {
			t.Errorf("run relayed the console to its stdout although the master went to --console-socket: %v", res)
		}
		select {
		case <-out.Done():
		case <-time.After(5 * time.Second):
		}
		if !strings.Contains(out.String(), "hi\r\n") {
			t.Errorf("console socket's master: output %q, want hi", out.String())
		}
	})
}

// TestTerminalRun: a foreground `zviz run` with terminal: true on a real
// pty: typed commands run, output comes back, window size changes follow
// (SIGWINCH), and the exit status is returned.
func TestTerminalRun(t *testing.T) {
	forEachUser(t, func(t *testing.T, r *rt) {
		master, slave := testutil.OpenPTY(t)
		setSize(t, master, 30, 100)
		b := r.bundleWith(func(s *specs.Spec) {
			s.Process.Terminal = true
			s.Process.Args = []string{"sh"}
			s.Process.Env = append(s.Process.Env, "PS1=$ ")
		}, nil)
		c := r.cmd("run", "--bundle", b, "tty-"+randID())
		out, waitc := testutil.StartOnPTY(t, c, master, slave)
		type_ := func(s string) {
			if _, err := master.WriteString(s); err != nil {
				t.Fatal(err)
			}
		}
		type_("echo size=$(stty size)=\n")
		off := out.WaitFor(t, "size=30 100=", 0)
		setSize(t, master, 40, 120)
		c.Process.Signal(unix.SIGWINCH)
		time.Sleep(100 * time.Millisecond)
		type_("echo size=$(stty size)=; echo t''ty=$(tty)\n")
		off = out.WaitFor(t, "size=40 120=", off)
		out.WaitFor(t, "tty=/dev/pts/", off)
		type_("exit 5\n")
		select {
		case <-waitc:
			if code := c.ProcessState.ExitCode(); code != 5 {
				t.Errorf("run: exit %d, want 5; terminal: %q", code, out.String())
			}
		case <-time.After(20 * time.Second):
			c.Process.Kill()
			<-waitc
			t.Fatalf("run did not exit; terminal: %q", out.String())
		}
	})
}

func setSize(t *testing.T, master *os.File, rows, cols uint16) {
	t.Helper()
	if err := unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols}); err != nil {
		t.Fatal(err)
	}
}
