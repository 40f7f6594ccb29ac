//go:build !linux

package testpodman

import (
	"os"
	"syscall"
)

func serviceProcAttr() *syscall.SysProcAttr { return nil }

func terminate(p *os.Process) { _ = p.Signal(os.Interrupt) }

func killGroup(p *os.Process) { _ = p.Kill() }

func unmountUnder(string) {}

// processAlive cannot tell here; stale trees are kept.
func processAlive(int) bool { return true }
