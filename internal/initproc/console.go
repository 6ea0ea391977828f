package initproc

import (
	"fmt"
	"os"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// console is the pty of a process with terminal: true. It is allocated from
// the container's own devpts (so the container sees a normal /dev/pts/N);
// the master goes to the parent (and on to --console-socket), the slave
// becomes the process's stdio and controlling terminal.
type console struct {
	master *os.File
	slave  *os.File
}

func openConsole(want bool, sp *specs.Process) (*console, error) {
	if !want {
		return nil, nil
	}
	mfd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open /dev/ptmx for the console: %w", err)
	}
	master := os.NewFile(uintptr(mfd), "/dev/ptmx")
	if err := unix.IoctlSetPointerInt(mfd, unix.TIOCSPTLCK, 0); err != nil {
		master.Close()
		return nil, fmt.Errorf("unlock pty: %w", err)
	}
	n, err := unix.IoctlGetUint32(mfd, unix.TIOCGPTN)
	if err != nil {
		master.Close()
		return nil, fmt.Errorf("get pty number: %w", err)
	}
	name := "/dev/pts/" + strconv.Itoa(int(n))
	sfd, err := unix.Open(name, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		master.Close()
		return nil, fmt.Errorf("open console %s: %w", name, err)
	}
	c := &console{master: master, slave: os.NewFile(uintptr(sfd), name)}
	if sp.ConsoleSize != nil {
		ws := &unix.Winsize{Row: uint16(sp.ConsoleSize.Height), Col: uint16(sp.ConsoleSize.Width)}
		if err := unix.IoctlSetWinsize(mfd, unix.TIOCSWINSZ, ws); err != nil {
			c.close()
			return nil, fmt.Errorf("set console size: %w", err)
		}
	}
	return c, nil
}

func (c *console) close() {
	c.master.Close()
	c.slave.Close()
}

// attachConsole makes the slave stdin, stdout, stderr and the controlling
// terminal of the init's session (the parent started us with setsid).
func (p *process) attachConsole() error {
	c := p.console
	if c == nil {
		return nil
	}
	fd := int(c.slave.Fd())
	for i := 0; i < 3; i++ {
		if err := unix.Dup3(fd, i, 0); err != nil {
			return fmt.Errorf("dup console onto fd %d: %w", i, err)
		}
	}
	if err := unix.IoctlSetInt(0, unix.TIOCSCTTY, 0); err != nil {
		return fmt.Errorf("set controlling terminal: %w", err)
	}
	c.slave.Close()
	return nil
}
