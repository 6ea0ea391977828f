package container

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/rootless-containers/rootlesskit/v2/pkg/messages"
	"github.com/rootless-containers/rootlesskit/v2/pkg/network"
	"github.com/rootless-containers/rootlesskit/v2/pkg/network/pasta"
	"github.com/rootless-containers/rootlesskit/v2/pkg/network/slirp4netns"
	"github.com/rootless-containers/rootlesskit/v2/pkg/port"
	portslirp "github.com/rootless-containers/rootlesskit/v2/pkg/port/slirp4netns"
)

// Network modes of a container zviz runs itself (not under podman, whose
// network namespace is used as given):
//
//	none         a network namespace of its own with only loopback (default)
//	host         the host's network namespace: announced as weaker
//	slirp4netns  user-mode networking: rootlesskit's slirp4netns driver
//	pasta        user-mode networking: rootlesskit's pasta driver
//
// chosen by --network, else by the profile (network.mode nat means
// slirp4netns when the config gives the container a new network
// namespace). slirp4netns and pasta run as long as the foreground `zviz
// run` that started them, in the container's user namespace; -p
// HOSTPORT:CONTAINERPORT[/tcp|udp] forwards host ports through
// slirp4netns's API (rootlesskit's slirp4netns port driver) or pasta's
// own forwarding. The container's /etc/resolv.conf then names the
// driver's DNS forwarder (unless the config mounts one, or allow_domains
// points it at the broker).
var networkModes = []string{"none", "host", "slirp4netns", "pasta"}

// applyNetworkFlag edits the namespaces of s for --network: host drops
// the network namespace, the others ask for a new one. A config that
// joins a network namespace by path (podman) keeps it: then the flag is an
// error.
func applyNetworkFlag(c *CreateOptions, s *specs.Spec) error {
	if c.Network == "" {
		if len(c.Publish) > 0 {
			return errors.New("-p: needs --network slirp4netns or pasta")
		}
		return nil
	}
	if !slices.Contains(networkModes, c.Network) {
		return fmt.Errorf("--network %q: want one of %s", c.Network, strings.Join(networkModes, ", "))
	}
	if len(c.Publish) > 0 && c.Network != "slirp4netns" && c.Network != "pasta" {
		return fmt.Errorf("-p: needs --network slirp4netns or pasta, not %s", c.Network)
	}
	for _, p := range c.Publish {
		if _, err := parsePublish(p); err != nil {
			return err
		}
	}
	if s.Linux == nil {
		s.Linux = &specs.Linux{}
	}
	var out []specs.LinuxNamespace
	for _, ns := range s.Linux.Namespaces {
		if ns.Type != specs.NetworkNamespace {
			out = append(out, ns)
			continue
		}
		if ns.Path != "" {
			return fmt.Errorf("--network %s: the config joins the network namespace %s", c.Network, ns.Path)
		}
	}
	if c.Network != "host" {
		out = append(out, specs.LinuxNamespace{Type: specs.NetworkNamespace})
	}
	s.Linux.Namespaces = out
	return nil
}

// parsePublish reads -p [IP:]HOSTPORT:CONTAINERPORT[/tcp|/udp].
func parsePublish(s string) (port.Spec, error) {
	sp := port.Spec{Proto: "tcp"}
	rest, proto, ok := strings.Cut(s, "/")
	if ok {
		if proto != "tcp" && proto != "udp" {
			return sp, fmt.Errorf("-p %q: protocol %q: want tcp or udp", s, proto)
		}
		sp.Proto = proto
	}
	f := strings.Split(rest, ":")
	if len(f) == 3 {
		if net.ParseIP(f[0]) == nil {
			return sp, fmt.Errorf("-p %q: %q is not an IP address", s, f[0])
		}
		sp.ParentIP, f = f[0], f[1:]
	}
	if len(f) != 2 {
		return sp, fmt.Errorf("-p %q: want [IP:]HOSTPORT:CONTAINERPORT[/tcp|udp]", s)
	}
	for i, v := range f {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 65535 {
			return sp, fmt.Errorf("-p %q: port %q: want 1-65535", s, v)
		}
		if i == 0 {
			sp.ParentPort = n
		} else {
			sp.ChildPort = n
		}
	}
	return sp, nil
}

// netDriver is the user-mode driver the container gets ("" for none),
// and whether the flag asked for it (then failing to provide it is an
// error, else a warning).
func netDriver(o *Options, c *CreateOptions, s *specs.Spec) (driver string, asked bool) {
	switch c.Network {
	case "slirp4netns", "pasta":
		return c.Network, true
	case "":
	default:
		return "", false
	}
	if !newNetNS(s) {
		return "", false
	}
	ref := o.Profile
	if ref == "" {
		ref = s.Annotations[ProfileAnnotation]
	}
	if ref == "" {
		ref = "default"
	}
	p, _, err := loadProfile(ref, runtime.GOARCH, cacheDir(o.Root))
	if err != nil || p.Network.Mode != "nat" {
		return "", false
	}
	return "slirp4netns", false
}

