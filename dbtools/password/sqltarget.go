package password

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "modernc.org/sqlite" // the "sqlite" database/sql driver

	"github.com/quayctl/quayctl/dbtools/pg"
)

// sqlTarget is a Target over database/sql: PostgreSQL through pgx (direct)
// or a SQLite file (sqlite). Queries are written once with "?" placeholders;
// rebind turns them into $n for PostgreSQL.
type sqlTarget struct {
	db    *sql.DB
	via   string
	where string
	pg    bool
	now   func() time.Time
}

// OpenDirect connects to the PostgreSQL database a DB_URI names. Errors are
// *pg.ConnError (unreachable, refused credentials, no such database).
func OpenDirect(ctx context.Context, u pg.URI) (Target, error) {
	db, err := pg.OpenDB(ctx, u)
	if err != nil {
		return nil, err
	}
	return &sqlTarget{db: db, via: ViaDirect, where: u.Redacted, pg: true, now: time.Now}, nil
}

// SQLiteError says a SQLite database cannot be used, and why.
type SQLiteError struct {
	Path   string
	Reason string
	Err    error
}

func (e *SQLiteError) Error() string {
	return fmt.Sprintf("cannot use the SQLite database %s: %s", e.Path, e.Reason)
}

func (e *SQLiteError) Unwrap() error { return e.Err }

const sqliteBusyTimeout = 10 * time.Second

// OpenSQLite opens an existing SQLite database file (never creates one).
// Writes wait up to 10 s for another process holding the file (quayctl
// serve, Quay) and take the write lock at BEGIN.
func OpenSQLite(ctx context.Context, u pg.URI) (Target, error) {
	path := u.Path
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil, &SQLiteError{Path: path, Err: err, Reason: "the file does not exist on this host — a DB_URI from config.yaml names the path inside the quay container: pass --db sqlite:////HOST/PATH with the file's path on the host (for mirror-registry, the sqlite-storage volume: podman volume inspect sqlite-storage)"}
	case err != nil:
		return nil, &SQLiteError{Path: path, Err: err, Reason: err.Error()}
	case fi.IsDir():
		return nil, &SQLiteError{Path: path, Reason: "it is a directory — name the database file (quay.db or quay_sqlite.db inside it)"}
	}
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", sqliteBusyTimeout.Milliseconds()))
	q.Set("_txlock", "immediate")
	// mode=rw: never create the file (a typo must not leave an empty database).
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath()+"?mode=rw&"+q.Encode())
	if err != nil {
		return nil, &SQLiteError{Path: path, Err: err, Reason: err.Error()}
	}
	db.SetMaxOpenConns(1)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, &SQLiteError{Path: path, Err: err, Reason: err.Error() + " — check that it is a SQLite database and that you may write to it and its directory"}
	}
	return &sqlTarget{db: db, via: ViaSQLite, where: "sqlite:///" + path, now: time.Now}, nil
}

func (t *sqlTarget) Via() string    { return t.via }
func (t *sqlTarget) String() string { return t.where }
func (t *sqlTarget) Close() error   { return t.db.Close() }

