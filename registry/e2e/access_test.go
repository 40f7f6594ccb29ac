package e2e

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/quayctl/quayctl/registry/server"
	"github.com/quayctl/quayctl/registry/store"
)

// cred is how a test request authenticates: nothing, Basic, or a bearer
// token.
type cred struct {
	user, pass string
	bearer     string
}

func (c cred) apply(req *http.Request) {
	switch {
	case c.bearer != "":
		req.Header.Set("Authorization", "Bearer "+c.bearer)
	case c.user != "":
		req.SetBasicAuth(c.user, c.pass)
	}
}

// call sends one request and returns the status and the body.
func call(t testing.TB, method, u string, c cred, body []byte, hdr map[string]string) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	c.apply(req)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// api calls /api/v1 with a JSON body (nil for none) and decodes the answer.
func api(t testing.TB, reg *registry, c cred, method, path string, body any) (int, map[string]any) {
	t.Helper()
	var b []byte
	if body != nil {
		var err error
		if b, err = json.Marshal(body); err != nil {
			t.Fatal(err)
		}
	}
	code, out := call(t, method, reg.URL+"/api/v1"+path, c, b, map[string]string{"Content-Type": "application/json"})
	var m map[string]any
	if len(bytes.TrimSpace(out)) > 0 && json.Unmarshal(out, &m) != nil {
		m = map[string]any{"_raw": string(out)}
	}
	return code, m
}

// mustAPI is api that fails the test unless the status is want.
func mustAPI(t testing.TB, reg *registry, c cred, want int, method, path string, body any) map[string]any {
	t.Helper()
	code, m := api(t, reg, c, method, path, body)
	if code != want {
		t.Fatalf("%s %s: %d %v, want %d", method, path, code, m, want)
	}
	return m
}

// token runs /v2/auth with c's credentials for the scopes; "" when refused.
func token(t testing.TB, reg *registry, c cred, scopes ...string) string {
	t.Helper()
	q := url.Values{"service": {reg.Addr}, "scope": scopes}
	code, body := call(t, http.MethodGet, reg.URL+"/v2/auth?"+q.Encode(), c, nil, nil)
	if code != http.StatusOK {
		return ""
	}
	var tr struct{ Token string }
	if err := json.Unmarshal(body, &tr); err != nil {
		t.Fatal(err)
	}
	return tr.Token
}

// pushImage pushes a one-layer image with tag through the token flow and
// reports whether the manifest was accepted.
func pushImage(t testing.TB, reg *registry, c cred, repo, tag string) bool {
	t.Helper()
	tok := token(t, reg, c, "repository:"+repo+":push,pull")
	if tok == "" {
		return false
	}
	bc := cred{bearer: tok}
	blob := func(content []byte, mt string) (ocispec.Descriptor, bool) {
		d := digest.FromBytes(content)
		code, _ := call(t, http.MethodPost, reg.URL+"/v2/"+repo+"/blobs/uploads/?digest="+d.String(), bc, content,
			map[string]string{"Content-Type": "application/octet-stream"})
		return ocispec.Descriptor{MediaType: mt, Digest: d, Size: int64(len(content))}, code == http.StatusCreated
	}
	config, ok1 := blob([]byte(`{"architecture":"amd64","os":"linux"}`), ocispec.MediaTypeImageConfig)
	layer, ok2 := blob(testLayer, ocispec.MediaTypeImageLayer)
	if !ok1 || !ok2 {
		return false
	}
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: config, Layers: []ocispec.Descriptor{layer}}
	m.SchemaVersion = 2
	b, _ := json.Marshal(m)
	code, _ := call(t, http.MethodPut, reg.URL+"/v2/"+repo+"/manifests/"+tag, bc, b,
		map[string]string{"Content-Type": ocispec.MediaTypeImageManifest})
	return code == http.StatusCreated
}

var testLayer = []byte("quayctl access test layer")

// accessWorld is an organisation with teams, robots and grants, built
// through the API as an administrator would.
type accessWorld struct {
	reg    *registry
	creds  map[string]cred // principal -> credentials
	robots map[string]string
}

const (
	superuser   = "root"
	orgOwner    = "olivia"
	testOrg     = "acme"
	privateRepo = "acme/app"
	mountTarget = "acme/scratch"
	publicRepo  = "acme/public"
)

func pw(name string) string { return name + "-password1" }

