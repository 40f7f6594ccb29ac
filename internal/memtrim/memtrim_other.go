//go:build !linux

package memtrim

import "runtime/debug"

func afterStartup() (int64, error) {
	debug.FreeOSMemory()
	return 0, nil
}
