package bundle

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/quayctl/quayctl/collectors/gather"
	"github.com/quayctl/quayctl/diag"
)

// LogTail is how many lines of each stored log the checks see: the tail a
// live diagnose reads (gather.Options.LogTail's default), so that analysing
// a bundle finds what diagnose found when it was collected.
const LogTail = 5000

// Facts is a diag.Facts over a bundle's files on disk. A fact the bundle
// recorded as failed returns its error (keeping diag.ErrNotApplicable's
// meaning); one it does not hold needs a live deployment and returns
// diag.ErrOffline.
type Facts struct{ dir string }

// DirFacts reads the facts stored under dir (an extracted bundle).
func DirFacts(dir string) *Facts { return &Facts{dir: dir} }

// Get implements diag.Facts.
func (f *Facts) Get(ctx context.Context, name string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p, err := localPath(f.dir, name)
	if err != nil {
		return nil, err
	}
	var b []byte
	if gather.IsLogFact(name) {
		b, err = tailFile(p, LogTail)
	} else {
		b, err = os.ReadFile(p)
	}
	if err == nil {
		return b, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("cannot read %s from the bundle: %w", name, err)
	}
	if msg, rerr := os.ReadFile(p + ErrorSuffix); rerr == nil {
		// MapFacts turns a recorded error back into one that keeps its
		// sentinel (not applicable, not available offline).
		return diag.MapFacts{name + ErrorSuffix: bytes.TrimSpace(msg)}.Get(ctx, name)
	}
	return nil, fmt.Errorf("%s is not in the bundle: %w", name, diag.ErrOffline)
}

// tailFile reads the last n lines of the file at p, reading backwards so
// that a long log is never read whole.
func tailFile(p string, n int) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	size := st.Size()
	const chunk = 64 << 10
	end, lines := size, 0
	buf := make([]byte, chunk)
	for end > 0 {
		k := min(int64(chunk), end)
		if _, err := f.ReadAt(buf[:k], end-k); err != nil && err != io.EOF {
			return nil, err
		}
		for i := k - 1; i >= 0; i-- {
			// A final newline ends the last line; it does not start another.
			if buf[i] != '\n' || end-k+i == size-1 {
				continue
			}
			lines++
			if lines == n {
				start := end - k + i + 1
				out := make([]byte, size-start)
				_, err := f.ReadAt(out, start)
				if err == io.EOF {
					err = nil
				}
				return out, err
			}
		}
		end -= k
	}
	out := make([]byte, size)
	_, err = f.ReadAt(out, 0)
	if err == io.EOF {
		err = nil
	}
	return out, err
}
