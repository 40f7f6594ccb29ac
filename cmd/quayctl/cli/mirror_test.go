package cli

import (
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/quayctl/quayctl/dbtools/diagnostics/diagtest"
)

func TestMirrorStatusFlags(t *testing.T) {
	clear := func(o *MirrorStatusOptions) { o.IO, o.Deployment = nil, nil }
	tkFlagTable(t, []string{"mirror"}, NewCmdMirrorStatus, clear, []tkFlagCase[MirrorStatusOptions]{
		{name: "all", args: []string{"mirror", "status"}, want: MirrorStatusOptions{Output: "table"}},
		{name: "one", args: []string{"mirror", "status", "acme/busybox", "--db", "postgresql://u@h/q", "-o", "json"},
			want: MirrorStatusOptions{Repository: "acme/busybox", Output: "json", Target: TargetOptions{Kind: "direct", DBURI: "postgresql://u@h/q"}}},
		{name: "not a repository", args: []string{"mirror", "status", "busybox"}, wantErr: `"busybox" is not NS/REPO, such as acme/busybox`},
	})
}

var rfc3339RE = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ`)

// TestMirrorStatusRun reads the seeded mirrors (one failed, one whose robot
// can only read) from a real PostgreSQL in Quay's schema, and the same rows
// from a SQLite database (quayctl serve's default): the same output.
func TestMirrorStatusRun(t *testing.T) {
	// A SQLite DB_URI names a file this machine must be able to read.
	missing := "sqlite:///" + filepath.Join(t.TempDir(), "quay.db")
	code, _, stderr := tkRun(t, context.Background(), nil, "mirror", "status", "--db", missing)
	if code != ExitError || !strings.Contains(stderr, "Error: cannot open the registry's SQLite database "+missing) ||
		!strings.Contains(stderr, "no such file") || !strings.Contains(stderr, "pass --db sqlite:////path/to/quay.db") {
		t.Errorf("a missing SQLite file: exit %d: %s", code, stderr)
	}
	if testing.Short() {
		t.Skip("starts PostgreSQL")
	}
	for _, db := range diagtest.SeededDatabases(t) {
		t.Run(db.Dialect, func(t *testing.T) { testMirrorStatusRun(t, db.URI) })
	}
}

func testMirrorStatusRun(t *testing.T, uri string) {
	code, stdout, stderr := tkRun(t, context.Background(), nil, "mirror", "status", "--db", uri)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	golden(t, "mirror_status.txt.golden", rfc3339RE.ReplaceAllString(stdout, "<time>"))
	for _, want := range []string{"FAIL", "SUCCESS", "registry.example.com/library/busybox", "read"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("no %q in:\n%s", want, stdout)
		}
	}
	if strings.Contains(stdout, diagtest.Secret) {
		t.Errorf("a secret in the output:\n%s", stdout)
	}
	code, _, stderr = tkRun(t, context.Background(), nil, "mirror", "status", "nobody/nothing", "--db", uri)
	if code != ExitError || !strings.Contains(stderr, "nobody/nothing is not a mirrored repository") {
		t.Errorf("exit %d: %s", code, stderr)
	}
}
