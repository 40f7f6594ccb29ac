// Package upload sends a support bundle where support can read it: an HTTP
// PUT (or a multipart POST) to an https:// URL, or a push to a container
// registry as an OCI artifact (oci://HOST/NAMESPACE/REPO:TAG).
//
// The file is streamed from disk on every attempt, never held in memory,
// and the sha256 of what was sent is returned so that the receiver can
// check it. Credentials (bearer tokens, passwords) are only ever put on the
// wire: errors and results carry the destination with its user information
// and query string removed.
package upload

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/quayctl/quayctl/internal/redact"
)

// Kinds of destination.
const (
	KindHTTP = "http"
	KindOCI  = "oci"
)

// Options say how to upload. The zero value uploads with a PUT, no extra
// headers and the default retries.
type Options struct {
	// Form, if set, sends a multipart/form-data POST with the file in this
	// field instead of a PUT of the file as the body.
	Form string
	// Header is added to every HTTP request (HTTP destinations only).
	Header http.Header
	// Token is sent as "Authorization: Bearer TOKEN" (HTTP destinations).
	Token string
	// Username and Password log in to an OCI registry; without them the
	// podman/docker auth files are read (see AuthFiles).
	Username, Password string
	// Insecure allows plain http:// (and plain-HTTP registries) to hosts
	// other than the loopback interface.
	Insecure bool
	// Retries is how many times a failed attempt (connection error, 5xx,
	// 429) is tried again; negative means none. Zero means DefaultRetries.
	Retries int
	// Backoff is the wait before the first retry, doubling each time up to
	// MaxBackoff (zero: one second).
	Backoff time.Duration
	// Progress, if set, is called as bytes of the file go out; sent starts
	// again from 0 on a retry.
	Progress func(sent, total int64)
	// Client is the HTTP client (nil: a client with http.DefaultTransport's
	// settings and no overall timeout, so large files are not cut off).
	Client *http.Client
	// Getenv reads the environment for the auth files (nil: no environment).
	Getenv func(string) string
	// Now is the clock for the creation-time annotation (nil: time.Now).
	Now func() time.Time
}

// DefaultRetries is used when Options.Retries is zero.
const DefaultRetries = 5

// MaxBackoff bounds the wait between two attempts.
const MaxBackoff = 30 * time.Second

// Result says where the file went. It is the stable JSON schema of
// `quayctl support-bundle upload -o json`.
type Result struct {
	Kind string `json:"kind"`
	// Destination is the URL or reference with credentials and query
	// string removed.
	Destination string `json:"destination"`
	File        string `json:"file"`
	Bytes       int64  `json:"bytes"`
	// SHA256 is the hex sha256 of the file's bytes as sent.
	SHA256   string `json:"sha256"`
	Attempts int    `json:"attempts"`
	// HTTP destinations.
	Method     string `json:"method,omitempty"`
	StatusCode int    `json:"status_code,omitempty"`
	// OCI destinations.
	Reference      string            `json:"reference,omitempty"` // HOST/REPO@sha256:…
	Tag            string            `json:"tag,omitempty"`
	ManifestDigest string            `json:"manifest_digest,omitempty"`
	ArtifactType   string            `json:"artifact_type,omitempty"`
	LayerDigest    string            `json:"layer_digest,omitempty"`
	Annotations    map[string]string `json:"annotations,omitempty"`
	PlainHTTP      bool              `json:"plain_http,omitempty"`
}

// Error is an upload failure with the remedy the user can apply.
type Error struct {
	Msg    string
	Remedy string
	Err    error
}

func (e *Error) Error() string {
	s := e.Msg
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	if e.Remedy != "" {
		s += " — " + e.Remedy
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// ErrInsecure is wrapped by the error for a plain-HTTP destination that is
// not on the loopback interface and was not allowed with Insecure.
var ErrInsecure = errors.New("the host is not on the loopback interface")

// Upload sends file to dest: an http(s):// URL or oci://HOST/REPO:TAG.
func Upload(ctx context.Context, file, dest string, opts Options) (*Result, error) {
	switch kind, err := KindOf(dest); {
	case err != nil:
		return nil, err
	case kind == KindOCI:
		return OCI(ctx, file, dest, opts)
	default:
		return HTTP(ctx, file, dest, opts)
	}
}

// KindOf says whether dest is an HTTP or an OCI destination.
func KindOf(dest string) (string, error) {
	scheme, _, ok := strings.Cut(dest, "://")
	if !ok {
		return "", &Error{Msg: fmt.Sprintf("destination %q has no scheme", DisplayURL(dest)),
			Remedy: "use https://HOST/PATH for an HTTP upload or oci://HOST/NAMESPACE/REPO:TAG for a registry"}
	}
	switch strings.ToLower(scheme) {
	case "https", "http":
		return KindHTTP, nil
	case "oci":
		return KindOCI, nil
	}
	return "", &Error{Msg: fmt.Sprintf("unsupported destination scheme %q", scheme),
		Remedy: "use https://, http:// (loopback, or with --insecure) or oci://"}
}

// IsLoopback reports whether host (a name or an address, without port)
// is on the loopback interface. Names are not resolved: only "localhost"
// (and names under .localhost, RFC 6761) count.
func IsLoopback(host string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// DisplayURL is raw without its password and query string (presigned URLs
// carry their signature there), for output and errors.
func DisplayURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		s, _ := redact.String(raw)
		return s
	}
	u.User = nil
	if u.RawQuery != "" {
		u.RawQuery = ""
		u.ForceQuery = false
		return u.String() + "?" + redact.Marker
	}
	u.Fragment = ""
	return u.String()
}

// retries returns the number of retries opts asks for.
func (o Options) retries() int {
	switch {
	case o.Retries < 0:
		return 0
	case o.Retries == 0:
		return DefaultRetries
	}
	return o.Retries
}

// wait is the pause before retry number n (1-based): Backoff doubling,
// capped at MaxBackoff.
func (o Options) wait(n int) time.Duration {
	d := o.Backoff
	if d <= 0 {
		d = time.Second
	}
	for i := 1; i < n && d < MaxBackoff; i++ {
		d *= 2
	}
	return min(d, MaxBackoff)
}

func (o Options) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

func (o Options) getenv(k string) string {
	if o.Getenv == nil {
		return ""
	}
	return o.Getenv(k)
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// cleanErr removes the URLs (which may hold credentials or signatures) and
// any secret from an error's text, keeping its chain for errors.Is.
func cleanErr(err error, secrets ...string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	var ue *url.Error
	if errors.As(err, &ue) {
		msg = strings.ReplaceAll(msg, ue.URL, DisplayURL(ue.URL))
	}
	for _, s := range secrets {
		if s != "" {
			msg = strings.ReplaceAll(msg, s, redact.Marker)
		}
	}
	msg, _ = redact.String(msg)
	if msg == err.Error() {
		return err
	}
	return &cleanError{msg: msg, err: err}
}

type cleanError struct {
	msg string
	err error
}

func (e *cleanError) Error() string { return e.msg }
func (e *cleanError) Unwrap() error { return e.err }

// progressReader counts bytes read from r and reports them.
type progressReader struct {
	r     interface{ Read([]byte) (int, error) }
	n     int64
	total int64
	fn    func(sent, total int64)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.n += int64(n)
	if p.fn != nil && n > 0 {
		p.fn(p.n, p.total)
	}
	return n, err
}
