package initproc

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	// The C constructor that joins the container's namespaces before the
	// Go runtime starts, in the exec process only.
	_ "github.com/zviz/zviz/internal/nsenter"
	"github.com/zviz/zviz/internal/wire"
)

// EnvNsenter marks the process `zviz exec` starts (package nsenter reads
// it before the Go runtime starts): PIDFD,FLAGS,SYNCFD.
const EnvNsenter = "_ZVIZ_NSENTER"

// ExecMain is the life of a process started by `zviz exec`: by the time
// it runs, the nsenter constructor has put it in the container's
// namespaces. It receives the process and the policy, and launches the
// process exactly as the init launches the container's (process.launch).
// It returns only on failure, after reporting it to the parent.
func ExecMain() {
	f := strings.Split(os.Getenv(EnvNsenter), ",")
	fd, err := strconv.Atoi(f[len(f)-1])
	if len(f) != 3 || err != nil {
		fmt.Fprintln(os.Stderr, "zviz exec: started without a sync socket; this is zviz's internal entry point")
		os.Exit(2)
	}
	conn := wire.FromFD(fd)
	var e wire.Exec
	if _, err := conn.Expect(wire.KindExec, &e); err != nil {
		if !errors.Is(err, wire.ErrClosed) {
			fmt.Fprintf(os.Stderr, "zviz exec: %v\n", err)
		}
		os.Exit(1)
	}
	err = execProcess(conn, &e)
	_ = conn.Fail(err)
	os.Exit(1)
}

// execProcess is the exec's recipe: the init's build steps that concern
// the process (the container exists already), then the init's launch.
func execProcess(conn *wire.Conn, e *wire.Exec) error {
	if e.Process == nil || len(e.Process.Args) == 0 {
		return errors.New("process: args must not be empty")
	}
	// The ids we came with need not be mapped in the container's user
	// namespace (real root with uidMappings): act as its root, like the init.
	if err := becomeRoot(e.UserNS); err != nil {
		return err
	}
	// The pty comes from the container's devpts, which the joined mount
	// namespace shows at /dev/ptmx.
	con, err := openConsole(e.Process.Terminal, e.Process)
	if err != nil {
		return err
	}
	s := &specs.Spec{Process: e.Process}
	p, err := prepareProcess(&wire.Bootstrap{PreserveFDs: e.PreserveFDs, Policy: e.Policy}, s, con)
	if err != nil {
		return err
	}
	var fds []int
	if con != nil {
		fds = append(fds, int(con.master.Fd()))
	}
	if err := conn.Send(wire.KindReady, nil, fds...); err != nil {
		return err
	}
	if con != nil {
		con.master.Close()
	}
	// The sync socket stays open (close-on-exec) so that the parent learns
	// of a failure in launch, and of success when it closes at execve.
	return p.launch()
}
