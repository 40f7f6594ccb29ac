package upload

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"mime"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// writeBundle writes a .tar.gz with a manifest.json (when manifest is not
// empty) and size bytes of incompressible data, and returns its path.
func writeBundle(t *testing.T, name, manifest string, size int) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	zw := gzip.NewWriter(f)
	tw := tar.NewWriter(zw)
	add := func(name string, b []byte) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	data := make([]byte, size)
	r := rand.NewChaCha8([32]byte{1})
	_, _ = r.Read(data)
	add("components/quay/logs.txt", data)
	if manifest != "" {
		add("manifest.json", []byte(manifest)) // last, as a collector that records failures would
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

func fileSum(t *testing.T, p string) ([]byte, string) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return b, hex.EncodeToString(s[:])
}

// received is what a test server got on its successful request.
type received struct {
	mu       sync.Mutex
	requests int
	method   string
	header   http.Header
	body     []byte
	length   int64
	form     string // field name of the file part
	filename string
}

// dropConn closes the client's connection without an answer.
func dropConn(t *testing.T, w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		t.Error("no hijacker")
		return
	}
	c, _, err := hj.Hijack()
	if err != nil {
		t.Error(err)
		return
	}
	c.Close()
}

// server answers each request with the next of plan ("503", "drop",
// "200", "403-echo" …), repeating the last, and records the body of the
// requests it answered 2xx.
func server(t *testing.T, plan ...string) (*httptest.Server, *received) {
	t.Helper()
	rec := &received{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.mu.Lock()
		n := rec.requests
		rec.requests++
		rec.mu.Unlock()
		step := plan[min(n, len(plan)-1)]
		var body []byte
		var form, filename string
		if mt, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "multipart/form-data" {
			mr, err := r.MultipartReader()
			if err != nil {
				t.Error(err)
			}
			_ = params
			for mr != nil {
				p, err := mr.NextPart()
				if err != nil {
					break
				}
				form, filename = p.FormName(), p.FileName()
				body, _ = io.ReadAll(p)
			}
		} else {
			body, _ = io.ReadAll(r.Body)
		}
		switch step {
		case "drop":
			dropConn(t, w)
			return
		case "503":
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		case "500-echo":
			// A careless server that repeats the credentials it got.
			w.WriteHeader(http.StatusInternalServerError)
			io.WriteString(w, "bad credentials: "+r.Header.Get("Authorization"))
			return
		case "403-echo":
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, "forbidden for token "+strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
			return
		}
		rec.mu.Lock()
		rec.method, rec.header, rec.body, rec.length, rec.form, rec.filename = r.Method, r.Header.Clone(), body, r.ContentLength, form, filename
		rec.mu.Unlock()
		w.WriteHeader(http.StatusCreated)
	}))
	t.Cleanup(srv.Close)
	return srv, rec
}

const testToken = "tok-9f8e7d6c5b4a39281706f5e4d3c2b1a0"

