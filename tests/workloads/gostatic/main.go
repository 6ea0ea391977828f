// Command gostatic is the workload corpus's static Go program: it exercises
// what the Go runtime and the os and net packages ask of the kernel (async
// preemption, timers, signals, the *at file calls, pidfds, the netpoller,
// loopback TCP) and prints "gostatic: OK" when every check passed. Each
// failure is printed and makes the exit status 1.
//
//	gostatic            run every check
//	gostatic spin       the async preemption child (see checkPreemption)
//	gostatic denied     make one denied (ptrace) and one unlisted (syslog)
//	                    call: the control for the denial log
package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "spin":
			spin()
			return
		case "denied":
			denied()
			return
		}
		fmt.Fprintf(os.Stderr, "gostatic: unknown mode %q\n", os.Args[1])
		os.Exit(2)
	}
	checks := []struct {
		name string
		f    func() error
	}{
		{"preemption", checkPreemption},
		{"goroutines", checkGoroutines},
		{"timers", checkTimers},
		{"signals", checkSignals},
		{"files", checkFiles},
		{"tcp", checkTCP},
	}
	failed := false
	for _, c := range checks {
		start := time.Now()
		if err := c.f(); err != nil {
			fmt.Printf("gostatic: %s: FAIL: %v\n", c.name, err)
			failed = true
			continue
		}
		fmt.Printf("gostatic: %s: ok (%v)\n", c.name, time.Since(start).Round(time.Millisecond))
	}
	if failed {
		os.Exit(1)
	}
	fmt.Println("gostatic: OK")
}

var stop atomic.Bool

// spin needs asynchronous preemption: with one P, the goroutine spinning in
// a loop without calls (no cooperative preemption point) gives the P back
// only when sysmon preempts it with a signal sent by tgkill. Without it the
// main goroutine never wakes from its sleep and the parent kills us.
func spin() {
	runtime.GOMAXPROCS(1)
	var n uint64
	done := make(chan uint64)
	go func() {
		for !stop.Load() {
			n++
		}
		done <- n
	}()
	time.Sleep(100 * time.Millisecond)
	stop.Store(true)
	fmt.Printf("spun %d\n", <-done)
}

func checkPreemption() error {
	out, err := runChild(20*time.Second, "spin")
	if err != nil {
		return fmt.Errorf("child with a tight loop on one P: %w (async preemption needs tgkill)\n%s", err, out)
	}
	if !bytes.HasPrefix(out, []byte("spun ")) {
		return fmt.Errorf("child printed %q", out)
	}
	return nil
}

// runChild runs this program again with args (fork+exec, pidfd wait) and
// kills it after timeout (os.Process.Kill: pidfd_send_signal).
func runChild(timeout time.Duration, args ...string) ([]byte, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(timeout):
		cmd.Process.Kill()
		<-done
		err = fmt.Errorf("timed out after %v", timeout)
	}
	return out.Bytes(), err
}

// checkGoroutines runs many goroutines over all Ps with channels, a mutex
// and a WaitGroup, and makes the runtime create and park threads.
func checkGoroutines() error {
	const workers, items = 64, 2000
	in := make(chan int)
	var mu sync.Mutex
	var wg sync.WaitGroup
	sum := 0
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for v := range in {
				mu.Lock()
				sum += v
				mu.Unlock()
				if v%500 == 0 {
					runtime.Gosched()
					time.Sleep(time.Millisecond)
				}
			}
		}()
	}
	for i := 1; i <= items; i++ {
		in <- i
	}
	close(in)
	wg.Wait()
	if want := items * (items + 1) / 2; sum != want {
		return fmt.Errorf("sum %d, want %d", sum, want)
	}
	// Threads: the runtime has started Ms for the Ps, sysmon and the
	// blocked goroutines (clone with thread flags).
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return err
	}
	var threads int
	for _, l := range bytes.Split(b, []byte("\n")) {
		fmt.Sscanf(string(l), "Threads: %d", &threads)
	}
	if threads < 2 {
		return fmt.Errorf("%d threads", threads)
	}
	return nil
}

func checkTimers() error {
	start := time.Now()
	var fired atomic.Int32
	var wg sync.WaitGroup
	for i := range 100 {
		wg.Add(1)
		time.AfterFunc(time.Duration(i%10)*time.Millisecond, func() {
			fired.Add(1)
			wg.Done()
		})
	}
	tk := time.NewTicker(5 * time.Millisecond)
	for range 5 {
		<-tk.C
	}
	tk.Stop()
	t := time.NewTimer(time.Hour)
	if !t.Stop() {
		return errors.New("stopping a pending timer failed")
	}
	wg.Wait()
	if fired.Load() != 100 {
		return fmt.Errorf("%d of 100 timers fired", fired.Load())
	}
	select {
	case <-time.After(20 * time.Millisecond):
	case <-time.After(time.Second):
		return errors.New("time.After ordering")
	}
	if el := time.Since(start); el < 25*time.Millisecond || el > 10*time.Second {
		return fmt.Errorf("elapsed %v", el)
	}
	return nil
}

