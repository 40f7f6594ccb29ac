package cli

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/quayctl/quayctl/collectors/upload"
	"github.com/quayctl/quayctl/internal/testregistry"
)

// uploadTestBundle writes a small, byte-for-byte reproducible .tar.gz
// (stored, not compressed, fixed times) so that sha256s and manifest
// digests in goldens do not depend on the compressor.
func uploadTestBundle(t *testing.T, name, manifest string) string {
	t.Helper()
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.NoCompression)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(zw)
	files := []struct{ name, body string }{{"components/quay/logs.txt", strings.Repeat("quay log line\n", 500)}}
	if manifest != "" {
		files = append(files, struct{ name, body string }{"manifest.json", manifest})
	}
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.body)), ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg, Format: tar.FormatUSTAR}); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, f.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// uploadRoot is the real command tree with `support-bundle upload` built
// by NewCmdSupportBundleUpload(f, runF), whether or not the support-bundle
// group is wired yet.
func uploadRoot(f *Factory, runF func(*SupportBundleUploadOptions) error) *cobra.Command {
	root := NewRootCmd(f)
	sb := findSubcommand(root, "support-bundle")
	if sb == nil {
		sb = groupCmd(&cobra.Command{Use: "support-bundle", Short: "Support bundles"})
		root.AddCommand(sb)
	}
	if old := findSubcommand(sb, "upload"); old != nil {
		sb.RemoveCommand(old)
	}
	sb.AddCommand(NewCmdSupportBundleUpload(f, runF))
	return root
}

