package container

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/zviz/zviz/internal/hooks"
	"github.com/zviz/zviz/internal/initproc"
	"github.com/zviz/zviz/internal/spec"
	"github.com/zviz/zviz/internal/wire"
	"github.com/zviz/zviz/userns"
)

// Options are the global flags every command shares.
type Options struct {
	Root          string
	SystemdCgroup bool
	Debug         bool
	// Profile is --profile: a built-in profile's name or a file.
	Profile string
	// LogDenials is --log-denials/--verbose: report every refused syscall.
	LogDenials bool
	// Warn receives one-line warnings (layers not applied as asked).
	Warn io.Writer
	// RequireFullIsolation refuses the chdir-only fallback (isolation.go).
	RequireFullIsolation bool
}

func (o *Options) store() *Store { return &Store{Root: o.Root} }

func (o *Options) warnf(format string, args ...any) {
	if o.Warn != nil {
		fmt.Fprintf(o.Warn, "zviz: warning: "+format+"\n", args...)
	}
}

// CreateOptions are create's flags (runc's, as conmon passes them).
type CreateOptions struct {
	ID            string
	Bundle        string
	PidFile       string
	ConsoleSocket string
	PreserveFDs   int
	NoPivot       bool
	NoNewKeyring  bool
	// Spec, when set, is used instead of Bundle/config.json (zviz sandbox).
	Spec *specs.Spec
	// Network is --network (netmode.go); Publish the -p forwards.
	Network string
	Publish []string
}

// created is a container whose init is parked on the exec fifo.
type created struct {
	proc   *os.Process
	master *os.File // pty master, when the caller (run) keeps it
	pid    int
	rec    *record // as saved: run starts and deletes without reading it back
	// waitLog waits for the foreground denial log, when there is one.
	waitLog func()
	net     *userNet // user-mode network of a foreground run
}

// Create builds the container and leaves its init parked before the user's
// process, as `runc create` does.
func Create(o *Options, c *CreateOptions) error {
	cr, err := create(o, c, false)
	if err != nil {
		return err
	}
	if cr.master != nil {
		cr.master.Close()
	}
	// The init outlives us: release it without waiting.
	return cr.proc.Release()
}

func create(o *Options, c *CreateOptions, foreground bool) (cr *created, err error) {
	// Warnings are about the container: they are announced once it
	// exists, and a failed create prints only its error.
	if w := o.Warn; w != nil {
		var held bytes.Buffer
		o.Warn = &held
		defer func() {
			o.Warn = w
			if err == nil {
				w.Write(held.Bytes())
			}
		}()
	}
	bundle, data, early, err := readConfig(c)
	if err != nil {
		return nil, err
	}
	if err := applyNetworkFlag(c, early); err != nil {
		return nil, err
	}
	plan, err := planNamespaces(early)
	if err != nil {
		return nil, err
	}
	preconnect(o)
	// Whether the program will have a listener (--log-denials, or the
	// profile's network broker) is known only once the policy is decided,
	// after the init has started: the socket is made for every container.
	dl, err := newDenialLog()
	if err != nil {
		return nil, err
	}
	// The init's end is the init's; ours goes to the logger (this
	// process's goroutine keeps it, a spawned logger has its own copy).
	defer dl.init.Close()
	defer func() {
		if err != nil || !foreground || dl.plan == nil {
			dl.close()
		}
	}()
	h, err := o.store().newContainer(c.ID)
	if err != nil {
		return nil, err
	}
	var undo cleanup
	defer func() {
		if err != nil {
			undo.run()
			h.remove()
		}
		h.unlock()
	}()
	// The init is started as soon as its namespaces are known: the Go
	// runtime's start-up in it overlaps with decoding and validating the
	// config, the policy decision, the id maps and the state written here.
	l, err := launchIsolated(o, h, early, plan, c, dl, &undo)
	if err != nil {
		return nil, err
	}
	defer l.conn.Close()
	if err := dl.watch(l.proc.Pid); err != nil {
		return nil, err
	}
	iso := l.iso
	s, err := fullSpec(c, bundle, data)
	if err != nil {
		return nil, err
	}
	if err := applyNetworkFlag(c, s); err != nil {
		return nil, err
	}
	if s.Process.Terminal && c.ConsoleSocket == "" && !foreground {
		return nil, errors.New("process.terminal is true: --console-socket is required")
	}
	o.debugf("config loaded and validated")
	if n := listenFDs(); n > 0 {
		s.Process.Env = append(s.Process.Env, "LISTEN_FDS="+strconv.Itoa(n), "LISTEN_PID=1")
	}
	rec := &record{
		OCIVersion: specs.Version, ID: c.ID, Bundle: bundle, Rootfs: spec.RootfsPath(s, bundle),
		Created: time.Now().UTC(), Owner: ownerName(os.Geteuid()), Annotations: s.Annotations, Spec: s,
		Pid: l.proc.Pid, Start: l.start, Isolation: iso.mode,
	}
	if iso.chdirOnly() {
		iso.warnings = iso.adapt(s, rec.Rootfs)
	}
	if l.joined != nil {
		if w := adoptJoinedMaps(l.joined, s); w != "" {
			l.warnings = append(l.warnings, w)
		}
	}
	mapped := l.mapIDs(s, plan)
	policy, cg, err := applyPolicy(o, h, rec, l, dl)
	if err != nil {
		return nil, err
	}
	if err := placeInit(o, rec, cg, &undo); err != nil {
		return nil, err
	}
	m := <-mapped
	var unet *userNet
	if m.err == nil {
		if unet, err = startNetwork(o, c, h.dir, s, plan, rec.Pid, foreground, policy.DNS != ""); err != nil {
			return nil, err
		}
		undo.add(unet.stop)
	}
	if cr, err = l.bootstrap(o, rec, plan, c, policy, m); err != nil {
		return nil, err
	}
	cr.net = unet
	o.debugf("init ready")
	if err := finishCreate(h, rec, cr, c); err != nil {
		return nil, err
	}
	if dl.plan != nil {
		// The init sends the filter's listener right before it execs the
		// process, after start: the logger must be waiting by then, and
		// listening for exec'd processes' once create returns.
		if err := dl.listen(h.dir); err != nil {
			return nil, err
		}
		if foreground {
			cr.waitLog = dl.runLogger(os.Stderr)
		} else if err := dl.spawnLogger(c.ID); err != nil {
			return nil, err
		}
	}
	return cr, nil
}

