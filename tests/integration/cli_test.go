package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/zviz/zviz/tests/probe/report"
	"github.com/zviz/zviz/tests/testutil"
)

// rawRun runs zviz as r's user with exactly args (no --root added).
func (r *rt) rawRun(env []string, args ...string) result {
	r.t.Helper()
	c := testutil.RunAs(r.t, r.user, env, r.zviz, args...)
	c.Stdout, c.Stderr = lcTempFile(r.t), lcTempFile(r.t)
	res := lcWait(r.t, c, args)
	res.stdout, res.stderr = lcRead(r.t, c.Stdout.(*os.File)), lcRead(r.t, c.Stderr.(*os.File))
	return res
}

// lastLine is the final non-empty line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// TestCLISpec: the config.json that `zviz spec` writes runs under zviz, and
// spec does not overwrite an existing one.
func TestCLISpec(t *testing.T) {
	forEachUser(t, func(t *testing.T, r *rt) {
		dir := r.userDir()
		args := []string{"spec", "--bundle", dir}
		if r.user != "root" {
			args = append(args, "--rootless")
		}
		if res := r.ok(args...); res.stdout != "" {
			t.Errorf("spec printed %q", res.stdout)
		}
		path := filepath.Join(dir, "config.json")
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var s specs.Spec
		testutil.DecodeJSON(t, raw, &s)
		hasUserNS := false
		for _, ns := range s.Linux.Namespaces {
			hasUserNS = hasUserNS || ns.Type == specs.UserNamespace
		}
		if hasUserNS != (r.user != "root") {
			t.Errorf("spec (user %s): user namespace %v", r.user, hasUserNS)
		}
		if s.Root == nil || s.Root.Path != "rootfs" || s.Process == nil {
			t.Fatalf("spec: %s", raw)
		}
		s.Process.Terminal = false
		s.Process.Args = []string{"sh", "-c", "echo spec-ok; id -u"}
		b, _ := json.Marshal(&s)
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := testutil.WriteRootfs(filepath.Join(dir, "rootfs"), "", testutil.DefaultApplets); err != nil {
			t.Fatal(err)
		}
		uid := uidOf(t, r.user)
		filepath.Walk(dir, func(p string, _ os.FileInfo, _ error) error { return os.Lchown(p, uid, uid) })
		res := r.run("run", "--bundle", dir, "fromspec")
		if res.code != 0 || res.stdout != "spec-ok\n0\n" {
			t.Errorf("run of zviz spec's config: %v", res)
		}
		// Refuses to overwrite, and leaves the file alone.
		res = r.run(args...)
		if res.code == 0 || !strings.Contains(res.stderr, "already exists") || !strings.Contains(res.stderr, path) {
			t.Errorf("second spec: %v", res)
		}
		if now, _ := os.ReadFile(path); string(now) != string(b) {
			t.Error("second spec changed config.json")
		}
	})
}

// TestCLIFeatures checks the features document's shape and content.
func TestCLIFeatures(t *testing.T) {
	r := newRT(t, "root")
	res := r.ok("features")
	var f struct {
		OCIVersionMin string   `json:"ociVersionMin"`
		OCIVersionMax string   `json:"ociVersionMax"`
		Hooks         []string `json:"hooks"`
		MountOptions  []string `json:"mountOptions"`
		Linux         struct {
			Namespaces   []string `json:"namespaces"`
			Capabilities []string `json:"capabilities"`
		} `json:"linux"`
	}
	testutil.DecodeJSON(t, []byte(res.stdout), &f)
	if !strings.HasPrefix(f.OCIVersionMax, "1.") {
		t.Errorf("ociVersionMax %q", f.OCIVersionMax)
	}
	want := map[string]bool{}
	for _, h := range f.Hooks {
		want[h] = true
	}
	for _, h := range []string{"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"} {
		if !want[h] {
			t.Errorf("hooks %v: no %s", f.Hooks, h)
		}
	}
	opts := strings.Join(f.MountOptions, " ")
	for _, o := range []string{"ro", "rbind", "nosuid", "nodev", "noexec"} {
		if !strings.Contains(" "+opts+" ", " "+o+" ") {
			t.Errorf("mountOptions lack %q: %v", o, f.MountOptions)
		}
	}
	ns := strings.Join(f.Linux.Namespaces, " ")
	for _, n := range []string{"user", "pid", "mount", "network", "ipc", "uts", "cgroup"} {
		if !strings.Contains(" "+ns+" ", " "+n+" ") {
			t.Errorf("linux.namespaces lack %q: %v", n, f.Linux.Namespaces)
		}
	}
	caps := map[string]bool{}
	for _, c := range f.Linux.Capabilities {
		caps[c] = true
	}
	if len(f.Linux.Capabilities) != 41 || len(caps) != 41 || !caps["CAP_SYS_ADMIN"] || !caps["CAP_CHECKPOINT_RESTORE"] {
		t.Errorf("linux.capabilities: %d names (%d distinct), want the 41: %v", len(f.Linux.Capabilities), len(caps), f.Linux.Capabilities)
	}
}

