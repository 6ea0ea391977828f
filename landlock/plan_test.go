package landlock

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	llsys "github.com/landlock-lsm/go-landlock/landlock/syscall"
)

const allErrata = 0xff

// TestDowngrades plans the full rule set against every ABI version and
// checks the report: one line per lost protection, naming the ABI it needs.
func TestDowngrades(t *testing.T) {
	full := &Rules{RestrictNetwork: true, TCPConnect: []uint16{443}, Scope: true}
	fsOnly := &Rules{}
	tests := []struct {
		name    string
		rules   *Rules
		abi     int
		errata  int
		applied int
		want    []string // one substring per expected line, in order
	}{
		{"abi0", full, 0, allErrata, 0, []string{"filesystem not restricted: the container can read and write wherever file permissions allow: needs Landlock ABI 1, have 0",
			"TCP bind(2) and connect(2) not restricted to the allowed ports: needs Landlock ABI 4, have 0",
			"abstract unix sockets", "signalled"}},
		{"abi1", full, 1, allErrata, 1, []string{"REFER): needs Landlock ABI 2, have 1", "TRUNCATE): needs Landlock ABI 3",
			"IOCTL_DEV): needs Landlock ABI 5", "TCP bind(2) and connect(2)", "abstract unix sockets", "signalled"}},
		{"abi2", full, 2, allErrata, 2, []string{"TRUNCATE", "IOCTL_DEV", "TCP", "ABSTRACT_UNIX_SOCKET", "SCOPE_SIGNAL"}},
		{"abi3", full, 3, allErrata, 3, []string{"IOCTL_DEV", "TCP bind(2) and connect(2) not restricted to the allowed ports: needs Landlock ABI 4, have 3",
			"ABSTRACT_UNIX_SOCKET", "SCOPE_SIGNAL"}},
		{"abi4", full, 4, allErrata, 4, []string{"IOCTL_DEV): needs Landlock ABI 5, have 4", "ABSTRACT_UNIX_SOCKET", "SCOPE_SIGNAL"}},
		{"abi5", full, 5, allErrata, 5, []string{"ABSTRACT_UNIX_SOCKET): needs Landlock ABI 6, have 5", "SCOPE_SIGNAL): needs Landlock ABI 6, have 5"}},
		{"abi6", full, 6, allErrata, 6, nil},
		{"abi7", full, 7, allErrata, 6, nil},
		{"abi11", full, 11, allErrata, 6, nil},
		{"abi99", full, 99, allErrata, 6, nil},
		{"abi7-no-erratum2", full, 7, 0, 5, []string{"ABSTRACT_UNIX_SOCKET): needs Landlock ABI 6, have 5; kernel ABI 7 lacks the signal scoping fix",
			"SCOPE_SIGNAL"}},
		{"fs-only-abi3", fsOnly, 3, allErrata, 3, []string{"IOCTL_DEV"}},
		{"fs-only-abi5", fsOnly, 5, allErrata, 5, nil},
		{"fs-only-abi7-no-erratum2", fsOnly, 7, 0, 5, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := makePlan(tt.rules, tt.abi, tt.errata)
			if err != nil {
				t.Fatal(err)
			}
			r := p.report
			wantRequested := 5
			if tt.rules.Scope {
				wantRequested = 6
			}
			if r.ABI != tt.abi || r.Requested != wantRequested || r.Applied != tt.applied {
				t.Errorf("report ABI/Requested/Applied = %d/%d/%d, want %d/%d/%d",
					r.ABI, r.Requested, r.Applied, tt.abi, wantRequested, tt.applied)
			}
			if len(r.Downgrades) != len(tt.want) {
				t.Fatalf("downgrades:\n%s\nwant %d lines", strings.Join(r.Downgrades, "\n"), len(tt.want))
			}
			for i, w := range tt.want {
				if !strings.Contains(r.Downgrades[i], w) {
					t.Errorf("downgrade line %d = %q, want it to contain %q", i, r.Downgrades[i], w)
				}
			}
		})
	}
}

