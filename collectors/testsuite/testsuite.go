// Package testsuite is the one contract every collectors.Deployment must
// pass: podman (a real podman service), OpenShift (client-go fakes) and the
// offline bundle. A collector's test builds a deployment with known
// contents, describes them in a Fixture and calls Run:
//
//	testsuite.Run(t, testsuite.Fixture{
//		Deployment: d,
//		Kind:       "podman",
//		Components: map[string]string{"quay": "running", "database": "exited"},
//		LogComponent: "quay", LogLine: "quayctl serve ready",
//		FileComponent: "quay", FilePath: "/conf/stack/config.yaml", FileContent: cfg,
//		ExecComponent: "quay",
//		Exec: []testsuite.ExecCase{{Argv: []string{"/quayctl", "version"}, Stdout: "quayctl"}, {Argv: []string{"/quayctl", "nosuch"}, ExitCode: 3}},
//		StatsComponent: "quay",
//		Stopped: "database",
//		Secrets: []string{"s3cret-db-password"},
//	})
//
// Kinds that cannot exec or report stats say so (ExecNotSupported,
// StatsNotSupported) and the suite then expects collectors.ErrNotSupported.
// Nothing here knows podman or Kubernetes.
package testsuite

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quayctl/quayctl/collectors"
)

// Fixture is a deployment under test and what is known to be in it.
type Fixture struct {
	Deployment collectors.Deployment
	// Kind is the expected Deployment.Kind() ("" = not checked).
	Kind string

	// Components maps roles the deployment must list to their expected
	// Component.State (compared case-insensitively; "" = any state).
	Components map[string]string

	// LogComponent's log contains LogLine (a substring of one line) and at
	// least two lines, so Tail can be checked.
	LogComponent string
	LogLine      string
	// LogFollow: LogComponent is running, so Follow keeps streaming until
	// the context ends (false for bundles and stopped components).
	LogFollow bool

	// FilePath inside FileComponent holds exactly FileContent.
	FileComponent string
	FilePath      string
	FileContent   []byte

	// ExecComponent is running and runs Exec's cases; include at least one
	// case exiting 0 and one exiting non-zero. With ExecNotSupported the
	// suite expects collectors.ErrNotSupported from Exec instead.
	ExecComponent    string
	Exec             []ExecCase
	ExecNotSupported bool

	// StatsComponent is running and uses memory. With StatsNotSupported
	// the suite expects collectors.ErrNotSupported from Stats instead.
	StatsComponent    string
	StatsNotSupported bool

	// Stopped is a component that exists but is not running ("" = none):
	// Exec and Stats on it fail with *collectors.NotRunningError (unless
	// not supported at all).
	Stopped string

	// Secrets are values seeded into the deployment (passwords in env…)
	// that must never appear in Components' output.
	Secrets []string

	// Timeout bounds each check (default 30s).
	Timeout time.Duration
}

// ExecCase is a command with its expected outcome.
type ExecCase struct {
	Argv     []string
	Stdout   string // a substring of the command's stdout ("" = not checked)
	ExitCode int
}

// unknownComponent is a role no deployment has.
const unknownComponent = "no-such-component-quayctl"

// Run checks f.Deployment against the contract. Each check is a subtest.
func Run(t *testing.T, f Fixture) {
	t.Helper()
	if f.Deployment == nil {
		t.Fatal("testsuite: Fixture.Deployment is nil")
	}
	checkFixture(t, f)
	if f.Timeout == 0 {
		f.Timeout = 30 * time.Second
	}
	ctx := func(t *testing.T) context.Context {
		c, cancel := context.WithTimeout(context.Background(), f.Timeout)
		t.Cleanup(cancel)
		return c
	}
	d := f.Deployment

	t.Run("Identity", func(t *testing.T) {
		if f.Kind != "" && d.Kind() != f.Kind {
			t.Errorf("Kind() = %q, want %q", d.Kind(), f.Kind)
		}
		if d.Name() == "" {
			t.Error("Name() is empty")
		}
	})

	t.Run("Components", func(t *testing.T) { testComponents(ctx(t), t, f) })

	t.Run("Logs", func(t *testing.T) { testLogs(ctx(t), t, f) })

	t.Run("ReadFile", func(t *testing.T) { testReadFile(ctx(t), t, f) })

	t.Run("Exec", func(t *testing.T) { testExec(ctx(t), t, f) })

	t.Run("Stats", func(t *testing.T) { testStats(ctx(t), t, f) })
}

