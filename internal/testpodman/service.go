package testpodman

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// ServiceStartTimeout bounds how long StartService waits for the socket to
// answer.
var ServiceStartTimeout = 60 * time.Second

type service struct {
	cmd     *exec.Cmd
	sock    string
	logPath string
	done    chan struct{}
	waitErr error
}

// StartService starts `podman system service --time=0` on a private unix
// socket with this Env's configuration and storage, waits until it answers
// /_ping, and returns its URL ("unix:///…/podman-N.sock"), ready for
// bindings.NewConnection or UnixHTTPClient. The service is stopped when the
// test finishes (and by Close).
func (e *Env) StartService(t testing.TB) string {
	t.Helper()
	url, s, err := e.startService()
	if err != nil {
		t.Fatalf("testpodman: %v", err)
	}
	t.Cleanup(func() {
		if err := s.stop(); err != nil {
			t.Errorf("testpodman: %v", err)
		}
		e.mu.Lock()
		delete(e.services, s)
		e.mu.Unlock()
	})
	return url
}

func (e *Env) startService() (string, *service, error) {
	n := e.seq.Add(1)
	s := &service{
		sock:    e.path(fmt.Sprintf("podman-%d.sock", n)),
		logPath: e.path(fmt.Sprintf("service-%d.log", n)),
		done:    make(chan struct{}),
	}
	url := "unix://" + s.sock
	logf, err := os.Create(s.logPath)
	if err != nil {
		return "", nil, err
	}
	defer logf.Close()
	// Not CommandContext: the service outlives this call; stop() ends it.
	s.cmd = e.Command(context.Background(), "system", "service", "--time=0", url)
	s.cmd.Stdout = logf
	s.cmd.Stderr = logf
	// Own process group (so stop can kill it whole), and on Linux a
	// parent-death signal so a test binary that dies without cleanup (go
	// test -timeout) does not leave the service running.
	s.cmd.SysProcAttr = serviceProcAttr()
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return "", nil, fmt.Errorf("StartService on a closed Env")
	}
	if err := s.cmd.Start(); err != nil {
		e.mu.Unlock()
		return "", nil, fmt.Errorf("start podman system service: %w", err)
	}
	e.services[s] = struct{}{}
	e.mu.Unlock()
	go func() {
		s.waitErr = s.cmd.Wait()
		close(s.done)
	}()

	client := UnixHTTPClient(url)
	deadline := time.Now().Add(ServiceStartTimeout)
	for {
		select {
		case <-s.done:
			return "", nil, fmt.Errorf("podman system service exited before answering: %v\n--- %s ---\n%s", s.waitErr, s.logPath, readTail(s.logPath))
		default:
		}
		if err := ping(client); err == nil {
			return url, s, nil
		} else if time.Now().After(deadline) {
			s.stop()
			return "", nil, fmt.Errorf("podman system service on %s did not answer /_ping within %s: %v\n--- %s ---\n%s", url, ServiceStartTimeout, err, s.logPath, readTail(s.logPath))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func ping(c *http.Client) error {
	resp, err := c.Get("http://d/_ping")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /_ping: %s: %s", resp.Status, body)
	}
	return nil
}

// stop ends the service: SIGTERM, then SIGKILL to its process group after a
// grace period.
func (s *service) stop() error {
	select {
	case <-s.done:
		return nil
	default:
	}
	terminate(s.cmd.Process)
	select {
	case <-s.done:
		return nil
	case <-time.After(15 * time.Second):
	}
	killGroup(s.cmd.Process)
	select {
	case <-s.done:
		return fmt.Errorf("podman system service on %s ignored SIGTERM and was killed", s.sock)
	case <-time.After(15 * time.Second):
		return fmt.Errorf("podman system service (pid %d) on %s would not die", s.cmd.Process.Pid, s.sock)
	}
}

func readTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	const max = 4000
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return string(b)
}

// UnixHTTPClient returns an HTTP client whose requests (to any host, e.g.
// "http://d/v4.0.0/libpod/_ping") go to the unix socket in socketURL
// ("unix:///path" or a plain path).
func UnixHTTPClient(socketURL string) *http.Client {
	sock := strings.TrimPrefix(socketURL, "unix://")
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", sock)
			},
			DisableKeepAlives: true,
		},
	}
}
