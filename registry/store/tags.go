package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// The tag time machine: per-tag expiration, moves and restores. Each takes
// the repository's retarget_tag lock, as pushes and garbage collection do.

// aliveVisibleTag finds the alive, non-hidden row of a tag name.
func (db *DB) aliveVisibleTag(ctx context.Context, tx *sql.Tx, repositoryID int64, name string, nowMs int64) (*Tag, error) {
	t, err := scanTag(db.queryRow(ctx, tx, aliveTagQuery+` AND t.hidden = false`+aliveTagOrder, repositoryID, name, nowMs))
	if err != nil {
		return nil, notFound(err, fmt.Sprintf("alive tag %q", name))
	}
	return t, nil
}

// SetTagExpiration sets or clears the end of an alive tag, as Quay's
// change_repository_tag_expiration.
func (db *DB) SetTagExpiration(ctx context.Context, repositoryID int64, name string, expiration *time.Time) (*int64, error) {
	var old *int64
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		if err := db.advisoryLock(ctx, tx, retargetLockName(repositoryID)); err != nil {
			return err
		}
		nowMs := db.nowMs()
		t, err := db.aliveVisibleTag(ctx, tx, repositoryID, name, nowMs)
		if err != nil {
			return err
		}
		old = t.LifetimeEndMs
		var end sql.NullInt64
		if expiration != nil {
			if expiration.UnixMilli() <= nowMs {
				return InvalidInputError{Field: "expiration", Value: expiration.UTC().Format(time.RFC3339), Reason: "must be in the future"}
			}
			end = sql.NullInt64{Int64: expiration.UnixMilli(), Valid: true}
		}
		var res sql.Result
		if t.LifetimeEndMs == nil {
			res, err = db.exec(ctx, tx, `UPDATE tag SET lifetime_end_ms = ? WHERE id = ? AND lifetime_end_ms IS NULL`, end, t.ID)
		} else {
			res, err = db.exec(ctx, tx, `UPDATE tag SET lifetime_end_ms = ? WHERE id = ? AND lifetime_end_ms = ?`, end, t.ID, *t.LifetimeEndMs)
		}
		if err != nil {
			if isUniqueViolation(err) {
				return InvalidInputError{Field: "expiration", Value: fmt.Sprint(end.Int64), Reason: "another row of the tag ends at that moment; choose another time"}
			}
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return fmt.Errorf("tag %q changed concurrently, try again", name)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("set expiration of tag %q in repository id %d: %w", name, repositoryID, err)
	}
	return old, nil
}

// RetargetTag creates or moves a tag to a manifest of the repository.
func (db *DB) RetargetTag(ctx context.Context, repositoryID int64, name, digest string) (*Tag, error) {
	var old *Tag
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		if err := db.advisoryLock(ctx, tx, retargetLockName(repositoryID)); err != nil {
			return err
		}
		m, err := db.manifestByDigest(ctx, tx, repositoryID, digest)
		if err != nil {
			return notFound(err, "manifest "+digest)
		}
		nowMs := db.nowMs()
		if t, err := db.aliveVisibleTag(ctx, tx, repositoryID, name, nowMs); err == nil {
			old = t
		} else if !errors.Is(err, ErrNotFound) {
			return err
		}
		return db.retargetTag(ctx, tx, repositoryID, name, m.ID, nowMs)
	})
	if err != nil {
		return nil, fmt.Errorf("point tag %q at %s in repository id %d: %w", name, digest, repositoryID, err)
	}
	return old, nil
}

// RestoreTag brings a tag back to a manifest the time machine still holds.
func (db *DB) RestoreTag(ctx context.Context, repositoryID int64, name, digest string) error {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		if err := db.advisoryLock(ctx, tx, retargetLockName(repositoryID)); err != nil {
			return err
		}
		m, err := db.manifestByDigest(ctx, tx, repositoryID, digest)
		if err != nil {
			return notFound(err, "manifest "+digest)
		}
		nowMs := db.nowMs()
		var window int64
		if err := db.queryRow(ctx, tx, `SELECT u.removed_tag_expiration_s FROM repository r
			JOIN "user" u ON u.id = r.namespace_user_id WHERE r.id = ?`, repositoryID).Scan(&window); err != nil {
			return notFound(err, "repository")
		}
		var recoverable bool
		if err := db.queryRow(ctx, tx, `SELECT EXISTS (SELECT 1 FROM tag WHERE repository_id = ? AND manifest_id = ?
			AND hidden = false AND (lifetime_end_ms IS NULL OR lifetime_end_ms > ?))`,
			repositoryID, m.ID, nowMs-window*1000).Scan(&recoverable); err != nil {
			return err
		}
		if !recoverable {
			return fmt.Errorf("manifest %s is outside the time machine window of %ds: %w", digest, window, ErrNotFound)
		}
		old, err := db.aliveVisibleTag(ctx, tx, repositoryID, name, nowMs)
		switch {
		case errors.Is(err, ErrNotFound):
		case err != nil:
			return err
		default:
			if err := db.endTag(ctx, tx, old, nowMs); err != nil {
				return err
			}
		}
		if _, err := db.exec(ctx, tx, `INSERT INTO tag (name, repository_id, manifest_id, lifetime_start_ms, lifetime_end_ms,
			hidden, reversion, tag_kind_id, linked_tag_id, immutable)
			VALUES (?, ?, ?, ?, NULL, false, true, (SELECT id FROM tagkind WHERE name = 'tag'), NULL, false)`,
			name, repositoryID, m.ID, nowMs); err != nil {
			return fmt.Errorf("insert tag: %w", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("restore tag %q to %s in repository id %d: %w", name, digest, repositoryID, err)
	}
	return nil
}
