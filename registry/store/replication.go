package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
)

// ReplicationQueue is the queueitem queue_name prefix of geo-replication,
// Quay's image_replication_queue: one item per blob, named
// "imagestoragereplication/<imagestorage uuid>/".
const ReplicationQueue = "imagestoragereplication"

// ReplicationItem is a claimed replication queue item.
type ReplicationItem struct {
	ID       int64
	StateID  string
	BlobUUID string // imagestorage.uuid
	// NamespaceID is the pushing namespace (Quay's namespace_user_id); 0
	// when unknown (backfilled items).
	NamespaceID int64
	// Attempts counts earlier failed tries, for the retry backoff.
	Attempts int
	QueuedAt time.Time // zero when unknown (an item Quay queued)
}

// replicationBody is the queue item's JSON body: Quay's two fields plus
// our attempt counter (Quay ignores unknown fields).
type replicationBody struct {
	NamespaceUserID *int64 `json:"namespace_user_id"`
	StorageID       string `json:"storage_id"`
	Attempts        int    `json:"quayctl_attempts,omitempty"`
	// QueuedAt (RFC 3339) survives retries, unlike available_after, so
	// the backlog's age is the wait since the push.
	QueuedAt string `json:"quayctl_queued_at,omitempty"`
}

// ReplicationStore is the geo-replication part of the store. DB implements it.
type ReplicationStore interface {
	// EnqueueReplication queues the blob, pushed to repositoryID (0:
	// unknown), for replication unless an item for it is already queued
	// (one item per blob, so two workers never copy the same blob at once).
	EnqueueReplication(ctx context.Context, blobID, repositoryID int64) error
	// ClaimReplication takes the oldest available item for lease (another
	// worker may take it over once the lease expires); nil when none.
	ClaimReplication(ctx context.Context, lease time.Duration) (*ReplicationItem, error)
	// ExtendReplication renews the lease of a claimed item, for a copy
	// that takes longer than the lease (ErrNotFound when the claim was
	// lost to another worker).
	ExtendReplication(ctx context.Context, it *ReplicationItem, lease time.Duration) error
	// CompleteReplication removes a claimed item (ErrNotFound when the
	// claim was lost to another worker).
	CompleteReplication(ctx context.Context, it *ReplicationItem) error
	// RetryReplication gives a claimed item back, available again after
	// delay, with its attempt counter raised; it is never dropped.
	RetryReplication(ctx context.Context, it *ReplicationItem, delay time.Duration) error
	// EnqueueMissingReplications queues up to limit blobs that lack a
	// placement in one of locations and have no queued item (blobs pushed
	// before replication was on, or whose item was lost); it returns how
	// many it queued.
	EnqueueMissingReplications(ctx context.Context, locations []string, limit int) (int, error)
	// BlobByUUID finds an imagestorage row by uuid (ErrNotFound).
	BlobByUUID(ctx context.Context, uuid string) (*Blob, error)
	// AddBlobPlacement records that location holds the blob (idempotent);
	// ErrNotFound when the blob row is gone (collected meanwhile).
	AddBlobPlacement(ctx context.Context, blobID int64, location string) error
	// ReplicationBacklog counts queued items and the creation time of the
	// oldest (zero when none).
	ReplicationBacklog(ctx context.Context) (n int64, oldest time.Time, err error)
}

func replicationQueueName(blobUUID string) string {
	return ReplicationQueue + "/" + blobUUID + "/"
}

// EnqueueReplication implements ReplicationStore.
func (db *DB) EnqueueReplication(ctx context.Context, blobID, repositoryID int64) error {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		var blobUUID string
		if err := db.queryRow(ctx, tx, `SELECT uuid FROM imagestorage WHERE id = ?`, blobID).Scan(&blobUUID); err != nil {
			return notFound(err, fmt.Sprintf("blob id %d", blobID))
		}
		var namespaceID int64
		if repositoryID != 0 {
			// Quay's body names the namespace (its regions join the targets).
			if err := db.queryRow(ctx, tx, `SELECT namespace_user_id FROM repository WHERE id = ?`, repositoryID).Scan(&namespaceID); err != nil && !errors.Is(err, sql.ErrNoRows) {
				return err
			}
		}
		_, err := db.enqueueReplication(ctx, tx, blobUUID, namespaceID)
		return err
	})
	if err != nil {
		return fmt.Errorf("queue blob id %d for replication: %w", blobID, err)
	}
	return nil
}

