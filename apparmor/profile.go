package apparmor

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"text/template"
)

// ProfileName is the name the profile is loaded under, and the name of its
// file in /etc/apparmor.d.
const ProfileName = "zviz"

// DefaultBinary is where the install instructions put zviz, and the path
// the profile attaches to unless told otherwise.
const DefaultBinary = "/usr/local/bin/zviz"

//go:embed zviz.profile.tmpl
var profileTemplate string

var profileTmpl = template.Must(template.New(ProfileName).Parse(profileTemplate))

// Profile renders the profile for the zviz binary at the absolute path
// binary. It is pure: the path is checked as text (see attachment), not
// on the file system (CheckBinary does that).
func Profile(binary string) ([]byte, error) {
	att, err := attachment(binary)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := profileTmpl.Execute(&b, struct{ Attachment string }{att}); err != nil {
		return nil, fmt.Errorf("render profile for %s: %w", binary, err)
	}
	return b.Bytes(), nil
}

// attachment returns binary as a profile attachment: the path itself, in
// double quotes when it has spaces. AppArmor reads an attachment as a
// pattern (apparmor.d(5), "Globbing"): * ? [ ] { } ^ are pattern syntax,
// \ escapes, @{ starts a variable (also inside quotes), and a few more
// characters end or split the rule. A binary path needs none of them, so
// anything outside a plain set is refused rather than escaped: the
// kernel would attach the profile to whatever the pattern matches, not to
// the one file meant.
func attachment(binary string) (string, error) {
	if !filepath.IsAbs(binary) {
		return "", fmt.Errorf("binary path %q: not absolute", binary)
	}
	if filepath.Clean(binary) != binary || binary == "/" {
		return "", fmt.Errorf("binary path %q: not a clean file path (want %q)", binary, filepath.Clean(binary))
	}
	for _, r := range binary {
		if !plainPathRune(r) {
			return "", fmt.Errorf("binary path %q: character %q would be read as AppArmor pattern or rule syntax; "+
				"install zviz at a path of letters, digits, spaces and / . _ + - : ~", binary, r)
		}
	}
	if strings.Contains(binary, " ") {
		return `"` + binary + `"`, nil
	}
	return binary, nil
}

func plainPathRune(r rune) bool {
	switch {
	case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		return true
	}
	return strings.ContainsRune("/._+-:~ ", r)
}

// CheckBinary resolves symlinks in path (the kernel attaches profiles by
// the path of the file really exec'd) and checks that the result is a
// regular file that only root can change: owned by root, not writable by
// another group or by others, in directories owned by root that nobody
// else can write to (or that are sticky, like /tmp, so nobody else can
// rename root's entries). A profile granting userns to a path that a user
// can write would give that user's own code the unprivileged user
// namespaces the restriction is there to deny. It returns the resolved
// path.
func CheckBinary(path string) (string, error) {
	if _, err := attachment(path); err != nil {
		return "", err
	}
	real, err := filepath.EvalSymlinks(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("binary %s: %w (install zviz there first, or name it with --path)", path, syscall.ENOENT)
	}
	if err != nil {
		return "", fmt.Errorf("binary %s: %w", path, err)
	}
	if _, err := attachment(real); err != nil {
		return "", fmt.Errorf("binary %s resolves to %s: %w", path, real, err)
	}
	fi, err := os.Stat(real)
	if err != nil {
		return "", fmt.Errorf("binary %s: %w", real, err)
	}
	if !fi.Mode().IsRegular() {
		kind := "a special file"
		if fi.IsDir() {
			kind = "a directory"
		}
		return "", fmt.Errorf("binary %s: not a regular file but %s", real, kind)
	}
	if why := writableByNonRoot(fi); why != "" {
		return "", fmt.Errorf("binary %s: %s; a profile granting userns to it would grant it to whatever "+
			"they put there (chown root and chmod go-w it, or install zviz elsewhere)", real, why)
	}
	for dir := filepath.Dir(real); ; dir = filepath.Dir(dir) {
		di, err := os.Stat(dir)
		if err != nil {
			return "", fmt.Errorf("binary %s: %w", real, err)
		}
		why := writableByNonRoot(di)
		if why != "" && di.Mode()&os.ModeSticky != 0 && ownedByRoot(di) {
			why = "" // others may add entries but not rename root's
		}
		if why != "" {
			return "", fmt.Errorf("binary %s: directory %s %s, so they could replace the binary; "+
				"install zviz in a directory only root can write", real, dir, why)
		}
		if dir == "/" {
			return real, nil
		}
	}
}

// writableByNonRoot says who other than root may write fi, or "".
func writableByNonRoot(fi os.FileInfo) string {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return "cannot read its owner"
	}
	switch {
	case st.Uid != 0:
		return fmt.Sprintf("is owned by uid %d, not root", st.Uid)
	case fi.Mode().Perm()&0o002 != 0:
		return "is writable by everyone"
	case fi.Mode().Perm()&0o020 != 0 && st.Gid != 0:
		return fmt.Sprintf("is writable by group %d", st.Gid)
	}
	return ""
}

func ownedByRoot(fi os.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && st.Uid == 0
}
