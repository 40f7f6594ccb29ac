package e2e

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/quayctl/quayctl/registry/server"
	"github.com/quayctl/quayctl/registry/store"
)

// TestAutoPrunePolicyAPI drives the namespace auto-prune policy API over
// HTTP: create, list, read, update, delete, bad input, permissions and
// audit entries, for an organisation and a user's own namespace.
func TestAutoPrunePolicyAPI(t *testing.T) {
	for name, uri := range dialects(t) {
		t.Run(name, func(t *testing.T) {
			reg := startRegistry(t, uri(t), func(s *server.Settings) {
				s.AutoPrune = true
				s.AutoPrunePollPeriod = time.Hour // the worker is tested below
				s.SuperUsers = []string{"root"}
				s.SuperusersFullAccess = true
			})
			creds := map[string]cred{"anonymous": {}}
			for _, u := range []string{"root", "olivia", "mike", "eve"} {
				reg.createUser(t, u, pw(u))
				creds[u] = cred{user: u, pass: pw(u)}
			}
			owner := creds["olivia"]
			mustAPI(t, reg, owner, 201, "POST", "/organization/", map[string]any{"name": "acme", "email": "acme@example.com"})
			mustAPI(t, reg, owner, 200, "PUT", "/organization/acme/team/readers", map[string]any{"role": "member"})
			mustAPI(t, reg, owner, 200, "PUT", "/organization/acme/team/readers/members/mike", nil)
			const base = "/organization/acme/autoprunepolicy/"

			created := mustAPI(t, reg, owner, 201, "POST", base, map[string]any{"method": "number_of_tags", "value": 10})
			id, _ := created["uuid"].(string)
			if len(id) != 36 {
				t.Fatalf("create answered %v, want a uuid", created)
			}
			mustAPI(t, reg, owner, 201, "POST", base, map[string]any{"method": "creation_date", "value": "7d", "tagPattern": "^dev-", "tagPatternMatches": false})

			list := mustAPI(t, reg, owner, 200, "GET", base, nil)
			pols, _ := list["policies"].([]any)
			if len(pols) != 2 {
				t.Fatalf("list = %v, want two policies", list)
			}
			want0 := map[string]any{"uuid": id, "method": "number_of_tags", "value": float64(10), "tagPattern": nil, "tagPatternMatches": true}
			if fmt.Sprint(pols[0]) != fmt.Sprint(want0) {
				t.Errorf("first policy %v, want %v", pols[0], want0)
			}
			if p1 := pols[1].(map[string]any); p1["value"] != "7d" || p1["tagPattern"] != "^dev-" || p1["tagPatternMatches"] != false {
				t.Errorf("second policy %v", p1)
			}

			if code, _ := api(t, reg, owner, "PUT", base+id, map[string]any{"method": "number_of_tags", "value": 3, "tagPattern": "^v"}); code != http.StatusNoContent {
				t.Fatalf("update: %d, want 204", code)
			}
			if got := mustAPI(t, reg, owner, 200, "GET", base+id, nil); got["value"] != float64(3) || got["tagPattern"] != "^v" {
				t.Errorf("after update: %v", got)
			}

			bad := []struct {
				name, method, path string
				body               any
				want               int
				detail             string
			}{
				{"unknown method", "POST", base, map[string]any{"method": "newest", "value": 1}, 400, "unknown method"},
				{"no tags kept", "POST", base, map[string]any{"method": "number_of_tags", "value": 0}, 400, "at least 1"},
				{"bad duration", "POST", base, map[string]any{"method": "creation_date", "value": "7 days"}, 400, "is not a duration"},
				{"bad regex", "POST", base, map[string]any{"method": "number_of_tags", "value": 1, "tagPattern": "(["}, 400, "regular expression"},
				{"empty pattern", "POST", base, map[string]any{"method": "number_of_tags", "value": 1, "tagPattern": ""}, 400, "tagPattern is empty"},
				{"duplicate", "POST", base, map[string]any{"method": "creation_date", "value": "7d", "tagPattern": "^dev-", "tagPatternMatches": false}, 400, "already exists"},
				{"not JSON", "POST", base, "{", 400, "not valid JSON"},
				{"update to bad input", "PUT", base + id, map[string]any{"method": "number_of_tags", "value": -1}, 400, "at least 1"},
				{"unknown uuid", "GET", base + "00000000-0000-0000-0000-000000000000", nil, 404, "Policy not found"},
				{"update unknown uuid", "PUT", base + "00000000-0000-0000-0000-000000000000", map[string]any{"method": "number_of_tags", "value": 1}, 404, ""},
				{"unknown organisation", "GET", "/organization/nope/autoprunepolicy/", nil, 403, ""},
			}
			for _, tc := range bad {
				code, m := api(t, reg, owner, tc.method, tc.path, tc.body)
				if code != tc.want || !strings.Contains(fmt.Sprint(m["detail"]), tc.detail) {
					t.Errorf("%s: %d %v, want %d with %q", tc.name, code, m["detail"], tc.want, tc.detail)
				}
			}

			perms := []struct {
				who  string
				want int
			}{{"anonymous", 401}, {"eve", 403}, {"mike", 403}, {"root", 200}}
			for _, p := range perms {
				if code, _ := api(t, reg, creds[p.who], "GET", base, nil); code != p.want {
					t.Errorf("%s lists policies: %d, want %d", p.who, code, p.want)
				}
				if p.want != 200 {
					if code, _ := api(t, reg, creds[p.who], "POST", base, map[string]any{"method": "number_of_tags", "value": 99}); code != p.want {
						t.Errorf("%s creates a policy: %d, want %d", p.who, code, p.want)
					}
					if code, _ := api(t, reg, creds[p.who], "DELETE", base+id, nil); code != p.want {
						t.Errorf("%s deletes a policy: %d, want %d", p.who, code, p.want)
					}
				}
			}

			if got := mustAPI(t, reg, owner, 200, "DELETE", base+id, nil); got["uuid"] != id {
				t.Errorf("delete answered %v", got)
			}
			mustAPI(t, reg, owner, 404, "GET", base+id, nil)
			mustAPI(t, reg, owner, 404, "DELETE", base+id, nil)

			// The caller's own namespace.
			mine := mustAPI(t, reg, creds["eve"], 201, "POST", "/user/autoprunepolicy/", map[string]any{"method": "creation_date", "value": "2w"})
			if l := mustAPI(t, reg, creds["eve"], 200, "GET", "/user/autoprunepolicy/", nil); len(l["policies"].([]any)) != 1 {
				t.Errorf("user policies %v", l)
			}
			mustAPI(t, reg, creds["eve"], 200, "GET", "/user/autoprunepolicy/"+mine["uuid"].(string), nil)
			mustAPI(t, reg, creds["olivia"], 404, "GET", "/user/autoprunepolicy/"+mine["uuid"].(string), nil)
			mustAPI(t, reg, cred{}, 401, "GET", "/user/autoprunepolicy/", nil)

			// A repository's own policies, for its administrators.
			mustAPI(t, reg, owner, 201, "POST", "/repository", map[string]any{"namespace": "acme", "repository": "app", "visibility": "private"})
			mustAPI(t, reg, owner, 200, "PUT", "/repository/acme/app/permissions/user/mike", map[string]any{"role": "read"})
			const rbase = "/repository/acme/app/autoprunepolicy/"
			rp := mustAPI(t, reg, owner, 201, "POST", rbase, map[string]any{"method": "creation_date", "value": "30d", "tagPattern": "^pr-"})
			rid, _ := rp["uuid"].(string)
			if got := mustAPI(t, reg, owner, 200, "GET", rbase+rid, nil); got["value"] != "30d" || got["tagPattern"] != "^pr-" {
				t.Errorf("repository policy %v", got)
			}
			mustAPI(t, reg, owner, 400, "POST", rbase, map[string]any{"method": "creation_date", "value": "30d", "tagPattern": "^pr-"})
			mustAPI(t, reg, owner, 400, "POST", rbase, map[string]any{"method": "creation_date", "value": "30 d"})
			mustAPI(t, reg, creds["mike"], 403, "GET", rbase, nil)
			mustAPI(t, reg, creds["mike"], 403, "POST", rbase, map[string]any{"method": "number_of_tags", "value": 1})
			mustAPI(t, reg, creds["eve"], 403, "GET", rbase, nil)
			mustAPI(t, reg, owner, 404, "GET", "/repository/acme/app/autoprunepolicy/"+mine["uuid"].(string), nil) // eve's, elsewhere
			if code, _ := api(t, reg, owner, "PUT", rbase+rid, map[string]any{"method": "number_of_tags", "value": 4}); code != http.StatusNoContent {
				t.Errorf("update repository policy: %d", code)
			}
			if l := mustAPI(t, reg, owner, 200, "GET", rbase, nil); len(l["policies"].([]any)) != 1 || l["policies"].([]any)[0].(map[string]any)["value"] != float64(4) {
				t.Errorf("repository policies %v", l)
			}
			if l := mustAPI(t, reg, owner, 200, "GET", base, nil); len(l["policies"].([]any)) != 1 {
				t.Errorf("the repository's policy shows among the organisation's: %v", l)
			}
			mustAPI(t, reg, owner, 200, "DELETE", rbase+rid, nil)
			mustAPI(t, reg, owner, 404, "GET", rbase+rid, nil)

			// A repository whose name has a slash in it.
			mustAPI(t, reg, owner, 201, "POST", "/repository", map[string]any{"namespace": "acme", "repository": "team/app", "visibility": "private"})
			const nbase = "/repository/acme/team/app/autoprunepolicy/"
			np := mustAPI(t, reg, owner, 201, "POST", nbase, map[string]any{"method": "number_of_tags", "value": 5})
			nid, _ := np["uuid"].(string)
			if got := mustAPI(t, reg, owner, 200, "GET", nbase+nid, nil); got["value"] != float64(5) {
				t.Errorf("nested repository's policy %v", got)
			}
			if l := mustAPI(t, reg, owner, 200, "GET", nbase, nil); len(l["policies"].([]any)) != 1 {
				t.Errorf("nested repository's policies %v", l)
			}
			mustAPI(t, reg, owner, 405, "POST", nbase+nid, nil)
			mustAPI(t, reg, creds["mike"], 403, "GET", nbase, nil)
			mustAPI(t, reg, owner, 404, "GET", "/repository/acme/app/autoprunepolicy/"+nid, nil) // another repository's
			mustAPI(t, reg, owner, 200, "DELETE", nbase+nid, nil)
			mustAPI(t, reg, owner, 404, "GET", nbase+nid, nil)

			ctx := context.Background()
			org, err := reg.Srv.Store.UserByName(ctx, "acme")
			if err != nil {
				t.Fatal(err)
			}
			for kind, want := range map[string]int{"create_namespace_autoprune_policy": 2, "update_namespace_autoprune_policy": 1, "delete_namespace_autoprune_policy": 1,
				"create_repository_autoprune_policy": 2, "update_repository_autoprune_policy": 1, "delete_repository_autoprune_policy": 2} {
				rows, err := reg.Srv.Store.Logs(ctx, store.LogQuery{AccountID: org.ID, Kind: kind})
				if err != nil {
					t.Fatal(err)
				}
				if len(rows) != want {
					t.Errorf("%d %s audit entries, want %d", len(rows), kind, want)
				}
			}
		})
	}
}