// setupAccess builds the world the permission matrix runs in:
//   - olivia creates organisation acme (its owners team);
//   - teams admins (admin: adam), builders (creator: cora), readers
//     (member: mike, with read on acme/app and acme/scratch);
//   - robots acme+reader/writer/admin with those roles on both repositories;
//   - dan has write, then is disabled; eve has nothing;
//   - root is a superuser with FEATURE_SUPERUSERS_FULL_ACCESS.
func setupAccess(t *testing.T, dbURI string, mutate func(*server.Settings)) *accessWorld {
	t.Helper()
	reg := startRegistry(t, dbURI, func(s *server.Settings) {
		s.SuperUsers = []string{superuser}
		s.SuperusersFullAccess = true
		s.AnonymousAccess = true
		if mutate != nil {
			mutate(s)
		}
	})
	w := &accessWorld{reg: reg, creds: map[string]cred{"anonymous": {}}, robots: map[string]string{}}
	for _, u := range []string{superuser, orgOwner, "adam", "cora", "mike", "eve", "dan", "target"} {
		reg.createUser(t, u, pw(u))
		w.creds[u] = cred{user: u, pass: pw(u)}
	}
	owner := w.creds[orgOwner]
	mustAPI(t, reg, owner, 201, "POST", "/organization/", map[string]any{"name": testOrg, "email": "acme@example.com"})
	for team, role := range map[string]string{"admins": "admin", "builders": "creator", "readers": "member"} {
		mustAPI(t, reg, owner, 200, "PUT", "/organization/acme/team/"+team, map[string]any{"role": role, "description": team})
	}
	for member, team := range map[string]string{"adam": "admins", "cora": "builders", "mike": "readers"} {
		mustAPI(t, reg, owner, 200, "PUT", "/organization/acme/team/"+team+"/members/"+member, nil)
	}
	for _, repo := range []string{privateRepo, mountTarget} {
		_, name, _ := strings.Cut(repo, "/")
		mustAPI(t, reg, owner, 201, "POST", "/repository", map[string]any{"namespace": testOrg, "repository": name, "visibility": "private", "description": "test"})
	}
	mustAPI(t, reg, owner, 201, "POST", "/repository", map[string]any{"namespace": testOrg, "repository": "public", "visibility": "public"})
	if !pushImage(t, reg, owner, privateRepo, "v1") || !pushImage(t, reg, owner, publicRepo, "v1") {
		t.Fatal("the owner cannot push")
	}
	for _, role := range []string{"read", "write", "admin"} {
		short := map[string]string{"read": "reader", "write": "writer", "admin": "admin"}[role]
		rb := mustAPI(t, reg, owner, 201, "PUT", "/organization/acme/robots/"+short, map[string]any{"description": role + " robot"})
		name, tok := rb["name"].(string), rb["token"].(string)
		if name != "acme+"+short || len(tok) != 64 {
			t.Fatalf("robot view %v", rb)
		}
		w.robots[short] = tok
		w.creds["robot-"+role] = cred{user: name, pass: tok}
		for _, repo := range []string{privateRepo, mountTarget} {
			mustAPI(t, reg, owner, 200, "PUT", "/repository/"+repo+"/permissions/user/"+name, map[string]any{"role": role})
		}
	}
	for _, repo := range []string{privateRepo, mountTarget} {
		mustAPI(t, reg, owner, 200, "PUT", "/repository/"+repo+"/permissions/team/readers", map[string]any{"role": "read"})
		mustAPI(t, reg, owner, 200, "PUT", "/repository/"+repo+"/permissions/user/dan", map[string]any{"role": "write"})
	}
	dan, err := reg.Srv.Store.UserByName(context.Background(), "dan")
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Srv.Store.SetUserEnabled(context.Background(), dan.ID, false); err != nil {
		t.Fatal(err)
	}
	return w
}

// Operations of the permission matrix; each reports whether it was
// allowed, through HTTP with the principal's real credentials.
type accessOp func(t *testing.T, w *accessWorld, principal string) bool

var accessOps = []struct {
	name string
	op   accessOp
}{
	{"pull", func(t *testing.T, w *accessWorld, p string) bool {
		tok := token(t, w.reg, w.creds[p], "repository:"+privateRepo+":pull")
		code, _ := call(t, "GET", w.reg.URL+"/v2/"+privateRepo+"/manifests/v1", cred{bearer: tok}, nil,
			map[string]string{"Accept": ocispec.MediaTypeImageManifest})
		return tok != "" && code == 200
	}},
	{"push", func(t *testing.T, w *accessWorld, p string) bool {
		return pushImage(t, w.reg, w.creds[p], privateRepo, "pushed-by-"+tagSafe(p))
	}},
	{"delete tag", func(t *testing.T, w *accessWorld, p string) bool {
		tag := "victim-" + tagSafe(p)
		if !pushImage(t, w.reg, w.creds[orgOwner], privateRepo, tag) {
			t.Fatal("owner push failed")
		}
		tok := token(t, w.reg, w.creds[p], "repository:"+privateRepo+":push,pull")
		code, _ := call(t, "DELETE", w.reg.URL+"/v2/"+privateRepo+"/manifests/"+tag, cred{bearer: tok}, nil, nil)
		return tok != "" && code == 202
	}},
	{"mount", func(t *testing.T, w *accessWorld, p string) bool {
		tok := token(t, w.reg, w.creds[p], "repository:"+mountTarget+":push,pull", "repository:"+privateRepo+":pull")
		code, _ := call(t, "POST", w.reg.URL+"/v2/"+mountTarget+"/blobs/uploads/?mount="+digest.FromBytes(testLayer).String()+"&from="+privateRepo,
			cred{bearer: tok}, nil, nil)
		return tok != "" && code == 201
	}},
	{"list catalog", func(t *testing.T, w *accessWorld, p string) bool {
		tok := token(t, w.reg, w.creds[p], "registry:catalog:*")
		code, body := call(t, "GET", w.reg.URL+"/v2/_catalog", cred{bearer: tok}, nil, nil)
		var cat struct{ Repositories []string }
		_ = json.Unmarshal(body, &cat)
		return code == 200 && slices.Contains(cat.Repositories, privateRepo)
	}},
	{"list tags", func(t *testing.T, w *accessWorld, p string) bool {
		tok := token(t, w.reg, w.creds[p], "repository:"+privateRepo+":pull")
		code, _ := call(t, "GET", w.reg.URL+"/v2/"+privateRepo+"/tags/list", cred{bearer: tok}, nil, nil)
		return tok != "" && code == 200
	}},
	{"read API", func(t *testing.T, w *accessWorld, p string) bool {
		code, m := api(t, w.reg, w.creds[p], "GET", "/repository/"+privateRepo, nil)
		return code == 200 && m["name"] == "app"
	}},
	{"change permissions", func(t *testing.T, w *accessWorld, p string) bool {
		code, _ := api(t, w.reg, w.creds[p], "PUT", "/repository/"+privateRepo+"/permissions/user/target", map[string]any{"role": "read"})
		return code == 200
	}},
}

