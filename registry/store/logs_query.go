package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
)

// Logs reads logentry3 rows matching q, newest first.
func (db *DB) Logs(ctx context.Context, q LogQuery) ([]LogRecord, error) {
	var where []string
	var args []any
	if q.AccountID != 0 {
		where, args = append(where, "l.account_id = ?"), append(args, q.AccountID)
	}
	if q.RepositoryID != 0 {
		where, args = append(where, "l.repository_id = ?"), append(args, q.RepositoryID)
	}
	if q.PerformerID != 0 {
		where, args = append(where, "l.performer_id = ?"), append(args, q.PerformerID)
	}
	if q.Kind != "" {
		where, args = append(where, "k.name = ?"), append(args, q.Kind)
	}
	if !q.Since.IsZero() {
		where, args = append(where, "l.datetime >= ?"), append(args, db.d.ts(q.Since))
	}
	if !q.Until.IsZero() {
		where, args = append(where, "l.datetime < ?"), append(args, db.d.ts(q.Until))
	}
	if c := q.Before; c != nil {
		// Keyset pagination on the ORDER BY below: stable while new rows
		// arrive, and as cheap for the last page as for the first.
		where = append(where, "(l.datetime < ? OR (l.datetime = ? AND l.id < ?))")
		args = append(args, db.d.ts(c.Time), db.d.ts(c.Time), c.ID)
	}
	limit := q.Limit
	if limit <= 0 {
		limit = 100
	}
	query := `SELECT l.id, k.name, l.account_id, l.performer_id, l.repository_id, l.ip, l.metadata_json, l.datetime
		FROM logentry3 l JOIN logentrykind k ON k.id = l.kind_id`
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += fmt.Sprintf(" ORDER BY l.datetime DESC, l.id DESC LIMIT %d", limit)
	rows, err := db.query(ctx, db.r, query, args...)
	if err != nil {
		return nil, fmt.Errorf("read audit log: %w", err)
	}
	defer rows.Close()
	var out []LogRecord
	for rows.Next() {
		var (
			r          LogRecord
			perf, repo sql.NullInt64
			ip         sql.NullString
			meta       string
			at         nullTime
		)
		if err := rows.Scan(&r.ID, &r.Kind, &r.AccountID, &perf, &repo, &ip, &meta, &at); err != nil {
			return nil, fmt.Errorf("read audit log: %w", err)
		}
		if perf.Valid {
			r.PerformerID = &perf.Int64
		}
		if repo.Valid {
			r.RepositoryID = &repo.Int64
		}
		r.IP, r.Time = ip.String, at.Time
		if err := json.Unmarshal([]byte(meta), &r.Metadata); err != nil {
			r.Metadata = map[string]any{"_raw": meta}
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
