package storage

import (
	"errors"
	"fmt"
)

// ErrWriterClosed is returned when a FileWriter is used after Close, Commit
// or Cancel ended it.
var ErrWriterClosed = errors.New("writer already closed, committed or cancelled")

// Error wraps an unexpected failure (I/O, permissions, a cancelled context)
// with the driver, the operation and the path, so that a log line or a
// diagnose finding says where storage failed without further context.
type Error struct {
	Driver string
	Op     string // reader, writer, write, commit, cancel, stat, move, delete, list, open
	Path   string
	Err    error
}

func (e *Error) Error() string {
	if e.Path == "" {
		return fmt.Sprintf("%s: %s: %v", e.Driver, e.Op, e.Err)
	}
	return fmt.Sprintf("%s: %s %s: %v", e.Driver, e.Op, e.Path, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }
