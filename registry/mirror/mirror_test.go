package mirror_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/quayctl/quayctl/internal/testpg"
	"github.com/quayctl/quayctl/internal/testregistry"
	"github.com/quayctl/quayctl/registry/mirror"
	"github.com/quayctl/quayctl/registry/server"
	"github.com/quayctl/quayctl/registry/store"
)

func TestMain(m *testing.M) { testpg.Main(m) }

func TestMatchTags(t *testing.T) {
	tags := []string{"latest", "v1", "v1.1", "v2", "dev-1", "x"}
	for _, tc := range []struct {
		patterns []string
		want     []string
	}{
		{[]string{"v*"}, []string{"v1", "v1.1", "v2"}},
		{[]string{"latest,v1.?"}, []string{"latest", "v1.1"}},
		{[]string{"dev-[0-9]", "x"}, []string{"dev-1", "x"}},
		{[]string{"nomatch"}, nil},
	} {
		if got := mirror.MatchTags(tags, tc.patterns); !slices.Equal(got, tc.want) {
			t.Errorf("MatchTags(%v) = %v, want %v", tc.patterns, got, tc.want)
		}
	}
}

// pusher pushes small images to a registry with oras-go.
type pusher struct {
	t    *testing.T
	repo *remote.Repository
}

func newPusher(t *testing.T, reg *testregistry.Registry, repo, user, pass string) *pusher {
	return &pusher{t: t, repo: reg.OCIRepository(t, repo, user, pass)}
}

func (p *pusher) blob(content []byte, mt string) (ocispec.Descriptor, error) {
	d := ocispec.Descriptor{MediaType: mt, Digest: digest.FromBytes(content), Size: int64(len(content))}
	if ok, _ := p.repo.Exists(context.Background(), d); ok {
		return d, nil
	}
	return d, p.repo.Push(context.Background(), d, bytes.NewReader(content))
}

// image pushes a one-layer image for arch and returns its descriptor; with
// a tag, the tag points at it.
func (p *pusher) image(arch, layer, tag string) (ocispec.Descriptor, error) {
	cfg, err := p.blob([]byte(fmt.Sprintf(`{"architecture":%q,"os":"linux"}`, arch)), ocispec.MediaTypeImageConfig)
	if err != nil {
		return cfg, err
	}
	l, err := p.blob([]byte(layer), ocispec.MediaTypeImageLayer)
	if err != nil {
		return l, err
	}
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: cfg, Layers: []ocispec.Descriptor{l}}
	m.SchemaVersion = 2
	return p.manifest(m, ocispec.MediaTypeImageManifest, tag)
}

func (p *pusher) manifest(v any, mt, tag string) (ocispec.Descriptor, error) {
	b, _ := json.Marshal(v)
	d := ocispec.Descriptor{MediaType: mt, Digest: digest.FromBytes(b), Size: int64(len(b))}
	ctx := context.Background()
	if tag == "" {
		return d, p.repo.Push(ctx, d, bytes.NewReader(b))
	}
	return d, p.repo.PushReference(ctx, d, bytes.NewReader(b), tag)
}

func (p *pusher) index(tag string) ocispec.Descriptor {
	var children []ocispec.Descriptor
	for _, arch := range []string{"amd64", "arm64"} {
		d, err := p.image(arch, "layer "+arch, "")
		if err != nil {
			p.t.Fatal(err)
		}
		d.Platform = &ocispec.Platform{Architecture: arch, OS: "linux"}
		children = append(children, d)
	}
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: children}
	idx.SchemaVersion = 2
	d, err := p.manifest(idx, ocispec.MediaTypeImageIndex, tag)
	if err != nil {
		p.t.Fatal(err)
	}
	return d
}

// apiCall calls /api/v1 as user with basic auth.
func apiCall(t *testing.T, reg *testregistry.Registry, user, pass, method, path string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, reg.URL+"/api/v1"+path, rd)
	req.SetBasicAuth(user, pass)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(out, &m)
	return resp.StatusCode, m
}

func tagsOf(t *testing.T, st store.Store, repoID int64) []string {
	t.Helper()
	tags, err := st.ListTags(context.Background(), repoID, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	return tags
}

func digestOf(t *testing.T, st store.Store, repoID int64, tag string) string {
	t.Helper()
	m, _, err := st.ManifestByTag(context.Background(), repoID, tag)
	if err != nil {
		t.Fatalf("tag %s: %v", tag, err)
	}
	return m.Digest
}

const (
	srcUser, srcPass = "source", "source-password1"
	owner, ownerPass = "olivia", "olivia-password1"
	srcRepo          = "source/app"
)

// TestMirrorSync runs the mirror against a second in-process registry
// holding a private repository, on SQLite and PostgreSQL.
func TestMirrorSync(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two registries")
	}
	for name, uri := range map[string]func() string{
		"sqlite":     func() string { return "sqlite:///" + filepath.Join(t.TempDir(), "quay.db") },
		"postgresql": func() string { return testpg.NewDatabase(t) },
	} {
		t.Run(name, func(t *testing.T) { testMirrorSync(t, uri()) })
	}
}

