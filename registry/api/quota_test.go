package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/quayctl/quayctl/internal/testpg"
	"github.com/quayctl/quayctl/internal/testregistry"
	"github.com/quayctl/quayctl/registry/server"
	"github.com/quayctl/quayctl/registry/store"
)

func TestMain(m *testing.M) { testpg.Main(m) }

type quotaWorld struct {
	reg *testregistry.Registry
	org *store.User
}

// startQuota runs a registry with quota management on: "root" is a
// superuser with full access, "olivia" owns organisation acme, "mike" is
// a member of it, "eve" is not.
func startQuota(t *testing.T, dbURI string, mutate func(*server.Settings)) *quotaWorld {
	t.Helper()
	reg := testregistry.Start(t, dbURI, func(s *server.Settings) {
		s.QuotaManagement, s.EditQuota, s.VerifyQuota = true, true, true
		s.SuperUsers, s.SuperusersFullAccess = []string{"root"}, true
		if mutate != nil {
			mutate(s)
		}
	})
	ctx := context.Background()
	for _, u := range []string{"root", "olivia", "mike", "eve"} {
		reg.CreateUser(t, u, u+"-password1")
	}
	olivia, _ := reg.Srv.Store.UserByName(ctx, "olivia")
	mike, _ := reg.Srv.Store.UserByName(ctx, "mike")
	org, err := reg.Srv.Store.CreateOrganization(ctx, "acme", "", olivia.ID)
	if err != nil {
		t.Fatal(err)
	}
	team, err := reg.Srv.Store.CreateTeam(ctx, org.ID, "readers", store.TeamRoleMember, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Srv.Store.AddTeamMember(ctx, team.ID, mike.ID); err != nil {
		t.Fatal(err)
	}
	return &quotaWorld{reg: reg, org: org}
}

// do calls the API as user (basic auth; "" for anonymous) with a raw JSON
// body and returns the status and the decoded answer.
func (w *quotaWorld) do(t *testing.T, user, method, path, body string) (int, any) {
	t.Helper()
	code, b := apiRequest(t, w.reg, user, method, path, body)
	var v any
	if len(bytes.TrimSpace(b)) > 0 {
		if err := json.Unmarshal(b, &v); err != nil {
			v = string(b) // the mux's own 404 for routes not served
		}
	}
	return code, v
}

func jsonString(v any) string { b, _ := json.Marshal(v); return string(b) }

// TestQuotaAPI walks through the quota endpoints in order: each step's
// status and, where given, body (exact JSON) or error text.
func TestQuotaAPI(t *testing.T) {
	for name, uri := range dialects() {
		t.Run(name, func(t *testing.T) {
			w := startQuota(t, uri(t), nil)
			steps := []struct {
				user, method, path, body string
				status                   int
				want                     string // exact JSON of the answer, if not ""
				wantErr                  string // substring of error_message, if not ""
			}{
				{"mike", "GET", "/organization/acme/quota", "", 200, `[]`, ""},
				{"eve", "GET", "/organization/acme/quota", "", 403, "", "Unauthorized"},
				{"", "GET", "/organization/acme/quota", "", 401, "", ""},
				{"olivia", "POST", "/organization/acme/quota", `{"limit_bytes":1000}`, 403, "", "Unauthorized"}, // owners are not superusers
				{"root", "POST", "/organization/acme/quota", `{"limit_bytes":-5}`, 400, "", "more than zero"},
				{"root", "POST", "/organization/acme/quota", `{"limit":"ten gigs"}`, 400, "", "invalid limit"},
				{"root", "POST", "/organization/acme/quota", `{}`, 400, "", "missing limit_bytes"},
				{"root", "POST", "/organization/acme/quota", `{"limit_bytes":"lots"}`, 400, "", "whole number"},
				{"root", "POST", "/organization/acme/quota", `{"limit":"10 GiB"}`, 201, `"Created"`, ""},
				{"root", "POST", "/organization/acme/quota", `{"limit_bytes":1000}`, 400, "", "already exists"},
				{"mike", "GET", "/organization/acme/quota", "", 200,
					`[{"default_config":false,"default_config_exists":false,"id":1,"limit":"10.0 GiB","limit_bytes":10737418240,"limits":[]}]`, ""},
				{"root", "PUT", "/organization/acme/quota/1", `{"limit":"5 G"}`, 200,
					`{"default_config":false,"default_config_exists":false,"id":1,"limit":"4.7 GiB","limit_bytes":5000000000,"limits":[]}`, ""},
				{"root", "PUT", "/organization/acme/quota/99", `{"limit_bytes":5}`, 404, "", ""},
				{"root", "POST", "/organization/acme/quota/1/limit", `{"type":"warning","threshold_percent":80}`, 201, `"Created"`, ""},
				{"root", "POST", "/organization/acme/quota/1/limit", `{"type":"Warning","threshold_percent":80}`, 400, "", "already exists"},
				{"root", "POST", "/organization/acme/quota/1/limit", `{"type":"Reject","threshold_percent":0}`, 400, "", "between 1 and 100"},
				{"root", "POST", "/organization/acme/quota/1/limit", `{"type":"Reject","threshold_percent":101}`, 400, "", "between 1 and 100"},
				{"root", "POST", "/organization/acme/quota/1/limit", `{"type":"Block","threshold_percent":50}`, 400, "", `"Warning" or "Reject"`},
				{"root", "POST", "/organization/acme/quota/1/limit", `{"type":"Reject"}`, 400, "", "threshold_percent"},
				{"root", "POST", "/organization/acme/quota/1/limit", `{"type":"Reject","threshold_percent":100}`, 201, `"Created"`, ""},
				{"mike", "GET", "/organization/acme/quota/1/limit", "", 200,
					`[{"id":1,"limit_percent":80,"type":"Warning"},{"id":2,"limit_percent":100,"type":"Reject"}]`, ""},
				{"root", "PUT", "/organization/acme/quota/1/limit/1", `{"threshold_percent":70}`, 200,
					`{"default_config":false,"default_config_exists":false,"id":1,"limit":"4.7 GiB","limit_bytes":5000000000,"limits":[{"id":1,"limit_percent":70,"type":"Warning"},{"id":2,"limit_percent":100,"type":"Reject"}]}`, ""},
				{"mike", "GET", "/organization/acme/quota/1/limit/1", "", 200, `{"id":1,"limit_percent":70,"type":"Warning"}`, ""},
				{"mike", "DELETE", "/organization/acme/quota/1/limit/1", "", 403, "", ""},
				{"root", "DELETE", "/organization/acme/quota/1/limit/1", "", 204, "", ""},
				{"root", "DELETE", "/organization/acme/quota/1/limit/1", "", 404, "", ""},
				{"root", "GET", "/superuser/organization/acme/quota", "", 200,
					`[{"default_config":false,"default_config_exists":false,"id":1,"limit":"4.7 GiB","limit_bytes":5000000000,"limits":[{"id":2,"limit_percent":100,"type":"Reject"}]}]`, ""},
				{"olivia", "GET", "/superuser/organization/acme/quota", "", 403, "", ""},
				{"root", "POST", "/superuser/users/eve/quota", `{"limit_bytes":2048}`, 201, `"Created"`, ""},
				{"root", "POST", "/superuser/users/acme/quota", `{"limit_bytes":2048}`, 404, "", ""}, // an organisation, not a user
				{"eve", "GET", "/user/quota", "", 200,
					`[{"default_config":false,"default_config_exists":false,"id":2,"limit":"2.0 KiB","limit_bytes":2048,"limits":[]}]`, ""},
				{"eve", "GET", "/user/quota/2", "", 200,
					`{"default_config":false,"default_config_exists":false,"id":2,"limit":"2.0 KiB","limit_bytes":2048,"limits":[]}`, ""},
				{"mike", "GET", "/user/quota/2", "", 404, "", ""}, // someone else's quota
				{"root", "DELETE", "/superuser/organization/acme/quota/1", "", 204, "", ""},
				{"mike", "GET", "/organization/acme/quota", "", 200, `[]`, ""},
				{"root", "POST", "/superuser/registrysize/", "", 201, `"Created"`, ""},
			}
			for i, s := range steps {
				code, got := w.do(t, s.user, s.method, s.path, s.body)
				if code != s.status {
					t.Fatalf("step %d %s %s %s as %q: %d %s, want %d", i, s.method, s.path, s.body, s.user, code, jsonString(got), s.status)
				}
				if s.want != "" && jsonString(got) != s.want {
					t.Errorf("step %d %s %s:\n got %s\nwant %s", i, s.method, s.path, jsonString(got), s.want)
				}
				if s.wantErr != "" {
					m, _ := got.(map[string]any)
					if msg, _ := m["error_message"].(string); !strings.Contains(msg, s.wantErr) {
						t.Errorf("step %d %s %s: error %q, want it to mention %q", i, s.method, s.path, msg, s.wantErr)
					}
				}
			}
			// The organisation view carries Quay's quota_report.
			if code, _ := w.do(t, "root", "POST", "/organization/acme/quota", `{"limit_bytes":4096}`); code != 201 {
				t.Fatalf("create quota: %d", code)
			}
			_, org := w.do(t, "mike", "GET", "/organization/acme", "")
			rep, _ := org.(map[string]any)["quota_report"].(map[string]any)
			if rep == nil || rep["configured_quota"] != float64(4096) || rep["quota_bytes"] != float64(0) ||
				rep["backfill_status"] != rep["running_backfill"] || rep["backfill_status"] == nil {
				t.Errorf("organization quota_report = %s", jsonString(rep))
			}
			// Every change was audited with Quay's kinds.
			for kind, want := range map[string]int{"org_create_quota": 3, "org_change_quota": 1, "org_delete_quota": 1,
				"org_create_quota_limit": 2, "org_change_quota_limit": 1, "org_delete_quota_limit": 1} {
				recs, err := w.reg.Srv.Store.Logs(context.Background(), store.LogQuery{Kind: kind})
				if err != nil {
					t.Fatal(err)
				}
				if len(recs) != want {
					t.Errorf("%d %s audit rows, want %d", len(recs), kind, want)
				}
			}
		})
	}
}

// TestQuotaAPIFeatures checks the feature switches: quota management off
// hides everything, FEATURE_EDIT_QUOTA off hides changes, and the
// system default shows as a synthetic quota.
func TestQuotaAPIFeatures(t *testing.T) {
	uri := dialects()["sqlite"]
	cases := []struct {
		name         string
		mutate       func(*server.Settings)
		method, body string
		path         string
		status       int
		want         string
	}{
		{"feature off", func(s *server.Settings) { s.QuotaManagement = false }, "GET", "", "/organization/acme/quota", 404, ""},
		{"edit off: create hidden", func(s *server.Settings) { s.EditQuota = false }, "POST", `{"limit_bytes":5}`, "/organization/acme/quota", 404, ""},
		{"edit off: list works", func(s *server.Settings) { s.EditQuota = false }, "GET", "", "/organization/acme/quota", 200, `[]`},
		{"system default", func(s *server.Settings) { s.DefaultRejectQuotaBytes = 1 << 30 }, "GET", "", "/organization/acme/quota", 200,
			`[{"default_config":true,"default_config_exists":true,"limit":"1.0 GiB","limit_bytes":1073741824,"limits":[]}]`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := startQuota(t, uri(t), c.mutate)
			code, got := w.do(t, "root", c.method, c.path, c.body)
			if code != c.status || (c.want != "" && jsonString(got) != c.want) {
				t.Fatalf("%d %s, want %d %s", code, jsonString(got), c.status, c.want)
			}
		})
	}
}