func TestCLIVersion(t *testing.T) {
	r := newRT(t, "root")
	for _, flag := range []string{"--version", "-v"} {
		res := r.ok(flag)
		if !strings.HasPrefix(res.stdout, "zviz version test\n") || !strings.Contains(res.stdout, "spec: 1.") {
			t.Errorf("zviz %s: %q", flag, res.stdout)
		}
	}
}

// TestCLIGlobalFlags: --root in both forms, --debug and --systemd-cgroup
// are accepted; an unknown verb or flag is an error.
func TestCLIGlobalFlags(t *testing.T) {
	forEachUser(t, func(t *testing.T, r *rt) {
		b := r.bundle(func(s *specs.Spec) { s.Process.Args = []string{"/probe", "sleep", "30"} })
		r.okIO("--debug", "--systemd-cgroup", "create", "--bundle", b, "g1")
		defer r.run("delete", "--force", "g1")
		res := r.rawRun(nil, "--root="+r.root, "state", "g1")
		var st stateDoc
		if res.code != 0 {
			t.Fatalf("--root=DIR state: %v", res)
		}
		testutil.DecodeJSON(t, []byte(res.stdout), &st)
		if st.ID != "g1" || st.Status != "created" {
			t.Errorf("--root=DIR state: %+v", st)
		}
		if q := strings.TrimSpace(r.rawRun(nil, "--root", r.root, "--debug", "list", "-q").stdout); q != "g1" {
			t.Errorf("--root DIR list -q: %q", q)
		}
		other := filepath.Join(r.userDir(), "other")
		if q := strings.TrimSpace(r.rawRun(nil, "--root="+other, "list", "-q").stdout); q != "" {
			t.Errorf("another --root sees %q", q)
		}
		if res := r.run("frobnicate"); res.code == 0 || !strings.Contains(res.stderr, `"frobnicate"`) {
			t.Errorf("unknown verb: %v", res)
		}
		if res := r.run("--no-such-flag", "list"); res.code == 0 || !strings.Contains(res.stderr, "no-such-flag") {
			t.Errorf("unknown global flag: %v", res)
		}
	})
}

// TestCLILogJSON: with --log F --log-format json a failure is one JSON
// object in F carrying the root cause, which stderr's last line repeats.
func TestCLILogJSON(t *testing.T) {
	forEachUser(t, func(t *testing.T, r *rt) {
		b := r.bundle(func(s *specs.Spec) { s.Process.Args = []string{"no-such-binary"} })
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"create", "--bundle", b, "logged"}, `executable file not found in $PATH`},
			{[]string{"state", "never-was"}, `container "never-was" does not exist`},
		} {
			log := filepath.Join(r.userDir(), "zviz.log")
			res := r.runIO(append([]string{"--log", log, "--log-format", "json"}, tc.args...)...)
			if res.code == 0 {
				t.Fatalf("zviz %v: succeeded", tc.args)
			}
			raw, err := os.ReadFile(log)
			if err != nil {
				t.Fatalf("log file: %v", err)
			}
			lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
			var rec map[string]any
			testutil.DecodeJSON(t, []byte(lines[len(lines)-1]), &rec)
			if len(lines) != 1 {
				t.Errorf("log has %d lines, want one JSON object: %s", len(lines), raw)
			}
			msg, _ := rec["msg"].(string)
			if rec["level"] != "error" || !strings.Contains(msg, tc.want) {
				t.Errorf("log record %v: want level error and msg containing %q", rec, tc.want)
			}
			if last := lastLine(res.stderr); !strings.Contains(last, msg) || !strings.Contains(last, tc.want) {
				t.Errorf("stderr's last line %q does not carry %q", last, msg)
			}
		}
	})
}