func testMirrorSync(t *testing.T, dstURI string) {
	ctx := context.Background()
	src := testregistry.Start(t, "sqlite:///"+filepath.Join(t.TempDir(), "src.db"), nil)
	src.CreateUser(t, srcUser, srcPass)
	sp := newPusher(t, src, srcRepo, srcUser, srcPass)
	v1, err := sp.image("amd64", "v1 layer", "v1")
	if err != nil {
		t.Fatalf("push to the source: %v", err)
	}
	for _, tag := range []string{"v2", "latest", "dev"} {
		if _, err := sp.image("amd64", tag+" layer", tag); err != nil {
			t.Fatal(err)
		}
	}
	multi := sp.index("multi")

	dst := testregistry.Start(t, dstURI, func(s *server.Settings) { s.RepoMirror = true; s.RepoMirrorInterval = 1 << 40 })
	st := dst.Srv.Store
	ou := dst.CreateUser(t, owner, ownerPass)
	robot, robotToken, err := dst.Srv.Auth.CreateRobot(ctx, ou.ID, "mirror", "mirror robot")
	if err != nil {
		t.Fatal(err)
	}
	repo, err := st.CreateRepository(ctx, ou.ID, "mirror", false, ou.ID)
	if err != nil {
		t.Fatal(err)
	}
	path := "/repository/" + owner + "/mirror/mirror"
	body := map[string]any{
		"is_enabled": true, "external_reference": src.Addr + "/" + srcRepo,
		"external_registry_username": srcUser, "external_registry_password": srcPass,
		"sync_interval": 3600, "sync_start_date": "2000-01-01T00:00:00Z",
		"root_rule":      map[string]any{"rule_kind": "tag_glob_csv", "rule_value": []string{"v*", "multi"}},
		"robot_username": robot.Username, "skopeo_timeout_interval": 300,
		"external_registry_config": map[string]any{"verify_tls": false, "unsigned_images": false,
			"proxy": map[string]any{"http_proxy": nil, "https_proxy": nil, "no_proxy": nil}},
	}
	if code, m := apiCall(t, dst, owner, ownerPass, "POST", path, body); code != 201 {
		t.Fatalf("create mirror: %d %v", code, m)
	}
	if code, _ := apiCall(t, dst, owner, ownerPass, "POST", path, body); code != 409 {
		t.Fatalf("second create: %d, want 409", code)
	}
	code, view := apiCall(t, dst, owner, ownerPass, "GET", path, nil)
	if code != 200 || view["sync_status"] != "NEVER_RUN" || view["robot_username"] != robot.Username || view["mirror_type"] != "PULL" {
		t.Fatalf("GET mirror: %d %v", code, view)
	}
	if _, has := view["external_registry_password"]; has {
		t.Fatal("the password is returned")
	}
	if b, _ := json.Marshal(view); strings.Contains(string(b), srcPass) {
		t.Fatal("the password appears in the view")
	}
	syncer := dst.Srv.Mirror()
	runOnce := func(want int) {
		t.Helper()
		n, err := syncer.RunOnce(ctx)
		if err != nil || n != want {
			t.Fatalf("RunOnce = %d, %v; want %d", n, err, want)
		}
	}
	status := func() map[string]any {
		t.Helper()
		_, v := apiCall(t, dst, owner, ownerPass, "GET", path, nil)
		return v
	}
	syncNow := func() {
		t.Helper()
		if code, m := apiCall(t, dst, owner, ownerPass, "POST", path+"/sync-now", nil); code != 204 {
			t.Fatalf("sync-now: %d %v", code, m)
		}
	}

	// Initial sync: matching tags only, the index whole.
	runOnce(1)
	if got := tagsOf(t, st, repo.ID); !slices.Equal(got, []string{"multi", "v1", "v2"}) {
		t.Fatalf("tags after the first sync = %v (status %v)", got, status())
	}
	if digestOf(t, st, repo.ID, "v1") != v1.Digest.String() || digestOf(t, st, repo.ID, "multi") != multi.Digest.String() {
		t.Fatal("mirrored digests differ from the source")
	}
	var idx ocispec.Index
	m, _, _ := st.ManifestByTag(ctx, repo.ID, "multi")
	_ = json.Unmarshal(m.Bytes, &idx)
	for _, c := range idx.Manifests {
		if _, err := st.ManifestByDigest(ctx, repo.ID, c.Digest.String()); err != nil {
			t.Fatalf("index child %s not mirrored: %v", c.Digest, err)
		}
	}
	if v := status(); v["sync_status"] != "SUCCESS" {
		t.Fatalf("status after success: %v", v)
	}
	runOnce(0) // next start is an hour away

	// A tag moved at the source moves; a tag removed disappears.
	moved, err := sp.image("amd64", "v1 moved layer", "v1")
	if err != nil {
		t.Fatal(err)
	}
	if code, m := apiCall(t, src, srcUser, srcPass, "DELETE", "/repository/"+srcRepo+"/tag/v2", nil); code != 204 {
		t.Fatalf("delete tag at the source: %d %v", code, m)
	}
	syncNow()
	runOnce(1)
	if got := tagsOf(t, st, repo.ID); !slices.Equal(got, []string{"multi", "v1"}) {
		t.Fatalf("tags after move/delete = %v", got)
	}
	if digestOf(t, st, repo.ID, "v1") != moved.Digest.String() {
		t.Fatal("v1 did not move")
	}

	// A tag no longer matching the rule disappears.
	if code, m := apiCall(t, dst, owner, ownerPass, "PUT", path+"/rules", map[string]any{"root_rule": map[string]any{"rule_kind": "tag_glob_csv", "rule_value": []string{"multi,late*"}}}); code != 201 {
		t.Fatalf("PUT rules: %d %v", code, m)
	}
	syncNow()
	runOnce(1)
	if got := tagsOf(t, st, repo.ID); !slices.Equal(got, []string{"latest", "multi"}) {
		t.Fatalf("tags after the rule change = %v", got)
	}

	// Pushes: the owner (admin) is refused, the mirror robot accepted.
	if _, err := newPusher(t, dst, owner+"/mirror", owner, ownerPass).image("amd64", "user push", "user"); err == nil {
		t.Fatal("a user push to the mirror was accepted")
	}
	if _, err := newPusher(t, dst, owner+"/mirror", robot.Username, robotToken).image("amd64", "robot push", "robot"); err != nil {
		t.Fatalf("the mirror robot's push was refused: %v", err)
	}

	// Two workers never sync the same repository at once.
	syncNow()
	var wg sync.WaitGroup
	counts := make([]int, 2)
	for i, s := range []*mirror.Syncer{dst.Srv.Mirror(), dst.Srv.Mirror()} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			counts[i], _ = s.RunOnce(ctx)
		}()
	}
	wg.Wait()
	if counts[0]+counts[1] != 1 {
		t.Fatalf("claims by two workers = %v, want exactly one", counts)
	}

	// Cancel: a requested sync does not run.
	syncNow()
	if code, m := apiCall(t, dst, owner, ownerPass, "POST", path+"/sync-cancel", nil); code != 204 {
		t.Fatalf("sync-cancel: %d %v", code, m)
	}
	if v := status(); v["sync_status"] != "CANCEL" {
		t.Fatalf("status after cancel: %v", v)
	}
	runOnce(0)

	// Wrong credentials: FAIL with the reason.
	if code, m := apiCall(t, dst, owner, ownerPass, "PUT", path, map[string]any{"external_registry_username": srcUser, "external_registry_password": "wrong"}); code != 201 {
		t.Fatalf("PUT credentials: %d %v", code, m)
	}
	syncNow()
	runOnce(1)
	v := status()
	if v["sync_status"] != "FAIL" || !strings.Contains(strings.ToLower(fmt.Sprint(v["last_error"])), "unauthorized") {
		t.Fatalf("status with wrong credentials: %v", v)
	}
	if strings.Contains(fmt.Sprint(v), "wrong") {
		t.Fatal("the password appears in the status")
	}

	// Source down: retries count down, then FAIL with retries refilled and
	// the next start in the future.
	if code, m := apiCall(t, dst, owner, ownerPass, "PUT", path, map[string]any{"external_reference": "127.0.0.1:1/gone/repo",
		"sync_start_date": "2000-01-01T00:00:00Z"}); code != 201 {
		t.Fatalf("PUT reference: %d %v", code, m)
	}
	cfg, err := st.MirrorByRepository(ctx, repo.ID)
	if err != nil {
		t.Fatal(err)
	}
	passes := 0
	for retries := cfg.SyncRetriesRemaining; retries > 0; retries-- {
		runOnce(1)
		passes++
	}
	cfg, _ = st.MirrorByRepository(ctx, repo.ID)
	if cfg.SyncStatus != store.MirrorFail || cfg.SyncRetriesRemaining != store.MirrorMaxRetries || passes < 1 {
		t.Fatalf("after %d failing passes: status %v retries %d", passes, cfg.SyncStatus, cfg.SyncRetriesRemaining)
	}
	runOnce(0)
	logs, err := st.Logs(ctx, store.LogQuery{RepositoryID: repo.ID, Kind: "repo_mirror_sync_failed", Limit: 100})
	if err != nil || len(logs) < passes+1 {
		t.Fatalf("repo_mirror_sync_failed entries = %d, %v", len(logs), err)
	}
	if ok, _ := st.Logs(ctx, store.LogQuery{RepositoryID: repo.ID, Kind: "repo_mirror_sync_success", Limit: 100}); len(ok) < 3 {
		t.Fatalf("repo_mirror_sync_success entries = %d", len(ok))
	}
}
