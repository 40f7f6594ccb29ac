package config

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// Database is DB_URI (with DB_CONNECTION_ARGS) resolved for a Go driver.
type Database struct {
	// Driver is "postgres" or "sqlite".
	Driver string
	// DSN is, for postgres, a postgres:// URL that pgx accepts; for sqlite,
	// the database file path (relative paths are relative to the working
	// directory, as in Quay).
	DSN string
	// MaxConns is DB_CONNECTION_ARGS.max_connections, or 0 when unset.
	MaxConns int
}

const dbURIFix = "use postgresql://… or sqlite:///…"

// dbURIError explains a bad DB_URI without repeating it (it holds a password).
type dbURIError struct{ msg, fix string }

func (e *dbURIError) Error() string { return "DB_URI: " + e.msg + " — " + e.fix }

// postgresSchemes are the DB_URI schemes Quay uses for PostgreSQL.
var postgresSchemes = []string{"postgresql", "postgres", "postgresql+psycopg2"}

// ParseDBURI interprets a Quay DB_URI. Errors never contain the URI.
func ParseDBURI(uri string) (Database, error) {
	scheme, rest, ok := strings.Cut(uri, "://")
	if !ok || scheme == "" {
		return Database{}, &dbURIError{"is not a URL", "use postgresql://user:password@host:5432/quay or sqlite:////path/to/quay.db"}
	}
	switch lower := strings.ToLower(scheme); {
	case slices.Contains(postgresSchemes, lower):
		u, err := url.Parse(uri)
		if err != nil {
			return Database{}, &dbURIError{urlProblem(err), "percent-encode special characters in the user name and password"}
		}
		u.Scheme = "postgres"
		return Database{Driver: "postgres", DSN: u.String()}, nil
	case lower == "sqlite":
		path, _, _ := strings.Cut(rest, "?")
		if !strings.HasPrefix(path, "/") {
			return Database{}, &dbURIError{"needs three slashes after sqlite:", "use sqlite:///relative/path.db or sqlite:////absolute/path.db"}
		}
		if path = path[1:]; path == "" {
			return Database{}, &dbURIError{"names no database file", "use sqlite:////absolute/path/quay.db"}
		}
		return Database{Driver: "sqlite", DSN: path}, nil
	}
	return Database{}, &dbURIError{fmt.Sprintf("scheme %q is not supported by quayctl serve", scheme), dbURIFix}
}

// urlProblem describes a url.Parse failure without echoing the URL: parts of
// it (an escape sequence, the userinfo) may be the password.
func urlProblem(err error) string {
	var esc url.EscapeError
	var host url.InvalidHostError
	switch {
	case errors.As(err, &esc):
		return "cannot be parsed: it has an invalid %-escape"
	case errors.As(err, &host):
		return "cannot be parsed: " + host.Error()
	case strings.Contains(err.Error(), "invalid port"):
		return "cannot be parsed: the port is not a number"
	case strings.Contains(err.Error(), "userinfo"):
		return "cannot be parsed: the user name or password has characters that must be percent-encoded"
	}
	return "cannot be parsed as a URL"
}

// libpqArgs are DB_CONNECTION_ARGS keys psycopg2 passes to libpq, which pgx
// reads from the URL query as well.
var libpqArgs = []string{
	"sslmode", "sslrootcert", "sslcert", "sslkey", "sslpassword", "sslsni",
	"connect_timeout", "application_name", "target_session_attrs", "options",
}

// Database resolves DB_URI and the PostgreSQL-relevant DB_CONNECTION_ARGS.
// Parameters already in the URI win. Like Quay, it adds connect_timeout=10
// when neither sets one.
func (c *Config) Database() (Database, error) {
	db, err := ParseDBURI(c.DBURI)
	if err != nil || db.Driver != "postgres" {
		return db, err
	}
	u, err := url.Parse(db.DSN)
	if err != nil {
		return Database{}, &dbURIError{urlProblem(err), dbURIFix}
	}
	q := u.Query()
	args := c.DBConnectionArgs
	add := func(k string, v any) {
		if v != nil && !q.Has(k) {
			q.Set(k, fmt.Sprint(v))
		}
	}
	for _, k := range libpqArgs {
		add(k, args[k])
	}
	// Quay documents ssl: {ca, cert, key} for client certificates.
	if ssl, ok := args["ssl"].(map[string]any); ok {
		add("sslrootcert", ssl["ca"])
		add("sslcert", ssl["cert"])
		add("sslkey", ssl["key"])
	}
	add("connect_timeout", 10)
	u.RawQuery = q.Encode()
	db.DSN = u.String()
	if n, ok := args["max_connections"].(int); ok {
		db.MaxConns = n
	}
	return db, nil
}
