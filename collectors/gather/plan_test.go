package gather_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/quayctl/quayctl/collectors"
	"github.com/quayctl/quayctl/collectors/gather"
	"github.com/quayctl/quayctl/diag"
	"github.com/quayctl/quayctl/internal/redact"
)

// planDeployment is an in-memory deployment with fixed logs and files.
type planDeployment struct {
	comps    []collectors.Component
	compsErr error
	logs     map[string]string // component, or component+":previous"
	logErr   map[string]error
	files    map[string]string // component+":"+path
	logOpts  []collectors.LogOptions
}

func (d *planDeployment) Kind() string { return "podman" }
func (d *planDeployment) Name() string { return "plan-test" }
func (d *planDeployment) Components(context.Context) ([]collectors.Component, error) {
	return d.comps, d.compsErr
}

func (d *planDeployment) Logs(_ context.Context, c string, o collectors.LogOptions, w io.Writer) error {
	d.logOpts = append(d.logOpts, o)
	key := c
	if o.Previous {
		key += ":previous"
	}
	if err := d.logErr[key]; err != nil {
		return err
	}
	_, err := io.WriteString(w, d.logs[key])
	return err
}

func (d *planDeployment) ReadFile(_ context.Context, c, p string) (io.ReadCloser, error) {
	if s, ok := d.files[c+":"+p]; ok {
		return io.NopCloser(strings.NewReader(s)), nil
	}
	return nil, fmt.Errorf("%s: %w", p, fs.ErrNotExist)
}

func (d *planDeployment) Exec(context.Context, string, []string, collectors.ExecOptions) (int, error) {
	return 0, collectors.ErrNotSupported
}

func (d *planDeployment) Stats(context.Context, string) (collectors.Stats, error) {
	return collectors.Stats{}, collectors.ErrNotSupported
}

const planConfig = `SERVER_HOSTNAME: quay.example.com
DB_URI: postgresql://quay:SEED-plan-dbpass-41@db:5432/quay
SECRET_KEY: SEED-plan-secret-42
MY_APP_CREDS: SEED-plan-custom-43
DISTRIBUTED_STORAGE_CONFIG:
  default: [LocalStorage, {storage_path: /datastorage/registry}]
  east: [LocalStorage, {storage_path: /datastorage/east}]
`

func planGatherer(t *testing.T, d collectors.Deployment) *gather.Gatherer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	g := gather.New(ctx, d, gather.Options{Timeout: 10 * time.Second, LogSince: 2 * time.Hour})
	t.Cleanup(func() { cancel(); _ = g.Close() })
	return g
}

