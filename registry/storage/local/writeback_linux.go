package local

import (
	"os"

	"golang.org/x/sys/unix"
)

// syncAndDrop makes the file's data durable so far (fdatasync, which also
// flushes the device's cache) and then evicts the range [from, to) from the
// page cache. It runs beside the upload and is only a head start (Commit's
// fsync decides), so errors are ignored.
func syncAndDrop(f *os.File, from, to int64) {
	if unix.Fdatasync(int(f.Fd())) != nil {
		return // dirty pages would not be dropped anyway
	}
	dropCache(f, from, to-from)
}

// dropCache evicts a synced range from the page cache. The kernel drops
// only whole pages inside the range, so the start is rounded down to its
// page: the bytes before off were synced earlier, and without this the
// page where two ranges meet would stay cached.
func dropCache(f *os.File, off, n int64) {
	if r := off % int64(os.Getpagesize()); r != 0 {
		off, n = off-r, n+r
	}
	if n > 0 { // a length of 0 would mean "to the end"
		_ = unix.Fadvise(int(f.Fd()), off, n, unix.FADV_DONTNEED)
	}
}