// applyPolicy decides the security layers and where the container's cgroup
// comes from, announces what is weaker than asked, and writes the
// container's state with them.
func applyPolicy(o *Options, h *handle, rec *record, l *launched, dl *denialLog) (*wire.Policy, *cgroupPlan, error) {
	s := rec.Spec
	d, err := decidePolicy(o, s, l.iso)
	if err != nil {
		return nil, nil, err
	}
	o.debugf("policy decided (profile %s, %d seccomp programs)", d.policy.Profile, len(d.policy.Seccomp))
	cg, err := planCgroup(o, s, rec.ID, d.profile)
	if err != nil {
		return nil, nil, err
	}
	if d.denials != nil {
		dl.plan = d.denials
		d.policy.DenialFD = l.denialFD
	}
	if err := provisionDNS(h.dir, s, rec.Rootfs, d.policy, d.denials); err != nil {
		return nil, nil, err
	}
	prepareAgent(d.denials, rec)
	res, notes := withCeiling(s.Linux.Resources, d.profile.Limits, d.profile.Name)
	s.Linux.Resources = res
	rec.Warnings = append(append(append(l.iso.warnings, l.warnings...), layerWarnings(s)...), d.warnings...)
	rec.Profile = d.policy.Profile
	rec.Warnings = append(rec.Warnings, notes...)
	for _, w := range rec.Warnings {
		o.warnf("%s", w)
	}
	// Notes are recorded in state only: they take nothing away from the
	// protection the config asks for.
	rec.Warnings = append(rec.Warnings, capabilityNotes(s)...)
	rec.Cgroup = cg.rec
	if err := h.save(rec); err != nil {
		return nil, nil, err
	}
	if err := saveExecPolicy(h, d.policy); err != nil {
		return nil, nil, err
	}
	o.debugf("state written")
	return d.policy, cg, nil
}

// placeInit puts the init into the container's cgroup (before it makes its
// cgroup namespace) with the limits, and announces what it could not do.
func placeInit(o *Options, rec *record, cg *cgroupPlan, undo *cleanup) error {
	warnings, err := placeCgroup(o, cg, rec.Pid, rec.Spec.Linux.Resources, undo)
	if err != nil {
		return err
	}
	for _, w := range warnings {
		o.warnf("%s", w)
	}
	rec.Warnings = append(rec.Warnings, warnings...)
	o.debugf("cgroup placed (%s %s)", cg.rec.Manager, cg.rec.Dir)
	return nil
}

