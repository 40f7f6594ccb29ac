package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/quayctl/quayctl/registry/config"
	"github.com/quayctl/quayctl/registry/server"
	"github.com/quayctl/quayctl/registry/store"
)

// hookReceiver is a real HTTP server on 127.0.0.2 (the registry refuses
// webhooks to localhost and 127.0.0.1, as Quay does) recording the JSON
// it is sent and answering status.
type hookReceiver struct {
	*httptest.Server
	status int
	mu     sync.Mutex
	got    []map[string]any
}

func newHookReceiver(t *testing.T, status int) *hookReceiver {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("cannot listen on 127.0.0.2: %v", err)
	}
	h := &hookReceiver{status: status}
	h.Server = &httptest.Server{Listener: ln, Config: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m map[string]any
		_ = json.NewDecoder(r.Body).Decode(&m)
		h.mu.Lock()
		h.got = append(h.got, m)
		h.mu.Unlock()
		w.WriteHeader(h.status)
	})}}
	h.Start()
	t.Cleanup(h.Close)
	return h
}

func (h *hookReceiver) calls() []map[string]any {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]map[string]any(nil), h.got...)
}

// waitFor polls cond for up to 20 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// TestRepositoryNotifications drives notifications end to end on a live
// server: the API, a real push, the worker delivering to real receivers,
// retries and the failure limit, in-app notifications.
func TestRepositoryNotifications(t *testing.T) {
	for name, newDB := range dialects(t) {
		t.Run(name, func(t *testing.T) {
			reg := startRegistry(t, newDB(t), func(s *server.Settings) {
				s.Notifications = true
				s.NotificationPoll = 25 * time.Millisecond
				s.NotificationRetryAfter = 25 * time.Millisecond
			})
			reg.createUser(t, "alice", pw("alice"))
			reg.createUser(t, "bob", pw("bob"))
			alice := cred{user: "alice", pass: pw("alice")}
			bob := cred{user: "bob", pass: pw("bob")}
			if !pushImage(t, reg, alice, "alice/app", "v0") {
				t.Fatal("push alice/app:v0 refused")
			}
			ok := newHookReceiver(t, http.StatusOK)
			failing := newHookReceiver(t, http.StatusInternalServerError)
			base := "/repository/alice/app/notification/"

			// Bad input: every refusal says what to fix.
			bad := []struct {
				name string
				body any
				want string
			}{
				{"unknown event", map[string]any{"event": "repo_pull", "method": "webhook", "config": map[string]any{"url": ok.URL}, "eventConfig": map[string]any{}}, "unknown event"},
				{"unknown method", map[string]any{"event": "repo_push", "method": "pager", "config": map[string]any{}, "eventConfig": map[string]any{}}, "unknown method"},
				{"missing config", map[string]any{"event": "repo_push", "method": "webhook"}, "missing required fields"},
				{"config not an object", map[string]any{"event": "repo_push", "method": "webhook", "config": "x"}, "must be a JSON object"},
				{"ftp url", map[string]any{"event": "repo_push", "method": "webhook", "config": map[string]any{"url": "ftp://example.com/x"}}, "http:// or https://"},
				{"localhost", map[string]any{"event": "repo_push", "method": "webhook", "config": map[string]any{"url": "http://localhost:1/x"}}, "not allowed"},
				{"email without mail", map[string]any{"event": "repo_push", "method": "email", "config": map[string]any{"email": "a@example.com"}}, "MAIL_SERVER"},
				{"unknown user", map[string]any{"event": "repo_push", "method": "quay_notification", "config": map[string]any{"target": map[string]any{"kind": "user", "name": "nobody"}}}, "unknown user"},
			}
			for _, tc := range bad {
				code, m := api(t, reg, alice, http.MethodPost, base, tc.body)
				if msg, _ := m["error_message"].(string); code != http.StatusBadRequest || !strings.Contains(msg, tc.want) {
					t.Errorf("%s: %d %v, want 400 containing %q", tc.name, code, m, tc.want)
				}
			}
			// Only repository administrators may see or change notifications.
			if code, _ := api(t, reg, bob, http.MethodGet, base, nil); code != http.StatusForbidden {
				t.Errorf("bob lists alice's notifications: %d, want 403", code)
			}
			if code, _ := api(t, reg, cred{}, http.MethodGet, base, nil); code != http.StatusUnauthorized {
				t.Errorf("anonymous lists notifications: %d, want 401", code)
			}

			hook := mustAPI(t, reg, alice, http.StatusCreated, http.MethodPost, base, map[string]any{
				"event": "repo_push", "method": "webhook", "config": map[string]any{"url": ok.URL + "/hook"}, "eventConfig": map[string]any{}, "title": "CI"})
			if hook["event"] != "repo_push" || hook["method"] != "webhook" || hook["title"] != "CI" || hook["number_of_failures"] != float64(0) {
				t.Errorf("created = %v", hook)
			}
			hookID := hook["uuid"].(string)
			bad500 := mustAPI(t, reg, alice, http.StatusCreated, http.MethodPost, base, map[string]any{
				"event": "repo_push", "method": "webhook", "config": map[string]any{"url": failing.URL}, "eventConfig": map[string]any{}})
			badID := bad500["uuid"].(string)
			mustAPI(t, reg, alice, http.StatusCreated, http.MethodPost, base, map[string]any{
				"event": "repo_push", "method": "quay_notification", "config": map[string]any{"target": map[string]any{"kind": "user", "name": "bob"}}, "eventConfig": map[string]any{}})
			if l := mustAPI(t, reg, alice, http.StatusOK, http.MethodGet, base, nil); len(l["notifications"].([]any)) != 3 {
				t.Errorf("list = %v", l)
			}
			if g := mustAPI(t, reg, alice, http.StatusOK, http.MethodGet, base+hookID, nil); g["uuid"] != hookID {
				t.Errorf("get = %v", g)
			}

			// A real push by tag reaches the receiver with Quay's payload.
			if !pushImage(t, reg, alice, "alice/app", "v1") {
				t.Fatal("push alice/app:v1 refused")
			}
			waitFor(t, "the repo_push webhook", func() bool { return len(ok.calls()) >= 1 })
			p := ok.calls()[0]
			want := map[string]any{"repository": "alice/app", "namespace": "alice", "name": "app",
				"docker_url": reg.Addr + "/alice/app", "homepage": "http://" + reg.Addr + "/repository/alice/app"}
			for k, v := range want {
				if p[k] != v {
					t.Errorf("payload %s = %v, want %v", k, p[k], v)
				}
			}
			if tags, _ := p["updated_tags"].([]any); len(tags) != 1 || tags[0] != "v1" {
				t.Errorf("updated_tags = %v", p["updated_tags"])
			}

			// The failing receiver is retried until Quay's limit, then left alone.
			waitFor(t, "three failures", func() bool {
				g := mustAPI(t, reg, alice, http.StatusOK, http.MethodGet, base+badID, nil)
				return g["number_of_failures"] == float64(store.NotificationFailureLimit)
			})
			waitFor(t, "an empty queue", func() bool {
				n, err := reg.Srv.Store.PendingNotifications(context.Background())
				return err == nil && n == 0
			})
			if n := len(failing.calls()); n != store.NotificationFailureLimit {
				t.Errorf("failing receiver called %d times, want %d", n, store.NotificationFailureLimit)
			}
			if n := len(ok.calls()); n != 1 {
				t.Errorf("healthy receiver called %d times, want 1", n)
			}
			mustAPI(t, reg, alice, http.StatusNoContent, http.MethodPost, base+badID, nil)
			if g := mustAPI(t, reg, alice, http.StatusOK, http.MethodGet, base+badID, nil); g["number_of_failures"] != float64(0) {
				t.Errorf("after reset: %v", g)
			}

			// quay_notification: bob sees it in his in-app notifications and dismisses it.
			var notes []any
			waitFor(t, "bob's notification", func() bool {
				notes = mustAPI(t, reg, bob, http.StatusOK, http.MethodGet, "/user/notifications", nil)["notifications"].([]any)
				return len(notes) == 1
			})
			note := notes[0].(map[string]any)
			if md, _ := note["metadata"].(map[string]any); note["kind"] != "repo_push" || md["repository"] != "alice/app" || note["dismissed"] != false {
				t.Errorf("bob's notification = %v", note)
			}
			if n := mustAPI(t, reg, alice, http.StatusOK, http.MethodGet, "/user/notifications", nil)["notifications"].([]any); len(n) != 0 {
				t.Errorf("alice sees bob's notification: %v", n)
			}
			if code, _ := api(t, reg, alice, http.MethodPut, "/user/notifications/"+note["id"].(string), map[string]any{"dismissed": true}); code != http.StatusNotFound {
				t.Errorf("alice dismisses bob's notification: %d, want 404", code)
			}
			d := mustAPI(t, reg, bob, http.StatusOK, http.MethodPut, "/user/notifications/"+note["id"].(string), map[string]any{"dismissed": true})
			if d["dismissed"] != true {
				t.Errorf("dismiss = %v", d)
			}
			if n := mustAPI(t, reg, bob, http.StatusOK, http.MethodGet, "/user/notifications", nil)["notifications"].([]any); len(n) != 0 {
				t.Errorf("after dismiss: %v", n)
			}

			// A test delivery sends the sample payload.
			if m := mustAPI(t, reg, alice, http.StatusOK, http.MethodPost, base+hookID+"/test", nil); len(m) != 0 {
				t.Errorf("test answer = %v", m)
			}
			waitFor(t, "the test delivery", func() bool { return len(ok.calls()) == 2 })
			if ok.calls()[1]["pruned_image_count"] != float64(3) {
				t.Errorf("test payload = %v", ok.calls()[1])
			}

			// A repository whose name has a slash in it: the same routes, and
			// its push reaches its own hook.
			if !pushImage(t, reg, alice, "alice/team/app", "v0") {
				t.Fatal("push alice/team/app:v0 refused")
			}
			const nested = "/repository/alice/team/app/notification/"
			nh := mustAPI(t, reg, alice, http.StatusCreated, http.MethodPost, nested, map[string]any{
				"event": "repo_push", "method": "webhook", "config": map[string]any{"url": ok.URL + "/nested"}, "eventConfig": map[string]any{}})
			nid := nh["uuid"].(string)
			if l := mustAPI(t, reg, alice, http.StatusOK, http.MethodGet, nested, nil); len(l["notifications"].([]any)) != 1 {
				t.Errorf("nested repository's notifications = %v", l)
			}
			mustAPI(t, reg, alice, http.StatusOK, http.MethodGet, nested+nid, nil)
			mustAPI(t, reg, alice, http.StatusNotFound, http.MethodGet, base+nid, nil) // another repository's
			mustAPI(t, reg, alice, http.StatusMethodNotAllowed, http.MethodPut, nested+nid, nil)
			if code, _ := api(t, reg, bob, http.MethodGet, nested, nil); code != http.StatusForbidden {
				t.Errorf("bob lists the nested repository's notifications: %d, want 403", code)
			}
			if !pushImage(t, reg, alice, "alice/team/app", "v1") {
				t.Fatal("push alice/team/app:v1 refused")
			}
			waitFor(t, "the nested repository's webhook", func() bool { return len(ok.calls()) == 3 })
			if got := ok.calls()[2]; got["repository"] != "alice/team/app" || got["name"] != "team/app" {
				t.Errorf("nested repository's payload: repository %v, name %v", got["repository"], got["name"])
			}
			mustAPI(t, reg, alice, http.StatusNoContent, http.MethodDelete, nested+nid, nil)
			mustAPI(t, reg, alice, http.StatusNotFound, http.MethodGet, nested+nid, nil)

			// Delete, then the notification is gone; all changes are audited.
			mustAPI(t, reg, alice, http.StatusNoContent, http.MethodDelete, base+hookID, nil)
			mustAPI(t, reg, alice, http.StatusNotFound, http.MethodGet, base+hookID, nil)
			mustAPI(t, reg, alice, http.StatusNotFound, http.MethodPost, base+hookID+"/test", nil)
			repo, err := reg.Srv.Store.Repository(context.Background(), "alice", "app")
			if err != nil {
				t.Fatal(err)
			}
			for kind, n := range map[string]int{"add_repo_notification": 3, "reset_repo_notification": 1, "delete_repo_notification": 1} {
				rows, err := reg.Srv.Store.Logs(context.Background(), store.LogQuery{RepositoryID: repo.ID, Kind: kind})
				if err != nil || len(rows) != n {
					t.Errorf("%s audit rows = %d, %v; want %d", kind, len(rows), err, n)
				} else if rows[0].Metadata["notification_id"] == nil || rows[0].Metadata["event"] != "repo_push" {
					t.Errorf("%s metadata = %v", kind, rows[0].Metadata)
				}
			}
		})
	}
}

