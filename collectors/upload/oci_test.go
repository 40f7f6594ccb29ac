package upload

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"

	"github.com/quayctl/quayctl/internal/testpodman"
	"github.com/quayctl/quayctl/internal/testregistry"
	"github.com/quayctl/quayctl/internal/version"
)

const (
	testUser     = "alice"
	testPassword = "pa55-w0rd-for-bundles"
)

// pull fetches reference from the registry with oras-go and returns the
// manifest and the bytes of its one layer.
func pull(t *testing.T, addr, repoPath, reference string) (ocispec.Manifest, ocispec.Descriptor, []byte) {
	t.Helper()
	ctx := context.Background()
	repo, err := remote.NewRepository(addr + "/" + repoPath)
	if err != nil {
		t.Fatal(err)
	}
	repo.PlainHTTP = true
	repo.Client = &auth.Client{Credential: auth.StaticCredential(addr, auth.Credential{Username: testUser, Password: testPassword}), Cache: auth.NewCache()}
	desc, rc, err := repo.FetchReference(ctx, reference)
	if err != nil {
		t.Fatalf("pull %s: %v", reference, err)
	}
	b, err := content.ReadAll(rc, desc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if len(m.Layers) != 1 {
		t.Fatalf("manifest has %d layers, want 1: %s", len(m.Layers), b)
	}
	layer, err := content.FetchAll(ctx, repo, m.Layers[0])
	if err != nil {
		t.Fatalf("pull layer: %v", err)
	}
	return m, desc, layer
}

// TestOCIPush pushes bundles to quayctl serve (SQLite, in-process) as OCI
// artifacts and pulls them back with oras-go.
func TestOCIPush(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a registry and hashes a password with bcrypt; skipped with -short")
	}
	t.Parallel()
	reg := testregistry.Start(t, "sqlite:///"+filepath.Join(t.TempDir(), "quay.db"), nil)
	reg.CreateUser(t, testUser, testPassword)

	authDir := t.TempDir()
	authFile := filepath.Join(authDir, "auth.json")
	authJSON := `{"auths":{"` + reg.Addr + `":{"auth":"` + base64.StdEncoding.EncodeToString([]byte(testUser+":"+testPassword)) + `"}}}`
	if err := os.WriteFile(authFile, []byte(authJSON), 0o600); err != nil {
		t.Fatal(err)
	}
	created := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	withManifest := writeBundle(t, "quayctl-bundle-prod-20250304T050607Z.tar.gz",
		`{"format":1,"quayctl_version":"v0.1.0","target":{"kind":"podman","name":"prod-quay"},"created":"`+created.Format(time.RFC3339)+`"}`, 2<<20)
	noManifest := writeBundle(t, "quayctl-bundle-lab-20250101T000000Z.tar.gz", "", 64<<10)
	flakyBundle := writeBundle(t, "quayctl-bundle-flaky.tgz", "", 256<<10)
	now := time.Date(2025, 6, 7, 8, 9, 10, 0, time.UTC)

	tests := []struct {
		name           string
		file           string
		dest           string
		opts           Options
		wantTag        string
		wantDeployment string
		wantCreated    time.Time
		wantErr        string
		skopeo         bool
		// remote: the destination host is not loopback; a dialer sends its
		// connections to the local registry.
		remote bool
		// layerThere: an earlier case pushed the same file to the repository.
		layerThere bool
		// flaky: a proxy in front of the registry answers the first layer
		// upload with 503.
		flaky        bool
		wantAttempts int
	}{
		{name: "username and password", file: withManifest, dest: "oci://" + reg.Addr + "/" + testUser + "/bundles:case-01234",
			opts:    Options{Username: testUser, Password: testPassword},
			wantTag: "case-01234", wantDeployment: "prod-quay", wantCreated: created, skopeo: true},
		{name: "auth file, tag from the file name", file: noManifest, dest: "oci://" + reg.Addr + "/" + testUser + "/bundles",
			opts:    Options{Getenv: func(k string) string { return map[string]string{"REGISTRY_AUTH_FILE": authFile}[k] }},
			wantTag: "quayctl-bundle-lab-20250101T000000Z", wantDeployment: "quayctl-bundle-lab-20250101T000000Z", wantCreated: now},
		{name: "again: the layer is already there", file: withManifest, dest: "oci://" + reg.Addr + "/" + testUser + "/bundles:case-01234-again",
			opts: Options{Username: testUser, Password: testPassword}, layerThere: true,
			wantTag: "case-01234-again", wantDeployment: "prod-quay", wantCreated: created},
		{name: "plain HTTP to a remote registry refused", file: noManifest, dest: "oci://registry.example.com/" + testUser + "/bundles:remote",
			opts: Options{Username: testUser, Password: testPassword}, remote: true, wantErr: "pass --insecure"},
		{name: "plain HTTP to a remote registry with insecure", file: noManifest, dest: "oci://registry.example.com/" + testUser + "/bundles:remote",
			opts: Options{Username: testUser, Password: testPassword, Insecure: true}, remote: true, layerThere: true,
			wantTag: "remote", wantDeployment: "quayctl-bundle-lab-20250101T000000Z", wantCreated: now},
		{name: "layer upload retried after a 503", file: flakyBundle, dest: "oci://registry.example.com/" + testUser + "/bundles:flaky",
			opts: Options{Username: testUser, Password: testPassword, Insecure: true}, remote: true, flaky: true, wantAttempts: 2,
			wantTag: "flaky", wantDeployment: "quayctl-bundle-flaky", wantCreated: now},
		{name: "wrong password", file: noManifest, dest: "oci://" + reg.Addr + "/" + testUser + "/bundles:x",
			opts: Options{Username: testUser, Password: "wrong-" + testPassword}, wantErr: "--password-stdin"},
		{name: "no credentials", file: noManifest, dest: "oci://" + reg.Addr + "/" + testUser + "/bundles:x",
			opts: Options{Getenv: func(k string) string { return map[string]string{"HOME": t.TempDir()}[k] }}, wantErr: "log in"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := tt.opts
			opts.Backoff = time.Millisecond
			opts.Retries = 1
			opts.Now = func() time.Time { return now }
			var last int64
			opts.Progress = func(sent, total int64) { last = sent }
			host := reg.Addr
			if tt.remote {
				host = "registry.example.com"
				target := reg.Addr
				if tt.flaky {
					target = flakyProxy(t, reg.URL).Listener.Addr().String()
				}
				tr := &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
					return (&net.Dialer{}).DialContext(ctx, network, target)
				}}
				t.Cleanup(tr.CloseIdleConnections)
				opts.Client = &http.Client{Transport: tr}
			}
			res, err := Upload(context.Background(), tt.file, tt.dest, opts)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), testPassword) {
					t.Errorf("the password is in the error: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want, wantSum := fileSum(t, tt.file)
			m, desc, layer := pull(t, reg.Addr, testUser+"/bundles", tt.wantTag)
			if !bytes.Equal(layer, want) {
				t.Errorf("pulled layer (%d bytes) differs from the file (%d bytes)", len(layer), len(want))
			}
			if m.ArtifactType != ArtifactType || m.Config.MediaType != ocispec.MediaTypeEmptyJSON || m.Layers[0].MediaType != LayerMediaType {
				t.Errorf("manifest: artifactType %q config %q layer %q", m.ArtifactType, m.Config.MediaType, m.Layers[0].MediaType)
			}
			wantAnn := map[string]string{
				AnnotationDeployment:      tt.wantDeployment,
				AnnotationVersion:         version.Version,
				ocispec.AnnotationCreated: tt.wantCreated.Format(time.RFC3339),
				ocispec.AnnotationTitle:   filepath.Base(tt.file),
			}
			for k, v := range wantAnn {
				if m.Annotations[k] != v || res.Annotations[k] != v {
					t.Errorf("annotation %s = %q (result %q), want %q", k, m.Annotations[k], res.Annotations[k], v)
				}
			}
			if res.ManifestDigest != desc.Digest.String() || res.Reference != host+"/"+testUser+"/bundles@"+desc.Digest.String() ||
				res.Tag != tt.wantTag || res.SHA256 != wantSum || res.LayerDigest != "sha256:"+wantSum || res.Bytes != int64(len(want)) || !res.PlainHTTP {
				t.Errorf("result = %+v", res)
			}
			if want := max(tt.wantAttempts, 1); res.Attempts != want {
				t.Errorf("attempts %d, want %d", res.Attempts, want)
			}
			if tt.layerThere {
				if last != 0 {
					t.Errorf("the layer was sent again (%d bytes)", last)
				}
			} else if last != int64(len(want)) {
				t.Errorf("last progress %d, want %d", last, len(want))
			}
			if tt.skopeo {
				// Another client reads it back: the manifest as skopeo sees it.
				env := testpodman.New(t)
				raw := env.RunSkopeo(t, "inspect", "--raw", "--tls-verify=false", "--creds", testUser+":"+testPassword,
					"docker://"+reg.Addr+"/"+testUser+"/bundles:"+tt.wantTag)
				var sm ocispec.Manifest
				if err := json.Unmarshal([]byte(raw), &sm); err != nil {
					t.Fatalf("skopeo output: %v\n%s", err, raw)
				}
				if sm.ArtifactType != ArtifactType || sm.Layers[0].Digest.String() != "sha256:"+wantSum {
					t.Errorf("skopeo sees artifactType %q layers %v", sm.ArtifactType, sm.Layers)
				}
			}
		})
	}
}