// readConfig reads the config and peeks at what starting the init needs;
// zviz sandbox passes its spec instead. A config the peek cannot read is
// decoded in full at once, for the error that says what is wrong.
func readConfig(c *CreateOptions) (bundle string, data []byte, early *specs.Spec, err error) {
	if bundle, err = filepath.Abs(c.Bundle); err != nil {
		return "", nil, nil, fmt.Errorf("bundle %q: %w", c.Bundle, err)
	}
	if c.Spec != nil {
		return bundle, nil, c.Spec, spec.Validate(c.Spec, bundle)
	}
	if data, err = spec.Read(bundle); err != nil {
		return "", nil, nil, err
	}
	if early, err = spec.Peek(data); err != nil {
		if _, perr := spec.Parse(bundle, data); perr != nil {
			return "", nil, nil, perr
		}
		return "", nil, nil, err
	}
	return bundle, data, early, nil
}

// fullSpec decodes and validates the config readConfig read.
func fullSpec(c *CreateOptions, bundle string, data []byte) (*specs.Spec, error) {
	if c.Spec != nil {
		return c.Spec, nil // validated by readConfig
	}
	return spec.Parse(bundle, data)
}

// launched is an init that has been started and waits for its bootstrap.
type launched struct {
	proc  *os.Process
	start uint64 // the init's start time (see record.Start)
	// joined is the user namespace the init entered by path, or nil.
	joined *userns.Namespace
	// warnings are about how it was started, announced with the policy's.
	warnings []string
	conn     *wire.Conn
	preserve int
	denialFD int // the denial log's socket in the init, or 0
	iso      *isolation
}

// launchInit starts zviz:[init] in its namespaces, with the exec fifo, the
// sync socket and the descriptors it passes on; the init then waits for
// its bootstrap.
func launchInit(o *Options, h *handle, early *specs.Spec, plan *nsPlan, c *CreateOptions, dl *denialLog, undo *cleanup) (*launched, error) {
	var entered []*os.File
	if len(plan.enter) > 0 {
		var err error
		if entered, err = openEntered(plan); err != nil {
			return nil, err
		}
		defer closeAll(entered)
	}
	fifo := filepath.Join(h.dir, fifoName)
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		return nil, fmt.Errorf("create exec fifo %s: %w", fifo, err)
	}
	if uid, gid, ok := fifoOwner(early, plan); ok {
		if err := unix.Chown(fifo, int(uid), int(gid)); err != nil {
			return nil, fmt.Errorf("chown exec fifo %s to %d:%d: %w", fifo, uid, gid, err)
		}
	}
	fifoFD, err := unix.Open(fifo, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open exec fifo %s: %w", fifo, err)
	}
	fifoFile := os.NewFile(uintptr(fifoFD), fifo)
	defer fifoFile.Close()
	parent, child, err := wire.Pair()
	if err != nil {
		return nil, err
	}
	path, copied, err := initExecutable(early, plan)
	if err != nil {
		parent.Close()
		child.Close()
		return nil, err
	}
	l := &launched{conn: parent, preserve: c.PreserveFDs + listenFDs()}
	own := []*os.File{child.File(), fifoFile}
	if dl != nil {
		own = append(own, dl.init)
		l.denialFD = 3 + l.preserve + 2
	}
	if copied != nil {
		own = append(own, copied)
		path = memfdPath(3 + l.preserve + len(own) - 1)
	}
	cmd := initCommand(path, plan, l.preserve, own)
	if entered != nil {
		enterByPath(cmd, early, plan, entered, 3+l.preserve)
	}
	if o.Debug {
		cmd.Env = append(cmd.Env, initproc.EnvDebugSince+"="+strconv.FormatInt(started.UnixNano(), 10))
	}
	o.debugf("starting init")
	err = cmd.Start()
	child.Close()
	if copied != nil {
		copied.Close()
	}
	if err != nil {
		parent.Close()
		return nil, fmt.Errorf("start container init: %w", err)
	}
	o.debugf("init started (pid %d)", cmd.Process.Pid)
	undo.add(func() { cmd.Process.Kill(); cmd.Wait() })
	l.proc = cmd.Process
	if entered != nil {
		err = l.awaitEntered(cmd, plan, fifo, undo)
	}
	if err == nil {
		if l.start, err = startTime(l.proc.Pid); err != nil {
			err = fmt.Errorf("read start time of init %d: %w", l.proc.Pid, err)
		}
	}
	if err != nil {
		parent.Close()
		return nil, err
	}
	return l, nil
}

