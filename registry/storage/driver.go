// Package storage defines the blob storage seam: every driver (local disk,
// S3-compatible object storage) implements Driver, and one shared test suite
// (storage/testsuite) checks each of them the same way.
package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// Driver stores opaque objects under slash-separated relative paths.
// Paths never start with '/' and never contain "." or ".." elements.
type Driver interface {
	// Name is the Quay driver name ("LocalStorage", "S3Storage", ...).
	Name() string
	// Reader streams the object from offset to its end.
	Reader(ctx context.Context, path string, offset int64) (io.ReadCloser, error)
	// Writer opens an object for writing. With append=false any previous
	// in-progress content at path is discarded; with append=true writing
	// resumes after what earlier writers committed or closed.
	// The object becomes readable at path only after Commit.
	Writer(ctx context.Context, path string, append bool) (FileWriter, error)
	// Stat describes a committed object.
	Stat(ctx context.Context, path string) (FileInfo, error)
	// Move renames a committed object, replacing dst atomically.
	Move(ctx context.Context, src, dst string) error
	// Delete removes an object, or every object below a directory path.
	Delete(ctx context.Context, path string) error
	// List returns the direct children of a directory path.
	List(ctx context.Context, path string) ([]string, error)
}

// FileWriter is an in-progress object. Close keeps what was written so far so
// that a later Writer(append=true) can continue it; Cancel discards it;
// Commit makes it durable and visible.
type FileWriter interface {
	io.WriteCloser
	Size() int64
	Cancel(ctx context.Context) error
	Commit(ctx context.Context) error
}

// FileInfo describes a stored object.
type FileInfo struct {
	Path    string
	Size    int64
	ModTime time.Time
	IsDir   bool
}

// URLSigner is implemented by drivers that can hand clients a short-lived
// URL to fetch an object directly (S3 presigned GET).
type URLSigner interface {
	SignedURL(ctx context.Context, path string, expiry time.Duration) (string, error)
}

// SeekOpener is implemented by drivers whose objects are local files, so the
// HTTP layer can serve ranges with http.ServeContent (and sendfile).
type SeekOpener interface {
	Open(ctx context.Context, path string) (io.ReadSeekCloser, FileInfo, error)
}

// ErrNotFound is wrapped by PathNotFoundError so callers can use errors.Is.
var ErrNotFound = errors.New("not found")

// PathNotFoundError says which driver could not find which path.
type PathNotFoundError struct {
	Driver string
	Path   string
}

func (e PathNotFoundError) Error() string {
	return fmt.Sprintf("%s: path not found: %s", e.Driver, e.Path)
}

func (e PathNotFoundError) Unwrap() error { return ErrNotFound }

// InvalidPathError reports a path that is empty, absolute or escapes the root.
type InvalidPathError struct {
	Driver string
	Path   string
}

func (e InvalidPathError) Error() string {
	return fmt.Sprintf("%s: invalid path: %q", e.Driver, e.Path)
}

// InvalidOffsetError reports a read offset past the object's end or negative.
type InvalidOffsetError struct {
	Driver string
	Path   string
	Offset int64
}

func (e InvalidOffsetError) Error() string {
	return fmt.Sprintf("%s: invalid offset %d for %s", e.Driver, e.Offset, e.Path)
}

// BlobPath is where a content-addressed blob lives, as in Quay:
// sha256/<first two hex>/<hex>.
func BlobPath(algorithm, hex string) string {
	return algorithm + "/" + hex[:2] + "/" + hex
}

// UploadPath is where an upload in progress keeps its bytes, as in Quay.
func UploadPath(uuid string) string { return "uploads/" + uuid }
