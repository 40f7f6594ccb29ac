//go:build !linux

package local

import "os"

// startWriteback is a no-op where sync_file_range does not exist.
func startWriteback(*os.File, int64, int64) {}

// dropBehind is a no-op where sync_file_range does not exist.
func dropBehind(*os.File, int64, int64) {}
