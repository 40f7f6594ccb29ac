package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/spf13/cobra"

	"github.com/quayctl/quayctl/registry/config"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// syncBuffer is a bytes.Buffer safe for the server's goroutines to write
// while a test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testIO returns IOStreams over buffers, not terminals, with stdin.
func testIO(stdin string) (*IOStreams, *syncBuffer, *syncBuffer) {
	out, errOut := &syncBuffer{}, &syncBuffer{}
	return &IOStreams{In: strings.NewReader(stdin), Out: out, ErrOut: errOut}, out, errOut
}

// testFactory is a Factory whose environment is env alone, so that the
// developer's DEBUGLOG, QUAY_OVERRIDE_CONFIG … do not leak into tests.
func testFactory(io *IOStreams, env map[string]string) *Factory {
	return &Factory{IO: io, Getenv: func(k string) string { return env[k] }}
}

// run executes the real command tree with argv and returns the exit code
// and both streams, as Main would, but with a controlled environment.
func run(t *testing.T, ctx context.Context, env map[string]string, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	io, out, errOut := testIO(stdin)
	code = execute(ctx, NewRootCmd(testFactory(io, env)), args, io.ErrOut)
	return code, out.String(), errOut.String()
}

// withCmd returns the real command tree with the command at path replaced
// by c, so that a test command (with runF) keeps the root's flag-error
// handling and command path.
func withCmd(t *testing.T, f *Factory, c *cobra.Command, path ...string) *cobra.Command {
	t.Helper()
	root := NewRootCmd(f)
	parent := root
	if len(path) > 0 {
		found, rest, err := root.Find(path)
		if err != nil || len(rest) != 0 {
			t.Fatalf("no command %v: %v", path, err)
		}
		parent = found
	}
	for _, old := range parent.Commands() {
		if old.Name() == c.Name() {
			parent.RemoveCommand(old)
		}
	}
	parent.AddCommand(c)
	return root
}

// needEmbeddedDefault skips when /conf/stack/config.yaml exists: without
// --config, quayctl would read it instead of the embedded default.
func needEmbeddedDefault(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(config.DefaultStackConfigPath); !errors.Is(err, fs.ErrNotExist) {
		t.Skipf("%s exists (or cannot be checked: %v); these tests need the embedded default", config.DefaultStackConfigPath, err)
	}
}

// heavy skips a test under -short: it hashes passwords with bcrypt at
// Quay's cost (a quarter of a second each, seconds under -race).
func heavy(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("bcrypt-heavy; skipped with -short")
	}
}

// copyDB copies the embedded default's database files from one data
// directory to another (a prepared database is cheaper than new bcrypt
// hashes in every case).
func copyDB(t *testing.T, from, to string) {
	t.Helper()
	for _, name := range []string{"quay.db", "quay.db-wal"} {
		b, err := os.ReadFile(filepath.Join(from, name))
		if errors.Is(err, fs.ErrNotExist) && name != "quay.db" {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// golden compares got with testdata/name, or rewrites it under -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (go test -update rewrites it)\n--- got ---\n%s\n--- want ---\n%s", path, got, want)
	}
}