// TestPlanRules checks how paths become rules: file vs directory rights,
// rights cut to the effective ABI, missing paths and symlinks noted.
func TestPlanRules(t *testing.T) {
	dir := t.TempDir()
	mkdirs(t, dir, "rx", "rw", "real", "list")
	writeFile(t, filepath.Join(dir, "rw", "dev"), "")
	if err := os.Symlink("real", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	r := &Rules{
		ReadExec: []string{filepath.Join(dir, "rx")},
		ReadOnly: []string{filepath.Join(dir, "link") + "/"},
		// A file under list-only gets nothing (read_dir is a directory right).
		ListOnly: []string{filepath.Join(dir, "list"), filepath.Join(dir, "rw", "dev")},
		Writable: []string{filepath.Join(dir, "rw"), filepath.Join(dir, "rw", "dev"), filepath.Join(dir, "missing"),
			filepath.Join(dir, "rw", "dev", "sub")},
		RestrictNetwork: true, TCPBind: []uint16{8080}, TCPConnect: []uint16{53, 443},
	}
	p, err := makePlan(r, 3, allErrata)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, rule := range p.rules {
		got = append(got, stringOf(rule))
	}
	want := []string{
		"REQUIRE {execute,read_file,read_dir} for paths [" + dir + "/rx]",
		"REQUIRE {read_file,read_dir} for paths [" + dir + "/link]",
		"REQUIRE {read_dir} for paths [" + dir + "/list]",
		// ABI 3: no ioctl_dev; make_char and make_block never granted.
		"REQUIRE {execute,write_file,read_file,read_dir,remove_dir,remove_file,make_dir,make_reg,make_sock,make_fifo,make_sym,refer,truncate} for paths [" + dir + "/rw]",
		"REQUIRE {execute,write_file,read_file,truncate} for paths [" + dir + "/rw/dev]",
	}
	// ABI 3 has no network rules: the ports must not become rules.
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("rules:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	wantNotes := []string{
		"read-only path " + dir + "/link resolves to " + dir + "/real",
		"writable path " + dir + "/missing does not exist",
		"writable path " + dir + "/rw/dev/sub does not exist",
	}
	if len(p.report.Notes) != len(wantNotes) {
		t.Fatalf("notes: %q, want %d", p.report.Notes, len(wantNotes))
	}
	for i, w := range wantNotes {
		if !strings.Contains(p.report.Notes[i], w) {
			t.Errorf("note %d = %q, want %q", i, p.report.Notes[i], w)
		}
	}

	p, err = makePlan(r, 6, allErrata)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(p.rules); n != 8 {
		t.Errorf("ABI 6: %d rules, want 5 path rules and 3 port rules", n)
	}
	if p.cfg.HandledAccessFS&llsys.AccessFSMakeChar == 0 || p.cfg.HandledAccessFS&llsys.AccessFSMakeBlock == 0 {
		t.Errorf("ABI 6: make_char/make_block not handled (so not denied): %v", p.cfg)
	}
}

func TestPlanInvalid(t *testing.T) {
	tests := []struct {
		name  string
		rules *Rules
		want  string
	}{
		{"nil", nil, "no rules"},
		{"relative", &Rules{Writable: []string{"tmp"}}, `writable path "tmp": not absolute`},
		{"empty", &Rules{ReadExec: []string{""}}, `read-exec path "": not absolute`},
		{"ports without switch", &Rules{TCPConnect: []uint16{80}}, "without RestrictNetwork"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := makePlan(tt.rules, 7, allErrata)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

// TestRequiredRefusesBeforeEnforcing runs in this process: with required
// and a simulated ABI 3 kernel, apply must fail before any side effect.
func TestRequiredRefusesBeforeEnforcing(t *testing.T) {
	r := &Rules{ReadExec: []string{"/nonexistent-zviz"}, RestrictNetwork: true}
	rep, err := apply(r, true, 3, allErrata)
	if err == nil {
		t.Fatal("required with ABI 3 and network rules: no error")
	}
	if rep == nil || rep.Applied != 3 || len(rep.Downgrades) != 2 {
		t.Errorf("report = %+v, want Applied 3 and the ioctl and TCP lines", rep)
	}
	for _, w := range []string{"required", "IOCTL_DEV", "TCP bind(2)"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %q", err, w)
		}
	}
	// The required check must not have restricted this thread.
	if _, err := os.ReadFile("/proc/self/status"); err != nil {
		t.Errorf("read after refused apply: %v", err)
	}
}

func stringOf(v any) string {
	if s, ok := v.(interface{ String() string }); ok {
		return s.String()
	}
	return "?"
}

func mkdirs(t *testing.T, dir string, names ...string) {
	t.Helper()
	for _, n := range names {
		if err := os.MkdirAll(filepath.Join(dir, n), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestRestrictConnectOnly: an egress allow-list restricts TCP connect to
// its ports and leaves bind alone (servers listen on any port); bind
// ports without RestrictNetwork are refused.
func TestRestrictConnectOnly(t *testing.T) {
	r := &Rules{ReadExec: []string{"/"}, RestrictConnect: true, TCPConnect: []uint16{443}}
	p, err := makePlan(r, 6, allErrata)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.cfg.HandledAccessNet; got != llsys.AccessNetConnectTCP {
		t.Errorf("handled net rights %#x, want connect only %#x", got, llsys.AccessNetConnectTCP)
	}
	var rules []string
	for _, rule := range p.rules {
		if s := stringOf(rule); strings.Contains(s, "443") {
			rules = append(rules, s)
		}
	}
	if len(rules) != 1 || !strings.Contains(rules[0], "connect_tcp") {
		t.Errorf("port rules %v, want one connect rule for 443", rules)
	}
	old, err := makePlan(r, 3, allErrata)
	if err != nil {
		t.Fatal(err)
	}
	if d := strings.Join(old.report.Downgrades, "\n"); !strings.Contains(d, "TCP connect(2) not restricted") || strings.Contains(d, "bind") {
		t.Errorf("ABI 3 downgrades should name connect only:\n%s", d)
	}
	if _, err := makePlan(&Rules{RestrictConnect: true, TCPBind: []uint16{80}}, 6, allErrata); err == nil {
		t.Error("bind ports with RestrictConnect only: accepted")
	}
}
