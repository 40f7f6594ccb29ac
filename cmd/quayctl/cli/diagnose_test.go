package cli

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/quayctl/quayctl/collectors"
	"github.com/quayctl/quayctl/diag/checks"
)

func TestDiagnoseFlags(t *testing.T) {
	clear := func(o *DiagnoseOptions) { o.IO, o.Deployment, o.HTTPClient, o.Checks, o.Now = nil, nil, nil, nil, nil }
	def := DiagnoseOptions{Output: "table", Timeout: 30 * time.Second, Since: 24 * time.Hour}
	with := func(f func(*DiagnoseOptions)) DiagnoseOptions { o := def; f(&o); return o }
	tkFlagTable(t, nil, NewCmdDiagnose, clear, []tkFlagCase[DiagnoseOptions]{
		{name: "defaults", args: []string{"diagnose"}, want: def},
		{name: "areas", args: []string{"diagnose", "--only", "database,storage", "--skip", "database.bloat", "-o", "json", "--podman"},
			want: with(func(o *DiagnoseOptions) {
				o.Only, o.Skip, o.Output = []string{"database", "storage"}, []string{"database.bloat"}, "json"
				o.Target = TargetOptions{Kind: "podman"}
			})},
		{name: "tuning", args: []string{"diagnose", "--timeout", "5s", "--since", "1h", "-v", "--insecure", "--url", "https://q"},
			want: with(func(o *DiagnoseOptions) {
				o.Timeout, o.Since, o.Verbose, o.Insecure = 5*time.Second, time.Hour, true, true
				o.Target = TargetOptions{Kind: "direct", URL: "https://q"}
			})},
		{name: "unknown area", args: []string{"diagnose", "--only", "databse"},
			wantErr: `unknown area or check "databse" (areas: containers, health, config, database, auth, storage, geo-replication, mirroring, clair, logs)`},
		{name: "bad timeout", args: []string{"diagnose", "--timeout", "0s"}, wantErr: "--timeout must be positive, such as 30s"},
		{name: "argument", args: []string{"diagnose", "database"}, wantErr: "quayctl diagnose takes 0 argument(s): no arguments; choose areas with --only"},
	})
	tkFlagTable(t, []string{"db"}, NewCmdDBCheck, clear, []tkFlagCase[DiagnoseOptions]{
		{name: "db check", args: []string{"db", "check", "--db", "postgresql://u@h/q"},
			want: with(func(o *DiagnoseOptions) {
				o.Only = []string{checks.AreaDatabase}
				o.Target = TargetOptions{Kind: "direct", DBURI: "postgresql://u@h/q"}
			})},
	})
}

const diagnoseConfig = `SERVER_HOSTNAME: quay.example.com
PREFERRED_URL_SCHEME: http
TESTING: false
SETUP_COMPLETE: true
DB_URI: sqlite:////datastorage/quay.db
SECRET_KEY: SEED-diag-secret-1f2e
DATABASE_SECRET_KEY: SEED-diag-dbkey-9a8b
AUTHENTICATION_TYPE: Database
SUPER_USERS: [admin]
DISTRIBUTED_STORAGE_CONFIG:
  default: [LocalStorage, {storage_path: /datastorage/registry}]
DISTRIBUTED_STORAGE_PREFERENCE: [default]
DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS: [default]
BUILDLOGS_REDIS: {host: redis, password: SEED-diag-redis-77aa}
USER_EVENTS_REDIS: {host: redis}
`

var elapsedRE = regexp.MustCompile(`\d+ ms|in \d+(\.\d+)?s`)

// TestDiagnoseRun runs health, config and auth over a fake podman
// deployment and a fake Quay: the text, verbose and JSON reports are
// golden, and exit codes follow the worst finding.
func TestDiagnoseRun(t *testing.T) {
	unhealthy := `{"data":{"services":{"database":true,"redis":false,"storage":true,"auth":true}},"status_code":503}`
	srv := fakeQuay(t, map[string]string{
		"instance": `{"data":{"services":{"database":true,"disk_space":true}},"status_code":200}`,
		"endtoend": unhealthy,
		"warning":  `{"data":{"services":{"disk_space_warning":true}},"status_code":200}`,
	}, map[string]int{"endtoend": 503})
	d := &fakeDeployment{kind: "podman", name: "unix:///run/podman/podman.sock",
		comps: []collectors.Component{{Name: "quay", Instance: "quay-app", State: "running", Ready: true}},
		files: map[string]string{"quay:/conf/stack/config.yaml": diagnoseConfig}}
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		name, output string
		verbose      bool
		only         []string
		code         int
	}{
		{"diagnose_health.txt", "table", false, []string{"health", "config", "auth"}, 2},
		{"diagnose_health_verbose.txt", "table", true, []string{"health", "config", "auth"}, 2},
		{"diagnose_health.json", "json", false, []string{"health", "config", "auth"}, 2},
		{"diagnose_config.txt", "table", false, []string{"config", "auth.type"}, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			io, out, errOut := tkIO("", false)
			opts := &DiagnoseOptions{IO: io, Target: TargetOptions{URL: srv.URL}, Output: tt.output, Verbose: tt.verbose, Only: tt.only,
				Timeout: 5 * time.Second, Since: time.Hour, HTTPClient: healthClient, Checks: checks.All,
				Deployment: func(context.Context) (collectors.Deployment, error) { return d, nil },
				Now:        func() time.Time { return t0 }}
			err := diagnoseRun(context.Background(), opts)
			code := 0
			if ce, ok := err.(*exitCodeError); ok {
				code = ce.code
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tt.code {
				t.Errorf("exit %d, want %d\n%s", code, tt.code, out.String())
			}
			got := strings.ReplaceAll(out.String(), srv.URL, "http://QUAY")
			got = elapsedRE.ReplaceAllString(got, "N ms")
			for _, s := range []string{"SEED-diag-secret-1f2e", "SEED-diag-dbkey-9a8b", "SEED-diag-redis-77aa"} {
				if strings.Contains(got+errOut.String(), s) {
					t.Errorf("secret %s in the report", s)
				}
			}
			golden(t, tt.name+".golden", got)
		})
	}
}

// TestDiagnoseUnreachableTarget: no deployment is one failing finding.
func TestDiagnoseUnreachableTarget(t *testing.T) {
	io, out, _ := tkIO("", false)
	opts := &DiagnoseOptions{IO: io, Output: "json", Timeout: time.Second, Since: time.Hour, HTTPClient: healthClient, Checks: checks.All,
		Deployment: func(context.Context) (collectors.Deployment, error) {
			return nil, &UserError{Msg: "no Quay deployment found", Remedy: "name the target"}
		},
		Now: time.Now}
	err := diagnoseRun(context.Background(), opts)
	if ce, ok := err.(*exitCodeError); !ok || ce.code != 2 {
		t.Fatalf("err %v", err)
	}
	if !strings.Contains(out.String(), `"id": "target.reachable"`) || !strings.Contains(out.String(), "cannot reach the deployment: no Quay deployment found") {
		t.Error(out.String())
	}
}
