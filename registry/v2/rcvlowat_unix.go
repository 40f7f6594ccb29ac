//go:build unix

package v2

import "golang.org/x/sys/unix"

func setRcvLowat(fd uintptr, v int) error {
	return unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVLOWAT, v)
}
