package api_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quayctl/quayctl/internal/testregistry"
	"github.com/quayctl/quayctl/registry/store"
)

// notifyCall is the API called as user (basic auth; "" anonymous).
func notifyCall(t *testing.T, reg *testregistry.Registry, user, method, path, body string) (int, map[string]any) {
	t.Helper()
	code, b := apiRequest(t, reg, user, method, path, body)
	var m map[string]any
	if len(strings.TrimSpace(string(b))) > 0 && json.Unmarshal(b, &m) != nil {
		m = map[string]any{"_raw": string(b)}
	}
	return code, m
}

// TestRepoNotificationAPI walks the endpoints in order; "$ID" in a path is
// the uuid of the first notification created, "$OTHER" one of another
// repository.
func TestRepoNotificationAPI(t *testing.T) {
	for name, newDB := range dialects() {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			reg := testregistry.Start(t, newDB(t), nil)
			users := map[string]*store.User{}
			for _, u := range []string{"olivia", "mike", "eve"} {
				users[u] = reg.CreateUser(t, u, u+"-password1")
			}
			st := reg.Srv.Store
			repo, err := st.CreateRepository(ctx, users["olivia"].ID, "app", false, users["olivia"].ID)
			if err != nil {
				t.Fatal(err)
			}
			other, err := st.CreateRepository(ctx, users["olivia"].ID, "other", false, users["olivia"].ID)
			if err != nil {
				t.Fatal(err)
			}
			if err := st.SetRepositoryPermission(ctx, repo.ID, users["mike"].ID, 0, store.RoleWrite); err != nil {
				t.Fatal(err)
			}
			otherN, err := st.CreateRepoNotification(ctx, store.NewRepoNotification{RepositoryID: other.ID, Event: "repo_push", Method: "slack", ConfigJSON: `{"url":"https://hooks.example.com/x"}`})
			if err != nil {
				t.Fatal(err)
			}
			const base = "/repository/olivia/app/notification/"
			hook := `{"event":"repo_push","method":"webhook","config":{"url":"https://ci.example.com/hook"},"eventConfig":{},"title":"CI"}`
			var id string
			steps := []struct {
				name, user, method, path, body string
				want                           int
				wantErr                        string                 // in error_message
				wantFields                     map[string]any         // top-level fields of the answer
				check                          func(m map[string]any) // extra checks
			}{
				{name: "anonymous", method: "GET", path: base, want: 401},
				{name: "writer is not admin", user: "mike", method: "GET", path: base, want: 403},
				{name: "stranger", user: "eve", method: "POST", path: base, body: hook, want: 403},
				{name: "empty list", user: "olivia", method: "GET", path: base, want: 200,
					check: func(m map[string]any) {
						if l, ok := m["notifications"].([]any); !ok || len(l) != 0 {
							t.Errorf("notifications = %v, want []", m["notifications"])
						}
					}},
				{name: "not JSON", user: "olivia", method: "POST", path: base, body: "{", want: 400, wantErr: "not valid JSON"},
				{name: "no event", user: "olivia", method: "POST", path: base, body: `{"method":"webhook","config":{}}`, want: 400, wantErr: "missing required fields"},
				{name: "config is a list", user: "olivia", method: "POST", path: base, body: `{"event":"repo_push","method":"webhook","config":[]}`, want: 400, wantErr: `"config" must be a JSON object`},
				{name: "eventConfig is a string", user: "olivia", method: "POST", path: base, body: `{"event":"repo_push","method":"webhook","config":{"url":"https://h.example.com"},"eventConfig":"x"}`, want: 400, wantErr: `"eventConfig" must be a JSON object`},
				{name: "unknown event", user: "olivia", method: "POST", path: base, body: `{"event":"repo_pull","method":"webhook","config":{"url":"https://h.example.com"}}`, want: 400, wantErr: `unknown event "repo_pull"`},
				{name: "unknown method", user: "olivia", method: "POST", path: base, body: `{"event":"repo_push","method":"fax","config":{}}`, want: 400, wantErr: `unknown method "fax"`},
				{name: "webhook without url", user: "olivia", method: "POST", path: base, body: `{"event":"repo_push","method":"webhook","config":{}}`, want: 400, wantErr: "missing webhook URL"},
				{name: "webhook file url", user: "olivia", method: "POST", path: base, body: `{"event":"repo_push","method":"webhook","config":{"url":"file:///etc/passwd"}}`, want: 400, wantErr: "http:// or https://"},
				{name: "webhook to 127.0.0.1", user: "olivia", method: "POST", path: base, body: `{"event":"repo_push","method":"webhook","config":{"url":"http://127.0.0.1:9/x"}}`, want: 400, wantErr: "not allowed"},
				{name: "email without mail", user: "olivia", method: "POST", path: base, body: `{"event":"repo_push","method":"email","config":{"email":"a@example.com"}}`, want: 400, wantErr: "configure"},
				{name: "robot target", user: "olivia", method: "POST", path: base, body: `{"event":"repo_push","method":"quay_notification","config":{"target":{"kind":"user","name":"olivia+bot"}}}`, want: 400, wantErr: "unknown user"},
				{name: "team outside an organisation", user: "olivia", method: "POST", path: base, body: `{"event":"repo_push","method":"quay_notification","config":{"target":{"kind":"team","name":"devs"}}}`, want: 400, wantErr: "unknown team devs"},
				{name: "create", user: "olivia", method: "POST", path: base, body: hook, want: 201,
					wantFields: map[string]any{"event": "repo_push", "method": "webhook", "title": "CI", "number_of_failures": float64(0)},
					check: func(m map[string]any) {
						id, _ = m["uuid"].(string)
						if c, _ := m["config"].(map[string]any); c["url"] != "https://ci.example.com/hook" {
							t.Errorf("config = %v", m["config"])
						}
					}},
				{name: "create in-app for mike", user: "olivia", method: "POST", path: base, body: `{"event":"quota_warning","method":"quay_notification","config":{"target":{"kind":"user","name":"mike"}},"eventConfig":{}}`, want: 201,
					wantFields: map[string]any{"title": nil, "event": "quota_warning"}},
				{name: "list", user: "olivia", method: "GET", path: base, want: 200,
					check: func(m map[string]any) {
						if l, _ := m["notifications"].([]any); len(l) != 2 {
							t.Errorf("notifications = %v", m["notifications"])
						}
					}},
				{name: "get", user: "olivia", method: "GET", path: base + "$ID", want: 200, wantFields: map[string]any{"event_config": map[string]any{}}},
				{name: "another repository's notification", user: "olivia", method: "GET", path: base + "$OTHER", want: 404},
				{name: "unknown uuid", user: "olivia", method: "DELETE", path: base + "nope", want: 404},
				{name: "test", user: "olivia", method: "POST", path: base + "$ID/test", want: 200},
				{name: "test as writer", user: "mike", method: "POST", path: base + "$ID/test", want: 403},
				{name: "reset", user: "olivia", method: "POST", path: base + "$ID", want: 204},
				{name: "delete", user: "olivia", method: "DELETE", path: base + "$ID", want: 204},
				{name: "gone", user: "olivia", method: "GET", path: base + "$ID", want: 404},
				{name: "user notifications need a user", method: "GET", path: "/user/notifications", want: 401},
				{name: "bad page", user: "mike", method: "GET", path: "/user/notifications?page=0", want: 400, wantErr: "page"},
				{name: "no notifications yet", user: "mike", method: "GET", path: "/user/notifications", want: 200,
					wantFields: map[string]any{"additional": false}},
				{name: "dismiss unknown", user: "mike", method: "PUT", path: "/user/notifications/nope", body: `{"dismissed":true}`, want: 404},
			}
			for _, s := range steps {
				path := strings.ReplaceAll(strings.ReplaceAll(s.path, "$ID", id), "$OTHER", otherN.UUID)
				code, m := notifyCall(t, reg, s.user, s.method, path, s.body)
				if code != s.want {
					t.Errorf("%s: %s %s = %d %v, want %d", s.name, s.method, path, code, m, s.want)
					continue
				}
				if s.wantErr != "" {
					if msg, _ := m["error_message"].(string); !strings.Contains(msg, s.wantErr) {
						t.Errorf("%s: error_message %q, want it to contain %q", s.name, msg, s.wantErr)
					}
				}
				for k, v := range s.wantFields {
					got, _ := json.Marshal(m[k])
					want, _ := json.Marshal(v)
					if string(got) != string(want) {
						t.Errorf("%s: %s = %s, want %s", s.name, k, got, want)
					}
				}
				if s.check != nil {
					s.check(m)
				}
			}
			for kind, n := range map[string]int{"add_repo_notification": 2, "reset_repo_notification": 1, "delete_repo_notification": 1} {
				rows, err := st.Logs(ctx, store.LogQuery{RepositoryID: repo.ID, Kind: kind})
				if err != nil || len(rows) != n {
					t.Errorf("%s audit rows = %d, %v; want %d", kind, len(rows), err, n)
				}
			}
		})
	}
}