func tagSafe(s string) string { return strings.NewReplacer("+", "_", "-", "_").Replace(s) }

// TestPermissionMatrix asserts, for each kind of principal and each
// operation, allowed or refused, on a private repository of an
// organisation, through HTTP with real tokens, on SQLite and PostgreSQL.
func TestPermissionMatrix(t *testing.T) {
	const Y, N = true, false
	matrix := []struct {
		principal string
		want      [8]bool // in accessOps order: pull push delete mount catalog tags api perms
	}{
		{"anonymous", [8]bool{N, N, N, N, N, N, N, N}},
		{orgOwner, [8]bool{Y, Y, Y, Y, Y, Y, Y, Y}},     // in the owners team
		{"adam", [8]bool{Y, Y, Y, Y, Y, Y, Y, Y}},       // admin team
		{"cora", [8]bool{N, N, N, N, N, N, N, N}},       // creator team: creates, reads nothing it did not create
		{"mike", [8]bool{Y, N, N, N, Y, Y, Y, N}},       // member team with read
		{"robot-read", [8]bool{Y, N, N, N, Y, Y, N, N}}, // robots have no API access, as in Quay
		{"robot-write", [8]bool{Y, Y, Y, Y, Y, Y, N, N}},
		{"robot-admin", [8]bool{Y, Y, Y, Y, Y, Y, N, N}},
		{"eve", [8]bool{N, N, N, N, N, N, N, N}}, // another user
		{superuser, [8]bool{Y, Y, Y, Y, Y, Y, Y, Y}},
		{"dan", [8]bool{N, N, N, N, N, N, N, N}}, // disabled, though granted write
	}
	for name, newDB := range dialects(t) {
		t.Run(name, func(t *testing.T) {
			w := setupAccess(t, newDB(t), func(s *server.Settings) {
				if name == "postgresql" {
					s.DatabaseSecretKey = "a-configured-database-secret-key"
				}
			})
			for _, row := range matrix {
				for i, op := range accessOps {
					t.Run(row.principal+"/"+op.name, func(t *testing.T) {
						if got := op.op(t, w, row.principal); got != row.want[i] {
							t.Errorf("%s %s: allowed=%v, want %v", row.principal, op.name, got, row.want[i])
						}
					})
				}
			}
			// Every allowed push, tag deletion and pull left its audit row,
			// with the principal as performer (the registry audits off the
			// request path, so wait for the queue).
			for _, row := range matrix {
				for i, kind := range map[int]string{0: "pull_repo", 1: "push_repo", 2: "delete_tag"} {
					if row.want[i] {
						waitAudit(t, w.reg, row.principal, kind)
					}
				}
			}
			// The public repository: anonymous pulls with FEATURE_ANONYMOUS_ACCESS.
			tok := token(t, w.reg, cred{}, "repository:"+publicRepo+":pull")
			if code, _ := call(t, "GET", w.reg.URL+"/v2/"+publicRepo+"/manifests/v1", cred{bearer: tok}, nil,
				map[string]string{"Accept": ocispec.MediaTypeImageManifest}); code != 200 {
				t.Errorf("anonymous pull of a public repository: %d", code)
			}
			if code, _ := api(t, w.reg, cred{}, "GET", "/repository/"+publicRepo, nil); code != 200 {
				t.Errorf("anonymous API read of a public repository: %d", code)
			}
			// Listings show nothing private: eve lists acme and sees only the public repository.
			m := mustAPI(t, w.reg, w.creds["eve"], 200, "GET", "/repository?namespace=acme", nil)
			if b, _ := json.Marshal(m); strings.Contains(string(b), `"app"`) || !strings.Contains(string(b), `"public"`) {
				t.Errorf("eve's listing of acme: %s", b)
			}
		})
	}
}

