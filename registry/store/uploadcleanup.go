package store

import (
	"context"
	"fmt"
	"time"
)

// UploadCleanupStore is the database side of the upload cleanup worker
// (Quay's blobuploadcleanupworker): upload sessions nobody finished.
type UploadCleanupStore interface {
	// StaleUploads lists up to limit upload sessions created before
	// cutoff, oldest first, with the location holding their bytes.
	StaleUploads(ctx context.Context, cutoff time.Time, limit int) ([]GCUpload, error)
	// DeleteStaleUpload removes the session if it was created before
	// cutoff; it reports whether a row went (false: finished or removed
	// meanwhile by a client or another replica).
	DeleteStaleUpload(ctx context.Context, uuid string, cutoff time.Time) (bool, error)
}

var _ UploadCleanupStore = (*DB)(nil)

// StaleUploads lists abandoned upload sessions; see UploadCleanupStore.
func (db *DB) StaleUploads(ctx context.Context, cutoff time.Time, limit int) ([]GCUpload, error) {
	if limit <= 0 {
		limit = 1000
	}
	ups, err := db.uploadsWhere(ctx, db.r, `b.created <= ? ORDER BY b.created, b.id LIMIT ?`, db.d.ts(cutoff), limit)
	if err != nil {
		return nil, fmt.Errorf("stale upload sessions: %w", err)
	}
	return ups, nil
}

// DeleteStaleUpload removes one abandoned session; see UploadCleanupStore.
func (db *DB) DeleteStaleUpload(ctx context.Context, uuid string, cutoff time.Time) (bool, error) {
	res, err := db.exec(ctx, db.w, `DELETE FROM blobupload WHERE uuid = ? AND created <= ?`, uuid, db.d.ts(cutoff))
	if err != nil {
		return false, fmt.Errorf("delete stale upload %s: %w", uuid, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("delete stale upload %s: %w", uuid, err)
	}
	return n == 1, nil
}
