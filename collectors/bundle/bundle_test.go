package bundle_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/quayctl/quayctl/collectors"
	"github.com/quayctl/quayctl/collectors/bundle"
	"github.com/quayctl/quayctl/collectors/gather"
	"github.com/quayctl/quayctl/collectors/testsuite"
	"github.com/quayctl/quayctl/diag"
	"github.com/quayctl/quayctl/diag/checks"
	"github.com/quayctl/quayctl/internal/redact"
	"github.com/quayctl/quayctl/internal/testpg"
)

func TestMain(m *testing.M) { testpg.Main(m) }

// memDeployment is an in-memory deployment: fixed components, logs (a
// string, or a generator for long ones), files and stats.
type memDeployment struct {
	comps  []collectors.Component
	logs   map[string]string // component, or component+":previous"
	gen    map[string]func(w io.Writer) error
	logErr map[string]error
	files  map[string]string // component+":"+path
	stats  map[string]collectors.Stats
}

func (d *memDeployment) Kind() string { return "podman" }
func (d *memDeployment) Name() string { return "unix:///run/podman/podman.sock" }
func (d *memDeployment) Components(context.Context) ([]collectors.Component, error) {
	return d.comps, nil
}

func (d *memDeployment) find(name string) error {
	var avail []string
	for _, c := range d.comps {
		if c.Name == name {
			return nil
		}
		avail = append(avail, c.Name)
	}
	return &collectors.ComponentNotFoundError{Name: name, Available: avail}
}

func (d *memDeployment) Logs(_ context.Context, c string, o collectors.LogOptions, w io.Writer) error {
	if err := d.find(c); err != nil {
		return err
	}
	key := c
	if o.Previous {
		key += ":previous"
	}
	if err := d.logErr[key]; err != nil {
		return err
	}
	if g := d.gen[key]; g != nil {
		if o.Tail > 0 {
			return fmt.Errorf("the generated log of %s has no tail", c)
		}
		return g(w)
	}
	s := d.logs[key]
	if o.Tail > 0 {
		lines := strings.SplitAfter(strings.TrimSuffix(s, "\n"), "\n")
		s = strings.Join(lines[max(0, len(lines)-o.Tail):], "")
		if !strings.HasSuffix(s, "\n") {
			s += "\n"
		}
	}
	_, err := io.WriteString(w, s)
	return err
}

func (d *memDeployment) ReadFile(_ context.Context, c, p string) (io.ReadCloser, error) {
	if err := d.find(c); err != nil {
		return nil, err
	}
	if s, ok := d.files[c+":"+p]; ok {
		return io.NopCloser(strings.NewReader(s)), nil
	}
	return nil, fmt.Errorf("%s: %w", p, fs.ErrNotExist)
}

func (d *memDeployment) Exec(context.Context, string, []string, collectors.ExecOptions) (int, error) {
	return 0, collectors.ErrNotSupported
}

func (d *memDeployment) Stats(_ context.Context, c string) (collectors.Stats, error) {
	if err := d.find(c); err != nil {
		return collectors.Stats{}, err
	}
	if st, ok := d.stats[c]; ok {
		return st, nil
	}
	return collectors.Stats{}, collectors.ErrNotSupported
}

// Seeded secrets: none may appear in any byte of a bundle.
var seeded = []string{
	"SEED-bundle-secret-key-01", "SEED-bundle-dbpass-02", "SEED-bundle-redis-03", "SEED-bundle-s3secret-04",
	"SEED-bundle-env-05", "SEED-bundle-bearer-06", "SEED-bundle-uripass-07", "SEED-bundle-pem-08",
	"SEED-bundle-custom-09", "AKIAIOSFODNN7SEED0010",
}

const memConfig = `SERVER_HOSTNAME: 127.0.0.1:1
PREFERRED_URL_SCHEME: http
SETUP_COMPLETE: true
AUTHENTICATION_TYPE: Database
DB_URI: sqlite:////datastorage/quay.db?password=SEED-bundle-dbpass-02
SECRET_KEY: SEED-bundle-secret-key-01
SUPER_USERS: [admin]
BUILDLOGS_REDIS: {host: redis, password: SEED-bundle-redis-03}
DISTRIBUTED_STORAGE_CONFIG:
  default: [LocalStorage, {storage_path: /datastorage/registry}]
CLOUDWATCH_AWS_ACCESS_KEY: AKIAIOSFODNN7SEED0010
CLOUDWATCH_AWS_SECRET_KEY: SEED-bundle-s3secret-04
DISTRIBUTED_STORAGE_PREFERENCE: [default]
DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS: [default]
`