// TestCLILogWarnings: with --log, warnings go to the log as entries of
// level warning (as runc's do), not to stderr, which conmon would copy
// into the container's log.
func TestCLILogWarnings(t *testing.T) {
	forEachUser(t, func(t *testing.T, r *rt) {
		// A cgroupsPath this user cannot use: announced, not refused.
		b := r.bundle(func(s *specs.Spec) {
			s.Process.Args = []string{"true"}
			s.Linux.CgroupsPath = "/zviz-it-nodeleg-" + randID()
			limit := int64(64 << 20)
			s.Linux.Resources = &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit}}
		})
		for _, format := range []string{"json", "text"} {
			log := filepath.Join(r.userDir(), "zviz.log")
			id := "logw-" + randID()
			res := r.runIO("--log", log, "--log-format", format, "create", "--bundle", b, id)
			r.ok("delete", "--force", id)
			if res.code != 0 || res.stderr != "" {
				t.Errorf("%s: create with --log: want exit 0 and nothing on stderr, got %v", format, res)
			}
			raw, err := os.ReadFile(log)
			if err != nil {
				t.Fatalf("log file: %v", err)
			}
			text := strings.TrimSpace(string(raw))
			if text == "" {
				t.Errorf("%s: no warning in the log", format)
			}
			for _, line := range strings.Split(text, "\n") {
				if format == "json" {
					var rec map[string]any
					testutil.DecodeJSON(t, []byte(line), &rec)
					if rec["level"] != "warning" || rec["msg"] == "" || strings.HasPrefix(rec["msg"].(string), "zviz:") {
						t.Errorf("json log entry %v: want level warning and the bare message", rec)
					}
				} else if !strings.Contains(line, "level=warning msg=") {
					t.Errorf("text log entry %q: want level=warning msg=...", line)
				}
			}
		}
	})
}

// TestStateDefaultRoot: without --root, state goes to /run/zviz for root
// and $XDG_RUNTIME_DIR/zviz for a user, 0700 and owned by the caller.
func TestStateDefaultRoot(t *testing.T) {
	forEachUser(t, func(t *testing.T, r *rt) {
		uid := uidOf(t, r.user)
		root := "/run/zviz"
		if r.user != "root" {
			root = "/run/user/" + strconv.Itoa(uid) + "/zviz"
		}
		_, statErr := os.Stat(root)
		existed := statErr == nil
		id := "defroot-" + strconv.Itoa(os.Getpid())
		b := r.bundle(func(s *specs.Spec) { s.Process.Args = []string{"/probe", "sleep", "30"} })
		c := testutil.RunAs(t, r.user, nil, r.zviz, "create", "--bundle", b, id)
		c.Stdout, c.Stderr = lcTempFile(t), lcTempFile(t)
		if res := lcWait(t, c, c.Args); res.code != 0 {
			t.Fatalf("create without --root: exit %d: %s", res.code, lcRead(t, c.Stderr.(*os.File)))
		}
		defer func() {
			_ = testutil.RunAs(t, r.user, nil, r.zviz, "delete", "--force", id).Run()
			if !existed {
				os.Remove(root)
			}
		}()
		for _, d := range []string{root, filepath.Join(root, id)} {
			var st syscall.Stat_t
			if err := syscall.Lstat(d, &st); err != nil {
				t.Fatalf("state directory: %v", err)
			}
			if st.Mode&0o7777 != 0o700 || int(st.Uid) != uid {
				t.Errorf("%s: mode %#o owner %d, want 0700 owned by %d", d, st.Mode&0o7777, st.Uid, uid)
			}
		}
		if _, err := os.Stat(filepath.Join(r.root, id)); err == nil {
			t.Errorf("container went to the test's --root")
		}
		if out, _ := testutil.RunAs(t, r.user, nil, r.zviz, "delete", id).CombinedOutput(); len(out) != 0 {
			t.Errorf("delete without --root: %s", out)
		}
		if _, err := os.Stat(filepath.Join(root, id)); err == nil {
			t.Errorf("%s left after delete", filepath.Join(root, id))
		}
	})
}