func checkFixture(t *testing.T, f Fixture) {
	t.Helper()
	var problems []string
	if len(f.Components) == 0 {
		problems = append(problems, "Components is empty")
	}
	if f.LogComponent == "" || f.LogLine == "" {
		problems = append(problems, "LogComponent and LogLine are required")
	}
	if f.FileComponent == "" || f.FilePath == "" {
		problems = append(problems, "FileComponent and FilePath are required")
	}
	if !f.ExecNotSupported {
		var zero, nonzero bool
		for _, c := range f.Exec {
			zero = zero || c.ExitCode == 0
			nonzero = nonzero || c.ExitCode != 0
		}
		if f.ExecComponent == "" || !zero || !nonzero {
			problems = append(problems, "ExecComponent and Exec cases exiting 0 and non-zero are required (or set ExecNotSupported)")
		}
	}
	if !f.StatsNotSupported && f.StatsComponent == "" {
		problems = append(problems, "StatsComponent is required (or set StatsNotSupported)")
	}
	for _, role := range []string{f.LogComponent, f.FileComponent, f.ExecComponent, f.StatsComponent, f.Stopped} {
		if _, ok := f.Components[role]; role != "" && !ok {
			problems = append(problems, "component "+role+" is used but not listed in Components")
		}
	}
	if len(problems) > 0 {
		t.Fatalf("testsuite: bad Fixture: %s", strings.Join(problems, "; "))
	}
}

func testComponents(ctx context.Context, t *testing.T, f Fixture) {
	comps, err := f.Deployment.Components(ctx)
	if err != nil {
		t.Fatalf("Components: %v", err)
	}
	sorted := sort.SliceIsSorted(comps, func(i, j int) bool {
		if comps[i].Name != comps[j].Name {
			return comps[i].Name < comps[j].Name
		}
		return comps[i].Instance < comps[j].Instance
	})
	if !sorted {
		t.Errorf("Components are not sorted by Name then Instance: %v", names(comps))
	}
	for role, state := range f.Components {
		var found []collectors.Component
		for _, c := range comps {
			if c.Name == role {
				found = append(found, c)
			}
		}
		if len(found) == 0 {
			t.Errorf("Components has no %q (have %v)", role, names(comps))
			continue
		}
		if state == "" {
			continue
		}
		ok := slices.ContainsFunc(found, func(c collectors.Component) bool { return strings.EqualFold(c.State, state) })
		if !ok {
			t.Errorf("component %s: state %q, want %q", role, found[0].State, state)
		}
	}
	for _, c := range comps {
		if c.Instance == "" {
			t.Errorf("component %s: Instance is empty", c.Name)
		}
		if c.State == "" {
			t.Errorf("component %s (%s): State is empty", c.Name, c.Instance)
		}
		if c.Running() && c.StartedAt.IsZero() {
			t.Errorf("component %s (%s) is running but StartedAt is zero", c.Name, c.Instance)
		}
		if c.Ready && !c.Running() {
			t.Errorf("component %s (%s) is Ready but not running (state %q)", c.Name, c.Instance, c.State)
		}
		if c.Restarts < 0 {
			t.Errorf("component %s (%s): Restarts = %d", c.Name, c.Instance, c.Restarts)
		}
	}
	if role, want := f.Stopped, f.Components[f.Stopped]; role != "" {
		for _, c := range comps {
			if c.Name == role && c.Running() {
				t.Errorf("component %s is the fixture's stopped component but is running (want state %q)", role, want)
			}
		}
	}
	if len(f.Secrets) > 0 {
		out, err := json.Marshal(comps)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range f.Secrets {
			if bytes.Contains(out, []byte(s)) {
				t.Errorf("Components shows the secret %q; Env values must be redacted", s)
			}
		}
	}
}

func names(comps []collectors.Component) []string {
	out := make([]string, len(comps))
	for i, c := range comps {
		out[i] = c.Name + "/" + c.Instance
	}
	return out
}