// flakyProxy forwards to the registry at target but answers the first
// blob upload (the PUT that carries the bytes) with 503.
func flakyProxy(t *testing.T, target string) *httptest.Server {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	var failed atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/blobs/uploads/") && failed.CompareAndSwap(false, true) {
			_, _ = io.Copy(io.Discard, r.Body)
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestParseOCI(t *testing.T) {
	tests := []struct {
		dest, file string
		want       string // host/repo:tag
		wantErr    string
	}{
		{dest: "oci://quay.example.com/support/bundles:case-1", want: "quay.example.com/support/bundles:case-1"},
		{dest: "oci://127.0.0.1:5000/a/b/c:t", want: "127.0.0.1:5000/a/b/c:t"},
		{dest: "oci://quay.example.com/support/bundles", file: "/tmp/quayctl-bundle-prod-20250101T000000Z.tar.gz",
			want: "quay.example.com/support/bundles:quayctl-bundle-prod-20250101T000000Z"},
		{dest: "oci://quay.example.com/support/bundles", file: "my bundle+1.tgz", want: "quay.example.com/support/bundles:my_bundle_1"},
		{dest: "oci://quay.example.com/bundles:t", wantErr: "needs a namespace"},
		{dest: "oci://quay.example.com/support/bundles@sha256:" + strings.Repeat("a", 64), wantErr: "give a tag"},
		{dest: "oci://quay.example.com/support/bundles:-bad", wantErr: "invalid tag"},
		{dest: "oci://quay.example.com", wantErr: "invalid registry destination"},
	}
	for _, tt := range tests {
		ref, err := ParseOCI(tt.dest, tt.file)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseOCI(%q) err = %v, want %q", tt.dest, err, tt.wantErr)
			}
			continue
		}
		if err != nil || ref.Registry+"/"+ref.Repository+":"+ref.Reference != tt.want {
			t.Errorf("ParseOCI(%q) = %v, %v; want %s", tt.dest, ref, err, tt.want)
		}
	}
}

