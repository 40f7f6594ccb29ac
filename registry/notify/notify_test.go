package notify

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quayctl/quayctl/internal/testpg"
	"github.com/quayctl/quayctl/registry/store"
)

func TestMain(m *testing.M) { testpg.Main(m) }

var dialects = map[string]func(t *testing.T) string{
	"sqlite":     func(t *testing.T) string { return "sqlite:///" + filepath.Join(t.TempDir(), "quay.db") },
	"postgresql": func(t *testing.T) string { return testpg.NewDatabase(t) },
}

func forEachDialect(t *testing.T, fn func(t *testing.T, uri string)) {
	for _, name := range []string{"sqlite", "postgresql"} {
		t.Run(name, func(t *testing.T) { fn(t, dialects[name](t)) })
	}
}

func open(t *testing.T, uri string) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), uri)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	db.SetLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := db.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return db
}

// world is a database with user alice, organisation acme (team devs with
// bob and carol; alice in owners) and repositories alice/app and acme/lib.
type world struct {
	db                *store.DB
	alice, acme       *store.User
	aliceApp, acmeLib *store.Repository
}

func newWorld(t *testing.T, uri string) *world {
	t.Helper()
	ctx := context.Background()
	db := open(t, uri)
	mk := func(name string) *store.User {
		u, err := db.CreateUser(ctx, store.NewUser{Username: name, Email: name + "@example.com"})
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	w := &world{db: db, alice: mk("alice")}
	bob, carol := mk("bob"), mk("carol")
	var err error
	if w.acme, err = db.CreateOrganization(ctx, "acme", "", w.alice.ID); err != nil {
		t.Fatal(err)
	}
	team, err := db.CreateTeam(ctx, w.acme.ID, "devs", store.TeamRoleMember, "")
	if err != nil {
		t.Fatal(err)
	}
	bot, err := db.CreateUser(ctx, store.NewUser{Username: "acme+bot", Robot: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []*store.User{bob, carol, bot} {
		if err := db.AddTeamMember(ctx, team.ID, u.ID); err != nil {
			t.Fatal(err)
		}
	}
	if w.aliceApp, err = db.CreateRepository(ctx, w.alice.ID, "app", false, w.alice.ID); err != nil {
		t.Fatal(err)
	}
	if w.acmeLib, err = db.CreateRepository(ctx, w.acme.ID, "lib", false, w.alice.ID); err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *world) notification(t *testing.T, repo *store.Repository, event, method string, config any) *store.RepoNotification {
	t.Helper()
	b, _ := json.Marshal(config)
	n, err := w.db.CreateRepoNotification(context.Background(), store.NewRepoNotification{RepositoryID: repo.ID, Event: event, Method: method, ConfigJSON: string(b)})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// receiver is a real HTTP server on 127.0.0.2 (127.0.0.1 and localhost
// are refused for webhooks, as in Quay) answering status.
type receiver struct {
	*httptest.Server
	mu     sync.Mutex
	bodies []map[string]any
	status int
}

func newReceiver(t *testing.T, status int) *receiver {
	t.Helper()
	rc := &receiver{status: status}
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("cannot listen on 127.0.0.2: %v", err)
	}
	rc.Server = &httptest.Server{Listener: ln, Config: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m map[string]any
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("receiver got a bad request: %v, content type %q", err, r.Header.Get("Content-Type"))
		}
		rc.mu.Lock()
		rc.bodies = append(rc.bodies, m)
		rc.mu.Unlock()
		w.WriteHeader(rc.status)
	})}}
	rc.Start()
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) got() []map[string]any {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]map[string]any(nil), rc.bodies...)
}

func newDispatcher(db *store.DB, opts Options) *Dispatcher {
	if opts.ServerHostname == "" {
		opts.ServerHostname = "quay.example.com"
	}
	opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	return NewDispatcher(db, opts)
}