func testLogs(ctx context.Context, t *testing.T, f Fixture) {
	d := f.Deployment
	var all bytes.Buffer
	if err := d.Logs(ctx, f.LogComponent, collectors.LogOptions{}, &all); err != nil {
		t.Fatalf("Logs(%s): %v", f.LogComponent, err)
	}
	if !strings.Contains(all.String(), f.LogLine) {
		t.Fatalf("Logs(%s) lacks %q; got:\n%s", f.LogComponent, f.LogLine, tail(all.String(), 2000))
	}
	if lines := splitLines(all.String()); len(lines) < 2 {
		t.Fatalf("Logs(%s) has %d lines; the fixture must provide at least 2", f.LogComponent, len(lines))
	}

	t.Run("Tail", func(t *testing.T) {
		for _, n := range []int{1, 2} {
			var buf, after bytes.Buffer
			if err := d.Logs(ctx, f.LogComponent, collectors.LogOptions{Tail: n}, &buf); err != nil {
				t.Fatalf("Logs(Tail: %d): %v", n, err)
			}
			got := splitLines(buf.String())
			if len(got) != n {
				t.Errorf("Logs(Tail: %d) returned %d lines:\n%s", n, len(got), buf.String())
				continue
			}
			// The tail is a run of consecutive lines of the log (which may
			// have grown since).
			if err := d.Logs(ctx, f.LogComponent, collectors.LogOptions{}, &after); err != nil {
				t.Fatalf("Logs: %v", err)
			}
			if !containsRun(splitLines(after.String()), got) {
				t.Errorf("Logs(Tail: %d) = %q is not a run of lines of the whole log", n, got)
			}
		}
	})

	t.Run("Since", func(t *testing.T) {
		var buf bytes.Buffer
		if err := d.Logs(ctx, f.LogComponent, collectors.LogOptions{Since: 7 * 24 * time.Hour}, &buf); err != nil {
			t.Fatalf("Logs(Since: 168h): %v", err)
		}
		if !strings.Contains(buf.String(), f.LogLine) {
			t.Errorf("Logs(Since: 168h) lacks %q", f.LogLine)
		}
	})

	t.Run("Previous", func(t *testing.T) {
		// Kinds differ (a pod's previous container, podman's earlier
		// instances, a bundle's saved file); none may fail otherwise.
		err := d.Logs(ctx, f.LogComponent, collectors.LogOptions{Previous: true}, io.Discard)
		var nr *collectors.NotRunningError
		if err != nil && !errors.Is(err, collectors.ErrNotSupported) && !errors.As(err, &nr) && !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Logs(Previous): %v; want nil, ErrNotSupported, NotRunningError or fs.ErrNotExist", err)
		}
	})

	if f.LogFollow {
		t.Run("Follow", func(t *testing.T) {
			fctx, cancel := context.WithTimeout(ctx, 1500*time.Millisecond)
			defer cancel()
			var buf syncBuffer
			start := time.Now()
			err := d.Logs(fctx, f.LogComponent, collectors.LogOptions{Follow: true}, &buf)
			if err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				t.Fatalf("Logs(Follow): %v", err)
			}
			if el := time.Since(start); el < time.Second {
				t.Errorf("Logs(Follow) returned after %s; it must stream until the context ends", el)
			} else if el > 15*time.Second {
				t.Errorf("Logs(Follow) took %s to stop after the context ended", el)
			}
			if !strings.Contains(buf.String(), f.LogLine) {
				t.Errorf("Logs(Follow) lacks %q", f.LogLine)
			}
		})
	}

	t.Run("UnknownComponent", func(t *testing.T) {
		err := d.Logs(ctx, unknownComponent, collectors.LogOptions{}, io.Discard)
		checkNotFound(t, err, f)
	})
}

func testReadFile(ctx context.Context, t *testing.T, f Fixture) {
	d := f.Deployment
	rc, err := d.ReadFile(ctx, f.FileComponent, f.FilePath)
	if err != nil {
		t.Fatalf("ReadFile(%s, %s): %v", f.FileComponent, f.FilePath, err)
	}
	got, err := io.ReadAll(rc)
	if cerr := rc.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatalf("ReadFile(%s, %s): read: %v", f.FileComponent, f.FilePath, err)
	}
	if !bytes.Equal(got, f.FileContent) {
		t.Errorf("ReadFile(%s, %s) = %q, want %q", f.FileComponent, f.FilePath, tail(string(got), 500), tail(string(f.FileContent), 500))
	}

	t.Run("Missing", func(t *testing.T) {
		rc, err := d.ReadFile(ctx, f.FileComponent, "/no/such/file-quayctl")
		if err == nil {
			rc.Close()
			t.Fatal("ReadFile of a missing file succeeded")
		}
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("ReadFile of a missing file: %v; want an error wrapping fs.ErrNotExist", err)
		}
	})

	t.Run("UnknownComponent", func(t *testing.T) {
		rc, err := d.ReadFile(ctx, unknownComponent, f.FilePath)
		if err == nil {
			rc.Close()
		}
		checkNotFound(t, err, f)
	})
}

