// Package cgroups is zviz's view of a cgroup v2 directory: find the
// hierarchy (Mount, Own), turn a config.json cgroupsPath into a directory and
// check that the caller may use it (Resolve, Delegated), create it, move the
// container into a leaf and enable controllers (Create, Join, PrepareLeaf),
// write limits (Settings, Files, Available, Set), and pause, kill, list,
// watch and remove it (Freeze, Thaw, Kill, Procs, OOMKills, Remove).
//
// It is a mechanism package: it knows the cgroup v2 interface files
// (Documentation/admin-guide/cgroup-v2.rst) and the OCI resources types, and
// nothing of containers or of systemd. Where the directory comes from (a
// systemd scope, see package systemd, or a delegated cgroupfs subtree) is
// the caller's business; every function takes the directory, so the unit
// tests run on a fake tree in t.TempDir().
//
// Two kernel rules shape the API:
//
//   - "No internal processes": a non-root cgroup can enable domain
//     controllers in cgroup.subtree_control only while it holds no
//     processes itself. PrepareLeaf therefore moves the container into
//     DIR/container before enabling controllers in DIR; limits are written
//     in DIR and cover the leaf.
//   - Delegation containment: an unprivileged writer may move a process
//     only if it may write cgroup.procs of the common ancestor of the source
//     and destination cgroups, so the caller must already run inside the
//     delegated subtree (a user manager's session does).
package cgroups
