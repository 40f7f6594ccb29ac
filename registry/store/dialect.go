package store

import (
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// dialect holds the few things that differ between SQLite and PostgreSQL.
// Queries are written once, with "?" placeholders, standard SQL, "user"
// quoted, true/false literals (SQLite >= 3.23), ON CONFLICT and RETURNING
// (SQLite >= 3.35); rebind turns "?" into "$n" for PostgreSQL.
type dialect struct {
	pg      bool
	rebinds sync.Map // query -> rebound query (PostgreSQL only)
}

const (
	dialectSQLite   = "sqlite"
	dialectPostgres = "postgresql"
)

func (d *dialect) name() string {
	if d.pg {
		return dialectPostgres
	}
	return dialectSQLite
}

// sqliteTimeFormat is fixed width so that text comparison orders datetimes,
// and is the form Quay's SQLite (peewee) writes and reads.
const sqliteTimeFormat = "2006-01-02 15:04:05.000000"

// ts turns a time into a query argument for a naive UTC datetime column.
func (d *dialect) ts(t time.Time) any {
	t = t.UTC()
	if d.pg {
		// pgx writes a timestamp (without time zone) from the wall clock of
		// the value's location, hence UTC first.
		return t
	}
	return t.Format(sqliteTimeFormat)
}

// collateC is appended to string expressions that are ordered or compared
// for pagination: PostgreSQL's default collation may be a locale that does not
// sort byte-wise, and OCI listings want lexical (byte) order, which is what
// SQLite's default BINARY collation does.
func (d *dialect) collateC() string {
	if d.pg {
		return ` COLLATE "C"`
	}
	return ""
}

// rebind replaces "?" placeholders outside quotes with $1, $2, ... for
// PostgreSQL and leaves the query alone for SQLite.
func (d *dialect) rebind(q string) string {
	if !d.pg || !strings.Contains(q, "?") {
		return q
	}
	if v, ok := d.rebinds.Load(q); ok {
		return v.(string)
	}
	var b strings.Builder
	b.Grow(len(q) + 16)
	n := 0
	var quote byte
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '?':
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(c)
	}
	out := b.String()
	d.rebinds.Store(q, out)
	return out
}

// advisoryKey is how Quay derives PostgreSQL advisory lock keys: the first 8
// bytes of sha256(name), read as a signed big-endian int64.
func advisoryKey(name string) int64 {
	sum := sha256.Sum256([]byte(name))
	return int64(binary.BigEndian.Uint64(sum[:8]))
}

// isUniqueViolation reports whether err is a UNIQUE/PRIMARY KEY constraint
// failure on either database.
func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "23505"
	}
	var sqErr *sqlite.Error
	if errors.As(err, &sqErr) {
		switch sqErr.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return true
		}
		return sqErr.Code()&0xff == sqlite3.SQLITE_CONSTRAINT &&
			strings.Contains(sqErr.Error(), "UNIQUE constraint failed")
	}
	return false
}

// nullTime scans a datetime column from either driver: pgx gives time.Time;
// modernc gives time.Time for DATETIME columns it can parse, else text.
type nullTime struct {
	Time  time.Time
	Valid bool
}

var timeLayouts = []string{
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02T15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999 -0700 MST",
	"2006-01-02 15:04",
	"2006-01-02",
}

func (n *nullTime) Scan(src any) error {
	n.Valid = false
	switch v := src.(type) {
	case nil:
		return nil
	case time.Time:
		n.Time, n.Valid = v.UTC(), true
		return nil
	case []byte:
		return n.parse(string(v))
	case string:
		return n.parse(v)
	case int64: // unix seconds, if something wrote an integer
		n.Time, n.Valid = time.Unix(v, 0).UTC(), true
		return nil
	}
	return fmt.Errorf("cannot scan %T into a datetime", src)
}

func (n *nullTime) parse(s string) error {
	s = strings.TrimSpace(s)
	for _, layout := range timeLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			n.Time, n.Valid = t.UTC(), true
			return nil
		}
	}
	return fmt.Errorf("cannot parse datetime %q", s)
}

func (n nullTime) ptr() *time.Time {
	if !n.Valid {
		return nil
	}
	t := n.Time
	return &t
}

func nullString(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }

func nullInt(p *int64) sql.NullInt64 {
	if p == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: *p, Valid: true}
}