// drain delivers until the queue has nothing available right now.
func drain(t *testing.T, d *Dispatcher) int {
	t.Helper()
	n := 0
	for {
		ok, err := d.DeliverOne(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return n
		}
		n++
	}
}

func TestWebhookRepoPush(t *testing.T) {
	forEachDialect(t, func(t *testing.T, uri string) {
		ctx := context.Background()
		w := newWorld(t, uri)
		rc := newReceiver(t, http.StatusOK)
		n := w.notification(t, w.aliceApp, RepoPush, "webhook", map[string]any{"url": rc.URL + "/hook"})
		w.notification(t, w.aliceApp, QuotaWarning, "webhook", map[string]any{"url": rc.URL + "/other"})
		d := newDispatcher(w.db, Options{Scheme: "https"})
		if err := d.Emit(ctx, Event{Kind: RepoPush, RepositoryID: w.aliceApp.ID, Namespace: "alice", Repository: "app",
			Data: map[string]any{"updated_tags": []string{"latest"}}}); err != nil {
			t.Fatal(err)
		}
		// An event nobody subscribed to queues nothing.
		if err := d.Emit(ctx, Event{Kind: MirrorSyncFailed, RepositoryID: w.aliceApp.ID, Namespace: "alice", Repository: "app"}); err != nil {
			t.Fatal(err)
		}
		if got := drain(t, d); got != 1 {
			t.Fatalf("delivered %d items, want 1", got)
		}
		bodies := rc.got()
		if len(bodies) != 1 {
			t.Fatalf("receiver got %d requests", len(bodies))
		}
		want := map[string]any{"repository": "alice/app", "namespace": "alice", "name": "app",
			"docker_url": "quay.example.com/alice/app", "homepage": "https://quay.example.com/repository/alice/app"}
		for k, v := range want {
			if bodies[0][k] != v {
				t.Errorf("payload %s = %v, want %v", k, bodies[0][k], v)
			}
		}
		if tags, _ := bodies[0]["updated_tags"].([]any); len(tags) != 1 || tags[0] != "latest" {
			t.Errorf("updated_tags = %v", bodies[0]["updated_tags"])
		}
		if got, _ := w.db.RepoNotificationByUUID(ctx, n.UUID); got.NumberOfFailures != 0 || got.LastRanMs == nil {
			t.Errorf("after delivery: %+v", got)
		}
		// A test delivery sends the sample payload.
		if err := d.QueueTest(ctx, n); err != nil {
			t.Fatal(err)
		}
		drain(t, d)
		if b := rc.got(); len(b) != 2 || b[1]["pruned_image_count"] != float64(3) {
			t.Errorf("test delivery = %v", b)
		}
	})
}

func TestWebhookFailuresStopAtLimit(t *testing.T) {
	forEachDialect(t, func(t *testing.T, uri string) {
		ctx := context.Background()
		w := newWorld(t, uri)
		rc := newReceiver(t, http.StatusInternalServerError)
		n := w.notification(t, w.aliceApp, RepoPush, "webhook", map[string]any{"url": rc.URL})
		d := newDispatcher(w.db, Options{RetryAfter: 20 * time.Millisecond})
		if err := d.Emit(ctx, Event{Kind: RepoPush, RepositoryID: w.aliceApp.ID, Namespace: "alice", Repository: "app"}); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(20 * time.Second)
		for {
			drain(t, d)
			if p, _ := w.db.PendingNotifications(ctx); p == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the failing delivery is still queued")
			}
			time.Sleep(10 * time.Millisecond)
		}
		if got := len(rc.got()); got != store.NotificationFailureLimit {
			t.Errorf("receiver called %d times, want %d", got, store.NotificationFailureLimit)
		}
		got, _ := w.db.RepoNotificationByUUID(ctx, n.UUID)
		if got.NumberOfFailures != store.NotificationFailureLimit {
			t.Errorf("number_of_failures = %d", got.NumberOfFailures)
		}
		// Disabled: new events are not even queued, until reset.
		_ = d.Emit(ctx, Event{Kind: RepoPush, RepositoryID: w.aliceApp.ID, Namespace: "alice", Repository: "app"})
		if p, _ := w.db.PendingNotifications(ctx); p != 0 {
			t.Errorf("disabled notification queued %d items", p)
		}
		if err := w.db.ResetRepoNotificationFailures(ctx, n.UUID); err != nil {
			t.Fatal(err)
		}
		_ = d.Emit(ctx, Event{Kind: RepoPush, RepositoryID: w.aliceApp.ID, Namespace: "alice", Repository: "app"})
		if p, _ := w.db.PendingNotifications(ctx); p != 1 {
			t.Errorf("after reset: %d queued, want 1", p)
		}
	})
}