func TestAuthFiles(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want []string
	}{
		{env: map[string]string{"HOME": "/h"}, want: []string{"/h/.config/containers/auth.json", "/h/.docker/config.json"}},
		{env: map[string]string{"HOME": "/h", "REGISTRY_AUTH_FILE": "/a.json", "XDG_RUNTIME_DIR": "/run/user/1", "XDG_CONFIG_HOME": "/c", "DOCKER_CONFIG": "/d"},
			want: []string{"/a.json", "/run/user/1/containers/auth.json", "/c/containers/auth.json", "/d/config.json"}},
	}
	for _, tt := range tests {
		got := AuthFiles(func(k string) string { return tt.env[k] })
		if strings.Join(got, ",") != strings.Join(tt.want, ",") {
			t.Errorf("AuthFiles(%v) = %v, want %v", tt.env, got, tt.want)
		}
	}
}

func TestInspectBundle(t *testing.T) {
	dir := t.TempDir()
	tarGz := func(name string, files map[string]string) string {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		tw := tar.NewWriter(zw)
		for n, c := range files {
			_ = tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(c)), Typeflag: tar.TypeReg})
			_, _ = tw.Write([]byte(c))
		}
		tw.Close()
		zw.Close()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	plain := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(plain, []byte("not an archive"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		file, wantDeployment, wantCreated string
	}{
		{file: tarGz("a.tar.gz", map[string]string{"manifest.json": `{"deployment":"d1","created":"2025-01-02T03:04:05Z"}`}), wantDeployment: "d1", wantCreated: "2025-01-02T03:04:05Z"},
		{file: tarGz("b.tar.gz", map[string]string{"bundle/manifest.json": `{"target":{"kind":"podman","deployment":"d2"}}`}), wantDeployment: "d2"},
		{file: tarGz("f.tar.gz", map[string]string{"manifest.json": `{"format":1,"target":{"kind":"openshift","name":"quay-ns/registry"},"created":"2025-01-02T03:04:05.123456789Z"}`}),
			wantDeployment: "quay-ns/registry", wantCreated: "2025-01-02T03:04:05Z"},
		{file: tarGz("c.tar.gz", map[string]string{"./manifest.json": `{"deployment":{"name":"d3"},"created_at":"2025-01-02T03:04:05.5Z"}`}), wantDeployment: "d3", wantCreated: "2025-01-02T03:04:05Z"},
		{file: tarGz("d.tar.gz", map[string]string{"a/b/manifest.json": `{"deployment":"deep"}`})},
		{file: tarGz("e.tar.gz", map[string]string{"manifest.json": `not json`})},
		{file: plain},
	}
	for _, tt := range tests {
		info, err := inspectBundle(tt.file)
		if err != nil {
			t.Fatal(err)
		}
		_, sum := fileSum(t, tt.file)
		b, _ := os.ReadFile(tt.file)
		created := ""
		if !info.created.IsZero() {
			created = info.created.Format(time.RFC3339)
		}
		if info.digest.Encoded() != sum || info.size != int64(len(b)) || info.deployment != tt.wantDeployment || created != tt.wantCreated {
			t.Errorf("%s: %+v, want deployment %q created %q sha256 %s", filepath.Base(tt.file), info, tt.wantDeployment, tt.wantCreated, sum)
		}
	}
}
