package configcheck

import (
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/quayctl/quayctl/registry/config"
)

func TestQuayRules(t *testing.T) {
	base := map[string]any{
		"BUILDLOGS_REDIS":   map[string]any{"host": "r"},
		"USER_EVENTS_REDIS": map[string]any{"host": "r"},
	}
	with := func(kv ...any) map[string]any {
		m := map[string]any{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	noFiles := func(string) (bool, bool) { return false, true }
	bothFiles := func(string) (bool, bool) { return true, true }
	tests := []struct {
		name  string
		raw   map[string]any
		files FileProbe
		want  []string // "severity KEY: message"
	}{
		{"ok", with(), nil, nil},
		{"redis missing", map[string]any{}, nil, []string{
			"error BUILDLOGS_REDIS: is required by Quay", "error USER_EVENTS_REDIS: is required by Quay"}},
		{"redis no host, bad port", with("BUILDLOGS_REDIS", map[string]any{"port": 0}), nil, []string{
			"error BUILDLOGS_REDIS: has no host", "error BUILDLOGS_REDIS: port is not a valid port number"}},
		{"https without certs", with("PREFERRED_URL_SCHEME", "https"), noFiles, []string{
			"error ssl.cert: PREFERRED_URL_SCHEME is https and TLS is not terminated elsewhere, but ssl.cert and ssl.key are missing next to config.yaml"}},
		{"https terminated elsewhere", with("PREFERRED_URL_SCHEME", "https", "EXTERNAL_TLS_TERMINATION", true), noFiles, nil},
		{"certs with http", with("PREFERRED_URL_SCHEME", "http"), bothFiles, []string{
			"warning PREFERRED_URL_SCHEME: is http but Quay serves HTTPS (ssl.key is present), so it hands out http URLs"}},
		{"certs and external", with("PREFERRED_URL_SCHEME", "https", "EXTERNAL_TLS_TERMINATION", true), bothFiles, []string{
			"warning EXTERNAL_TLS_TERMINATION: is true, yet ssl.key is present, so Quay also terminates TLS itself"}},
		{"unknown files", with("PREFERRED_URL_SCHEME", "https"), func(string) (bool, bool) { return false, false }, nil},
		{"ldap", with("AUTHENTICATION_TYPE", "LDAP", "LDAP_URI", "ldap.example.com"), nil, []string{
			"error LDAP_BASE_DN: is required with AUTHENTICATION_TYPE LDAP",
			"error LDAP_URI: is not an ldap:// or ldaps:// URI",
			"warning LDAP_USER_RDN: is not set, so users are searched from LDAP_BASE_DN down"}},
		{"jwt", with("AUTHENTICATION_TYPE", "JWT"), nil, []string{"error JWT_VERIFY_ENDPOINT: is required with AUTHENTICATION_TYPE JWT"}},
		{"keystone", with("AUTHENTICATION_TYPE", "Keystone", "KEYSTONE_AUTH_URL", "https://k"), nil, []string{"error KEYSTONE_ADMIN_USERNAME: is required with AUTHENTICATION_TYPE Keystone"}},
		{"oidc without provider", with("AUTHENTICATION_TYPE", "OIDC"), nil, []string{"error AUTHENTICATION_TYPE: is OIDC but no *_LOGIN_CONFIG names an OIDC provider"}},
		{"oidc provider incomplete", with("AUTHENTICATION_TYPE", "OIDC", "RHSSO_LOGIN_CONFIG", map[string]any{"CLIENT_ID": "x"}), nil, []string{
			"error RHSSO_LOGIN_CONFIG: has no CLIENT_SECRET", "error RHSSO_LOGIN_CONFIG: has no OIDC_SERVER URL"}},
		{"apptoken", with("AUTHENTICATION_TYPE", "AppToken"), nil, []string{"error FEATURE_APP_SPECIFIC_TOKENS: must be true with AUTHENTICATION_TYPE AppToken"}},
		{"features", with("FEATURE_SECURITY_SCANNER", true, "FEATURE_MAILING", true, "FEATURE_GITHUB_LOGIN", true, "FEATURE_BUILD_SUPPORT", false), nil, []string{
			"error FEATURE_MAILING: is true but MAIL_SERVER is not set",
			"error FEATURE_SECURITY_SCANNER: is true but SECURITY_SCANNER_V4_ENDPOINT is not set",
			"error FEATURE_GITHUB_LOGIN: is true but GITHUB_LOGIN_CONFIG is not set"}},
		{"scanner without psk", with("FEATURE_SECURITY_SCANNER", true, "SECURITY_SCANNER_V4_ENDPOINT", "http://clair"), nil, []string{
			"warning SECURITY_SCANNER_V4_PSK: is not set: Clair must then accept unauthenticated requests"}},
		{"log rotation", with("FEATURE_ACTION_LOG_ROTATION", true, "ACTION_LOG_ARCHIVE_LOCATION", "nowhere", "ACTION_LOG_ARCHIVE_PATH", "/l",
			"DISTRIBUTED_STORAGE_CONFIG", map[string]any{"default": []any{"LocalStorage", map[string]any{}}}), nil, []string{
			`error ACTION_LOG_ARCHIVE_LOCATION: "nowhere" is not a storage location`}},
		{"logs model", with("LOGS_MODEL", "splunk"), nil, []string{"error LOGS_MODEL_CONFIG: is required with LOGS_MODEL splunk"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, p := range quayProblems(tt.raw, nil, tt.files) {
				got = append(got, p.Severity.String()+" "+p.Key+": "+p.Message)
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestQuayProblemsAdaptServeProblems(t *testing.T) {
	in := []config.Problem{
		{Key: "AUTHENTICATION_TYPE", Message: `"LDAP" is not supported yet by quayctl serve`, Severity: config.SeverityError},
		{Key: "MAIL_SERVER", Message: "ignored by quayctl serve", Severity: config.SeverityWarning},
		{Key: "FEATURE_QUOTA_MANAGEMENT", Message: "is accepted but not acted on by quayctl serve: quotas", Severity: config.SeverityWarning},
		{Key: "DB_URI", Message: `scheme "mysql" is not supported by quayctl serve`, Severity: config.SeverityError},
		{Key: "AUTHENTICATION_TYPE", Message: `"database" is not a Quay authentication type`, Fix: "did you mean Database? (quayctl serve supports Database)", Severity: config.SeverityError},
		{Key: "FEATURE_PROXY_STROAGE", Message: "not a Quay configuration key", Fix: "did you mean FEATURE_PROXY_STORAGE?", Severity: config.SeverityError},
		{Key: "SERVER_HOSTNAME", Message: "is required", Severity: config.SeverityError},
	}
	got := quayProblems(nil, in, nil)
	want := []config.Problem{
		{Key: "AUTHENTICATION_TYPE", Message: `"database" is not a Quay authentication type`, Fix: "did you mean Database?", Severity: config.SeverityError},
		{Key: "FEATURE_PROXY_STROAGE", Message: "not a Quay configuration key (Quay ignores it)", Fix: "did you mean FEATURE_PROXY_STORAGE?", Severity: config.SeverityWarning},
		{Key: "SERVER_HOSTNAME", Message: "is required", Severity: config.SeverityError},
	}
	if g, w := yamlOf(got), yamlOf(want); g != w {
		t.Errorf("got\n%s\nwant\n%s", g, w)
	}
}

func yamlOf(v any) string {
	b, _ := yaml.Marshal(v)
	return string(b)
}

func TestFieldGroups(t *testing.T) {
	for key, want := range map[string]string{
		"DB_URI": "database", "DATABASE_SECRET_KEY": "database", "DISTRIBUTED_STORAGE_CONFIG": "storage",
		"FEATURE_STORAGE_REPLICATION": "storage", "BUILDLOGS_REDIS": "redis", "SERVER_HOSTNAME": "host settings",
		"EXTERNAL_TLS_TERMINATION": "TLS", "ssl.cert": "TLS", "LDAP_URI": "auth", "RHSSO_LOGIN_CONFIG": "auth",
		"SUPER_USERS": "auth", "FEATURE_QUOTA_MANAGEMENT": "features", "TAG_EXPIRATION_OPTIONS": "other",
		"QUAY_DISTRIBUTED_STORAGE_PREFERENCE": "storage",
	} {
		if got := fieldGroup(key); got != want {
			t.Errorf("fieldGroup(%s) = %s, want %s", key, got, want)
		}
	}
}