// TestStateRootRefused: a --root another user owns or others can read is
// refused, with the path in the message.
func TestStateRootRefused(t *testing.T) {
	forEachUser(t, func(t *testing.T, r *rt) {
		b := r.bundle(nil)
		uid := uidOf(t, r.user)
		otherUID := 0
		if uid == 0 {
			otherUID = uidOf(t, testutil.TestUser)
		}
		base := r.userDir()
		foreign := filepath.Join(base, "foreign")
		open := filepath.Join(base, "open")
		for _, d := range []struct {
			path       string
			owner      int
			mode       os.FileMode
			wantReason string
		}{{foreign, otherUID, 0o700, "owned by uid " + strconv.Itoa(otherUID)}, {open, uid, 0o755, "0755"}} {
			if err := os.Mkdir(d.path, d.mode); err != nil {
				t.Fatal(err)
			}
			os.Chmod(d.path, d.mode)
			os.Chown(d.path, d.owner, d.owner)
			for _, args := range [][]string{{"create", "--bundle", b, "x"}, {"list"}, {"state", "x"}} {
				res := r.rawRun(nil, append([]string{"--root", d.path}, args...)...)
				if res.code == 0 || !strings.Contains(res.stderr, d.path) || !strings.Contains(res.stderr, d.wantReason) {
					t.Errorf("zviz --root %s %v: want refusal naming the path and %q, got %v", d.path, args[0], d.wantReason, res)
				}
			}
			if ents, _ := os.ReadDir(d.path); len(ents) != 0 {
				t.Errorf("refused root %s got entries %v", d.path, ents)
			}
		}
		for _, d := range []string{foreign, open} {
			if pids := initsUnder(d); len(pids) > 0 {
				t.Errorf("inits %v started under the refused root %s", pids, d)
			}
		}
	})
}

// TestStateIDs: duplicate and malformed ids are refused and nothing is
// created or changed.
func TestStateIDs(t *testing.T) {
	forEachUser(t, func(t *testing.T, r *rt) {
		b := r.bundle(func(s *specs.Spec) { s.Process.Args = []string{"/probe", "sleep", "30"} })
		r.okIO("create", "--bundle", b, "dup")
		defer r.run("delete", "--force", "dup")
		first := r.state("dup")
		b2 := r.bundle(func(s *specs.Spec) { s.Process.Args = []string{"/probe", "exit", "3"} })
		mounts := hostMounts(t, b, b2, r.root)
		res := r.runIO("create", "--bundle", b2, "dup")
		if res.code == 0 || !strings.Contains(res.stderr, `"dup" already exists`) || strings.Count(res.stderr, "\n") != 1 {
			t.Errorf("duplicate create: %v", res)
		}
		res = r.runIO("run", "--bundle", b2, "dup")
		if res.code == 0 || !strings.Contains(res.stderr, `"dup" already exists`) {
			t.Errorf("duplicate run: %v", res)
		}
		if now := r.state("dup"); now.Pid != first.Pid || now.Bundle != b || now.Status != "created" || now.Created != first.Created {
			t.Errorf("duplicate create changed the first container: %+v, was %+v", now, first)
		}
		if now := hostMounts(t, b, b2, r.root); !slices.Equal(now, mounts) {
			t.Errorf("duplicate create changed the host's mount table: %q, was %q", now, mounts)
		}
		if cmdline(first.Pid) != "zviz:[init]" {
			t.Errorf("the first container's init %d is gone", first.Pid)
		}
		r.ok("delete", "--force", "dup")

		long := strings.Repeat("a", 300)
		for _, id := range []string{"a/b", "..", ".", ".hidden", "", long, "a b", "a\nb"} {
			for _, args := range [][]string{{"create", "--bundle", b, id}, {"state", id}, {"delete", "--force", id}} {
				res := r.runIO(args...)
				wantName := id
				if len(id) > 20 {
					wantName = id[:20]
				}
				if strings.Contains(id, "\n") {
					wantName = `a\nb`
				}
				if res.code == 0 || !strings.Contains(res.stderr, "container id") || !strings.Contains(res.stderr, wantName) {
					t.Errorf("zviz %s %q: want an error naming the id, got %v", args[0], id, res)
				}
			}
		}
		if ents, _ := os.ReadDir(r.root); len(ents) != 0 {
			t.Errorf("state entries after refused ids: %v", ents)
		}
		if _, err := os.Stat(filepath.Join(filepath.Dir(r.root), "b")); err == nil {
			t.Errorf("id a/b created something")
		}
	})
}

