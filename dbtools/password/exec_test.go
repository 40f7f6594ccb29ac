package password_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quayctl/quayctl/collectors"
	"github.com/quayctl/quayctl/collectors/podman"
	"github.com/quayctl/quayctl/dbtools/password"
	"github.com/quayctl/quayctl/internal/testpodman"
)

// hostPSQL is the psql binary of the PostgreSQL the tests run (the real
// binary, not Debian's pg_wrapper script).
func hostPSQL(t testing.TB) string {
	t.Helper()
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/psql")
	sort.Strings(matches)
	if len(matches) == 0 {
		if testpodman.InCI() {
			t.Fatal("no psql under /usr/lib/postgresql/*/bin (install postgresql-client)")
		}
		t.Skip("SKIPPING: no psql under /usr/lib/postgresql/*/bin (install postgresql-client)")
	}
	return matches[len(matches)-1]
}

func hostPort(t testing.TB, uri string) (string, string) {
	t.Helper()
	u, err := url.Parse(uri)
	if err != nil {
		t.Fatal(err)
	}
	return u.Hostname(), u.Port()
}

// --- podman: a real container with psql plays postgresql-quay -------------

const psqlImage = "localhost/quayctl-test/postgresql-psql:latest"

var (
	podOnce   sync.Once
	podEnv    *testpodman.Env
	podErr    error
	imageOnce sync.Once
	podImage  bool
)

// closePodman removes the package's podman environment (TestMain).
func closePodman() {
	if podEnv != nil {
		if err := podEnv.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "testpodman:", err)
		}
	}
}

// packagePodman is one private podman environment for the package's tests.
func packagePodman(t *testing.T) *testpodman.Env {
	t.Helper()
	if testing.Short() {
		t.Skip("podman tests do not run with -short")
	}
	if err := testpodman.Available(); err != nil {
		if testpodman.InCI() {
			t.Fatalf("%v; CI is set, so podman tests must not be skipped", err)
		}
		t.Skipf("SKIPPING podman test: %v", err)
	}
	podOnce.Do(func() { podEnv, podErr = testpodman.Open() })
	if podErr != nil {
		t.Fatalf("podman environment: %v", podErr)
	}
	return podEnv
}

// podmanWithPSQL returns the package's podman environment with an image
// holding psql (and the libraries ldd lists for it, and its loader) and a
// tiny static "sleeper" to keep the container running, built offline once
// per package.
func podmanWithPSQL(t *testing.T) *testpodman.Env {
	t.Helper()
	env := packagePodman(t)
	psql := hostPSQL(t)
	imageOnce.Do(func() {
		files, err := psqlImageFiles(psql)
		if err != nil {
			t.Fatal(err)
		}
		sleeper, err := buildSleeper(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		files["/usr/local/bin/sleeper"] = sleeper
		env.BuildScratchImage(t, psqlImage, files) // fails the test on error
		podImage = true
	})
	if !podImage {
		t.Fatal("building the psql image failed in an earlier test")
	}
	return env
}

// psqlImageFiles is psql with every library ldd lists and the loader.
func psqlImageFiles(psql string) (map[string][]byte, error) {
	out, err := exec.Command("ldd", psql).Output()
	if err != nil {
		return nil, fmt.Errorf("ldd %s: %v", psql, err)
	}
	files := map[string][]byte{}
	add := func(path string) error {
		b, err := os.ReadFile(path) // follows symlinks: the content lands at the name the loader looks for
		if err != nil {
			return err
		}
		files[path] = b
		return nil
	}
	if err := add(psql); err != nil {
		return nil, err
	}
	files["/usr/bin/psql"] = files[psql]
	for _, line := range strings.Split(string(out), "\n") {
		fields := strings.Fields(line)
		switch {
		case len(fields) >= 3 && fields[1] == "=>" && strings.HasPrefix(fields[2], "/"):
			if err := add(fields[2]); err != nil {
				return nil, err
			}
		case len(fields) >= 1 && strings.HasPrefix(fields[0], "/"):
			if err := add(fields[0]); err != nil { // the loader
				return nil, err
			}
		}
	}
	return files, nil
}

// buildSleeper compiles a static program that waits for SIGTERM: the
// container's main process (the image has no shell).
func buildSleeper(dir string) ([]byte, error) {
	src := `package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGTERM, syscall.SIGINT)
	<-c
}
`
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module sleeper\n\ngo 1.21\n"), 0o644); err != nil {
		return nil, err
	}
	goBin := filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	if _, err := os.Stat(goBin); err != nil {
		goBin = "go"
	}
	cmd := exec.Command(goBin, "build", "-trimpath", "-ldflags=-s -w", "-o", "sleeper", ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off", "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build the sleeper: %v\n%s", err, out)
	}
	return os.ReadFile(filepath.Join(dir, "sleeper"))
}