func TestQuayNotificationTargets(t *testing.T) {
	forEachDialect(t, func(t *testing.T, uri string) {
		ctx := context.Background()
		w := newWorld(t, uri)
		w.notification(t, w.acmeLib, RepoPush, "quay_notification", map[string]any{"target": map[string]any{"kind": "team", "name": "devs"}})
		w.notification(t, w.acmeLib, RepoPush, "quay_notification", map[string]any{"target": map[string]any{"kind": "org", "name": "acme"}})
		w.notification(t, w.aliceApp, MirrorSyncFailed, "quay_notification", map[string]any{"target": map[string]any{"kind": "user", "name": "alice"}})
		d := newDispatcher(w.db, Options{})
		for _, ev := range []Event{
			{Kind: RepoPush, RepositoryID: w.acmeLib.ID, Namespace: "acme", Repository: "lib", Data: map[string]any{"updated_tags": []string{"v1"}}},
			{Kind: MirrorSyncFailed, RepositoryID: w.aliceApp.ID, Namespace: "alice", Repository: "app", Data: map[string]any{"message": "quay.io/x/y"}},
		} {
			if err := d.Emit(ctx, ev); err != nil {
				t.Fatal(err)
			}
		}
		if got := drain(t, d); got != 3 {
			t.Fatalf("delivered %d, want 3", got)
		}
		want := map[string][]string{
			"alice":    {"repo_mirror_sync_failed", "repo_push"}, // own, and acme's (alice is in owners)
			"bob":      {"repo_push"},
			"carol":    {"repo_push"},
			"acme+bot": nil, // robots get no in-app notifications
		}
		for name, kinds := range want {
			u, _ := w.db.UserByName(ctx, name)
			got, err := w.db.UserNotifications(ctx, u.ID, "", false)
			if err != nil {
				t.Fatal(err)
			}
			var gotKinds []string
			for _, n := range got {
				gotKinds = append(gotKinds, n.Kind)
			}
			if len(gotKinds) != len(kinds) {
				t.Errorf("%s sees %v, want %v", name, gotKinds, kinds)
			}
		}
	})
}