// TestPublicRepoWithoutAnonymousAccess: with FEATURE_ANONYMOUS_ACCESS off
// a public repository needs a login.
func TestPublicRepoWithoutAnonymousAccess(t *testing.T) {
	w := setupAccess(t, dialects(t)["sqlite"](t), func(s *server.Settings) { s.AnonymousAccess = false })
	if tok := token(t, w.reg, cred{}, "repository:"+publicRepo+":pull"); tok != "" {
		t.Errorf("anonymous token issued with anonymous access off")
	}
	if code, _ := api(t, w.reg, cred{}, "GET", "/repository/"+publicRepo, nil); code != 401 {
		t.Errorf("anonymous API read: %d, want 401", code)
	}
	if code, _ := api(t, w.reg, w.creds["eve"], "GET", "/repository/"+publicRepo, nil); code != 200 {
		t.Errorf("logged-in read of a public repository: %d, want 200", code)
	}
}

// TestAccessAuditAndAPI walks the administration API and checks its
// answers (Quay's shapes) and the logentry3 row each change writes.
func TestAccessAuditAndAPI(t *testing.T) {
	for name, newDB := range dialects(t) {
		t.Run(name, func(t *testing.T) {
			w := setupAccess(t, newDB(t), nil)
			reg, owner := w.reg, w.creds[orgOwner]
			ctx := context.Background()
			org, err := reg.Srv.Store.UserByName(ctx, testOrg)
			if err != nil {
				t.Fatal(err)
			}
			for _, tag := range []string{"v2", "v3"} {
				if !pushImage(t, reg, owner, privateRepo, tag) {
					t.Fatal("push failed")
				}
			}
			// Each step: the request, its status, then the audit row it must add.
			steps := []struct {
				method, path string
				body         any
				status       int
				kind         string
				metadata     map[string]any
			}{
				{"PUT", "/organization/acme/team/readers", map[string]any{"role": "creator"}, 200, "org_set_team_role", map[string]any{"team": "readers", "role": "creator"}},
				{"PUT", "/organization/acme/team/ops", map[string]any{"role": "member", "description": "ops"}, 200, "org_create_team", map[string]any{"team": "ops"}},
				{"PUT", "/organization/acme/team/ops/members/eve", nil, 200, "org_add_team_member", map[string]any{"member": "eve", "team": "ops"}},
				{"DELETE", "/organization/acme/team/ops/members/eve", nil, 204, "org_remove_team_member", map[string]any{"member": "eve", "team": "ops"}},
				{"DELETE", "/organization/acme/team/ops", nil, 204, "org_delete_team", map[string]any{"team": "ops"}},
				{"PUT", "/organization/acme/robots/deployer", nil, 201, "create_robot", map[string]any{"robot": "deployer"}},
				{"POST", "/organization/acme/robots/deployer/regenerate", nil, 200, "regenerate_robot_token", map[string]any{"robot": "deployer"}},
				{"DELETE", "/organization/acme/robots/deployer", nil, 204, "delete_robot", map[string]any{"robot": "deployer"}},
				{"PUT", "/repository/acme/app/permissions/user/eve", map[string]any{"role": "read"}, 200, "add_repo_permission", map[string]any{"username": "eve", "role": "read", "repo": "app", "namespace": "acme"}},
				{"PUT", "/repository/acme/app/permissions/user/eve", map[string]any{"role": "write"}, 200, "change_repo_permission", map[string]any{"username": "eve", "role": "write"}},
				{"DELETE", "/repository/acme/app/permissions/user/eve", nil, 204, "delete_repo_permission", map[string]any{"username": "eve"}},
				{"PUT", "/repository/acme/app/permissions/team/builders", map[string]any{"role": "write"}, 200, "add_repo_permission", map[string]any{"team": "builders", "role": "write"}},
				{"POST", "/repository/acme/app/changevisibility", map[string]any{"visibility": "public"}, 200, "change_repo_visibility", map[string]any{"visibility": "public", "repo": "app"}},
				{"PUT", "/repository/acme/app", map[string]any{"description": "the app"}, 200, "set_repo_description", map[string]any{"description": "the app"}},
				{"DELETE", "/repository/acme/app/tag/v1", nil, 204, "delete_tag", map[string]any{"tag": "v1", "repo": "app", "username": orgOwner}},
				{"POST", "/repository", map[string]any{"namespace": "acme", "repository": "newrepo", "visibility": "private"}, 201, "create_repo", map[string]any{"repo": "newrepo", "namespace": "acme"}},
				{"DELETE", "/repository/acme/newrepo", nil, 204, "delete_repo", map[string]any{"repo": "newrepo", "namespace": "acme"}},
			}
			for _, s := range steps {
				code, m := api(t, reg, owner, s.method, s.path, s.body)
				if code != s.status {
					t.Fatalf("%s %s: %d %v, want %d", s.method, s.path, code, m, s.status)
				}
				rows, err := reg.Srv.Store.Logs(ctx, store.LogQuery{AccountID: org.ID, Kind: s.kind, Limit: 1})
				if err != nil {
					t.Fatal(err)
				}
				if len(rows) == 0 {
					t.Fatalf("%s %s: no %s audit row", s.method, s.path, s.kind)
				}
				for k, v := range s.metadata {
					if rows[0].Metadata[k] != v {
						t.Errorf("%s: metadata[%s] = %v, want %v (%v)", s.kind, k, rows[0].Metadata[k], v, rows[0].Metadata)
					}
				}
				if rows[0].PerformerID == nil {
					t.Errorf("%s: no performer", s.kind)
				}
			}

			// Quay's shapes.
			tags := mustAPI(t, reg, owner, 200, "GET", "/repository/acme/app/tag/?limit=2&page=1", nil)
			if tags["has_additional"] != true || tags["page"] != float64(1) || len(tags["tags"].([]any)) != 2 {
				t.Errorf("tag page: %v", tags)
			}
			active := mustAPI(t, reg, owner, 200, "GET", "/repository/acme/app/tag/?onlyActiveTags=true&specificTag=v1", nil)
			if len(active["tags"].([]any)) != 0 {
				t.Errorf("deleted tag v1 still active: %v", active)
			}
			hist := mustAPI(t, reg, owner, 200, "GET", "/repository/acme/app/tag/?specificTag=v1", nil)
			if h := hist["tags"].([]any); len(h) != 1 || h[0].(map[string]any)["end_ts"] == nil {
				t.Errorf("tag history of v1: %v", hist)
			}
			perms := mustAPI(t, reg, owner, 200, "GET", "/repository/acme/app/permissions/user/", nil)
			rb := perms["permissions"].(map[string]any)["acme+reader"].(map[string]any)
			if rb["role"] != "read" || rb["is_robot"] != true {
				t.Errorf("robot permission view: %v", rb)
			}
			teams := mustAPI(t, reg, owner, 200, "GET", "/repository/acme/app/permissions/team/", nil)
			if _, ok := teams["permissions"].(map[string]any)["builders"]; !ok {
				t.Errorf("team permissions: %v", teams)
			}
			robots := mustAPI(t, reg, owner, 200, "GET", "/organization/acme/robots", nil)
			if n := len(robots["robots"].([]any)); n != 3 {
				t.Errorf("robots: %v", robots)
			}
			orgView := mustAPI(t, reg, owner, 200, "GET", "/organization/acme", nil)
			if orgView["is_admin"] != true || orgView["teams"].(map[string]any)["owners"] == nil {
				t.Errorf("organization view: %v", orgView)
			}
			eveView := mustAPI(t, reg, w.creds["eve"], 200, "GET", "/organization/acme", nil)
			if _, ok := eveView["teams"]; ok || eveView["is_member"] != false {
				t.Errorf("a non-member sees the teams: %v", eveView)
			}
			// Paging through the organisation's logs yields every audit row
			// once, newest first, Quay's 20 per page.
			all, err := reg.Srv.Store.Logs(ctx, store.LogQuery{AccountID: org.ID, Limit: 100000})
			if err != nil {
				t.Fatal(err)
			}
			if len(all) <= 20 {
				t.Fatalf("only %d audit rows: the paging check needs more than one page", len(all))
			}
			var entries []any
			for page, next := 0, ""; ; page++ {
				path := "/organization/acme/logs"
				if next != "" {
					path += "?next_page=" + url.QueryEscape(next)
				}
				logs := mustAPI(t, reg, owner, 200, "GET", path, nil)
				got := logs["logs"].([]any)
				if logs["start_time"] == nil || len(got) > 20 || page > len(all) {
					t.Fatalf("organization logs page %d: %d entries, start_time %v", page, len(got), logs["start_time"])
				}
				entries = append(entries, got...)
				tok, more := logs["next_page"].(string)
				if !more {
					break
				}
				if len(got) != 20 {
					t.Fatalf("page %d has %d entries and a next_page", page, len(got))
				}
				next = tok
			}
			if len(entries) != len(all) {
				t.Fatalf("paged organization logs: %d entries, the table holds %d", len(entries), len(all))
			}
			for i, e := range entries {
				if k := e.(map[string]any)["kind"]; k != all[i].Kind {
					t.Fatalf("paged entry %d is %v, want %s", i, k, all[i].Kind)
				}
			}
			if code, _ := api(t, reg, owner, "GET", "/organization/acme/logs?next_page=bm90LWEtdG9rZW4", nil); code != 400 {
				t.Errorf("forged next_page: %d, want 400", code)
			}
			first := entries[0].(map[string]any)
			if first["kind"] != "delete_repo" || first["performer"].(map[string]any)["name"] != orgOwner || first["datetime"] == nil {
				t.Errorf("newest organization log entry: %v", first)
			}
			byEve := mustAPI(t, reg, owner, 200, "GET", "/organization/acme/logs?performer=eve", nil)
			if n := len(byEve["logs"].([]any)); n != 0 {
				t.Errorf("logs performed by eve: %d, want 0", n)
			}
			repoLogs := mustAPI(t, reg, owner, 200, "GET", "/repository/acme/app/logs", nil)
			if len(repoLogs["logs"].([]any)) == 0 {
				t.Errorf("repository logs are empty")
			}
			// A window in the past holds nothing; a malformed date is refused.
			old := mustAPI(t, reg, owner, 200, "GET", "/organization/acme/logs?starttime=01/01/2001&endtime=01/02/2001", nil)
			if len(old["logs"].([]any)) != 0 {
				t.Errorf("logs of 2001: %v", old["logs"])
			}
			if code, _ := api(t, reg, owner, "GET", "/organization/acme/logs?starttime=2001-01-01", nil); code != 400 {
				t.Errorf("malformed starttime: %d, want 400", code)
			}
			if code, _ := api(t, reg, w.creds["mike"], "GET", "/organization/acme/logs", nil); code != 403 {
				t.Errorf("a member read the organization logs: %d", code)
			}
			users := mustAPI(t, reg, w.creds[superuser], 200, "GET", "/superuser/users/", nil)
			if b, _ := json.Marshal(users); !strings.Contains(string(b), `"username":"dan"`) || !strings.Contains(string(b), `"enabled":false`) {
				t.Errorf("superuser users: %s", b)
			}
			if code, _ := api(t, reg, owner, "GET", "/superuser/users/", nil); code != 403 {
				t.Errorf("a non-superuser listed users: %d", code)
			}
		})
	}
}