func TestNewCmdSupportBundleUpload(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    SupportBundleUploadOptions
		wantErr string // substring of stderr; exit 2
	}{
		{name: "https with headers and token", args: []string{"b.tar.gz", "--to", "https://up.example.com/c/1", "-H", "X-Case: 1", "--header", "X-B:2", "--token-env", "TOK", "--retries", "3", "-o", "json"},
			want: SupportBundleUploadOptions{File: "b.tar.gz", To: "https://up.example.com/c/1", Headers: []string{"X-Case: 1", "X-B:2"}, TokenEnv: "TOK", Retries: 3, Output: "json"}},
		{name: "form, defaults", args: []string{"b.tar.gz", "--to", "https://up.example.com/", "--form", "file"},
			want: SupportBundleUploadOptions{File: "b.tar.gz", To: "https://up.example.com/", Form: "file", Retries: 5, Output: "table"}},
		{name: "oci with login", args: []string{"b.tar.gz", "--to", "oci://quay.example.com/ns/r:t", "-u", "alice", "--password-stdin", "--insecure", "--retries", "0"},
			want: SupportBundleUploadOptions{File: "b.tar.gz", To: "oci://quay.example.com/ns/r:t", Username: "alice", PasswordStdin: true, Insecure: true, Retries: 0, Output: "table"}},
		{name: "oci with the auth file", args: []string{"b.tar.gz", "--to", "oci://quay.example.com/ns/r"},
			want: SupportBundleUploadOptions{File: "b.tar.gz", To: "oci://quay.example.com/ns/r", Retries: 5, Output: "table"}},
		{name: "no --to", args: []string{"b.tar.gz"}, wantErr: "--to is required"},
		{name: "no file", args: []string{"--to", "https://h/"}, wantErr: "takes 1 argument(s): FILE"},
		{name: "bad scheme", args: []string{"b.tar.gz", "--to", "ftp://h/p"}, wantErr: `unsupported destination scheme "ftp"`},
		{name: "no scheme", args: []string{"b.tar.gz", "--to", "h/p"}, wantErr: "has no scheme"},
		{name: "form to oci", args: []string{"b.tar.gz", "--to", "oci://h/ns/r:t", "--form", "f"}, wantErr: "--form is for HTTP uploads"},
		{name: "token to oci", args: []string{"b.tar.gz", "--to", "oci://h/ns/r:t", "--token-env", "T"}, wantErr: "--token-env is for HTTP uploads"},
		{name: "username to https", args: []string{"b.tar.gz", "--to", "https://h/", "--username", "a", "--password-stdin"}, wantErr: "are for oci:// destinations"},
		{name: "username alone", args: []string{"b.tar.gz", "--to", "oci://h/ns/r:t", "--username", "a"}, wantErr: "go together"},
		{name: "malformed header", args: []string{"b.tar.gz", "--to", "https://h/", "-H", "Bearer s3cretvalue"}, wantErr: "not of the form 'Name: value'"},
		{name: "token and Authorization header", args: []string{"b.tar.gz", "--to", "https://h/", "-H", "Authorization: Basic x", "--token-env", "T"}, wantErr: "exclude each other"},
		{name: "negative retries", args: []string{"b.tar.gz", "--to", "https://h/", "--retries", "-1"}, wantErr: "--retries must be 0 or more"},
		{name: "a target flag", args: []string{"b.tar.gz", "--to", "https://h/", "--podman"}, wantErr: "--podman: upload sends a bundle already collected"},
		{name: "bad output", args: []string{"b.tar.gz", "--to", "https://h/", "-o", "xml"}, wantErr: `--output "xml"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ios, _, errOut := testIO("")
			f := testFactory(ios, nil)
			var got *SupportBundleUploadOptions
			root := uploadRoot(f, func(o *SupportBundleUploadOptions) error { got = o; return nil })
			code := execute(context.Background(), root, append([]string{"support-bundle", "upload"}, tt.args...), ios.ErrOut)
			if tt.wantErr != "" {
				if code != ExitUsage || !strings.Contains(errOut.String(), tt.wantErr) {
					t.Fatalf("exit %d, stderr %q; want 2 and %q", code, errOut.String(), tt.wantErr)
				}
				if strings.Contains(errOut.String(), "s3cret") {
					t.Errorf("stderr shows a header value: %s", errOut.String())
				}
				return
			}
			if code != ExitOK || got == nil {
				t.Fatalf("exit %d, stderr %s", code, errOut.String())
			}
			g := *got
			g.IO, g.Getenv, g.Progress = nil, nil, false
			if !reflect.DeepEqual(g, tt.want) {
				t.Errorf("options\n got %+v\nwant %+v", g, tt.want)
			}
		})
	}
}

func TestCheckCollectUpload(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{name: "none"},
		{name: "https", args: []string{"--upload", "https://h/p", "--upload-token-env", "T", "--upload-header", "X-Case: 1", "--upload-form", "file"}},
		{name: "oci with a user", args: []string{"--upload", "oci://h/ns/r:t", "--upload-username", "alice"}},
		{name: "settings without --upload", args: []string{"--upload-token-env", "T"}, wantErr: "the --upload-* flags need --upload DEST"},
		{name: "bad scheme", args: []string{"--upload", "ftp://h/p"}, wantErr: `--upload: unsupported destination scheme "ftp"`},
		{name: "token to oci", args: []string{"--upload", "oci://h/ns/r:t", "--upload-token-env", "T"}, wantErr: "--upload-token-env is for HTTP uploads"},
		{name: "user to https", args: []string{"--upload", "https://h/", "--upload-username", "a"}, wantErr: "--upload-username are for oci:// destinations"},
		{name: "negative retries", args: []string{"--upload", "https://h/", "--upload-retries", "-2"}, wantErr: "--upload-retries must be 0 or more"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ios, _, _ := testIO("")
			cmd := &cobra.Command{Use: "collect"}
			u := addCollectUploadFlags(cmd, testFactory(ios, nil))
			if err := cmd.ParseFlags(tt.args); err != nil {
				t.Fatal(err)
			}
			err := checkCollectUpload(u)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var fe flagError
			if !errors.As(err, &fe) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("err = %v, want a flag error with %q", err, tt.wantErr)
			}
		})
	}
}

// TestUploadCollected: what collect --upload calls once the bundle is
// written: the upload, the summary on collect's output, the result.
func TestUploadCollected(t *testing.T) {
	bundle := uploadTestBundle(t, "quayctl-bundle-x.tar.gz", "")
	srv := newUploadServer(t, uploadToken)
	ios, out, _ := testIO("")
	cmd := &cobra.Command{Use: "collect"}
	u := addCollectUploadFlags(cmd, testFactory(ios, map[string]string{"T": uploadToken}))
	if err := cmd.ParseFlags([]string{"--upload", srv.URL + "/c", "--upload-token-env", "T"}); err != nil {
		t.Fatal(err)
	}
	if err := checkCollectUpload(u); err != nil {
		t.Fatal(err)
	}
	var summary bytes.Buffer
	res, err := uploadCollected(context.Background(), u, bundle, &summary, false)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(bundle)
	sum := sha256.Sum256(want)
	if res.SHA256 != hex.EncodeToString(sum[:]) || !bytes.Equal(srv.body, want) || srv.auth != "Bearer "+uploadToken {
		t.Errorf("result %+v; server got %d bytes, auth ok %v", res, len(srv.body), srv.auth == "Bearer "+uploadToken)
	}
	if !strings.HasPrefix(summary.String(), "Uploaded "+bundle+" to "+srv.URL+"/c\n") || strings.Contains(summary.String(), uploadToken) {
		t.Errorf("summary:\n%s", summary.String())
	}
	if out.String() != "" {
		t.Errorf("the upload wrote to stdout itself: %q", out.String())
	}
}

// uploadServer answers 403 when the bearer token is not token, else 201,
// and records the file it received (the body, or the form's file part).
type uploadServer struct {
	*httptest.Server
	mu       sync.Mutex
	requests int
	body     []byte
	auth     string
}

func newUploadServer(t *testing.T, token string) *uploadServer {
	t.Helper()
	s := &uploadServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body []byte
		if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "multipart/form-data" {
			if f, _, err := r.FormFile("file"); err == nil {
				body, _ = io.ReadAll(f)
			}
		} else {
			body, _ = io.ReadAll(r.Body)
		}
		s.mu.Lock()
		s.requests++
		s.body, s.auth = body, r.Header.Get("Authorization")
		s.mu.Unlock()
		if r.Header.Get("Authorization") != "Bearer "+token {
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, "token "+r.Header.Get("Authorization")+" is not valid for this case")
			return
		}
		w.WriteHeader(http.StatusCreated)
	}))
	t.Cleanup(s.Close)
	return s
}

const uploadToken = "sup-7c1f0e9d8b7a6c5d4e3f2a1b0c9d8e7f"

func TestSupportBundleUploadHTTP(t *testing.T) {
	bundle := uploadTestBundle(t, "quayctl-bundle-prod-20250101T000000Z.tar.gz", `{"deployment":"prod"}`)
	want, err := os.ReadFile(bundle)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(want)
	env := map[string]string{"SUPPORT_TOKEN": uploadToken, "WRONG_TOKEN": "wrong-" + uploadToken}
	tests := []struct {
		name         string
		args         []string
		wantCode     int
		golden       string // stdout, with the server's address as 127.0.0.1:PORT
		wantStderr   string // substring
		wantRequests int
	}{
		{name: "put", args: []string{"--to", "{srv}/cases/01234?sig=abcdef", "--token-env", "SUPPORT_TOKEN", "-H", "X-Case: 01234"},
			golden: "bundle_upload_http.txt.golden", wantRequests: 1},
		{name: "put json", args: []string{"--to", "{srv}/cases/01234?sig=abcdef", "--token-env", "SUPPORT_TOKEN", "-o", "json"},
			golden: "bundle_upload_http.json.golden", wantRequests: 1},
		{name: "form yaml", args: []string{"--to", "{srv}/cases/01234", "--form", "file", "--token-env", "SUPPORT_TOKEN", "-o", "yaml"},
			golden: "bundle_upload_form.yaml.golden", wantRequests: 1},
		{name: "rejected token", args: []string{"--to", "{srv}/cases/01234", "--token-env", "WRONG_TOKEN"}, wantCode: ExitError,
			wantStderr: "the server answered 403 Forbidden: token Bearer <redacted> is not valid for this case — check the credentials", wantRequests: 1},
		{name: "unset token variable", args: []string{"--to", "{srv}/cases/01234", "--token-env", "NO_SUCH_VAR"}, wantCode: ExitError,
			wantStderr: "the environment variable NO_SUCH_VAR is empty or not set"},
		{name: "plain http to a remote host", args: []string{"--to", "http://support.example.com/cases/01234", "--token-env", "SUPPORT_TOKEN"}, wantCode: ExitError,
			wantStderr: "refusing to send the bundle over plain HTTP to support.example.com: the host is not on the loopback interface — use https://, or pass --insecure"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newUploadServer(t, uploadToken)
			addr := strings.TrimPrefix(srv.URL, "http://")
			args := []string{"support-bundle", "upload", bundle}
			for _, a := range tt.args {
				args = append(args, strings.ReplaceAll(a, "{srv}", srv.URL))
			}
			ios, out, errOut := testIO("")
			code := execute(context.Background(), uploadRoot(testFactory(ios, env), nil), args, ios.ErrOut)
			stdout := strings.ReplaceAll(strings.ReplaceAll(out.String(), addr, "127.0.0.1:PORT"), filepath.Dir(bundle), "DIR")
			stderr := errOut.String()
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, tt.wantCode, stderr)
			}
			if strings.Contains(stdout+stderr, uploadToken) {
				t.Errorf("the token was printed:\n%s%s", stdout, stderr)
			}
			if strings.Contains(stdout+stderr, "abcdef") {
				t.Errorf("the URL's query (a signature) was printed:\n%s%s", stdout, stderr)
			}
			if tt.wantStderr != "" && !strings.Contains(stderr, tt.wantStderr) {
				t.Errorf("stderr %q lacks %q", stderr, tt.wantStderr)
			}
			srv.mu.Lock()
			defer srv.mu.Unlock()
			if srv.requests != tt.wantRequests {
				t.Errorf("server saw %d requests, want %d", srv.requests, tt.wantRequests)
			}
			if tt.golden == "" {
				return
			}
			golden(t, tt.golden, stdout)
			if !bytes.Equal(srv.body, want) {
				t.Errorf("server received %d bytes that differ from the file's %d", len(srv.body), len(want))
			}
			if !strings.Contains(stdout, hex.EncodeToString(sum[:])) {
				t.Errorf("stdout lacks the file's sha256 %x", sum)
			}
		})
	}
}

// TestSupportBundleUploadProgress: on a terminal, a progress bar goes to
// stderr and ends at 100% on its own line; stdout keeps the result.
func TestSupportBundleUploadProgress(t *testing.T) {
	bundle := uploadTestBundle(t, "b.tar.gz", "")
	srv := newUploadServer(t, uploadToken)
	ios, out, errOut := testIO("")
	opts := &SupportBundleUploadOptions{IO: ios, Getenv: func(string) string { return uploadToken }, File: bundle,
		To: srv.URL + "/u", TokenEnv: "T", Retries: 1, Output: OutputJSON, Progress: true}
	if err := supportBundleUploadRun(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(bundle)
	stderr := errOut.String()
	if !strings.HasPrefix(stderr, "\r[") || !strings.Contains(stderr, "100% ") || !strings.HasSuffix(stderr, "\n") || strings.Count(stderr, "\n") != 1 {
		t.Errorf("stderr = %q, want a bar ending at 100%% and one newline", stderr)
	}
	var res upload.Result
	if err := json.Unmarshal([]byte(out.String()), &res); err != nil || res.Bytes != fi.Size() {
		t.Errorf("stdout %q: %v", out.String(), err)
	}
}

// TestSupportBundleUploadOCI pushes to quayctl serve and pulls back.
func TestSupportBundleUploadOCI(t *testing.T) {
	heavy(t)
	reg := testregistry.Start(t, "sqlite:///"+filepath.Join(t.TempDir(), "quay.db"), nil)
	const password = "bundle-pa55word"
	reg.CreateUser(t, "alice", password)
	bundle := uploadTestBundle(t, "quayctl-bundle-prod-20250101T000000Z.tar.gz", `{"format":1,"target":{"kind":"podman","name":"prod-quay"},"created":"2025-01-01T00:00:00Z"}`)
	want, _ := os.ReadFile(bundle)
	tests := []struct {
		name     string
		args     []string
		stdin    string
		wantCode int
		golden   string
		wantErr  string
	}{
		{name: "table", args: []string{"--to", "oci://{reg}/alice/bundles:case-01234", "--username", "alice", "--password-stdin"}, stdin: password + "\n",
			golden: "bundle_upload_oci.txt.golden"},
		{name: "json", args: []string{"--to", "oci://{reg}/alice/bundles:case-01234", "-u", "alice", "--password-stdin", "-o", "json"}, stdin: password,
			golden: "bundle_upload_oci.json.golden"},
		{name: "wrong password", args: []string{"--to", "oci://{reg}/alice/bundles:x", "-u", "alice", "--password-stdin"}, stdin: "not-" + password,
			wantCode: ExitError, wantErr: "log in: --username NAME --password-stdin"},
		{name: "empty stdin", args: []string{"--to", "oci://{reg}/alice/bundles:x", "-u", "alice", "--password-stdin"},
			wantCode: ExitError, wantErr: "no password on standard input"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := []string{"support-bundle", "upload", bundle}
			for _, a := range tt.args {
				args = append(args, strings.ReplaceAll(a, "{reg}", reg.Addr))
			}
			ios, out, errOut := testIO(tt.stdin)
			code := execute(context.Background(), uploadRoot(testFactory(ios, map[string]string{"HOME": t.TempDir()}), nil), args, ios.ErrOut)
			stdout := strings.ReplaceAll(strings.ReplaceAll(out.String(), reg.Addr, "127.0.0.1:PORT"), filepath.Dir(bundle), "DIR")
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, tt.wantCode, errOut.String())
			}
			if strings.Contains(stdout+errOut.String(), password) {
				t.Errorf("the password was printed")
			}
			if tt.wantErr != "" {
				if !strings.Contains(errOut.String(), tt.wantErr) {
					t.Errorf("stderr %q lacks %q", errOut.String(), tt.wantErr)
				}
				return
			}
			golden(t, tt.golden, stdout)
			// Pulled back through the registry's API, byte for byte.
			layer := fetchLayer(t, reg.URL, "alice", password, "alice/bundles", "case-01234")
			if !bytes.Equal(layer, want) {
				t.Errorf("pulled layer (%d bytes) differs from the bundle (%d bytes)", len(layer), len(want))
			}
		})
	}
}

// fetchLayer pulls repo:tag's first layer with plain HTTP calls: a token
// from /v2/auth, the manifest, then the blob.
func fetchLayer(t *testing.T, base, user, password, repo, tag string) []byte {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/v2/auth?service="+strings.TrimPrefix(base, "http://")+"&scope=repository:"+repo+":pull", nil)
	req.SetBasicAuth(user, password)
	var tok struct {
		Token string `json:"token"`
	}
	getJSON := func(req *http.Request, v any) []byte {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s %s: %d %s", req.Method, req.URL, resp.StatusCode, b)
		}
		if v != nil {
			if err := json.Unmarshal(b, v); err != nil {
				t.Fatal(err)
			}
		}
		return b
	}
	getJSON(req, &tok)
	var m struct {
		ArtifactType string `json:"artifactType"`
		Layers       []struct {
			Digest string `json:"digest"`
		} `json:"layers"`
	}
	req, _ = http.NewRequest(http.MethodGet, base+"/v2/"+repo+"/manifests/"+tag, nil)
	req.Header.Set("Authorization", "Bearer "+tok.Token)
	req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json")
	getJSON(req, &m)
	if m.ArtifactType != upload.ArtifactType || len(m.Layers) != 1 {
		t.Fatalf("manifest: %+v", m)
	}
	req, _ = http.NewRequest(http.MethodGet, base+"/v2/"+repo+"/blobs/"+m.Layers[0].Digest, nil)
	req.Header.Set("Authorization", "Bearer "+tok.Token)
	return getJSON(req, nil)
}
