package auth

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"
)

type tokenResponse struct {
	Token       string `json:"token"`
	AccessToken string `json:"access_token"`
	ExpiresIn   int    `json:"expires_in"`
	IssuedAt    string `json:"issued_at"`
}

type errorResponse struct {
	Errors []struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Detail  any    `json:"detail"`
	} `json:"errors"`
}

func tokenServer(t *testing.T, a *Authenticator) *httptest.Server {
	mux := http.NewServeMux()
	mux.Handle("/v2/auth", a.TokenHandler())
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func getToken(t *testing.T, srv *httptest.Server, user, pw string, scopes ...string) (*http.Response, []byte) {
	t.Helper()
	q := url.Values{"service": {testHost}, "account": {user}}
	for _, s := range scopes {
		q.Add("scope", s)
	}
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v2/auth?"+q.Encode(), nil)
	if user != "" {
		req.SetBasicAuth(user, pw)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}

func (f *fixture) loginFailures(t *testing.T) []map[string]any {
	t.Helper()
	rows, err := f.raw.Query(`SELECT l.account_id, l.metadata_json FROM logentry3 l JOIN logentrykind k ON k.id = l.kind_id WHERE k.name = 'login_failure' ORDER BY l.id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []map[string]any
	for rows.Next() {
		var account int64
		var md string
		if err := rows.Scan(&account, &md); err != nil {
			t.Fatal(err)
		}
		m := map[string]any{}
		if err := json.Unmarshal([]byte(md), &m); err != nil {
			t.Fatal(err)
		}
		m["_account"] = account
		out = append(out, m)
	}
	return out
}

func TestTokenHandlerGrants(t *testing.T) {
	f := newFixture(t)
	a := f.auth()
	srv := tokenServer(t, a)
	ctx := context.Background()

	for _, tc := range []struct {
		name, user string
		scopes     []string
		want       []Access
	}{
		{"login without scope", "alice", nil, []Access{}},
		{"owner push and pull", "alice", []string{"repository:alice/private:pull,push"},
			[]Access{{Type: "repository", Name: "alice/private", Actions: []string{"push", "pull"}}}},
		{"reader: push dropped", "bob", []string{"repository:alice/private:pull,push"},
			[]Access{{Type: "repository", Name: "alice/private", Actions: []string{"pull"}}}},
		{"nothing granted keeps the entry", "bob", []string{"repository:alice/private:*"},
			[]Access{{Type: "repository", Name: "alice/private", Actions: []string{}}}},
		{"hostname prefix kept", "alice", []string{"repository:" + testHost + "/alice/public:pull"},
			[]Access{{Type: "repository", Name: testHost + "/alice/public", Actions: []string{"pull"}}}},
		{"several scopes", "bob", []string{"repository:alice/public:pull", "repository:acme/shared:push,pull"},
			[]Access{{Type: "repository", Name: "alice/public", Actions: []string{"pull"}},
				{Type: "repository", Name: "acme/shared", Actions: []string{"push", "pull"}}}},
		{"space-separated scopes", "bob", []string{"repository:alice/public:pull repository:acme/shared:pull"},
			[]Access{{Type: "repository", Name: "alice/public", Actions: []string{"pull"}},
				{Type: "repository", Name: "acme/shared", Actions: []string{"pull"}}}},
		{"catalog", "alice", []string{"registry:catalog:*"},
			[]Access{{Type: "registry", Name: "catalog", Actions: []string{"*"}}}},
		{"push creates in own namespace", "alice", []string{"repository:alice/fresh/one:push,pull"},
			[]Access{{Type: "repository", Name: "alice/fresh/one", Actions: []string{"push", "pull"}}}},
		{"no create elsewhere", "bob", []string{"repository:alice/fresh/two:push,pull"},
			[]Access{{Type: "repository", Name: "alice/fresh/two", Actions: []string{}}}},
		{"anonymous public pull", "", []string{"repository:alice/public:pull,push", "repository:alice/private:pull"},
			[]Access{{Type: "repository", Name: "alice/public", Actions: []string{"pull"}},
				{Type: "repository", Name: "alice/private", Actions: []string{}}}},
		{"anonymous catalog", "", []string{"registry:catalog:*"},
			[]Access{{Type: "registry", Name: "catalog", Actions: []string{}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := getToken(t, srv, tc.user, testPasswords[tc.user], tc.scopes...)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type %q", ct)
			}
			var tr tokenResponse
			if err := json.Unmarshal(body, &tr); err != nil {
				t.Fatal(err)
			}
			if tr.Token == "" || tr.AccessToken != tr.Token || tr.ExpiresIn != 3600 {
				t.Fatalf("response = %s", body)
			}
			if it, err := time.Parse(time.RFC3339, tr.IssuedAt); err != nil || !it.Equal(f.clock.Now()) {
				t.Errorf("issued_at %q: %v", tr.IssuedAt, err)
			}
			claims, err := a.VerifyToken(ctx, tr.Token)
			if err != nil {
				t.Fatal(err)
			}
			got := make([]Access, len(claims.Access))
			for i, ac := range claims.Access {
				got[i] = Access{Type: ac.Type, Name: ac.Name, Actions: ac.Actions}
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("access = %+v, want %+v", got, tc.want)
			}
			wantSub := tc.user
			if wantSub == "" {
				wantSub = "(anonymous)"
			}
			if claims.Subject != wantSub || claims.Audience != testHost {
				t.Errorf("sub %q aud %q", claims.Subject, claims.Audience)
			}
		})
	}

	r, err := f.st.Repository(ctx, "alice", "fresh/one")
	if err != nil {
		t.Fatalf("push-to-create did not create: %v", err)
	}
	if r.Public {
		t.Error("CREATE_PRIVATE_REPO_ON_PUSH ignored")
	}
	if _, err := f.st.Repository(ctx, "alice", "fresh/two"); err == nil {
		t.Error("bob created a repository in alice's namespace")
	}
}

func TestTokenHandlerRefusals(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		name       string
		anonymous  bool
		user, pw   string
		scopes     []string
		wantStatus int
		wantCode   string
		wantMsg    string
	}{
		{"bad password", true, "alice", "wrong-wrong", []string{"repository:alice/private:pull"}, 401, "UNAUTHORIZED", "Invalid Username or Password"},
		{"unknown user", true, "mallory", "wrong-wrong", nil, 401, "UNAUTHORIZED", "Invalid Username or Password"},
		{"disabled user", true, "carol", "carol-secret-1", nil, 401, "UNAUTHORIZED", "disabled"},
		{"organisation", true, "acme", "acme-secret-1", nil, 401, "UNAUTHORIZED", "Invalid Username or Password"},
		{"robot with a wrong token", true, "alice+bot", "x", nil, 401, "UNAUTHORIZED", "Invalid Username or Password"},
		{"no credentials, no scope", true, "", "", nil, 401, "UNAUTHORIZED", "not authorized"},
		{"anonymous access off", false, "", "", []string{"repository:alice/public:pull"}, 401, "UNAUTHORIZED", "Anonymous"},
		{"bad scope", true, "alice", "alice-secret-1", []string{"repository:alice/private:pull", "repository:../x:pull"}, 400, "INVALID_REQUEST", "Unable to decode"},
		{"bad scope type", true, "alice", "alice-secret-1", []string{"foo:bar:pull"}, 400, "INVALID_REQUEST", "Unable to decode"},
		{"anonymous bad scope", true, "", "", []string{"repository:a/b"}, 400, "INVALID_REQUEST", "Unable to decode"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := f.auth(func(o *Options) { o.AnonymousAccess = tc.anonymous })
			srv := tokenServer(t, a)
			resp, body := getToken(t, srv, tc.user, tc.pw, tc.scopes...)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.wantStatus, body)
			}
			var er errorResponse
			if err := json.Unmarshal(body, &er); err != nil || len(er.Errors) != 1 {
				t.Fatalf("body %s: %v", body, err)
			}
			e := er.Errors[0]
			if e.Code != tc.wantCode || !strings.Contains(e.Message, tc.wantMsg) || e.Detail == nil {
				t.Fatalf("error = %+v, want %s containing %q", e, tc.wantCode, tc.wantMsg)
			}
			if tc.wantStatus == 401 {
				want := `Bearer realm="http://` + resp.Request.URL.Host + `/v2/auth",service="` + testHost + `"`
				if got := resp.Header.Get("WWW-Authenticate"); got != want {
					t.Errorf("WWW-Authenticate = %q, want %q", got, want)
				}
			}
			if strings.Contains(string(body), tc.pw) && tc.pw != "" {
				t.Error("response echoes the password")
			}
		})
	}

	// Nothing was created by the request that had a bad scope next to a good one.
	if _, err := f.st.Repository(context.Background(), "library", "x"); err == nil {
		t.Error("side effect of a refused request")
	}
}

func TestTokenHandlerLogsFailures(t *testing.T) {
	f := newFixture(t)
	a := f.auth()
	srv := tokenServer(t, a)
	getToken(t, srv, "alice", "wrong-password-1")
	getToken(t, srv, "mallory", "secret-of-mallory")
	logs := f.loginFailures(t)
	if len(logs) != 2 {
		t.Fatalf("login_failure rows = %d, want 2: %v", len(logs), logs)
	}
	if logs[0]["_account"] != f.users["alice"].ID || logs[0]["username"] != "alice" ||
		logs[0]["kind"] != "user" || logs[0]["type"] != "v2auth" {
		t.Errorf("first entry = %v", logs[0])
	}
	if logs[1]["username"] != "mallory" {
		t.Errorf("second entry = %v", logs[1])
	}
	for _, l := range logs {
		b, _ := json.Marshal(l)
		if strings.Contains(string(b), "wrong-password-1") || strings.Contains(string(b), "secret-of-mallory") {
			t.Fatalf("password in audit log: %s", b)
		}
	}
}

func TestTokenHandlerMethod(t *testing.T) {
	f := newFixture(t)
	srv := tokenServer(t, f.auth())
	resp, err := srv.Client().Post(srv.URL+"/v2/auth", "application/x-www-form-urlencoded", strings.NewReader("grant_type=password"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") == "" {
		t.Fatalf("POST: %d %v", resp.StatusCode, resp.Header)
	}
}

func TestAuthenticateRequest(t *testing.T) {
	f := newFixture(t)
	a := f.auth()
	ctx := context.Background()
	aliceTok, _, _, err := a.IssueToken(ctx, f.principal(a, "alice"), testHost,
		[]Access{{Type: "repository", Name: "alice/private", Actions: []string{"pull"}}})
	if err != nil {
		t.Fatal(err)
	}
	anonTok, _, _, _ := a.IssueToken(ctx, Anonymous(), testHost, nil)
	carolTok, _, _, _ := a.IssueToken(ctx, &Principal{Kind: KindUser, User: f.users["carol"]}, testHost, nil)
	ghost := *f.users["bob"]
	ghost.UUID = "00000000-0000-0000-0000-000000000000" // bob re-created since
	ghostTok, _, _, _ := a.IssueToken(ctx, &Principal{Kind: KindUser, User: &ghost}, testHost, nil)

	req := func(h string) *http.Request {
		r := httptest.NewRequest(http.MethodGet, "/v2/", nil)
		if h != "" {
			r.Header.Set("Authorization", h)
		}
		return r
	}
	basic := func(u, p string) string {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.SetBasicAuth(u, p)
		return r.Header.Get("Authorization")
	}
	for _, tc := range []struct {
		name       string
		header     string
		wantUser   string // "" = anonymous
		wantClaims bool
		wantErr    error
	}{
		{"none", "", "", false, nil},
		{"basic", basic("alice", "alice-secret-1"), "alice", false, nil},
		{"basic wrong", basic("alice", "nope-nope-1"), "", false, ErrInvalidCredentials},
		{"bearer", "Bearer " + aliceTok, "alice", true, nil},
		{"bearer lower-case scheme", "bearer " + aliceTok, "alice", true, nil},
		{"bearer anonymous", "Bearer " + anonTok, "", true, nil},
		{"bearer garbage", "Bearer abc", "", false, ErrInvalidToken},
		{"bearer disabled user", "Bearer " + carolTok, "", false, ErrTokenSubject},
		{"bearer re-created user", "Bearer " + ghostTok, "", false, ErrTokenSubject},
		{"other scheme", "Digest x", "", false, ErrInvalidCredentials},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, c, err := a.AuthenticateRequest(req(tc.header))
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.Username() != tc.wantUser || (c != nil) != tc.wantClaims {
				t.Fatalf("principal %v claims %v", p, c)
			}
			if tc.wantClaims && tc.wantUser == "alice" && !c.Allows("repository", "alice/private", "pull") {
				t.Fatal("claims lost")
			}
		})
	}
}

func TestWWWAuthenticate(t *testing.T) {
	a := New(nil, Options{ServerHostname: "quay.example.com"})
	if got, want := a.WWWAuthenticate("https", "quay.example.com", ""),
		`Bearer realm="https://quay.example.com/v2/auth",service="quay.example.com"`; got != want {
		t.Errorf("got %s", got)
	}
	if got, want := a.WWWAuthenticate("http", "localhost:8080", "repository:a/b:pull"),
		`Bearer realm="http://localhost:8080/v2/auth",service="quay.example.com",scope="repository:a/b:pull"`; got != want {
		t.Errorf("got %s", got)
	}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	if RequestScheme(r) != "http" {
		t.Error("plain request is not http")
	}
	r.Header.Set("X-Forwarded-Proto", "https")
	if RequestScheme(r) != "https" {
		t.Error("X-Forwarded-Proto ignored")
	}
}