// TestAutoPruneFeatureOff: without FEATURE_AUTO_PRUNE the API is absent.
func TestAutoPruneFeatureOff(t *testing.T) {
	reg := startRegistry(t, dialects(t)["sqlite"](t), nil)
	reg.createUser(t, "olivia", pw("olivia"))
	c := cred{user: "olivia", pass: pw("olivia")}
	mustAPI(t, reg, c, 404, "GET", "/user/autoprunepolicy/", nil)
	mustAPI(t, reg, c, 404, "POST", "/user/autoprunepolicy/", map[string]any{"method": "number_of_tags", "value": 1})
}

// TestAutoPruneWorker: the server's worker prunes a namespace after a
// policy is created, oldest tags first, leaving audit entries.
func TestAutoPruneWorker(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the worker")
	}
	for name, uri := range dialects(t) {
		t.Run(name, func(t *testing.T) {
			reg := startRegistry(t, uri(t), func(s *server.Settings) {
				s.AutoPrune = true
				s.AutoPrunePollPeriod = 100 * time.Millisecond
			})
			reg.createUser(t, "olivia", pw("olivia"))
			owner := cred{user: "olivia", pass: pw("olivia")}
			mustAPI(t, reg, owner, 201, "POST", "/organization/", map[string]any{"name": "acme", "email": "acme@example.com"})
			for _, repo := range []string{"acme/app", "acme/web"} {
				for i := range 4 {
					pushDistinct(t, reg, owner, repo, fmt.Sprintf("t%d", i), fmt.Sprint(i))
					time.Sleep(5 * time.Millisecond) // distinct start times
				}
			}
			mustAPI(t, reg, owner, 201, "POST", "/organization/acme/autoprunepolicy/", map[string]any{"method": "number_of_tags", "value": 2})
			deadline := time.Now().Add(15 * time.Second)
			for _, repo := range []string{"acme/app", "acme/web"} {
				for {
					tags := v2Tags(t, reg, owner, repo)
					if slices.Equal(tags, []string{"t2", "t3"}) {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("%s still has %v, want [t2 t3] after auto-prune", repo, tags)
					}
					time.Sleep(100 * time.Millisecond)
				}
			}
			ctx := context.Background()
			org, _ := reg.Srv.Store.UserByName(ctx, "acme")
			rows, err := reg.Srv.Store.Logs(ctx, store.LogQuery{AccountID: org.ID, Kind: "autoprune_tag_delete"})
			if err != nil {
				t.Fatal(err)
			}
			var pruned []string
			for _, r := range rows {
				pruned = append(pruned, fmt.Sprint(r.Metadata["repo"], ":", r.Metadata["tag"]))
			}
			slices.Sort(pruned)
			if want := []string{"app:t0", "app:t1", "web:t0", "web:t1"}; !slices.Equal(pruned, want) {
				t.Errorf("audit entries for %v, want %v", pruned, want)
			}
			status, _, err := reg.Srv.Store.AutoPruneTaskStatus(ctx, org.ID)
			if err != nil || status != store.AutoPruneSuccess {
				t.Errorf("task status %q %v", status, err)
			}
		})
	}
}

