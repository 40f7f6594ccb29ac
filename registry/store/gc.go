package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// ErrBlobGone is returned by LinkBlob when garbage collection deleted the
// blob's stored object while the caller was about to link it: the bytes are
// gone and the client must upload the blob again.
var ErrBlobGone = errors.New("the blob was removed by garbage collection while it was being linked; upload it again")

// GCOptions tune one garbage-collection pass over the database.
type GCOptions struct {
	// DryRun runs the pass inside one transaction that is rolled back, so
	// the result says what a real pass would remove and nothing changes.
	DryRun bool
	// Limit bounds the items each step handles in one pass (default 1000).
	Limit int
	// Lease is how long a claimed repositorygc queue item stays with this
	// process before another may take it over (default 10 minutes).
	Lease time.Duration
	// UploadLinkMargin keeps an uploadedblob link this long past its
	// expires_at, so a manifest push that resolved the link just before it
	// expired still finds its blob (default 5 minutes; negative: none).
	UploadLinkMargin time.Duration
	// StaleUploadAge removes blob upload sessions started longer ago than
	// this (Quay's BLOBUPLOAD_DELETION_DATE_THRESHOLD, default 2 days).
	StaleUploadAge time.Duration
}

func (o GCOptions) withDefaults() GCOptions {
	if o.Limit <= 0 {
		o.Limit = 1000
	}
	if o.Lease <= 0 {
		o.Lease = 10 * time.Minute
	}
	switch {
	case o.UploadLinkMargin == 0:
		o.UploadLinkMargin = 5 * time.Minute
	case o.UploadLinkMargin < 0:
		o.UploadLinkMargin = 0
	}
	if o.StaleUploadAge <= 0 {
		o.StaleUploadAge = 48 * time.Hour
	}
	return o
}

// GCBlob is a blob garbage collection removed from the database. Object is
// true when no other row shares the digest, so its stored object is to be
// deleted from Locations.
type GCBlob struct {
	Digest    string
	Size      int64
	Locations []string
	Object    bool
}

// GCUpload is an upload session whose bytes (storage.UploadPath) are to go.
type GCUpload struct {
	UUID     string
	Location string
}

// GCResult is what one pass removed from the database (or would remove).
type GCResult struct {
	Repositories  int // deleted repositories purged
	Tags          int // tag rows deleted (past the time machine)
	Manifests     int
	ManifestBytes int64
	Blobs         []GCBlob
	Uploads       []GCUpload
	// Failures are items skipped because they failed; the next pass
	// retries them.
	Failures []string
}

// GCStore is the database side of garbage collection and of the tag time
// machine. DB implements it.
type GCStore interface {
	// CollectGarbage runs the database part of one pass: purge deleted
	// repositories (repositorygc queue), delete tag rows past their
	// namespace's time machine window, delete manifests nothing reaches,
	// expired upload links and stale upload sessions, then blobs nothing
	// references. Blobs whose object must go get a tombstone.
	CollectGarbage(ctx context.Context, o GCOptions) (*GCResult, error)
	// PendingBlobDeletions lists tombstones whose object is not deleted yet.
	PendingBlobDeletions(ctx context.Context, limit int) ([]GCBlob, error)
	// DeleteBlobObject calls del with the tombstone's locations under the
	// digest's lock, unless the digest was linked again meanwhile; it
	// reports whether del ran and succeeded.
	DeleteBlobObject(ctx context.Context, digest string, del func(ctx context.Context, locations []string) error) (bool, error)
	// PruneBlobTombstones forgets tombstones whose object was deleted
	// longer ago than age.
	PruneBlobTombstones(ctx context.Context, age time.Duration) (int, error)

	// SetTagExpiration sets (or, with nil, clears) the end of an alive,
	// non-hidden tag; it returns the previous end.
	SetTagExpiration(ctx context.Context, repositoryID int64, name string, expiration *time.Time) (*int64, error)
	// RetargetTag creates or moves a tag to a manifest of the repository;
	// it returns the tag row it replaced, if any.
	RetargetTag(ctx context.Context, repositoryID int64, name, digest string) (*Tag, error)
	// RestoreTag points a tag back at a manifest that a tag of the
	// repository pointed at within the namespace's time machine window
	// (ErrNotFound otherwise). The new row has reversion=true.
	RestoreTag(ctx context.Context, repositoryID int64, name, digest string) error
}

