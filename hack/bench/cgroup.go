package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The systemd-cgroup section: what asking the systemd user manager for a
// delegated scope over D-Bus adds to a cold `zviz run`. A real `systemd
// --user` is started with hack/systemd-user.sh (TEST-ENVIRONMENTS.md §A),
// and this binary runs again inside its session (-session-child), where it
// times, interleaved, `zviz --systemd-cgroup run` (connect, StartTransientUnit
// and its job, StopUnit at delete) against `zviz run` with the bus out of
// reach, which falls back to a delegated cgroupfs cgroup (mkdir, move,
// rmdir). The difference is the D-Bus cost.

var sessionChild = flag.Bool("session-child", false, "internal: time the systemd-cgroup candidates inside a user session")

func systemdCgroupBench(e *env) ([]result, error) {
	if _, err := os.Stat(filepath.Join(e.bundle, "config.json")); err != nil {
		if err := writeRuncConfig(e); err != nil { // the cold-start section did not run
			return nil, err
		}
	}
	script, err := filepath.Abs("hack/systemd-user.sh")
	if err != nil {
		return nil, err
	}
	envName := "ZVIZ_SYSTEMD_ENV=zviz-bench-" + strconv.Itoa(os.Getpid())
	run := func(args ...string) *exec.Cmd {
		c := exec.Command(script, args...)
		c.Env = append(os.Environ(), envName)
		return c
	}
	if out, err := run("start", e.user).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("hack/systemd-user.sh start %s: %v\n%s", e.user, err, out)
	}
	defer func() {
		if out, err := run("stop", e.user).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "bench: hack/systemd-user.sh stop: %v\n%s", err, out)
		}
	}()
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	// The session has its own /run/user/UID: state goes to the scratch
	// directory, and the binary is copied where the user can run it.
	child := filepath.Join(e.work, "bench")
	if err := copyExecutable(self, child); err != nil {
		return nil, err
	}
	state := filepath.Join(e.work, "sd-state")
	if err := os.Mkdir(state, 0o700); err != nil {
		return nil, err
	}
	if err := os.Chown(state, e.uid, e.gid); err != nil {
		return nil, err
	}
	c := run("run", e.user, "--", child, "-session-child", "-zviz", e.zviz,
		"-n", strconv.Itoa(e.n), "-warmup", strconv.Itoa(e.warmup), "-json", state+"/zviz",
		"-sections", e.bundle)
	out, err := c.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return nil, fmt.Errorf("session child: %v\n%s", err, ee.Stderr)
		}
		return nil, err
	}
	var samples map[string][]time.Duration
	if err := json.Unmarshal(out, &samples); err != nil {
		return nil, fmt.Errorf("session child printed %q: %w", out, err)
	}
	fmt.Printf("as %s in a systemd --user session, N=%d after %d warm-up runs, interleaved\n", e.user, e.n, e.warmup)
	results := []result{summarize("cgroupfs", samples["cgroupfs"]), summarize("systemd", samples["systemd"])}
	printTable(results)
	printRatio(results, "systemd", "cgroupfs")
	return results, nil
}

// sessionMain is the child: flags are reused (-json is the --root base,
// -sections the bundle). It prints {"systemd": [...], "cgroupfs": [...]}.
func sessionMain(zviz, root, bundle string, n, warmup int) error {
	cands := []struct {
		name string
		env  []string
		args []string
	}{
		{"systemd", nil, []string{"--systemd-cgroup"}},
		// No bus: zviz falls back to cgroupfs below the session's own
		// (delegated) cgroup.
		{"cgroupfs", []string{"DBUS_SESSION_BUS_ADDRESS=unix:path=/nonexistent"}, nil},
	}
	// Preflight: each candidate really gets the cgroup it is named for.
	for _, c := range cands {
		id := fmt.Sprintf("sd-check-%s-%d", c.name, os.Getpid())
		args := append([]string{"--root", root}, c.args...)
		create := exec.Command(zviz, append(args, "create", "--bundle", bundle, id)...)
		create.Env = append(os.Environ(), c.env...)
		// Not a pipe: the container's init inherits create's stdio.
		var msg strings.Builder
		errf, err := os.CreateTemp("", "zviz-bench-")
		if err != nil {
			return err
		}
		os.Remove(errf.Name())
		create.Stderr = errf
		err = create.Run()
		errf.Seek(0, 0)
		io.Copy(&msg, errf)
		errf.Close()
		if err != nil {
			return fmt.Errorf("%s: create: %v\n%s", c.name, err, msg.String())
		}
		out, err := exec.Command(zviz, "--root", root, "state", id).Output()
		exec.Command(zviz, "--root", root, "delete", "--force", id).Run()
		var st struct{ Cgroup struct{ Manager string } }
		if err != nil || json.Unmarshal(out, &st) != nil || st.Cgroup.Manager != c.name {
			return fmt.Errorf("%s candidate got cgroup manager %q (%v): %s", c.name, st.Cgroup.Manager, err, out)
		}
	}
	samples := map[string][]time.Duration{}
	for i := 0; i < warmup+n; i++ {
		for k := range cands {
			c := cands[(i+k)%len(cands)]
			id := fmt.Sprintf("sd-%s-%d-%d", c.name, os.Getpid(), i)
			args := append([]string{"--root", root}, c.args...)
			cmd := exec.Command(zviz, append(args, "run", "--bundle", bundle, id)...)
			cmd.Env = append(os.Environ(), c.env...)
			cmd.Dir = bundle
			var stderr strings.Builder
			cmd.Stderr = &stderr
			start := time.Now()
			err := cmd.Run()
			d := time.Since(start)
			if err != nil {
				return fmt.Errorf("%s: %v: %v\n%s", c.name, cmd.Args, err, stderr.String())
			}
			if i >= warmup {
				samples[c.name] = append(samples[c.name], d)
			}
		}
	}
	return json.NewEncoder(os.Stdout).Encode(samples)
}

func copyExecutable(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o755)
}
