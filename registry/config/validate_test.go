package config

import (
	"errors"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// baseConfig is a valid file configuration that produces no problems at all.
func baseConfig() map[string]any {
	return map[string]any{
		"SERVER_HOSTNAME":      "quay.example.com",
		"PREFERRED_URL_SCHEME": "https",
		"DB_URI":               "postgresql://quay:db-pass-123@db.example.com:5432/quay",
		"DISTRIBUTED_STORAGE_CONFIG": map[string]any{
			"default": []any{"LocalStorage", map[string]any{"storage_path": "/datastorage/registry"}},
		},
		"DISTRIBUTED_STORAGE_PREFERENCE": []any{"default"},
		"DATABASE_SECRET_KEY":            "db-secret-value",
		"SECRET_KEY":                     "session-secret-value",
		"SETUP_COMPLETE":                 true,
		"TESTING":                        false,
		"SUPER_USERS":                    []any{"quayadmin"},
	}
}

// drop marks a key to delete from baseConfig in a test case.
type dropKey struct{}

var drop = dropKey{}

// writeConfig writes baseConfig with patch applied, then extra YAML text.
func writeConfig(t *testing.T, patch map[string]any, extra string) string {
	t.Helper()
	m := baseConfig()
	for k, v := range patch {
		if v == drop {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	out, err := yaml.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, append(out, extra...), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func envFrom(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// problemLines renders Load's outcome as "severity: KEY: message — fix".
func problemLines(t *testing.T, cfg *Config, err error) []string {
	t.Helper()
	var ps []Problem
	var verr *ValidationError
	switch {
	case errors.As(err, &verr):
		ps = verr.Problems
	case err != nil:
		t.Fatalf("Load: unexpected error type: %v", err)
	default:
		ps = cfg.Warnings()
	}
	var lines []string
	for _, p := range ps {
		lines = append(lines, p.Severity.String()+": "+p.String())
	}
	return lines
}

func TestValidationRules(t *testing.T) {
	tests := []struct {
		name  string
		patch map[string]any
		extra string
		env   map[string]string
		want  []string
		check func(t *testing.T, cfg *Config)
	}{
		{
			name: "valid base",
		},
		{
			name:  "bool given a string",
			patch: map[string]any{"FEATURE_ANONYMOUS_ACCESS": "maybe"},
			want:  []string{`error: FEATURE_ANONYMOUS_ACCESS: expected true or false, got the string "maybe" — write true or false, without quotes`},
		},
		{
			name:  "quota keys: negative values",
			extra: "DEFAULT_SYSTEM_REJECT_QUOTA_BYTES: -1\nQUOTA_TOTAL_DELAY_SECONDS: -5\n",
			want: []string{
				`error: DEFAULT_SYSTEM_REJECT_QUOTA_BYTES: is -1, which is negative — use a number of bytes, such as 107374182400 (100 GiB), or 0 for no default limit`,
				`error: QUOTA_TOTAL_DELAY_SECONDS: is -5, which is negative — use a number of seconds, such as 1800 (Quay's default)`,
			},
		},
		{
			name:  "quota keys: Quay's defaults",
			extra: "FEATURE_QUOTA_MANAGEMENT: true\n",
			check: func(t *testing.T, cfg *Config) {
				if !cfg.FeatureEditQuota || !cfg.FeatureVerifyQuota || cfg.QuotaTotalDelay().Seconds() != 1800 || cfg.DefaultSystemRejectQuotaBytes != 0 {
					t.Errorf("edit=%v verify=%v delay=%v default=%d", cfg.FeatureEditQuota, cfg.FeatureVerifyQuota, cfg.QuotaTotalDelay(), cfg.DefaultSystemRejectQuotaBytes)
				}
			},
		},
		{
			name:  "quoted true is a string",
			extra: "FEATURE_QUOTA_MANAGEMENT: \"true\"\n",
			want:  []string{`error: FEATURE_QUOTA_MANAGEMENT: expected true or false, got the string "true" — write true or false, without quotes`},
		},
		{
			name:  "YAML 1.1 booleans read as Quay reads them",
			extra: "FEATURE_QUOTA_MANAGEMENT: yes\nFEATURE_GARBAGE_COLLECTION: off\n",
			check: func(t *testing.T, cfg *Config) {
				if !cfg.FeatureQuotaManagement || cfg.FeatureGarbageCollection {
					t.Errorf("quota=%v gc=%v, want true false", cfg.FeatureQuotaManagement, cfg.FeatureGarbageCollection)
				}
			},
		},
		{
			name:  "null means off, not Quay's default",
			extra: "FEATURE_GARBAGE_COLLECTION:\n",
			check: func(t *testing.T, cfg *Config) {
				if cfg.FeatureGarbageCollection {
					t.Error("FEATURE_GARBAGE_COLLECTION: null should be false")
				}
			},
		},
		{
			name:  "string given a number",
			patch: map[string]any{"SERVER_HOSTNAME": 8080},
			want:  []string{`error: SERVER_HOSTNAME: expected a string, got the number 8080 — put the value in quotes`},
		},
		{
			name:  "secret value never shown",
			patch: map[string]any{"DATABASE_SECRET_KEY": 987654321},
			want:  []string{`error: DATABASE_SECRET_KEY: expected a string, got a number — put the value in quotes`},
		},
		{
			name:  "list given a string",
			patch: map[string]any{"SUPER_USERS": "quayadmin"},
			want:  []string{`error: SUPER_USERS: expected a list, got the string "quayadmin" — write a YAML list, such as [a, b] or one '- item' line per entry`},
		},
		{
			name:  "list entry of the wrong type",
			patch: map[string]any{"TAG_EXPIRATION_OPTIONS": []any{"1d", 7}},
			want:  []string{`error: TAG_EXPIRATION_OPTIONS: [1]: expected a string, got the number 7 — put the value in quotes`},
		},
		{
			name:  "nested redis port",
			patch: map[string]any{"BUILDLOGS_REDIS": map[string]any{"host": "redis", "port": "abc"}},
			want:  []string{`error: BUILDLOGS_REDIS: port: expected a whole number, got the string "abc" — write a whole number, without quotes`},
		},
		{
			name:  "nested redis password never shown",
			patch: map[string]any{"USER_EVENTS_REDIS": map[string]any{"host": "redis", "password": 1234567}},
			want:  []string{`error: USER_EVENTS_REDIS: password: expected a string, got a number — put the value in quotes`},
		},
		{
			name:  "fractional seconds",
			patch: map[string]any{"PUSH_TEMP_TAG_EXPIRATION_SEC": 1.5},
			want:  []string{`error: PUSH_TEMP_TAG_EXPIRATION_SEC: expected a whole number, got the number 1.5 — write a whole number, without quotes`},
		},
		{
			name:  "mapping given a list",
			patch: map[string]any{"DB_CONNECTION_ARGS": []any{"sslmode"}},
			want:  []string{`error: DB_CONNECTION_ARGS: expected a mapping, got a list — write a YAML mapping: 'name: value' lines indented below the key`},
		},
		{
			name:  "SERVER_HOSTNAME missing",
			patch: map[string]any{"SERVER_HOSTNAME": drop},
			want:  []string{`error: SERVER_HOSTNAME: is required — set it to the host[:port] clients use, such as quay.example.com`},
		},
		{
			name:  "SERVER_HOSTNAME with scheme",
			patch: map[string]any{"SERVER_HOSTNAME": "https://quay.example.com"},
			want:  []string{`error: SERVER_HOSTNAME: "https://quay.example.com" must not include a scheme (set PREFERRED_URL_SCHEME instead) — write it like quay.example.com or quay.example.com:8443`},
		},
		{
			name:  "SERVER_HOSTNAME bad port",
			patch: map[string]any{"SERVER_HOSTNAME": "quay.example.com:99999"},
			want:  []string{`error: SERVER_HOSTNAME: "quay.example.com:99999" has an invalid port (use 1–65535) — write it like quay.example.com or quay.example.com:8443`},
		},
		{
			name:  "SERVER_HOSTNAME bad name",
			patch: map[string]any{"SERVER_HOSTNAME": "-quay.example.com"},
			want:  []string{`error: SERVER_HOSTNAME: "-quay.example.com" is not a valid host name — write it like quay.example.com or quay.example.com:8443`},
		},
		{
			name:  "SERVER_HOSTNAME bare IPv6",
			patch: map[string]any{"SERVER_HOSTNAME": "2001:db8::1"},
			want:  []string{`error: SERVER_HOSTNAME: "2001:db8::1" looks like an IPv6 address; put it in brackets, as in [2001:db8::1]:8443 — write it like quay.example.com or quay.example.com:8443`},
		},
		{
			name:  "SERVER_HOSTNAME forms that are fine",
			patch: map[string]any{"SERVER_HOSTNAME": "[2001:db8::1]:8443"},
			extra: "",
		},
		{
			name:  "PREFERRED_URL_SCHEME",
			patch: map[string]any{"PREFERRED_URL_SCHEME": "ftp"},
			want:  []string{`error: PREFERRED_URL_SCHEME: "ftp" is not a URL scheme Quay accepts — use http or https`},
		},
		{
			name:  "http behind TLS terminator",
			patch: map[string]any{"PREFERRED_URL_SCHEME": "http", "EXTERNAL_TLS_TERMINATION": true},
			want:  []string{`warning: PREFERRED_URL_SCHEME: is http although EXTERNAL_TLS_TERMINATION is true, so clients are sent http URLs — set PREFERRED_URL_SCHEME: https`},
		},
		{
			name:  "DB_URI mysql",
			patch: map[string]any{"DB_URI": "mysql://quay:db-pass-123@db/quay"},
			want:  []string{`error: DB_URI: scheme "mysql" is not supported by quayctl serve — use postgresql://… or sqlite:///…`},
		},
		{
			name:  "DB_URI mysql+pymysql",
			patch: map[string]any{"DB_URI": "mysql+pymysql://quay:db-pass-123@db/quay"},
			want:  []string{`error: DB_URI: scheme "mysql+pymysql" is not supported by quayctl serve — use postgresql://… or sqlite:///…`},
		},
		{
			name:  "DB_URI not a URL",
			patch: map[string]any{"DB_URI": "db.example.com:5432/quay"},
			want:  []string{`error: DB_URI: is not a URL — use postgresql://user:password@host:5432/quay or sqlite:////path/to/quay.db`},
		},
		{
			name:  "DB_URI sqlite with two slashes",
			patch: map[string]any{"DB_URI": "sqlite://quay.db"},
			want:  []string{`error: DB_URI: needs three slashes after sqlite: — use sqlite:///relative/path.db or sqlite:////absolute/path.db`},
		},
		{
			name:  "DB_URI bad escape in password is not echoed",
			patch: map[string]any{"DB_URI": "postgresql://quay:pa%zzword@db/quay"},
			want:  []string{`error: DB_URI: cannot be parsed: it has an invalid %-escape — percent-encode special characters in the user name and password`},
		},
		{
			name:  "DB_URI missing",
			patch: map[string]any{"DB_URI": drop},
			want:  []string{`error: DB_URI: is required — set it to postgresql://user:password@host:5432/quay or sqlite:////path/to/quay.db`},
		},
		{
			name:  "DB_URI sqlite and postgres forms accepted",
			patch: map[string]any{"DB_URI": "sqlite:////var/lib/quay/quay.db"},
			check: func(t *testing.T, cfg *Config) {
				db, err := cfg.Database()
				if err != nil || db.Driver != "sqlite" || db.DSN != "/var/lib/quay/quay.db" {
					t.Errorf("Database() = %+v, %v", db, err)
				}
			},
		},
		{
			name:  "DATABASE_SECRET_KEY missing",
			patch: map[string]any{"DATABASE_SECRET_KEY": drop},
			want:  []string{`error: DATABASE_SECRET_KEY: is required: robot tokens and mirror credentials in the database are encrypted with it — set it to a long random string (uuidgen makes one); use the same value as the Quay that shares this database`},
		},
		{
			name:  "SECRET_KEY missing",
			patch: map[string]any{"SECRET_KEY": drop},
			want:  []string{`warning: SECRET_KEY: is not set, so a random one is used per start and per replica (Quay does the same): encrypted CLI passwords stop working after a restart — set it to a long random string and keep it stable`},
		},
		{
			name:  "AUTHENTICATION_TYPE LDAP",
			patch: map[string]any{"AUTHENTICATION_TYPE": "LDAP"},
			want:  []string{`error: AUTHENTICATION_TYPE: "LDAP" is not supported yet by quayctl serve — use Database`},
		},
		{
			name:  "AUTHENTICATION_TYPE misspelt",
			patch: map[string]any{"AUTHENTICATION_TYPE": "database"},
			want:  []string{`error: AUTHENTICATION_TYPE: "database" is not a Quay authentication type (Database, LDAP, JWT, Keystone, OIDC, AppToken) — did you mean Database? (quayctl serve supports Database)`},
		},
		{
			name:  "SUPER_USERS names",
			patch: map[string]any{"SUPER_USERS": []any{"Admin", "a", "ops.team", "robot+bot", "x__y"}},
			want: []string{
				`error: SUPER_USERS: "Admin" is not a valid Quay username — use 2–255 characters: lowercase letters and digits, with single . _ or - between them`,
				`error: SUPER_USERS: "a" is not a valid Quay username — use 2–255 characters: lowercase letters and digits, with single . _ or - between them`,
				`error: SUPER_USERS: "robot+bot" is not a valid Quay username — use 2–255 characters: lowercase letters and digits, with single . _ or - between them`,
				`error: SUPER_USERS: "x__y" is not a valid Quay username — use 2–255 characters: lowercase letters and digits, with single . _ or - between them`,
			},
		},
		{
			name:  "no storage",
			patch: map[string]any{"DISTRIBUTED_STORAGE_CONFIG": map[string]any{}, "DISTRIBUTED_STORAGE_PREFERENCE": []any{}},
			want:  []string{`error: DISTRIBUTED_STORAGE_CONFIG: must configure at least one storage location — add one, such as default: [LocalStorage, {storage_path: /datastorage/registry}]`},
		},
		{
			name:  "storage key missing",
			patch: map[string]any{"DISTRIBUTED_STORAGE_CONFIG": drop, "DISTRIBUTED_STORAGE_PREFERENCE": drop},
			want:  []string{`error: DISTRIBUTED_STORAGE_CONFIG: must configure at least one storage location — add one, such as default: [LocalStorage, {storage_path: /datastorage/registry}]`},
		},
		{
			name: "unknown driver with suggestion",
			patch: map[string]any{"DISTRIBUTED_STORAGE_CONFIG": map[string]any{
				"default": []any{"localstorage", map[string]any{"storage_path": "/x"}}}},
			want: []string{`error: DISTRIBUTED_STORAGE_CONFIG: location "default": unknown storage driver "localstorage" (Quay would silently store nothing) — did you mean LocalStorage?`},
		},
		{
			name: "LocalStorage without storage_path",
			patch: map[string]any{"DISTRIBUTED_STORAGE_CONFIG": map[string]any{
				"default": []any{"LocalStorage", map[string]any{}}}},
			want: []string{`error: DISTRIBUTED_STORAGE_CONFIG: location "default": LocalStorage needs storage_path — add storage_path: /datastorage/registry to its parameters`},
		},
		{
			name: "S3 missing params are named",
			patch: map[string]any{"DISTRIBUTED_STORAGE_CONFIG": map[string]any{
				"default": []any{"S3Storage", map[string]any{"s3_access_key": "AKIA", "s3_secret_key": "hidden"}}}},
			want: []string{
				`error: DISTRIBUTED_STORAGE_CONFIG: location "default": S3Storage needs storage_path, s3_bucket — add storage_path, s3_bucket to its parameters`,
			},
		},
		{
			name: "Swift is not supported yet",
			patch: map[string]any{"DISTRIBUTED_STORAGE_CONFIG": map[string]any{
				"default": []any{"SwiftStorage", map[string]any{"swift_container": "c", "storage_path": "/r", "auth_url": "https://k", "swift_user": "u", "swift_password": "p"}}}},
			want: []string{
				`error: DISTRIBUTED_STORAGE_CONFIG: location "default": SwiftStorage is not supported yet by quayctl serve — use LocalStorage or S3Storage or RadosGWStorage or RHOCSStorage for now`,
			},
		},
		{
			name: "location not a pair",
			patch: map[string]any{"DISTRIBUTED_STORAGE_CONFIG": map[string]any{
				"default": map[string]any{"storage_path": "/x"}}},
			want: []string{`error: DISTRIBUTED_STORAGE_CONFIG: location "default": expected a list [DriverName, {parameters}], got a mapping — write it as [Name, {param: value}]`},
		},
		{
			name: "location with three entries",
			patch: map[string]any{"DISTRIBUTED_STORAGE_CONFIG": map[string]any{
				"default": []any{"LocalStorage", map[string]any{}, "extra"}}},
			want: []string{`error: DISTRIBUTED_STORAGE_CONFIG: location "default": expected a list of 2 entries [DriverName, {parameters}], got 3 entries — write it as [Name, {param: value}]`},
		},
		{
			name:  "preference names an unknown location",
			patch: map[string]any{"DISTRIBUTED_STORAGE_PREFERENCE": []any{"default", "us_west"}},
			want:  []string{`error: DISTRIBUTED_STORAGE_PREFERENCE: "us_west" is not a location in DISTRIBUTED_STORAGE_CONFIG — use one of: default`},
		},
		{
			name:  "default locations name an unknown location",
			patch: map[string]any{"DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS": []any{"local_us"}},
			want:  []string{`error: DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS: "local_us" is not a location in DISTRIBUTED_STORAGE_CONFIG — use one of: default`},
		},
		{
			name:  "preference unset",
			patch: map[string]any{"DISTRIBUTED_STORAGE_PREFERENCE": drop},
			want:  []string{`warning: DISTRIBUTED_STORAGE_PREFERENCE: is not set (Quay requires it); quayctl serve uses every location: default — list the locations in the order to use them`},
		},
		{
			name:  "replication with empty preference",
			patch: map[string]any{"FEATURE_STORAGE_REPLICATION": true, "DISTRIBUTED_STORAGE_PREFERENCE": []any{}},
			want: []string{
				`error: FEATURE_STORAGE_REPLICATION: needs DISTRIBUTED_STORAGE_PREFERENCE, which is empty (Quay refuses to start too) — list the storage locations in DISTRIBUTED_STORAGE_PREFERENCE`,
				`error: FEATURE_STORAGE_REPLICATION: needs at least two storage locations; DISTRIBUTED_STORAGE_CONFIG has 1 — add the other regions to DISTRIBUTED_STORAGE_CONFIG, or turn replication off`,
				`warning: DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS: is empty while FEATURE_STORAGE_REPLICATION is on: nothing is replicated — list the locations every blob must reach, such as [default]`,
				`warning: FEATURE_STORAGE_REPLICATION: a location uses LocalStorage: Quay's replication worker will not run (quayctl serve replicates anyway) — use object storage in every location, or turn replication off`,
			},
		},
		{
			name: "replication across two regions",
			patch: map[string]any{"FEATURE_STORAGE_REPLICATION": true,
				"DISTRIBUTED_STORAGE_CONFIG": map[string]any{
					"us": []any{"S3Storage", map[string]any{"storage_path": "/r", "s3_bucket": "us"}},
					"eu": []any{"S3Storage", map[string]any{"storage_path": "/r", "s3_bucket": "eu"}},
				},
				"DISTRIBUTED_STORAGE_PREFERENCE":        []any{"us", "eu"},
				"DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS": []any{"us", "eu", "ap"},
			},
			want: []string{
				`error: DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS: "ap" is not a location in DISTRIBUTED_STORAGE_CONFIG — use one of: eu, us`,
			},
		},
		{
			name: "env storage preference names an unknown location",
			env:  map[string]string{EnvStoragePreference: "default nowhere"},
			want: []string{`error: QUAY_DISTRIBUTED_STORAGE_PREFERENCE: "nowhere" is not a location in DISTRIBUTED_STORAGE_CONFIG — use one of: default`},
		},
		{
			name:  "DEFAULT_TAG_EXPIRATION format",
			patch: map[string]any{"DEFAULT_TAG_EXPIRATION": "2weeks"},
			want:  []string{`error: DEFAULT_TAG_EXPIRATION: "2weeks" is not a duration like 2w, 14d, 24h, 30m or 0s — use a whole number followed by w, d, h, m or s, such as 2w`},
		},
		{
			name:  "DEFAULT_TAG_EXPIRATION not an option",
			patch: map[string]any{"DEFAULT_TAG_EXPIRATION": "3w"},
			want:  []string{`error: DEFAULT_TAG_EXPIRATION: "3w" is not one of TAG_EXPIRATION_OPTIONS (0s, 1d, 1w, 2w, 4w) — add 3w to TAG_EXPIRATION_OPTIONS, or choose one of them`},
		},
		{
			name:  "DEFAULT_TAG_EXPIRATION in custom options",
			patch: map[string]any{"DEFAULT_TAG_EXPIRATION": "3w", "TAG_EXPIRATION_OPTIONS": []any{"1w", "3w"}},
			check: func(t *testing.T, cfg *Config) {
				if d, err := cfg.DefaultTagExpiration(); err != nil || d.Hours() != 21*24 {
					t.Errorf("DefaultTagExpiration() = %v, %v", d, err)
				}
			},
		},
		{
			name:  "TAG_EXPIRATION_OPTIONS entry format",
			patch: map[string]any{"TAG_EXPIRATION_OPTIONS": []any{"2w", "1y"}},
			want:  []string{`error: TAG_EXPIRATION_OPTIONS: "1y" is not a duration like 2w, 14d, 24h, 30m or 0s — use a whole number followed by w, d, h, m or s, such as 2w`},
		},
		{
			name:  "unknown key with suggestion",
			extra: "FEATURE_QUOTA_MANAGMENT: true\n",
			want:  []string{`error: FEATURE_QUOTA_MANAGMENT: not a Quay configuration key — did you mean FEATURE_QUOTA_MANAGEMENT?`},
		},
		{
			name:  "unknown key, wrong case",
			extra: "server_hostname: other.example.com\n",
			want:  []string{`error: server_hostname: not a Quay configuration key (keys are case-sensitive) — did you mean SERVER_HOSTNAME?`},
		},
		{
			name:  "unknown key, dashes",
			extra: "SUPER-USERS: [admin]\n",
			want:  []string{`error: SUPER-USERS: not a Quay configuration key — did you mean SUPER_USERS?`},
		},
		{
			name:  "unknown key, nothing close",
			extra: "WIDGET_FACTORY_MODE: 3\n",
			want:  []string{`error: WIDGET_FACTORY_MODE: not a Quay configuration key — remove it, or list it under QUAYCTL_IGNORED_KEYS if it is a newer Quay key`},
		},
		{
			name:  "unknown quayctl key",
			extra: "QUAYCTL_MAX_MANIFEST_BYTE: 100\n",
			want:  []string{`error: QUAYCTL_MAX_MANIFEST_BYTE: not a quayctl configuration key — did you mean QUAYCTL_MAX_MANIFEST_BYTES?`},
		},
		{
			name:  "known Quay key that quayctl ignores",
			extra: "RECAPTCHA_SITE_KEY: site-key\nFEATURE_SECURITY_SCANNER: true\nFEATURE_GITHUB_BUILD: false\nRHSSO_LOGIN_CONFIG: {}\n",
			want: []string{
				`warning: RECAPTCHA_SITE_KEY: ignored by quayctl serve — nothing to do if Quay shares this file; remove it otherwise`,
				`warning: FEATURE_SECURITY_SCANNER: ignored by quayctl serve — nothing to do if Quay shares this file; remove it otherwise`,
				`warning: RHSSO_LOGIN_CONFIG: ignored by quayctl serve — nothing to do if Quay shares this file; remove it otherwise`,
			},
		},
		{
			name:  "QUAYCTL_IGNORED_KEYS silences keys",
			extra: "RECAPTCHA_SITE_KEY: site-key\nWIDGET_FACTORY_MODE: 3\nQUAYCTL_IGNORED_KEYS: [RECAPTCHA_SITE_KEY, WIDGET_FACTORY_MODE]\n",
		},
		{
			name:  "read-only mode refused",
			extra: "REGISTRY_STATE: readonly\n",
			want:  []string{`error: REGISTRY_STATE: "readonly" is not supported yet by quayctl serve, which would accept writes — remove REGISTRY_STATE or set it to normal`},
		},
		{
			name:  "FEATURE_STORAGE_PROXY alias",
			extra: "FEATURE_STORAGE_PROXY: true\n",
			want:  []string{`warning: FEATURE_STORAGE_PROXY: read as FEATURE_PROXY_STORAGE by quayctl serve, but Quay itself ignores this spelling — rename it to FEATURE_PROXY_STORAGE`},
			check: func(t *testing.T, cfg *Config) {
				if !cfg.ProxyStorage() {
					t.Error("ProxyStorage() = false, want true from the alias")
				}
			},
		},
		{
			name:  "FEATURE_STORAGE_PROXY contradicting FEATURE_PROXY_STORAGE",
			extra: "FEATURE_STORAGE_PROXY: true\nFEATURE_PROXY_STORAGE: false\n",
			want:  []string{`error: FEATURE_STORAGE_PROXY: contradicts FEATURE_PROXY_STORAGE — delete FEATURE_STORAGE_PROXY and keep FEATURE_PROXY_STORAGE`},
		},
		{
			name:  "FEATURE_STORAGE_PROXY agreeing with FEATURE_PROXY_STORAGE",
			extra: "FEATURE_STORAGE_PROXY: true\nFEATURE_PROXY_STORAGE: true\n",
			want:  []string{`warning: FEATURE_STORAGE_PROXY: is a misspelling of FEATURE_PROXY_STORAGE, which is also set — delete it`},
			check: func(t *testing.T, cfg *Config) {
				if !cfg.ProxyStorage() {
					t.Error("ProxyStorage() = false")
				}
			},
		},
		{
			name:  "duplicate key: last wins",
			extra: "SERVER_HOSTNAME: second.example.com\n",
			want:  []string{`warning: SERVER_HOSTNAME: is set twice, on lines 11 and 16; the last one wins, as in Quay — delete one of them`},
			check: func(t *testing.T, cfg *Config) {
				if cfg.ServerHostname != "second.example.com" {
					t.Errorf("SERVER_HOSTNAME = %q", cfg.ServerHostname)
				}
			},
		},
		{
			name:  "LOGS_MODEL elasticsearch",
			patch: map[string]any{"LOGS_MODEL": "elasticsearch"},
			want:  []string{`error: LOGS_MODEL: "elasticsearch" is not supported yet by quayctl serve — use database`},
		},
		{
			name:  "HEALTH_CHECKER misspelt",
			patch: map[string]any{"HEALTH_CHECKER": []any{"LocalHealthChecks", map[string]any{}}},
			want:  []string{`error: HEALTH_CHECKER: "LocalHealthChecks" is not a Quay health checker (LocalHealthCheck, RDSAwareHealthCheck) — did you mean LocalHealthCheck?`},
		},
		{
			name:  "disk space threshold out of range",
			patch: map[string]any{"DISKSPACE_HEALTH_THRESHOLD": 5},
			want:  []string{`error: DISKSPACE_HEALTH_THRESHOLD: 5 is not between 0 and 1 — use a fraction of free space between 0 and 1, such as 0.1`},
		},
		{
			name:  "service key refresh longer than expiration",
			patch: map[string]any{"INSTANCE_SERVICE_KEY_REFRESH": 200},
			want:  []string{`error: INSTANCE_SERVICE_KEY_REFRESH: is 200 minutes, which must be more than 0 and less than INSTANCE_SERVICE_KEY_EXPIRATION (120) — use fewer minutes than INSTANCE_SERVICE_KEY_EXPIRATION, such as half of it minus a margin (Quay: 55 of 120)`},
		},
		{
			name:  "quayctl manifest limit",
			patch: map[string]any{"QUAYCTL_MAX_MANIFEST_BYTES": 0},
			want:  []string{`error: QUAYCTL_MAX_MANIFEST_BYTES: must be more than 0 — use a size in bytes, such as 4194304 (4 MiB)`},
		},
		{
			name:  "TESTING and SETUP_COMPLETE unset",
			patch: map[string]any{"TESTING": drop, "SETUP_COMPLETE": drop},
			want: []string{
				`warning: SETUP_COMPLETE: is not true; Quay refuses to start without it (quayctl serve starts anyway) — set SETUP_COMPLETE: true`,
				`warning: TESTING: is true (Quay's default when unset), which puts Quay in test mode — set TESTING: false`,
			},
		},
		{
			name: "mail complete",
			patch: map[string]any{"MAIL_SERVER": "smtp.example.com", "MAIL_USE_AUTH": true, "MAIL_USERNAME": "quay",
				"MAIL_PASSWORD": "mail-secret-value", "MAIL_DEFAULT_SENDER": "Quay <quay@example.com>", "WEBHOOK_HOSTNAME_BLACKLIST": []any{"internal.example.com"}},
			check: func(t *testing.T, c *Config) {
				if !c.MailEnabled() || c.MailPort != 587 || !c.MailUseTLS {
					t.Errorf("mail enabled %t, port %d, TLS %t; want on, Quay's 587 and STARTTLS", c.MailEnabled(), c.MailPort, c.MailUseTLS)
				}
				if got := strings.Join(c.WebhookBlacklist(), ","); got != "localhost,127.0.0.1,internal.example.com" {
					t.Errorf("WebhookBlacklist() = %s", got)
				}
			},
		},
		{
			name:  "mail off ignores the server's keys",
			patch: map[string]any{"FEATURE_MAILING": false, "MAIL_SERVER": "smtp.example.com:25", "MAIL_PORT": 0},
			check: func(t *testing.T, c *Config) {
				if c.MailEnabled() {
					t.Error("mail enabled with FEATURE_MAILING: false")
				}
			},
		},
		{
			name:  "mail problems",
			patch: map[string]any{"MAIL_SERVER": "smtp.example.com:25", "MAIL_PORT": 70000, "MAIL_USE_AUTH": true, "MAIL_USE_TLS": false, "MAIL_PASSWORD": "mail-secret-value", "MAIL_DEFAULT_SENDER": "not an address"},
			want: []string{
				`error: MAIL_SERVER: "smtp.example.com:25" is not a host name — write a host name, such as smtp.example.com, and put the port in MAIL_PORT`,
				`error: MAIL_PORT: 70000 is not a TCP port — use the SMTP submission port, such as 587`,
				`error: MAIL_USE_AUTH: is true but MAIL_USERNAME or MAIL_PASSWORD is empty — set MAIL_USERNAME and MAIL_PASSWORD, or MAIL_USE_AUTH: false`,
				`error: MAIL_USE_TLS: is false while MAIL_USE_AUTH is true: the password would cross the network in clear text, which quayctl refuses — set MAIL_USE_TLS: true (STARTTLS)`,
				`error: MAIL_DEFAULT_SENDER: "not an address" is not an e-mail address — write an address such as quay@example.com`,
			},
		},
		{
			name:  "mail credentials without a server",
			patch: map[string]any{"MAIL_USERNAME": "quay", "MAIL_PASSWORD": "mail-secret-value"},
			want:  []string{`warning: MAIL_SERVER: is empty, so e-mail notifications are refused although other MAIL_* keys are set — set MAIL_SERVER to your SMTP server's host name, or remove the other MAIL_* keys`},
		},
		{
			name:  "mail without a sender",
			patch: map[string]any{"MAIL_SERVER": "localhost", "MAIL_USE_TLS": false, "MAIL_USE_AUTH": true, "MAIL_USERNAME": "quay", "MAIL_PASSWORD": "mail-secret-value"},
			want:  []string{`warning: MAIL_DEFAULT_SENDER: is empty, so e-mails are sent from support@quay.io — set it to the address notifications come from, such as quay@example.com`},
		},
		{
			name:  "MAIL_PASSWORD of the wrong type is not shown",
			patch: map[string]any{"MAIL_PASSWORD": 918273645},
			want: []string{
				`error: MAIL_PASSWORD: expected a string, got a number — put the value in quotes`,
				`warning: MAIL_SERVER: is empty, so e-mail notifications are refused although other MAIL_* keys are set — set MAIL_SERVER to your SMTP server's host name, or remove the other MAIL_* keys`,
			},
		},
		{
			name:  "webhook blacklist entry with a scheme",
			patch: map[string]any{"WEBHOOK_HOSTNAME_BLACKLIST": []any{"https://internal.example.com"}},
			want:  []string{`error: WEBHOOK_HOSTNAME_BLACKLIST: "https://internal.example.com" is not a host name — list bare host names, such as [internal.example.com, 10.0.0.1]`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeConfig(t, tt.patch, tt.extra)
			cfg, _, err := Load(LoadOptions{Path: path, Env: envFrom(tt.env)})
			got := problemLines(t, cfg, err)
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("problems:\n got: %s\nwant: %s", strings.Join(got, "\n      "), strings.Join(tt.want, "\n      "))
			}
			if tt.check != nil {
				if cfg == nil {
					t.Fatalf("Load failed: %v", err)
				}
				tt.check(t, cfg)
			}
		})
	}
}

// Secrets must not leak into any message, whatever goes wrong.
func TestProblemsNeverShowSecrets(t *testing.T) {
	secrets := []string{"db-pass-123", "db-secret-value", "session-secret-value", "s3-secret-zzz", "redis-pw-zzz", "override-secret"}
	path := writeConfig(t, map[string]any{
		"DB_URI":            "mysql://quay:db-pass-123@db/quay",
		"SECRET_KEY":        []any{"session-secret-value"},
		"BUILDLOGS_REDIS":   map[string]any{"host": []any{"x"}, "password": "redis-pw-zzz"},
		"USER_EVENTS_REDIS": map[string]any{"host": "r", "password": []any{"redis-pw-zzz"}},
		"DISTRIBUTED_STORAGE_CONFIG": map[string]any{
			"default": []any{"S3Storage", map[string]any{"s3_secret_key": "s3-secret-zzz"}},
		},
	}, "DATABASE_SECRET_KEY: [db-secret-value]\n")
	env := map[string]string{EnvOverrideConfig: `{"MAIL_PASSWORD": "override-secret", "PAGE_TOKEN_KEY": ["override-secret"]`}
	_, _, err := Load(LoadOptions{Path: path, Env: envFrom(env)})
	if err == nil {
		t.Fatal("Load succeeded")
	}
	for _, s := range secrets {
		if strings.Contains(err.Error(), s) {
			t.Errorf("error output contains secret %q:\n%v", s, err)
		}
	}
}

func TestValidationErrorFormat(t *testing.T) {
	path := writeConfig(t, map[string]any{"DB_URI": "mysql://q:p@db/quay", "AUTHENTICATION_TYPE": "LDAP"}, "RECAPTCHA_SITE_KEY: site-key\n")
	_, src, err := Load(LoadOptions{Path: path, Env: noEnv})
	var verr *ValidationError
	if !errors.As(err, &verr) {
		t.Fatalf("err = %v, want *ValidationError", err)
	}
	want := "invalid configuration (" + path + "): 2 errors\n" +
		"  DB_URI: scheme \"mysql\" is not supported by quayctl serve — use postgresql://… or sqlite:///…\n" +
		"  AUTHENTICATION_TYPE: \"LDAP\" is not supported yet by quayctl serve — use Database\n" +
		"  warning: RECAPTCHA_SITE_KEY: ignored by quayctl serve — nothing to do if Quay shares this file; remove it otherwise"
	if err.Error() != want {
		t.Errorf("Error() =\n%s\nwant\n%s", err, want)
	}
	if src.Path != path || verr.Source != src || len(verr.Errors()) != 2 {
		t.Errorf("source %v / %v, %d errors", src, verr.Source, len(verr.Errors()))
	}
}

// Validate works on a Config built in code, too (no file, no env).
func TestValidateInCode(t *testing.T) {
	cfg := &Config{
		ServerHostname:               "localhost:8080",
		PreferredURLScheme:           "http",
		DBURI:                        "sqlite:///quay.db",
		DistributedStorageConfig:     map[string]StorageLocation{"default": {Driver: "LocalStorage", Params: map[string]any{"storage_path": "storage"}}},
		AuthenticationType:           "Database",
		DefaultTagExpirationRaw:      "2w",
		HealthChecker:                HealthChecker{Name: "LocalHealthCheck"},
		LogsModel:                    "database",
		InstanceServiceKeyExpiration: 120,
		InstanceServiceKeyRefresh:    55,
		MaxManifestBytes:             1,
		UploadedBlobExpirationSec:    1,
	}
	if ps := cfg.Validate(); len(ps) != 0 {
		t.Errorf("Validate() = %v", ps)
	}
	cfg.AuthenticationType = "OIDC"
	ps := cfg.Validate()
	if len(ps) != 1 || ps[0].Key != "AUTHENTICATION_TYPE" || ps[0].Severity != SeverityError {
		t.Errorf("Validate() = %v", ps)
	}
}

func TestKnownKeyLists(t *testing.T) {
	for _, k := range UsedKeys() {
		_, alias := aliasKeys[k]
		quayctlOnly := strings.HasPrefix(k, "QUAYCTL_")
		switch {
		case alias && quayKeys[k]:
			t.Errorf("%s is an alias but listed as a Quay key", k)
		case quayctlOnly && quayKeys[k]:
			t.Errorf("%s is quayctl-only but listed as a Quay key", k)
		case !alias && !quayctlOnly && !quayKeys[k]:
			t.Errorf("%s is read by quayctl but missing from quay_keys.txt", k)
		}
	}
	for k := range quayKeys {
		if k != strings.ToUpper(k) || strings.ContainsAny(k, " -.") {
			t.Errorf("quay_keys.txt: %q is not an upper-case key", k)
		}
	}
	if !maps.Equal(aliasKeys, map[string]string{"FEATURE_STORAGE_PROXY": "FEATURE_PROXY_STORAGE"}) {
		t.Errorf("aliasKeys = %v", aliasKeys)
	}
}

func TestSuggestKey(t *testing.T) {
	tests := map[string]string{
		"SERVER_HOSTNAM":             "SERVER_HOSTNAME",
		"DB_URL":                     "DB_URI",
		"SUPERUSERS":                 "SUPER_USERS",
		"distributed_storage_config": "DISTRIBUTED_STORAGE_CONFIG",
		"FEATURE_PROXY_STORAG":       "FEATURE_PROXY_STORAGE",
		"QUAYCTL_IGNORE_KEYS":        "QUAYCTL_IGNORED_KEYS",
		"COMPLETELY_DIFFERENT_THING": "",
	}
	for in, want := range tests {
		if got := suggestKey(in); got != want {
			t.Errorf("suggestKey(%q) = %q, want %q", in, got, want)
		}
	}
}
