package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func TestEmbeddedDefault(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	abs, err := filepath.Abs("data")
	if err != nil {
		t.Fatal(err)
	}
	cfg, src, err := Load(LoadOptions{DataDir: "data", ListenAddr: ":8080", Env: noEnv, StackConfigPath: filepath.Join(dir, "missing.yaml")})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if !src.Embedded || src.String() != "embedded default" || cfg.Source() != src {
		t.Errorf("source = %q", src)
	}
	if w := cfg.Warnings(); len(w) != 0 {
		t.Errorf("warnings = %v", w)
	}
	checks := []struct{ name, got, want string }{
		{"DB_URI", cfg.DBURI, "sqlite:///" + abs + "/quay.db"},
		{"storage_path", cfg.DistributedStorageConfig["default"].Param("storage_path"), filepath.Join(abs, "storage")},
		{"driver", cfg.DistributedStorageConfig["default"].Driver, "LocalStorage"},
		{"SERVER_HOSTNAME", cfg.ServerHostname, "localhost:8080"},
		{"PREFERRED_URL_SCHEME", cfg.PreferredURLScheme, "http"},
		{"AUTHENTICATION_TYPE", cfg.AuthenticationType, "Database"},
		{"preference", strings.Join(cfg.StoragePreference(), ","), "default"},
		{"ExternalURL", cfg.ExternalURL(), "http://localhost:8080"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
	if !strings.HasPrefix(cfg.DBURI, "sqlite:////") {
		t.Errorf("DB_URI %q is not Quay's four-slash absolute form", cfg.DBURI)
	}
	if !cfg.FeatureUserInitialize || !cfg.SetupComplete || cfg.Testing {
		t.Errorf("FEATURE_USER_INITIALIZE=%v SETUP_COMPLETE=%v TESTING=%v", cfg.FeatureUserInitialize, cfg.SetupComplete, cfg.Testing)
	}
	db, err := cfg.Database()
	if err != nil || db.Driver != "sqlite" || db.DSN != filepath.Join(abs, "quay.db") {
		t.Errorf("Database() = %+v, %v", db, err)
	}
	// Quay's defaults fill the rest.
	if cfg.DefaultTagExpirationRaw != "2w" || cfg.PushTempTagExpirationSec != 3600 || cfg.UploadedBlobExpirationSec != 3600 ||
		cfg.MaxManifestBytes != 4<<20 || !cfg.FeatureAnonymousAccess || cfg.BuildlogsRedis.Addr() != "localhost:6379" ||
		cfg.ServiceKeyExpiration() != 2*time.Hour || cfg.ServiceKeyRefresh() != 55*time.Minute {
		t.Errorf("defaults not applied: %+v", cfg)
	}
	if cfg.IsSet("DEFAULT_TAG_EXPIRATION") || !cfg.IsSet("DB_URI") {
		t.Error("IsSet does not tell defaults from given values")
	}
}

func TestEmbeddedDefaultHostname(t *testing.T) {
	tests := map[string]string{
		"":               "localhost:8080",
		":8080":          "localhost:8080",
		"0.0.0.0:9000":   "localhost:9000",
		"[::]:8443":      "localhost:8443",
		"127.0.0.1:5000": "127.0.0.1:5000",
		"quay.lan:80":    "quay.lan:80",
	}
	for listen, want := range tests {
		cfg, _, err := Load(LoadOptions{DataDir: t.TempDir(), ListenAddr: listen, Env: noEnv, StackConfigPath: "/nonexistent/config.yaml"})
		if err != nil {
			t.Errorf("listen %q: %v", listen, err)
			continue
		}
		if cfg.ServerHostname != want {
			t.Errorf("listen %q: SERVER_HOSTNAME = %q, want %q", listen, cfg.ServerHostname, want)
		}
	}
	if _, _, err := Load(LoadOptions{DataDir: t.TempDir(), ListenAddr: "8080", Env: noEnv, StackConfigPath: "/nonexistent/config.yaml"}); err == nil {
		t.Error("listen address without a port was accepted")
	}
}

func TestEmbeddedDefaultNeedsDataDir(t *testing.T) {
	_, _, err := Load(LoadOptions{Env: noEnv, StackConfigPath: "/nonexistent/config.yaml"})
	if err == nil || !strings.Contains(err.Error(), "--data-dir") {
		t.Errorf("err = %v, want a hint about --data-dir", err)
	}
}

func TestEmbeddedDefaultYAMLRoundTrip(t *testing.T) {
	dir := t.TempDir()
	text, err := EmbeddedDefaultYAML(dir, ":5000")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, text, 0o600); err != nil {
		t.Fatal(err)
	}
	// As a file it needs the secrets a real deployment must have.
	_, _, err = Load(LoadOptions{Path: path, Env: noEnv})
	var verr *ValidationError
	if !errors.As(err, &verr) || len(verr.Errors()) != 1 || verr.Errors()[0].Key != "DATABASE_SECRET_KEY" {
		t.Fatalf("Load(embedded default as a file) = %v", err)
	}
}

func TestSourceSelection(t *testing.T) {
	dir := t.TempDir()
	stack := writeConfig(t, map[string]any{"SERVER_HOSTNAME": "stack.example.com"}, "")
	given := writeConfig(t, map[string]any{"SERVER_HOSTNAME": "given.example.com"}, "")

	tests := []struct {
		name     string
		opts     LoadOptions
		wantHost string
		wantSrc  string
	}{
		{"stack path when it exists", LoadOptions{StackConfigPath: stack, DataDir: dir}, "stack.example.com", stack},
		{"--config wins over stack", LoadOptions{Path: given, StackConfigPath: stack, DataDir: dir}, "given.example.com", given},
		{"--config may name the bundle directory", LoadOptions{Path: filepath.Dir(given), StackConfigPath: stack}, "given.example.com", given},
		{"embedded when no stack file", LoadOptions{StackConfigPath: filepath.Join(dir, "nope.yaml"), DataDir: dir, ListenAddr: ":1234"}, "localhost:1234", "embedded default"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Env = noEnv
			cfg, src, err := Load(tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.ServerHostname != tt.wantHost || src.String() != tt.wantSrc {
				t.Errorf("got %s from %s, want %s from %s", cfg.ServerHostname, src, tt.wantHost, tt.wantSrc)
			}
		})
	}
}

func TestLoadFileErrors(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "nope.yaml")
	_, src, err := Load(LoadOptions{Path: missing, Env: noEnv})
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), missing) || src.Path != missing {
		t.Errorf("missing file: %v (source %v)", err, src)
	}

	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("SERVER_HOSTNAME: [unclosed\n"), 0o600)
	_, _, err = Load(LoadOptions{Path: bad, Env: noEnv})
	if err == nil || !strings.Contains(err.Error(), "is not valid YAML") {
		t.Errorf("syntax error: %v", err)
	}

	list := filepath.Join(dir, "list.yaml")
	os.WriteFile(list, []byte("- SERVER_HOSTNAME\n"), 0o600)
	_, _, err = Load(LoadOptions{Path: list, Env: noEnv})
	if err == nil || !strings.Contains(err.Error(), "top level must be a mapping") {
		t.Errorf("list document: %v", err)
	}

	empty := filepath.Join(dir, "empty.yaml")
	os.WriteFile(empty, nil, 0o600)
	_, _, err = Load(LoadOptions{Path: empty, Env: noEnv})
	var verr *ValidationError
	if !errors.As(err, &verr) {
		t.Fatalf("empty file: %v", err)
	}
	var keys []string
	for _, p := range verr.Errors() {
		keys = append(keys, p.Key)
	}
	want := []string{"SERVER_HOSTNAME", "DB_URI", "DATABASE_SECRET_KEY", "DISTRIBUTED_STORAGE_CONFIG"}
	if !slices.Equal(keys, want) {
		t.Errorf("empty file errors for %v, want %v", keys, want)
	}
}