const quayLog = `2026-01-02 10:00:00 INFO quayctl serve ready
2026-01-02 10:00:01 DEBUG request headers: Authorization: Bearer SEED-bundle-bearer-06
2026-01-02 10:00:02 INFO connecting to postgresql://quay:SEED-bundle-uripass-07@db:5432/quay
2026-01-02 10:00:03 DEBUG loaded key
-----BEGIN RSA PRIVATE KEY-----
MIIEpAIBAAKCAQEAseededSEED-bundle-pem-08
-----END RSA PRIVATE KEY-----
2026-01-02 10:00:04 DEBUG app_creds=SEED-bundle-custom-09
2026-01-02 10:00:05 INFO GET /v2/ 200
`

func memFixture() *memDeployment {
	t0 := time.Date(2026, 1, 2, 9, 0, 0, 0, time.UTC)
	return &memDeployment{
		comps: []collectors.Component{
			{Name: "database", Instance: "postgresql-quay", State: "exited", Image: "postgres"},
			{Name: "quay", Instance: "quay-app", State: "running", Ready: true, Restarts: 1, StartedAt: t0, Image: "quay",
				Env: map[string]string{"QUAY_PASSWORD": redact.Marker, "DEBUGLOG": "true"}},
			{Name: "redis", Instance: "quay-redis", State: "running", Ready: true, StartedAt: t0, Image: "redis"},
		},
		logs:   map[string]string{"quay": quayLog, "quay:previous": "2026-01-02 08:00:00 ERROR worker died\n"},
		logErr: map[string]error{"redis": errors.New("this container is using the 'none' log driver, cannot read logs")},
		files:  map[string]string{"quay:/conf/stack/config.yaml": memConfig},
		stats:  map[string]collectors.Stats{"quay": {CPUPercent: 1.5, MemoryBytes: 200 << 20, MemoryLimitBytes: 1 << 30}},
	}
}

var t0 = time.Date(2026, 1, 2, 12, 0, 0, 0, time.UTC)