// enqueueReplication inserts the item unless one exists; the advisory lock
// keeps two instances pushing the same blob from both inserting.
func (db *DB) enqueueReplication(ctx context.Context, tx *sql.Tx, blobUUID string, namespaceID int64) (bool, error) {
	name := replicationQueueName(blobUUID)
	if err := db.advisoryLock(ctx, tx, "queueitem:"+name); err != nil {
		return false, err
	}
	var one int
	err := db.queryRow(ctx, tx, `SELECT 1 FROM queueitem WHERE queue_name = ? LIMIT 1`, name).Scan(&one)
	if err == nil {
		return false, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return false, err
	}
	body := replicationBody{StorageID: blobUUID, QueuedAt: db.now().UTC().Format(time.RFC3339Nano)}
	if namespaceID != 0 {
		body.NamespaceUserID = &namespaceID
	}
	b, _ := json.Marshal(body)
	now := db.d.ts(db.now())
	// retries_remaining is Quay's default of 5; a failed try gives its
	// retry back (RetryReplication), so an unreachable location never
	// drops the item.
	if _, err := db.exec(ctx, tx, `INSERT INTO queueitem (queue_name, body, available_after, available, processing_expires, retries_remaining, state_id)
		VALUES (?, ?, ?, true, ?, 5, ?)`, name, string(b), now, now, uuid.NewString()); err != nil {
		return false, fmt.Errorf("insert queueitem: %w", err)
	}
	return true, nil
}

