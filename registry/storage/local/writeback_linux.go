package local

import (
	"os"

	"golang.org/x/sys/unix"
)

// startWriteback asks the kernel to begin writing a range to disk without
// waiting for it (sync_file_range SYNC_FILE_RANGE_WRITE). It is only a hint:
// durability still comes from Commit's fsync, so errors are ignored.
func startWriteback(f *os.File, off, n int64) {
	_ = unix.SyncFileRange(int(f.Fd()), off, n, unix.SYNC_FILE_RANGE_WRITE)
}

// syncAndDrop makes the file's data durable so far (fdatasync, which also
// flushes the device's cache, unlike sync_file_range) and then evicts the
// range [from, to) from the page cache. It runs beside the upload; like
// startWriteback it is a hint (Commit's fsync decides), so errors are
// ignored.
func syncAndDrop(f *os.File, from, to int64) {
	if unix.Fdatasync(int(f.Fd())) != nil {
		return // dirty pages would not be dropped anyway
	}
	dropCache(f, from, to-from)
}

// dropCache evicts a synced range from the page cache.
func dropCache(f *os.File, off, n int64) {
	if n > 0 { // a length of 0 would mean "to the end"
		_ = unix.Fadvise(int(f.Fd()), off, n, unix.FADV_DONTNEED)
	}
}
