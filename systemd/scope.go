package systemd

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/godbus/dbus/v5"
)

// Property is a unit property as StartTransientUnit takes it
// (org.freedesktop.systemd1(5), systemd.resource-control(5)); Value must
// have the D-Bus type systemd expects, e.g. uint64 for MemoryMax.
type Property struct {
	Name  string
	Value any
}

// cleanupTimeout bounds the StopUnit that undoes a failed StartScope.
const cleanupTimeout = 10 * time.Second

// StartScope asks the manager for a transient scope unit (a name from
// UnitName) holding pid, with Delegate=yes, in slice ("" for the manager's
// default), waits for the start job, and returns the scope's cgroup as
// /proc/PID/cgroup shows it (the "0::" line: a path in the caller's cgroup
// namespace, below the cgroup2 mount). props are added to (or replace)
// Description, Slice, PIDs, Delegate, DefaultDependencies=no and
// CollectMode=inactive-or-failed (a failed scope is collected, not kept).
// Mode "fail": an existing unit of that name is an error. On any failure
// after the job was queued the scope is stopped again.
func (c *Conn) StartScope(ctx context.Context, unit, slice string, pid int, props ...Property) (string, error) {
	if err := checkScopeName(unit); err != nil {
		return "", fmt.Errorf("start scope %s: %w", unit, err)
	}
	if err := checkSlice(slice); err != nil {
		return "", fmt.Errorf("start scope %s: slice %q: %w", unit, slice, err)
	}
	if pid <= 0 {
		return "", fmt.Errorf("start scope %s: bad pid %d", unit, pid)
	}
	all := []Property{
		{"Description", "zviz container " + unit},
		{"PIDs", []uint32{uint32(pid)}},
		{"Delegate", true},
		{"DefaultDependencies", false},
		{"CollectMode", "inactive-or-failed"},
	}
	if slice != "" {
		all = append(all, Property{"Slice", slice})
	}
	all = mergeProperties(all, props)

	type auxUnit struct {
		Name  string
		Props []wireProperty
	}
	result, err := c.runJob(ctx, "StartTransientUnit", unit, "fail", toWire(all), []auxUnit{})
	if err == nil && result != "done" {
		err = fmt.Errorf("start job ended %q, not \"done\" (the manager's log says why)", result)
	}
	var cgroup string
	if err == nil {
		cgroup, err = procCgroup(pid)
		if err == nil && path.Base(cgroup) != unit {
			err = fmt.Errorf("pid %d is in cgroup %s, not in the scope", pid, cgroup)
		}
	}
	if err != nil {
		err = fmt.Errorf("start scope %s for pid %d on the %s: %w", unit, pid, c.what, err)
		if !errors.As(err, new(notQueued)) {
			stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
			defer cancel()
			if stopErr := c.StopUnit(stopCtx, unit); stopErr != nil {
				err = errors.Join(err, fmt.Errorf("clean up: %w", stopErr))
			}
		}
		return "", err
	}
	return cgroup, nil
}

// StopUnit stops unit and waits for the stop job: systemd kills what is
// left in the scope and removes its cgroup, sub-cgroups included. A unit
// that does not exist is not an error.
func (c *Conn) StopUnit(ctx context.Context, unit string) error {
	result, err := c.runJob(ctx, "StopUnit", unit, "replace")
	if err != nil {
		if busErrorName(err) == "org.freedesktop.systemd1.NoSuchUnit" {
			return nil
		}
		return fmt.Errorf("stop unit %s on the %s: %w", unit, c.what, err)
	}
	if result != "done" {
		return fmt.Errorf("stop unit %s on the %s: job %s", unit, c.what, result)
	}
	return nil
}

// SetProperties changes properties of a running unit, for this boot only
// (SetUnitProperties with runtime=true), e.g. a scope's MemoryMax.
func (c *Conn) SetProperties(ctx context.Context, unit string, props ...Property) error {
	call := c.manager.CallWithContext(ctx, managerIface+".SetUnitProperties", 0, unit, true, toWire(props))
	if call.Err != nil {
		return fmt.Errorf("set properties of unit %s on the %s: %w", unit, c.what, callError(call.Err))
	}
	return nil
}

// notQueued wraps the error of a method call the manager answered with an
// error (or nobody answered): no job exists, so there is nothing to undo.
type notQueued struct{ err error }

