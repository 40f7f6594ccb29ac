// Package pg holds the connection helpers the toolkit's database tools share:
// reading the database settings of a Quay config.yaml, interpreting Quay's
// DB_URI, redacting it for messages, and connecting with pgx with errors that
// say what failed and what to do.
//
// It knows nothing of quayctl's own registry code (design: the toolkit must
// work against a real Quay without the server's code), so the few rules it
// shares with registry/config (DB_URI schemes, DB_CONNECTION_ARGS keys) are
// written here again on purpose.
package pg

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"go.yaml.in/yaml/v3"
)

// Drivers a DB_URI can name.
const (
	DriverPostgres = "postgres"
	DriverSQLite   = "sqlite"
)

// DefaultConnectTimeout is what Quay adds (connect_timeout 10) when neither
// DB_URI nor DB_CONNECTION_ARGS sets one.
const DefaultConnectTimeout = 10 * time.Second

// URI is a parsed DB_URI. DSN holds the password: never print it; print
// Redacted.
type URI struct {
	Driver   string // DriverPostgres or DriverSQLite
	DSN      string // postgres:// URL for pgx (PostgreSQL only)
	Path     string // database file (SQLite only), relative to the working directory or absolute
	User     string // PostgreSQL user ("" when the URI names none)
	Database string // PostgreSQL database ("" when the URI names none)
	Host     string // PostgreSQL host[:port] as written
	Redacted string // the URI with its password replaced, for messages
}

// uriError explains a bad DB_URI without repeating it (it may hold a password).
type uriError struct{ msg, fix string }

func (e *uriError) Error() string { return "DB_URI " + e.msg + " — " + e.fix }

// ParseDBURI interprets a Quay DB_URI:
//
//	postgresql://user:password@host:5432/quay   (also postgres:// and postgresql+psycopg2://)
//	sqlite:///relative/path.db                  (three slashes: relative to the working directory)
//	sqlite:////absolute/path.db                 (four slashes: absolute)
//
// connArgs is DB_CONNECTION_ARGS (may be nil): its libpq settings (sslmode,
// sslrootcert, …, and Quay's ssl: {ca, cert, key}) are added to the
// PostgreSQL DSN unless the URI already sets them. Errors never contain the URI.
func ParseDBURI(uri string, connArgs map[string]any) (URI, error) {
	uri = strings.TrimSpace(uri)
	scheme, rest, ok := strings.Cut(uri, "://")
	if !ok || scheme == "" {
		return URI{}, &uriError{"is not a URL", "use postgresql://user:password@host:5432/quay or sqlite:////path/to/quay.db"}
	}
	base, _, _ := strings.Cut(strings.ToLower(scheme), "+")
	switch base {
	case "postgresql", "postgres":
		u, err := url.Parse(uri)
		if err != nil {
			return URI{}, &uriError{"cannot be parsed as a URL", "percent-encode special characters in the user name and password"}
		}
		u.Scheme = "postgres"
		q := u.Query()
		add := func(k string, v any) {
			if v != nil && !q.Has(k) {
				q.Set(k, fmt.Sprint(v))
			}
		}
		for _, k := range libpqArgs {
			add(k, connArgs[k])
		}
		if ssl, ok := connArgs["ssl"].(map[string]any); ok {
			add("sslrootcert", ssl["ca"])
			add("sslcert", ssl["cert"])
			add("sslkey", ssl["key"])
		}
		add("connect_timeout", int(DefaultConnectTimeout/time.Second))
		u.RawQuery = q.Encode()
		out := URI{Driver: DriverPostgres, DSN: u.String(), Host: u.Host, Database: strings.TrimPrefix(u.Path, "/")}
		if u.User != nil {
			out.User = u.User.Username()
		}
		out.Redacted = Redact(uri)
		return out, nil
	case "sqlite":
		path, _, _ := strings.Cut(rest, "?")
		if !strings.HasPrefix(path, "/") {
			return URI{}, &uriError{"needs three slashes after sqlite:", "use sqlite:///relative/path.db or sqlite:////absolute/path.db"}
		}
		if path = path[1:]; path == "" || path == ":memory:" {
			return URI{}, &uriError{"names no database file", "use sqlite:////absolute/path/quay.db"}
		}
		return URI{Driver: DriverSQLite, Path: path, Redacted: uri}, nil
	case "mysql":
		return URI{}, &uriError{"uses MySQL, which quayctl does not support", "reset the password by hand with --print-hash (docs/reset-password.md)"}
	}
	return URI{}, &uriError{fmt.Sprintf("has the unsupported scheme %q", scheme), "use postgresql://… or sqlite:///…"}
}

// libpqArgs are DB_CONNECTION_ARGS keys psycopg2 passes to libpq and pgx
// reads from the URL query too.
var libpqArgs = []string{
	"sslmode", "sslrootcert", "sslcert", "sslkey", "sslpassword", "sslsni",
	"connect_timeout", "application_name", "target_session_attrs", "options",
}