// TestAutoPruneRegistryPolicy: DEFAULT_NAMESPACE_AUTOPRUNE_POLICY prunes
// every enabled user and organisation through the server's worker, with
// Quay's audit entries, then is not due again within its period; a
// disabled user's namespace is left alone. An invalid policy stops the
// server from starting.
func TestAutoPruneRegistryPolicy(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the worker")
	}
	for name, uri := range dialects(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			dbURI := uri(t)
			// The worker runs at once when the server starts: hold the pass
			// from outside until the tags exist, as another replica would.
			other, err := store.Open(ctx, dbURI)
			if err != nil {
				t.Fatal(err)
			}
			defer other.Close()
			if err := other.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			claim, err := other.ClaimRegistryAutoPrune(ctx, time.Hour)
			if err != nil || claim == "" {
				t.Fatalf("hold the pass: %q, %v", claim, err)
			}
			reg := startRegistry(t, dbURI, func(s *server.Settings) {
				s.AutoPrune = true
				s.AutoPrunePollPeriod = 100 * time.Millisecond
				s.AutoPruneRegistryPolicy = map[string]any{"method": "number_of_tags", "value": 2}
				s.AutoPruneNamespacePage = 1 // several pages of namespaces
			})
			for _, u := range []string{"olivia", "dora"} {
				reg.createUser(t, u, pw(u))
			}
			olivia, dora := cred{user: "olivia", pass: pw("olivia")}, cred{user: "dora", pass: pw("dora")}
			mustAPI(t, reg, olivia, 201, "POST", "/organization/", map[string]any{"name": "acme", "email": "acme@example.com"})
			for _, r := range []struct {
				c    cred
				repo string
			}{{olivia, "olivia/app"}, {olivia, "acme/web"}, {dora, "dora/app"}} {
				for i := range 4 {
					pushDistinct(t, reg, r.c, r.repo, fmt.Sprintf("t%d", i), r.repo+fmt.Sprint(i))
					time.Sleep(5 * time.Millisecond) // distinct start times
				}
			}
			du, err := reg.Srv.Store.UserByName(ctx, "dora")
			if err != nil {
				t.Fatal(err)
			}
			if err := reg.Srv.Store.SetUserEnabled(ctx, du.ID, false); err != nil {
				t.Fatal(err)
			}
			// Released as due now: the worker takes it on its next tick.
			if err := other.FinishRegistryAutoPrune(ctx, claim, 0); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(15 * time.Second)
			for _, repo := range []string{"olivia/app", "acme/web"} {
				for {
					if tags := v2Tags(t, reg, olivia, repo); slices.Equal(tags, []string{"t2", "t3"}) {
						break
					} else if time.Now().After(deadline) {
						t.Fatalf("%s still has %v, want [t2 t3] after the registry-wide policy", repo, tags)
					}
					time.Sleep(100 * time.Millisecond)
				}
			}
			for ns, want := range map[string][]string{"olivia": {"app:t0", "app:t1"}, "acme": {"web:t0", "web:t1"}} {
				u, _ := reg.Srv.Store.UserByName(ctx, ns)
				rows, err := reg.Srv.Store.Logs(ctx, store.LogQuery{AccountID: u.ID, Kind: "autoprune_tag_delete"})
				if err != nil {
					t.Fatal(err)
				}
				var pruned []string
				for _, r := range rows {
					pruned = append(pruned, fmt.Sprint(r.Metadata["repo"], ":", r.Metadata["tag"]))
					if r.Metadata["method"] != "number_of_tags" {
						t.Errorf("audit metadata %v", r.Metadata)
					}
				}
				slices.Sort(pruned)
				if !slices.Equal(pruned, want) {
					t.Errorf("%s: audit entries for %v, want %v", ns, pruned, want)
				}
			}
			repo, err := reg.Srv.Store.Repository(ctx, "dora", "app")
			if err != nil {
				t.Fatal(err)
			}
			if tags, err := reg.Srv.Store.PrunableTags(ctx, repo.ID); err != nil || len(tags) != 4 {
				t.Errorf("the disabled user's repository has %d tags (%v), want all 4", len(tags), err)
			}
			// Done for the day: another pass does not run.
			if _, ran, err := reg.Srv.AutoPruner().PruneRegistry(ctx); err != nil || ran {
				t.Errorf("a second pass the same day: ran %v, %v", ran, err)
			}
		})
	}
	t.Run("invalid policy", func(t *testing.T) {
		s := server.Settings{DBURI: dialects(t)["sqlite"](t), Preference: []string{"default"}, AutoPrune: true,
			Locations:               map[string]server.Location{"default": {Driver: "LocalStorage", Params: map[string]any{"storage_path": t.TempDir()}}},
			AutoPruneRegistryPolicy: map[string]any{"method": "number_of_tags", "value": "ten"}}
		srv, err := server.New(context.Background(), s, server.Options{})
		if err == nil {
			srv.Close()
			t.Fatal("server.New accepted an invalid DEFAULT_NAMESPACE_AUTOPRUNE_POLICY")
		}
		if msg := err.Error(); !strings.Contains(msg, "DEFAULT_NAMESPACE_AUTOPRUNE_POLICY") || !strings.Contains(msg, "whole number") {
			t.Errorf("error %q should name the key and what is wrong", msg)
		}
	})
}
