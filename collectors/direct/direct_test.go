package direct

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/quayctl/quayctl/collectors"
)

const testConfig = `SERVER_HOSTNAME: quay.example.com:8443
PREFERRED_URL_SCHEME: https
DB_URI: postgresql://quay:s3cret-db@postgresql-quay:5432/quay
BUILDLOGS_REDIS:
  host: redis.example.com
  password: s3cret-redis
`

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestNewErrors(t *testing.T) {
	dir := t.TempDir()
	notYAML := filepath.Join(dir, "bad.yaml")
	_ = os.WriteFile(notYAML, []byte("a: [b\n"), 0o600)
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"nothing", Options{}, "direct target: give --url, --config or --db"},
		{"bad url", Options{URL: "http://"}, `--url "http://" is not a URL — use the registry's base URL, such as https://quay.example.com`},
		{"bad scheme", Options{URL: "ftp://quay"}, `--url "ftp://quay": scheme "ftp" is not http or https`},
		{"credentials", Options{URL: "https://u:p@quay"}, "--url must not hold credentials (user:password@) — quayctl's health checks are anonymous"},
		{"missing config", Options{ConfigPath: filepath.Join(dir, "nope.yaml")}, "--config " + filepath.Join(dir, "nope.yaml") + " does not exist — give the path of a Quay config.yaml (or of a directory holding one)"},
		{"empty dir", Options{ConfigPath: dir + "/sub"}, ""},
		{"not yaml", Options{ConfigPath: notYAML}, "--config " + notYAML + " is not valid YAML"},
	}
	_ = os.Mkdir(dir+"/sub", 0o755)
	tests[5].want = "--config " + dir + "/sub is a directory without config.yaml — give the file itself"
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.opts)
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("New(%+v) error = %v, want prefix %q", tt.opts, err, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), ":p@") {
				t.Errorf("error repeats the credentials: %v", err)
			}
		})
	}
}

func TestParseURL(t *testing.T) {
	for in, want := range map[string]string{
		"quay.example.com":           "https://quay.example.com",
		"http://127.0.0.1:8080/":     "http://127.0.0.1:8080",
		"https://quay.example.com/x": "https://quay.example.com/x",
		" https://q?x=1#f ":          "https://q",
	} {
		u, err := ParseURL(in)
		if err != nil || u.String() != want {
			t.Errorf("ParseURL(%q) = %v, %v; want %s", in, u, err, want)
		}
	}
}

func TestComponents(t *testing.T) {
	cfg := writeConfig(t, testConfig)
	tests := []struct {
		name string
		opts Options
		want []collectors.Component
		str  string // Name()
	}{
		{"url only", Options{URL: "http://127.0.0.1:8080"},
			[]collectors.Component{{Name: "quay", Instance: "127.0.0.1:8080", State: "external"}}, "http://127.0.0.1:8080"},
		{"config", Options{ConfigPath: cfg},
			[]collectors.Component{
				{Name: "database", Instance: "postgresql-quay:5432/quay", State: "external"},
				{Name: "quay", Instance: "quay.example.com:8443", State: "external"},
				{Name: "redis", Instance: "redis.example.com:6379", State: "external"},
			}, cfg},
		{"config dir and db override", Options{ConfigPath: filepath.Dir(cfg), DBURI: "postgres://u:pw@db2/other"},
			[]collectors.Component{
				{Name: "database", Instance: "db2/other", State: "external"},
				{Name: "quay", Instance: "quay.example.com:8443", State: "external"},
				{Name: "redis", Instance: "redis.example.com:6379", State: "external"},
			}, cfg},
		{"db only", Options{DBURI: "postgresql://u:pw@db:5432/quay"},
			[]collectors.Component{{Name: "database", Instance: "db:5432/quay", State: "external"}}, "db:5432/quay"},
		{"sqlite", Options{DBURI: "sqlite:////data/quay.db"},
			[]collectors.Component{{Name: "database", Instance: "sqlite:/data/quay.db", State: "external"}}, "sqlite:/data/quay.db"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := New(tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			got, err := d.Components(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Components =\n%+v\nwant\n%+v", got, tt.want)
			}
			if d.Name() != tt.str || d.Kind() != "direct" {
				t.Errorf("Name, Kind = %q, %q", d.Name(), d.Kind())
			}
			for _, c := range got {
				if strings.Contains(c.Instance, "pw") || strings.Contains(c.Instance, "s3cret") {
					t.Errorf("component %s shows a password: %s", c.Name, c.Instance)
				}
			}
		})
	}
}