func testExec(ctx context.Context, t *testing.T, f Fixture) {
	d := f.Deployment
	if f.ExecNotSupported {
		role := f.ExecComponent
		if role == "" {
			role = f.LogComponent
		}
		_, err := d.Exec(ctx, role, []string{"true"}, collectors.ExecOptions{})
		if !errors.Is(err, collectors.ErrNotSupported) {
			t.Errorf("Exec: %v; the fixture says exec is not supported, want ErrNotSupported", err)
		}
		return
	}
	for _, c := range f.Exec {
		t.Run(strings.Join(c.Argv, "_"), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code, err := d.Exec(ctx, f.ExecComponent, c.Argv, collectors.ExecOptions{Stdout: &stdout, Stderr: &stderr})
			if err != nil {
				t.Fatalf("Exec(%q): %v (stderr %q)", c.Argv, err, stderr.String())
			}
			if code != c.ExitCode {
				t.Errorf("Exec(%q) exit code = %d, want %d (stdout %q, stderr %q)", c.Argv, code, c.ExitCode, stdout.String(), stderr.String())
			}
			if c.Stdout != "" && !strings.Contains(stdout.String(), c.Stdout) {
				t.Errorf("Exec(%q) stdout = %q, want it to contain %q (stderr %q)", c.Argv, stdout.String(), c.Stdout, stderr.String())
			}
		})
	}
	t.Run("NilStreams", func(t *testing.T) {
		code, err := d.Exec(ctx, f.ExecComponent, f.Exec[0].Argv, collectors.ExecOptions{})
		if err != nil || code != f.Exec[0].ExitCode {
			t.Errorf("Exec(%q) without streams = %d, %v; want %d, nil", f.Exec[0].Argv, code, err, f.Exec[0].ExitCode)
		}
	})
	if f.Stopped != "" {
		t.Run("Stopped", func(t *testing.T) {
			_, err := d.Exec(ctx, f.Stopped, f.Exec[0].Argv, collectors.ExecOptions{})
			var nr *collectors.NotRunningError
			if !errors.As(err, &nr) {
				t.Fatalf("Exec in stopped component %s: %v; want *collectors.NotRunningError", f.Stopped, err)
			}
			if nr.Component != f.Stopped || nr.Instance == "" || nr.State == "" {
				t.Errorf("NotRunningError = %+v; want Component %q and Instance, State set", *nr, f.Stopped)
			}
		})
	}
	t.Run("UnknownComponent", func(t *testing.T) {
		_, err := d.Exec(ctx, unknownComponent, f.Exec[0].Argv, collectors.ExecOptions{})
		checkNotFound(t, err, f)
	})
}

func testStats(ctx context.Context, t *testing.T, f Fixture) {
	d := f.Deployment
	if f.StatsNotSupported {
		role := f.StatsComponent
		if role == "" {
			role = f.LogComponent
		}
		if _, err := d.Stats(ctx, role); !errors.Is(err, collectors.ErrNotSupported) {
			t.Errorf("Stats: %v; the fixture says stats are not supported, want ErrNotSupported", err)
		}
		return
	}
	s, err := d.Stats(ctx, f.StatsComponent)
	if err != nil {
		t.Fatalf("Stats(%s): %v", f.StatsComponent, err)
	}
	if s.MemoryBytes == 0 {
		t.Errorf("Stats(%s).MemoryBytes = 0 for a running component", f.StatsComponent)
	}
	if s.MemoryLimitBytes != 0 && s.MemoryLimitBytes < s.MemoryBytes {
		t.Errorf("Stats(%s): memory %d above its limit %d", f.StatsComponent, s.MemoryBytes, s.MemoryLimitBytes)
	}
	if s.CPUPercent < 0 {
		t.Errorf("Stats(%s).CPUPercent = %v", f.StatsComponent, s.CPUPercent)
	}
	if f.Stopped != "" {
		t.Run("Stopped", func(t *testing.T) {
			_, err := d.Stats(ctx, f.Stopped)
			var nr *collectors.NotRunningError
			if !errors.As(err, &nr) {
				t.Errorf("Stats of stopped component %s: %v; want *collectors.NotRunningError", f.Stopped, err)
			}
		})
	}
	t.Run("UnknownComponent", func(t *testing.T) {
		_, err := d.Stats(ctx, unknownComponent)
		checkNotFound(t, err, f)
	})
}

// checkNotFound wants a *ComponentNotFoundError naming the missing
// component and listing the fixture's roles.
func checkNotFound(t *testing.T, err error, f Fixture) {
	t.Helper()
	var nf *collectors.ComponentNotFoundError
	if !errors.As(err, &nf) {
		t.Fatalf("unknown component: %v; want *collectors.ComponentNotFoundError", err)
	}
	if nf.Name != unknownComponent {
		t.Errorf("ComponentNotFoundError.Name = %q, want %q", nf.Name, unknownComponent)
	}
	for role := range f.Components {
		if !slices.Contains(nf.Available, role) {
			t.Errorf("ComponentNotFoundError.Available = %v lacks %q", nf.Available, role)
		}
	}
	if !strings.Contains(err.Error(), unknownComponent) {
		t.Errorf("error %q does not name the component", err)
	}
}

func splitLines(s string) []string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// containsRun reports whether run occurs in lines as consecutive lines.
func containsRun(lines, run []string) bool {
	for i := 0; i+len(run) <= len(lines); i++ {
		if slices.Equal(lines[i:i+len(run)], run) {
			return true
		}
	}
	return false
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