// TestAccessBadInput: names that break Quay's rules, unknown roles,
// grants across namespaces.
func TestAccessBadInput(t *testing.T) {
	for name, newDB := range dialects(t) {
		t.Run(name, func(t *testing.T) {
			w := setupAccess(t, newDB(t), nil)
			reg, owner := w.reg, w.creds[orgOwner]
			mustAPI(t, reg, w.creds["eve"], 201, "POST", "/organization/", map[string]any{"name": "evilcorp"})
			mustAPI(t, reg, w.creds["eve"], 201, "PUT", "/organization/evilcorp/robots/spy", nil)
			mustAPI(t, reg, owner, 201, "POST", "/repository", map[string]any{"repository": "mine", "visibility": "private"})
			for _, tc := range []struct {
				name         string
				c            cred
				method, path string
				body         any
				status       int
				detail       string
			}{
				{"organization name with capitals", owner, "POST", "/organization/", map[string]any{"name": "Bad_Org"}, 400, "Invalid organization name"},
				{"organization name too short", owner, "POST", "/organization/", map[string]any{"name": "a"}, 400, "Invalid organization name"},
				{"organization name taken by a user", owner, "POST", "/organization/", map[string]any{"name": "eve"}, 400, "already exists"},
				{"robot name with a dash", owner, "PUT", "/organization/acme/robots/bad-robot", nil, 400, "invalid robot name"},
				{"robot name starting with a digit", owner, "PUT", "/organization/acme/robots/1bot", nil, 400, "invalid robot name"},
				{"robot exists", owner, "PUT", "/organization/acme/robots/reader", nil, 400, "Existing robot"},
				{"team name invalid", owner, "PUT", "/organization/acme/team/Bad Team", map[string]any{"role": "member"}, 400, "invalid team name"},
				{"unknown team role", owner, "PUT", "/organization/acme/team/ops", map[string]any{"role": "boss"}, 400, "Invalid team role"},
				{"owners team demoted", owner, "PUT", "/organization/acme/team/owners", map[string]any{"role": "member"}, 400, "owners team"},
				{"unknown repository role", owner, "PUT", "/repository/acme/app/permissions/user/eve", map[string]any{"role": "owner"}, 400, "Invalid role"},
				{"robot of another organisation", owner, "PUT", "/repository/acme/app/permissions/user/evilcorp+spy", map[string]any{"role": "read"}, 400, "robot"},
				{"robot of another organisation in a team", owner, "PUT", "/organization/acme/team/readers/members/evilcorp+spy", nil, 400, "does not belong"},
				{"team on a user's repository", owner, "PUT", "/repository/olivia/mine/permissions/team/readers", map[string]any{"role": "read"}, 400, "organizations"},
				{"unknown user", owner, "PUT", "/repository/acme/app/permissions/user/nobody", map[string]any{"role": "read"}, 400, "Unknown user"},
				{"granting in another namespace", owner, "PUT", "/repository/evilcorp/anything/permissions/user/eve", map[string]any{"role": "read"}, 403, ""},
				{"robot managed by a non-admin", w.creds["mike"], "PUT", "/organization/acme/robots/sneaky", nil, 403, ""},
				{"repository in another namespace", owner, "POST", "/repository", map[string]any{"namespace": "evilcorp", "repository": "x", "visibility": "private"}, 403, ""},
				{"invalid repository name", owner, "POST", "/repository", map[string]any{"repository": "Bad Name", "visibility": "private"}, 400, "Invalid repository name"},
				{"unknown visibility", owner, "POST", "/repository/acme/app/changevisibility", map[string]any{"visibility": "secret"}, 400, "visibility"},
				{"not JSON", owner, "POST", "/repository", "{", 400, ""},
				{"existing repository", owner, "POST", "/repository", map[string]any{"namespace": "acme", "repository": "app", "visibility": "private"}, 400, "already exists"},
				{"bad bearer token", cred{bearer: "not-a-token"}, "GET", "/repository/acme/app", nil, 401, ""},
				{"robot on the API", w.creds["robot-admin"], "GET", "/repository/acme/app", nil, 401, ""},
			} {
				t.Run(tc.name, func(t *testing.T) {
					code, m := api(t, reg, tc.c, tc.method, tc.path, tc.body)
					if code != tc.status {
						t.Fatalf("%d %v, want %d", code, m, tc.status)
					}
					for _, k := range []string{"status", "error_message", "title", "detail", "error_type"} {
						if _, ok := m[k]; !ok {
							t.Errorf("error body lacks %q: %v", k, m)
						}
					}
					if d, _ := m["detail"].(string); !strings.Contains(d, tc.detail) {
						t.Errorf("detail %q does not mention %q", d, tc.detail)
					}
				})
			}
		})
	}
}