// runDatabaseContainer starts postgresql-quay with host networking and the
// environment the real image has, pointed (PGHOST/PGPORT, which psql reads)
// at the fixture's database.
func runDatabaseContainer(t *testing.T, env *testpodman.Env, f *fixture, extraEnv ...string) {
	t.Helper()
	host, port := hostPort(t, f.pgURI)
	args := []string{"run", "-d", "--name", "postgresql-quay", "--network", "host",
		"-e", "POSTGRESQL_USER=postgres", "-e", "POSTGRESQL_DATABASE=" + f.dbName,
		"-e", "POSTGRESQL_PASSWORD=unused-secret", "-e", "PGHOST=" + host, "-e", "PGPORT=" + port}
	for _, e := range extraEnv {
		args = append(args, "-e", e)
	}
	args = append(args, psqlImage, "/usr/local/bin/sleeper")
	env.Run(t, args...)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if out, err := env.Command(ctx, "rm", "-f", "--time", "0", "postgresql-quay").CombinedOutput(); err != nil {
			t.Errorf("podman rm postgresql-quay: %v\n%s", err, out)
		}
	})
}

// podmanDeployment is the podman collector on a fresh service of env,
// polled until it sees the database component running.
func podmanDeployment(t *testing.T, env *testpodman.Env) collectors.Deployment {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dep, err := podman.New(ctx, podman.Options{URL: env.StartService(t)})
	if err != nil {
		t.Fatalf("podman collector: %v", err)
	}
	for {
		comps, err := dep.Components(ctx)
		if err == nil {
			for _, c := range comps {
				if c.Name == collectors.ComponentDatabase && c.Running() {
					return dep
				}
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the podman collector never saw postgresql-quay running (last: %v, %v)", comps, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func openExecPodman(t *testing.T, f *fixture) password.Target {
	t.Helper()
	env := podmanWithPSQL(t)
	runDatabaseContainer(t, env, f)
	dep := podmanDeployment(t, env)
	tg, failed, err := password.Open(context.Background(), password.OpenOptions{Via: password.ViaExec, Deployment: dep})
	if err != nil || len(failed) != 0 {
		t.Fatalf("open via exec: %v %v", failed, err)
	}
	return tg
}

// --- OpenShift: a recording Deployment in front of a real psql --------------

// recordedExec is one Exec call.
type recordedExec struct {
	Component string
	Argv      []string
	Container string
	Stdin     string
}

// fakeOpenShift is a collectors.Deployment for an Operator-managed Quay: its
// database pod's environment is the Operator's (POSTGRESQL_USER and
// POSTGRESQL_DATABASE from the secret, password redacted by the collector).
// It records every exec; with run set, it runs the command for real
// (psql on this host, reaching the test PostgreSQL), as the pod would.
type fakeOpenShift struct {
	comps []collectors.Component
	run   func(ctx context.Context, argv []string, stdin io.Reader, stdout, stderr io.Writer) (int, error)

	mu    sync.Mutex
	calls []recordedExec
	// canned answers the exec when run is nil.
	canned func(argv []string, stdin string) (stdout string, code int)
}

func (d *fakeOpenShift) Kind() string { return "openshift" }
func (d *fakeOpenShift) Name() string { return "quay-enterprise/registry" }
func (d *fakeOpenShift) Components(context.Context) ([]collectors.Component, error) {
	return d.comps, nil
}
func (d *fakeOpenShift) Logs(context.Context, string, collectors.LogOptions, io.Writer) error {
	return collectors.ErrNotSupported
}
func (d *fakeOpenShift) ReadFile(context.Context, string, string) (io.ReadCloser, error) {
	return nil, collectors.ErrNotSupported
}
func (d *fakeOpenShift) Stats(context.Context, string) (collectors.Stats, error) {
	return collectors.Stats{}, collectors.ErrNotSupported
}

func (d *fakeOpenShift) Exec(ctx context.Context, component string, argv []string, opts collectors.ExecOptions) (int, error) {
	var stdin []byte
	if opts.Stdin != nil {
		stdin, _ = io.ReadAll(opts.Stdin)
	}
	d.mu.Lock()
	d.calls = append(d.calls, recordedExec{Component: component, Argv: append([]string(nil), argv...), Container: opts.Container, Stdin: string(stdin)})
	d.mu.Unlock()
	if component != collectors.ComponentDatabase {
		return -1, &collectors.ComponentNotFoundError{Name: component, Available: []string{"database", "quay"}}
	}
	if d.run != nil {
		return d.run(ctx, argv, bytes.NewReader(stdin), opts.Stdout, opts.Stderr)
	}
	out, code := d.canned(argv, string(stdin))
	io.WriteString(opts.Stdout, out)
	return code, nil
}

func operatorDatabase(user, db string) []collectors.Component {
	return []collectors.Component{
		{Name: collectors.ComponentDatabase, Instance: "registry-quay-database-669c8998f-v9qsl", Containers: []string{"postgres"},
			State: "Running", Ready: true, Image: "registry.redhat.io/rhel8/postgresql-13:1",
			Env: map[string]string{"POSTGRESQL_USER": user, "POSTGRESQL_DATABASE": db, "POSTGRESQL_PASSWORD": "REDACTED", "POSTGRESQL_ADMIN_PASSWORD": "REDACTED"}},
		{Name: collectors.ComponentQuay, Instance: "registry-quay-app-7b9d8c5f4-abcde", State: "Running", Ready: true},
	}
}

// openExecOpenShiftFake: the exec way through the fake, which runs the
// recorded argv with this host's psql against the fixture (PGHOST/PGPORT
// as the pod's local socket would be).
func openExecOpenShiftFake(t *testing.T, f *fixture) password.Target {
	t.Helper()
	psql := hostPSQL(t)
	host, port := hostPort(t, f.pgURI)
	dep := &fakeOpenShift{comps: operatorDatabase("postgres", f.dbName)}
	dep.run = func(ctx context.Context, argv []string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
		if argv[0] != "psql" {
			return 127, fmt.Errorf("exec: %q: executable file not found in $PATH", argv[0])
		}
		cmd := exec.CommandContext(ctx, psql, argv[1:]...)
		cmd.Env = []string{"PGHOST=" + host, "PGPORT=" + port, "PATH=/usr/bin:/bin"}
		cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
		err := cmd.Run()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode(), nil
		}
		if err != nil {
			return -1, err
		}
		return 0, nil
	}
	t.Cleanup(func() {
		// Whatever ran, no call carried a password or a hash in its argv.
		for _, c := range dep.calls {
			for _, a := range c.Argv {
				if strings.Contains(a, "$2b$") || strings.Contains(a, "password") && !strings.HasPrefix(a, "username=") {
					t.Errorf("argv carries a secret: %q", c.Argv)
				}
			}
		}
	})
	tg, failed, err := password.Open(context.Background(), password.OpenOptions{Via: password.ViaExec, Deployment: dep})
	if err != nil || len(failed) != 0 {
		t.Fatalf("open via exec: %v %v", failed, err)
	}
	return tg
}

// TestExecOpenShiftCommand pins the exact commands and standard input sent
// to the database pod.
func TestExecOpenShiftCommand(t *testing.T) {
	ctx := context.Background()
	const newPW = "New-passw0rd!"
	hash, err := password.Hash(newPW)
	if err != nil {
		t.Fatal(err)
	}
	dep := &fakeOpenShift{comps: operatorDatabase("quayuser-quay-quay-database", "quayuser-quay-quay-database")}
	dep.canned = func(argv []string, stdin string) (string, int) {
		if strings.HasPrefix(stdin, `\set hash`) {
			return `{"row" : "result", "user_id" : 1, "rows" : 1, "audit" : 1}` + "\n", 0
		}
		return `{"row" : "user", "id" : 1, "username" : "quayadmin", "email" : "admin@example.com", "organization" : false, "robot" : false, "enabled" : true, "verified" : true, "invalid_login_attempts" : 4, "last_invalid_login" : "2023-02-23T07:54:39.116485", "has_password" : true}` + "\n", 0
	}
	tg, _, err := password.Open(ctx, password.OpenOptions{Via: password.ViaExec, Deployment: dep, Exec: password.ExecOptions{Container: "postgres"}})
	if err != nil {
		t.Fatal(err)
	}
	u, err := password.Lookup(ctx, tg, "quayadmin", []string{"quayadmin"})
	if err != nil {
		t.Fatal(err)
	}
	if u.InvalidLoginAttempts != 4 || !u.Superuser || u.LastInvalidLogin == nil || u.LastInvalidLogin.Format(time.RFC3339Nano) != "2023-02-23T07:54:39.116485Z" {
		t.Errorf("Lookup = %+v", u)
	}
	ch, err := tg.Apply(ctx, "quayadmin", hash)
	if err != nil || ch.UserID != 1 || !ch.Audited {
		t.Fatalf("Apply = %+v, %v", ch, err)
	}
	wantArgv := []string{"psql", "-X", "-w", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
		"-U", "quayuser-quay-quay-database", "-d", "quayuser-quay-quay-database", "-v", "username=quayadmin"}
	if len(dep.calls) != 2 {
		t.Fatalf("%d exec calls, want 2 (look-up, change)", len(dep.calls))
	}
	for i, wantStdin := range []string{password.LookupScript, "\\set hash '" + hash + "'\n" + password.ApplyScript} {
		c := dep.calls[i]
		if c.Component != "database" || c.Container != "postgres" || strings.Join(c.Argv, "\x00") != strings.Join(wantArgv, "\x00") {
			t.Errorf("call %d: component %q container %q argv %q\nwant argv %q", i, c.Component, c.Container, c.Argv, wantArgv)
		}
		if c.Stdin != wantStdin {
			t.Errorf("call %d stdin:\n%s\nwant:\n%s", i, c.Stdin, wantStdin)
		}
		if strings.Contains(strings.Join(c.Argv, " ")+c.Stdin, newPW) {
			t.Errorf("call %d carries the plain password", i)
		}
	}
	// The script: one transaction, guarded, rolled back unless exactly one
	// person matches, values only as psql variables.
	for _, s := range []string{"BEGIN;", "\\if :quayctl_one", "WHERE username = :'username' AND organization = false AND robot = false",
		"password_hash = :'hash'", "invalid_login_attempts = 0", "COMMIT;", "ROLLBACK;", "'user_change_password'", "\\q"} {
		if !strings.Contains(password.ApplyScript, s) {
			t.Errorf("ApplyScript lacks %q", s)
		}
	}
}

// TestExecErrors: the exec way explains a missing component, a stopped one,
// a missing psql, and a refused login.
func TestExecErrors(t *testing.T) {
	ctx := context.Background()
	comps := operatorDatabase("quayuser", "quay")
	stopped := append([]collectors.Component(nil), comps...)
	stopped[0].State = "CrashLoopBackOff"
	for _, c := range []struct {
		name  string
		comps []collectors.Component
		out   func(argv []string) (string, int)
		want  string
	}{
		{"no database component", comps[1:], nil, `component "database" not found (have: quay)`},
		{"not running", stopped, nil, "is CrashLoopBackOff, not running"},
		{"no psql", comps, func([]string) (string, int) { return "", 127 }, "the component has no psql"},
		{"refused", comps, func([]string) (string, int) { return "", 2 }, "psql in registry-quay-database-669c8998f-v9qsl failed (exit 2)"},
		{"no user and database", []collectors.Component{{Name: "database", Instance: "db", State: "running"}}, nil, "cannot tell which PostgreSQL user and database"},
	} {
		dep := &fakeOpenShift{comps: c.comps}
		dep.canned = func(argv []string, _ string) (string, int) { return c.out(argv) }
		tg := password.NewExec(dep, password.ExecOptions{})
		_, err := tg.Lookup(ctx, "quayadmin")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
	// psql's own message is passed on with the hint.
	dep := &fakeOpenShift{comps: comps, run: func(_ context.Context, _ []string, _ io.Reader, _, stderr io.Writer) (int, error) {
		io.WriteString(stderr, `psql: error: connection to server on socket "/var/run/postgresql/.s.PGSQL.5432" failed: FATAL:  password authentication failed for user "quayuser"`+"\n")
		return 2, nil
	}}
	_, err := password.NewExec(dep, password.ExecOptions{}).Lookup(ctx, "quayadmin")
	if err == nil || !strings.Contains(err.Error(), `password authentication failed for user "quayuser"`) || !strings.Contains(err.Error(), "check POSTGRESQL_USER") {
		t.Errorf("refused psql: %v", err)
	}
}