// Redact replaces the password of a URI with "xxxxx".
func Redact(uri string) string {
	if u, err := url.Parse(uri); err == nil {
		if u.User != nil {
			if _, has := u.User.Password(); has {
				u.User = url.UserPassword(u.User.Username(), "xxxxx")
			}
		}
		q := u.Query()
		if q.Has("password") {
			q.Set("password", "xxxxx")
			u.RawQuery = q.Encode()
		}
		return u.String()
	}
	// Unparsable: cut everything between "://" and the last "@".
	if j := strings.LastIndex(uri, "@"); j >= 0 {
		start := 0
		if i := strings.Index(uri, "://"); i >= 0 && i < j {
			start = i + 3
		}
		return uri[:start] + "xxxxx" + uri[j:]
	}
	return uri
}

// Password returns the password of a postgres DSN ("" when none), so that
// messages can be scrubbed of it.
func Password(dsn string) string {
	if u, err := url.Parse(dsn); err == nil {
		if u.User != nil {
			p, _ := u.User.Password()
			return p
		}
		return u.Query().Get("password")
	}
	return ""
}

// Scrub removes secret from msg. Secrets shorter than 4 bytes are left
// alone: replacing them would garble the message and they protect nothing.
func Scrub(msg, secret string) string {
	if len(secret) < 4 {
		return msg
	}
	return strings.ReplaceAll(msg, secret, "xxxxx")
}

// ConnErrorKind classifies a failed connection.
type ConnErrorKind string

// Kinds of connection failures.
const (
	ConnUnreachable ConnErrorKind = "unreachable"    // refused, no route, DNS, timeout
	ConnAuth        ConnErrorKind = "authentication" // wrong password, unknown role, pg_hba refusal
	ConnNoDatabase  ConnErrorKind = "no-database"    // the database does not exist
	ConnTLS         ConnErrorKind = "tls"            // TLS required, refused or unverifiable
	ConnOther       ConnErrorKind = "other"
)

// ConnError is a failed connection, with the reason and the remedy. It never
// contains the password.
type ConnError struct {
	Kind     ConnErrorKind
	Where    string // the redacted URI
	User     string
	Database string
	Err      error
	msg      string // the driver's message, scrubbed
}

func (e *ConnError) Error() string {
	return fmt.Sprintf("cannot connect to %s: %s — %s", e.Where, e.msg, e.Remedy())
}

func (e *ConnError) Unwrap() error { return e.Err }

// Remedy says what to do about the failure.
func (e *ConnError) Remedy() string {
	switch e.Kind {
	case ConnUnreachable:
		return "is the database running and reachable from here? From outside the container network or cluster, use --via exec (psql inside the database component), or forward the port (oc port-forward svc/<registry>-quay-database 5432) and pass --db with 127.0.0.1"
	case ConnAuth:
		return fmt.Sprintf("the database refused user %q: check the user name and password in DB_URI (the database component's POSTGRESQL_USER / POSTGRESQL_PASSWORD), or use --via exec, which connects inside the database component", e.User)
	case ConnNoDatabase:
		return fmt.Sprintf("database %q does not exist on that server: check the database name in DB_URI (POSTGRESQL_DATABASE of the database component)", e.Database)
	case ConnTLS:
		return "check sslmode and the certificates (DB_CONNECTION_ARGS sslmode / sslrootcert), or add ?sslmode=disable to --db if the server has no TLS"
	}
	return "check DB_URI, or use --via exec"
}

// Connect opens one connection to the PostgreSQL database u names and checks
// that it answers.
func Connect(ctx context.Context, u URI) (*pgx.Conn, error) {
	if u.Driver != DriverPostgres {
		return nil, fmt.Errorf("%s is not a PostgreSQL URI", u.Redacted)
	}
	cfg, err := pgx.ParseConfig(u.DSN)
	if err != nil {
		return nil, &ConnError{Kind: ConnOther, Where: u.Redacted, User: u.User, Database: u.Database, Err: err,
			msg: "the URI's parameters are invalid (" + Scrub(describeParseError(err), Password(u.DSN)) + ")"}
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, classify(u, cfg.User, cfg.Database, err)
	}
	if err := conn.Ping(ctx); err != nil {
		conn.Close(context.Background())
		return nil, classify(u, cfg.User, cfg.Database, err)
	}
	return conn, nil
}

// OpenDB is Connect for database/sql: a *sql.DB over pgx holding at most
// one connection, checked with a ping. Errors are *ConnError.
func OpenDB(ctx context.Context, u URI) (*sql.DB, error) {
	if u.Driver != DriverPostgres {
		return nil, fmt.Errorf("%s is not a PostgreSQL URI", u.Redacted)
	}
	cfg, err := pgx.ParseConfig(u.DSN)
	if err != nil {
		return nil, &ConnError{Kind: ConnOther, Where: u.Redacted, User: u.User, Database: u.Database, Err: err,
			msg: "the URI's parameters are invalid (" + Scrub(describeParseError(err), Password(u.DSN)) + ")"}
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, classify(u, cfg.User, cfg.Database, err)
	}
	return db, nil
}