func TestHTTPUpload(t *testing.T) {
	t.Parallel()
	bundle := writeBundle(t, "quayctl-bundle-prod-20250101T000000Z.tar.gz", `{"deployment":"prod"}`, 3<<20)
	want, wantSum := fileSum(t, bundle)
	tests := []struct {
		name         string
		plan         []string
		opts         Options
		path         string
		wantAttempts int
		wantMethod   string
		wantForm     string
		wantHeader   map[string]string
		wantErr      string // substring; empty means success
		wantCode     int
	}{
		{name: "put", plan: []string{"200"}, path: "/upload/case-1?sig=s3cr3tsig", wantAttempts: 1, wantMethod: http.MethodPut,
			opts:       Options{Header: http.Header{"X-Case": {"01234"}}, Token: testToken},
			wantHeader: map[string]string{"X-Case": "01234", "Authorization": "Bearer " + testToken, "Content-Type": ContentType}},
		{name: "header overrides the content type", plan: []string{"200"}, wantAttempts: 1, wantMethod: http.MethodPut,
			opts:       Options{Header: http.Header{"Content-Type": {"application/octet-stream"}}},
			wantHeader: map[string]string{"Content-Type": "application/octet-stream"}},
		{name: "503 then dropped connection then success", plan: []string{"503", "drop", "200"}, wantAttempts: 3, wantMethod: http.MethodPut,
			opts: Options{Token: testToken}, wantHeader: map[string]string{"Authorization": "Bearer " + testToken}},
		{name: "multipart form", plan: []string{"200"}, wantAttempts: 1, wantMethod: http.MethodPost, wantForm: "bundle",
			opts: Options{Form: "bundle", Header: http.Header{"X-Case": {"7"}}}, wantHeader: map[string]string{"X-Case": "7"}},
		{name: "multipart form retried", plan: []string{"drop", "200"}, wantAttempts: 2, wantMethod: http.MethodPost, wantForm: "file",
			opts: Options{Form: "file"}},
		{name: "gives up after the retries", plan: []string{"503"}, wantAttempts: 3, opts: Options{Retries: 2},
			wantErr: "after 3 attempts: the server answered 503", wantCode: 503},
		{name: "no retry on 403, token not echoed", plan: []string{"403-echo"}, wantAttempts: 1, opts: Options{Token: testToken},
			wantErr: "the server answered 403 Forbidden: forbidden for token <redacted>", wantCode: 403},
		{name: "5xx echoing the token", plan: []string{"500-echo"}, wantAttempts: 2, opts: Options{Token: testToken, Retries: 1},
			wantErr: "answered 500", wantCode: 500},
		{name: "no retries", plan: []string{"503", "200"}, wantAttempts: 1, opts: Options{Retries: -1}, wantErr: "answered 503", wantCode: 503},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, rec := server(t, tt.plan...)
			opts := tt.opts
			opts.Backoff = time.Millisecond
			var last atomic.Int64
			opts.Progress = func(sent, total int64) {
				if total != int64(len(want)) {
					t.Errorf("progress total %d, want %d", total, len(want))
				}
				last.Store(sent)
			}
			dest := srv.URL + tt.path
			if tt.path == "" {
				dest = srv.URL + "/upload"
			}
			res, err := Upload(context.Background(), bundle, dest, opts)
			rec.mu.Lock()
			defer rec.mu.Unlock()
			if rec.requests != tt.wantAttempts {
				t.Errorf("server saw %d requests, want %d", rec.requests, tt.wantAttempts)
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), testToken) {
					t.Errorf("the token is in the error: %v", err)
				}
				if got := StatusCode(err); got != tt.wantCode {
					t.Errorf("StatusCode(err) = %d, want %d", got, tt.wantCode)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(rec.body, want) {
				t.Errorf("server received %d bytes that differ from the file's %d", len(rec.body), len(want))
			}
			got := sha256.Sum256(rec.body)
			if res.SHA256 != wantSum || hex.EncodeToString(got[:]) != wantSum {
				t.Errorf("sha256: result %s, received %x, file %s", res.SHA256, got, wantSum)
			}
			if res.Attempts != tt.wantAttempts || res.Bytes != int64(len(want)) || res.Method != tt.wantMethod || res.StatusCode != http.StatusCreated {
				t.Errorf("result = %+v", res)
			}
			if rec.method != tt.wantMethod {
				t.Errorf("method %s, want %s", rec.method, tt.wantMethod)
			}
			if rec.length <= 0 {
				t.Errorf("Content-Length %d: the body must not be chunked", rec.length)
			}
			if rec.form != tt.wantForm || (tt.wantForm != "" && rec.filename != filepath.Base(bundle)) {
				t.Errorf("form field %q file %q, want %q %q", rec.form, rec.filename, tt.wantForm, filepath.Base(bundle))
			}
			for k, v := range tt.wantHeader {
				if g := rec.header.Get(k); g != v {
					t.Errorf("header %s = %q, want %q", k, g, v)
				}
			}
			if last.Load() != int64(len(want)) {
				t.Errorf("last progress %d, want %d", last.Load(), len(want))
			}
			if strings.Contains(res.Destination, "s3cr3tsig") || strings.Contains(res.Destination, "?sig") {
				t.Errorf("destination shows the query: %s", res.Destination)
			}
		})
	}
}

