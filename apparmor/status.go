package apparmor

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// State is what `zviz apparmor status` reports. Every field is read fresh
// from the host; a fact that could not be read has its reason in the
// matching *Why field.
type State struct {
	Enabled    bool   `json:"enabled"`
	EnabledWhy string `json:"enabled_why,omitempty"`
	// RestrictUserns is kernel.apparmor_restrict_unprivileged_userns
	// (Ubuntu's), nil when the kernel has no such sysctl.
	RestrictUserns *int `json:"restrict_unprivileged_userns,omitempty"`
	// UsernsMediated: the kernel's AppArmor mediates creating user
	// namespaces (features/namespaces/mask lists userns_create), so a
	// profile's `userns` rule means something.
	UsernsMediated bool `json:"userns_mediated"`

	File       string `json:"file"`
	Installed  bool   `json:"installed"`
	Attachment string `json:"attachment,omitempty"` // the binary the installed file attaches to

	Loaded     bool   `json:"loaded"`
	LoadedMode string `json:"loaded_mode,omitempty"` // unconfined, enforce, complain, ...
	LoadedWhy  string `json:"loaded_why,omitempty"`  // set when it could not be read

	Exe        string `json:"exe"`     // this zviz binary, "" when unknown
	Current    string `json:"current"` // the label it runs under, e.g. "zviz (unconfined)"
	CurrentWhy string `json:"current_why,omitempty"`
}

// Status reads the state of AppArmor and of zviz's profile; exe is the
// running zviz binary (os.Executable).
func (h Host) Status(exe string) *State {
	s := &State{File: filepath.Join(h.ProfileDir, ProfileName), Exe: exe}
	s.Enabled, s.EnabledWhy = h.enabled()
	if b, err := os.ReadFile(filepath.Join(h.Proc, "sys/kernel/apparmor_restrict_unprivileged_userns")); err == nil {
		if v, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			s.RestrictUserns = &v
		}
	}
	if b, err := os.ReadFile(filepath.Join(h.securityfs(), "features/namespaces/mask")); err == nil {
		s.UsernsMediated = hasWord(string(b), "userns_create")
	}
	if b, err := os.ReadFile(s.File); err == nil {
		s.Installed = true
		s.Attachment = attachmentIn(string(b))
	}
	if s.Enabled {
		s.Loaded, s.LoadedMode, s.LoadedWhy = h.loaded()
	}
	s.Current, s.CurrentWhy = h.current(s.Enabled)
	return s
}

func (h Host) securityfs() string { return filepath.Join(h.Sys, "kernel/security/apparmor") }

// loaded looks for the profile in the kernel's list ("NAME (MODE)" per
// line, what aa-status reads).
func (h Host) loaded() (bool, string, string) {
	path := filepath.Join(h.securityfs(), "profiles")
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return false, "", "no " + path
		}
		if errors.Is(err, os.ErrPermission) {
			return false, "", "reading " + path + " needs root"
		}
		return false, "", err.Error()
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, mode, ok := cutLast(sc.Text(), " (")
		if ok && name == ProfileName {
			return true, strings.TrimSuffix(mode, ")"), ""
		}
	}
	if err := sc.Err(); err != nil {
		return false, "", fmt.Sprintf("read %s: %v", path, err)
	}
	return false, "", ""
}

// current reads the AppArmor label of this process: attr/apparmor/current
// (kernels with LSM stacking, 5.8+), else the shared attr/current, which
// belongs to another LSM (SELinux, Smack) when AppArmor is not enabled.
func (h Host) current(enabled bool) (string, string) {
	path := filepath.Join(h.Proc, "self/attr/apparmor/current")
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		if !enabled {
			return "", "AppArmor is not enabled"
		}
		path = filepath.Join(h.Proc, "self/attr/current")
		b, err = os.ReadFile(path)
	}
	if err != nil {
		return "", err.Error()
	}
	return strings.TrimSpace(strings.TrimRight(string(b), "\x00")), ""
}

var attachRe = regexp.MustCompile(`(?m)^\s*profile\s+` + ProfileName + `\s+("[^"]*"|\S+)`)

// attachmentIn finds the attachment of the zviz profile in a profile file.
func attachmentIn(text string) string {
	m := attachRe.FindStringSubmatch(text)
	if m == nil {
		return ""
	}
	return strings.Trim(m[1], `"`)
}

func hasWord(text, word string) bool {
	for _, w := range strings.Fields(text) {
		if w == word {
			return true
		}
	}
	return false
}

func cutLast(s, sep string) (string, string, bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}

// Report is the state as "item: detail" lines, each a fact and what it
// means for zviz.
func (s *State) Report() []string {
	var l []string
	add := func(format string, a ...any) { l = append(l, fmt.Sprintf(format, a...)) }
	if s.Enabled {
		add("apparmor: enabled in the kernel")
	} else {
		add("apparmor: not enabled: %s", s.EnabledWhy)
	}
	switch {
	case s.RestrictUserns == nil:
		add("userns restriction: none (no kernel.apparmor_restrict_unprivileged_userns, which is Ubuntu's)")
	case *s.RestrictUserns != 0 && s.Enabled:
		add("userns restriction: kernel.apparmor_restrict_unprivileged_userns=%d: an unprivileged user namespace "+
			"has no capabilities unless a profile grants userns", *s.RestrictUserns)
	default:
		add("userns restriction: off (kernel.apparmor_restrict_unprivileged_userns=%d)", *s.RestrictUserns)
	}
	if s.Enabled {
		add("userns mediation: %s", yesNo(s.UsernsMediated, "the kernel's AppArmor mediates creating user namespaces",
			"this kernel's AppArmor does not mediate user namespaces"))
	}
	switch {
	case !s.Installed:
		add("profile file: %s: not installed (sudo zviz apparmor install)", s.File)
	case s.Attachment == "":
		add("profile file: %s: installed, but no `profile %s` line found in it", s.File, ProfileName)
	default:
		add("profile file: %s: attaches to %s", s.File, s.Attachment)
	}
	switch {
	case s.Loaded:
		add("profile loaded: yes (mode %s)", s.LoadedMode)
	case !s.Enabled:
		add("profile loaded: no (AppArmor is not enabled)")
	case s.LoadedWhy != "":
		add("profile loaded: unknown: %s", s.LoadedWhy)
	default:
		add("profile loaded: no")
	}
	cur := s.Current
	if cur == "" {
		cur = "unknown (" + s.CurrentWhy + ")"
	}
	exe := s.Exe
	if exe == "" {
		exe = "(binary unknown)"
	}
	add("this zviz: %s, running under AppArmor label %s", exe, cur)
	if s.Installed && s.Attachment != "" && s.Exe != "" && s.Exe != s.Attachment {
		add("note: the profile attaches to %s, not to this binary: it does not apply here "+
			"(zviz apparmor install --path %s)", s.Attachment, s.Exe)
	}
	return l
}

func yesNo(b bool, yes, no string) string {
	if b {
		return "yes: " + yes
	}
	return "no: " + no
}