func (e notQueued) Error() string { return e.err.Error() }
func (e notQueued) Unwrap() error { return e.err }

// runJob calls the manager's method (which returns a job path) and waits for
// that job's JobRemoved signal, returning its result ("done", "failed",
// "canceled", "timeout", "dependency", "skipped"; org.freedesktop.systemd1(5)).
// The signal match was added at connect, and signals that arrive while the
// call is in flight wait in the channel: none is missed.
func (c *Conn) runJob(ctx context.Context, method string, args ...any) (string, error) {
	c.jobMu.Lock()
	defer c.jobMu.Unlock()
	var job dbus.ObjectPath
	// No auto-start: dbus-daemon would try to activate systemd1 (whose
	// service file runs /bin/false) instead of saying that it is absent.
	err := c.manager.CallWithContext(ctx, managerIface+"."+method, dbus.FlagNoAutoStart, args...).Store(&job)
	if err != nil {
		return "", callError(err)
	}
	for {
		select {
		case sig, ok := <-c.signals:
			if !ok {
				return "", fmt.Errorf("wait for job %s: connection closed", job)
			}
			if sig.Path != systemdPath || sig.Name != managerIface+".JobRemoved" || len(sig.Body) != 4 {
				continue
			}
			if p, _ := sig.Body[1].(dbus.ObjectPath); p == job {
				result, _ := sig.Body[3].(string)
				return result, nil
			}
		case <-ctx.Done():
			return "", fmt.Errorf("wait for job %s: %w", job, ctx.Err())
		}
	}
}

// callError wraps a method call's error: notQueued when the manager
// answered, with ErrUnreachable when there is no systemd on the bus.
func callError(err error) error {
	name := busErrorName(err)
	switch name {
	case "":
		return err
	case "org.freedesktop.DBus.Error.ServiceUnknown", "org.freedesktop.DBus.Error.NameHasNoOwner":
		return notQueued{fmt.Errorf("%w: %w", ErrUnreachable, err)}
	}
	return notQueued{fmt.Errorf("refused: %s: %w", name, err)}
}

// busErrorName returns the D-Bus error name in err, or "".
func busErrorName(err error) string {
	var v dbus.Error
	if errors.As(err, &v) {
		return v.Name
	}
	var p *dbus.Error
	if errors.As(err, &p) && p != nil {
		return p.Name
	}
	return ""
}

// wireProperty is a Property as D-Bus carries it: (sv).
type wireProperty struct {
	Name  string
	Value dbus.Variant
}

func toWire(props []Property) []wireProperty {
	w := make([]wireProperty, len(props))
	for i, p := range props {
		w[i] = wireProperty{p.Name, dbus.MakeVariant(p.Value)}
	}
	return w
}

// mergeProperties returns base with each of extra replacing the property of
// the same name, or appended.
func mergeProperties(base, extra []Property) []Property {
	for _, p := range extra {
		replaced := false
		for i := range base {
			if base[i].Name == p.Name {
				base[i], replaced = p, true
			}
		}
		if !replaced {
			base = append(base, p)
		}
	}
	return base
}

// checkScopeName accepts the names UnitName makes.
func checkScopeName(unit string) error {
	base, ok := strings.CutSuffix(unit, ".scope")
	if !ok || base == "" {
		return errors.New("not a scope unit name (NAME.scope)")
	}
	if len(unit) > maxUnitName {
		return fmt.Errorf("%d characters, systemd allows %d", len(unit), maxUnitName)
	}
	return checkPart(base)
}

// procCgroup returns pid's cgroup v2 path from /proc/PID/cgroup.
func procCgroup(pid int) (string, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		return "", fmt.Errorf("read the cgroup: %w", err)
	}
	defer f.Close()
	return parseProcCgroup(f)
}

// parseProcCgroup finds the unified hierarchy's "0::PATH" line (cgroups(7));
// on hybrid hosts the v1 lines come first.
func parseProcCgroup(r io.Reader) (string, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if p, ok := strings.CutPrefix(sc.Text(), "0::"); ok {
			if !strings.HasPrefix(p, "/") {
				return "", fmt.Errorf("read the cgroup: bad cgroup v2 path %q", p)
			}
			return p, nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("read the cgroup: %w", err)
	}
	return "", errors.New("read the cgroup: no cgroup v2 (0::) line")
}
