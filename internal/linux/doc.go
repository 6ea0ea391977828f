// Package linux holds the few syscall helpers that several zviz mechanism
// packages share. It sits at the bottom of the dependency graph: it imports
// only the standard library and golang.org/x/sys/unix, and nothing in zviz.
package linux
