package mirror_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/quayctl/quayctl/internal/testpg"
	"github.com/quayctl/quayctl/internal/testregistry"
	"github.com/quayctl/quayctl/registry/encfield"
	"github.com/quayctl/quayctl/registry/mirror"
	"github.com/quayctl/quayctl/registry/server"
	"github.com/quayctl/quayctl/registry/store"
)

// mirrorEnv is a source registry with a private repository and a
// destination registry holding a mirror of it, created through the API.
type mirrorEnv struct {
	t     *testing.T
	src   *testregistry.Registry
	sp    *pusher
	dst   *testregistry.Registry
	st    store.Store
	repo  *store.Repository
	path  string // /repository/olivia/mirror/mirror
	key   []byte
	robot string
}

// newMirrorEnv starts both registries; the mirror is created later with
// create, once the source's address (or a proxy's) is known.
func newMirrorEnv(t *testing.T, dstURI string) *mirrorEnv {
	t.Helper()
	ctx := context.Background()
	e := &mirrorEnv{t: t, path: "/repository/" + owner + "/mirror/mirror"}
	e.src = testregistry.Start(t, "sqlite:///"+filepath.Join(t.TempDir(), "src.db"), nil)
	e.src.CreateUser(t, srcUser, srcPass)
	e.sp = newPusher(t, e.src, srcRepo, srcUser, srcPass)
	e.dst = testregistry.Start(t, dstURI, func(s *server.Settings) {
		s.RepoMirror, s.RepoMirrorInterval, s.DatabaseSecretKey = true, 1<<40, testSecretKey
	})
	e.st = e.dst.Srv.Store
	ou := e.dst.CreateUser(t, owner, ownerPass)
	robot, _, err := e.dst.Srv.Auth.CreateRobot(ctx, ou.ID, "mirror", "mirror robot")
	if err != nil {
		t.Fatal(err)
	}
	e.robot = robot.Username
	if e.repo, err = e.st.CreateRepository(ctx, ou.ID, "mirror", false, ou.ID); err != nil {
		t.Fatal(err)
	}
	if e.key, err = encfield.DeriveKey(testSecretKey); err != nil {
		t.Fatal(err)
	}
	return e
}

// create posts the mirror configuration: ref is host:port/ns/repo, extra
// overrides or adds body fields.
func (e *mirrorEnv) create(ref string, globs []string, extra map[string]any) {
	e.t.Helper()
	body := map[string]any{
		"is_enabled": true, "external_reference": ref,
		"external_registry_username": srcUser, "external_registry_password": srcPass,
		"sync_interval": 3600, "sync_start_date": "2000-01-01T00:00:00Z",
		"root_rule":      map[string]any{"rule_kind": "tag_glob_csv", "rule_value": globs},
		"robot_username": e.robot, "skopeo_timeout_interval": 300,
		"external_registry_config": map[string]any{"verify_tls": false},
	}
	for k, v := range extra {
		body[k] = v
	}
	if code, m := apiCall(e.t, e.dst, owner, ownerPass, "POST", e.path, body); code != 201 {
		e.t.Fatalf("create mirror: %d %v", code, m)
	}
}

// update changes the configuration (partial PUT) and asks for a sync.
func (e *mirrorEnv) update(fields map[string]any) {
	e.t.Helper()
	if code, m := apiCall(e.t, e.dst, owner, ownerPass, "PUT", e.path, fields); code != 201 {
		e.t.Fatalf("PUT mirror %v: %d %v", fields, code, m)
	}
	e.syncNow()
}

func (e *mirrorEnv) syncNow() {
	e.t.Helper()
	if code, m := apiCall(e.t, e.dst, owner, ownerPass, "POST", e.path+"/sync-now", nil); code != 204 {
		e.t.Fatalf("sync-now: %d %v", code, m)
	}
}

func (e *mirrorEnv) status() map[string]any {
	e.t.Helper()
	_, v := apiCall(e.t, e.dst, owner, ownerPass, "GET", e.path, nil)
	return v
}

func (e *mirrorEnv) syncer(opts mirror.Options) *mirror.Syncer {
	opts.Location, opts.EncryptionKey = "default", e.key
	return mirror.New(e.st, e.dst.Srv.Storage["default"], opts)
}

// runOnce runs one pass, which must claim the mirror, and returns the
// resulting status view.
func (e *mirrorEnv) runOnce(s *mirror.Syncer) map[string]any {
	e.t.Helper()
	if n, _ := s.RunOnce(context.Background()); n != 1 {
		e.t.Fatalf("RunOnce claimed %d mirrors, want 1 (status %v)", n, e.status())
	}
	return e.status()
}

