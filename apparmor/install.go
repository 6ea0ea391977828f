package apparmor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Host says where this host's AppArmor pieces are. DefaultHost is the
// real one; tests point the fields at fake trees and fake parsers.
type Host struct {
	ProfileDir string // profiles: /etc/apparmor.d
	Parser     string // apparmor_parser; "" looks it up on PATH, then in /sbin and /usr/sbin
	Sys        string // sysfs: /sys
	Proc       string // procfs: /proc
}

// DefaultHost is the running system.
func DefaultHost() Host {
	return Host{ProfileDir: "/etc/apparmor.d", Sys: "/sys", Proc: "/proc"}
}

// ErrRootNeeded is returned (wrapped) by Install for a caller that is not
// root.
var ErrRootNeeded = errors.New("root needed")

// Plan is an install worked out without side effects: what `install
// --dry-run` prints.
type Plan struct {
	Binary  string // the resolved binary path the profile attaches to
	File    string // where the profile goes
	Profile []byte
}

// Prepare checks the binary (CheckBinary) and renders its profile.
func (h Host) Prepare(binary string) (*Plan, error) {
	real, err := CheckBinary(binary)
	if err != nil {
		return nil, err
	}
	prof, err := Profile(real)
	if err != nil {
		return nil, err
	}
	return &Plan{Binary: real, File: filepath.Join(h.ProfileDir, ProfileName), Profile: prof}, nil
}

// Installed is what Install did.
type Installed struct {
	File   string // the profile file written
	Parser string // the apparmor_parser used, "" when there is none
	Loaded bool   // the kernel has the new profile
	// NotLoaded says why the profile was not loaded; KernelOff is set
	// when the reason is that the kernel has no AppArmor, so there is
	// nothing to load into and nothing restricting user namespaces.
	NotLoaded string
	KernelOff bool
}

// Install writes the profile atomically (mode 0644) and loads it with
// apparmor_parser -r. Before the file replaces anything the parser
// compile-checks it: a profile that does not compile never reaches
// /etc/apparmor.d, where it would break loading policy at boot. A parser
// older than AppArmor 4 (which has neither `abi <abi/4.0>` nor the userns
// rule) is refused for the same reason. Without a parser, or when the
// kernel has no AppArmor, the file is installed and not loaded, and
// Installed says why.
func (h Host) Install(p *Plan) (*Installed, error) {
	if euid := os.Geteuid(); euid != 0 {
		return nil, fmt.Errorf("%w: writing %s and loading it into the kernel (CAP_MAC_ADMIN) need root, "+
			"and this is uid %d (try: sudo zviz apparmor install)", ErrRootNeeded, p.File, euid)
	}
	res := &Installed{File: p.File}
	parser := h.parser()
	res.Parser = parser
	if parser != "" {
		if err := checkParserVersion(parser); err != nil {
			return nil, err
		}
	}
	enabled, why := h.enabled()
	if err := writeChecked(p, parser); err != nil {
		return nil, err
	}
	switch {
	case !enabled:
		res.NotLoaded, res.KernelOff = "AppArmor is not enabled in this kernel ("+why+")", true
	case parser == "":
		res.NotLoaded = "apparmor_parser not found (apt-get install apparmor)"
	default:
		if out, err := runParser(parser, "-r", p.File); err != nil {
			return res, fmt.Errorf("load %s: %s -r: %w%s", p.File, parser, err, indent(out))
		}
		res.Loaded = true
	}
	return res, nil
}

// writeChecked writes p.Profile to a temporary file next to p.File,
// compile-checks it when there is a parser, and renames it into place.
func writeChecked(p *Plan, parser string) error {
	dir := filepath.Dir(p.File)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write profile: %w", err)
	}
	// A dot name: apparmor_parser skips dot files when it loads a
	// directory, should the boot-time load run meanwhile.
	f, err := os.CreateTemp(dir, "."+filepath.Base(p.File)+".tmp*")
	if err != nil {
		return fmt.Errorf("write profile: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // a no-op once renamed
	_, err = f.Write(p.Profile)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write profile %s: %w", tmp, err)
	}
	if parser != "" {
		// -Q: compile, do not load; -K: leave the cache alone.
		if out, err := runParser(parser, "-Q", "-K", tmp); err != nil {
			return fmt.Errorf("check profile for %s: %s rejects it (nothing installed): %w%s", p.Binary, parser, err, indent(out))
		}
	}
	if err := os.Rename(tmp, p.File); err != nil {
		return fmt.Errorf("install profile: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync() //nolint:errcheck // durability of the rename only
		d.Close()
	}
	return nil
}

// parser returns the apparmor_parser to use, or "" when there is none.
// An explicit Parser that does not exist counts as none.
func (h Host) parser() string {
	if h.Parser != "" {
		if _, err := os.Stat(h.Parser); err != nil {
			return ""
		}
		return h.Parser
	}
	if p, err := exec.LookPath("apparmor_parser"); err == nil {
		return p
	}
	// sudo and `go test` may run without sbin on PATH.
	for _, p := range []string{"/usr/sbin/apparmor_parser", "/sbin/apparmor_parser"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

var parserVersion = regexp.MustCompile(`version (\d+)\.(\d+)(?:\.(\d+))?`)

// checkParserVersion refuses a parser older than 4.0. A version it cannot
// read passes: the compile check that follows has the last word.
func checkParserVersion(parser string) error {
	out, err := runParser(parser, "--version")
	if err != nil {
		return fmt.Errorf("%s --version: %w%s", parser, err, indent(out))
	}
	m := parserVersion.FindStringSubmatch(out)
	if m == nil {
		return nil
	}
	if major, _ := strconv.Atoi(m[1]); major < 4 {
		return fmt.Errorf("%s is version %s.%s, which predates AppArmor 4 (abi <abi/4.0>, the userns rule) "+
			"and cannot read zviz's profile; nothing installed. AppArmor 3 does not mediate user "+
			"namespaces, so zviz needs no profile on this host", parser, m[1], m[2])
	}
	return nil
}

// runParser runs apparmor_parser and returns its combined output.
func runParser(parser string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, parser, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return strings.TrimSpace(out.String()), err
}

// indent formats tool output to follow an error: ": " and one line, its
// lines joined by " | ".
func indent(out string) string {
	if out == "" {
		return ""
	}
	return ": " + strings.Join(strings.Fields(strings.ReplaceAll(out, "\n", " | ")), " ")
}

// enabled says whether the kernel has AppArmor on, and if not, why.
func (h Host) enabled() (bool, string) {
	path := filepath.Join(h.Sys, "module/apparmor/parameters/enabled")
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return false, "no " + path + ": AppArmor is not built in or not among the active LSMs"
		}
		return false, err.Error()
	}
	v := strings.TrimSpace(string(b))
	if v != "Y" {
		return false, fmt.Sprintf("%s is %q (boot with apparmor=1 and lsm=...,apparmor)", path, v)
	}
	return true, ""
}