// checkSignals sends signals to this process (kill, tgkill through
// os.Process.Signal) and to a child, and ignores and restores one.
func checkSignals() error {
	c := make(chan os.Signal, 4)
	signal.Notify(c, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGHUP)
	defer signal.Stop(c)
	if err := syscall.Kill(os.Getpid(), syscall.SIGUSR1); err != nil {
		return fmt.Errorf("kill: %w", err)
	}
	self, _ := os.FindProcess(os.Getpid())
	if err := self.Signal(syscall.SIGUSR2); err != nil {
		return fmt.Errorf("os.Process.Signal: %w", err)
	}
	if err := syscall.Tgkill(os.Getpid(), syscall.Gettid(), syscall.SIGHUP); err != nil {
		return fmt.Errorf("tgkill: %w", err)
	}
	got := map[os.Signal]bool{}
	timeout := time.After(5 * time.Second)
	for len(got) < 3 {
		select {
		case s := <-c:
			got[s] = true
		case <-timeout:
			return fmt.Errorf("received only %v", got)
		}
	}
	signal.Ignore(syscall.SIGUSR1)
	syscall.Kill(os.Getpid(), syscall.SIGUSR1) // ignored: must not kill us
	signal.Reset(syscall.SIGUSR1)
	// A child killed by a signal (pidfd_send_signal, wait4/waitid).
	cmd := exec.Command("/bin/sleep", "30")
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start sleep: %w", err)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("signal child: %w", err)
	}
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return fmt.Errorf("wait child: %v", err)
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGTERM {
		return fmt.Errorf("child ended with %v, want SIGTERM", err)
	}
	return nil
}

// checkFiles uses the os calls that go through the *at family.
func checkFiles() error {
	dir, err := os.MkdirTemp("", "gostatic-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "sub", "b")
	if err := os.WriteFile(a, []byte("hello"), 0o600); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(b), 0o755); err != nil {
		return err
	}
	if err := os.Rename(a, b); err != nil {
		return err
	}
	if _, err := os.Stat(a); !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("after rename, stat old name: %v", err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink("sub/b", link); err != nil {
		return err
	}
	if target, err := os.Readlink(link); err != nil || target != "sub/b" {
		return fmt.Errorf("readlink: %q, %v", target, err)
	}
	if err := os.Link(b, filepath.Join(dir, "hard")); err != nil {
		return err
	}
	if err := os.Chmod(b, 0o640); err != nil {
		return err
	}
	st, err := os.Stat(link) // follows the symlink
	if err != nil {
		return err
	}
	if st.Mode().Perm() != 0o640 || st.Size() != 5 {
		return fmt.Errorf("stat through link: mode %v size %d", st.Mode(), st.Size())
	}
	if lst, err := os.Lstat(link); err != nil || lst.Mode()&os.ModeSymlink == 0 {
		return fmt.Errorf("lstat link: %v, %v", lst, err)
	}
	if err := os.Chtimes(b, time.Unix(1e9, 0), time.Unix(1e9, 0)); err != nil {
		return err
	}
	f, err := os.OpenFile(b, os.O_RDWR|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	f.WriteString(" world")
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("fsync: %w", err)
	}
	f.Close()
	// io.Copy between files: copy_file_range, with a fallback.
	src, _ := os.Open(b)
	dst, _ := os.Create(filepath.Join(dir, "copy"))
	_, err = io.Copy(dst, src)
	src.Close()
	dst.Close()
	if err != nil {
		return fmt.Errorf("copy: %w", err)
	}
	got, err := os.ReadFile(filepath.Join(dir, "copy"))
	if err != nil || string(got) != "hello world" {
		return fmt.Errorf("copy holds %q, %v", got, err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil || len(ents) != 4 {
		return fmt.Errorf("readdir: %d entries, %v", len(ents), err)
	}
	return os.RemoveAll(filepath.Join(dir, "sub"))
}

// checkTCP runs an echo server and 8 concurrent clients on loopback.
func checkTCP() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	errc := make(chan error, 8)
	for i := range 8 {
		go func() {
			c, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
			if err != nil {
				errc <- err
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			msg := bytes.Repeat([]byte{byte('a' + i)}, 64<<10)
			go c.Write(msg)
			got := make([]byte, len(msg))
			if _, err := io.ReadFull(c, got); err != nil {
				errc <- err
				return
			}
			if !bytes.Equal(got, msg) {
				errc <- errors.New("echo mismatch")
				return
			}
			errc <- nil
		}()
	}
	for range 8 {
		if err := <-errc; err != nil {
			return err
		}
	}
	return nil
}

// denied makes calls that every profile but development refuses: ptrace
// (denied with EPERM) and syslog (unlisted: ENOSYS). It reports the errnos.
func denied() {
	_, _, e1 := syscall.Syscall(syscall.SYS_PTRACE, syscall.PTRACE_PEEKDATA, 1, 0)
	const sizeBuffer = 10 // SYSLOG_ACTION_SIZE_BUFFER
	_, _, e2 := syscall.Syscall(syscall.SYS_SYSLOG, sizeBuffer, 0, 0)
	fmt.Printf("ptrace: %v\nsyslog: %v\n", errName(e1), errName(e2))
}

func errName(e syscall.Errno) string {
	switch e {
	case 0:
		return "ok"
	case syscall.EPERM:
		return "EPERM"
	case syscall.ENOSYS:
		return "ENOSYS"
	}
	return e.Error()
}
