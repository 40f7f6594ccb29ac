// Package diagnostics reads a Quay PostgreSQL database the way an
// administrator troubleshooting it would: the server's connections and
// settings, live sessions and lock waits, sizes and bloat, whether the
// schema is Quay's, the accounts that can (or cannot) log in, repository
// mirrors and geo-replication placements.
//
// Each function returns a typed struct with snake_case JSON tags. Those
// structs are the fact files `database/<name>.json` of `quayctl diagnose`
// and of support bundles, so their JSON is a documented, stable schema
// (docs/db.md) and they never hold a secret: password hashes, tokens and
// mirror credentials are reduced to booleans, and query texts are passed
// through the redaction (internal/redact plus the SQL rules of CleanQuery)
// and cut to MaxQueryLen characters.
//
// Times are time.Time in UTC (RFC 3339 in JSON); durations are float
// seconds. Functions take a Querier, so they run on a *pgx.Conn, a
// *pgxpool.Pool or inside a pgx.Tx (a read-only transaction, for instance).
package diagnostics

import (
	"context"
	"errors"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/quayctl/quayctl/internal/redact"
)

// Querier is satisfied by *pgx.Conn, *pgxpool.Pool and pgx.Tx.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// MaxQueryLen bounds every query text in the results, in characters.
const MaxQueryLen = 2000

// sqlRedactor adds to the shared rules the secrets that appear in SQL text
// rather than as key=value: Quay's ORM (psycopg2) inlines values into the
// statements pg_stat_activity shows, so a bcrypt hash or an encrypted
// field can appear as a bare literal, and role DDL writes PASSWORD 'x'.
var sqlRedactor = func() *redact.Redactor {
	r, err := redact.New(redact.WithTextRules(
		`(?i)\bPASSWORD\s+'((?:[^']|'')*)'?`,    // CREATE/ALTER ROLE … PASSWORD 'x'
		`\$2[abxy]?\$\d\d\$[./A-Za-z0-9]{1,53}`, // bcrypt hashes (user passwords, OAuth token codes)
		`v0\$\$[A-Za-z0-9+/=_-]+`,               // Quay's encrypted fields (robot tokens, mirror credentials)
	))
	if err != nil {
		panic(err) // the patterns are constants
	}
	return r
}()

// CleanQuery redacts a query text and cuts it to MaxQueryLen characters
// (after redacting, so that a cut never splits a secret into a part the
// rules no longer recognise). truncated says whether it was cut.
func CleanQuery(q string) (clean string, truncated bool) {
	q, _ = sqlRedactor.String(q)
	if utf8.RuneCountInString(q) <= MaxQueryLen {
		return q, false
	}
	n := 0
	for i := range q {
		if n == MaxQueryLen {
			return q[:i], true
		}
		n++
	}
	return q, false
}

// redactText is for the other free text that comes from the database (an
// external reference, a location name): the shared rules only.
func redactText(s string) string {
	out, _ := redact.String(s)
	return out
}

// utc returns t in UTC, or nil.
func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// orEmpty returns *s, or "" for NULL.
func orEmpty(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// orZero returns *f, or 0 for NULL.
func orZero(f *float64) float64 {
	if f == nil {
		return 0
	}
	return *f
}

// ints converts PostgreSQL's int4[] (scanned as []int32) to []int; never
// nil, so that JSON shows [] rather than null.
func ints(in []int32) []int {
	out := make([]int, len(in))
	for i, v := range in {
		out[i] = int(v)
	}
	return out
}

func isNoRows(err error) bool { return errors.Is(err, pgx.ErrNoRows) }