var _ GCStore = (*DB)(nil)

// SetBlobVerifier gives LinkBlob a way to check that a blob's object is in
// storage at a location. It is asked only when garbage collection deleted
// the digest's object recently (a tombstone exists), so a push racing with
// that deletion fails with ErrBlobGone instead of linking missing bytes.
func (db *DB) SetBlobVerifier(fn func(ctx context.Context, location, digest string) error) {
	db.gcMu.Lock()
	db.blobVerifier = fn
	db.gcMu.Unlock()
}

// SetDefaultTagExpiration is DEFAULT_TAG_EXPIRATION: the time machine
// window of namespaces created without an explicit one.
func (db *DB) SetDefaultTagExpiration(d time.Duration) {
	s := int64(d / time.Second)
	db.gcMu.Lock()
	db.defaultTagExpS = &s
	db.gcMu.Unlock()
}

func (db *DB) defaultTagExpiration() int64 {
	db.gcMu.RLock()
	defer db.gcMu.RUnlock()
	if db.defaultTagExpS != nil {
		return *db.defaultTagExpS
	}
	return defaultRemovedTagExpirationS
}

// checkTombstone runs inside LinkBlob's transaction, after the digest's
// lock: a pending tombstone is cancelled (the object is still there and is
// now wanted again); a tombstone whose object was deleted means the caller
// may have seen the object just before it went, so it is verified.
func (db *DB) checkTombstone(ctx context.Context, tx *sql.Tx, location, digest string) error {
	var deleted sql.NullInt64
	err := db.queryRow(ctx, tx, `SELECT storage_deleted_ms FROM quayctl_blob_tombstone WHERE digest = ?`, digest).Scan(&deleted)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("blob tombstone: %w", err)
	}
	if deleted.Valid {
		db.gcMu.RLock()
		verify := db.blobVerifier
		db.gcMu.RUnlock()
		if verify != nil {
			if err := verify(ctx, location, digest); err != nil {
				return fmt.Errorf("%w (%v)", ErrBlobGone, err)
			}
		}
	}
	if _, err := db.exec(ctx, tx, `DELETE FROM quayctl_blob_tombstone WHERE digest = ?`, digest); err != nil {
		return fmt.Errorf("cancel blob tombstone: %w", err)
	}
	return nil
}

// gcRun is one pass. In a dry run every step runs in the same transaction
// (each under a savepoint) and the transaction is rolled back at the end.
type gcRun struct {
	db  *DB
	o   GCOptions
	res *GCResult
	dry *sql.Tx
	now time.Time
}

// CollectGarbage runs the database part of one pass; see GCStore.
func (db *DB) CollectGarbage(ctx context.Context, o GCOptions) (*GCResult, error) {
	g := &gcRun{db: db, o: o.withDefaults(), res: &GCResult{}, now: db.now()}
	if g.o.DryRun {
		tx, err := db.w.BeginTx(ctx, nil)
		if err != nil {
			return nil, fmt.Errorf("garbage collection (dry run): begin: %w", err)
		}
		defer func() { _ = tx.Rollback() }()
		g.dry = tx
	}
	steps := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"purge deleted repositories", g.purgeRepositories},
		{"delete expired tags", g.expireTags},
		{"delete unreachable manifests", g.deleteManifests},
		{"delete expired upload links", g.expireUploadLinks},
		{"delete stale uploads", g.staleUploads},
		{"delete unreferenced blobs", g.deleteBlobs},
	}
	for _, s := range steps {
		if err := s.fn(ctx); err != nil {
			return g.res, fmt.Errorf("garbage collection: %s: %w", s.name, err)
		}
	}
	return g.res, nil
}

// q is where candidate queries run: the dry-run transaction, so they see
// its deletions, or the read pool.
func (g *gcRun) q() queryer {
	if g.dry != nil {
		return g.dry
	}
	return g.db.r
}

