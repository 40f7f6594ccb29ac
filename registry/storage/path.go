package storage

import (
	"strings"
	"unicode/utf8"
)

// ValidatePath returns InvalidPathError (naming driver) unless p is a
// relative, slash-separated path whose elements are all non-empty and neither
// "." nor "..". Paths come from clients (upload UUIDs, digests), so this is
// the traversal boundary every driver checks before touching storage.
//
// Backslashes, NUL and other control characters and invalid UTF-8 are refused
// too, so the same names are valid on every driver (S3 keys must be UTF-8; a
// backslash is a separator on some file systems; a newline in a name forges
// log lines).
func ValidatePath(driver, p string) error {
	if !validPath(p) {
		return InvalidPathError{Driver: driver, Path: p}
	}
	return nil
}

func validPath(p string) bool {
	if p == "" || p[0] == '/' || !utf8.ValidString(p) {
		return false
	}
	for _, r := range p {
		if r == '\\' || r < 0x20 || r == 0x7f {
			return false
		}
	}
	for el := range strings.SplitSeq(p, "/") {
		if el == "" || el == "." || el == ".." {
			return false
		}
	}
	return true
}