// TestAPITokens: user/initialize's OAuth token and app-specific tokens
// work as bearer tokens on /api/v1; app tokens also as `$app` passwords on
// /v2/auth; revoked tokens stop working.
func TestAPITokens(t *testing.T) {
	for name, newDB := range dialects(t) {
		t.Run(name, func(t *testing.T) {
			reg := startRegistry(t, newDB(t), nil)
			_, init := postJSON(t, reg.URL+"/api/v1/user/initialize",
				map[string]any{"username": "quayadmin", "password": "quayadmin-pw1", "email": "a@example.com", "access_token": true})
			oauth, _ := init["access_token"].(string)
			if len(oauth) != 40 {
				t.Fatalf("initialize: %v", init)
			}
			me := mustAPI(t, reg, cred{bearer: oauth}, 200, "GET", "/user/", nil)
			if me["username"] != "quayadmin" || me["super_user"] != true {
				t.Fatalf("GET /user/ with the OAuth token: %v", me)
			}
			created := mustAPI(t, reg, cred{bearer: oauth}, 200, "POST", "/user/apptoken", map[string]any{"title": "ci"})
			tv := created["token"].(map[string]any)
			app, _ := tv["token_code"].(string)
			if len(app) != 120 || tv["title"] != "ci" {
				t.Fatalf("app token: %v", created)
			}
			mustAPI(t, reg, cred{bearer: app}, 201, "POST", "/repository", map[string]any{"repository": "viaapp", "visibility": "private"})
			if !pushImage(t, reg, cred{user: "$app", pass: app}, "quayadmin/viaapp", "v1") {
				t.Fatal("push with an app token as $app password failed")
			}
			list := mustAPI(t, reg, cred{bearer: oauth}, 200, "GET", "/user/apptoken", nil)
			if b, _ := json.Marshal(list); strings.Contains(string(b), app) || !strings.Contains(string(b), `"last_accessed":"`) {
				t.Errorf("token list shows the token or no last_accessed: %s", b)
			}
			mustAPI(t, reg, cred{bearer: oauth}, 204, "DELETE", "/user/apptoken/"+tv["uuid"].(string), nil)
			if code, _ := api(t, reg, cred{bearer: app}, "GET", "/user/", nil); code != 401 {
				t.Errorf("revoked app token on the API: %d, want 401", code)
			}
			if tok := token(t, reg, cred{user: "$app", pass: app}, "repository:quayadmin/viaapp:pull"); tok != "" {
				t.Errorf("revoked app token accepted by /v2/auth")
			}
			if code, _ := api(t, reg, cred{bearer: strings.Repeat("A", 40)}, "GET", "/user/", nil); code != 401 {
				t.Errorf("unknown OAuth token: %d, want 401", code)
			}
			// A robot created through the API logs in through the same token flow.
			rb := mustAPI(t, reg, cred{bearer: oauth}, 201, "PUT", "/user/robots/ci", map[string]any{"description": "ci"})
			if !pushImage(t, reg, cred{user: "quayadmin+ci", pass: rb["token"].(string)}, "quayadmin/viaapp", "robot") {
				// A user's robot has no permission until granted.
			} else {
				t.Errorf("a robot without permission pushed")
			}
			mustAPI(t, reg, cred{bearer: oauth}, 200, "PUT", "/repository/quayadmin/viaapp/permissions/user/quayadmin+ci", map[string]any{"role": "write"})
			if !pushImage(t, reg, cred{user: "quayadmin+ci", pass: rb["token"].(string)}, "quayadmin/viaapp", "robot") {
				t.Errorf("robot with write could not push")
			}
		})
	}
}

