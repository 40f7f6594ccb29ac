// Package testpg gives tests a real PostgreSQL: one throwaway cluster per test
// binary, and a fresh database per test.
//
//	func TestMain(m *testing.M) { testpg.Main(m) }
//
//	func TestSomething(t *testing.T) {
//		uri := testpg.NewDatabase(t) // postgres://postgres@127.0.0.1:PORT/t_xxxx?sslmode=disable
//		...
//	}
//
// The cluster starts on first use (so packages whose PostgreSQL tests are
// skipped pay nothing) from the server binaries on PATH or in
// /usr/lib/postgresql/*/bin. It runs as the "postgres" system user when the
// tests run as root (PostgreSQL refuses root), listens on a free loopback
// port, keeps its socket and data in a temporary directory, runs with
// durability off (fsync) for speed, and is stopped and removed when Main
// returns. If the test binary dies without reaching that point (a panic, a
// timeout), the server gets SIGQUIT from the kernel (parent-death signal) and
// the next run removes the directory left behind.
//
// QUAYCTL_TEST_PG_BIN names the directory of initdb and postgres when they
// are somewhere else. With QUAYCTL_TEST_PG_URI set (a superuser URI such as
// postgres://postgres:pw@host:5432/postgres), that server is used instead and
// nothing is started.
//
// With -short, NewDatabase skips: a cluster takes seconds to start. Without
// PostgreSQL, NewDatabase skips the test with a loud message, except
// when the CI environment variable is set: CI must never skip, so it fails.
package testpg

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/quayctl/quayctl/internal/testproc"
)

// EnvURI names an existing server to use instead of starting one.
const EnvURI = "QUAYCTL_TEST_PG_URI"

// EnvBin, when set, is the only directory searched for initdb and postgres.
const EnvBin = "QUAYCTL_TEST_PG_BIN"

const dirPrefix = "quayctl-testpg-"

var (
	mainCalled atomic.Bool

	mu       sync.Mutex
	started  bool
	cl       *cluster
	startErr error
)

// Main runs the package's tests, then stops the cluster, then exits with the
// tests' status. Call it from TestMain.
func Main(m *testing.M) {
	os.Exit(Run(m))
}

// Run is Main without the os.Exit, for a TestMain that does more.
func Run(m *testing.M) (code int) {
	mainCalled.Store(true)
	if os.Getenv(EnvURI) == "" {
		removeStale()
	}
	defer func() {
		if err := Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "testpg:", err)
		}
	}()
	return m.Run()
}

// Stop stops the cluster, if one was started, and removes its directory.
// Main calls it; calling it again is harmless.
func Stop() error {
	mu.Lock()
	defer mu.Unlock()
	if cl == nil {
		return nil
	}
	err := cl.stop()
	cl = nil
	return err
}

// Available reports whether tests can have a PostgreSQL: QUAYCTL_TEST_PG_URI
// is set, or the server binaries are installed. It starts nothing.
func Available() bool {
	if os.Getenv(EnvURI) != "" {
		return true
	}
	_, err := findBinDir()
	return err == nil
}

// NewDatabase creates an empty database for the test and returns its URI;
// the database is dropped when the test ends.
func NewDatabase(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("PostgreSQL tests do not run with -short")
	}
	admin, err := adminURI(t)
	if err != nil {
		if errors.Is(err, errNotInstalled) {
			unavailable(t, err)
		}
		t.Fatalf("testpg: %v", err)
	}
	name := "t_" + testproc.RandomHex(8)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := adminExec(ctx, admin, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("testpg: create database %s: %v", name, err)
	}
	mu.Lock()
	owner := cl
	mu.Unlock()
	t.Cleanup(func() {
		mu.Lock()
		stopped := owner != nil && cl != owner
		mu.Unlock()
		if stopped {
			return // the test stopped the cluster: the database went with it
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// FORCE ends connections a test left open (PostgreSQL >= 13).
		if err := adminExec(ctx, admin, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("testpg: drop database %s: %v", name, err)
		}
	})
	return withDatabase(admin, name)
}

// unavailable skips loudly, or fails under CI.
func unavailable(t testing.TB, err error) {
	t.Helper()
	msg := fmt.Sprintf("\n"+
		"!!! ==================================================================\n"+
		"!!! PostgreSQL tests NOT RUN: %v\n"+
		"!!! Install it (scripts/install-test-deps.sh, or apt-get install postgresql)\n"+
		"!!! or point %s at a server.\n"+
		"!!! ==================================================================", err, EnvURI)
	if os.Getenv("CI") != "" {
		t.Fatal(msg + "\n!!! CI is set: failing instead of skipping.")
	}
	t.Skip(msg)
}

var errNotInstalled = errors.New("PostgreSQL server binaries (initdb, postgres) not found on PATH or in /usr/lib/postgresql/*/bin")

// adminURI returns a superuser URI, starting the cluster on first use.
func adminURI(t testing.TB) (string, error) {
	if u := os.Getenv(EnvURI); u != "" {
		return u, nil
	}
	mu.Lock()
	defer mu.Unlock()
	if !started {
		if !mainCalled.Load() {
			return "", errors.New("call testpg.Main(m) from the package's TestMain, so the cluster is stopped when the tests end")
		}
		started = true
		cl, startErr = startCluster()
	}
	if startErr != nil {
		return "", startErr
	}
	if cl == nil {
		return "", errors.New("cluster already stopped")
	}
	return cl.uri, nil
}

