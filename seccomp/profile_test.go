package seccomp

import (
	"crypto/sha256"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestValidationErrors: each bad file is refused with a message that names
// the file, the field and the value.
func TestValidationErrors(t *testing.T) {
	rows := []struct{ name, yaml, want string }{
		{"typo in deny", "extends: default\ndeny:\n  - why: x\n    syscalls: [ptrce]\n",
			`profile ./x.yaml: deny[0].syscalls[0] "ptrce": unknown syscall`},
		{"unknown key", "extends: default\nalow: []\n", "field alow not found"},
		{"unknown nested key", "network: {mode: nat, alow: []}\n", "field alow not found"},
		{"duplicate key", "allow: []\nallow: []\n", `"allow" already defined`},
		{"allowed and denied", "allow:\n  - why: a\n    syscalls: [read]\ndeny:\n  - why: b\n    syscalls: [read]\n",
			`deny[0].syscalls[0] "read": already in allow[0].syscalls[0]`},
		{"listed twice", "allow:\n  - why: a\n    syscalls: [read, write, read]\n",
			`allow[0].syscalls[2] "read": already in allow[0].syscalls[0]`},
		{"allowed here, denied in base", "extends: default\nallow:\n  - why: gdb\n    syscalls: [ptrace]\n",
			`allow[0].syscalls[0] "ptrace": already in deny of base profile "default"; add it to drop: to move it`},
		{"allowed here and in base", "extends: default\nallow:\n  - why: x\n    syscalls: [read]\n",
			`"read": already in allow of base profile "default"`},
		{"drop of unlisted", "extends: default\ndrop: [kcmp]\n", `drop[0] "kcmp": not in base profile "default"`},
		{"drop without extends", "drop: [read]\n", "drop: only a profile that extends"},
		{"unknown extends", "extends: defualt\n", `extends "defualt": no such built-in profile`},
		{"error inside the base", "extends: ../x\n", `extends "../x": no such built-in profile`},
		{"arch-specific unmarked", "allow:\n  - why: musl\n    syscalls: [open]\n",
			`allow[0].syscalls[0] "open": exists only on x86_64: put it in a group with arch: [x86_64]`},
		{"arch mark wrong", "allow:\n  - why: x\n    arch: [x86_64]\n    syscalls: [read]\n",
			`"read": exists on [x86_64, aarch64], the group says arch: [x86_64]`},
		{"unknown arch", "allow:\n  - why: x\n    arch: [riscv64]\n    syscalls: [read]\n",
			`allow[0].arch[0]: unsupported architecture "riscv64"`},
		{"missing why", "deny:\n  - syscalls: [bpf]\n", "deny[0]: why: missing"},
		{"empty group", "deny:\n  - why: x\n", "deny[0].syscalls: empty"},
		{"unknown family", "filter:\n  socket: {why: x, allow_families: [AF_UNIX, AF_INTE]}\n",
			`filter.socket.allow_families[1]: unknown socket value "AF_INTE"`},
		{"no such filter", "filter:\n  mmap: {why: x, allow_values: [PER_LINUX]}\n",
			"filter.mmap: no inline argument filter for this syscall (zviz has them for socket, socketpair, clone, ioctl, personality)"},
		{"wrong filter field", "filter:\n  socket: {why: x, deny_flags: [CLONE_NEWNS]}\n",
			"filter.socket.deny_flags: socket is filtered by allow_families"},
		{"CLONE_NEWTIME", "filter:\n  clone: {why: x, deny_flags: [CLONE_NEWTIME]}\n",
			"filter.clone.deny_flags[0]: CLONE_NEWTIME shares its bit"},
		{"filter and allow", "allow:\n  - why: x\n    syscalls: [ioctl]\nfilter:\n  ioctl: {why: x, deny_requests: [TIOCSTI]}\n",
			`filter.ioctl: already in allow[0].syscalls[0] "ioctl"`},
		{"bad capability", "capabilities: [CAP_NET_BIND_SERVICE, CAP_SYS_ADMN]\n",
			`capabilities[1] "CAP_SYS_ADMN": unknown capability`},
		{"bad network mode", "network: {mode: bridge}\n", `network.mode "bridge": unknown (one of none, nat, host)`},
		{"allow with mode none", "network: {mode: none, allow: [\"10.0.0.1:53\"]}\n", "have no effect with mode none"},
		{"bad endpoint", "network: {mode: nat, allow: [\"10.0.0.0/33\"]}\n", `network.allow[0] "10.0.0.0/33"`},
		{"bad port", "network: {mode: nat, allow: [\"*:70000\"]}\n", `port "70000"`},
		{"bad domain", "network: {mode: nat, allow_domains: [Example.COM]}\n", `allow_domains[0] "Example.COM"`},
		{"relative writable", "filesystem: {writable: [tmp]}\n", `filesystem.writable[0] "tmp": want an absolute, clean path`},
		{"bad memory", "limits: {memory: 12Q}\n", `limits.memory "12Q"`},
		{"bad pids", "limits: {pids: 0}\n", `limits.pids "0"`},
		{"bad cpu", "limits: {cpu: lots}\n", `limits.cpu "lots"`},
		{"unknown layer", "required: [seccomp, apparmor]\n", `required[1] "apparmor": unknown layer`},
		{"shadows a built-in", "name: default\n", `name "default" is a built-in profile's`},
		{"two documents", "name: a\n---\nname: b\n", "more than one YAML document"},
		{"empty", "", "empty profile"},
	}
	for _, r := range rows {
		_, err := Parse("./x.yaml", []byte(r.yaml))
		if err == nil {
			t.Errorf("%s: accepted", r.name)
			continue
		}
		if !strings.Contains(err.Error(), r.want) {
			t.Errorf("%s:\n got  %v\n want …%s…", r.name, err, r.want)
		}
		for _, line := range strings.Split(err.Error(), "\n") {
			if !strings.HasPrefix(line, "profile ./x.yaml: ") {
				t.Errorf("%s: error line %q does not name the file", r.name, line)
			}
		}
	}
}

func TestAllErrorsAtOnce(t *testing.T) {
	_, err := Parse("./x.yaml", []byte("extends: default\ndeny:\n  - why: x\n    syscalls: [ptrce, fsopen]\ncapabilities: [CAP_FOO]\n"))
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{`"ptrce": unknown syscall`, `"fsopen": already in deny`, `"CAP_FOO": unknown capability`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestCyclicExtends(t *testing.T) {
	files := map[string]string{
		"a": "extends: b\n", "b": "extends: c\n", "c": "extends: a\n",
		"self": "extends: self\n",
	}
	lookup := func(n string) ([]byte, bool) { s, ok := files[n]; return []byte(s), ok }
	for name, want := range map[string]string{"a": "cycle a → b → c → a", "self": "cycle self → self"} {
		_, err := resolve("builtin:"+name, name, []byte(files[name]), lookup)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want %q", name, err, want)
		}
	}
}

// TestUserProfileExtends: drop moves a syscall, mapping sections override
// key by key, required only grows, and every rule remembers its file.
func TestUserProfileExtends(t *testing.T) {
	src := `name: my-debug
extends: hostile-tenant
drop: [ptrace]
allow:
  - why: "our profiler"
    syscalls: [ptrace, perf_event_open]
limits: {memory: 1G}
network: {mode: nat, allow: ["10.0.0.0/8:443", "[2001:db8::/32]:53", "*:80", "::1"], allow_domains: ["*.example.com"]}
required: [notify]
`
	_, err := Parse("/home/u/my.yaml", []byte(src))
	if err == nil || !strings.Contains(err.Error(), `"perf_event_open": already in deny of base profile "default"`) {
		t.Fatalf("perf_event_open is denied two levels up; got %v", err)
	}
	p, err := Parse("/home/u/my.yaml", []byte(strings.Replace(src, "[ptrace]", "[ptrace, perf_event_open]", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if c, r := classOf(p, "ptrace"); c != classAllow || r.From != "my-debug" || r.Why != "our profiler" {
		t.Errorf("ptrace: %s %+v", c, r)
	}
	if c, r := classOf(p, "setuid"); c != classDeny || r.From != "hostile-tenant" {
		t.Errorf("setuid: %s %+v", c, r)
	}
	if c, r := classOf(p, "read"); c != classAllow || r.From != "default" {
		t.Errorf("read: %s %+v", c, r)
	}
	if p.Limits.Memory != 1<<30 || p.Limits.Pids != 128 || p.Limits.CPU != 0.5 {
		t.Errorf("limits %+v: memory from the file, pids and cpu from hostile-tenant", p.Limits)
	}
	if strings.Join(p.Required, ",") != "seccomp,landlock,landlock-scope,limits,isolation,notify" {
		t.Errorf("required %v", p.Required)
	}
	if !p.Filesystem.ReadonlyRoot || strings.Join(p.Extends, ",") != "hostile-tenant,default" {
		t.Errorf("filesystem %+v extends %v", p.Filesystem, p.Extends)
	}
	prog, err := Compile(p, "x86_64")
	if err != nil {
		t.Fatal(err)
	}
	v := newVM(t, prog)
	for s, want := range map[string]string{"ptrace": allow, "perf_event_open": allow, "setuid": ePERM, "bpf": ePERM} {
		if got := v.call(s); got != want {
			t.Errorf("%s = %s, want %s", s, got, want)
		}
	}
}

func TestLoad(t *testing.T) {
	for _, name := range Builtins() {
		p, err := Load(name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if p.Source != "builtin:"+name || p.Name != name {
			t.Errorf("%s: source %q name %q", name, p.Source, p.Name)
		}
	}
	if _, err := Load("nosuch"); err == nil || !strings.Contains(err.Error(), "built-in: batch-job, ci-runner, default") {
		t.Errorf("Load(nosuch) = %v", err)
	}
	path := filepath.Join(t.TempDir(), "tight.yaml")
	if err := os.WriteFile(path, []byte("extends: default\ndrop: [ptrace]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := classOf(p, "ptrace"); p.Name != "tight" || c != "" {
		t.Errorf("name %q, ptrace in %q", p.Name, c)
	}
}

// TestBuiltinContent pins what SPEC.md asks of the built-ins.
func TestBuiltinContent(t *testing.T) {
	p, err := Load("default")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range strings.Fields(`ptrace mount umount2 pivot_root init_module finit_module
		delete_module reboot kexec_load perf_event_open bpf userfaultfd swapon swapoff acct
		quotactl setdomainname sethostname iopl ioperm add_key request_key io_uring_setup
		io_uring_enter keyctl fsopen fsconfig fsmount fspick move_mount open_tree mount_setattr
		unshare setns open_by_handle_at kexec_file_load io_uring_register`) {
		if c, _ := classOf(p, s); c != classDeny {
			t.Errorf("default: %s is %q, want deny", s, c)
		}
	}
	for _, s := range strings.Fields(`tgkill sendmmsg openat newfstatat renameat2 linkat symlinkat
		unlinkat mkdirat fchmodat fchownat faccessat2 readlinkat utimensat fsync fdatasync
		pselect6 ppoll timerfd_create signalfd4 eventfd2 inotify_init1 getpgid setpgid getsid
		flock rseq clock_nanosleep futex epoll_pwait2 statx getrandom prlimit64 sched_getaffinity
		madvise mremap restart_syscall`) {
		if c, _ := classOf(p, s); c != classAllow {
			t.Errorf("default: %s is %q, want allow", s, c)
		}
	}
	if c, _ := classOf(p, "clone3"); c != classENOSYS {
		t.Errorf("clone3 is %q", c)
	}
	for _, name := range Builtins() {
		p, _ := Load(name)
		if len(p.Broker) != 0 {
			t.Errorf("%s brokers %d syscalls; built-ins broker none yet", name, len(p.Broker))
		}
		for _, l := range p.lists() {
			for _, r := range *l.rules {
				if len(r.Why) < 10 {
					t.Errorf("%s: %s %s has no real reason: %q", name, l.class, r.Syscall, r.Why)
				}
			}
		}
	}
	web, _ := Load("web-server")
	if web.Network.Mode == "none" || !contains(web.Capabilities, "CAP_NET_BIND_SERVICE") || len(p.Capabilities) != 0 {
		t.Errorf("web-server %+v caps %v; default caps %v", web.Network, web.Capabilities, p.Capabilities)
	}
	batch, _ := Load("batch-job")
	if batch.Network.Mode != "none" || batch.Limits.Memory < 16<<30 {
		t.Errorf("batch-job %+v %+v", batch.Network, batch.Limits)
	}
}

func TestExplainAndShow(t *testing.T) {
	def, _ := Load("default")
	dev, _ := Load("development")
	for _, c := range []struct {
		p          *Profile
		name, want string
	}{
		{def, "ptrace", "x86_64: denied: EPERM"},
		{def, "ptrace", "why: process inspection"},
		{def, "clone3", "ENOSYS on purpose"},
		{def, "socket", "allowed only for address families AF_UNIX, AF_INET, AF_INET6; any other family gets EAFNOSUPPORT"},
		{def, "open", "aarch64: not a syscall on this arch"},
		{def, "kcmp", "not listed: ENOSYS"},
		{def, "ptrce", "not a syscall name libseccomp"},
		{dev, "ptrace", "x86_64: allowed"},
		{dev, "read", "listed by: default"},
		{dev, "msgget", "listed by: ci-runner"},
	} {
		if got := Explain(c.p, c.name); !strings.Contains(got, c.want) {
			t.Errorf("Explain(%s, %s) = %q, want …%s…", c.p.Name, c.name, got, c.want)
		}
	}
	for _, arch := range testArches {
		l, err := Show(def, arch)
		if err != nil {
			t.Fatal(err)
		}
		_, target, _ := canonicalArch(arch)
		total := len(l.Allow) + len(l.Deny) + len(l.ENOSYS) + len(l.Filter) + len(l.Broker) + l.Unlisted
		if n := len(archSyscalls(target)); total != n || l.Unlisted == 0 {
			t.Errorf("%s: lists add up to %d, the arch has %d syscalls", arch, total, n)
		}
	}
	f := Features()
	if strings.Join(f.Archs, ",") != "x86_64,aarch64" || len(f.Profiles) != 6 || f.Libseccomp == "" {
		t.Errorf("features %+v", f)
	}
}

func TestCompileCached(t *testing.T) {
	p, _ := Load("web-server")
	want, err := Compile(p, "x86_64")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "cache")
	got, err := CompileCached(p, "amd64", dir)
	if err != nil || string(got.BPF) != string(want.BPF) || got.Key != want.Key {
		t.Fatalf("cached compile differs: %v", err)
	}
	file := filepath.Join(dir, want.Key+".bpf")
	if _, err := os.Stat(file); err != nil {
		t.Fatalf("no cache file: %v", err)
	}
	// A well-formed entry is used as is (proved with a stand-in program)...
	memCache.Delete(want.Key)
	fake := want.BPF[:len(want.BPF)-8]
	sum := sha256.Sum256(fake)
	os.WriteFile(file, append(sum[:], fake...), 0o600)
	if got, _ := CompileCached(p, "x86_64", dir); got.Instructions != want.Instructions-1 {
		t.Errorf("cache entry not used: %d instructions", got.Instructions)
	}
	// ...a corrupt one is recompiled and rewritten.
	memCache.Delete(want.Key)
	os.WriteFile(file, append(sum[:], want.BPF...), 0o600)
	if got, _ := CompileCached(p, "x86_64", dir); string(got.BPF) != string(want.BPF) {
		t.Error("corrupt cache entry was used")
	}
	if b, _ := os.ReadFile(file); len(b) != 32+len(want.BPF) {
		t.Error("corrupt cache entry not rewritten")
	}
	// The key covers the rules, not the reasons.
	q, _ := Load("web-server")
	q.Allow[0].Why = "reworded"
	q.Deny = q.Deny[1:]
	k1, _ := cacheKey(p, "x86_64")
	k2, _ := cacheKey(&Profile{Allow: p.Allow, Deny: p.Deny, ENOSYS: p.ENOSYS, Filter: p.Filter}, "x86_64")
	k3, _ := cacheKey(q, "x86_64")
	k4, _ := cacheKey(p, "aarch64")
	if k1 != k2 || k1 == k3 || k1 == k4 {
		t.Errorf("cache keys: same rules %v, fewer rules %v, other arch %v", k1 == k2, k1 != k3, k1 != k4)
	}
}