// collect writes a bundle of d into a fresh directory.
func collect(t testing.TB, d collectors.Deployment, so gather.StreamOptions, rules []string) (bundle.Result, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	g := gather.New(ctx, d, gather.Options{Timeout: 5 * time.Second})
	defer g.Close()
	dir := t.TempDir()
	res, err := bundle.Collect(ctx, g, bundle.CollectOptions{
		Path: filepath.Join(dir, bundle.DefaultName(d.Kind(), d.Name(), t0)), Stream: so, RedactRules: rules,
		Checks: checks.All(), Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatalf("Collect: %v", err)
	}
	return res, dir
}

// entries reads every entry of the archive at p, in order.
func entries(t *testing.T, p string) ([]string, map[string][]byte) {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	var names []string
	data := map[string][]byte{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names, data
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		data[h.Name] = b
	}
}

func TestCollect(t *testing.T) {
	custom, err := redact.New(redact.WithRules("app_creds"))
	if err != nil {
		t.Fatal(err)
	}
	res, dir := collect(t, memFixture(), gather.StreamOptions{Redactor: custom, LogSince: 24 * time.Hour}, []string{"app_creds"})

	t.Run("file", func(t *testing.T) {
		if filepath.Base(res.Path) != "quayctl-bundle-podman-run-podman-podman.sock-20260102T120000Z.tar.gz" {
			t.Errorf("name %s", filepath.Base(res.Path))
		}
		left, _ := os.ReadDir(dir)
		if len(left) != 1 {
			t.Errorf("left in the directory: %v (want only the bundle)", left)
		}
		st, err := os.Stat(res.Path)
		if err != nil || st.Size() != res.Size {
			t.Errorf("size %v, result says %d (%v)", st, res.Size, err)
		}
	})

	names, data := entries(t, res.Path)
	var m bundle.Manifest
	if err := json.Unmarshal(data["manifest.json"], &m); err != nil {
		t.Fatal(err)
	}
	t.Run("layout", func(t *testing.T) {
		if names[0] != "manifest.json" {
			t.Errorf("first entry %s, want manifest.json", names[0])
		}
		if m.Format != bundle.FormatVersion || m.QuayctlVersion == "" || !m.Created.Equal(t0) ||
			m.Target != (diag.Target{Kind: "podman", Name: "unix:///run/podman/podman.sock"}) ||
			m.Options.NoRedact || m.Options.LogLimitBytes != gather.DefaultLogLimit || m.Options.Since != "24h0m0s" ||
			!slices.Equal(m.Options.RedactRules, []string{"app_creds"}) {
			t.Errorf("manifest header %+v", m)
		}
		// Every piece the issue lists, stored or recorded.
		want := map[string]string{
			"target.json": "ok", "components.json": "ok", "config/config.yaml": "ok", "config/source.json": "ok",
			"health/instance.json": "ok", "health/endtoend.json": "ok", "health/warning.json": "ok",
			"components/quay/logs.txt": "ok", "components/quay/logs-previous.txt": "ok", "components/quay/stats.json": "ok",
			"components/redis/logs.txt": "failed", "components/redis/logs-previous.txt": "not-applicable",
			"components/database/stats.json": "not-applicable",
			"storage/locations.json":         "ok", "storage/default/probe.json": "ok",
			"database/server.json": "not-applicable", "database/postgresql.conf": "failed",
			"clair/config.yaml": "not-applicable", "openshift/quayregistry.json": "not-applicable",
			"diagnose/findings.json": "ok", "diagnose/report.txt": "ok",
		}
		got := map[string]bundle.File{}
		for _, f := range m.Files {
			got[f.Fact] = f
			b, ok := data[f.Path]
			if !ok {
				t.Errorf("manifest lists %s but the archive lacks it", f.Path)
				continue
			}
			if int64(len(b)) != f.Size {
				t.Errorf("%s: %d bytes, manifest says %d", f.Path, len(b), f.Size)
			}
			if f.Status != "ok" && (f.Path != f.Fact+".error" || f.Error == "" || strings.TrimSpace(string(b)) != f.Error) {
				t.Errorf("%s: failed fact recorded as %+v with %q", f.Fact, f, b)
			}
		}
		for name, b := range data {
			if strings.HasSuffix(name, ".json") && !json.Valid(b) {
				t.Errorf("%s is not valid JSON after redaction:\n%s", name, b)
			}
		}
		if len(names) != len(m.Files)+1 {
			t.Errorf("%d entries, manifest lists %d files", len(names), len(m.Files))
		}
		for fact, status := range want {
			if got[fact].Status != status {
				t.Errorf("%s: status %q (%s), want %q", fact, got[fact].Status, got[fact].Error, status)
			}
		}
		if e := got["components/redis/logs.txt"].Error; !strings.Contains(e, "'none' log driver") {
			t.Errorf("redis logs error %q", e)
		}
	})

	t.Run("secrets", func(t *testing.T) {
		for name, b := range data {
			for _, s := range seeded {
				if bytes.Contains(b, []byte(s)) {
					t.Errorf("%s holds the seeded secret %s", name, s)
				}
			}
		}
		byFile := map[string]redact.Summary{}
		for _, f := range m.Files {
			byFile[f.Fact] = f.Redactions
		}
		for fact, want := range map[string]redact.Summary{
			"components/quay/logs.txt": {"authorization-header": 1, "uri-password": 1, "pem-private-key": 1, "rule:app_creds": 1},
			"components.json":          {"redacted-at-source": 1},
		} {
			if fmt.Sprint(byFile[fact]) != fmt.Sprint(want) {
				t.Errorf("%s redactions %v, want %v", fact, byFile[fact], want)
			}
		}
		if n := byFile["config/config.yaml"]["quay-config-key"]; n < 4 {
			t.Errorf("config/config.yaml redactions %v: want 4 Quay secret keys", byFile["config/config.yaml"])
		}
		if m.Redaction.Total() < 10 {
			t.Errorf("manifest counts %v", m.Redaction)
		}
		if strings.Contains(string(data["manifest.json"]), "SEED") {
			t.Error("the manifest holds a value")
		}
	})

	t.Run("analyze", func(t *testing.T) {
		var stored diag.Report
		if err := json.Unmarshal(data["diagnose/findings.json"], &stored); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(data["diagnose/report.txt"]), "quayctl diagnose: podman") || stored.Summary != m.Summary {
			t.Errorf("report %q, summary %+v vs manifest %+v", data["diagnose/report.txt"], stored.Summary, m.Summary)
		}
		b, err := bundle.Open(context.Background(), res.Path)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		rep := diag.Run(context.Background(), b.Facts(), diag.Target{Kind: "bundle", Name: b.Name()}, checks.All(), diag.Options{Now: func() time.Time { return t0 }})
		if g, w := findingKeys(rep), findingKeys(stored); !slices.Equal(g, w) {
			t.Errorf("offline findings differ from the collected ones:\n got %q\nwant %q", g, w)
		}
		if len(rep.Findings) < 5 {
			t.Errorf("only %d findings", len(rep.Findings))
		}
	})
}

