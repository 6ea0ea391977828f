package container

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/zviz/zviz/userns"
)

// Status values beyond the runtime-spec's four: paused comes with cgroups.
const (
	StatusCreating = specs.StateCreating
	StatusCreated  = specs.StateCreated
	StatusRunning  = specs.StateRunning
	StatusStopped  = specs.StateStopped
)

const (
	stateFile = "state.json"
	fifoName  = "exec.fifo"
	maxIDLen  = 250 // a path component (NAME_MAX 255) with room for suffixes
)

// record is what a container directory holds between commands.
type record struct {
	OCIVersion  string            `json:"ociVersion"`
	ID          string            `json:"id"`
	Bundle      string            `json:"bundle"`
	Rootfs      string            `json:"rootfs"`
	Created     time.Time         `json:"created"`
	Owner       string            `json:"owner"`
	Annotations map[string]string `json:"annotations,omitempty"`
	// Pid is the init's host pid and Start its start time in clock ticks
	// since boot (/proc/PID/stat field 22): together they name the process
	// even after its pid has been reused.
	Pid   int    `json:"pid"`
	Start uint64 `json:"start"`
	// Created marks the end of create: until then the status is creating.
	Ready bool `json:"ready"`
	// Warnings lists the layers that could not be applied as asked.
	Warnings []string `json:"warnings,omitempty"`
	// Profile is the security profile the container runs under.
	Profile string `json:"profile,omitempty"`
	// Cgroup is how the container's cgroup was made (cgroup.go).
	Cgroup *cgroupRecord `json:"cgroup,omitempty"`
	// Isolation is full or chdir-only (isolation.go).
	Isolation string      `json:"isolation,omitempty"`
	Spec      *specs.Spec `json:"spec"`
}

