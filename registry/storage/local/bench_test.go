package local

import (
	"io"
	"testing"
)

const benchSize = 64 << 20

// pattern is an endless cheap byte source so the benchmark measures the
// driver, not a random number generator.
type pattern struct{ buf []byte }

func (p pattern) Read(b []byte) (int, error) {
	n := 0
	for n < len(b) {
		n += copy(b[n:], p.buf)
	}
	return n, nil
}

func newPattern() pattern {
	buf := make([]byte, 1<<16)
	for i := range buf {
		buf[i] = byte(i * 31)
	}
	return pattern{buf}
}

func writeObject(b *testing.B, d *Driver, p string) {
	w, err := d.Writer(b.Context(), p, false)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.CopyBuffer(w, io.LimitReader(newPattern(), benchSize), make([]byte, 1<<20)); err != nil {
		b.Fatal(err)
	}
	if err := w.Commit(b.Context()); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkLocalWrite streams 64 MiB through a writer and commits (fsync
// included, as every blob upload pays it).
func BenchmarkLocalWrite(b *testing.B) {
	d, err := New(map[string]any{"storage_path": b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(benchSize)
	for b.Loop() {
		writeObject(b, d, "sha256/ab/bench")
	}
}

// BenchmarkLocalRead streams a 64 MiB object from offset 0.
func BenchmarkLocalRead(b *testing.B) {
	d, err := New(map[string]any{"storage_path": b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	writeObject(b, d, "sha256/ab/bench")
	buf := make([]byte, 1<<20)
	b.SetBytes(benchSize)
	for b.Loop() {
		r, err := d.Reader(b.Context(), "sha256/ab/bench", 0)
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{r}, buf)
		r.Close()
		if err != nil || n != benchSize {
			b.Fatalf("read %d bytes: %v", n, err)
		}
	}
}