func describeParseError(err error) string {
	var pe *pgconn.ParseConfigError
	if errors.As(err, &pe) && pe.Unwrap() != nil {
		return pe.Unwrap().Error()
	}
	return "unparsable"
}

// classify turns a pgx connection error into a ConnError.
func classify(u URI, user, database string, err error) *ConnError {
	ce := &ConnError{Kind: ConnOther, Where: u.Redacted, User: user, Database: database, Err: err}
	var pgErr *pgconn.PgError
	var netErr net.Error
	var dnsErr *net.DNSError
	var opErr *net.OpError
	switch {
	case errors.As(err, &pgErr):
		switch {
		case pgErr.Code == "28P01" || pgErr.Code == "28000":
			ce.Kind = ConnAuth
		case pgErr.Code == "3D000":
			ce.Kind = ConnNoDatabase
		}
		ce.msg = fmt.Sprintf("%s (SQLSTATE %s)", pgErr.Message, pgErr.Code)
	case errors.As(err, &dnsErr):
		ce.Kind = ConnUnreachable
		ce.msg = fmt.Sprintf("host %s not found", dnsErr.Name)
	case errors.As(err, &opErr):
		ce.Kind = ConnUnreachable
		ce.msg = opErr.Error() // "dial tcp 10.0.0.5:5432: connect: connection refused"
	case errors.As(err, &netErr), errors.Is(err, context.DeadlineExceeded):
		ce.Kind = ConnUnreachable
		ce.msg = innermost(err)
	case strings.Contains(err.Error(), "tls") || strings.Contains(err.Error(), "SSL") || strings.Contains(err.Error(), "x509"):
		ce.Kind = ConnTLS
		ce.msg = innermost(err)
	default:
		ce.msg = innermost(err)
	}
	if strings.Contains(strings.ToLower(ce.msg), "server refused tls") || strings.Contains(ce.msg, "x509") {
		ce.Kind = ConnTLS
	}
	ce.msg = Scrub(ce.msg, Password(u.DSN))
	return ce
}

// innermost is the message of the deepest wrapped error, which is where pgx
// and net put the useful part ("connection refused", "i/o timeout").
func innermost(err error) string {
	msg := err.Error()
	for {
		next := errors.Unwrap(err)
		if next == nil {
			break
		}
		err = next
		if m := err.Error(); m != "" {
			msg = m
		}
	}
	return msg
}

// QuayConfig is the part of a Quay config.yaml the database tools read.
type QuayConfig struct {
	DBURI              string         `yaml:"DB_URI"`
	DBConnectionArgs   map[string]any `yaml:"DB_CONNECTION_ARGS"`
	SuperUsers         []string       `yaml:"SUPER_USERS"`
	AuthenticationType string         `yaml:"AUTHENTICATION_TYPE"`
	ServerHostname     string         `yaml:"SERVER_HOSTNAME"`
	PreferredURLScheme string         `yaml:"PREFERRED_URL_SCHEME"`
}

var backticked = regexp.MustCompile("`[^`]*`")

// ParseQuayConfig reads the database settings of a config.yaml. Other keys
// are ignored; a file that is not YAML is an error that names no value.
func ParseQuayConfig(b []byte) (QuayConfig, error) {
	var c QuayConfig
	if err := yaml.Unmarshal(b, &c); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			// yaml quotes the offending value in backticks; it may be a secret.
			msgs := make([]string, len(te.Errors))
			for i, m := range te.Errors {
				msgs[i] = backticked.ReplaceAllString(m, "a value")
			}
			return QuayConfig{}, fmt.Errorf("config.yaml has a key of the wrong type: %s", strings.Join(msgs, "; "))
		}
		return QuayConfig{}, errors.New("config.yaml is not valid YAML")
	}
	return c, nil
}

// ReadQuayConfig reads a config.yaml from a file, or from config.yaml inside
// a directory.
func ReadQuayConfig(path string) (QuayConfig, error) {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		path = strings.TrimRight(path, "/") + "/config.yaml"
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return QuayConfig{}, err
	}
	c, err := ParseQuayConfig(b)
	if err != nil {
		return QuayConfig{}, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// RegistryURL is where the configured Quay serves (PREFERRED_URL_SCHEME://
// SERVER_HOSTNAME), or "" when SERVER_HOSTNAME is unset.
func (c QuayConfig) RegistryURL() string {
	if c.ServerHostname == "" {
		return ""
	}
	scheme := c.PreferredURLScheme
	if scheme == "" {
		scheme = "http"
	}
	return scheme + "://" + c.ServerHostname
}
