package mirror_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/quayctl/quayctl/internal/testpg"
	"github.com/quayctl/quayctl/internal/testregistry"
	"github.com/quayctl/quayctl/registry/encfield"
	"github.com/quayctl/quayctl/registry/mirror"
	"github.com/quayctl/quayctl/registry/notify"
	"github.com/quayctl/quayctl/registry/server"
	"github.com/quayctl/quayctl/registry/store"
)

// recorder is an Emitter that keeps what it is given (a real, if small,
// implementation of the seam: the delivery side is another package's).
type recorder struct {
	mu     sync.Mutex
	events []notify.Event
}

func (r *recorder) Emit(_ context.Context, ev notify.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
	return nil
}

func (r *recorder) take() []notify.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.events
	r.events = nil
	return out
}

func kinds(evs []notify.Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Kind)
	}
	return out
}

// throttle is a reverse proxy in front of the source registry that, while
// on, sends the first bytes of one blob and then trickles until the client
// goes away: a large, slow copy that only a cancel ends.
type throttle struct {
	on      atomic.Bool
	digest  string
	started chan struct{}
	once    sync.Once
	gone    chan struct{} // closed when the throttled client went away
	goneOne sync.Once
}

func newThrottle(t *testing.T, src *testregistry.Registry, digest string) (*throttle, string) {
	u, _ := url.Parse(src.URL)
	th := &throttle{digest: digest, started: make(chan struct{}), gone: make(chan struct{})}
	th.on.Store(true)
	proxy := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !th.on.Load() || r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, "/blobs/"+digest) {
			proxy.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(make([]byte, 64<<10))
		w.(http.Flusher).Flush()
		th.once.Do(func() { close(th.started) })
		tk := time.NewTicker(50 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-r.Context().Done():
				th.goneOne.Do(func() { close(th.gone) })
				return
			case <-tk.C:
				if _, err := w.Write(make([]byte, 16)); err != nil {
					th.goneOne.Do(func() { close(th.gone) })
					return
				}
				w.(http.Flusher).Flush()
			}
		}
	}))
	t.Cleanup(srv.Close)
	return th, strings.TrimPrefix(srv.URL, "http://")
}

// bigImage pushes an image whose one layer is size random bytes.
func (p *pusher) bigImage(size int, tag string) (ocispec.Descriptor, ocispec.Descriptor, ocispec.Manifest) {
	b := make([]byte, size)
	_, _ = rand.Read(b)
	cfg, err := p.blob([]byte(`{"architecture":"amd64","os":"linux","big":true}`), ocispec.MediaTypeImageConfig)
	if err != nil {
		p.t.Fatal(err)
	}
	l, err := p.blob(b, ocispec.MediaTypeImageLayer)
	if err != nil {
		p.t.Fatal(err)
	}
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: cfg, Layers: []ocispec.Descriptor{l}}
	m.SchemaVersion = 2
	d, err := p.manifest(m, ocispec.MediaTypeImageManifest, tag)
	if err != nil {
		p.t.Fatal(err)
	}
	return d, l, m
}

const testSecretKey = "mirror-test-database-secret-key"

// TestMirrorCancelDuringSync cancels a sync while it copies a large blob
// from a slow source: the worker stops promptly, the status is CANCEL, no
// tag moved or appeared (with and without REPO_MIRROR_ROLLBACK), and a
// later sync-now completes. The notifications of each sync are checked on
// the way: started, then success or failed with Quay's message, never the
// password.
func TestMirrorCancelDuringSync(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two registries")
	}
	for _, tc := range []struct {
		name     string
		rollback bool
		uri      func() string
	}{
		{"best effort/sqlite", false, func() string { return "sqlite:///" + filepath.Join(t.TempDir(), "quay.db") }},
		{"rollback/sqlite", true, func() string { return "sqlite:///" + filepath.Join(t.TempDir(), "quay.db") }},
		{"best effort/postgresql", false, func() string { return testpg.NewDatabase(t) }},
	} {
		t.Run(tc.name, func(t *testing.T) { testMirrorCancel(t, tc.uri(), tc.rollback) })
	}
}