// ClaimReplication implements ReplicationStore.
func (db *DB) ClaimReplication(ctx context.Context, lease time.Duration) (*ReplicationItem, error) {
	now := db.now()
	nowTS := db.d.ts(now)
	query := `SELECT id, queue_name, body, state_id FROM queueitem
		WHERE queue_name LIKE ? AND available_after <= ?
		AND (available = true OR processing_expires <= ?) AND retries_remaining > 0
		ORDER BY available_after, id LIMIT 1`
	if db.d.pg {
		query += ` FOR UPDATE SKIP LOCKED`
	}
	var item *ReplicationItem
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		var (
			it         ReplicationItem
			name, body string
		)
		err := db.queryRow(ctx, tx, query, ReplicationQueue+"/%", nowTS, nowTS).Scan(&it.ID, &name, &body, &it.StateID)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		var rb replicationBody
		if err := json.Unmarshal([]byte(body), &rb); err != nil || rb.StorageID == "" {
			// Not ours to understand: take the name's uuid instead.
			rb.StorageID = strings.TrimSuffix(strings.TrimPrefix(name, ReplicationQueue+"/"), "/")
		}
		it.BlobUUID, it.Attempts = rb.StorageID, rb.Attempts
		it.QueuedAt, _ = time.Parse(time.RFC3339Nano, rb.QueuedAt)
		if rb.NamespaceUserID != nil {
			it.NamespaceID = *rb.NamespaceUserID
		}
		newState := uuid.NewString()
		// The state_id check makes the claim safe without row locks
		// (SQLite, or an item whose lease just expired).
		res, err := db.exec(ctx, tx, `UPDATE queueitem SET available = false, processing_expires = ?,
			retries_remaining = retries_remaining - 1, state_id = ? WHERE id = ? AND state_id = ?`,
			db.d.ts(now.Add(lease)), newState, it.ID, it.StateID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 1 {
			it.StateID = newState
			item = &it
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("claim replication item: %w", err)
	}
	return item, nil
}

// ExtendReplication implements ReplicationStore.
func (db *DB) ExtendReplication(ctx context.Context, it *ReplicationItem, lease time.Duration) error {
	res, err := db.exec(ctx, db.w, `UPDATE queueitem SET processing_expires = ? WHERE id = ? AND state_id = ? AND available = false`,
		db.d.ts(db.now().Add(lease)), it.ID, it.StateID)
	if err != nil {
		return fmt.Errorf("extend replication lease %d: %w", it.ID, err)
	}
	return checkAffected(res, fmt.Sprintf("extend replication lease %d", it.ID))
}

// CompleteReplication implements ReplicationStore.
func (db *DB) CompleteReplication(ctx context.Context, it *ReplicationItem) error {
	res, err := db.exec(ctx, db.w, `DELETE FROM queueitem WHERE id = ? AND state_id = ?`, it.ID, it.StateID)
	if err != nil {
		return fmt.Errorf("complete replication item %d: %w", it.ID, err)
	}
	return checkAffected(res, fmt.Sprintf("complete replication item %d", it.ID))
}

// RetryReplication implements ReplicationStore.
func (db *DB) RetryReplication(ctx context.Context, it *ReplicationItem, delay time.Duration) error {
	body := replicationBody{StorageID: it.BlobUUID, Attempts: it.Attempts + 1}
	if !it.QueuedAt.IsZero() {
		body.QueuedAt = it.QueuedAt.UTC().Format(time.RFC3339Nano)
	}
	if it.NamespaceID != 0 {
		body.NamespaceUserID = &it.NamespaceID
	}
	b, _ := json.Marshal(body)
	res, err := db.exec(ctx, db.w, `UPDATE queueitem SET available = true, available_after = ?, processing_expires = NULL,
		retries_remaining = retries_remaining + 1, body = ?, state_id = ? WHERE id = ? AND state_id = ?`,
		db.d.ts(db.now().Add(delay)), string(b), uuid.NewString(), it.ID, it.StateID)
	if err != nil {
		return fmt.Errorf("requeue replication item %d: %w", it.ID, err)
	}
	return checkAffected(res, fmt.Sprintf("requeue replication item %d", it.ID))
}

// EnqueueMissingReplications implements ReplicationStore.
func (db *DB) EnqueueMissingReplications(ctx context.Context, locations []string, limit int) (int, error) {
	if len(locations) == 0 {
		return 0, nil
	}
	if limit <= 0 {
		limit = 1000
	}
	// Location rows must exist for the NOT EXISTS below to see them.
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		for _, l := range locations {
			if _, err := db.locationID(ctx, tx, l); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("replication backfill: %w", err)
	}
	args := make([]any, 0, len(locations)+2)
	marks := make([]string, len(locations))
	for i, l := range locations {
		marks[i] = "?"
		args = append(args, l)
	}
	args = append(args, ReplicationQueue+"/", limit)
	uuids, err := queryAll(ctx, db, "blobs missing replicas", `SELECT s.uuid FROM imagestorage s
		WHERE (s.uploading = false OR s.uploading IS NULL)
		AND EXISTS (SELECT 1 FROM imagestorageplacement p0 WHERE p0.storage_id = s.id)
		AND EXISTS (SELECT 1 FROM imagestoragelocation l WHERE l.name IN (`+strings.Join(marks, ", ")+`)
			AND NOT EXISTS (SELECT 1 FROM imagestorageplacement p WHERE p.storage_id = s.id AND p.location_id = l.id))
		AND NOT EXISTS (SELECT 1 FROM queueitem q WHERE q.queue_name = ? || s.uuid || '/')
		ORDER BY s.id LIMIT ?`, args, scanString)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, u := range uuids {
		var added bool
		err := db.inTx(ctx, func(tx *sql.Tx) error {
			var err error
			added, err = db.enqueueReplication(ctx, tx, u, 0)
			return err
		})
		if err != nil {
			return n, fmt.Errorf("replication backfill: queue blob %s: %w", u, err)
		}
		if added {
			n++
		}
	}
	return n, nil
}

// BlobByUUID implements ReplicationStore.
func (db *DB) BlobByUUID(ctx context.Context, u string) (*Blob, error) {
	b, err := scanBlob(db.queryRow(ctx, db.r, `SELECT `+blobColumns+` FROM imagestorage s WHERE s.uuid = ?`, u))
	if err != nil {
		return nil, notFound(err, "blob uuid "+u)
	}
	return b, nil
}

// AddBlobPlacement implements ReplicationStore.
func (db *DB) AddBlobPlacement(ctx context.Context, blobID int64, location string) error {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		var one int
		// Lock the blob row so garbage collection cannot delete it between
		// this check and the insert (on SQLite the write lock does it).
		q := `SELECT 1 FROM imagestorage WHERE id = ?`
		if db.d.pg {
			q += ` FOR UPDATE`
		}
		if err := db.queryRow(ctx, tx, q, blobID).Scan(&one); err != nil {
			return notFound(err, fmt.Sprintf("blob id %d", blobID))
		}
		locID, err := db.locationID(ctx, tx, location)
		if err != nil {
			return err
		}
		_, err = db.exec(ctx, tx, `INSERT INTO imagestorageplacement (storage_id, location_id) VALUES (?, ?)
			ON CONFLICT (storage_id, location_id) DO NOTHING`, blobID, locID)
		return err
	})
	if err != nil {
		return fmt.Errorf("record placement of blob id %d at %s: %w", blobID, location, err)
	}
	return nil
}

// ReplicationBacklog implements ReplicationStore. The oldest item is the
// one with the lowest id; its age comes from the enqueue time in its body
// (available_after moves forward on every retry), else available_after.
func (db *DB) ReplicationBacklog(ctx context.Context) (int64, time.Time, error) {
	var n int64
	if err := db.queryRow(ctx, db.r, `SELECT COUNT(*) FROM queueitem WHERE queue_name LIKE ?`, ReplicationQueue+"/%").Scan(&n); err != nil {
		return 0, time.Time{}, fmt.Errorf("replication backlog: %w", err)
	}
	if n == 0 {
		return 0, time.Time{}, nil
	}
	var (
		body  string
		after nullTime
	)
	err := db.queryRow(ctx, db.r, `SELECT body, available_after FROM queueitem WHERE queue_name LIKE ? ORDER BY id LIMIT 1`,
		ReplicationQueue+"/%").Scan(&body, &after)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, time.Time{}, fmt.Errorf("replication backlog: %w", err)
	}
	var rb replicationBody
	if json.Unmarshal([]byte(body), &rb) == nil {
		if t, err := time.Parse(time.RFC3339Nano, rb.QueuedAt); err == nil {
			return n, t.UTC(), nil
		}
	}
	return n, after.Time, nil
}