// mailSink is a real SMTP server (go-smtp) on 127.0.0.1 keeping what it
// accepts as envelope recipient -> raw message.
type mailSink struct {
	port int
	mu   sync.Mutex
	msgs []sunkMail
}

type sunkMail struct{ from, to, data string }

type mailSession struct {
	sink *mailSink
	cur  sunkMail
}

func (m *mailSession) Reset()        { m.cur = sunkMail{} }
func (m *mailSession) Logout() error { return nil }
func (m *mailSession) Mail(from string, _ *smtp.MailOptions) error {
	m.cur.from = from
	return nil
}
func (m *mailSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	m.cur.to = to
	return nil
}
func (m *mailSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m.cur.data = string(b)
	m.sink.mu.Lock()
	m.sink.msgs = append(m.sink.msgs, m.cur)
	m.sink.mu.Unlock()
	return nil
}

func newMailSink(t *testing.T) *mailSink {
	t.Helper()
	sink := &mailSink{}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &mailSession{sink: sink}, nil }))
	srv.Domain = "sink.test"
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sink.port = ln.Addr().(*net.TCPAddr).Port
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return sink
}

func (m *mailSink) got() []sunkMail {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]sunkMail(nil), m.msgs...)
}

// TestNotificationsFromConfig reads MAIL_* and WEBHOOK_HOSTNAME_BLACKLIST
// from a config.yaml the way quayctl serve does (config.Load, FromConfig)
// and checks their effect on a live server: an email notification is
// accepted and a push reaches the SMTP server; webhooks to blacklisted
// hosts are refused when they are created.
func TestNotificationsFromConfig(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end: skipped with -short")
	}
	sink := newMailSink(t)
	hooks := newHookReceiver(t, http.StatusOK) // on 127.0.0.2, blacklisted below
	path := filepath.Join(t.TempDir(), "config.yaml")
	yaml := fmt.Sprintf(`SERVER_HOSTNAME: quay.example.com
DB_URI: sqlite:///%s
DISTRIBUTED_STORAGE_CONFIG:
  default: [LocalStorage, {storage_path: %s}]
DISTRIBUTED_STORAGE_PREFERENCE: [default]
SETUP_COMPLETE: true
DATABASE_SECRET_KEY: e2e-database-secret
SECRET_KEY: e2e-secret
TESTING: false
FEATURE_MAILING: true
MAIL_SERVER: 127.0.0.1
MAIL_PORT: %d
MAIL_USE_TLS: false
MAIL_DEFAULT_SENDER: Quay <quay@example.com>
WEBHOOK_HOSTNAME_BLACKLIST: [127.0.0.2, Hooks.Internal.Example]
`, filepath.Join(t.TempDir(), "quay.db"), t.TempDir(), sink.port)
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, _, err := config.Load(config.LoadOptions{Path: path, Env: func(string) string { return "" }})
	if err != nil {
		t.Fatalf("config.Load: %v", err)
	}
	fromFile := server.FromConfig(cfg)
	for name, newDB := range dialects(t) {
		t.Run(name, func(t *testing.T) {
			reg := startRegistry(t, newDB(t), func(s *server.Settings) {
				s.Notifications = true
				s.NotificationPoll = 25 * time.Millisecond
				s.NotificationRetryAfter = 25 * time.Millisecond
				s.Mailing, s.Mail, s.WebhookHostnameBlacklist = fromFile.Mailing, fromFile.Mail, fromFile.WebhookHostnameBlacklist
			})
			reg.createUser(t, "alice", pw("alice"))
			alice := cred{user: "alice", pass: pw("alice")}
			if !pushImage(t, reg, alice, "alice/app", "v0") {
				t.Fatal("push alice/app:v0 refused")
			}
			base := "/repository/alice/app/notification/"
			refused := []struct{ name, url string }{
				{"blacklisted address", hooks.URL + "/hook"},
				{"blacklisted name, other case", "https://hooks.internal.example/x"},
				{"localhost is always refused", "http://localhost:9/x"},
				{"127.0.0.1 is always refused", "http://127.0.0.1:9/x"},
			}
			for _, tc := range refused {
				code, m := api(t, reg, alice, http.MethodPost, base, map[string]any{"event": "repo_push", "method": "webhook", "config": map[string]any{"url": tc.url}, "eventConfig": map[string]any{}})
				if msg, _ := m["error_message"].(string); code != http.StatusBadRequest || !strings.Contains(msg, "is not allowed") || !strings.Contains(msg, "WEBHOOK_HOSTNAME_BLACKLIST") {
					t.Errorf("%s: %d %v, want 400 naming WEBHOOK_HOSTNAME_BLACKLIST", tc.name, code, m)
				}
			}
			mustAPI(t, reg, alice, http.StatusCreated, http.MethodPost, base, map[string]any{
				"event": "repo_push", "method": "webhook", "config": map[string]any{"url": "https://hooks.example.com/x"}, "eventConfig": map[string]any{}})

			to := name + "-dev@example.com"
			mustAPI(t, reg, alice, http.StatusCreated, http.MethodPost, base, map[string]any{
				"event": "repo_push", "method": "email", "config": map[string]any{"email": to}, "eventConfig": map[string]any{}})
			if !pushImage(t, reg, alice, "alice/app", "v1") {
				t.Fatal("push alice/app:v1 refused")
			}
			var msg sunkMail
			waitFor(t, "the repo_push e-mail", func() bool {
				for _, m := range sink.got() {
					if m.to == to {
						msg = m
						return true
					}
				}
				return false
			})
			pm, err := mail.ReadMessage(strings.NewReader(msg.data))
			if err != nil {
				t.Fatalf("message does not parse: %v", err)
			}
			if msg.from != "quay@example.com" || pm.Header.Get("From") != `"Quay" <quay@example.com>` || pm.Header.Get("To") != "<"+to+">" ||
				pm.Header.Get("Subject") != "Repository alice/app updated" {
				t.Errorf("envelope from %s, headers From %q To %q Subject %q", msg.from, pm.Header.Get("From"), pm.Header.Get("To"), pm.Header.Get("Subject"))
			}
			body, _ := io.ReadAll(pm.Body)
			if !strings.Contains(string(body), "updated_tags: v1") || !strings.Contains(string(body), "/repository/alice/app") {
				t.Errorf("body = %q", body)
			}
			if len(hooks.calls()) != 0 {
				t.Errorf("blacklisted receiver was called %d times", len(hooks.calls()))
			}
		})
	}
}
