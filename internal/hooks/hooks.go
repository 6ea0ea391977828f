// Package hooks runs OCI lifecycle hooks (runtime-spec config.md, "POSIX
// platform hooks"): each hook is executed with the container's state JSON on
// its standard input, its own args and env, and an optional timeout. A hook
// that fails or times out fails the lifecycle step it belongs to, except
// poststop hooks, whose failures the caller only reports.
package hooks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Run executes hooks in order; stage names them in errors
// ("createRuntime hook #1 /usr/bin/x: exit status 2: <stderr>").
func Run(stage string, hooks []specs.Hook, state []byte) error {
	for i, h := range hooks {
		if err := run(h, state); err != nil {
			return fmt.Errorf("%s hook #%d %s: %w", stage, i, h.Path, err)
		}
	}
	return nil
}

func run(h specs.Hook, state []byte) error {
	ctx := context.Background()
	if h.Timeout != nil {
		if *h.Timeout <= 0 {
			return fmt.Errorf("timeout %d: must be positive", *h.Timeout)
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(*h.Timeout)*time.Second)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, h.Path)
	if len(h.Args) > 0 {
		cmd.Args = h.Args
	} else {
		cmd.Args = []string{h.Path}
	}
	cmd.Env = h.Env
	if cmd.Env == nil {
		cmd.Env = []string{}
	}
	cmd.Stdin = bytes.NewReader(state)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// Kill the hook's whole process group on timeout, not only the hook:
	// a shell hook's children would otherwise outlive it (and hold its
	// output pipe open until WaitDelay).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	if ctx.Err() == context.DeadlineExceeded {
		return fmt.Errorf("timed out after %ds", *h.Timeout)
	}
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && out.Len() > 0 {
			return fmt.Errorf("%w: %s", err, bytes.TrimSpace(tail(out.Bytes(), 512)))
		}
		return err
	}
	return nil
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