func TestPlan(t *testing.T) {
	fixed := []string{"target.json", "components.json", "config/config.yaml", "config/source.json", "clair/config.yaml",
		"openshift/quayregistry.json", "openshift/events.json", "health/instance.json", "health/endtoend.json", "health/warning.json",
		"database/connection.json", "database/connection-from-quay.json", "database/server.json", "database/activity.json",
		"database/locks.json", "database/sizes.json", "database/schema.json", "database/bloat.json", "database/users.json",
		"database/mirrors.json", "database/placement.json", "database/df.txt", "database/postgresql.conf", "storage/locations.json"}
	comps := []collectors.Component{{Name: "database", Instance: "pg"}, {Name: "quay", Instance: "quay-1"}, {Name: "quay", Instance: "quay-2"}}
	for _, tt := range []struct {
		name string
		d    *planDeployment
		want []string
	}{
		{"components and locations", &planDeployment{comps: comps, files: map[string]string{"quay:/conf/stack/config.yaml": planConfig}},
			append(slices.Clone(fixed),
				"components/database/logs.txt", "components/database/logs-previous.txt", "components/database/stats.json", "components/database/inspect.json",
				"components/quay/logs.txt", "components/quay/logs-previous.txt", "components/quay/stats.json", "components/quay/inspect.json",
				"storage/default/probe.json", "storage/default/sample.json", "storage/east/probe.json", "storage/east/sample.json")},
		{"nothing gathered", &planDeployment{compsErr: errors.New("podman is down")}, fixed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := planGatherer(t, tt.d).Plan(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Plan:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

// numbered is n log lines of about 60 bytes, the i-th naming i.
func numbered(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "2026-01-02T03:04:05Z INFO request %06d served in 3 ms ok\n", i)
	}
	return b.String()
}

func TestStreamLogs(t *testing.T) {
	secretLog := "GET /v2/ Authorization: Bearer SEED-plan-bearer-44\n" +
		"connecting to postgresql://quay:SEED-plan-uripass-45@db/quay\n" +
		"-----BEGIN RSA PRIVATE KEY-----\nSEED-plan-pem-46\n-----END RSA PRIVATE KEY-----\n" +
		"my_app_creds=SEED-plan-custom-47\n"
	custom, err := redact.New(redact.WithRules("my_app_creds"))
	if err != nil {
		t.Fatal(err)
	}
	big := numbered(1000) // 57 000 bytes
	comps := []collectors.Component{{Name: "quay", Instance: "q", State: "running", Restarts: 1}, {Name: "redis", Instance: "r", State: "running"}}
	for _, tt := range []struct {
		name     string
		fact     string
		logs     map[string]string
		logErr   map[string]error
		so       gather.StreamOptions
		want     string // exact output ("" = not checked)
		contains []string
		lacks    []string
		rules    redact.Summary
		dropped  bool
		errIs    error
		errHas   string
	}{
		{name: "redacted", fact: "components/quay/logs.txt", logs: map[string]string{"quay": secretLog},
			so:       gather.StreamOptions{Redactor: custom},
			contains: []string{"Authorization: Bearer <redacted>", "postgresql://quay:<redacted>@db/quay", "my_app_creds=<redacted>"},
			lacks:    []string{"SEED-plan"},
			rules:    redact.Summary{"authorization-header": 1, "uri-password": 1, "pem-private-key": 1, "rule:my_app_creds": 1}},
		{name: "no-redact", fact: "components/quay/logs.txt", logs: map[string]string{"quay": secretLog},
			so: gather.StreamOptions{NoRedact: true}, want: secretLog},
		{name: "under the limit", fact: "components/quay/logs.txt", logs: map[string]string{"quay": big},
			so: gather.StreamOptions{LogLimit: int64(len(big))}, want: big},
		{name: "newest bytes kept", fact: "components/quay/logs.txt", logs: map[string]string{"quay": big},
			so:       gather.StreamOptions{LogLimit: 10000},
			contains: []string{"request 000999 served", "[quayctl: ", "older bytes of this log were dropped to keep it under 10000 bytes"},
			lacks:    []string{"request 000000 ", "request 000800 "}, dropped: true},
		{name: "previous", fact: "components/quay/logs-previous.txt", logs: map[string]string{"quay:previous": "crashed\n"}, want: "crashed\n"},
		{name: "previous without restart", fact: "components/redis/logs-previous.txt", errIs: diag.ErrNotApplicable},
		{name: "unknown component", fact: "components/clair/logs.txt", errIs: diag.ErrNotApplicable},
		{name: "logs fail", fact: "components/quay/logs.txt",
			logErr: map[string]error{"quay": errors.New("cannot read log of postgresql://u:SEED-plan-errpass-48@h/db")},
			errHas: "postgresql://u:<redacted>@h/db"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := &planDeployment{comps: comps, logs: tt.logs, logErr: tt.logErr}
			g := planGatherer(t, d)
			tt.so.TempDir = t.TempDir()
			var out bytes.Buffer
			res, err := g.StreamWith(context.Background(), tt.fact, &out, tt.so)
			if tt.errIs != nil || tt.errHas != "" {
				if err == nil || (tt.errIs != nil && !errors.Is(err, tt.errIs)) || !strings.Contains(fmt.Sprint(err), tt.errHas) {
					t.Fatalf("err = %v, want %v containing %q", err, tt.errIs, tt.errHas)
				}
				if strings.Contains(err.Error(), "SEED-plan") {
					t.Errorf("error shows a secret: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := out.String()
			if tt.want != "" && got != tt.want {
				t.Errorf("got %q\nwant %q", got, tt.want)
			}
			for _, s := range tt.contains {
				if !strings.Contains(got, s) {
					t.Errorf("output lacks %q:\n%s", s, got)
				}
			}
			for _, s := range tt.lacks {
				if strings.Contains(got, s) {
					t.Errorf("output has %q", s)
				}
			}
			if tt.rules != nil && fmt.Sprint(res.Redactions) != fmt.Sprint(tt.rules) {
				t.Errorf("redactions = %v, want %v", res.Redactions, tt.rules)
			}
			if tt.dropped {
				if res.DroppedBytes <= 0 || int64(len(got)) > tt.so.LogLimit+200 {
					t.Errorf("dropped %d, kept %d bytes", res.DroppedBytes, len(got))
				}
				// Whole lines only: every line but the note is a request.
				for _, l := range strings.Split(strings.TrimSuffix(got, "\n"), "\n")[1:] {
					if !strings.HasPrefix(l, "2026-01-02T03:04:05Z INFO request ") || !strings.HasSuffix(l, " ok") {
						t.Fatalf("cut line %q", l)
					}
				}
			}
			if o := d.logOpts[len(d.logOpts)-1]; o.Tail != 0 || (!o.Previous && o.Since != 2*time.Hour) {
				t.Errorf("log options %+v: want no tail and the gatherer's since", o)
			}
		})
	}
}

func TestStreamConfig(t *testing.T) {
	custom, err := redact.New(redact.WithRules("^my_app_creds$"))
	if err != nil {
		t.Fatal(err)
	}
	d := &planDeployment{comps: []collectors.Component{{Name: "quay", Instance: "q", State: "running"}, {Name: "database", Instance: "pg", State: "running"}},
		files: map[string]string{"quay:/conf/stack/config.yaml": planConfig,
			"database:/var/lib/postgresql/data/postgresql.conf": "max_connections = 200\n"}}
	for _, tt := range []struct {
		name     string
		fact     string
		so       gather.StreamOptions
		contains []string
		lacks    []string
		rules    redact.Summary
	}{
		{"config, default rules", "config/config.yaml", gather.StreamOptions{},
			[]string{"SECRET_KEY: <redacted>", "postgresql://quay:<redacted>@db:5432/quay", "MY_APP_CREDS: SEED-plan-custom-43"},
			[]string{"SEED-plan-secret", "SEED-plan-dbpass"}, redact.Summary{"quay-config-key": 1, "uri-password": 1}},
		{"config, extra rule", "config/config.yaml", gather.StreamOptions{Redactor: custom},
			[]string{"MY_APP_CREDS: <redacted>"}, []string{"SEED-plan"}, redact.Summary{"quay-config-key": 1, "uri-password": 1, "rule:^my_app_creds$": 1}},
		{"config, no-redact", "config/config.yaml", gather.StreamOptions{NoRedact: true}, []string{planConfig}, nil, nil},
		{"postgresql.conf", "database/postgresql.conf", gather.StreamOptions{}, []string{"max_connections = 200"}, nil, nil},
		{"components, redacted at source", "components.json", gather.StreamOptions{}, []string{`"instance": "pg"`}, nil, redact.Summary{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			res, err := planGatherer(t, d).StreamWith(context.Background(), tt.fact, &out, tt.so)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range tt.contains {
				if !strings.Contains(out.String(), s) {
					t.Errorf("output lacks %q:\n%s", s, out.String())
				}
			}
			for _, s := range tt.lacks {
				if strings.Contains(out.String(), s) {
					t.Errorf("output has %q:\n%s", s, out.String())
				}
			}
			if tt.rules != nil && fmt.Sprint(res.Redactions) != fmt.Sprint(tt.rules) {
				t.Errorf("redactions = %v, want %v", res.Redactions, tt.rules)
			}
		})
	}
}
