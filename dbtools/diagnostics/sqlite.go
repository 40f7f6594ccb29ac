package diagnostics

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"reflect"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	_ "modernc.org/sqlite" // registers driver "sqlite"
)

// The functions that read only Quay's tables (Users, Accounts, Mirrors,
// Placement, Replication, ReplicationQueue) also run on the SQLite database
// quayctl serve embeds. The others read PostgreSQL's statistics
// (pg_stat_*, pg_settings) and have no SQLite equivalent.

// SQLite is a Querier over a Quay SQLite database file, opened read-only:
// the registry may be writing it (it holds the only writer), so this
// never takes a write lock and waits for the writer's commits rather than
// failing with "database is locked".
type SQLite struct {
	db *sql.DB
}

// sqliteBusyTimeout is how long a read waits for the writer.
const sqliteBusyTimeout = 10 * time.Second

// sqliteTimeFormat is how Quay (peewee) and quayctl serve store datetimes
// in SQLite: fixed width, so that text comparison orders them.
const sqliteTimeFormat = "2006-01-02 15:04:05.000000"

// OpenSQLite opens the SQLite database file at path read-only. The file
// must exist: SQLite would otherwise create an empty one.
func OpenSQLite(ctx context.Context, path string) (*SQLite, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("open SQLite database %s: %w", path, err)
	}
	if fi.IsDir() {
		return nil, fmt.Errorf("open SQLite database %s: it is a directory", path)
	}
	q := url.Values{}
	q.Set("mode", "ro")
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", sqliteBusyTimeout.Milliseconds()))
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath()+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open SQLite database %s: %w", path, err)
	}
	db.SetMaxOpenConns(1) // one reader is enough, and rows are read one query at a time
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master`).Scan(&n); err != nil {
		db.Close()
		return nil, fmt.Errorf("open SQLite database %s: %w — check that the file is a SQLite database and is readable", path, err)
	}
	return &SQLite{db: db}, nil
}

// Close closes the database.
func (s *SQLite) Close() error { return s.db.Close() }

func (s *SQLite) sqliteDialect() {}

// Query runs sql ($1, $2 … placeholders, which SQLite accepts) with the
// arguments converted to what Quay stores in SQLite.
func (s *SQLite) Query(ctx context.Context, query string, args ...any) (pgx.Rows, error) {
	rows, err := s.db.QueryContext(ctx, query, sqliteArgs(args)...)
	if err != nil {
		return nil, err
	}
	cols, err := rows.Columns()
	if err != nil {
		rows.Close()
		return nil, err
	}
	return &sqliteRows{rows: rows, cols: cols}, nil
}

// QueryRow is Query's first row; its Scan returns pgx.ErrNoRows when
// there is none, as pgx does.
func (s *SQLite) QueryRow(ctx context.Context, query string, args ...any) pgx.Row {
	rows, err := s.Query(ctx, query, args...)
	return &sqliteRow{rows: rows, err: err}
}

// isSQLite says whether q reads a SQLite database.
func isSQLite(q Querier) bool {
	_, ok := q.(interface{ sqliteDialect() })
	return ok
}

// sqliteArgs turns times into Quay's stored text and string lists into
// JSON arrays (which the SQLite queries expand with json_each).
func sqliteArgs(args []any) []any {
	out := make([]any, len(args))
	for i, a := range args {
		switch v := a.(type) {
		case time.Time:
			out[i] = v.UTC().Format(sqliteTimeFormat)
		case []string:
			if v == nil {
				v = []string{}
			}
			b, _ := json.Marshal(v)
			out[i] = string(b)
		default:
			out[i] = a
		}
	}
	return out
}

type sqliteRows struct {
	rows *sql.Rows
	cols []string
	err  error
}

func (r *sqliteRows) Close() { r.rows.Close() }

func (r *sqliteRows) Err() error {
	if r.err != nil {
		return r.err
	}
	return r.rows.Err()
}

func (r *sqliteRows) CommandTag() pgconn.CommandTag { return pgconn.CommandTag{} }

func (r *sqliteRows) FieldDescriptions() []pgconn.FieldDescription {
	out := make([]pgconn.FieldDescription, len(r.cols))
	for i, c := range r.cols {
		out[i].Name = c
	}
	return out
}

func (r *sqliteRows) Next() bool {
	if r.err != nil {
		return false
	}
	return r.rows.Next()
}

func (r *sqliteRows) Values() ([]any, error) {
	vals := make([]any, len(r.cols))
	ptrs := make([]any, len(vals))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := r.rows.Scan(ptrs...); err != nil {
		return nil, err
	}
	return vals, nil
}

func (r *sqliteRows) RawValues() [][]byte { return nil }

func (r *sqliteRows) Conn() *pgx.Conn { return nil }

func (r *sqliteRows) TypeMap() *pgtype.Map { return nil }

// Scan reads the row into dest, converting what SQLite stores to the
// types the PostgreSQL driver gives: integers to bool, datetime text to
// time.Time, JSON arrays (json_group_array) to []string or []int32.
func (r *sqliteRows) Scan(dest ...any) error {
	if len(dest) != len(r.cols) {
		return fmt.Errorf("scan: %d destinations for %d columns", len(dest), len(r.cols))
	}
	vals, err := r.Values()
	if err != nil {
		return err
	}
	for i, d := range dest {
		if err := assign(d, vals[i]); err != nil {
			return fmt.Errorf("scan column %s: %w", r.cols[i], err)
		}
	}
	return nil
}

type sqliteRow struct {
	rows pgx.Rows
	err  error
}

func (r *sqliteRow) Scan(dest ...any) error {
	if r.err != nil {
		return r.err
	}
	defer r.rows.Close()
	if !r.rows.Next() {
		if err := r.rows.Err(); err != nil {
			return err
		}
		return pgx.ErrNoRows
	}
	if err := r.rows.Scan(dest...); err != nil {
		return err
	}
	r.rows.Close()
	return r.rows.Err()
}

var timeType = reflect.TypeOf(time.Time{})

// assign stores src (a value the SQLite driver returned) in *dest.
func assign(dest, src any) error {
	if a, ok := dest.(*any); ok {
		*a = src
		return nil
	}
	dv := reflect.ValueOf(dest)
	if dv.Kind() != reflect.Pointer || dv.IsNil() {
		return fmt.Errorf("destination %T is not a pointer", dest)
	}
	dv = dv.Elem()
	if dv.Kind() == reflect.Pointer { // **T: NULL is nil
		if src == nil {
			dv.Set(reflect.Zero(dv.Type()))
			return nil
		}
		p := reflect.New(dv.Type().Elem())
		if err := assignValue(p.Elem(), src); err != nil {
			return err
		}
		dv.Set(p)
		return nil
	}
	if src == nil {
		return fmt.Errorf("cannot store NULL in %s", dv.Type())
	}
	return assignValue(dv, src)
}

func assignValue(dv reflect.Value, src any) error {
	if b, ok := src.([]byte); ok {
		src = string(b)
	}
	if dv.Type() == timeType {
		t, err := sqliteTime(src)
		if err != nil {
			return err
		}
		dv.Set(reflect.ValueOf(t))
		return nil
	}
	switch dv.Kind() {
	case reflect.String:
		switch v := src.(type) {
		case string:
			dv.SetString(v)
		case int64, float64:
			dv.SetString(fmt.Sprint(v))
		default:
			return fmt.Errorf("cannot store %T in %s", src, dv.Type())
		}
	case reflect.Bool:
		switch v := src.(type) {
		case int64:
			dv.SetBool(v != 0)
		case bool:
			dv.SetBool(v)
		case string:
			dv.SetBool(v == "1" || strings.EqualFold(v, "true"))
		default:
			return fmt.Errorf("cannot store %T in bool", src)
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		switch v := src.(type) {
		case int64:
			dv.SetInt(v)
		case float64:
			dv.SetInt(int64(v))
		case bool:
			dv.SetInt(map[bool]int64{true: 1}[v])
		default:
			return fmt.Errorf("cannot store %T in %s", src, dv.Type())
		}
	case reflect.Float32, reflect.Float64:
		switch v := src.(type) {
		case int64:
			dv.SetFloat(float64(v))
		case float64:
			dv.SetFloat(v)
		default:
			return fmt.Errorf("cannot store %T in %s", src, dv.Type())
		}
	case reflect.Slice:
		s, ok := src.(string)
		if !ok {
			return fmt.Errorf("cannot store %T in %s", src, dv.Type())
		}
		p := reflect.New(dv.Type())
		if err := json.Unmarshal([]byte(s), p.Interface()); err != nil {
			return fmt.Errorf("cannot read %q as %s: %w", s, dv.Type(), err)
		}
		if p.Elem().IsNil() {
			p.Elem().Set(reflect.MakeSlice(dv.Type(), 0, 0))
		}
		dv.Set(p.Elem())
	default:
		return fmt.Errorf("cannot store %T in %s", src, dv.Type())
	}
	return nil
}

// sqliteTimeLayouts are the datetime texts found in Quay's SQLite
// databases (peewee's, quayctl serve's, and SQLite's own CURRENT_TIMESTAMP).
var sqliteTimeLayouts = []string{
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999Z07:00",
	time.RFC3339Nano,
	"2006-01-02",
}

// sqliteTime reads a stored datetime; those without a zone are UTC, as
// Quay writes them.
func sqliteTime(src any) (time.Time, error) {
	switch v := src.(type) {
	case time.Time:
		return v.UTC(), nil
	case string:
		for _, l := range sqliteTimeLayouts {
			if t, err := time.Parse(l, v); err == nil {
				return t.UTC(), nil
			}
		}
		return time.Time{}, fmt.Errorf("cannot read %q as a datetime", v)
	case int64: // Unix seconds
		return time.Unix(v, 0).UTC(), nil
	}
	return time.Time{}, errors.New("cannot read a datetime from " + fmt.Sprintf("%T", src))
}

// textSet is a subquery yielding the elements of the text-list argument
// $n (a []string).
func textSet(q Querier, n int) string {
	if isSQLite(q) {
		return fmt.Sprintf("SELECT value FROM json_each($%d)", n)
	}
	return fmt.Sprintf("SELECT unnest($%d::text[])", n)
}

// sortedList aggregates expr, sorted, into a list Scan reads as []string;
// emptyList is that list's empty value, for COALESCE.
func sortedList(q Querier, expr string) string {
	if isSQLite(q) {
		return "json_group_array(" + expr + " ORDER BY " + expr + ")"
	}
	return "array_agg(" + expr + " ORDER BY " + expr + ")"
}

func emptyList(q Querier) string {
	if isSQLite(q) {
		return "'[]'"
	}
	return "'{}'"
}
