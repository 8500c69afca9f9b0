package testpeers

import "syscall"

// childProcAttr makes the kernel terminate a peer when the test binary dies
// (for example on a go test -timeout), so no daemon outlives the tests.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
