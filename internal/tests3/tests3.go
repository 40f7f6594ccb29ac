// Package tests3 gives tests a real S3 server: one Versity S3 gateway
// (versitygw, posix backend) per test binary, and a fresh bucket per test.
//
//	func TestMain(m *testing.M) { tests3.Main(m) }
//
//	func TestSomething(t *testing.T) {
//		endpoint, bucket, accessKey, secretKey := tests3.NewBucket(t)
//		...
//	}
//
// The gateway starts on first use (packages whose S3 tests are skipped pay
// nothing), listens on a free port of 127.0.0.1 with random root keys, keeps
// its buckets in a temporary directory, and is stopped and removed when Main
// returns. If the test binary dies first, the kernel stops the gateway
// (parent-death signal).
//
// The binary is QUAYCTL_VERSITYGW_BIN, else <repo>/bin/versitygw (what
// scripts/install-test-deps.sh builds), else versitygw on PATH. With -short,
// NewBucket skips. Without the binary it skips with a loud message, unless
// QUAYCTL_REQUIRE_S3 (or CI) is set: then the test fails, so `make test`
// cannot pass without really talking to S3.
package tests3

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/quayctl/quayctl/internal/testproc"
)

// EnvBin names the versitygw binary to run.
const EnvBin = "QUAYCTL_VERSITYGW_BIN"

// EnvRequire makes a missing versitygw a test failure instead of a skip.
const EnvRequire = "QUAYCTL_REQUIRE_S3"

// Region is the region the gateway answers for; clients must sign with it.
const Region = "us-east-1"

const dirPrefix = "quayctl-tests3-"

var (
	mainCalled atomic.Bool

	mu       sync.Mutex
	started  bool
	srv      *Server
	startErr error
)

// Server is a running gateway.
type Server struct {
	// Endpoint is the base URL, http://127.0.0.1:PORT.
	Endpoint  string
	AccessKey string
	SecretKey string
	// Dir holds one sub-directory per bucket.
	Dir string
	// AccessLog is the gateway's S3 access log, one line per request
	// (operation, bucket, key, status), for tests that must prove a client
	// fetched bytes from S3 itself.
	AccessLog string

	cmd  *exec.Cmd
	done chan struct{}
	log  string
	bin  string // for Restart
	root string // the temporary directory holding Dir and the logs
	port int
}

// Main runs the package's tests, then stops the gateway, then exits with the
// tests' status. Call it from TestMain.
func Main(m *testing.M) { os.Exit(Run(m)) }

// Run is Main without the os.Exit, for a TestMain that does more.
func Run(m *testing.M) int {
	stop := Begin()
	defer stop()
	return m.Run()
}

// Begin is for a TestMain that already hands m to another helper's Run
// (such as testpg.Run): call it first and the returned stop after.
//
//	func TestMain(m *testing.M) {
//		stop := tests3.Begin()
//		code := testpg.Run(m)
//		stop()
//		os.Exit(code)
//	}
func Begin() (stop func()) {
	mainCalled.Store(true)
	removeStale()
	return func() {
		if err := Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "tests3:", err)
		}
	}
}

// Stop stops the gateway, if one was started, and removes its directory.
func Stop() error {
	mu.Lock()
	defer mu.Unlock()
	if srv == nil {
		return nil
	}
	err := srv.stop()
	srv = nil
	return err
}

// Available reports whether a versitygw binary can be found. It starts nothing.
func Available() bool {
	_, err := findBinary()
	return err == nil
}

// Shared returns the package's gateway, starting it on first use; it skips
// the test under -short or when versitygw is missing (see the package doc).
func Shared(t testing.TB) *Server {
	t.Helper()
	if testing.Short() {
		t.Skip("S3 tests do not run with -short")
	}
	mu.Lock()
	defer mu.Unlock()
	if !started {
		if !mainCalled.Load() {
			t.Fatal("tests3: call tests3.Main(m) (or tests3.Begin) from the package's TestMain, so the gateway is stopped when the tests end")
		}
		started = true
		srv, startErr = start()
	}
	if startErr != nil {
		if errors.Is(startErr, errNotInstalled) {
			unavailable(t, startErr)
		}
		t.Fatalf("tests3: %v", startErr)
	}
	if srv == nil {
		t.Fatal("tests3: gateway already stopped")
	}
	return srv
}

// NewServer starts a gateway of the test's own, independent of the shared
// one (another "region" for geo-replication tests), which the test may stop
// and restart; it is stopped and removed when the test ends. It skips like
// Shared.
func NewServer(t testing.TB) *Server {
	t.Helper()
	if testing.Short() {
		t.Skip("S3 tests do not run with -short")
	}
	if !mainCalled.Load() {
		t.Fatal("tests3: call tests3.Main(m) (or tests3.Begin) from the package's TestMain, so gateways are stopped when the tests end")
	}
	s, err := start()
	if err != nil {
		if errors.Is(err, errNotInstalled) {
			unavailable(t, err)
		}
		t.Fatalf("tests3: %v", err)
	}
	t.Cleanup(func() {
		if err := s.stop(); err != nil {
			t.Logf("tests3: %v", err)
		}
	})
	return s
}

// Halt stops the gateway's process, keeping its buckets, so that clients
// see a storage outage; Restart brings it back on the same endpoint.
func (s *Server) Halt(t testing.TB) {
	t.Helper()
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		s.kill()
	}
	s.cmd = nil
}