func TestValidate(t *testing.T) {
	w := newWorld(t, dialects["sqlite"](t))
	d := newDispatcher(w.db, Options{HostnameBlacklist: []string{"Internal.Example", " 10.0.0.7 "}})
	withMail := newDispatcher(w.db, Options{Mail: &Mail{Server: "smtp.example.com"}})
	tests := []struct {
		name          string
		d             *Dispatcher
		ns            string
		event, method string
		config        map[string]any
		wantErr       string // "" valid
	}{
		{"webhook", d, "alice", RepoPush, "webhook", map[string]any{"url": "https://hooks.example.com/x"}, ""},
		{"unknown event", d, "alice", "repo_pull", "webhook", map[string]any{"url": "https://h.example.com"}, `unknown event "repo_pull"`},
		{"unknown method", d, "alice", RepoPush, "pager", nil, `unknown method "pager"`},
		{"webhook without url", d, "alice", RepoPush, "webhook", map[string]any{}, "missing webhook URL"},
		{"webhook ftp", d, "alice", RepoPush, "webhook", map[string]any{"url": "ftp://h.example.com/x"}, "must be an http:// or https:// URL"},
		{"webhook localhost", d, "alice", RepoPush, "webhook", map[string]any{"url": "http://localhost:8080/x"}, "host localhost is not allowed"},
		{"webhook blacklisted", d, "alice", RepoPush, "webhook", map[string]any{"url": "http://INTERNAL.example/x"}, "is not allowed"},
		{"webhook blacklisted address", d, "alice", RepoPush, "webhook", map[string]any{"url": "https://10.0.0.7:8443/x"}, "host 10.0.0.7 is not allowed"},
		{"webhook 127.0.0.1 with a list", d, "alice", RepoPush, "webhook", map[string]any{"url": "http://127.0.0.1/x"}, "is not allowed"},
		{"webhook other host", d, "alice", RepoPush, "webhook", map[string]any{"url": "http://internal.example.org/x"}, ""},
		{"webhook template", d, "alice", RepoPush, "webhook", map[string]any{"url": "http://h.example.com", "template": "{}"}, "templates"},
		{"slack", d, "alice", QuotaError, "slack", map[string]any{"url": "https://hooks.slack.com/services/T/B/secret"}, ""},
		{"slack without url", d, "alice", QuotaError, "slack", nil, "missing Slack URL"},
		{"user target", d, "alice", RepoPush, "quay_notification", map[string]any{"target": map[string]any{"kind": "user", "name": "bob"}}, ""},
		{"unknown user", d, "alice", RepoPush, "quay_notification", map[string]any{"target": map[string]any{"kind": "user", "name": "nobody"}}, "unknown user nobody"},
		{"org as user", d, "alice", RepoPush, "quay_notification", map[string]any{"target": map[string]any{"kind": "user", "name": "acme"}}, "unknown user acme"},
		{"team", d, "acme", RepoPush, "quay_notification", map[string]any{"target": map[string]any{"kind": "team", "name": "devs"}}, ""},
		{"unknown team", d, "acme", RepoPush, "quay_notification", map[string]any{"target": map[string]any{"kind": "team", "name": "ops"}}, "unknown team ops"},
		{"org of another namespace", d, "alice", RepoPush, "quay_notification", map[string]any{"target": map[string]any{"kind": "org", "name": "acme"}}, "must match"},
		{"no target", d, "alice", RepoPush, "quay_notification", map[string]any{}, "missing target"},
		{"email without mail", d, "alice", RepoPush, "email", map[string]any{"email": "a@example.com"}, "configure"},
		{"email", withMail, "alice", RepoPush, "email", map[string]any{"email": "a@example.com"}, ""},
		{"email missing address", withMail, "alice", RepoPush, "email", map[string]any{}, "missing e-mail address"},
		{"hipchat", d, "alice", RepoPush, "hipchat", map[string]any{}, "retired"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.d.Validate(context.Background(), tc.ns, tc.event, tc.method, tc.config)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) || !contains(ve.Msg, tc.wantErr) {
				t.Fatalf("err = %v, want a ValidationError containing %q", err, tc.wantErr)
			}
			if contains(ve.Msg, "secret") {
				t.Errorf("message shows the URL's secret: %s", ve.Msg)
			}
		})
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func TestSlackPayload(t *testing.T) {
	w := newWorld(t, dialects["sqlite"](t))
	rc := newReceiver(t, http.StatusOK)
	w.notification(t, w.aliceApp, MirrorSyncFailed, "slack", map[string]any{"url": rc.URL + "/services/T/B/secret"})
	d := newDispatcher(w.db, Options{})
	if err := d.Emit(context.Background(), Event{Kind: MirrorSyncFailed, RepositoryID: w.aliceApp.ID, Namespace: "alice", Repository: "app",
		Data: map[string]any{"message": "quay.io/coreos/etcd"}}); err != nil {
		t.Fatal(err)
	}
	drain(t, d)
	b := rc.got()
	if len(b) != 1 {
		t.Fatalf("slack got %d messages", len(b))
	}
	if b[0]["text"] != "Repository Mirror failed for quay.io/coreos/etcd" || b[0]["username"] != "quayiobot" {
		t.Errorf("slack message = %v", b[0])
	}
	att, _ := b[0]["attachments"].([]any)
	if len(att) != 1 || att[0].(map[string]any)["color"] != "danger" {
		t.Errorf("attachments = %v", b[0]["attachments"])
	}
}