// TestUserNotificationsAPI: in-app notifications are listed newest first
// for their target only, and dismissing hides them.
func TestUserNotificationsAPI(t *testing.T) {
	ctx := context.Background()
	reg := testregistry.Start(t, "sqlite:///"+filepath.Join(t.TempDir(), "quay.db"), nil)
	mike := reg.CreateUser(t, "mike", "mike-password1")
	reg.CreateUser(t, "eve", "eve-password1")
	for _, kind := range []string{"repo_push", "quota_error"} {
		if err := reg.Srv.Store.CreateUserNotification(ctx, kind, mike.ID, `{"repository":"mike/app"}`); err != nil {
			t.Fatal(err)
		}
	}
	code, m := notifyCall(t, reg, "mike", "GET", "/user/notifications", "")
	list, _ := m["notifications"].([]any)
	if code != 200 || len(list) != 2 {
		t.Fatalf("list = %d %v", code, m)
	}
	first := list[0].(map[string]any)
	if md, _ := first["metadata"].(map[string]any); md["repository"] != "mike/app" || first["organization"] != nil || first["dismissed"] != false {
		t.Errorf("notification = %v", first)
	}
	if _, ok := first["created"].(string); !ok {
		t.Errorf("created = %v", first["created"])
	}
	id := first["id"].(string)
	if code, _ := notifyCall(t, reg, "eve", "GET", "/user/notifications/"+id, ""); code != 404 {
		t.Errorf("eve reads mike's notification: %d", code)
	}
	if code, m := notifyCall(t, reg, "mike", "PUT", "/user/notifications/"+id, `{}`); code != 400 {
		t.Errorf("PUT without dismissed = %d %v", code, m)
	}
	if code, m := notifyCall(t, reg, "mike", "PUT", "/user/notifications/"+id, `{"dismissed":true}`); code != 200 || m["dismissed"] != true {
		t.Errorf("dismiss = %d %v", code, m)
	}
	if _, m := notifyCall(t, reg, "mike", "GET", "/user/notifications", ""); len(m["notifications"].([]any)) != 1 {
		t.Errorf("after dismiss = %v", m)
	}
	if code, m := notifyCall(t, reg, "mike", "GET", "/user/notifications/"+id, ""); code != 200 || m["dismissed"] != true {
		t.Errorf("get dismissed = %d %v", code, m)
	}
}