func adminExec(ctx context.Context, uri, sql string) error {
	conn, err := pgx.Connect(ctx, uri)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}

func withDatabase(uri, name string) string {
	u, err := url.Parse(uri)
	if err != nil {
		return uri
	}
	u.Path = "/" + name
	q := u.Query()
	if q.Get("sslmode") == "" && (u.Hostname() == "127.0.0.1" || u.Hostname() == "localhost") {
		q.Set("sslmode", "disable")
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// cluster -------------------------------------------------------------------

type cluster struct {
	dir  string
	uri  string
	cmd  *exec.Cmd
	done chan struct{} // closed when the server process has exited
}

func findBinDir() (string, error) {
	if dir := os.Getenv(EnvBin); dir != "" {
		for _, b := range []string{"initdb", "postgres"} {
			if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
				return "", fmt.Errorf("%w (%s=%s has no %s)", errNotInstalled, EnvBin, dir, b)
			}
		}
		return dir, nil
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		dir := filepath.Dir(p)
		if _, err := os.Stat(filepath.Join(dir, "postgres")); err == nil {
			return dir, nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	// Highest major version first.
	sort.Slice(dirs, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[i])))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[j])))
		return vi > vj
	})
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err != nil {
			continue
		}
		if _, err := os.Stat(filepath.Join(d, "postgres")); err == nil {
			return d, nil
		}
	}
	return "", errNotInstalled
}

// serverCredential is who the server runs as: the postgres user when we are
// root (PostgreSQL refuses to run as root), else ourselves (nil).
func serverCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root, and there is no postgres user to run PostgreSQL as (%v); create one or run the tests as another user", err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("postgres user has odd ids %s:%s", u.Uid, u.Gid)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func startCluster() (*cluster, error) {
	bin, err := findBinDir()
	if err != nil {
		return nil, err
	}
	cred, err := serverCredential()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", dirPrefix)
	if err != nil {
		return nil, err
	}
	c := &cluster{dir: dir}
	ok := false
	defer func() {
		if !ok {
			_ = os.RemoveAll(dir)
		}
	}()
	if err := testproc.MarkOwner(dir); err != nil {
		return nil, err
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return nil, err
		}
	}
	data := filepath.Join(dir, "data")

	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-A", "trust", "-U", "postgres",
		"-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions")
	initdb.Dir = dir
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}

	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port, err := testproc.FreePort()
		if err != nil {
			return nil, err
		}
		if err := c.start(bin, data, port, cred); err != nil {
			lastErr = err
			continue
		}
		ok = true
		return c, nil
	}
	return nil, lastErr
}

// start runs the server as our child, so that the kernel's parent-death
// signal stops it even if the test binary dies without cleaning up.
func (c *cluster) start(bin, data string, port int, cred *syscall.Credential) error {
	logPath := filepath.Join(c.dir, fmt.Sprintf("server-%d.log", port))
	logFile, err := os.Create(logPath)
	if err != nil {
		return err
	}
	cmd := exec.Command(filepath.Join(bin, "postgres"), "-D", data,
		"-p", strconv.Itoa(port), "-k", c.dir,
		"-c", "listen_addresses=127.0.0.1",
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=300")
	cmd.Dir = c.dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGQUIT, Setpgid: true}

	started := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		// Pdeathsig fires when the *thread* that forked exits; keep this
		// goroutine on its thread for the server's whole life.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			close(done)
			return
		}
		started <- nil
		_ = cmd.Wait()
		logFile.Close()
		close(done)
	}()
	if err := <-started; err != nil {
		logFile.Close()
		return fmt.Errorf("start postgres: %w", err)
	}
	c.cmd, c.done = cmd, done
	c.uri = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)

	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-done:
			return fmt.Errorf("postgres exited during start-up:\n%s", testproc.Tail(logPath))
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := adminExec(ctx, c.uri, "SELECT 1")
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			c.kill()
			return fmt.Errorf("postgres did not accept connections within a minute (%v):\n%s", err, testproc.Tail(logPath))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stop asks for a fast shutdown, kills after a grace period, and removes
// the directory.
func (c *cluster) stop() error {
	if c.cmd != nil && c.cmd.Process != nil {
		_ = c.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-c.done:
		case <-time.After(15 * time.Second):
			c.kill()
		}
	}
	return os.RemoveAll(c.dir)
}

func (c *cluster) kill() {
	if c.cmd == nil || c.cmd.Process == nil {
		return
	}
	// The server's process group holds its own children.
	_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-c.done:
	case <-time.After(5 * time.Second):
	}
}

// removeStale removes directories that earlier test binaries left behind
// when they died, after stopping a server still running in one (only one
// whose command line names that directory, so nothing else is touched).
func removeStale() {
	for _, d := range testproc.StaleDirs(dirPrefix) {
		if pid := postmasterPID(filepath.Join(d, "data")); pid > 0 {
			if cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil &&
				bytes.Contains(cmdline, []byte(filepath.Join(d, "data"))) {
				_ = syscall.Kill(pid, syscall.SIGQUIT)
				time.Sleep(200 * time.Millisecond)
			}
		}
		_ = os.RemoveAll(d)
	}
}

func postmasterPID(data string) int {
	f, err := os.Open(filepath.Join(data, "postmaster.pid"))
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	if !s.Scan() {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(s.Text()))
	return pid
}
