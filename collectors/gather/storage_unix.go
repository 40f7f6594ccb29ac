//go:build unix

package gather

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// writableBy says why dir is not writable by user ("1001" or "1001:0", as
// a container runtime reports it), judged by its owner and mode bits; nil
// when it is, or when that cannot be told (a user name, root, an unknown
// group: a probe run as root would not notice, and a guess must not fail a
// working location).
func writableBy(dir, user string) error {
	uidText, gidText, hasGID := strings.Cut(strings.TrimSpace(user), ":")
	uid, err := strconv.ParseUint(uidText, 10, 32)
	if err != nil || uid == 0 {
		return nil
	}
	gid, err := strconv.ParseUint(gidText, 10, 32)
	if hasGID && err != nil {
		hasGID = false
	}
	fi, err := os.Stat(dir)
	if err != nil || !fi.IsDir() {
		return nil // the probe reports it
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	mode := fi.Mode().Perm()
	const wx = 0o3
	switch {
	case uint64(st.Uid) == uid:
		if mode>>6&wx == wx {
			return nil
		}
	case !hasGID || uint64(st.Gid) == gid:
		if mode>>3&wx == wx || mode&wx == wx {
			return nil
		}
	default:
		if mode&wx == wx {
			return nil
		}
	}
	return fmt.Errorf("%s is not writable by the quay container's user %s (owner %d:%d, mode %04o)", dir, user, st.Uid, st.Gid, mode)
}
