//go:build !linux

package main

import "syscall"

// childSysProcAttr puts a child in a process group of its own when ownGroup
// is set. There is no Pdeathsig outside Linux: the runner stops its children
// itself.
func childSysProcAttr(ownGroup bool) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: ownGroup}
}