func testMirrorCancel(t *testing.T, dstURI string, rollback bool) {
	ctx := context.Background()
	src := testregistry.Start(t, "sqlite:///"+filepath.Join(t.TempDir(), "src.db"), nil)
	src.CreateUser(t, srcUser, srcPass)
	sp := newPusher(t, src, srcRepo, srcUser, srcPass)
	old, err := sp.image("amd64", "v1 layer", "v1")
	if err != nil {
		t.Fatal(err)
	}

	dst := testregistry.Start(t, dstURI, func(s *server.Settings) {
		s.RepoMirror, s.RepoMirrorInterval, s.DatabaseSecretKey = true, 1<<40, testSecretKey
	})
	st := dst.Srv.Store
	ou := dst.CreateUser(t, owner, ownerPass)
	robot, _, err := dst.Srv.Auth.CreateRobot(ctx, ou.ID, "mirror", "mirror robot")
	if err != nil {
		t.Fatal(err)
	}
	repo, err := st.CreateRepository(ctx, ou.ID, "mirror", false, ou.ID)
	if err != nil {
		t.Fatal(err)
	}

	// The slow blob is pushed now but only tagged after the first sync.
	big, layer, bigManifest := sp.bigImage(4<<20, "")
	th, proxyAddr := newThrottle(t, src, layer.Digest.String())
	ref := proxyAddr + "/" + srcRepo
	path := "/repository/" + owner + "/mirror/mirror"
	body := map[string]any{
		"is_enabled": true, "external_reference": ref,
		"external_registry_username": srcUser, "external_registry_password": srcPass,
		"sync_interval": 3600, "sync_start_date": "2000-01-01T00:00:00Z",
		"root_rule":      map[string]any{"rule_kind": "tag_glob_csv", "rule_value": []string{"v*"}},
		"robot_username": robot.Username, "skopeo_timeout_interval": 300,
		"external_registry_config": map[string]any{"verify_tls": false},
	}
	if code, m := apiCall(t, dst, owner, ownerPass, "POST", path, body); code != 201 {
		t.Fatalf("create mirror: %d %v", code, m)
	}
	key, err := encfield.DeriveKey(testSecretKey)
	if err != nil {
		t.Fatal(err)
	}
	// The API stored the credentials encrypted with DATABASE_SECRET_KEY.
	cfg, err := st.MirrorByRepository(ctx, repo.ID)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(cfg.Password, srcPass) || strings.Contains(cfg.Username, srcUser) {
		t.Fatal("the source credentials are stored in plain text")
	}
	if p, err := encfield.Decrypt(key, cfg.Password); err != nil || p != srcPass {
		t.Fatalf("the stored password does not decrypt with DATABASE_SECRET_KEY: %v", err)
	}
	rec := &recorder{}
	syncer := mirror.New(st, dst.Srv.Storage["default"], mirror.Options{Location: "default", EncryptionKey: key,
		Rollback: rollback, CancelPoll: 50 * time.Millisecond, Notifier: rec})
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
	message := fmt.Sprintf("'%s' with tag pattern 'v*'", ref)
	wantEvents := func(what string, want ...string) []notify.Event {
		t.Helper()
		evs := rec.take()
		if !slices.Equal(kinds(evs), want) {
			t.Fatalf("%s: notification events %v, want %v", what, kinds(evs), want)
		}
		for _, e := range evs {
			if e.RepositoryID != repo.ID || e.Namespace != owner || e.Repository != "mirror" {
				t.Errorf("%s: event %s names %d %s/%s", what, e.Kind, e.RepositoryID, e.Namespace, e.Repository)
			}
			msg, _ := e.Data["message"].(string)
			if !strings.HasPrefix(msg, message) {
				t.Errorf("%s: %s message %q, want it to start with %q", what, e.Kind, msg, message)
			}
			if strings.Contains(fmt.Sprint(e.Data), srcPass) {
				t.Errorf("%s: the source password is in the %s payload", what, e.Kind)
			}
		}
		return evs
	}

	// First sync: v1 at the old digest.
	if n, err := syncer.RunOnce(ctx); n != 1 || err != nil {
		t.Fatalf("first RunOnce = %d, %v", n, err)
	}
	if digestOf(t, st, repo.ID, "v1") != old.Digest.String() {
		t.Fatal("v1 not mirrored")
	}
	evs := wantEvents("first sync", notify.MirrorSyncStarted, notify.MirrorSyncSuccess)
	if evs[1].Data["message"] != message {
		t.Errorf("success message %q, want %q", evs[1].Data["message"], message)
	}

	// At the source v1 moves and v2 appears (the big, slow one).
	moved, err := sp.image("amd64", "v1 moved layer", "v1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sp.manifest(bigManifest, ocispec.MediaTypeImageManifest, "v2"); err != nil {
		t.Fatal(err)
	}
	syncNow()
	done := make(chan error, 1)
	go func() {
		_, err := syncer.RunOnce(ctx)
		done <- err
	}()
	select {
	case <-th.started:
	case err := <-done:
		t.Fatalf("the sync ended before the slow blob started: %v (status %v)", err, status())
	case <-time.After(time.Minute):
		t.Fatal("the slow blob was never requested")
	}
	if v := status(); v["sync_status"] != "SYNCING" {
		t.Fatalf("status while copying: %v", v["sync_status"])
	}
	cancelled := time.Now()
	if code, m := apiCall(t, dst, owner, ownerPass, "POST", path+"/sync-cancel", nil); code != 204 {
		t.Fatalf("sync-cancel: %d %v", code, m)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("RunOnce after the cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the worker did not stop within 10s of the cancel")
	}
	if took := time.Since(cancelled); took > 5*time.Second {
		t.Errorf("the worker took %v to stop after the cancel", took)
	}
	select {
	case <-th.gone:
	case <-time.After(5 * time.Second):
		t.Error("the slow blob's download was not abandoned")
	}
	if v := status(); v["sync_status"] != "CANCEL" {
		t.Fatalf("status after the cancel: %v", v["sync_status"])
	}
	if got := tagsOf(t, st, repo.ID); !slices.Equal(got, []string{"v1"}) {
		t.Fatalf("tags after the cancel = %v, want [v1]", got)
	}
	if digestOf(t, st, repo.ID, "v1") != old.Digest.String() {
		t.Fatal("v1 moved although the sync was cancelled")
	}
	if left := uploadsLeft(t, dst); len(left) > 0 {
		t.Errorf("partial uploads left in storage: %v", left)
	}
	// Quay reports a cancelled sync as failed, with the verb Cancelled.
	if evs := wantEvents("cancelled sync", notify.MirrorSyncStarted, notify.MirrorSyncFailed); evs[1].Data["message"] != message {
		t.Errorf("cancel message %q, want %q", evs[1].Data["message"], message)
	}
	rows, err := st.Logs(ctx, store.LogQuery{RepositoryID: repo.ID, Kind: notify.MirrorSyncFailed, Limit: 1})
	if err != nil || len(rows) != 1 || rows[0].Metadata["verb"] != "Cancelled" || rows[0].Metadata["message"] != message {
		t.Errorf("audit entry of the cancel: %v, %v", rows, err)
	}
	if n, err := syncer.RunOnce(ctx); n != 0 || err != nil {
		t.Fatalf("RunOnce after the cancel = %d, %v; a cancelled mirror waits for sync-now", n, err)
	}

	// A later sync-now completes.
	th.on.Store(false)
	syncNow()
	if n, err := syncer.RunOnce(ctx); n != 1 || err != nil {
		t.Fatalf("RunOnce after sync-now = %d, %v", n, err)
	}
	if v := status(); v["sync_status"] != "SUCCESS" {
		t.Fatalf("status after the resumed sync: %v", v)
	}
	if got := tagsOf(t, st, repo.ID); !slices.Equal(got, []string{"v1", "v2"}) {
		t.Fatalf("tags after the resumed sync = %v", got)
	}
	if digestOf(t, st, repo.ID, "v1") != moved.Digest.String() || digestOf(t, st, repo.ID, "v2") != big.Digest.String() {
		t.Fatal("mirrored digests differ from the source")
	}
	wantEvents("resumed sync", notify.MirrorSyncStarted, notify.MirrorSyncSuccess)

	// A failing sync: repo_mirror_sync_failed with the reason after the
	// message, as Quay's worker sends it.
	if code, m := apiCall(t, dst, owner, ownerPass, "PUT", path, map[string]any{"external_registry_username": srcUser, "external_registry_password": "wrong-password-1"}); code != 201 {
		t.Fatalf("PUT credentials: %d %v", code, m)
	}
	syncNow()
	if n, _ := syncer.RunOnce(ctx); n != 1 {
		t.Fatalf("RunOnce with wrong credentials = %d", n)
	}
	evs = wantEvents("failed sync", notify.MirrorSyncStarted, notify.MirrorSyncFailed)
	msg := evs[1].Data["message"].(string)
	if !strings.HasPrefix(msg, message+": ") || !strings.Contains(strings.ToLower(msg), "unauthorized") {
		t.Errorf("failed message %q", msg)
	}
	if strings.Contains(msg, "wrong-password-1") {
		t.Error("the password is in the failure notification")
	}
}

// uploadsLeft lists the mirror's temporary upload files in local storage.
func uploadsLeft(t *testing.T, r *testregistry.Registry) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(r.Dir, "storage", "uploads"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "mirror-") {
			out = append(out, e.Name())
		}
	}
	return out
}
