package broker

import (
	"bytes"
	"runtime"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TestOpenThread: the broker's handle on a calling thread (here a thread
// of the test itself) reads its memory and takes its descriptors, with
// PIDFD_THREAD and, as on kernels before 6.9, through the thread group's
// leader.
func TestOpenThread(t *testing.T) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])
	secret := []byte("zviz-broker-read-me")
	tids := make(chan int)
	done := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		tids <- unix.Gettid()
		<-done
	}()
	tid := <-tids
	defer close(done)
	for _, c := range []struct {
		name string
		flag int
	}{{"PIDFD_THREAD", unix.O_EXCL}, {"leader", 0x7f000000}} {
		t.Run(c.name, func(t *testing.T) {
			old := pidfdThread
			pidfdThread = c.flag
			defer func() { pidfdThread = old }()
			th, e := openThread(tid)
			if e != 0 {
				t.Fatalf("openThread(%d): %v", tid, e)
			}
			defer th.close()
			if th.cacheable != (c.name == "PIDFD_THREAD") {
				t.Errorf("cacheable = %v", th.cacheable)
			}
			tg := &target{pid: tid, th: th}
			defer tg.close()
			got, e := tg.read(uint64(uintptr(unsafe.Pointer(&secret[0]))), len(secret))
			if e != 0 || !bytes.Equal(got, secret) {
				t.Errorf("read = %q %v, want %q", got, e, secret)
			}
			if _, e := tg.read(8, 4); e != unix.EFAULT {
				t.Errorf("read of an unmapped address: %v, want EFAULT", e)
			}
			fd, e := tg.getfd(uint64(p[1]))
			if e != 0 {
				t.Fatalf("getfd: %v", e)
			}
			var a, b unix.Stat_t
			if unix.Fstat(fd, &a) != nil || unix.Fstat(p[1], &b) != nil || a.Ino != b.Ino {
				t.Errorf("getfd took another file (inode %d, want %d)", a.Ino, b.Ino)
			}
			if _, e := tg.getfd(1 << 20); e != unix.EBADF {
				t.Errorf("getfd of a closed descriptor: %v, want EBADF", e)
			}
		})
	}
}

// TestSessionsOwnTheirThreads: two listeners' sessions of one broker keep
// their callers' threads apart, so one session closing (its listener is
// done) leaves what the other reads through open.
func TestSessionsOwnTheirThreads(t *testing.T) {
	b := &Broker{}
	s1, s2 := b.Session(), b.Session()
	defer s2.Close()
	tid := unix.Gettid()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	th1, e1 := s1.threads.get(tid)
	th2, e2 := s2.threads.get(tid)
	if e1 != 0 || e2 != 0 {
		t.Fatalf("open thread %d: %v %v", tid, e1, e2)
	}
	if !th1.cacheable {
		t.Skip("no PIDFD_THREAD (Linux < 6.9): threads are not cached")
	}
	if th1 == th2 {
		t.Fatal("two sessions share one cached thread")
	}
	s1.Close()
	if len(s1.threads.m) != 0 {
		t.Errorf("closed session keeps %d threads", len(s1.threads.m))
	}
	for _, fd := range []int{th2.pidfd, th2.mem} {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil {
			t.Errorf("the other session's descriptor %d: %v", fd, err)
		}
	}
	tg := &target{pid: tid, th: th2}
	defer tg.close()
	if _, e := tg.getfd(uint64(th2.pidfd)); e != 0 {
		t.Errorf("getfd through the other session after one closed: %v", e)
	}
}
