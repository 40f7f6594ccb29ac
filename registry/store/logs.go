package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
)

// Log writes an audit row to logentry3, as Quay's table logs model does.
func (db *DB) Log(ctx context.Context, e LogEntry) error {
	kindID, err := db.logKindID(ctx, e.Kind)
	if err != nil {
		return err
	}
	account := e.AccountID
	if account == 0 {
		// Quay falls back to SERVICE_LOG_ACCOUNT_ID, else the lowest user id.
		var min sql.NullInt64
		if err := db.r.QueryRowContext(ctx, `SELECT MIN(id) FROM "user"`).Scan(&min); err != nil {
			return fmt.Errorf("log %s: find fallback account: %w", e.Kind, err)
		}
		if !min.Valid {
			return fmt.Errorf("log %s: no account given and no user exists", e.Kind)
		}
		account = min.Int64
	}
	meta := []byte("{}")
	if len(e.Metadata) > 0 {
		if meta, err = json.Marshal(e.Metadata); err != nil {
			return fmt.Errorf("log %s: metadata: %w", e.Kind, err)
		}
	}
	at := e.Time
	if at.IsZero() {
		at = db.now()
	}
	if _, err := db.exec(ctx, db.w, `INSERT INTO logentry3 (kind_id, account_id, performer_id, repository_id, datetime, ip, metadata_json)
		VALUES (?, ?, ?, ?, ?, ?, ?)`,
		kindID, account, nullInt(e.PerformerID), nullInt(e.RepositoryID), db.d.ts(at), nullString(e.IP), string(meta)); err != nil {
		return fmt.Errorf("log %s: %w", e.Kind, err)
	}
	return nil
}

// logKindID looks a logentrykind up by name; the table is small and fixed,
// so it is read once and cached (and re-read once on a miss).
func (db *DB) logKindID(ctx context.Context, name string) (int64, error) {
	db.kindsMu.RLock()
	id, ok := db.logKinds[name]
	db.kindsMu.RUnlock()
	if ok {
		return id, nil
	}
	kinds := map[string]int64{}
	rows, err := db.r.QueryContext(ctx, `SELECT id, name FROM logentrykind`)
	if err != nil {
		return 0, fmt.Errorf("read logentrykind: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id int64
			n  string
		)
		if err := rows.Scan(&id, &n); err != nil {
			return 0, err
		}
		kinds[n] = id
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("read logentrykind: %w", err)
	}
	db.kindsMu.Lock()
	db.logKinds = kinds
	db.kindsMu.Unlock()
	if id, ok := kinds[name]; ok {
		return id, nil
	}
	return 0, fmt.Errorf("log entry kind %q: %w", name, ErrNotFound)
}

// Service keys --------------------------------------------------------------

// PutServiceKey stores a key approved automatically, as Quay does for the
// instance's own key; a key with the same kid is replaced.
func (db *DB) PutServiceKey(ctx context.Context, k ServiceKey) error {
	created := k.CreatedDate
	if created.IsZero() {
		created = db.now()
	}
	var expires any
	if k.ExpirationDate != nil {
		expires = db.d.ts(*k.ExpirationDate)
	}
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		var approvalID int64
		if err := db.queryRow(ctx, tx, `INSERT INTO servicekeyapproval (approver_id, approval_type, approved_date, notes)
			VALUES (NULL, 'Automatic', ?, '') RETURNING id`, db.d.ts(db.now())).Scan(&approvalID); err != nil {
			return fmt.Errorf("insert servicekeyapproval: %w", err)
		}
		var oldApproval sql.NullInt64
		err := db.queryRow(ctx, tx, `SELECT approval_id FROM servicekey WHERE kid = ?`, k.Kid).Scan(&oldApproval)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			_, err = db.exec(ctx, tx, `INSERT INTO servicekey (name, kid, service, jwk, metadata, created_date, expiration_date,
				rotation_duration, approval_id) VALUES (?, ?, ?, ?, '{}', ?, ?, NULL, ?)`,
				k.Name, k.Kid, k.Service, string(k.JWK), db.d.ts(created), expires, approvalID)
		case err != nil:
			return err
		default:
			_, err = db.exec(ctx, tx, `UPDATE servicekey SET name = ?, service = ?, jwk = ?, created_date = ?,
				expiration_date = ?, approval_id = ? WHERE kid = ?`,
				k.Name, k.Service, string(k.JWK), db.d.ts(created), expires, approvalID, k.Kid)
			if err == nil && oldApproval.Valid {
				_, err = db.exec(ctx, tx, `DELETE FROM servicekeyapproval WHERE id = ?
					AND NOT EXISTS (SELECT 1 FROM servicekey WHERE approval_id = ?)`, oldApproval.Int64, oldApproval.Int64)
			}
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("store service key %s: %w", k.Kid, err)
	}
	return nil
}

// ServiceKey returns an approved, unexpired key.
func (db *DB) ServiceKey(ctx context.Context, kid string) (*ServiceKey, error) {
	var (
		k                ServiceKey
		jwk              string
		created, expires nullTime
	)
	err := db.queryRow(ctx, db.r, `SELECT k.kid, k.service, k.name, k.jwk, k.created_date, k.expiration_date
		FROM servicekey k JOIN servicekeyapproval a ON a.id = k.approval_id
		WHERE k.kid = ? AND (k.expiration_date IS NULL OR k.expiration_date > ?)`,
		kid, db.d.ts(db.now())).Scan(&k.Kid, &k.Service, &k.Name, &jwk, &created, &expires)
	if err != nil {
		return nil, notFound(err, "service key "+kid)
	}
	k.JWK, k.CreatedDate, k.ExpirationDate = []byte(jwk), created.Time, expires.ptr()
	return &k, nil
}
