package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite" // registers driver "sqlite"
)

var _ Store = (*DB)(nil)

// DB is the Store over database/sql, for SQLite and PostgreSQL.
type DB struct {
	d dialect
	// w runs writes and every transaction; r runs plain reads. On PostgreSQL
	// they are the same pool. On SQLite, w has exactly one connection: SQLite
	// allows one writer at a time anyway, and queueing writers in Go (instead
	// of letting several connections poll on the busy handler) means writes
	// never fail with SQLITE_BUSY and never wait on a back-off sleep, while
	// reads keep a pool of their own and, under WAL, never wait for writers.
	// Its transactions are BEGIN IMMEDIATE (_txlock) so another process
	// sharing the file is waited for (busy_timeout) at BEGIN instead of
	// failing on a read-to-write lock upgrade in the middle of a transaction.
	w, r *sql.DB

	// where is the database for messages: the SQLite path, or the
	// PostgreSQL URI with its password redacted.
	where string
	log   *slog.Logger

	// now is the clock; tests replace it.
	now func() time.Time

	kindsMu  sync.RWMutex
	logKinds map[string]int64 // logentrykind name -> id

	// Garbage collection and the time machine (gc.go).
	gcMu           sync.RWMutex
	blobVerifier   func(ctx context.Context, location, digest string) error
	defaultTagExpS *int64 // DEFAULT_TAG_EXPIRATION in seconds; nil: two weeks

	quota atomic.Pointer[QuotaPolicy] // quota.go; nil: the zero policy
}

const (
	sqliteBusyTimeout = 10 * time.Second
	pgConnectTimeout  = 10 * time.Second // Quay adds connect_timeout 10
	pgMaxOpenConns    = 20
)

// Open connects to the database named by a Quay-style DB_URI:
//
//	sqlite:///relative/path.db        (three slashes: relative to the working directory)
//	sqlite:////absolute/path.db       (four slashes: absolute)
//	postgresql://user:pass@host:port/db?sslmode=disable
//	postgres://…, postgresql+psycopg2://… (the +driver suffix is ignored)
//
// It checks that the database answers, but does not migrate; call Migrate.
// Errors say what failed and what to do, and never contain the password.
func Open(ctx context.Context, dbURI string) (*DB, error) {
	scheme, _, ok := strings.Cut(dbURI, "://")
	if !ok {
		return nil, fmt.Errorf("invalid DB_URI %q: expected sqlite:///path.db or postgresql://user:password@host:port/database", RedactURI(dbURI))
	}
	base, _, _ := strings.Cut(strings.ToLower(scheme), "+")
	switch base {
	case "sqlite":
		return openSQLite(ctx, dbURI[len(scheme)+len("://"):])
	case "postgresql", "postgres":
		return openPostgres(ctx, "postgres"+dbURI[len(scheme):])
	case "mysql":
		return nil, errors.New("DB_URI uses MySQL, which quayctl does not support: use postgresql://… or sqlite:///…")
	}
	return nil, fmt.Errorf("unsupported DB_URI scheme %q in %q: use postgresql://… or sqlite:///…", scheme, RedactURI(dbURI))
}

func newDB(pg bool, w, r *sql.DB, where string) *DB {
	return &DB{d: dialect{pg: pg}, w: w, r: r, where: where, log: slog.Default(), now: time.Now}
}

// openSQLite takes what follows "sqlite://": "/rel/path" or "//abs/path"
// (SQLAlchemy's convention: the path starts after the third slash).
func openSQLite(ctx context.Context, rest string) (*DB, error) {
	if i := strings.IndexAny(rest, "?#"); i >= 0 {
		rest = rest[:i] // SQLAlchemy query options have no meaning here
	}
	if !strings.HasPrefix(rest, "/") || len(rest) < 2 {
		return nil, fmt.Errorf("invalid SQLite DB_URI sqlite://%s: use sqlite:///relative/path.db or sqlite:////absolute/path.db", rest)
	}
	path := rest[1:]
	if path == ":memory:" {
		return nil, errors.New("SQLite in-memory databases are not supported: use sqlite:///path/to/file.db")
	}
	if dir := filepath.Dir(path); dir != "" {
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			return nil, fmt.Errorf("cannot open SQLite database %s: directory %s does not exist — create it or fix DB_URI", path, dir)
		}
	}
	pragmas := url.Values{}
	pragmas.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", sqliteBusyTimeout.Milliseconds()))
	pragmas.Add("_pragma", "foreign_keys(1)")
	pragmas.Add("_pragma", "synchronous(NORMAL)") // durable enough under WAL, much faster
	wq := url.Values{}
	for k, v := range pragmas {
		wq[k] = append([]string(nil), v...)
	}
	wq.Add("_pragma", "journal_mode(WAL)") // persistent in the file; set by the writer
	wq.Set("_txlock", "immediate")

	w, err := sql.Open("sqlite", path+"?"+wq.Encode())
	if err != nil {
		return nil, fmt.Errorf("cannot open SQLite database %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	// Open the writer first so that the file exists and is in WAL mode
	// before any reader connects.
	if err := w.PingContext(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("cannot open SQLite database %s: %w — check that the file is a SQLite database and that its directory is writable", path, err)
	}
	r, err := sql.Open("sqlite", path+"?"+pragmas.Encode())
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("cannot open SQLite database %s: %w", path, err)
	}
	r.SetMaxOpenConns(8)
	r.SetMaxIdleConns(8)
	if err := r.PingContext(ctx); err != nil {
		w.Close()
		r.Close()
		return nil, fmt.Errorf("cannot open SQLite database %s: %w", path, err)
	}
	return newDB(false, w, r, path), nil
}