// step runs fn in its own transaction, or under a savepoint of the dry-run
// transaction, so that one failing item never spoils the others.
func (g *gcRun) step(ctx context.Context, fn func(tx *sql.Tx) error) error {
	if g.dry == nil {
		return g.db.inTx(ctx, fn)
	}
	if _, err := g.dry.ExecContext(ctx, "SAVEPOINT gc_step"); err != nil {
		return err
	}
	if err := fn(g.dry); err != nil {
		_, _ = g.dry.ExecContext(ctx, "ROLLBACK TO SAVEPOINT gc_step")
		_, _ = g.dry.ExecContext(ctx, "RELEASE SAVEPOINT gc_step")
		return err
	}
	_, err := g.dry.ExecContext(ctx, "RELEASE SAVEPOINT gc_step")
	return err
}

func (g *gcRun) fail(what string, err error) {
	g.res.Failures = append(g.res.Failures, fmt.Sprintf("%s: %v", what, err))
	g.db.log.Warn("garbage collection skipped an item", "item", what, "error", err)
}

func (g *gcRun) nowMs() int64 { return g.now.UnixMilli() }

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}

func int64Args(ids []int64) []any {
	out := make([]any, len(ids))
	for i, id := range ids {
		out[i] = id
	}
	return out
}

// Deleted repositories ------------------------------------------------------

type queueItem struct {
	id      int64
	name    string
	stateID string
}

// repositoryGCRepoID reads the repository id from "repositorygc/<ns>/<id>/".
func repositoryGCRepoID(queueName string) (int64, bool) {
	parts := strings.Split(strings.Trim(queueName, "/"), "/")
	if len(parts) < 3 || parts[0] != repositoryGCQueue {
		return 0, false
	}
	id, err := strconv.ParseInt(parts[len(parts)-1], 10, 64)
	return id, err == nil
}

// purgeRepositories takes repositorygc queue items the way Quay's queue
// does (available, or its lease expired; retries left), claims each by
// changing its state_id, and purges the repository with the item's removal
// in one transaction. On PostgreSQL the candidate row is locked with SKIP
// LOCKED, so replicas never wait for or take the same item.
func (g *gcRun) purgeRepositories(ctx context.Context) error {
	var lastID int64
	for n := 0; n < g.o.Limit; n++ {
		item, scanned, err := g.claimQueueItem(ctx, lastID)
		if err != nil {
			return err
		}
		if scanned == 0 {
			return nil
		}
		lastID = scanned
		if item == nil {
			continue // another process claimed it first
		}
		repoID, ok := repositoryGCRepoID(item.name)
		if !ok {
			g.fail("queue item "+item.name, errors.New("not a repositorygc item"))
			continue
		}
		var got GCResult
		if err := g.step(ctx, func(tx *sql.Tx) error {
			got = GCResult{}
			return g.purgeRepository(ctx, tx, repoID, item, &got)
		}); err != nil {
			g.fail(fmt.Sprintf("deleted repository id %d", repoID), err)
			if g.dry == nil {
				g.releaseQueueItem(ctx, item)
			}
			continue
		}
		g.res.Repositories += got.Repositories
		g.res.Tags += got.Tags
		g.res.Manifests += got.Manifests
		g.res.ManifestBytes += got.ManifestBytes
		g.res.Uploads = append(g.res.Uploads, got.Uploads...)
	}
	return nil
}