// snapshot is tag -> digest of the mirror.
func (e *mirrorEnv) snapshot() map[string]string {
	e.t.Helper()
	out := map[string]string{}
	for _, tag := range tagsOf(e.t, e.st, e.repo.ID) {
		out[tag] = digestOf(e.t, e.st, e.repo.ID, tag)
	}
	return out
}

// logs returns the mirror's audit entries of kind.
func (e *mirrorEnv) logs(kind string) []store.LogRecord {
	e.t.Helper()
	l, err := e.st.Logs(context.Background(), store.LogQuery{RepositoryID: e.repo.ID, Kind: kind, Limit: 100})
	if err != nil {
		e.t.Fatal(err)
	}
	return l
}

// faulty is a reverse proxy in front of a source registry that breaks
// chosen blobs: "missing" answers 404 BLOB_UNKNOWN, "corrupt" serves the
// right length of wrong bytes.
type faulty struct {
	mu    sync.Mutex
	modes map[string]string // blob digest -> "missing" | "corrupt"
	hits  map[string]int
}

func newFaulty(t *testing.T, src *testregistry.Registry) (*faulty, string) {
	u, _ := url.Parse(src.URL)
	f := &faulty{modes: map[string]string{}, hits: map[string]int{}}
	proxy := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		var mode, dgst string
		for d, m := range f.modes {
			if strings.HasSuffix(r.URL.Path, "/blobs/"+d) {
				mode, dgst = m, d
				f.hits[d]++
			}
		}
		f.mu.Unlock()
		switch mode {
		case "missing":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprintf(w, `{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown to registry","detail":%q}]}`, dgst)
		case "corrupt":
			rec := httptest.NewRecorder()
			proxy.ServeHTTP(rec, r)
			b := rec.Body.Bytes()
			for i := range b {
				b[i] ^= 0xff
			}
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Header().Set("Content-Length", fmt.Sprint(len(b)))
			w.WriteHeader(rec.Code)
			_, _ = w.Write(b)
		default:
			proxy.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return f, strings.TrimPrefix(srv.URL, "http://")
}

func (f *faulty) set(digest, mode string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.modes[digest] = mode
}

// TestMirrorRollback runs a sync in which two tags fail (one layer
// corrupt, one missing at the source) while others succeed, with
// REPO_MIRROR_ROLLBACK on and off: with it the mirror is exactly as
// before; without it the good tags moved, appeared or went away and the
// bad ones did not. Both end FAIL with every failed tag in the reason.
func TestMirrorRollback(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two registries")
	}
	for _, tc := range []struct {
		name     string
		rollback bool
		uri      func() string
	}{
		{"rollback/sqlite", true, func() string { return "sqlite:///" + filepath.Join(t.TempDir(), "quay.db") }},
		{"best effort/sqlite", false, func() string { return "sqlite:///" + filepath.Join(t.TempDir(), "quay.db") }},
		{"rollback/postgresql", true, func() string { return testpg.NewDatabase(t) }},
		{"best effort/postgresql", false, func() string { return testpg.NewDatabase(t) }},
	} {
		t.Run(tc.name, func(t *testing.T) { testMirrorRollback(t, tc.uri(), tc.rollback) })
	}
}