func openPostgres(ctx context.Context, uri string) (*DB, error) {
	where := RedactURI(uri)
	password := uriPassword(uri)
	cfg, err := pgx.ParseConfig(uri)
	if err != nil {
		return nil, fmt.Errorf("invalid PostgreSQL DB_URI %s: %s", where, scrub(err.Error(), password))
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = pgConnectTimeout
	}
	db := stdlib.OpenDB(*cfg)
	// A cap keeps a burst of requests from using up the server's
	// max_connections (100 by default) across several replicas; callers
	// queue in database/sql instead.
	db.SetMaxOpenConns(pgMaxOpenConns)
	db.SetMaxIdleConns(10)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, pgOpenError(cfg, where, password, err)
	}
	return newDB(true, db, db, where), nil
}

// pgOpenError turns a failed first connection into a message with a remedy.
func pgOpenError(cfg *pgx.ConnConfig, where, password string, err error) error {
	addr := fmt.Sprintf("%s:%d", cfg.Host, cfg.Port)
	// pgx lists each address it tried on its own indented line.
	msg := strings.Join(strings.Fields(scrub(err.Error(), password)), " ")
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "28P01", "28000":
			return fmt.Errorf("database at %s refused the login of user %q: %s — check the user and password in DB_URI", addr, cfg.User, scrub(pgErr.Message, password))
		case "3D000":
			return fmt.Errorf("database %q does not exist on %s — create it (createdb %s) or fix DB_URI", cfg.Database, addr, cfg.Database)
		}
		return fmt.Errorf("database at %s (%s) returned an error: %s", addr, where, msg)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("cannot reach database at %s: timed out — is PostgreSQL running and reachable? check DB_URI (%s)", addr, where)
	}
	return fmt.Errorf("cannot reach database at %s: %s — is PostgreSQL running? check DB_URI (%s)", addr, msg, where)
}

// RedactURI returns the URI with its password replaced by "xxxxx", for
// messages and logs. When the URI does not parse as one with user
// information, everything before the last "@" (after any "scheme://") is
// hidden instead.
func RedactURI(uri string) string {
	u, err := url.Parse(uri)
	if err == nil && u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
		return u.String()
	}
	if j := strings.LastIndex(uri, "@"); j >= 0 {
		start := 0
		if i := strings.Index(uri, "://"); i >= 0 && i < j {
			start = i + 3
		}
		return uri[:start] + "xxxxx" + uri[j:]
	}
	return uri
}

func uriPassword(uri string) string {
	if u, err := url.Parse(uri); err == nil && u.User != nil {
		p, _ := u.User.Password()
		return p
	}
	return ""
}

// scrub removes a password from a driver message, in case one echoes it.
// Very short passwords are left alone: replacing them would garble the
// message and they are not secrets worth the name.
func scrub(msg, password string) string {
	if len(password) < 4 {
		return msg
	}
	msg = strings.ReplaceAll(msg, password, "xxxxx")
	if esc := url.QueryEscape(password); esc != password {
		msg = strings.ReplaceAll(msg, esc, "xxxxx")
	}
	return msg
}

// Close closes the connection pools.
func (db *DB) Close() error {
	err := db.w.Close()
	if db.r != db.w {
		err = errors.Join(err, db.r.Close())
	}
	return err
}

// SetLogger sets where the store logs (migrations applied, missing
// extensions); the default is slog.Default().
func (db *DB) SetLogger(l *slog.Logger) {
	if l != nil {
		db.log = l
	}
}

// Dialect is "sqlite" or "postgresql".
func (db *DB) Dialect() string { return db.d.name() }

// String names the database, without secrets.
func (db *DB) String() string { return db.d.name() + " " + db.where }

// Ping selects one row from teamrole, as Quay's database health check does.
func (db *DB) Ping(ctx context.Context) error {
	var id int64
	err := db.r.QueryRowContext(ctx, "SELECT id FROM teamrole LIMIT 1").Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("database %s: table teamrole is empty — the schema is not migrated", db.where)
	}
	if err != nil {
		return fmt.Errorf("database %s: %w", db.where, err)
	}
	return nil
}

// queryer is what *sql.DB and *sql.Tx have in common.
type queryer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func (db *DB) exec(ctx context.Context, q queryer, query string, args ...any) (sql.Result, error) {
	return q.ExecContext(ctx, db.d.rebind(query), args...)
}

func (db *DB) query(ctx context.Context, q queryer, query string, args ...any) (*sql.Rows, error) {
	return q.QueryContext(ctx, db.d.rebind(query), args...)
}

func (db *DB) queryRow(ctx context.Context, q queryer, query string, args ...any) *sql.Row {
	return q.QueryRowContext(ctx, db.d.rebind(query), args...)
}

// inTx runs fn in a write transaction, committing when it returns nil.
func (db *DB) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// advisoryLock takes a transaction-scoped PostgreSQL advisory lock; SQLite
// needs none because its write transactions are already serialised.
func (db *DB) advisoryLock(ctx context.Context, tx *sql.Tx, name string) error {
	if !db.d.pg {
		return nil
	}
	if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", advisoryKey(name)); err != nil {
		return fmt.Errorf("advisory lock %s: %w", name, err)
	}
	return nil
}

// notFound maps sql.ErrNoRows to ErrNotFound with some context.
func notFound(err error, what string) error {
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	return fmt.Errorf("%s: %w", what, err)
}

func (db *DB) nowMs() int64 { return db.now().UnixMilli() }

// checkAffected returns ErrNotFound when an UPDATE/DELETE touched no row.
func checkAffected(res sql.Result, what string) error {
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	return nil
}