// mapResult is the outcome of writing the init's id maps.
type mapResult struct {
	setgroupsDenied bool
	err             error
}

// mapIDs writes the init's uid and gid maps in the background (newuidmap
// and newgidmap take milliseconds) while create goes on.
func (l *launched) mapIDs(s *specs.Spec, plan *nsPlan) <-chan mapResult {
	ch := make(chan mapResult, 1)
	if !plan.newUser {
		ch <- mapResult{}
		return ch
	}
	// Only the mappings, copied: the policy decision edits the spec
	// meanwhile.
	maps := &specs.Spec{Linux: &specs.Linux{UIDMappings: s.Linux.UIDMappings, GIDMappings: s.Linux.GIDMappings}}
	go func() {
		denied, err := mapIDs(l.proc.Pid, maps, plan)
		ch <- mapResult{denied, err}
	}()
	return ch
}

// bootstrap sends the init everything it needs and drives it to Ready.
func (l *launched) bootstrap(o *Options, rec *record, plan *nsPlan, c *CreateOptions, policy *wire.Policy, m mapResult) (*created, error) {
	if m.err != nil {
		return nil, m.err
	}
	o.debugf("ids mapped")
	b := &wire.Bootstrap{
		ID: c.ID, Bundle: rec.Bundle, Rootfs: rec.Rootfs, Spec: wire.NewInitSpec(rec.Spec), Join: plan.join,
		NewUTS: plan.newUTS, NewNet: plan.newNet, NewCgroup: plan.newCgroup, UserNS: plan.inUserNS, NoPivot: c.NoPivot,
		Console: rec.Spec.Process.Terminal, PreserveFDs: l.preserve, FifoFD: 3 + l.preserve + 1,
		Policy: *policy, SetgroupsDenied: m.setgroupsDenied || l.iso.noSetgroups(), ChdirRoot: l.iso.root,
	}
	if o.Debug {
		b.DebugSince = started.UnixNano()
	}
	cr := &created{proc: l.proc, pid: rec.Pid, rec: rec}
	if err := handshake(l.conn, b, rec, cr); err != nil {
		return nil, initError(err, l.proc)
	}
	return cr, nil
}

// fifoOwner says who must own the exec fifo when that is not the caller:
// the init opens it as root of its user namespace, which for real root with
// linux.uidMappings is an unprivileged host id (runc chowns the fifo to the
// container's root the same way).
func fifoOwner(s *specs.Spec, plan *nsPlan) (uid, gid uint32, ok bool) {
	if !plan.newUser || os.Geteuid() != 0 {
		return 0, 0, false
	}
	uid, okU := hostID(s.Linux.UIDMappings, 0)
	gid, okG := hostID(s.Linux.GIDMappings, 0)
	return uid, gid, okU && okG && (uid != 0 || gid != 0)
}

// hostID maps a container id to the host through maps.
func hostID(maps []specs.LinuxIDMapping, id uint32) (uint32, bool) {
	for _, m := range maps {
		if id >= m.ContainerID && id-m.ContainerID < m.Size {
			return m.HostID + id - m.ContainerID, true
		}
	}
	return 0, false
}

// initCommand is the init's exec.Cmd: this very binary (/proc/self/exe, or
// its sealed copy, see exe.go; never a PATH lookup) in the new
// namespaces, in a new session, with stdio passed through untouched and
// fds 3.. being the preserved ones, then zviz's own: the sync socket, the
// fifo and the denial log's socket.
func initCommand(path string, plan *nsPlan, preserve int, own []*os.File) *exec.Cmd {
	cmd := &exec.Cmd{
		Path:   path,
		Args:   []string{initArg0},
		Stdin:  os.Stdin,
		Stdout: os.Stdout,
		Stderr: os.Stderr,
	}
	for i := 0; i < preserve; i++ {
		cmd.ExtraFiles = append(cmd.ExtraFiles, os.NewFile(uintptr(3+i), "preserved-fd"))
	}
	cmd.ExtraFiles = append(cmd.ExtraFiles, own...)
	cmd.Env = []string{initproc.EnvSyncFD + "=" + strconv.Itoa(3+preserve)}
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: plan.cloneFlags, Setsid: true}
	if plan.newUser {
		// Capabilities of a new user namespace are lost at execve unless
		// they are ambient: the init runs unmapped until the parent has
		// written its maps, so it cannot be "root" at exec time.
		cmd.SysProcAttr.AmbientCaps = allCaps()
	}
	return cmd
}

// initArg0 is how ps shows the init, and how main recognises it.
const initArg0 = "zviz:[init]"