func testMirrorRollback(t *testing.T, dstURI string, rollback bool) {
	e := newMirrorEnv(t, dstURI)
	push := func(layer, tag string) string {
		t.Helper()
		d, err := e.sp.image("amd64", layer, tag)
		if err != nil {
			t.Fatalf("push %s: %v", tag, err)
		}
		return d.Digest.String()
	}
	for _, tag := range []string{"v1", "v2", "v9"} {
		push(tag+" layer", tag)
	}
	fp, addr := newFaulty(t, e.src)
	e.create(addr+"/"+srcRepo, []string{"v*"}, nil)
	syncer := e.syncer(mirror.Options{Rollback: rollback})
	if v := e.runOnce(syncer); v["sync_status"] != "SUCCESS" {
		t.Fatalf("first sync: %v", v)
	}
	before := e.snapshot()
	if len(before) != 3 {
		t.Fatalf("after the first sync the mirror has %v", before)
	}

	// At the source: v1 moves (good), v2 moves onto a layer served corrupt,
	// v3 appears (good), v4 appears with a layer the source lost, and v9
	// is deleted.
	newV1 := push("v1 moved layer", "v1")
	oldV2 := before["v2"]
	push("v2 corrupt layer", "v2")
	newV3 := push("v3 layer", "v3")
	push("v4 missing layer", "v4")
	if code, m := apiCall(t, e.src, srcUser, srcPass, "DELETE", "/repository/"+srcRepo+"/tag/v9", nil); code != 204 {
		t.Fatalf("delete v9 at the source: %d %v", code, m)
	}
	corrupt := blobDigest("v2 corrupt layer")
	missing := blobDigest("v4 missing layer")
	fp.set(corrupt, "corrupt")
	fp.set(missing, "missing")

	e.syncNow()
	v := e.runOnce(syncer)
	reason := fmt.Sprint(v["last_error"])
	if v["sync_status"] != "FAIL" {
		t.Fatalf("status after the partly failed sync: %v", v)
	}
	for _, want := range []string{"2 of 4 tags failed", "v2: ", "does not match its digest", "v4: ", "404"} {
		if !strings.Contains(reason, want) {
			t.Errorf("last_error %q does not contain %q", reason, want)
		}
	}
	if rollback != strings.Contains(reason, "nothing changed (REPO_MIRROR_ROLLBACK)") || rollback == strings.Contains(reason, "PARTIAL SYNC") {
		t.Errorf("rollback %v, last_error %q", rollback, reason)
	}
	fp.mu.Lock()
	hits := fp.hits[corrupt] * fp.hits[missing]
	fp.mu.Unlock()
	if hits == 0 {
		t.Fatal("the broken blobs were not requested")
	}

	got := e.snapshot()
	want := before
	if !rollback {
		want = map[string]string{"v1": newV1, "v2": oldV2, "v3": newV3}
	}
	if !mapsEqual(got, want) {
		t.Errorf("tags after the failed sync (rollback %v):\n got %v\nwant %v", rollback, got, want)
	}
	// Nothing of the bad blobs is kept: not in the database, no upload left.
	for _, d := range []string{corrupt, missing} {
		if _, err := e.st.RepositoryBlob(context.Background(), e.repo.ID, d); err == nil {
			t.Errorf("blob %s is linked to the mirror", d)
		}
	}
	if left := uploadsLeft(t, e.dst); len(left) > 0 {
		t.Errorf("partial uploads left in storage: %v", left)
	}

	// Audit: one entry per tag of this sync, then the sync's failure.
	tagOK, tagBad := tagNames(e.logs("repo_mirror_sync_tag_success")), tagNames(e.logs("repo_mirror_sync_tag_failed"))
	if w := []string{"v1", "v1", "v2", "v3", "v9"}; !slices.Equal(tagOK, w) {
		t.Errorf("repo_mirror_sync_tag_success tags %v, want %v (both syncs)", tagOK, w)
	}
	if w := []string{"v2", "v4"}; !slices.Equal(tagBad, w) {
		t.Errorf("repo_mirror_sync_tag_failed tags %v, want %v", tagBad, w)
	}
	for _, l := range e.logs("repo_mirror_sync_tag_failed") {
		msg := fmt.Sprint(l.Metadata["message"])
		if l.Metadata["verb"] != "finish" || !strings.HasPrefix(msg, "Source 'docker://"+addr+"/"+srcRepo+":") || !strings.HasSuffix(msg, "' failed to sync") || l.Metadata["error"] == "" {
			t.Errorf("tag failure entry %v", l.Metadata)
		}
	}
	if f := e.logs("repo_mirror_sync_failed"); len(f) != 1 || !strings.Contains(fmt.Sprint(f[0].Metadata["error"]), "2 of 4 tags failed") {
		t.Errorf("repo_mirror_sync_failed entries: %v", f)
	}

	// Once the source serves everything again, the next sync completes.
	fp.set(corrupt, "")
	fp.set(missing, "")
	e.syncNow()
	if v := e.runOnce(syncer); v["sync_status"] != "SUCCESS" {
		t.Fatalf("sync after the repair: %v", v)
	}
	if got := tagsOf(t, e.st, e.repo.ID); !slices.Equal(got, []string{"v1", "v2", "v3", "v4"}) {
		t.Errorf("tags after the repair = %v", got)
	}
}

func blobDigest(content string) string {
	return digest.FromString(content).String()
}

func tagNames(entries []store.LogRecord) []string {
	var out []string
	for _, l := range entries {
		out = append(out, fmt.Sprint(l.Metadata["tag"]))
	}
	slices.Sort(out)
	return out
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
