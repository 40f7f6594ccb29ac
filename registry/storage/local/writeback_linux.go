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

// dropBehind waits until a range whose writeback was started is on disk and
// then evicts its pages from the page cache, so that a large upload recycles
// a few chunks' worth of page-cache memory instead of filling the cache with
// a blob nobody is about to read. Freshly allocated memory is costly to touch
// on virtual machines whose host reclaims free guest pages (free page
// reporting, ballooning); recycled pages are not. Like startWriteback it is a
// hint (Commit's fsync makes the bytes durable), so errors are ignored.
func dropBehind(f *os.File, off, n int64) {
	fd := int(f.Fd())
	if unix.SyncFileRange(fd, off, n, unix.SYNC_FILE_RANGE_WAIT_BEFORE|unix.SYNC_FILE_RANGE_WRITE|unix.SYNC_FILE_RANGE_WAIT_AFTER) != nil {
		return // pages still dirty would not be dropped anyway
	}
	_ = unix.Fadvise(fd, off, n, unix.FADV_DONTNEED)
}
