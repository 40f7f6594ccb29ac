package checks

import (
	"strings"
	"testing"
	"time"

	"github.com/quayctl/quayctl/diag"
)

// TestMirroringLastError: a failed mirror's finding says why the last sync
// failed (database/mirrors.json last_error), redacted.
func TestMirroringLastError(t *testing.T) {
	c := mirroringChecks[0]
	defer func(f func() time.Time) { mirrorNow = f }(mirrorNow)
	mirrorNow = func() time.Time { return time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC) }
	cfg := []byte("FEATURE_REPO_MIRROR: true\n")
	tests := []struct {
		name    string
		mirror  string
		sev     diag.Severity
		title   string
		want    []string // evidence lines, in order
		notWant string
	}{
		{"failed with a reason",
			`{"repository":"acme/failed","enabled":true,"external_reference":"quay.io/a/c","sync_status":"FAIL","sync_retries_remaining":2,"robot":"acme+m","robot_enabled":true,"robot_role":"write","last_error":"unauthorized: authentication required"}`,
			diag.Fail, "mirror of acme/failed: last sync FAILED (2 retries left)",
			[]string{`from quay.io/a/c, status FAIL, robot acme+m (role "write")`, "last sync error: unauthorized: authentication required"}, ""},
		{"the reason is redacted again",
			`{"repository":"acme/failed","enabled":true,"external_reference":"quay.io/a/c","sync_status":"FAIL","robot":"acme+m","robot_enabled":true,"robot_role":"write","last_error":"pull https://bob:hunter2@quay.io/v2/: 401"}`,
			diag.Fail, "last sync FAILED",
			[]string{`status FAIL`, "last sync error: pull https://bob:"}, "hunter2"},
		{"failed without a recorded reason (Quay's older rows)",
			`{"repository":"acme/failed","enabled":true,"external_reference":"quay.io/a/c","sync_status":"FAIL","robot":"acme+m","robot_enabled":true,"robot_role":"write"}`,
			diag.Fail, "last sync FAILED",
			[]string{`status FAIL`}, "last sync error"},
		{"a reason and a robot that cannot write",
			`{"repository":"acme/failed","enabled":true,"external_reference":"quay.io/a/c","sync_status":"FAIL","robot":"acme+r","robot_enabled":true,"robot_role":"read","last_error":"denied: requested access to the resource is denied"}`,
			diag.Fail, "last sync FAILED",
			[]string{"status FAIL", "last sync error: denied: requested access", "robot acme+r has read on the repository, it needs write"}, ""},
		{"a stale reason on a mirror that now syncs is not shown",
			`{"repository":"acme/ok","enabled":true,"external_reference":"quay.io/a/c","sync_status":"SUCCESS","robot":"acme+r","robot_enabled":true,"robot_role":"read","last_error":"old"}`,
			diag.Fail, "robot acme+r has read", []string{"status SUCCESS"}, "last sync error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := runCheck(t, c, diag.MapFacts{diag.FactConfig: cfg, diag.FactDBMirrors: []byte("[" + tt.mirror + "]")},
				want{tt.sev, "mirroring.configs", tt.title})
			ev := evidence(fs[0])
			rest := ev
			for _, w := range tt.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Errorf("evidence lacks %q (in order):\n%s", w, ev)
					break
				}
				rest = rest[i+len(w):]
			}
			if tt.notWant != "" && strings.Contains(ev, tt.notWant) {
				t.Errorf("evidence has %q:\n%s", tt.notWant, ev)
			}
		})
	}
}