// findingKeys are the id, severity, subject and title of each finding.
func findingKeys(r diag.Report) []string {
	var out []string
	for _, f := range r.Findings {
		out = append(out, fmt.Sprintf("%s %s %s: %s", f.Severity, f.ID, f.Subject, f.Title))
	}
	sort.Strings(out)
	return out
}

func TestNoRedact(t *testing.T) {
	res, _ := collect(t, memFixture(), gather.StreamOptions{NoRedact: true}, nil)
	_, data := entries(t, res.Path)
	var m bundle.Manifest
	if err := json.Unmarshal(data["manifest.json"], &m); err != nil {
		t.Fatal(err)
	}
	if !m.Options.NoRedact {
		t.Error("manifest does not record --no-redact")
	}
	if !bytes.Contains(data["components/quay/logs.txt"], []byte("SEED-bundle-bearer-06")) ||
		!bytes.Contains(data["config/config.yaml"], []byte("SEED-bundle-secret-key-01")) {
		t.Error("--no-redact still redacted the log or the config")
	}
}

// TestContract runs the collectors' contract suite on a bundle.
func TestContract(t *testing.T) {
	res, _ := collect(t, memFixture(), gather.StreamOptions{}, nil)
	b, err := bundle.Open(context.Background(), res.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	cfg, err := os.ReadFile(filepath.Join(b.Dir(), "config", "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	testsuite.Run(t, testsuite.Fixture{
		Deployment:       b.Deployment(),
		Kind:             "bundle",
		Components:       map[string]string{"quay": "running", "database": "exited", "redis": "running"},
		LogComponent:     "quay",
		LogLine:          "quayctl serve ready",
		FileComponent:    "quay",
		FilePath:         "/conf/stack/config.yaml",
		FileContent:      cfg,
		ExecComponent:    "quay",
		ExecNotSupported: true,
		StatsComponent:   "quay",
		Stopped:          "database",
		Secrets:          seeded,
	})
}

func TestOpenRefuses(t *testing.T) {
	good, _ := collect(t, memFixture(), gather.StreamOptions{}, nil)
	_, data := entries(t, good.Path)
	names, _ := entries(t, good.Path)
	write := func(t *testing.T, edit func(name string, b []byte) (string, []byte)) string {
		p := filepath.Join(t.TempDir(), "b.tar.gz")
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		gz := gzip.NewWriter(f)
		tw := tar.NewWriter(gz)
		for _, n := range names {
			name, b := edit(n, data[n])
			if name == "" {
				continue
			}
			if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg}); err != nil {
				t.Fatal(err)
			}
			tw.Write(b)
		}
		tw.Close()
		gz.Close()
		f.Close()
		return p
	}
	for _, tt := range []struct {
		name string
		file func(t *testing.T) string
		want string
	}{
		{"not gzip", func(t *testing.T) string {
			p := filepath.Join(t.TempDir(), "x.tar.gz")
			os.WriteFile(p, []byte("hello"), 0o600)
			return p
		}, "is not a quayctl support bundle (not gzip"},
		{"no manifest", func(t *testing.T) string {
			return write(t, func(n string, b []byte) (string, []byte) {
				if n == "manifest.json" {
					return "", nil
				}
				return n, b
			})
		}, "is not a quayctl support bundle (no manifest.json)"},
		{"changed file", func(t *testing.T) string {
			return write(t, func(n string, b []byte) (string, []byte) {
				if n == "components/quay/logs.txt" {
					return n, append(b, "tampered\n"...)
				}
				return n, b
			})
		}, "is damaged: components/quay/logs.txt does not match its sha256"},
		{"unsafe name", func(t *testing.T) string {
			return write(t, func(n string, b []byte) (string, []byte) {
				if n == "target.json" {
					return "../../escape.json", b
				}
				return n, b
			})
		}, "unsafe entry name"},
		{"newer format", func(t *testing.T) string {
			return write(t, func(n string, b []byte) (string, []byte) {
				if n == "manifest.json" {
					return n, bytes.Replace(b, []byte(`"format": 1`), []byte(`"format": 99`), 1)
				}
				return n, b
			})
		}, "is a bundle of format 99, newer than this quayctl reads (1)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b, err := bundle.Open(context.Background(), tt.file(t))
			if err == nil {
				b.Close()
				t.Fatal("opened")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want %q", err, tt.want)
			}
		})
	}
}

