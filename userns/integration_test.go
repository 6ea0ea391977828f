package userns

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// childEnv makes the test binary act as a container init stand-in: it waits
// for one byte on stdin (the parent writes it once the maps are in place)
// and reports what it sees of its own user namespace.
const childEnv = "ZVIZ_USERNS_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		os.Exit(childMain())
	}
	os.Exit(m.Run())
}

func childMain() int {
	if _, err := os.Stdin.Read(make([]byte, 1)); err != nil {
		fmt.Fprintln(os.Stderr, "child: wait for parent:", err)
		return 1
	}
	uidMap, _ := os.ReadFile("/proc/self/uid_map")
	setgroups, _ := os.ReadFile("/proc/self/setgroups")
	status, _ := os.ReadFile("/proc/self/status")
	capEff := ""
	for line := range strings.Lines(string(status)) {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			capEff = strings.TrimSpace(v)
		}
	}
	fmt.Printf("euid=%d\negid=%d\ncapeff=%s\nsetgroups=%s\nuid_map=%s\n", os.Geteuid(), os.Getegid(),
		capEff, strings.TrimSpace(string(setgroups)), strings.Join(strings.Fields(string(uidMap)), " "))
	return 0
}

// startChild starts the test binary in a new user namespace the way zviz
// starts its init: CLONE_NEWUSER, no maps yet, and every capability in the
// ambient set so that it keeps them across execve while still unmapped.
func startChild(t *testing.T) (*exec.Cmd, io.WriteCloser, *bytes.Buffer) {
	t.Helper()
	last, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(last)))
	caps := make([]uintptr, 0, n+1)
	for c := 0; c <= n; c++ {
		caps = append(caps, uintptr(c))
	}
	cmd := exec.Command("/proc/self/exe")
	cmd.Env = append(os.Environ(), childEnv+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWUSER, AmbientCaps: caps}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOSPC) {
			t.Skipf("requires userns: clone(CLONE_NEWUSER): %v", err)
		}
		t.Fatalf("start child: %v", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd, stdin, &out
}

// release lets the child run and returns its report as key=value pairs.
func release(t *testing.T, cmd *exec.Cmd, stdin io.WriteCloser, out *bytes.Buffer) map[string]string {
	t.Helper()
	if _, err := stdin.Write([]byte{1}); err != nil {
		t.Fatal(err)
	}
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v: %s", err, out)
	}
	report := map[string]string{}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			report[k] = v
		}
	}
	return report
}

func TestApplyIntegration(t *testing.T) {
	uid, gid := uint32(os.Geteuid()), uint32(os.Getegid())
	type scenario struct {
		name       string
		w          Writer
		uids, gids []IDMap
		wantDenied bool
		wantErr    string // helper refusals: the helper's stderr must reach the error
	}
	var scenarios []scenario
	if uid == 0 {
		scenarios = []scenario{
			{name: "root writes ranges directly", w: Writer{Privileged: true},
				uids: []IDMap{{0, 0, 1}, {1, 100000, 65536}}, gids: []IDMap{{0, 0, 1}, {1, 100000, 65536}}},
			{name: "root writes a single id directly", w: Writer{Privileged: true},
				uids: []IDMap{{0, 0, 1}}, gids: []IDMap{{0, 0, 1}}},
		}
	} else {
		scenarios = append(scenarios, scenario{name: "own id written directly",
			w:    Writer{OwnUID: uid, OwnGID: gid},
			uids: []IDMap{{0, uid, 1}}, gids: []IDMap{{0, gid, 1}}, wantDenied: true})
		name := ""
		if u, err := user.Current(); err == nil {
			name = u.Username
		}
		subU, errU := SubIDs(SubUIDFile, name, uid)
		subG, errG := SubIDs(SubGIDFile, name, gid)
		if errU != nil || errG != nil {
			t.Fatalf("read subordinate ids: %v", errors.Join(errU, errG))
		}
		if len(subU) > 0 && len(subG) > 0 {
			scenarios = append(scenarios, scenario{name: "ranges through newuidmap and newgidmap",
				w:    Writer{OwnUID: uid, OwnGID: gid},
				uids: DefaultMaps(uid, subU), gids: DefaultMaps(gid, subG)},
				scenario{name: "range not granted in subuid",
					w:    Writer{OwnUID: uid, OwnGID: gid},
					uids: []IDMap{{0, uid, 1}, {1, 4000000000, 10}}, gids: []IDMap{{0, gid, 1}},
					wantDenied: true, wantErr: "newuidmap: uid range [1-11) -> [4000000000-4000000010) not allowed"})
		} else {
			t.Logf("requires subuid: no ranges for %q (uid %d) in %s/%s; helper path not tested", name, uid, SubUIDFile, SubGIDFile)
		}
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			cmd, stdin, out := startChild(t)
			pid := cmd.Process.Pid
			start := time.Now()
			denied, err := sc.w.Apply(pid, sc.uids, sc.gids)
			t.Logf("Apply took %v", time.Since(start))
			if sc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), sc.wantErr) {
					t.Fatalf("Apply() error = %v, want containing %q", err, sc.wantErr)
				}
				t.Logf("Apply() error = %v", err)
				return
			}
			if err != nil {
				t.Fatalf("Apply() error = %v", err)
			}
			if denied != sc.wantDenied {
				t.Errorf("Apply() setgroupsDenied = %v, want %v", denied, sc.wantDenied)
			}
			// The parent's view, in the initial namespace.
			got, err := ReadMaps(fmt.Sprintf("/proc/%d/uid_map", pid), fmt.Sprintf("/proc/%d/gid_map", pid))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.UIDMap, sc.uids) || !reflect.DeepEqual(got.GIDMap, sc.gids) {
				t.Errorf("/proc/%d maps = %v / %v, want %v / %v", pid, got.UIDMap, got.GIDMap, sc.uids, sc.gids)
			}
			// The child's view: the caller's ids are its root.
			r := release(t, cmd, stdin, out)
			if r["euid"] != "0" || r["egid"] != "0" {
				t.Errorf("child euid/egid = %s/%s, want 0/0", r["euid"], r["egid"])
			}
			if want := strings.TrimSpace(strings.ReplaceAll(string(format(sc.uids)), "\n", " ")); r["uid_map"] != want {
				t.Errorf("child uid_map = %q, want %q", r["uid_map"], want)
			}
			if wantSG := map[bool]string{true: "deny", false: "allow"}[sc.wantDenied]; r["setgroups"] != wantSG {
				t.Errorf("child setgroups = %q, want %q", r["setgroups"], wantSG)
			}
			if r["capeff"] == "" || strings.Trim(r["capeff"], "0") == "" {
				t.Errorf("child CapEff = %q, want capabilities kept across exec", r["capeff"])
			}
		})
	}
}
