package main

import "syscall"

// childSysProcAttr makes the kernel kill a child when the runner dies,
// however it dies (a crash, SIGKILL, a second Ctrl-C), so that no MinIO
// server or tool is left behind. ownGroup puts the child in a process group
// of its own, so that a Ctrl-C on the terminal reaches only the runner, which
// stops the child in order (MinIO after the tool that is using it).
func childSysProcAttr(ownGroup bool) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: ownGroup}
}