// TestTwoWorkersDeliverOnce: two dispatchers on separate connections to
// one database, running their worker loops, deliver each item once.
func TestTwoWorkersDeliverOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	forEachDialect(t, func(t *testing.T, uri string) {
		ctx := context.Background()
		w := newWorld(t, uri)
		rc := newReceiver(t, http.StatusOK)
		w.notification(t, w.aliceApp, RepoPush, "webhook", map[string]any{"url": rc.URL})
		w.notification(t, w.aliceApp, RepoPush, "webhook", map[string]any{"url": rc.URL})
		const pushes = 15
		for i := 0; i < pushes; i++ {
			if err := newDispatcher(w.db, Options{}).Emit(ctx, Event{Kind: RepoPush, RepositoryID: w.aliceApp.ID,
				Namespace: "alice", Repository: "app", Data: map[string]any{"updated_tags": []string{"t" + string(rune('a'+i))}}}); err != nil {
				t.Fatal(err)
			}
		}
		wctx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		for i := 0; i < 2; i++ {
			d := newDispatcher(open(t, uri), Options{Poll: 10 * time.Millisecond})
			wg.Add(1)
			go func() { defer wg.Done(); d.Run(wctx) }()
		}
		deadline := time.Now().Add(30 * time.Second)
		for len(rc.got()) < 2*pushes && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(100 * time.Millisecond) // a duplicate would show up by now
		cancel()
		wg.Wait()
		seen := map[string]int{}
		for _, b := range rc.got() {
			tags, _ := json.Marshal(b["updated_tags"])
			seen[string(tags)]++
		}
		if len(seen) != pushes {
			t.Errorf("%d distinct pushes delivered, want %d", len(seen), pushes)
		}
		for tags, n := range seen {
			if n != 2 {
				t.Errorf("push %s delivered %d times, want 2 (one per notification)", tags, n)
			}
		}
	})
}

// TestWebhookBlacklistAtDelivery: a webhook created before its host was
// added to WEBHOOK_HOSTNAME_BLACKLIST is refused when delivered, counted
// as a failure, and the host is never contacted.
func TestWebhookBlacklistAtDelivery(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, dialects["sqlite"](t))
	rc := newReceiver(t, http.StatusOK) // 127.0.0.2
	n := w.notification(t, w.aliceApp, RepoPush, "webhook", map[string]any{"url": rc.URL + "/hook"})
	tests := []struct {
		name         string
		blacklist    []string
		wantCalls    int
		wantFailures int
	}{
		{"allowed", nil, 1, 0},
		{"blacklisted since", []string{"127.0.0.2"}, 1, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := newDispatcher(w.db, Options{HostnameBlacklist: tc.blacklist, RetryAfter: time.Hour})
			if err := d.Emit(ctx, Event{Kind: RepoPush, RepositoryID: w.aliceApp.ID, Namespace: "alice", Repository: "app"}); err != nil {
				t.Fatal(err)
			}
			drain(t, d)
			if got := len(rc.got()); got != tc.wantCalls {
				t.Errorf("receiver called %d times in all, want %d", got, tc.wantCalls)
			}
			got, err := w.db.RepoNotificationByUUID(ctx, n.UUID)
			if err != nil {
				t.Fatal(err)
			}
			if got.NumberOfFailures != tc.wantFailures {
				t.Errorf("number_of_failures = %d, want %d", got.NumberOfFailures, tc.wantFailures)
			}
		})
	}
}