// claimQueueItem finds the next available item after afterID and claims
// it. scanned is the id looked at (0: none left); item is nil when another
// process claimed it first.
func (g *gcRun) claimQueueItem(ctx context.Context, afterID int64) (item *queueItem, scanned int64, err error) {
	db := g.db
	nowTS := db.d.ts(g.now)
	query := `SELECT id, queue_name, state_id FROM queueitem
		WHERE queue_name LIKE ? AND id > ? AND available_after <= ?
		AND (available = true OR processing_expires <= ?) AND retries_remaining > 0
		ORDER BY id LIMIT 1`
	args := []any{repositoryGCQueue + "/%", afterID, nowTS, nowTS}
	if g.dry != nil {
		var it queueItem
		err := db.queryRow(ctx, g.dry, query, args...).Scan(&it.id, &it.name, &it.stateID)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, 0, nil
		}
		if err != nil {
			return nil, 0, fmt.Errorf("queue item: %w", err)
		}
		return &it, it.id, nil
	}
	if db.d.pg {
		query += ` FOR UPDATE SKIP LOCKED`
	}
	err = db.inTx(ctx, func(tx *sql.Tx) error {
		var c queueItem
		err := db.queryRow(ctx, tx, query, args...).Scan(&c.id, &c.name, &c.stateID)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		scanned = c.id
		newState := uuid.NewString()
		res, err := db.exec(ctx, tx, `UPDATE queueitem SET available = false, processing_expires = ?,
			retries_remaining = retries_remaining - 1, state_id = ? WHERE id = ? AND state_id = ?`,
			db.d.ts(g.now.Add(g.o.Lease)), newState, c.id, c.stateID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 1 {
			c.stateID = newState
			item = &c
		}
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("claim queue item: %w", err)
	}
	return item, scanned, nil
}

// releaseQueueItem gives a failed item back to the queue for a later try.
func (g *gcRun) releaseQueueItem(ctx context.Context, it *queueItem) {
	db := g.db
	_, err := db.exec(ctx, db.w, `UPDATE queueitem SET available = true, processing_expires = NULL,
		available_after = ?, state_id = ? WHERE id = ? AND state_id = ?`,
		db.d.ts(g.now.Add(time.Minute)), uuid.NewString(), it.id, it.stateID)
	if err != nil {
		db.log.Warn("cannot release queue item", "queue_item", it.name, "error", err)
	}
}

// purgeRepository removes a repository marked for deletion with everything
// in it, as Quay's purge_repository; its blobs are left for the blob step,
// which deletes those no other repository references.
func (g *gcRun) purgeRepository(ctx context.Context, tx *sql.Tx, repoID int64, it *queueItem, out *GCResult) error {
	db := g.db
	if err := db.advisoryLock(ctx, tx, retargetLockName(repoID)); err != nil {
		return err
	}
	var state int
	err := db.queryRow(ctx, tx, `SELECT state FROM repository WHERE id = ?`, repoID).Scan(&state)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	if err == nil && state == RepoStateMarkedForDeletion {
		var tags, manifests int
		var bytes int64
		if err := db.queryRow(ctx, tx, `SELECT COUNT(*) FROM tag WHERE repository_id = ?`, repoID).Scan(&tags); err != nil {
			return err
		}
		if err := db.queryRow(ctx, tx, `SELECT COUNT(*), COALESCE(SUM(LENGTH(manifest_bytes)), 0) FROM manifest
			WHERE repository_id = ?`, repoID).Scan(&manifests, &bytes); err != nil {
			return err
		}
		uploads, err := db.uploadsWhere(ctx, tx, `b.repository_id = ?`, repoID)
		if err != nil {
			return err
		}
		steps := []struct{ what, sql string }{
			{"tag links", `UPDATE tag SET linked_tag_id = NULL WHERE repository_id = ?`},
			{"tags", `DELETE FROM tag WHERE repository_id = ?`},
			{"manifest children", `DELETE FROM manifestchild WHERE repository_id = ?`},
			{"manifest blobs", `DELETE FROM manifestblob WHERE repository_id = ?`},
			{"manifests", `DELETE FROM manifest WHERE repository_id = ?`},
			{"upload links", `DELETE FROM uploadedblob WHERE repository_id = ?`},
			{"uploads", `DELETE FROM blobupload WHERE repository_id = ?`},
			{"permissions", `DELETE FROM repositorypermission WHERE repository_id = ?`},
			{"quota size", `DELETE FROM quotarepositorysize WHERE repository_id = ?`},
			{"auto-prune policies", `DELETE FROM repositoryautoprunepolicy WHERE repository_id = ?`},
			{"mirror config", `DELETE FROM repomirrorconfig WHERE repository_id = ?`},
			{"mirror rule links", `UPDATE repomirrorrule SET left_child_id = NULL, right_child_id = NULL WHERE repository_id = ?`},
			{"mirror rules", `DELETE FROM repomirrorrule WHERE repository_id = ?`},
			{"notifications", `DELETE FROM repositorynotification WHERE repository_id = ?`},
			{"deletion marker", `DELETE FROM deletedrepository WHERE repository_id = ?`},
			{"repository", `DELETE FROM repository WHERE id = ?`},
		}
		var nsID int64 // quota: the namespace shrinks with the purge (quota.go)
		if err := db.queryRow(ctx, tx, `SELECT namespace_user_id FROM repository WHERE id = ?`, repoID).Scan(&nsID); err != nil {
			return err
		}
		for _, s := range steps {
			if _, err := db.exec(ctx, tx, s.sql, repoID); err != nil {
				return fmt.Errorf("delete %s: %w", s.what, err)
			}
		}
		if !g.o.DryRun {
			if err := db.namespaceQuotaChanged(ctx, tx, nsID); err != nil {
				return err
			}
		}
		out.Repositories, out.Tags, out.Manifests, out.ManifestBytes, out.Uploads = 1, tags, manifests, bytes, uploads
	}
	// A live repository (the item is stale) or one already purged: the
	// item has nothing left to do.
	if _, err := db.exec(ctx, tx, `DELETE FROM queueitem WHERE id = ? AND state_id = ?`, it.id, it.stateID); err != nil {
		return fmt.Errorf("delete queue item: %w", err)
	}
	return nil
}

func (db *DB) uploadsWhere(ctx context.Context, q queryer, where string, args ...any) ([]GCUpload, error) {
	rows, err := db.query(ctx, q, `SELECT b.uuid, l.name FROM blobupload b
		JOIN imagestoragelocation l ON l.id = b.location_id WHERE `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("upload sessions: %w", err)
	}
	defer rows.Close()
	var out []GCUpload
	for rows.Next() {
		var u GCUpload
		if err := rows.Scan(&u.UUID, &u.Location); err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// Tags ----------------------------------------------------------------------

// unrecoverableTag is the condition for a tag row the time machine no
// longer offers: hidden rows as soon as they end (Quay's temporary tags),
// others once their namespace's removed_tag_expiration_s has passed.
const unrecoverableTag = `t.lifetime_end_ms IS NOT NULL AND t.lifetime_end_ms <= ?
	AND (t.hidden = true OR t.lifetime_end_ms <= ? - (SELECT u.removed_tag_expiration_s FROM repository r
		JOIN "user" u ON u.id = r.namespace_user_id WHERE r.id = t.repository_id) * 1000)`

func (g *gcRun) expireTags(ctx context.Context) error {
	db := g.db
	now := g.nowMs()
	byRepo := map[int64][]int64{}
	var order []int64
	rows, err := db.query(ctx, g.q(), `SELECT t.id, t.repository_id FROM tag t WHERE `+unrecoverableTag+`
		ORDER BY t.repository_id, t.id LIMIT ?`, now, now, g.o.Limit)
	if err != nil {
		return err
	}
	for rows.Next() {
		var id, repo int64
		if err := rows.Scan(&id, &repo); err != nil {
			rows.Close()
			return err
		}
		if _, seen := byRepo[repo]; !seen {
			order = append(order, repo)
		}
		byRepo[repo] = append(byRepo[repo], id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, repo := range order {
		ids := byRepo[repo]
		var deleted int64
		err := g.step(ctx, func(tx *sql.Tx) error {
			if err := db.advisoryLock(ctx, tx, retargetLockName(repo)); err != nil {
				return err
			}
			in := placeholders(len(ids))
			if _, err := db.exec(ctx, tx, `UPDATE tag SET linked_tag_id = NULL WHERE linked_tag_id IN (`+in+`)`, int64Args(ids)...); err != nil {
				return err
			}
			res, err := db.exec(ctx, tx, `DELETE FROM tag WHERE id IN (`+in+`) AND id IN (SELECT t.id FROM tag t WHERE `+unrecoverableTag+`)`,
				append(int64Args(ids), now, now)...)
			if err != nil {
				return err
			}
			deleted, err = res.RowsAffected()
			return err
		})
		if err != nil {
			g.fail(fmt.Sprintf("expired tags of repository id %d", repo), err)
			continue
		}
		g.res.Tags += int(deleted)
	}
	return nil
}

// Manifests -----------------------------------------------------------------

// unreachableManifest: no tag row (alive or still in the time machine)
// points at it, no parent index lists it, and no manifest of its
// repository names it as subject (Quay keeps a referrer's subject).
const unreachableManifest = `NOT EXISTS (SELECT 1 FROM tag t WHERE t.manifest_id = m.id)
	AND NOT EXISTS (SELECT 1 FROM manifestchild c WHERE c.child_manifest_id = m.id)
	AND NOT EXISTS (SELECT 1 FROM manifest s WHERE s.repository_id = m.repository_id AND s.subject = m.digest)`

// deleteManifests repeats until a round finds nothing: deleting an index
// frees its children for the next round.
func (g *gcRun) deleteManifests(ctx context.Context) error {
	db := g.db
	total := 0
	failed := map[int64]bool{}
	for round := 0; round < 64 && total < g.o.Limit; round++ {
		byRepo := map[int64][]int64{}
		var order []int64
		rows, err := db.query(ctx, g.q(), `SELECT m.id, m.repository_id FROM manifest m WHERE `+unreachableManifest+`
			ORDER BY m.repository_id, m.id LIMIT ?`, g.o.Limit)
		if err != nil {
			return err
		}
		for rows.Next() {
			var id, repo int64
			if err := rows.Scan(&id, &repo); err != nil {
				rows.Close()
				return err
			}
			if failed[repo] {
				continue
			}
			if _, seen := byRepo[repo]; !seen {
				order = append(order, repo)
			}
			byRepo[repo] = append(byRepo[repo], id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		deletedThisRound := 0
		for _, repo := range order {
			n, bytes, err := g.deleteManifestsOf(ctx, repo, byRepo[repo])
			if err != nil {
				failed[repo] = true
				g.fail(fmt.Sprintf("manifests of repository id %d", repo), err)
				continue
			}
			deletedThisRound += n
			g.res.Manifests += n
			g.res.ManifestBytes += bytes
		}
		total += deletedThisRound
		if deletedThisRound == 0 {
			return nil
		}
	}
	return nil
}

// deleteManifestsOf re-checks the candidates under the repository's tag
// lock, which every writer of tags and manifests takes too (push, move,
// delete, restore), so nothing can point at them while they go.
func (g *gcRun) deleteManifestsOf(ctx context.Context, repo int64, ids []int64) (int, int64, error) {
	db := g.db
	var (
		n     int
		bytes int64
	)
	err := g.step(ctx, func(tx *sql.Tx) error {
		n, bytes = 0, 0
		if err := db.advisoryLock(ctx, tx, retargetLockName(repo)); err != nil {
			return err
		}
		rows, err := db.query(ctx, tx, `SELECT m.id, LENGTH(m.manifest_bytes) FROM manifest m
			WHERE m.id IN (`+placeholders(len(ids))+`) AND `+unreachableManifest, int64Args(ids)...)
		if err != nil {
			return err
		}
		var confirmed []int64
		var size int64
		for rows.Next() {
			var id int64
			var l sql.NullInt64
			if err := rows.Scan(&id, &l); err != nil {
				rows.Close()
				return err
			}
			confirmed = append(confirmed, id)
			size += l.Int64
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(confirmed) == 0 {
			return nil
		}
		in := placeholders(len(confirmed))
		args := int64Args(confirmed)
		for _, q := range []string{
			`DELETE FROM manifestchild WHERE manifest_id IN (` + in + `)`,
			`DELETE FROM manifestblob WHERE manifest_id IN (` + in + `)`,
			`DELETE FROM manifest WHERE id IN (` + in + `)`,
		} {
			if _, err := db.exec(ctx, tx, q, args...); err != nil {
				return err
			}
		}
		// Quota sizes (quota.go). A dry run holds every step in one
		// transaction that is rolled back: taking namespace locks there
		// would only risk lock-order deadlocks with pushes.
		if !g.o.DryRun {
			if err := db.quotaChanged(ctx, tx, false, repo); err != nil {
				return err
			}
		}
		n, bytes = len(confirmed), size
		return nil
	})
	return n, bytes, err
}

// Uploads -------------------------------------------------------------------

func (g *gcRun) expireUploadLinks(ctx context.Context) error {
	return g.step(ctx, func(tx *sql.Tx) error {
		_, err := g.db.exec(ctx, tx, `DELETE FROM uploadedblob WHERE expires_at <= ?`, g.db.d.ts(g.now.Add(-g.o.UploadLinkMargin)))
		return err
	})
}

// staleUploads removes upload sessions nobody finished, as Quay's
// blobuploadcleanupworker; their bytes are deleted with the blobs.
func (g *gcRun) staleUploads(ctx context.Context) error {
	db := g.db
	cutoff := db.d.ts(g.now.Add(-g.o.StaleUploadAge))
	return g.step(ctx, func(tx *sql.Tx) error {
		ups, err := db.uploadsWhere(ctx, tx, `b.created <= ? ORDER BY b.id LIMIT ?`, cutoff, g.o.Limit)
		if err != nil || len(ups) == 0 {
			return err
		}
		for _, u := range ups {
			if _, err := db.exec(ctx, tx, `DELETE FROM blobupload WHERE uuid = ?`, u.UUID); err != nil {
				return err
			}
		}
		g.res.Uploads = append(g.res.Uploads, ups...)
		return nil
	})
}

// Blobs ---------------------------------------------------------------------

// unreferencedBlob: no manifest of any repository and no upload link (the
// expired ones were deleted just before, with their margin) holds it. Only
// content-addressed rows are collected: their object path is known.
const unreferencedBlob = `s.cas_path = true AND s.content_checksum IS NOT NULL
	AND NOT EXISTS (SELECT 1 FROM manifestblob mb WHERE mb.blob_id = s.id)
	AND NOT EXISTS (SELECT 1 FROM uploadedblob ub WHERE ub.blob_id = s.id)`

func (g *gcRun) deleteBlobs(ctx context.Context) error {
	db := g.db
	var lastID int64
	for done := 0; done < g.o.Limit; {
		type cand struct {
			id     int64
			digest string
		}
		var cands []cand
		rows, err := db.query(ctx, g.q(), `SELECT s.id, s.content_checksum FROM imagestorage s
			WHERE s.id > ? AND `+unreferencedBlob+` ORDER BY s.id LIMIT ?`, lastID, min(100, g.o.Limit-done))
		if err != nil {
			return err
		}
		for rows.Next() {
			var c cand
			if err := rows.Scan(&c.id, &c.digest); err != nil {
				rows.Close()
				return err
			}
			cands = append(cands, c)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(cands) == 0 {
			return nil
		}
		for _, c := range cands {
			lastID = c.id
			done++
			var blob *GCBlob
			err := g.step(ctx, func(tx *sql.Tx) error {
				var err error
				blob, err = g.deleteBlob(ctx, tx, c.id, c.digest)
				return err
			})
			if err != nil {
				g.fail("blob "+c.digest, err)
				continue
			}
			if blob != nil {
				g.res.Blobs = append(g.res.Blobs, *blob)
			}
		}
	}
	return nil
}

// deleteBlob re-checks the blob under its digest's lock (the one LinkBlob
// takes), removes its rows and, when no row of the digest remains, writes
// the tombstone that schedules the object's deletion.
func (g *gcRun) deleteBlob(ctx context.Context, tx *sql.Tx, id int64, digest string) (*GCBlob, error) {
	db := g.db
	if err := db.advisoryLock(ctx, tx, "imagestorage:"+digest); err != nil {
		return nil, err
	}
	var size sql.NullInt64
	err := db.queryRow(ctx, tx, `SELECT s.image_size FROM imagestorage s WHERE s.id = ? AND `+unreferencedBlob, id).Scan(&size)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil // referenced again, or gone
	}
	if err != nil {
		return nil, err
	}
	locs, err := func() ([]string, error) {
		rows, err := db.query(ctx, tx, `SELECT l.name FROM imagestorageplacement p
			JOIN imagestoragelocation l ON l.id = p.location_id WHERE p.storage_id = ? ORDER BY l.name`, id)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				return nil, err
			}
			out = append(out, s)
		}
		return out, rows.Err()
	}()
	if err != nil {
		return nil, err
	}
	for _, q := range []string{
		`DELETE FROM imagestorageplacement WHERE storage_id = ?`,
		`DELETE FROM uploadedblob WHERE blob_id = ?`,
		`DELETE FROM imagestorage WHERE id = ?`,
	} {
		if _, err := db.exec(ctx, tx, q, id); err != nil {
			return nil, err
		}
	}
	b := &GCBlob{Digest: digest, Size: size.Int64, Locations: locs}
	var others bool
	if err := db.queryRow(ctx, tx, `SELECT EXISTS (SELECT 1 FROM imagestorage WHERE content_checksum = ?)`, digest).Scan(&others); err != nil {
		return nil, err
	}
	if !others && len(locs) > 0 {
		lj, _ := json.Marshal(locs)
		if _, err := db.exec(ctx, tx, `INSERT INTO quayctl_blob_tombstone (digest, image_size, locations, created_ms, storage_deleted_ms)
			VALUES (?, ?, ?, ?, NULL)
			ON CONFLICT (digest) DO UPDATE SET image_size = excluded.image_size, locations = excluded.locations,
				created_ms = excluded.created_ms, storage_deleted_ms = NULL`,
			digest, b.Size, string(lj), g.nowMs()); err != nil {
			return nil, fmt.Errorf("tombstone: %w", err)
		}
		b.Object = true
	}
	return b, nil
}

// PendingBlobDeletions lists tombstones whose object is still to be deleted.
func (db *DB) PendingBlobDeletions(ctx context.Context, limit int) ([]GCBlob, error) {
	if limit <= 0 {
		limit = 1000
	}
	return queryAll(ctx, db, "pending blob deletions", `SELECT digest, image_size, locations FROM quayctl_blob_tombstone
		WHERE storage_deleted_ms IS NULL ORDER BY created_ms, digest LIMIT ?`, []any{limit},
		func(rows *sql.Rows) (GCBlob, error) {
			var (
				b    GCBlob
				locs string
			)
			if err := rows.Scan(&b.Digest, &b.Size, &locs); err != nil {
				return b, err
			}
			b.Object = true
			return b, json.Unmarshal([]byte(locs), &b.Locations)
		})
}

// DeleteBlobObject deletes a tombstoned blob's object through del, holding
// the digest's lock so that LinkBlob either runs before (and cancels the
// tombstone) or after (and sees that the object was deleted).
func (db *DB) DeleteBlobObject(ctx context.Context, digest string, del func(ctx context.Context, locations []string) error) (bool, error) {
	done := false
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		if err := db.advisoryLock(ctx, tx, "imagestorage:"+digest); err != nil {
			return err
		}
		var (
			locs    string
			deleted sql.NullInt64
		)
		err := db.queryRow(ctx, tx, `SELECT locations, storage_deleted_ms FROM quayctl_blob_tombstone WHERE digest = ?`, digest).Scan(&locs, &deleted)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && deleted.Valid) {
			return nil
		}
		if err != nil {
			return err
		}
		var linked bool
		if err := db.queryRow(ctx, tx, `SELECT EXISTS (SELECT 1 FROM imagestorage WHERE content_checksum = ?)`, digest).Scan(&linked); err != nil {
			return err
		}
		if linked {
			_, err := db.exec(ctx, tx, `DELETE FROM quayctl_blob_tombstone WHERE digest = ?`, digest)
			return err
		}
		var locations []string
		if err := json.Unmarshal([]byte(locs), &locations); err != nil {
			return fmt.Errorf("tombstone locations: %w", err)
		}
		if err := del(ctx, locations); err != nil {
			return err
		}
		if _, err := db.exec(ctx, tx, `UPDATE quayctl_blob_tombstone SET storage_deleted_ms = ? WHERE digest = ?`, db.nowMs(), digest); err != nil {
			return err
		}
		done = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("delete object of blob %s: %w", digest, err)
	}
	return done, nil
}

// PruneBlobTombstones forgets tombstones of objects deleted more than age ago.
func (db *DB) PruneBlobTombstones(ctx context.Context, age time.Duration) (int, error) {
	res, err := db.exec(ctx, db.w, `DELETE FROM quayctl_blob_tombstone WHERE storage_deleted_ms IS NOT NULL AND storage_deleted_ms <= ?`,
		db.nowMs()-age.Milliseconds())
	if err != nil {
		return 0, fmt.Errorf("prune blob tombstones: %w", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}
