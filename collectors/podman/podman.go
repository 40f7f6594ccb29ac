// Package podman reaches a standalone Quay deployment through a podman
// service (podman system service / podman.socket) with podman's v5 Go
// bindings: it finds the quay, database, redis, clair and mirror containers
// the way an administrator would (by name and image, --component overrides
// first), streams their logs, reads files, runs commands, reports stats and
// switches Quay's debug logging by re-creating the quay container with
// DEBUGLOG=true (troubleshooting guide, chapter 2.1).
//
// It implements collectors.Deployment and collectors.DebugToggler, and is
// checked by the contract suite in collectors/testsuite against a real podman
// service. It works with podman services from 4.3 on (Debian 12's podman).
package podman

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/containers/podman/v5/pkg/bindings"
	"github.com/containers/podman/v5/pkg/errorhandling"

	"github.com/quayctl/quayctl/collectors"
)

// KindPodman is what Deployment.Kind returns.
const KindPodman = "podman"

// Options select the podman service and name containers explicitly.
type Options struct {
	// URL of the podman service: unix:///path, tcp://host:port or
	// ssh://user@host/path. Empty: DefaultURL().
	URL string
	// Components maps a role (quay, database, redis, clair, mirror, …) to a
	// container name or ID (the --component ROLE=NAME flag). Overrides come
	// before discovery; a role given here is never guessed.
	Components map[string]string
}

// Deployment is a standalone Quay deployment on a podman host.
type Deployment struct {
	url       string
	conn      context.Context // carries the bindings connection (values only)
	overrides map[string]string
	version   string
}

var (
	_ collectors.Deployment   = (*Deployment)(nil)
	_ collectors.DebugToggler = (*Deployment)(nil)
)

// UnreachableError says the podman service cannot be reached, and how to
// start it.
type UnreachableError struct {
	URL string
	Err error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("podman service not reachable at %s: %v — %s", e.URL, e.Err, startHint(e.URL))
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// startHint names the command that starts the service behind url.
func startHint(u string) string {
	parsed, err := url.Parse(u)
	if err != nil || parsed.Scheme != "unix" {
		return "check the URL, and that `podman system service --time=0 " + u + "` runs on that host (or set CONTAINER_HOST)"
	}
	user := ""
	if strings.HasPrefix(socketPath(parsed), "/run/user/") {
		user = "--user "
	}
	return fmt.Sprintf("start it with: systemctl %sstart podman.socket (or podman system service --time=0 %s)", user, u)
}

func socketPath(u *url.URL) string {
	if u.Host != "" { // unix://relative/path
		return filepath.Join(u.Host, u.Path)
	}
	return u.Path
}

// DefaultURL is the service quayctl uses without --podman URL:
// CONTAINER_HOST, else root's /run/podman/podman.sock, else the user's
// $XDG_RUNTIME_DIR/podman/podman.sock.
func DefaultURL() string {
	return defaultURL(os.Getenv, os.Geteuid())
}

func defaultURL(getenv func(string) string, euid int) string {
	if h := getenv("CONTAINER_HOST"); h != "" {
		return h
	}
	if euid == 0 {
		return "unix:///run/podman/podman.sock"
	}
	dir := getenv("XDG_RUNTIME_DIR")
	if dir == "" {
		dir = fmt.Sprintf("/run/user/%d", euid)
	}
	return "unix://" + filepath.Join(dir, "podman", "podman.sock")
}

// New connects to the podman service and checks that it answers.
func New(ctx context.Context, opts Options) (*Deployment, error) {
	u := opts.URL
	if u == "" {
		u = DefaultURL()
	}
	parsed, err := url.Parse(u)
	if err != nil || parsed.Scheme == "" {
		return nil, fmt.Errorf("podman URL %q is not valid — use unix:///run/podman/podman.sock, tcp://HOST:PORT or ssh://USER@HOST/run/podman/podman.sock", u)
	}
	if parsed.Scheme == "unix" {
		p := socketPath(parsed)
		fi, err := os.Stat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return nil, &UnreachableError{URL: u, Err: fmt.Errorf("socket %s does not exist", p)}
		case err != nil:
			return nil, &UnreachableError{URL: u, Err: err}
		case fi.Mode()&fs.ModeSocket == 0:
			return nil, &UnreachableError{URL: u, Err: fmt.Errorf("%s is not a socket", p)}
		}
	}
	pingCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	// The connection lives in a context. Only its values are used later
	// (see connCtx): each call takes its cancellation from the caller.
	conn, err := bindings.NewConnection(pingCtx, u)
	if err != nil {
		if strings.Contains(err.Error(), "API version is too old") {
			return nil, fmt.Errorf("podman service at %s is too old for quayctl: %w — upgrade podman to 4.3 or later", u, err)
		}
		return nil, &UnreachableError{URL: u, Err: err}
	}
	d := &Deployment{url: u, conn: conn, overrides: map[string]string{}}
	for role, name := range opts.Components {
		d.overrides[role] = name
	}
	if v := bindings.ServiceVersion(conn); v != nil {
		d.version = v.String()
	}
	return d, nil
}

// Kind returns "podman".
func (d *Deployment) Kind() string { return KindPodman }

// Name is the service URL.
func (d *Deployment) Name() string { return d.url }

// APIVersion is the libpod API version the service reported.
func (d *Deployment) APIVersion() string { return d.version }

// ctx joins the caller's cancellation with the connection's values.
func (d *Deployment) ctx(ctx context.Context) context.Context {
	return connCtx{Context: ctx, values: d.conn}
}

type connCtx struct {
	context.Context
	values context.Context
}

func (c connCtx) Value(key any) any {
	if v := c.Context.Value(key); v != nil {
		return v
	}
	return c.values.Value(key)
}

// apiCode returns the HTTP status of a podman API error, or 0.
func apiCode(err error) int {
	var em *errorhandling.ErrorModel
	if errors.As(err, &em) {
		return em.ResponseCode
	}
	return 0
}

// wrap adds what failed and, for connection failures, how to fix them.
func (d *Deployment) wrap(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	msg := fmt.Sprintf(format, args...)
	var ce bindings.ConnectError
	if errors.As(err, &ce) || isConnRefused(err) {
		return fmt.Errorf("%s: %w", msg, &UnreachableError{URL: d.url, Err: err})
	}
	return fmt.Errorf("%s: %w", msg, err)
}

func isConnRefused(err error) bool {
	s := err.Error()
	return strings.Contains(s, "connection refused") || strings.Contains(s, "no such file or directory") && strings.Contains(s, "dial unix")
}