// IsInit tells main whether this process is the container's init.
func IsInit() bool {
	return len(os.Args) == 1 && os.Args[0] == initArg0 && os.Getenv(initproc.EnvSyncFD) != ""
}

func allCaps() []uintptr {
	last := 40
	if b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap"); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			last = n
		}
	}
	caps := make([]uintptr, last+1)
	for i := range caps {
		caps[i] = uintptr(i)
	}
	return caps
}

// listenFDs honours socket activation (sd_listen_fds(3)) as runc does: the
// descriptors systemd passed to us go on to the container.
func listenFDs() int {
	n, err := strconv.Atoi(os.Getenv("LISTEN_FDS"))
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// handshake drives the protocol up to Ready (see package wire).
func handshake(conn *wire.Conn, b *wire.Bootstrap, rec *record, cr *created) error {
	state, err := json.Marshal(rec.state(""))
	if err != nil {
		return err
	}
	hk := rec.Spec.Hooks
	//lint:ignore SA1019 prestart is deprecated but still part of the spec and used.
	b.ParentHooks = hk != nil && (len(hk.Prestart) > 0 || len(hk.CreateRuntime) > 0) //nolint:staticcheck
	b.State = state
	if err := conn.Send(wire.KindBootstrap, b); err != nil {
		return err
	}
	if b.ParentHooks {
		if _, err := conn.Expect(wire.KindMountsDone, nil); err != nil {
			return err
		}
		//lint:ignore SA1019 see above.
		if err := hooks.Run("prestart", hk.Prestart, state); err != nil { //nolint:staticcheck
			return err
		}
		if err := hooks.Run("createRuntime", hk.CreateRuntime, state); err != nil {
			return err
		}
		if err := conn.Send(wire.KindHooksDone, nil); err != nil {
			return err
		}
	}
	fds, err := conn.Expect(wire.KindReady, nil)
	if err != nil {
		return err
	}
	if b.Console {
		if len(fds) != 1 {
			return fmt.Errorf("protocol: ready without the console's master (%d fds)", len(fds))
		}
		cr.master = os.NewFile(uintptr(fds[0]), "pty-master")
	}
	return nil
}

// initError turns a protocol failure into the root cause: the init's own
// message when it sent one, else how it died.
func initError(err error, p *os.Process) error {
	var pe *wire.PeerError
	if errors.As(err, &pe) {
		return errors.New(pe.Message)
	}
	if errors.Is(err, wire.ErrClosed) {
		p.Kill()
		ps, werr := p.Wait()
		if werr == nil && !ps.Success() {
			werr = errors.New(ps.String())
		}
		if werr != nil {
			return fmt.Errorf("container init died during setup: %v", werr)
		}
		return errors.New("container init exited during setup")
	}
	return err
}

// finishCreate records the container as created, writes the pid file and
// hands the console to --console-socket.
func finishCreate(h *handle, rec *record, cr *created, c *CreateOptions) error {
	if cr.master != nil && c.ConsoleSocket != "" {
		if err := sendConsole(c.ConsoleSocket, cr.master); err != nil {
			return err
		}
		// The listener owns the terminal now: a foreground run must not
		// relay it as well (both would read the process's output).
		cr.master.Close()
		cr.master = nil
	}
	rec.Ready = true
	if err := h.save(rec); err != nil {
		return err
	}
	if c.PidFile != "" {
		p, err := filepath.Abs(c.PidFile)
		if err != nil {
			return fmt.Errorf("pid file %q: %w", c.PidFile, err)
		}
		if err := writeAtomic(p, []byte(strconv.Itoa(rec.Pid)), 0o644); err != nil {
			return fmt.Errorf("pid file: %w", err)
		}
	}
	return nil
}

// cleanup is a stack of undo steps: each setup step registers its undo
// right after it succeeds, and a failure unwinds them in reverse.
type cleanup struct{ steps []func() }

func (c *cleanup) add(f func()) { c.steps = append(c.steps, f) }

func (c *cleanup) run() {
	for i := len(c.steps) - 1; i >= 0; i-- {
		c.steps[i]()
	}
	c.steps = nil
}

// ownerName is the user name for uid from /etc/passwd, or the number.
func ownerName(uid int) string {
	b, err := os.ReadFile("/etc/passwd")
	if err == nil {
		want := strconv.Itoa(uid)
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Split(line, ":")
			if len(f) > 2 && f[2] == want {
				return f[0]
			}
		}
	}
	return strconv.Itoa(uid)
}