// rebind turns "?" placeholders into $1, $2, … for PostgreSQL. The queries
// here have no "?" inside literals.
func (t *sqlTarget) rebind(q string) string {
	if !t.pg {
		return q
	}
	var b strings.Builder
	n := 0
	for _, c := range q {
		if c == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

type queryer interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
}

// hasTable reports whether a table exists (in the search path on PostgreSQL).
func (t *sqlTarget) hasTable(ctx context.Context, q queryer, name string) (bool, error) {
	var ok bool
	var err error
	if t.pg {
		err = q.QueryRowContext(ctx, `SELECT to_regclass($1) IS NOT NULL`, name).Scan(&ok)
	} else {
		var n int
		err = q.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?`, name).Scan(&n)
		ok = n > 0
	}
	return ok, err
}

// NotQuayError says the database has no user table: the wrong database.
type NotQuayError struct {
	Where string
	Err   error
}

func (e *NotQuayError) Error() string {
	return fmt.Sprintf("%s has no \"user\" table, so it is not a Quay database — check the database name in --db / DB_URI (for the Operator, POSTGRESQL_DATABASE of the database pod)", e.Where)
}

func (e *NotQuayError) Unwrap() error { return e.Err }

func isUndefinedTable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "42P01"
	}
	return err != nil && strings.Contains(err.Error(), "no such table")
}

const userColumns = `id, username, email, organization, robot, enabled, verified, invalid_login_attempts, last_invalid_login, password_hash IS NOT NULL`

func (t *sqlTarget) Lookup(ctx context.Context, username string) (UserInfo, error) {
	rows, err := t.db.QueryContext(ctx, t.rebind(`SELECT `+userColumns+` FROM "user" WHERE username = ? ORDER BY id`), username)
	if err != nil {
		if isUndefinedTable(err) {
			return UserInfo{}, &NotQuayError{Where: t.where, Err: err}
		}
		return UserInfo{}, fmt.Errorf("look up user %q in %s: %w", username, t.where, err)
	}
	var found []UserInfo
	for rows.Next() {
		var u UserInfo
		var last any
		if err := rows.Scan(&u.ID, &u.Username, &u.Email, &u.Organization, &u.Robot, &u.Enabled, &u.Verified,
			&u.InvalidLoginAttempts, &last, &u.HasPassword); err != nil {
			rows.Close()
			return UserInfo{}, fmt.Errorf("read user %q from %s: %w", username, t.where, err)
		}
		u.LastInvalidLogin = asTime(last)
		found = append(found, u)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return UserInfo{}, fmt.Errorf("read user %q from %s: %w", username, t.where, err)
	}
	switch len(found) {
	case 0:
		names, err := t.candidates(ctx)
		if err != nil {
			return UserInfo{}, err
		}
		return UserInfo{}, &NotFoundError{Username: username, Suggestions: Suggest(username, names, 3)}
	case 1:
	default:
		ids := make([]int64, len(found))
		for i, u := range found {
			ids[i] = u.ID
		}
		return UserInfo{}, &DuplicateError{Username: username, Rows: len(found), IDs: ids}
	}
	u := found[0]
	has, err := t.hasTable(ctx, t.db, "quayctl_superuser")
	if err != nil {
		return UserInfo{}, fmt.Errorf("look for quayctl_superuser in %s: %w", t.where, err)
	}
	if has {
		var n int
		if err := t.db.QueryRowContext(ctx, t.rebind(`SELECT count(*) FROM quayctl_superuser WHERE user_id = ?`), u.ID).Scan(&n); err != nil {
			return UserInfo{}, fmt.Errorf("read quayctl_superuser in %s: %w", t.where, err)
		}
		if n > 0 {
			u.MarkSuperuser("quayctl_superuser")
		}
	}
	return u, nil
}

// candidates lists the people's usernames, for suggestions.
func (t *sqlTarget) candidates(ctx context.Context) ([]string, error) {
	rows, err := t.db.QueryContext(ctx, t.rebind(`SELECT username FROM "user" WHERE organization = false AND robot = false ORDER BY id LIMIT ?`), maxCandidates)
	if err != nil {
		return nil, fmt.Errorf("list usernames in %s: %w", t.where, err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		names = append(names, n)
	}
	return names, rows.Err()
}

// ts is a naive UTC datetime argument: time.Time for pgx (which writes the
// wall clock), Quay's peewee text form for SQLite.
func (t *sqlTarget) ts(at time.Time) any {
	at = at.UTC()
	if t.pg {
		return at
	}
	return at.Format("2006-01-02 15:04:05.000000")
}

func (t *sqlTarget) Apply(ctx context.Context, username, hash string) (Change, error) {
	if err := CheckHash(hash); err != nil {
		return Change{}, fmt.Errorf("refusing to store the password hash: %w", err)
	}
	tx, err := t.db.BeginTx(ctx, nil)
	if err != nil {
		return Change{}, fmt.Errorf("begin a transaction on %s: %w", t.where, err)
	}
	defer tx.Rollback() // after Commit, a no-op

	rows, err := tx.QueryContext(ctx, t.rebind(`UPDATE "user" SET password_hash = ?, invalid_login_attempts = 0
		WHERE username = ? AND organization = false AND robot = false RETURNING id`), hash, username)
	if err != nil {
		if isUndefinedTable(err) {
			return Change{}, &NotQuayError{Where: t.where, Err: err}
		}
		return Change{}, fmt.Errorf("update the password of %q in %s: %w", username, t.where, err)
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return Change{}, err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return Change{}, fmt.Errorf("update the password of %q in %s: %w", username, t.where, err)
	}
	if len(ids) != 1 {
		_ = tx.Rollback()
		return Change{}, t.explainRowCount(ctx, username, ids)
	}
	ch := Change{UserID: ids[0], RowsUpdated: 1}

	if err := t.audit(ctx, tx, &ch, username); err != nil {
		return Change{}, err
	}
	if err := tx.Commit(); err != nil {
		return Change{}, fmt.Errorf("commit the password change in %s: %w", t.where, err)
	}
	return ch, nil
}

// explainRowCount turns an update that did not change exactly one row (and
// was rolled back) into the error a Lookup gives now.
func (t *sqlTarget) explainRowCount(ctx context.Context, username string, ids []int64) error {
	if len(ids) > 1 {
		return &DuplicateError{Username: username, Rows: len(ids), IDs: ids}
	}
	u, err := t.Lookup(ctx, username)
	if err != nil {
		return err
	}
	if err := Check(u); err != nil {
		return err
	}
	return fmt.Errorf("the update of %q in %s changed no row, and was rolled back", username, t.where)
}

// audit adds the logentry3 row, unless the table or the kind is absent.
func (t *sqlTarget) audit(ctx context.Context, tx *sql.Tx, ch *Change, username string) error {
	for _, table := range []string{"logentry3", "logentrykind"} {
		ok, err := t.hasTable(ctx, tx, table)
		if err != nil {
			return fmt.Errorf("look for %s in %s: %w", table, t.where, err)
		}
		if !ok {
			ch.AuditSkipped = "the database has no " + table + " table"
			return nil
		}
	}
	var kind int64
	err := tx.QueryRowContext(ctx, t.rebind(`SELECT id FROM logentrykind WHERE name = ?`), AuditKind).Scan(&kind)
	if errors.Is(err, sql.ErrNoRows) {
		ch.AuditSkipped = "logentrykind has no " + AuditKind
		return nil
	} else if err != nil {
		return fmt.Errorf("look up log kind %s in %s: %w", AuditKind, t.where, err)
	}
	if _, err := tx.ExecContext(ctx, t.rebind(`INSERT INTO logentry3 (kind_id, account_id, performer_id, repository_id, datetime, ip, metadata_json)
		VALUES (?, ?, ?, NULL, ?, NULL, ?)`), kind, ch.UserID, ch.UserID, t.ts(t.now()), auditMetadata(username)); err != nil {
		return fmt.Errorf("write the audit row to logentry3 in %s (nothing was changed): %w", t.where, err)
	}
	ch.Audited = true
	return nil
}

// asTime reads a datetime column as either driver returns it.
func asTime(v any) *time.Time {
	switch x := v.(type) {
	case time.Time:
		x = x.UTC()
		return &x
	case string:
		return parseTime(x)
	case []byte:
		return parseTime(string(x))
	}
	return nil
}

func parseTime(s string) *time.Time {
	for _, layout := range []string{"2006-01-02 15:04:05.999999999", "2006-01-02T15:04:05.999999999", time.RFC3339Nano, "2006-01-02 15:04:05.999999999-07:00"} {
		if t, err := time.Parse(layout, strings.TrimSpace(s)); err == nil {
			t = t.UTC()
			return &t
		}
	}
	return nil
}