func TestFactsOffline(t *testing.T) {
	res, _ := collect(t, memFixture(), gather.StreamOptions{}, nil)
	b, err := bundle.Open(context.Background(), res.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	for _, tt := range []struct {
		fact    string
		errIs   error
		content string
	}{
		{"components/quay/logs-previous.txt", nil, "worker died"},
		{"clair/config.yaml", diag.ErrNotApplicable, ""},
		{"components/redis/logs.txt", nil, ""},
		{"storage/nowhere/probe.json", diag.ErrOffline, ""},
		{"../outside", nil, ""},
	} {
		t.Run(tt.fact, func(t *testing.T) {
			got, err := b.Facts().Get(ctx, tt.fact)
			switch {
			case tt.content != "":
				if err != nil || !strings.Contains(string(got), tt.content) {
					t.Errorf("Get = %q, %v", got, err)
				}
			case tt.errIs != nil:
				if !errors.Is(err, tt.errIs) {
					t.Errorf("Get error %v, want %v", err, tt.errIs)
				}
			default:
				if err == nil || errors.Is(err, diag.ErrNotApplicable) || errors.Is(err, diag.ErrOffline) {
					t.Errorf("Get error %v, want a plain failure", err)
				}
			}
		})
	}
}

func TestLogTail(t *testing.T) {
	var b strings.Builder
	for i := range bundle.LogTail + 300 {
		fmt.Fprintf(&b, "line %d %s\n", i, strings.Repeat("x", i%200))
	}
	long := b.String()
	for _, tt := range []struct {
		name, log string
		tail      int
		want      string
	}{
		{"short", "a\nb\n", 2, "a\nb\n"},
		{"no final newline", "a\nb\nc", 2, "b\nc"},
		{"longer than the tail", "a\nb\nc\n", 1, "c\n"},
		{"tail spans read chunks", long, bundle.LogTail, long[strings.Index(long, "line 300 "):]},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := memFixture()
			d.logs["quay"] = tt.log
			res, _ := collect(t, d, gather.StreamOptions{}, nil)
			bd, err := bundle.Open(context.Background(), res.Path)
			if err != nil {
				t.Fatal(err)
			}
			defer bd.Close()
			var out bytes.Buffer
			if err := bd.Deployment().Logs(context.Background(), "quay", collectors.LogOptions{Tail: tt.tail}, &out); err != nil {
				t.Fatal(err)
			}
			if out.String() != tt.want {
				t.Errorf("tail %d: got %d bytes %q…, want %d bytes", tt.tail, out.Len(), first(out.String()), len(tt.want))
			}
		})
	}
}

func first(s string) string { return s[:min(len(s), 60)] }

func TestDefaultName(t *testing.T) {
	for _, tt := range []struct{ kind, name, want string }{
		{"podman", "unix:///run/podman/podman.sock", "quayctl-bundle-podman-run-podman-podman.sock-20260102T120000Z.tar.gz"},
		{"openshift", "quay-enterprise/registry", "quayctl-bundle-openshift-quay-enterprise-registry-20260102T120000Z.tar.gz"},
		{"direct", "", "quayctl-bundle-direct-20260102T120000Z.tar.gz"},
		{"direct", "https://quay.example.com:8443/", "quayctl-bundle-direct-quay.example.com-8443-20260102T120000Z.tar.gz"},
	} {
		if got := bundle.DefaultName(tt.kind, tt.name, t0); got != tt.want {
			t.Errorf("DefaultName(%q, %q) = %q, want %q", tt.kind, tt.name, got, tt.want)
		}
	}
}