// Restart starts a halted gateway again on the same address and buckets.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	if s.cmd != nil {
		t.Fatal("tests3: Restart of a gateway that is running")
	}
	var err error
	// The port was ours a moment ago; give the kernel a few tries to
	// release it.
	for attempt := 0; attempt < 5; attempt++ {
		if err = s.start(s.bin, s.root, s.port); err == nil {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("tests3: restart gateway on port %d: %v", s.port, err)
}

// NewBucket creates an empty bucket on the shared gateway for this test and
// removes it when the test ends.
func NewBucket(t testing.TB) (endpoint, bucket, accessKey, secretKey string) {
	t.Helper()
	s := Shared(t)
	return s.Endpoint, s.NewBucket(t), s.AccessKey, s.SecretKey
}

// NewBucket creates an empty bucket and returns its name; it is removed with
// everything in it when the test ends.
func (s *Server) NewBucket(t testing.TB) string {
	t.Helper()
	name := "t-" + testproc.RandomHex(8)
	// The posix backend serves each sub-directory as a bucket.
	dir := filepath.Join(s.Dir, name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatalf("tests3: create bucket %s: %v", name, err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return name
}

func unavailable(t testing.TB, err error) {
	t.Helper()
	msg := fmt.Sprintf("\n"+
		"!!! ==================================================================\n"+
		"!!! S3 tests NOT RUN: %v\n"+
		"!!! Build it with scripts/install-test-deps.sh (go install\n"+
		"!!! github.com/versity/versitygw/cmd/versitygw@v1.8.0 into <repo>/bin)\n"+
		"!!! or point %s at the binary.\n"+
		"!!! ==================================================================", err, EnvBin)
	if os.Getenv(EnvRequire) != "" || os.Getenv("CI") != "" {
		t.Fatal(msg + "\n!!! " + EnvRequire + " or CI is set: failing instead of skipping.")
	}
	t.Skip(msg)
}

var errNotInstalled = errors.New("versitygw not found")

// findBinary looks at QUAYCTL_VERSITYGW_BIN, then <repo>/bin/versitygw
// (found by walking up from the working directory to go.mod), then PATH.
func findBinary() (string, error) {
	if p := os.Getenv(EnvBin); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%w: %s=%s: %v", errNotInstalled, EnvBin, p, err)
		}
		return p, nil
	}
	if wd, err := os.Getwd(); err == nil {
		for dir := wd; ; dir = filepath.Dir(dir) {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				p := filepath.Join(dir, "bin", "versitygw")
				if _, err := os.Stat(p); err == nil {
					return p, nil
				}
				break
			}
			if filepath.Dir(dir) == dir {
				break
			}
		}
	}
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("%w in %s, <repo>/bin or PATH", errNotInstalled, EnvBin)
}

func start() (*Server, error) {
	bin, err := findBinary()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", dirPrefix)
	if err != nil {
		return nil, err
	}
	s := &Server{Dir: filepath.Join(dir, "buckets"), AccessKey: "AK" + testproc.RandomHex(9), SecretKey: testproc.RandomHex(20)}
	err = testproc.MarkOwner(dir)
	if err == nil {
		err = os.Mkdir(s.Dir, 0o755)
	}
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port, err := testproc.FreePort()
		if err != nil {
			_ = os.RemoveAll(dir)
			return nil, err
		}
		if err := s.start(bin, dir, port); err != nil {
			lastErr = err
			continue
		}
		s.bin, s.root, s.port = bin, dir, port
		return s, nil
	}
	_ = os.RemoveAll(dir)
	return nil, lastErr
}

// start runs the gateway as our child; Pdeathsig stops it if we die.
func (s *Server) start(bin, dir string, port int) error {
	s.log = filepath.Join(dir, fmt.Sprintf("versitygw-%d.log", port))
	logFile, err := os.Create(s.log)
	if err != nil {
		return err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	// --quiet: no line per request; --keep-alive: reuse connections, as a
	// real S3 endpoint does.
	s.AccessLog = filepath.Join(dir, fmt.Sprintf("access-%d.log", port))
	cmd := exec.Command(bin, "--port", addr, "--region", Region, "--quiet", "--keep-alive",
		"--access-log", s.AccessLog, "posix", s.Dir)
	cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+s.AccessKey, "ROOT_SECRET_KEY="+s.SecretKey)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}

	startedCh := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		// Pdeathsig fires when the thread that forked exits.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			startedCh <- err
			close(done)
			return
		}
		startedCh <- nil
		_ = cmd.Wait()
		logFile.Close()
		close(done)
	}()
	if err := <-startedCh; err != nil {
		logFile.Close()
		return fmt.Errorf("start versitygw: %w", err)
	}
	s.cmd, s.done = cmd, done
	s.Endpoint = "http://" + addr

	deadline := time.Now().Add(30 * time.Second)
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		select {
		case <-done:
			return fmt.Errorf("versitygw exited during start-up:\n%s", testproc.Tail(s.log))
		default:
		}
		// Any HTTP answer (an anonymous request gets 403) means it serves.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.Endpoint+"/", nil)
		resp, err := client.Do(req)
		cancel()
		if err == nil {
			resp.Body.Close()
			return nil
		}
		if time.Now().After(deadline) {
			s.kill()
			return fmt.Errorf("versitygw did not answer on %s within 30s (%v):\n%s", addr, err, testproc.Tail(s.log))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *Server) stop() error {
	if s.cmd != nil && s.cmd.Process != nil && s.done != nil {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
			s.kill()
		}
	}
	return os.RemoveAll(filepath.Dir(s.Dir))
}

func (s *Server) kill() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
	}
}

// removeStale removes directories left by test binaries that died (their
// gateways died with them, by the parent-death signal).
func removeStale() {
	for _, d := range testproc.StaleDirs(dirPrefix) {
		_ = os.RemoveAll(d)
	}
}
