package apparmor

import (
	"path/filepath"
	"strings"
	"testing"
)

// ubuntuHost is a fake Ubuntu 24.04: AppArmor on, the restriction on,
// userns mediated, the profile installed and loaded, zviz under it.
func ubuntuHost(t *testing.T) Host {
	t.Helper()
	h := fakeHost(t, true, "")
	prof, err := Profile(DefaultBinary)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(h.ProfileDir, ProfileName), string(prof))
	writeFile(t, filepath.Join(h.Proc, "sys/kernel/apparmor_restrict_unprivileged_userns"), "1\n")
	sec := filepath.Join(h.Sys, "kernel/security/apparmor")
	writeFile(t, filepath.Join(sec, "features/namespaces/mask"), "userns_create\n")
	writeFile(t, filepath.Join(sec, "profiles"), "zviz-other (enforce)\nzviz//hat (enforce)\n"+
		"zviz (unconfined)\n/usr/bin/man (enforce)\nunprivileged_userns (enforce)\n")
	writeFile(t, filepath.Join(h.Proc, "self/attr/apparmor/current"), "zviz (unconfined)\n")
	writeFile(t, filepath.Join(h.Proc, "self/attr/current"), "wrong (file)\n")
	return h
}

func TestStatusUbuntu(t *testing.T) {
	h := ubuntuHost(t)
	s := h.Status(DefaultBinary)
	if !s.Enabled || s.RestrictUserns == nil || *s.RestrictUserns != 1 || !s.UsernsMediated {
		t.Errorf("kernel: %+v", s)
	}
	if !s.Installed || s.Attachment != DefaultBinary || s.File != filepath.Join(h.ProfileDir, "zviz") {
		t.Errorf("file: installed %v, attachment %q, file %s", s.Installed, s.Attachment, s.File)
	}
	if !s.Loaded || s.LoadedMode != "unconfined" || s.LoadedWhy != "" {
		t.Errorf("loaded %v mode %q why %q", s.Loaded, s.LoadedMode, s.LoadedWhy)
	}
	if s.Current != "zviz (unconfined)" || s.CurrentWhy != "" {
		t.Errorf("current %q (%s), want attr/apparmor/current's", s.Current, s.CurrentWhy)
	}
	report := strings.Join(s.Report(), "\n")
	for _, want := range []string{
		"apparmor: enabled in the kernel",
		"userns restriction: kernel.apparmor_restrict_unprivileged_userns=1: an unprivileged user namespace has no capabilities",
		"userns mediation: yes",
		"profile file: " + s.File + ": attaches to /usr/local/bin/zviz",
		"profile loaded: yes (mode unconfined)",
		"this zviz: /usr/local/bin/zviz, running under AppArmor label zviz (unconfined)",
	} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q:\n%s", want, report)
		}
	}
	if strings.Contains(report, "note:") {
		t.Errorf("a note for a binary the profile covers:\n%s", report)
	}

	// Another binary: the report says the profile does not apply to it.
	s = h.Status("/home/u/bin/zviz")
	if r := strings.Join(s.Report(), "\n"); !strings.Contains(r, "note: the profile attaches to /usr/local/bin/zviz, not to this binary") ||
		!strings.Contains(r, "--path /home/u/bin/zviz") {
		t.Errorf("report for another binary:\n%s", r)
	}
}

func TestStatusVariants(t *testing.T) {
	t.Run("no AppArmor", func(t *testing.T) {
		h := fakeHost(t, false, "")
		// Another LSM answers attr/current: not AppArmor's label.
		writeFile(t, filepath.Join(h.Proc, "self/attr/current"), "system_u:system_r:unconfined_t:s0\n")
		s := h.Status("/usr/local/bin/zviz")
		if s.Enabled || !strings.Contains(s.EnabledWhy, "module/apparmor/parameters/enabled") || s.RestrictUserns != nil ||
			s.UsernsMediated || s.Installed || s.Loaded || s.Current != "" || s.CurrentWhy != "AppArmor is not enabled" {
			t.Errorf("%+v", s)
		}
		report := strings.Join(s.Report(), "\n")
		for _, want := range []string{"apparmor: not enabled: no ", "userns restriction: none",
			"profile file: " + s.File + ": not installed (sudo zviz apparmor install)",
			"profile loaded: no (AppArmor is not enabled)", "label unknown (AppArmor is not enabled)"} {
			if !strings.Contains(report, want) {
				t.Errorf("report lacks %q:\n%s", want, report)
			}
		}
		if strings.Contains(report, "userns mediation") {
			t.Errorf("mediation reported without AppArmor:\n%s", report)
		}
	})
	t.Run("restriction off, not loaded, older kernel", func(t *testing.T) {
		h := fakeHost(t, true, "")
		writeFile(t, filepath.Join(h.Proc, "sys/kernel/apparmor_restrict_unprivileged_userns"), "0\n")
		writeFile(t, filepath.Join(h.Sys, "kernel/security/apparmor/features/namespaces/mask"), "pivot_root\n")
		writeFile(t, filepath.Join(h.Sys, "kernel/security/apparmor/profiles"), "zviz-other (enforce)\n")
		writeFile(t, filepath.Join(h.Proc, "self/attr/current"), "unconfined\n") // no attr/apparmor/
		prof, _ := Profile("/opt/z z/zviz")
		writeFile(t, filepath.Join(h.ProfileDir, ProfileName), string(prof))
		s := h.Status("/opt/z z/zviz")
		if !s.Enabled || s.RestrictUserns == nil || *s.RestrictUserns != 0 || s.UsernsMediated || s.Loaded ||
			s.LoadedWhy != "" || s.Current != "unconfined" || s.Attachment != "/opt/z z/zviz" {
			t.Errorf("%+v", s)
		}
		report := strings.Join(s.Report(), "\n")
		for _, want := range []string{"userns restriction: off (kernel.apparmor_restrict_unprivileged_userns=0)",
			"userns mediation: no", "profile loaded: no\n", "running under AppArmor label unconfined"} {
			if !strings.Contains(report, want) {
				t.Errorf("report lacks %q:\n%s", want, report)
			}
		}
	})
	t.Run("no profile list", func(t *testing.T) {
		h := fakeHost(t, true, "")
		writeFile(t, filepath.Join(h.ProfileDir, ProfileName), "# not ours\n")
		s := h.Status("/usr/local/bin/zviz")
		if s.Loaded || !strings.Contains(s.LoadedWhy, "no "+filepath.Join(h.Sys, "kernel/security/apparmor/profiles")) {
			t.Errorf("loaded %v why %q", s.Loaded, s.LoadedWhy)
		}
		report := strings.Join(s.Report(), "\n")
		if !strings.Contains(report, "profile loaded: unknown: no ") || !strings.Contains(report, "no `profile zviz` line") {
			t.Errorf("report:\n%s", report)
		}
	})
}