func TestOverrideConfig(t *testing.T) {
	path := writeConfig(t, map[string]any{
		"BUILDLOGS_REDIS": map[string]any{"host": "redis-a", "port": 6379, "password": "pw"},
	}, "")
	env := map[string]string{EnvOverrideConfig: `{
		"SERVER_HOSTNAME": "override.example.com",
		"FEATURE_QUOTA_MANAGEMENT": true,
		"PUSH_TEMP_TAG_EXPIRATION_SEC": 60,
		"BUILDLOGS_REDIS": {"host": "redis-b"},
		"DISKSPACE_HEALTH_THRESHOLD": 0.2
	}`}
	cfg, src, err := Load(LoadOptions{Path: path, Env: envFrom(env)})
	if err != nil {
		t.Fatal(err)
	}
	if !src.Override || src.String() != path+" + QUAY_OVERRIDE_CONFIG" {
		t.Errorf("source = %q", src)
	}
	if cfg.ServerHostname != "override.example.com" || !cfg.FeatureQuotaManagement || cfg.PushTempTagExpirationSec != 60 ||
		cfg.UploadedBlobExpirationSec != 60 || cfg.DiskspaceHealthThreshold != 0.2 {
		t.Errorf("override not applied: %+v", cfg)
	}
	// Quay replaces whole top-level values: the port and password are gone.
	if cfg.BuildlogsRedis != (RedisConfig{Host: "redis-b"}) {
		t.Errorf("BUILDLOGS_REDIS = %+v, want only host redis-b", cfg.BuildlogsRedis)
	}
	if cfg.DBURI == "" {
		t.Error("keys absent from the override were lost")
	}

	// The override is merged over the embedded default too.
	cfg, src, err = Load(LoadOptions{DataDir: t.TempDir(), Env: envFrom(map[string]string{EnvOverrideConfig: `{"FEATURE_AUTO_PRUNE": true}`}), StackConfigPath: "/nonexistent/config.yaml"})
	if err != nil || !cfg.FeatureAutoPrune || src.String() != "embedded default + QUAY_OVERRIDE_CONFIG" {
		t.Errorf("embedded + override: %v, %q", err, src)
	}
}