// TestPlainHTTPRefused: plain http:// to a host that is not loopback makes
// no connection at all without Insecure; with it, the request goes out.
// A dialer that sends every connection to the local server stands in for
// the remote host.
func TestPlainHTTPRefused(t *testing.T) {
	t.Parallel()
	bundle := writeBundle(t, "b.tar.gz", "", 1024)
	tests := []struct {
		dest     string
		insecure bool
		wantErr  bool
	}{
		{dest: "http://support.example.com/upload", wantErr: true},
		{dest: "http://192.0.2.10:8080/upload", wantErr: true},
		{dest: "http://[2001:db8::1]/upload", wantErr: true},
		{dest: "http://support.example.com/upload", insecure: true},
		{dest: "http://localhost/upload"},
		{dest: "http://127.0.0.2/upload"},
		{dest: "http://[::1]/upload"},
	}
	for _, tt := range tests {
		t.Run(tt.dest, func(t *testing.T) {
			t.Parallel()
			srv, rec := server(t, "200")
			var dials atomic.Int32
			tr := &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				dials.Add(1)
				return (&net.Dialer{}).DialContext(ctx, network, srv.Listener.Addr().String())
			}}
			t.Cleanup(tr.CloseIdleConnections)
			res, err := HTTP(context.Background(), bundle, tt.dest, Options{Insecure: tt.insecure, Client: &http.Client{Transport: tr}})
			if tt.wantErr {
				if !errors.Is(err, ErrInsecure) || !strings.Contains(err.Error(), "--insecure") {
					t.Fatalf("err = %v, want a refusal naming --insecure", err)
				}
				if dials.Load() != 0 || rec.requests != 0 {
					t.Errorf("%d dials, %d requests: nothing may be sent", dials.Load(), rec.requests)
				}
				return
			}
			if err != nil || res.StatusCode != http.StatusCreated || dials.Load() != 1 {
				t.Fatalf("res %+v, err %v, dials %d", res, err, dials.Load())
			}
		})
	}
}

func TestParseHeader(t *testing.T) {
	tests := []struct {
		in, k, v string
		wantErr  bool
	}{
		{in: "X-Case: 01234", k: "X-Case", v: "01234"},
		{in: "authorization:Bearer abc:def", k: "Authorization", v: "Bearer abc:def"},
		{in: "X-Empty:", k: "X-Empty", v: ""},
		{in: "Bearer s3cretvalue", wantErr: true},
		{in: ": v", wantErr: true},
		{in: "Bad Name: v", wantErr: true},
	}
	for _, tt := range tests {
		k, v, err := ParseHeader(tt.in)
		if (err != nil) != tt.wantErr || k != tt.k || v != tt.v {
			t.Errorf("ParseHeader(%q) = %q, %q, %v", tt.in, k, v, err)
		}
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("the error shows the value: %v", err)
		}
	}
}

func TestDisplayURL(t *testing.T) {
	tests := map[string]string{
		"https://user:pa55@upload.example.com/x?X-Amz-Signature=abc": "https://upload.example.com/x?<redacted>",
		"https://upload.example.com/cases/01234/":                    "https://upload.example.com/cases/01234/",
		"http://127.0.0.1:8080/u#frag":                               "http://127.0.0.1:8080/u",
	}
	for in, want := range tests {
		if got := DisplayURL(in); got != want {
			t.Errorf("DisplayURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestKindOf(t *testing.T) {
	tests := map[string]string{
		"https://h/p": KindHTTP, "HTTP://h/p": KindHTTP, "oci://h/ns/r:t": KindOCI, "ftp://h/p": "", "h/p": "",
	}
	for in, want := range tests {
		got, err := KindOf(in)
		if got != want || (want == "") != (err != nil) {
			t.Errorf("KindOf(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}
