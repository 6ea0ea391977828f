package container

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

// Run is create + start; in the foreground it forwards signals, waits for
// the process, removes the container and returns the exit status (128+N
// when the process was killed by signal N). With detach it returns 0 once
// the process runs.
func Run(o *Options, c *CreateOptions, detach bool) (int, error) {
	if detach {
		if err := Create(o, c); err != nil {
			return 1, err
		}
		if err := Start(o, c.ID); err != nil {
			_ = Delete(o, c.ID, true)
			return 1, err
		}
		return 0, nil
	}
	// Signals that arrive while the container is being built are forwarded
	// once it exists, not acted upon by zviz.
	// No signal.Stop: undoing costs as much as notifyAll, and Run is the
	// last thing a `zviz run` process does.
	sigs := notifyAll()
	cr, err := create(o, c, true)
	if err != nil {
		return 1, err
	}
	var relay *relay
	if cr.master != nil {
		if relay, err = startRelay(cr.master); err != nil {
			cr.net.stop()
			_ = finish(o, cr, true)
			return 1, err
		}
		defer relay.restore()
	}
	oom := watchOOM(cr.rec)
	if err := startCreated(o, cr); err != nil {
		cr.net.stop()
		_ = finish(o, cr, true)
		return 1, err
	}
	o.debugf("started")
	code := waitForeground(cr, sigs, relay)
	o.debugf("process exited (status %d)", code)
	if err := oomNote(cr.rec, oom(), 0); err != nil && o.Warn != nil {
		fmt.Fprintf(o.Warn, "zviz: %v\n", err)
	}
	if relay != nil {
		relay.finish()
	}
	if cr.waitLog != nil {
		cr.waitLog()
	}
	cr.net.stop()
	err = finish(o, cr, true)
	o.debugf("deleted")
	return code, err
}

// startCreated and finish are Start and Delete for the container run has
// just created: its record is in memory, so they only take the lock (a
// delete from elsewhere in between is still seen: lookup fails).
func startCreated(o *Options, cr *created) error {
	h, err := o.store().lookup(cr.rec.ID)
	if err != nil {
		return err
	}
	defer h.unlock()
	return start(o, h, cr.rec)
}

func finish(o *Options, cr *created, force bool) error {
	h, err := o.store().lookup(cr.rec.ID)
	if errors.Is(err, ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer h.unlock()
	return destroy(o, h, cr.rec, force)
}

// waitForeground forwards signals to the container's init until it exits.
func waitForeground(cr *created, sigs chan os.Signal, r *relay) int {
	done := make(chan int, 1)
	go func() {
		ps, _ := cr.proc.Wait()
		done <- statusCode(ps)
	}()
	return forwardSignals(sigs, done, r, func(sig syscall.Signal) { _ = unix.Kill(cr.pid, sig) })
}

// forwardSignals relays the signals zviz receives to a foreground process
// with send, and a terminal's size changes to its relay r (if any), until
// done delivers the process's status.
func forwardSignals(sigs chan os.Signal, done <-chan int, r *relay, send func(syscall.Signal)) int {
	for {
		select {
		case code := <-done:
			return code
		case s := <-sigs:
			sig := s.(syscall.Signal)
			switch sig {
			case unix.SIGCHLD, unix.SIGURG, unix.SIGPIPE:
				// SIGURG is the Go runtime's preemption signal; SIGCHLD and
				// SIGPIPE concern zviz itself.
				continue
			case unix.SIGWINCH:
				if r != nil {
					r.resize()
				}
				continue
			}
			send(sig)
		}
	}
}

// urgent are the signals a user or supervisor typically sends to stop or
// poke a foreground `zviz run`; they are caught before anything else
// happens.
var urgent = []os.Signal{unix.SIGHUP, unix.SIGINT, unix.SIGQUIT, unix.SIGTERM,
	unix.SIGUSR1, unix.SIGUSR2, unix.SIGWINCH}

// notifyAll catches every signal for forwarding. Enabling a signal costs a
// round trip to the Go runtime's signal goroutine (about 30 µs, 2 ms for
// all of them), so the rare ones are enabled in the background while the
// container is being built.
func notifyAll() chan os.Signal {
	sigs := make(chan os.Signal, 64)
	signal.Notify(sigs, urgent...)
	go signal.Notify(sigs)
	return sigs
}