func TestOverrideConfigErrors(t *testing.T) {
	tests := map[string]string{
		`{"SERVER_HOSTNAME": `:                    `QUAY_OVERRIDE_CONFIG: is not valid JSON — set it to a JSON object such as {"FEATURE_QUOTA_MANAGEMENT": true}, or unset it`,
		`{"SERVER_HOSTNAME": x}`:                  `QUAY_OVERRIDE_CONFIG: is not valid JSON (error at byte 21) — set it to a JSON object such as {"FEATURE_QUOTA_MANAGEMENT": true}, or unset it`,
		`["FEATURE_QUOTA_MANAGEMENT"]`:            `QUAY_OVERRIDE_CONFIG: must be a JSON object, got a list — set it to a JSON object such as {"FEATURE_QUOTA_MANAGEMENT": true}, or unset it`,
		`{"FEATURE_QUOTA_MANAGEMENT": "sure"}`:    `FEATURE_QUOTA_MANAGEMENT: expected true or false, got the string "sure" (set by QUAY_OVERRIDE_CONFIG) — write true or false, without quotes`,
		`{"FEATURE_QUOTA_MANAGEMENT": true} {}`:   `QUAY_OVERRIDE_CONFIG: has text after the JSON object — set it to a JSON object such as {"FEATURE_QUOTA_MANAGEMENT": true}, or unset it`,
		`{"PUSH_TEMP_TAG_EXPIRATION_SEC": 1e400}`: `PUSH_TEMP_TAG_EXPIRATION_SEC: expected a whole number, got the number +Inf (set by QUAY_OVERRIDE_CONFIG) — write a whole number, without quotes`,
	}
	path := writeConfig(t, nil, "")
	for override, want := range tests {
		_, _, err := Load(LoadOptions{Path: path, Env: envFrom(map[string]string{EnvOverrideConfig: override})})
		var verr *ValidationError
		if !errors.As(err, &verr) || len(verr.Problems) != 1 || verr.Problems[0].String() != want {
			t.Errorf("override %s:\n got %v\nwant %s", override, err, want)
		}
	}
}

func TestStoragePreferenceEnv(t *testing.T) {
	path := writeConfig(t, map[string]any{
		"DISTRIBUTED_STORAGE_CONFIG": map[string]any{
			"us": []any{"LocalStorage", map[string]any{"storage_path": "/a"}},
			"eu": []any{"LocalStorage", map[string]any{"storage_path": "/b"}},
		},
		"DISTRIBUTED_STORAGE_PREFERENCE": []any{"us", "eu"},
	}, "")
	cfg, _, err := Load(LoadOptions{Path: path, Env: envFrom(map[string]string{EnvStoragePreference: "  eu   us "})})
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.StoragePreference(); !slices.Equal(got, []string{"eu", "us"}) {
		t.Errorf("StoragePreference() = %v, want env order [eu us]", got)
	}
	if !slices.Equal(cfg.DistributedStoragePreference, []string{"us", "eu"}) {
		t.Errorf("the key itself changed: %v", cfg.DistributedStoragePreference)
	}
	// Commas separate too (Quay splits on whitespace only).
	cfg, _, err = Load(LoadOptions{Path: path, Env: envFrom(map[string]string{EnvStoragePreference: "eu,us"})})
	if err != nil || !slices.Equal(cfg.StoragePreference(), []string{"eu", "us"}) {
		t.Errorf("comma-separated env: %v, %v", cfg.StoragePreference(), err)
	}
	cfg, _, err = Load(LoadOptions{Path: path, Env: noEnv})
	if err != nil || !slices.Equal(cfg.StoragePreference(), []string{"us", "eu"}) {
		t.Errorf("without env: %v, %v", cfg.StoragePreference(), err)
	}
	// With neither set, every location in name order, as Quay uses them all.
	noPref := &Config{DistributedStorageConfig: map[string]StorageLocation{"us": {}, "eu": {}}}
	if got := noPref.StoragePreference(); !slices.Equal(got, []string{"eu", "us"}) {
		t.Errorf("no preference: %v", got)
	}
}

