package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/zviz/zviz/tests/testutil"
)

// The ns-join section: what a config that joins a user and a pid
// namespace by path (podman's pods with a user namespace, --pid
// container:NAME) costs against the same cold `zviz run` that makes new
// ones. The joining init starts through package nsenter's constructor and
// forks once for the pid namespace; the plain one is cloned.
func nsJoinBench(e *env) ([]result, error) {
	if _, err := os.Stat(filepath.Join(e.bundle, "config.json")); err != nil {
		if err := writeRuncConfig(e); err != nil { // the cold-start section did not run
			return nil, err
		}
	}
	root := filepath.Join(e.stateDir, "zviz-join")
	holder := "bench-holder-" + strconv.Itoa(os.Getpid())
	zviz := func(args ...string) (*exec.Cmd, error) {
		return testutil.Command(e.user, nil, e.zviz, append([]string{"--root", root}, args...)...)
	}
	holderBundle, err := e.variant("holder", func(s *specs.Spec) { s.Process.Args = []string{"/bin/sleep", "3600"} })
	if err != nil {
		return nil, err
	}
	c, err := zviz("create", "--bundle", holderBundle, holder)
	if err != nil {
		return nil, err
	}
	// Not a pipe: the init keeps create's stdio, and would keep a pipe
	// open until it exits.
	out, err := os.CreateTemp("", "zviz-bench-holder-")
	if err != nil {
		return nil, err
	}
	defer os.Remove(out.Name())
	defer out.Close()
	c.Stdout, c.Stderr = out, out
	if err := c.Run(); err != nil {
		b, _ := os.ReadFile(out.Name())
		return nil, fmt.Errorf("create the holder container: %v: %s", err, b)
	}
	defer func() {
		if c, err := zviz("delete", "--force", holder); err == nil {
			_ = c.Run()
		}
	}()
	pid, err := e.statePid(zviz, holder)
	if err != nil {
		return nil, err
	}
	joinBundle, err := e.variant("join", func(s *specs.Spec) {
		s.Linux.Namespaces = slices.DeleteFunc(s.Linux.Namespaces, func(n specs.LinuxNamespace) bool {
			return n.Type == specs.UserNamespace || n.Type == specs.PIDNamespace
		})
		s.Linux.UIDMappings, s.Linux.GIDMappings = nil, nil
		s.Linux.Namespaces = append(s.Linux.Namespaces,
			specs.LinuxNamespace{Type: specs.UserNamespace, Path: fmt.Sprintf("/proc/%d/ns/user", pid)},
			specs.LinuxNamespace{Type: specs.PIDNamespace, Path: fmt.Sprintf("/proc/%d/ns/pid", pid)})
	})
	if err != nil {
		return nil, err
	}
	cands := []candidate{
		{name: "zviz", cmd: e.containerCommand(e.zviz, "--root", root, "run", "--bundle", e.bundle)},
		{name: "zviz-join", cmd: e.containerCommand(e.zviz, "--root", root, "run", "--bundle", joinBundle)},
	}
	for _, c := range cands {
		if _, err := timeRun(c, -1); err != nil {
			return nil, fmt.Errorf("%s: preflight run failed: %v", c.name, err)
		}
	}
	results, err := interleaved(e, cands)
	if err != nil {
		return nil, err
	}
	printRatio(results, "zviz-join", "zviz")
	return results, nil
}

// variant writes a bundle beside e.bundle whose config is e.bundle's with
// edit applied and the same rootfs (by absolute path).
func (e *env) variant(name string, edit func(s *specs.Spec)) (string, error) {
	b, err := os.ReadFile(filepath.Join(e.bundle, "config.json"))
	if err != nil {
		return "", err
	}
	var s specs.Spec
	if err := json.Unmarshal(b, &s); err != nil {
		return "", err
	}
	s.Root.Path = e.rootfs
	edit(&s)
	dir := filepath.Join(e.work, "bundle-"+name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	if b, err = json.MarshalIndent(&s, "", "\t"); err != nil {
		return "", err
	}
	return dir, os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644)
}

// statePid is the init pid `zviz state` reports for id.
func (e *env) statePid(zviz func(...string) (*exec.Cmd, error), id string) (int, error) {
	c, err := zviz("state", id)
	if err != nil {
		return 0, err
	}
	out, err := c.Output()
	if err != nil {
		return 0, fmt.Errorf("zviz state %s: %v", id, err)
	}
	var st specs.State
	if err := json.Unmarshal(out, &st); err != nil || st.Pid <= 0 {
		return 0, fmt.Errorf("zviz state %s: no pid in %s", id, strings.TrimSpace(string(out)))
	}
	return st.Pid, nil
}
