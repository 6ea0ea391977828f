// Package systemd asks a systemd manager over D-Bus for delegated transient
// scopes: the way rootless containers get a cgroup v2 subtree of their own
// (the user manager) and root ones a cgroup systemd knows about (the system
// manager), as runc and crun do with --systemd-cgroup.
//
// It is a mechanism package: it knows D-Bus, systemd's Manager interface and
// /proc/PID/cgroup, and nothing of containers. The caller connects once
// (ConnectUser or ConnectSystem), starts a scope for the container's init
// (StartScope, which returns the scope's cgroup), and stops it on delete
// (StopUnit). Each call waits for its job's JobRemoved signal, to which the
// connection subscribes before the job exists: no polling.
//
// Authentication is EXTERNAL without an identity: the bus takes the uid the
// kernel reports for the socket (SO_PEERCRED, translated into the bus's user
// namespace). Inside a user namespace (rootless podman runs the runtime as
// uid 0 in its own one) that is the caller's host uid, whereas claiming the
// namespace's uid ("AUTH EXTERNAL 30") is rejected; see authExternal and
// TestUserManagerFromUserNamespace.
package systemd

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/godbus/dbus/v5"
)

// ErrUnreachable is wrapped by errors that mean there is no systemd manager
// to ask: no bus address, no bus socket, nobody listening on it, or no
// systemd on the bus. Callers fall back to cgroupfs on it (SPEC.md).
var ErrUnreachable = errors.New("systemd manager unreachable")

const (
	systemdName  = "org.freedesktop.systemd1"
	systemdPath  = dbus.ObjectPath("/org/freedesktop/systemd1")
	managerIface = "org.freedesktop.systemd1.Manager"

	defaultSystemBus = "unix:path=/run/dbus/system_bus_socket"
)

// Conn is a connection to one systemd manager. Its methods may be called
// from several goroutines; jobs are run one at a time.
type Conn struct {
	bus     *dbus.Conn
	manager dbus.BusObject
	what    string // "user manager" or "system manager", for errors

	jobMu   sync.Mutex // held while a job is started and waited for
	signals chan *dbus.Signal
}

// ConnectUser connects to the calling user's systemd manager through the
// user bus: $DBUS_SESSION_BUS_ADDRESS, else $XDG_RUNTIME_DIR/bus.
func ConnectUser() (*Conn, error) {
	addr := os.Getenv("DBUS_SESSION_BUS_ADDRESS")
	if addr == "" {
		dir := os.Getenv("XDG_RUNTIME_DIR")
		if dir == "" {
			return nil, fmt.Errorf("connect to the user bus: neither DBUS_SESSION_BUS_ADDRESS nor XDG_RUNTIME_DIR is set: %w", ErrUnreachable)
		}
		addr = "unix:path=" + filepath.Join(dir, "bus")
	}
	return connect(addr, "user manager")
}

// ConnectSystem connects to the system manager through the system bus
// ($DBUS_SYSTEM_BUS_ADDRESS, else /run/dbus/system_bus_socket). Only root
// may start units there.
func ConnectSystem() (*Conn, error) {
	addr := os.Getenv("DBUS_SYSTEM_BUS_ADDRESS")
	if addr == "" {
		addr = defaultSystemBus
	}
	return connect(addr, "system manager")
}

// connect dials addr, authenticates, says Hello, and subscribes to
// JobRemoved (one round trip each; the signal match exists before any job
// this connection starts).
func connect(addr, what string) (*Conn, error) {
	bus, err := dbus.Connect(addr, dbus.WithAuth(authExternal{}))
	if err != nil {
		return nil, fmt.Errorf("connect to the %s at %s: %w", what, addr, dialError(err))
	}
	c := &Conn{bus: bus, manager: bus.Object(systemdName, systemdPath), what: what,
		signals: make(chan *dbus.Signal, 16)}
	bus.Signal(c.signals)
	err = bus.AddMatchSignal(dbus.WithMatchObjectPath(systemdPath),
		dbus.WithMatchInterface(managerIface), dbus.WithMatchMember("JobRemoved"))
	if err != nil {
		bus.Close()
		return nil, fmt.Errorf("connect to the %s at %s: subscribe to JobRemoved: %w", what, addr, err)
	}
	return c, nil
}

// dialError marks the errors that mean nobody is there to answer.
func dialError(err error) error {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("%w: %w", ErrUnreachable, err)
	}
	return err
}

// Close closes the connection. Scopes it started stay.
func (c *Conn) Close() error {
	return c.bus.Close()
}

// authExternal is the EXTERNAL mechanism with an empty identity (D-Bus
// specification, "AUTH command": the server then authenticates the
// credentials it got from the socket). godbus sends "AUTH EXTERNAL" and,
// asked for data, an empty DATA line; TestAuthSendsNoIdentity holds it to
// that, since an identity would break callers in user namespaces.
type authExternal struct{}

func (authExternal) FirstData() (name, resp []byte, status dbus.AuthStatus) {
	return []byte("EXTERNAL"), nil, dbus.AuthOk
}

func (authExternal) HandleData([]byte) ([]byte, dbus.AuthStatus) {
	return nil, dbus.AuthOk
}
