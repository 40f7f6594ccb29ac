package e2e

import (
	"bytes"
	"encoding/json"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/quayctl/quayctl/registry/server"
)

func postJSON(t *testing.T, url string, body any) (*http.Response, map[string]any) {
	t.Helper()
	b, _ := json.Marshal(body)
	resp, err := http.Post(url, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp, out
}

// TestUserInitialize follows Quay's POST /api/v1/user/initialize: the first
// user of an empty registry, a superuser, with an OAuth access token that
// works as `$oauthtoken` in the registry's token flow.
func TestUserInitialize(t *testing.T) {
	for name, newDB := range dialects(t) {
		t.Run(name, func(t *testing.T) {
			reg := startRegistry(t, newDB(t), func(s *server.Settings) { s.SuperusersFullAccess = true })
			url := reg.URL + "/api/v1/user/initialize"
			for _, bad := range []map[string]any{
				{"username": "Bad Name", "password": "long-enough-1", "email": "a@example.com"},
				{"username": "quayadmin", "password": "short", "email": "a@example.com"},
				{"username": "quayadmin", "password": "has white space", "email": "a@example.com"},
			} {
				if resp, body := postJSON(t, url, bad); resp.StatusCode != 400 || body["message"] == nil {
					t.Fatalf("initialize %v: %d %v", bad, resp.StatusCode, body)
				}
			}
			resp, body := postJSON(t, url, map[string]any{"username": "quayadmin", "password": "quayadmin-pass", "email": "admin@example.com", "access_token": true})
			if resp.StatusCode != 200 || body["username"] != "quayadmin" || body["email"] != "admin@example.com" {
				t.Fatalf("initialize: %d %v", resp.StatusCode, body)
			}
			tok, _ := body["access_token"].(string)
			if len(tok) != 40 {
				t.Fatalf("access_token %q is not Quay's 40-character token", tok)
			}
			resp, body = postJSON(t, url, map[string]any{"username": "second", "password": "second-pass1", "email": "b@example.com"})
			if resp.StatusCode != 400 || body["message"] != "Cannot initialize user in a non-empty database" {
				t.Fatalf("second initialize: %d %v", resp.StatusCode, body)
			}
			// The token logs in to the registry as $oauthtoken.
			jwt := fetchToken(t, reg, "$oauthtoken", tok, "repository:quayadmin/app:pull,push")
			c := &client{t: t, base: reg.URL, token: jwt}
			c.pushBlob("quayadmin/app", []byte("pushed with the initialize token"))
			// The first user is a superuser: with FEATURE_SUPERUSERS_FULL_ACCESS
			// it reads other users' private repositories.
			reg.createUser(t, "alice", "alice-password")
			alice := &client{t: t, base: reg.URL, user: "alice", pass: "alice-password"}
			d := alice.pushBlob("alice/private", []byte("alice's"))
			admin := &client{t: t, base: reg.URL, user: "quayadmin", pass: "quayadmin-pass"}
			if resp := admin.do("HEAD", "/v2/alice/private/blobs/"+d.String(), nil, nil); resp.StatusCode != 200 {
				t.Fatalf("superuser read of a private repository: %d", resp.StatusCode)
			}
		})
	}
	t.Run("superuser without full access", func(t *testing.T) {
		reg := startRegistry(t, "sqlite:///"+filepath.Join(t.TempDir(), "q.db"), nil)
		if resp, _ := postJSON(t, reg.URL+"/api/v1/user/initialize", map[string]any{"username": "quayadmin", "password": "quayadmin-pass", "email": "a@example.com"}); resp.StatusCode != 200 {
			t.Fatalf("initialize: %d", resp.StatusCode)
		}
		reg.createUser(t, "alice", "alice-password")
		d := (&client{t: t, base: reg.URL, user: "alice", pass: "alice-password"}).pushBlob("alice/private", []byte("alice's"))
		admin := &client{t: t, base: reg.URL, user: "quayadmin", pass: "quayadmin-pass"}
		if resp := admin.do("HEAD", "/v2/alice/private/blobs/"+d.String(), nil, nil); resp.StatusCode != 403 {
			t.Fatalf("superuser without FEATURE_SUPERUSERS_FULL_ACCESS read a private repository: %d", resp.StatusCode)
		}
	})
	t.Run("feature off", func(t *testing.T) {
		reg := startRegistry(t, "sqlite:///"+filepath.Join(t.TempDir(), "q.db"), func(s *server.Settings) { s.UserInitialize = false })
		if resp, _ := postJSON(t, reg.URL+"/api/v1/user/initialize", map[string]any{"username": "x1", "password": "xxxxxxxx1", "email": "x@example.com"}); resp.StatusCode != 404 {
			t.Fatalf("initialize with FEATURE_USER_INITIALIZE off: %d", resp.StatusCode)
		}
	})
}