func newNetNS(s *specs.Spec) bool {
	return s.Linux != nil && slices.ContainsFunc(s.Linux.Namespaces, func(ns specs.LinuxNamespace) bool {
		return ns.Type == specs.NetworkNamespace && ns.Path == ""
	})
}

// userNet is a running user-mode network.
type userNet struct {
	cleanup func() error
}

func (n *userNet) stop() {
	if n != nil && n.cleanup != nil {
		_ = n.cleanup()
	}
}

// startNetwork connects the init's (pid) new network namespace to the
// host with the chosen driver, publishes the ports and provisions
// resolv.conf. It runs once the init's id maps are written and before the
// bootstrap: the init's mount namespace is still a copy of ours, where
// nsenter finds ip(8). dir is the container's state directory. In the
// foreground the driver is ours; for create/start a zviz:[net] helper
// (nethelper.go) starts it and keeps it until the init exits.
func startNetwork(o *Options, c *CreateOptions, dir string, s *specs.Spec, plan *nsPlan, pid int, foreground, dnsByBroker bool) (*userNet, error) {
	driver, asked := netDriver(o, c, s)
	if driver == "" {
		return nil, nil
	}
	refuse := func(why string) (*userNet, error) {
		if asked {
			return nil, fmt.Errorf("--network %s: %s", driver, why)
		}
		o.warnf("profile network mode nat: %s: the container has loopback only", why)
		return nil, nil
	}
	switch {
	case !plan.newUser:
		return refuse("user-mode networking needs a user namespace of the container's own (rootless, or linux.uidMappings)")
	case driver == "pasta" && os.Geteuid() == 0:
		return refuse("pasta will not run as root (it becomes nobody, who cannot join the container's namespaces): run zviz as a user, or use --network slirp4netns with the container's uid 0 mapped to root")
	case driver == "slirp4netns" && !callerIsRoot(s):
		// rootlesskit makes slirp4netns's tap with ip(8) run, through
		// nsenter --preserve-credentials, as us inside the namespace: only
		// its root keeps the capability across that exec.
		return refuse("slirp4netns needs the container's uid 0 to be you (rootless; zviz sandbox maps you to yourself): use --network pasta")
	}
	if _, err := exec.LookPath(driver); err != nil {
		return refuse(driver + " is not installed")
	}
	job := &netJob{Driver: driver, Publish: c.Publish, Pid: pid, Dir: dir}
	var n *userNet
	var dns []string
	var err error
	if foreground {
		n, dns, err = job.run()
	} else {
		dns, err = job.spawn(c.ID)
	}
	if err != nil {
		return nil, fmt.Errorf("network %s: %w", driver, err)
	}
	if !dnsByBroker {
		if err := provisionResolv(dir, s, dns); err != nil {
			n.stop()
			return nil, err
		}
	}
	o.debugf("network %s up", driver)
	return n, nil
}

// netJob is one container's user-mode network, as the helper gets it.
type netJob struct {
	Driver  string   `json:"driver"`
	Publish []string `json:"publish,omitempty"`
	Pid     int      `json:"pid"` // the init
	Dir     string   `json:"dir"` // the state directory: log, API socket
}

