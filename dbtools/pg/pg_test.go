package pg

import (
	"strings"
	"testing"
)

func TestParseDBURI(t *testing.T) {
	for _, c := range []struct {
		uri                 string
		args                map[string]any
		driver, path, user  string
		db, redacted, inDSN string
	}{
		{"postgresql://quayuser:p%40ss@quay-server:5432/quay", nil, DriverPostgres, "", "quayuser", "quay",
			"postgresql://quayuser:xxxxx@quay-server:5432/quay", "connect_timeout=10"},
		{"postgresql+psycopg2://u:pw@db/quay?sslmode=require", map[string]any{"sslmode": "disable", "ssl": map[string]any{"ca": "/conf/stack/database.pem"}},
			DriverPostgres, "", "u", "quay", "postgresql+psycopg2://u:xxxxx@db/quay?sslmode=require", "sslrootcert=%2Fconf%2Fstack%2Fdatabase.pem"},
		{"sqlite:///quay-data/quay.db", nil, DriverSQLite, "quay-data/quay.db", "", "", "sqlite:///quay-data/quay.db", ""},
		{"sqlite:////sqlite/quay_sqlite.db", nil, DriverSQLite, "/sqlite/quay_sqlite.db", "", "", "sqlite:////sqlite/quay_sqlite.db", ""},
	} {
		u, err := ParseDBURI(c.uri, c.args)
		if err != nil {
			t.Errorf("%s: %v", c.uri, err)
			continue
		}
		if u.Driver != c.driver || u.Path != c.path || u.User != c.user || u.Database != c.db || u.Redacted != c.redacted || !strings.Contains(u.DSN, c.inDSN) {
			t.Errorf("%s: %+v", c.uri, u)
		}
		if strings.Contains(u.DSN, "sslmode=disable") {
			t.Errorf("%s: DB_CONNECTION_ARGS overrode the URI's sslmode", c.uri)
		}
	}
	for _, c := range []struct{ uri, want string }{
		{"quay-server:5432", "is not a URL"},
		{"sqlite://quay.db", "three slashes"},
		{"sqlite:///", "names no database file"},
		{"mysql+pymysql://u:secretpw@db/quay", "MySQL"},
		{"postgresql://u:bad%zzsecret@db/quay", "cannot be parsed"},
		{"oracle://u:secretpw@db/x", "unsupported scheme"},
	} {
		_, err := ParseDBURI(c.uri, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "secret") {
			t.Errorf("ParseDBURI(%q) = %v, want %q without the password", c.uri, err, c.want)
		}
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"postgresql://u:pw@h/db":          "postgresql://u:xxxxx@h/db",
		"postgres://u@h/db?password=pw":   "postgres://u@h/db?password=xxxxx",
		"postgresql://u:p%zz@h/db":        "postgresql://xxxxx@h/db",
		"sqlite:////var/lib/quay/quay.db": "sqlite:////var/lib/quay/quay.db",
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
	if got := Scrub("auth failed for pw hunter22", "hunter22"); got != "auth failed for pw xxxxx" {
		t.Errorf("Scrub = %q", got)
	}
}

func TestParseQuayConfig(t *testing.T) {
	c, err := ParseQuayConfig([]byte(`
DB_URI: postgresql://quayuser:quaypass@quay-server.example.com:5432/quay
DB_CONNECTION_ARGS: {sslmode: verify-full}
SUPER_USERS: [quayadmin, ops]
AUTHENTICATION_TYPE: Database
SERVER_HOSTNAME: quay-server.example.com
PREFERRED_URL_SCHEME: https
FEATURE_MAILING: false
`))
	if err != nil {
		t.Fatal(err)
	}
	if c.DBURI == "" || c.DBConnectionArgs["sslmode"] != "verify-full" || strings.Join(c.SuperUsers, ",") != "quayadmin,ops" ||
		c.AuthenticationType != "Database" || c.RegistryURL() != "https://quay-server.example.com" {
		t.Errorf("%+v", c)
	}
	if _, err := ParseQuayConfig([]byte("SUPER_USERS: hunter2secret\n")); err == nil || strings.Contains(err.Error(), "hunter2secret") {
		t.Errorf("wrong type: %v (must not echo the value)", err)
	}
	if _, err := ParseQuayConfig([]byte("DB_URI: [unclosed\n")); err == nil {
		t.Error("invalid YAML accepted")
	}
}