// TestStateConcurrency: commands on one container are serialised, and
// creates of distinct ids do not interfere.
func TestStateConcurrency(t *testing.T) {
	forEachUser(t, func(t *testing.T, r *rt) {
		b := r.bundle(func(s *specs.Spec) { s.Process.Args = []string{"/probe", "sleep", "30"} })
		const n = 8
		var wg sync.WaitGroup
		results := make([]result, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i] = r.runIO("create", "--bundle", b, "par"+strconv.Itoa(i))
			}()
		}
		wg.Wait()
		for i, res := range results {
			if res.code != 0 {
				t.Errorf("parallel create %d: %v", i, res)
			}
		}
		pids := map[int]bool{}
		for i := range n {
			st := r.state("par" + strconv.Itoa(i))
			if st.Status != "created" || pids[st.Pid] {
				t.Errorf("par%d: %+v", i, st)
			}
			pids[st.Pid] = true
		}

		raceDeleteState(t, r, "par0", n)
		if q := strings.Fields(r.ok("list", "-q").stdout); len(q) != n-1 {
			t.Errorf("list after deleting one of %d: %v", n, q)
		}
		for i := 1; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if res := r.run("delete", "par"+strconv.Itoa(i)); res.code != 0 {
					t.Errorf("delete par%d: %v", i, res)
				}
			}()
		}
		wg.Wait()
		deadline := time.Now().Add(5 * time.Second)
		for pid := range pids {
			for cmdline(pid) == "zviz:[init]" && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
		}
	})
}

// raceDeleteState runs n delete --force and n state on id at once: every
// delete succeeds, every state is a whole document or "does not exist".
func raceDeleteState(t *testing.T, r *rt, id string, n int) {
	var wg sync.WaitGroup
	results := make([]result, 2*n)
	for i := range 2 * n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%2 == 0 {
				results[i] = r.run("delete", "--force", id)
			} else {
				results[i] = r.run("state", id)
			}
		}()
	}
	wg.Wait()
	for i, res := range results {
		if strings.Contains(res.stderr, "panic") || strings.Contains(res.stderr, "goroutine") {
			t.Errorf("crash: %v", res)
		}
		if i%2 == 0 {
			if res.code != 0 || res.stderr != "" {
				t.Errorf("parallel delete --force: %v", res)
			}
			continue
		}
		if res.code != 0 {
			if !strings.Contains(res.stderr, `container "`+id+`" does not exist`) {
				t.Errorf("parallel state: %v", res)
			}
			continue
		}
		var st stateDoc
		testutil.DecodeJSON(t, []byte(res.stdout), &st)
		if st.ID != id || st.Status != "created" {
			t.Errorf("parallel state: %+v", st)
		}
	}
	if res := r.run("state", id); !strings.Contains(res.stderr, "does not exist") {
		t.Errorf("%s after delete: %v", id, res)
	}
}

// TestCLIPreserveFDs: --preserve-fds N passes exactly the N descriptors the
// caller gave zviz after stdio, never zviz's own (regression: the Go
// runtime's cgroup files at fds 3 and 4 were accepted and leaked into the
// container when the caller passed nothing).
func TestCLIPreserveFDs(t *testing.T) {
	forEachUser(t, func(t *testing.T, r *rt) {
		b := r.bundle(nil)
		res := r.runIO("run", "--preserve-fds", "1", "--bundle", b, "pfd")
		if res.code == 0 || !strings.Contains(res.stderr, "fd 3 is not open") {
			t.Errorf("--preserve-fds 1 with no fd passed: %v", res)
		}
		passed := filepath.Join(r.userDir(), "passed-fd")
		if err := os.WriteFile(passed, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(passed)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		c := r.cmd("run", "--preserve-fds", "1", "--bundle", b, "pfd")
		c.ExtraFiles = []*os.File{f}
		out, errf := lcTempFile(t), lcTempFile(t)
		c.Stdout, c.Stderr = out, errf
		if res := lcWait(t, c, c.Args); res.code != 0 {
			t.Fatalf("run --preserve-fds 1: exit %d: %s", res.code, lcRead(t, errf))
		}
		var info report.Info
		testutil.DecodeJSON(t, []byte(lcRead(t, out)), &info)
		var fds []string
		for _, fd := range info.FDs {
			fds = append(fds, strconv.Itoa(fd.FD)+"->"+fd.Target)
		}
		if len(info.FDs) != 4 || info.FDs[3].FD != 3 || !strings.HasSuffix(info.FDs[3].Target, "passed-fd") {
			t.Errorf("container's fds: %v, want 0, 1, 2 and 3 -> passed-fd", fds)
		}
	})
}