// run starts the driver, configures the tap and publishes the ports; it
// returns the running network and the driver's DNS forwarders.
func (j *netJob) run() (*userNet, []string, error) {
	logf, err := os.OpenFile(filepath.Join(j.Dir, "network.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, nil, err
	}
	defer logf.Close()
	var publish []port.Spec
	for _, p := range j.Publish {
		sp, err := parsePublish(p)
		if err != nil {
			return nil, nil, err
		}
		publish = append(publish, sp)
	}
	var pd network.ParentDriver
	api := filepath.Join(j.Dir, "slirp4netns.sock")
	switch j.Driver {
	case "slirp4netns":
		pd, err = slirp4netns.NewParentDriver(logf, j.Driver, 0, nil, "tap0", true, api, false, false, false)
	case "pasta":
		if err := pastaPorts(publish); err != nil {
			return nil, nil, err
		}
		pd, err = pasta.NewParentDriver(logf, j.Driver, 0, nil, "tap0", true, false, len(publish) > 0)
	default:
		err = fmt.Errorf("unknown driver %q", j.Driver)
	}
	if err != nil {
		return nil, nil, err
	}
	msg, cleanup, err := pd.ConfigureNetwork(j.Pid, j.Dir, "")
	n := &userNet{cleanup: cleanup}
	if j.Driver == "pasta" {
		// pasta daemonizes and the driver keeps no handle on it; older
		// pasta (Debian 12's) outlives the namespace: stop it ourselves.
		n.cleanup = func() error { return killDaemon("pasta", j.Pid) }
	}
	if err == nil && j.Driver == "slirp4netns" {
		err = configureTap(j.Pid, msg)
	}
	if err == nil && j.Driver == "slirp4netns" && len(publish) > 0 {
		err = publishSlirp(logf, api, msg, publish)
	}
	if err != nil {
		n.stop()
		return nil, nil, err
	}
	return n, msg.DNS, nil
}

// configureTap gives slirp4netns's tap its address and the default route,
// as rootlesskit's child does, from inside the init's namespaces.
func configureTap(pid int, m *messages.ParentInitNetworkDriverCompleted) error {
	for _, args := range [][]string{
		{"ip", "link", "set", m.Dev, "mtu", strconv.Itoa(m.MTU)},
		{"ip", "addr", "add", m.IP + "/" + strconv.Itoa(m.Netmask), "dev", m.Dev},
		{"ip", "link", "set", m.Dev, "up"},
		{"ip", "route", "add", "default", "via", m.Gateway, "dev", m.Dev},
	} {
		cmd := exec.Command("nsenter", append([]string{"-t", strconv.Itoa(pid), "-n", "-m", "-U", "--preserve-credentials"}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
	}
	return nil
}

// publishSlirp adds the -p forwards through slirp4netns's API socket.
func publishSlirp(logf *os.File, api string, m *messages.ParentInitNetworkDriverCompleted, publish []port.Spec) error {
	pd, err := portslirp.NewParentDriver(logf, api)
	if err != nil {
		return err
	}
	ready, quit := make(chan struct{}, 1), make(chan struct{})
	go func() { _ = pd.RunParentDriver(ready, quit, &port.ChildContext{IP: net.ParseIP(m.IP)}) }()
	<-ready
	defer close(quit)
	for _, sp := range publish {
		if _, err := pd.AddPort(context.Background(), sp); err != nil {
			return fmt.Errorf("-p %d:%d/%s: %w", sp.ParentPort, sp.ChildPort, sp.Proto, err)
		}
	}
	return nil
}

// pastaPorts: rootlesskit's pasta driver forwards every port the
// container listens on to the same host port ("auto"), so -p can only
// name equal ports there.
func pastaPorts(publish []port.Spec) error {
	for _, sp := range publish {
		if sp.ParentPort != sp.ChildPort || sp.ParentIP != "" {
			return fmt.Errorf("-p %d:%d: pasta forwards a container port to the same host port on every address: use --network slirp4netns to remap", sp.ParentPort, sp.ChildPort)
		}
	}
	return nil
}

// provisionResolv bind-mounts a resolv.conf naming the driver's DNS
// forwarder, keeping the search and options lines of the configured one;
// a config that mounts its own is left alone.
func provisionResolv(dir string, s *specs.Spec, dns []string) error {
	if len(dns) == 0 {
		return nil
	}
	for _, m := range s.Mounts {
		if path.Clean(m.Destination) == "/etc/resolv.conf" {
			return nil
		}
	}
	var b strings.Builder
	for _, ns := range dns {
		fmt.Fprintf(&b, "nameserver %s\n", ns)
	}
	file := filepath.Join(dir, "resolv.conf")
	if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", file, err)
	}
	s.Mounts = append(s.Mounts, specs.Mount{Destination: "/etc/resolv.conf", Type: "bind", Source: file,
		Options: []string{"bind", "ro", "nosuid", "nodev", "noexec"}})
	return nil
}

// killDaemon stops the process named name (argv[0]) whose last argument is
// the init's pid, as the user-mode drivers are started, and waits up to a
// second for it to go.
func killDaemon(name string, initPid int) error {
	want := strconv.Itoa(initPid)
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return err
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if err != nil || filepath.Base(args[0]) != name || args[len(args)-1] != want {
			continue
		}
		_ = syscall.Kill(pid, syscall.SIGTERM)
		for i := 0; i < 100 && syscall.Kill(pid, 0) == nil; i++ {
			time.Sleep(10 * time.Millisecond)
		}
	}
	return nil
}

// callerIsRoot reports whether the container's uid 0 is the caller: the
// config maps it so, or maps nothing and zviz's default maps (rootless)
// will.
func callerIsRoot(s *specs.Spec) bool {
	euid := uint32(os.Geteuid())
	if s.Linux == nil || len(s.Linux.UIDMappings) == 0 {
		return euid != 0
	}
	host, ok := hostID(s.Linux.UIDMappings, 0)
	return ok && host == euid
}