func TestDatabase(t *testing.T) {
	tests := []struct {
		uri    string
		args   map[string]any
		driver string
		dsn    string
		max    int
	}{
		{"postgresql://u:p@db:5432/quay", nil, "postgres", "postgres://u:p@db:5432/quay?connect_timeout=10", 0},
		{"postgres://u:p@db/quay?connect_timeout=3", nil, "postgres", "postgres://u:p@db/quay?connect_timeout=3", 0},
		{"postgresql+psycopg2://u:p%40ss@db/quay", map[string]any{"sslmode": "verify-full", "sslrootcert": "/ca.crt", "threadlocals": true, "max_connections": 15},
			"postgres", "postgres://u:p%40ss@db/quay?connect_timeout=10&sslmode=verify-full&sslrootcert=%2Fca.crt", 15},
		{"postgresql://u:p@db/quay?sslmode=disable", map[string]any{"sslmode": "require", "ssl": map[string]any{"ca": "/ca", "cert": "/c", "key": "/k"}},
			"postgres", "postgres://u:p@db/quay?connect_timeout=10&sslcert=%2Fc&sslkey=%2Fk&sslmode=disable&sslrootcert=%2Fca", 0},
		{"sqlite:///data/quay.db", nil, "sqlite", "data/quay.db", 0},
		{"sqlite:////var/lib/quay.db", nil, "sqlite", "/var/lib/quay.db", 0},
		{"sqlite:///:memory:", nil, "sqlite", ":memory:", 0},
	}
	for _, tt := range tests {
		cfg := &Config{DBURI: tt.uri, DBConnectionArgs: tt.args}
		db, err := cfg.Database()
		if err != nil || db.Driver != tt.driver || db.DSN != tt.dsn || db.MaxConns != tt.max {
			t.Errorf("%s: got %+v, %v; want %s %s max %d", tt.uri, db, err, tt.driver, tt.dsn, tt.max)
		}
	}
	if _, err := ParseDBURI("mysql://u:hunter2@db/quay"); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("ParseDBURI(mysql) = %v", err)
	}
}

func TestParseDuration(t *testing.T) {
	tests := map[string]time.Duration{
		"0s": 0, "30s": 30 * time.Second, "10m": 10 * time.Minute, "24h": 24 * time.Hour,
		"1d": 24 * time.Hour, "2w": 14 * 24 * time.Hour,
	}
	for in, want := range tests {
		if got, err := ParseDuration(in); err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "2", "w", "2W", "1y", "-1d", "1.5h", "2w ", "99999999999999999999w"} {
		if _, err := ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q) succeeded", in)
		}
	}
}

func TestPairYAML(t *testing.T) {
	var doc struct {
		Storage map[string]StorageLocation `yaml:"DISTRIBUTED_STORAGE_CONFIG"`
		Health  HealthChecker              `yaml:"HEALTH_CHECKER"`
	}
	in := "DISTRIBUTED_STORAGE_CONFIG:\n  default:\n    - LocalStorage\n    - storage_path: /datastorage/registry\n" +
		"HEALTH_CHECKER: [RDSAwareHealthCheck, {access_key: x}]\n"
	if err := yaml.Unmarshal([]byte(in), &doc); err != nil {
		t.Fatal(err)
	}
	if loc := doc.Storage["default"]; loc.Driver != "LocalStorage" || loc.Param("storage_path") != "/datastorage/registry" {
		t.Errorf("storage = %+v", doc.Storage)
	}
	if doc.Health.Name != "RDSAwareHealthCheck" || doc.Health.Params["access_key"] != "x" {
		t.Errorf("health = %+v", doc.Health)
	}
	out, err := yaml.Marshal(doc.Storage)
	if err != nil || string(out) != "default:\n    - LocalStorage\n    - storage_path: /datastorage/registry\n" {
		t.Errorf("marshal = %q, %v", out, err)
	}
	bad := "DISTRIBUTED_STORAGE_CONFIG:\n  default: {storage_path: /x}\n"
	if err := yaml.Unmarshal([]byte(bad), &doc); err == nil || !strings.Contains(err.Error(), "expected a list [DriverName, {parameters}]") {
		t.Errorf("bad pair: %v", err)
	}
}

// docs/configuration.md must describe every key quayctl reads.
func TestDocsCoverUsedKeys(t *testing.T) {
	doc, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range UsedKeys() {
		if !strings.Contains(string(doc), "`"+k+"`") {
			t.Errorf("docs/configuration.md does not mention `%s`", k)
		}
	}
	for _, d := range StorageDrivers() {
		if !strings.Contains(string(doc), d) {
			t.Errorf("docs/configuration.md does not mention storage driver %s", d)
		}
	}
}
