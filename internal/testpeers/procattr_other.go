//go:build !linux

package testpeers

import "syscall"

func childProcAttr() *syscall.SysProcAttr { return nil }
