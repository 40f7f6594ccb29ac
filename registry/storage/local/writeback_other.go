//go:build !linux

package local

import "os"

// syncAndDrop syncs early so that Commit's fsync has less left to do; the
// page cache is left alone where posix_fadvise is not available.
func syncAndDrop(f *os.File, _, _ int64) { _ = f.Sync() }

// dropCache is a no-op where posix_fadvise is not available.
func dropCache(*os.File, int64, int64) {}