// Store is the state directory tree of one user: one directory per
// container, mode 0700, owned by the caller.
type Store struct {
	Root string
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.+-]*$`)

// ValidateID refuses ids that could escape the state directory or would not
// fit in a path component.
func ValidateID(id string) error {
	switch {
	case id == "":
		return errors.New("container id: must not be empty")
	case len(id) > maxIDLen:
		return fmt.Errorf("container id %.20q...: longer than %d characters", id, maxIDLen)
	case !idPattern.MatchString(id):
		return fmt.Errorf("container id %q: invalid (letters, digits and _ . + - only, not starting with a symbol)", id)
	}
	return nil
}

// DefaultRoot is /run/zviz for real root, $XDG_RUNTIME_DIR/zviz otherwise
// (including root inside rootless podman's user namespace, whose
// XDG_RUNTIME_DIR podman sets).
func DefaultRoot() (string, error) {
	if os.Geteuid() == 0 && initialUserNS() {
		return "/run/zviz", nil
	}
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "zviz"), nil
	}
	d := fmt.Sprintf("/run/user/%d", os.Geteuid())
	if _, err := os.Stat(d); err == nil {
		return filepath.Join(d, "zviz"), nil
	}
	return "", errors.New("state directory: XDG_RUNTIME_DIR is not set and /run/user/UID does not exist; pass --root")
}

// initialUserNS says whether zviz runs in the initial user namespace (not
// in rootless podman's, say); read once per process.
var initialUserNS = sync.OnceValue(func() bool {
	ns, err := userns.Current()
	return err != nil || ns.Initial
})

// open makes sure the root exists, is a directory owned by the caller and
// not accessible to anyone else.
func (s *Store) open(create bool) error {
	if create {
		if err := os.MkdirAll(s.Root, 0o700); err != nil {
			return fmt.Errorf("create state directory %s: %w", s.Root, unwrap(err))
		}
	}
	return checkPrivate(s.Root)
}

// checkPrivate refuses a state directory another user could tamper with.
func checkPrivate(dir string) error {
	var st unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil {
		return fmt.Errorf("state directory %s: %w", dir, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return fmt.Errorf("state directory %s: not a directory", dir)
	}
	if int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("state directory %s: owned by uid %d, not by the caller (uid %d)", dir, st.Uid, os.Geteuid())
	}
	if st.Mode&0o077 != 0 {
		return fmt.Errorf("state directory %s: mode %#o, must not be accessible to group or others (want 0700)", dir, st.Mode&0o777)
	}
	return nil
}

func (s *Store) dir(id string) string { return filepath.Join(s.Root, id) }

// handle is an open, locked container directory.
type handle struct {
	id  string
	dir string
	fd  int
}

// errNotExist carries runc's wording, which podman matches.
func errNotExist(id string) error {
	return fmt.Errorf("container %q does not exist", id)
}

// ErrNotExist is matched with errors.Is by callers that treat an unknown id
// specially (delete --force).
var ErrNotExist = errors.New("container does not exist")

type notExist struct{ id string }

func (e *notExist) Error() string        { return errNotExist(e.id).Error() }
func (e *notExist) Is(target error) bool { return target == ErrNotExist }

// newContainer creates and locks the directory of a new container; an
// existing one means a duplicate id.
func (s *Store) newContainer(id string) (*handle, error) {
	if err := ValidateID(id); err != nil {
		return nil, err
	}
	if err := s.open(true); err != nil {
		return nil, err
	}
	dir := s.dir(id)
	if err := unix.Mkdir(dir, 0o700); err != nil {
		if errors.Is(err, unix.EEXIST) {
			return nil, fmt.Errorf("container %q already exists", id)
		}
		return nil, fmt.Errorf("create container directory %s: %w", dir, err)
	}
	return lockDir(id, dir)
}

// lookup opens and locks an existing container's directory. The lock is
// loadLocked locks container id and reads its record; the caller unlocks h.
func (s *Store) loadLocked(id string) (*handle, *record, error) {
	h, err := s.lookup(id)
	if err != nil {
		return nil, nil, err
	}
	r, err := h.load()
	if err != nil {
		h.unlock()
		return nil, nil, err
	}
	return h, r, nil
}

// exclusive: commands on one container are serialised.
func (s *Store) lookup(id string) (*handle, error) {
	if err := ValidateID(id); err != nil {
		return nil, err
	}
	if err := s.open(false); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil, &notExist{id}
		}
		return nil, err
	}
	h, err := lockDir(id, s.dir(id))
	if errors.Is(err, unix.ENOENT) {
		return nil, &notExist{id}
	}
	return h, err
}

func lockDir(id, dir string) (*handle, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, fmt.Errorf("open container directory %s: %w", dir, err)
	}
	if err := unix.Flock(fd, unix.LOCK_EX); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("lock container directory %s: %w", dir, err)
	}
	// A delete may have removed the directory while we waited for the lock.
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Nlink == 0 {
		unix.Close(fd)
		return nil, unix.ENOENT
	}
	if err := checkPrivate(dir); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return &handle{id: id, dir: dir, fd: fd}, nil
}

func (h *handle) unlock() {
	if h.fd >= 0 {
		unix.Close(h.fd)
		h.fd = -1
	}
}

// load reads the container's record; a directory without one is a create
// that died before it wrote anything.
func (h *handle) load() (*record, error) {
	b, err := os.ReadFile(filepath.Join(h.dir, stateFile))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, &notExist{h.id}
		}
		return nil, fmt.Errorf("read state of %q: %w", h.id, unwrap(err))
	}
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("read state of %q: %s: %w", h.id, filepath.Join(h.dir, stateFile), err)
	}
	return &r, nil
}

// save writes the record atomically (write a temporary file, then rename).
func (h *handle) save(r *record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode state of %q: %w", h.id, err)
	}
	return writeAtomic(filepath.Join(h.dir, stateFile), b, 0o600)
}

// remove deletes the container directory; the caller still holds the lock.
func (h *handle) remove() error {
	if err := os.RemoveAll(h.dir); err != nil {
		return fmt.Errorf("remove container directory %s: %w", h.dir, unwrap(err))
	}
	h.unlock()
	return nil
}

// writeAtomic replaces path with data so that readers see the old or the
// new content, never a mix.
func writeAtomic(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp" + strconv.Itoa(os.Getpid())
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return fmt.Errorf("write %s: %w", tmp, unwrap(err))
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("rename %s to %s: %w", tmp, path, unwrap(err))
	}
	return nil
}

// ids lists the container directories in the store.
func (s *Store) ids() ([]string, error) {
	// Ownership first: another user's root is refused as such, not
	// reported as unreadable.
	if err := checkPrivate(s.Root); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil, nil
		}
		return nil, err
	}
	ents, err := os.ReadDir(s.Root)
	if err != nil {
		return nil, fmt.Errorf("list state directory %s: %w", s.Root, unwrap(err))
	}
	var ids []string
	for _, e := range ents {
		if e.IsDir() && ValidateID(e.Name()) == nil {
			ids = append(ids, e.Name())
		}
	}
	return ids, nil
}

func unwrap(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return le.Err
	}
	return err
}