func TestReadFile(t *testing.T) {
	cfg := writeConfig(t, testConfig)
	d, err := New(Options{ConfigPath: cfg, URL: "https://quay.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, p := range []string{StackConfigPath, cfg} {
		rc, err := d.ReadFile(ctx, "quay", p)
		if err != nil {
			t.Fatalf("ReadFile(%s): %v", p, err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		if string(b) != testConfig {
			t.Errorf("ReadFile(%s) = %q", p, b)
		}
	}
	_, err = d.ReadFile(ctx, "quay", "/etc/passwd")
	if !errors.Is(err, collectors.ErrNotSupported) || !strings.Contains(err.Error(), "--podman") || !strings.Contains(err.Error(), "--openshift") {
		t.Errorf("other file: %v", err)
	}
	_, err = d.ReadFile(ctx, "database", "/var/lib/pgsql/data/userdata/postgresql.conf")
	if !errors.Is(err, collectors.ErrNotSupported) {
		t.Errorf("database file: %v", err)
	}
	var nf *collectors.ComponentNotFoundError
	if _, err := d.ReadFile(ctx, "clair", "/x"); !errors.As(err, &nf) || nf.Name != "clair" || !reflect.DeepEqual(nf.Available, []string{"database", "quay", "redis"}) {
		t.Errorf("unknown component: %v", err)
	}

	urlOnly, _ := New(Options{URL: "https://quay.example.com"})
	_, err = urlOnly.ReadFile(ctx, "quay", StackConfigPath)
	if !errors.Is(err, collectors.ErrNotSupported) || !strings.Contains(err.Error(), "pass --config") {
		t.Errorf("no --config: %v", err)
	}
}

func TestNotSupported(t *testing.T) {
	d, err := New(Options{URL: "https://quay.example.com", DBURI: "postgresql://u:p@db/quay"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	errs := map[string]error{}
	errs["logs"] = d.Logs(ctx, "quay", collectors.LogOptions{}, io.Discard)
	_, errs["exec"] = d.Exec(ctx, "database", []string{"psql"}, collectors.ExecOptions{})
	_, errs["stats"] = d.Stats(ctx, "quay")
	for op, err := range errs {
		if !errors.Is(err, collectors.ErrNotSupported) {
			t.Errorf("%s: %v, want ErrNotSupported", op, err)
			continue
		}
		want := op + ": not supported for this deployment: a direct target (--url/--config/--db) has no containers — point quayctl at the deployment with --podman[=URL] (standalone) or --openshift [-n NAMESPACE] [--registry NAME] (Quay Operator)"
		if err.Error() != want {
			t.Errorf("%s error =\n%s\nwant\n%s", op, err, want)
		}
	}
	var nf *collectors.ComponentNotFoundError
	if err := d.Logs(ctx, "redis", collectors.LogOptions{}, io.Discard); !errors.As(err, &nf) {
		t.Errorf("logs of an unknown component: %v", err)
	}
	if u := d.URL(); u.String() != "https://quay.example.com" {
		t.Errorf("URL = %v", u)
	}
	if d.DBURI() != "postgresql://u:p@db/quay" || d.ConfigPath() != "" {
		t.Errorf("DBURI, ConfigPath = %q, %q", d.DBURI(), d.ConfigPath())
	}
}
