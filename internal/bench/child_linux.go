package bench

import (
	"os/exec"
	"syscall"
)

// orphanGuard has the kernel send the worker SIGTERM if the bench dies
// without stopping it.
func orphanGuard(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