// TestDeleteRepository: deleting through the API ends the tags, frees the
// name, and queues the repository for garbage collection as Quay does.
func TestDeleteRepository(t *testing.T) {
	for name, newDB := range dialects(t) {
		t.Run(name, func(t *testing.T) {
			dbURI := newDB(t)
			reg := startRegistry(t, dbURI, nil)
			reg.createUser(t, "alice", pw("alice"))
			alice := cred{user: "alice", pass: pw("alice")}
			if !pushImage(t, reg, alice, "alice/gone", "v1") || !pushImage(t, reg, alice, "alice/gone", "v2") {
				t.Fatal("push failed")
			}
			ctx := context.Background()
			repo, err := reg.Srv.Store.Repository(ctx, "alice", "gone")
			if err != nil {
				t.Fatal(err)
			}
			mustAPI(t, reg, alice, 204, "DELETE", "/repository/alice/gone", nil)
			alive, _, err := reg.Srv.Store.ListTagInfo(ctx, store.TagListQuery{RepositoryID: repo.ID, OnlyActive: true})
			if err != nil || len(alive) != 0 {
				t.Fatalf("alive tags after delete: %v %v", alive, err)
			}
			tok := token(t, reg, alice, "repository:alice/gone:pull")
			if code, _ := call(t, "GET", reg.URL+"/v2/alice/gone/manifests/v1", cred{bearer: tok}, nil, nil); code != 404 {
				t.Errorf("pull after delete: %d, want 404", code)
			}
			if code, _ := api(t, reg, alice, "GET", "/repository/alice/gone", nil); code != 404 {
				t.Errorf("API read after delete: %d, want 404", code)
			}
			// The name is free again, and starts empty.
			if !pushImage(t, reg, alice, "alice/gone", "v3") {
				t.Fatal("cannot push to the re-created repository")
			}
			tags := mustAPI(t, reg, alice, 200, "GET", "/repository/alice/gone/tag/", nil)
			if n := len(tags["tags"].([]any)); n != 1 {
				t.Errorf("re-created repository has %d tags, want 1", n)
			}
			driver, dsn := "pgx", dbURI
			if rest, ok := strings.CutPrefix(dbURI, "sqlite:///"); ok {
				driver, dsn = "sqlite", rest
			}
			raw, err := sql.Open(driver, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			var got string
			err = raw.QueryRowContext(ctx, `SELECT d.original_name || ' ' || q.queue_name FROM deletedrepository d
				JOIN queueitem q ON CAST(q.id AS VARCHAR(255)) = d.queue_id WHERE d.repository_id = `+fmt.Sprint(repo.ID)).Scan(&got)
			if err != nil || got != fmt.Sprintf("gone repositorygc/alice/%d/", repo.ID) {
				t.Errorf("deletedrepository/queueitem row: %q %v", got, err)
			}
		})
	}
}

// TestRobotTokenSurvivesRestart: the embedded default keeps the generated
// DATABASE_SECRET_KEY next to its database, so robot tokens keep working
// across restarts (and offline commands can read them).
func TestRobotTokenSurvivesRestart(t *testing.T) {
	dbURI := dialects(t)["sqlite"](t)
	reg := startRegistry(t, dbURI, nil)
	reg.createUser(t, "alice", pw("alice"))
	rb := mustAPI(t, reg, cred{user: "alice", pass: pw("alice")}, 201, "PUT", "/user/robots/bot", nil)
	tok := rb["token"].(string)
	again := startRegistry(t, dbURI, nil)
	if token(t, again, cred{user: "alice+bot", pass: tok}, "repository:alice/x:pull") == "" {
		t.Fatal("the robot token does not work on a restarted registry")
	}
	// A configured DATABASE_SECRET_KEY that differs cannot read it.
	other := startRegistry(t, dbURI, func(s *server.Settings) { s.DatabaseSecretKey = "another-key-entirely" })
	if token(t, other, cred{user: "alice+bot", pass: tok}, "repository:alice/x:pull") != "" {
		t.Fatal("a registry with another DATABASE_SECRET_KEY accepted the robot token")
	}
}

// waitAudit waits for a logentry3 row of kind on acme/app performed by
// principal (a user or robot name).
func waitAudit(t *testing.T, reg *registry, principal, kind string) {
	t.Helper()
	ctx := context.Background()
	name := principal
	if c, ok := map[string]string{"robot-read": "acme+reader", "robot-write": "acme+writer", "robot-admin": "acme+admin"}[principal]; ok {
		name = c
	}
	u, err := reg.Srv.Store.UserByName(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	repo, err := reg.Srv.Store.Repository(ctx, testOrg, "app")
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		rows, err := reg.Srv.Store.Logs(ctx, store.LogQuery{RepositoryID: repo.ID, Kind: kind, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			if r.PerformerID != nil && *r.PerformerID == u.ID {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Errorf("no %s audit row performed by %s", kind, name)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}
