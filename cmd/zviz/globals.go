package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/zviz/zviz/internal/container"
)

// globals are the flags accepted before the verb, in both --flag value and
// --flag=value forms.
type globals struct {
	root          string
	log           string
	logFormat     string
	debug         bool
	systemdCgroup bool
	rootless      string
	profile       string
	logDenials    bool
	fullIsolation bool
	version       bool
	help          bool
}

func parseGlobals(args []string) (*globals, []string, error) {
	g := &globals{logFormat: "text"}
	fs := flag.NewFlagSet("zviz", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&g.root, "root", "", "state directory")
	fs.StringVar(&g.log, "log", "", "log file")
	fs.StringVar(&g.logFormat, "log-format", "text", "log format: text or json")
	fs.BoolVar(&g.debug, "debug", false, "debug output")
	fs.BoolVar(&g.systemdCgroup, "systemd-cgroup", false, "use systemd for cgroups")
	fs.StringVar(&g.rootless, "rootless", "auto", "accepted for runc compatibility")
	fs.StringVar(&g.profile, "profile", "", "security profile: a built-in name or a file (default: the annotation run.zviz.profile, else default)")
	fs.BoolVar(&g.logDenials, "log-denials", false, "report every refused syscall with its name and arguments on stderr")
	fs.BoolVar(&g.logDenials, "verbose", false, "same as --log-denials")
	fs.BoolVar(&g.fullIsolation, "require-full-isolation", false, "refuse the chdir-only fallback when a new namespace cannot mount (AppArmor's user-namespace restriction)")
	fs.BoolVar(&g.version, "version", false, "print the version")
	fs.BoolVar(&g.version, "v", false, "print the version")
	fs.BoolVar(&g.help, "help", false, "help")
	fs.BoolVar(&g.help, "h", false, "help")
	if err := fs.Parse(args); err != nil {
		return g, nil, fmt.Errorf("global flags: %w", err)
	}
	if g.logFormat != "text" && g.logFormat != "json" {
		return g, nil, fmt.Errorf("--log-format %q: must be text or json", g.logFormat)
	}
	return g, fs.Args(), nil
}

// options builds the core's options; the state root is resolved here so
// that every verb reports a bad one the same way.
func (g *globals) options() (*container.Options, error) {
	root := g.root
	if root == "" {
		var err error
		if root, err = container.DefaultRoot(); err != nil {
			return nil, err
		}
	}
	var warn io.Writer = os.Stderr
	if g.log != "" {
		// As runc's logrus: with --log, warnings go to the log (conmon
		// hands the runtime's stderr to the container's log).
		warn = &logWarner{g: g}
	}
	return &container.Options{Root: root, SystemdCgroup: g.systemdCgroup, Debug: g.debug, Profile: g.profile,
		LogDenials: g.logDenials, Warn: warn, RequireFullIsolation: g.fullIsolation}, nil
}

// logWarner writes each "zviz: warning: ..." line it is given to --log as
// one entry of level warning, in --log-format.
type logWarner struct{ g *globals }

func (l *logWarner) Write(p []byte) (int, error) {
	w := l.g.logWriter()
	if w == nil {
		return os.Stderr.Write(p) // the log cannot be opened: not lost
	}
	defer w.Close()
	for _, line := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		msg, level := strings.TrimPrefix(line, "zviz: "), "info"
		if m, ok := strings.CutPrefix(msg, "warning: "); ok {
			msg, level = m, "warning"
		}
		l.g.logEntry(w, level, msg)
	}
	return len(p), nil
}

// logEntry writes one entry in --log-format.
func (g *globals) logEntry(w io.Writer, level, msg string) {
	now := time.Now().UTC().Format(time.RFC3339Nano)
	if g.logFormat == "json" {
		rec, _ := json.Marshal(map[string]string{"level": level, "msg": msg, "time": now})
		fmt.Fprintf(w, "%s\n", rec)
		return
	}
	fmt.Fprintf(w, "time=%q level=%s msg=%q\n", now, level, msg)
}

// fail reports err as the command's final line and returns exit code 1.
// With --log-format json the log gets one JSON object (what podman reads
// with runtime_supports_json); stderr keeps the plain line, whose text
// podman maps to exit codes.
func (g *globals) fail(err error) int {
	msg := strings.ReplaceAll(err.Error(), "\n", "; ")
	if w := g.logWriter(); w != nil {
		g.logEntry(w, "error", msg)
		w.Close()
	} else if g.logFormat == "json" {
		g.logEntry(os.Stderr, "error", msg)
		return 1
	}
	fmt.Fprintf(os.Stderr, "zviz: %s\n", msg)
	return 1
}

func (g *globals) logWriter() *os.File {
	if g.log == "" {
		return nil
	}
	f, err := os.OpenFile(g.log, os.O_WRONLY|os.O_APPEND|os.O_CREATE|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return nil
	}
	return f
}

// verbFlags is a flag set for one verb. Flags and positional arguments may
// be interleaved (conmon and podman put flags before the id, users after);
// interleave=false stops at the first positional (commands that take a
// command line: everything after it belongs to the command).
type flagSet struct{ *flag.FlagSet }

func newFlagSet(name string) *flagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return &flagSet{fs}
}

func (fs *flagSet) parse(args []string, interleave bool) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, fmt.Errorf("usage: zviz %s %s", fs.Name(), flagList(fs.FlagSet))
			}
			return nil, fmt.Errorf("%s: %w", fs.Name(), err)
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		// flag.Parse consumes a "--" terminator: what follows is positional.
		dashed := len(rest) < len(args) && args[len(args)-len(rest)-1] == "--"
		if dashed || !interleave {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

func flagList(fs *flag.FlagSet) string {
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, "[--"+f.Name+"]") })
	sort.Strings(names)
	return strings.Join(names, " ")
}

// needArgs checks the number of positional arguments.
func needArgs(verb string, pos []string, min, max int, usage string) error {
	if len(pos) < min || (max >= 0 && len(pos) > max) {
		return fmt.Errorf("%s: usage: zviz %s %s", verb, verb, usage)
	}
	return nil
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "zviz: a rootless OCI container runtime for untrusted code")
	fmt.Fprintln(w, "\nusage: zviz [--root DIR] [--log FILE] [--log-format text|json] [--debug] [--systemd-cgroup] COMMAND ...")
	fmt.Fprintln(w, "\ncommands:")
	var names []string
	for n := range verbs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, verbs[n].summary)
	}
}
