package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
)

// defaultTempTagTTL is Quay's PUSH_TEMP_TAG_EXPIRATION_SEC.
const defaultTempTagTTL = time.Hour

const manifestColumns = `m.id, m.repository_id, m.digest, mt.name, m.manifest_bytes, m.config_media_type,
	m.layers_compressed_size, m.subject, m.artifact_type`

const manifestFrom = ` FROM manifest m JOIN mediatype mt ON mt.id = m.media_type_id`

// manifestScan receives manifestColumns.
type manifestScan struct {
	m                          Manifest
	config, subject, artifactT sql.NullString
	layers                     sql.NullInt64
}

func (s *manifestScan) dest() []any {
	return []any{&s.m.ID, &s.m.RepositoryID, &s.m.Digest, &s.m.MediaType, &s.m.Bytes, &s.config, &s.layers, &s.subject, &s.artifactT}
}

func (s *manifestScan) result() *Manifest {
	m := s.m
	m.ConfigMediaType, m.LayersSize, m.Subject, m.ArtifactType = s.config.String, s.layers.Int64, s.subject.String, s.artifactT.String
	return &m
}

func scanManifest(row interface{ Scan(...any) error }) (*Manifest, error) {
	var s manifestScan
	if err := row.Scan(s.dest()...); err != nil {
		return nil, err
	}
	return s.result(), nil
}

func (db *DB) manifestByDigest(ctx context.Context, q queryer, repositoryID int64, digest string) (*Manifest, error) {
	return scanManifest(db.queryRow(ctx, q, `SELECT `+manifestColumns+manifestFrom+`
		WHERE m.repository_id = ? AND m.digest = ?`, repositoryID, digest))
}

// ManifestByDigest finds a manifest of the repository.
func (db *DB) ManifestByDigest(ctx context.Context, repositoryID int64, digest string) (*Manifest, error) {
	m, err := db.manifestByDigest(ctx, db.r, repositoryID, digest)
	if err != nil {
		return nil, notFound(err, fmt.Sprintf("manifest %s in repository id %d", digest, repositoryID))
	}
	return m, nil
}

const tagColumns = `t.id, t.repository_id, t.name, t.manifest_id, m.digest, t.lifetime_start_ms,
	t.lifetime_end_ms, t.hidden, t.immutable, t.reversion`

// aliveTagWhere selects the alive rows of a tag name. There is one at most
// in data we write; should a database hold more, aliveTagOrder picks the
// newest.
const (
	aliveTagWhere = ` WHERE t.repository_id = ? AND t.name = ? AND (t.lifetime_end_ms IS NULL OR t.lifetime_end_ms > ?)`
	aliveTagOrder = ` ORDER BY t.lifetime_start_ms DESC, t.id DESC LIMIT 1`
	aliveTagQuery = `SELECT ` + tagColumns + ` FROM tag t JOIN manifest m ON m.id = t.manifest_id` + aliveTagWhere
)

// tagScan receives tagColumns.
type tagScan struct {
	t   Tag
	end sql.NullInt64
}

func (s *tagScan) dest() []any {
	return []any{&s.t.ID, &s.t.RepositoryID, &s.t.Name, &s.t.ManifestID, &s.t.ManifestDigest, &s.t.LifetimeStartMs,
		&s.end, &s.t.Hidden, &s.t.Immutable, &s.t.Reversion}
}

func (s *tagScan) result() *Tag {
	t := s.t
	if s.end.Valid {
		v := s.end.Int64
		t.LifetimeEndMs = &v
	}
	return &t
}

func scanTag(row interface{ Scan(...any) error }) (*Tag, error) {
	var s tagScan
	if err := row.Scan(s.dest()...); err != nil {
		return nil, err
	}
	return s.result(), nil
}

// ManifestByTag resolves an alive, non-hidden tag, in one query.
func (db *DB) ManifestByTag(ctx context.Context, repositoryID int64, tag string) (*Manifest, *Tag, error) {
	var (
		ts tagScan
		ms manifestScan
	)
	err := db.queryRow(ctx, db.r, `SELECT `+tagColumns+`, `+manifestColumns+`
		FROM tag t JOIN manifest m ON m.id = t.manifest_id JOIN mediatype mt ON mt.id = m.media_type_id`+
		aliveTagWhere+` AND t.hidden = false`+aliveTagOrder,
		repositoryID, tag, db.nowMs()).Scan(append(ts.dest(), ms.dest()...)...)
	if err != nil {
		return nil, nil, notFound(err, fmt.Sprintf("tag %q in repository id %d", tag, repositoryID))
	}
	return ms.result(), ts.result(), nil
}

// PutManifest stores a manifest with its blob and child links and points a
// tag at it (or protects it with a hidden temporary tag), in one transaction.
func (db *DB) PutManifest(ctx context.Context, p PutManifestParams) (*Manifest, error) {
	var out *Manifest
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		// Like Quay, serialise tag changes per repository before reading
		// the alive row. Pushes by digest take the lock too: garbage
		// collection deletes manifests under it, so a manifest found here
		// cannot go before the new tag points at it.
		if err := db.advisoryLock(ctx, tx, retargetLockName(p.RepositoryID)); err != nil {
			return err
		}
		m, err := db.insertManifest(ctx, tx, p)
		if err != nil {
			return err
		}
		out = m
		nowMs := db.nowMs()
		if p.Tag != "" {
			return db.retargetTag(ctx, tx, p.RepositoryID, p.Tag, m.ID, nowMs)
		}
		return db.ensureTempTag(ctx, tx, p.RepositoryID, m, nowMs, p.TempTagTTL)
	})
	if err != nil {
		return nil, fmt.Errorf("put manifest %s in repository id %d: %w", p.Manifest.Digest, p.RepositoryID, err)
	}
	return out, nil
}

func retargetLockName(repositoryID int64) string {
	return "retarget_tag:" + strconv.FormatInt(repositoryID, 10)
}

// insertManifest inserts the manifest, or finds it when the same digest was
// pushed before (manifests are immutable, so the existing row stands), and
// links its blobs and children.
func (db *DB) insertManifest(ctx context.Context, tx *sql.Tx, p PutManifestParams) (*Manifest, error) {
	// Resolve everything first so that an unknown reference fails before
	// anything is written.
	blobIDs := make([]int64, 0, len(p.BlobDigests))
	seen := map[string]bool{}
	for _, d := range p.BlobDigests {
		if seen[d] {
			continue
		}
		seen[d] = true
		b, err := db.repositoryBlob(ctx, tx, p.RepositoryID, d)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, BlobUnknownError{Digest: d}
		}
		if err != nil {
			return nil, fmt.Errorf("blob %s: %w", d, err)
		}
		blobIDs = append(blobIDs, b.ID)
	}
	childIDs := make([]int64, 0, len(p.ChildDigests))
	seenChild := map[string]bool{}
	for _, d := range p.ChildDigests {
		if seenChild[d] {
			continue
		}
		seenChild[d] = true
		var id int64
		err := db.queryRow(ctx, tx, `SELECT id FROM manifest WHERE repository_id = ? AND digest = ?`, p.RepositoryID, d).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, ManifestUnknownError{Digest: d}
		}
		if err != nil {
			return nil, fmt.Errorf("child manifest %s: %w", d, err)
		}
		childIDs = append(childIDs, id)
	}

	mediaTypeID, err := db.mediaTypeID(ctx, tx, p.Manifest.MediaType)
	if err != nil {
		return nil, err
	}
	m := p.Manifest
	var id int64
	err = db.queryRow(ctx, tx, `INSERT INTO manifest (repository_id, digest, media_type_id, manifest_bytes,
		config_media_type, layers_compressed_size, subject, subject_backfilled, artifact_type, artifact_type_backfilled)
		VALUES (?, ?, ?, ?, ?, ?, ?, true, ?, true)
		ON CONFLICT (repository_id, digest) DO NOTHING RETURNING id`,
		p.RepositoryID, m.Digest, mediaTypeID, string(m.Bytes), nullString(m.ConfigMediaType), m.LayersSize,
		nullString(m.Subject), nullString(m.ArtifactType)).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		existing, err := db.manifestByDigest(ctx, tx, p.RepositoryID, m.Digest)
		if err != nil {
			return nil, fmt.Errorf("existing manifest: %w", err)
		}
		return existing, nil
	}
	if err != nil {
		return nil, fmt.Errorf("insert manifest: %w", err)
	}
	for _, b := range blobIDs {
		if _, err := db.exec(ctx, tx, `INSERT INTO manifestblob (repository_id, manifest_id, blob_id) VALUES (?, ?, ?)
			ON CONFLICT (manifest_id, blob_id) DO NOTHING`, p.RepositoryID, id, b); err != nil {
			return nil, fmt.Errorf("insert manifestblob: %w", err)
		}
	}
	for _, c := range childIDs {
		if _, err := db.exec(ctx, tx, `INSERT INTO manifestchild (repository_id, manifest_id, child_manifest_id) VALUES (?, ?, ?)
			ON CONFLICT (manifest_id, child_manifest_id) DO NOTHING`, p.RepositoryID, id, c); err != nil {
			return nil, fmt.Errorf("insert manifestchild: %w", err)
		}
	}
	if len(blobIDs) > 0 {
		// Quota: recount (and enforce) in this transaction (quota.go).
		if err := db.quotaChanged(ctx, tx, true, p.RepositoryID); err != nil {
			return nil, err
		}
	}
	m.ID, m.RepositoryID = id, p.RepositoryID
	return &m, nil
}

// mediaTypeID looks a media type up by name, adding the row when this
// database lacks it (ids and even the set of rows differ between databases).
func (db *DB) mediaTypeID(ctx context.Context, q queryer, name string) (int64, error) {
	if name == "" {
		return 0, errors.New("manifest media type is empty")
	}
	var id int64
	err := db.queryRow(ctx, q, `SELECT id FROM mediatype WHERE name = ?`, name).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		if _, err := db.exec(ctx, q, `INSERT INTO mediatype (name) VALUES (?) ON CONFLICT (name) DO NOTHING`, name); err != nil {
			return 0, fmt.Errorf("insert mediatype %q: %w", name, err)
		}
		err = db.queryRow(ctx, q, `SELECT id FROM mediatype WHERE name = ?`, name).Scan(&id)
	}
	if err != nil {
		return 0, fmt.Errorf("mediatype %q: %w", name, err)
	}
	return id, nil
}

// retargetTag points a tag name at a manifest: nothing when it already does,
// else the alive row ends and a new row starts, as Quay's retarget_tag.
func (db *DB) retargetTag(ctx context.Context, tx *sql.Tx, repositoryID int64, name string, manifestID, nowMs int64) error {
	old, err := scanTag(db.queryRow(ctx, tx, aliveTagQuery+aliveTagOrder, repositoryID, name, nowMs))
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return fmt.Errorf("find tag %q: %w", name, err)
	case old.ManifestID == manifestID && !old.Hidden:
		return nil
	default:
		if err := db.endTag(ctx, tx, old, nowMs); err != nil {
			return err
		}
	}
	if _, err := db.exec(ctx, tx, `INSERT INTO tag (name, repository_id, manifest_id, lifetime_start_ms, lifetime_end_ms,
		hidden, reversion, tag_kind_id, linked_tag_id, immutable)
		VALUES (?, ?, ?, ?, NULL, false, false, (SELECT id FROM tagkind WHERE name = 'tag'), NULL, false)`,
		name, repositoryID, manifestID, nowMs); err != nil {
		return fmt.Errorf("insert tag %q: %w", name, err)
	}
	return nil
}

// endTag ends an alive tag row. The guard on the old end time makes a
// concurrent change fail loudly instead of being overwritten (Quay does the
// same).
func (db *DB) endTag(ctx context.Context, tx *sql.Tx, t *Tag, nowMs int64) error {
	end, err := db.freeEndMs(ctx, tx, t.RepositoryID, t.Name, nowMs)
	if err != nil {
		return err
	}
	var res sql.Result
	if t.LifetimeEndMs == nil {
		res, err = db.exec(ctx, tx, `UPDATE tag SET lifetime_end_ms = ? WHERE id = ? AND lifetime_end_ms IS NULL`, end, t.ID)
	} else {
		res, err = db.exec(ctx, tx, `UPDATE tag SET lifetime_end_ms = ? WHERE id = ? AND lifetime_end_ms = ?`, end, t.ID, *t.LifetimeEndMs)
	}
	if err != nil {
		return fmt.Errorf("end tag %q: %w", t.Name, err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return fmt.Errorf("end tag %q: changed concurrently, try again", t.Name)
	}
	return nil
}

// freeEndMs returns the latest millisecond at or before nowMs at which no
// row of the tag name has ended. The UNIQUE (repository_id, name,
// lifetime_end_ms) index would otherwise reject a second change of one tag
// within one millisecond (push, move, delete in quick succession). Going
// back rather than forward keeps the ended row dead from this moment on; the
// cost is that a row which lived less than a millisecond may end "before" it
// started, which nothing can observe.
func (db *DB) freeEndMs(ctx context.Context, tx *sql.Tx, repositoryID int64, name string, nowMs int64) (int64, error) {
	end := nowMs
	for i := 0; i < 1000; i++ {
		var taken bool
		if err := db.queryRow(ctx, tx, `SELECT EXISTS (SELECT 1 FROM tag WHERE repository_id = ? AND name = ? AND lifetime_end_ms = ?)`,
			repositoryID, name, end).Scan(&taken); err != nil {
			return 0, fmt.Errorf("tag %q history: %w", name, err)
		}
		if !taken {
			return end, nil
		}
		end--
	}
	return 0, fmt.Errorf("tag %q: no free end time near %d", name, nowMs)
}

// ensureTempTag keeps a manifest pushed by digest from garbage collection
// with a hidden "$temp-<uuid>" tag, as Quay's create_temporary_tag_if_necessary:
// for ttl, or for good when the manifest has a subject (a referrer has no
// tag of its own to keep it); and not at all when a tag already keeps it at
// least that long.
func (db *DB) ensureTempTag(ctx context.Context, tx *sql.Tx, repositoryID int64, m *Manifest, nowMs int64, ttl time.Duration) error {
	if ttl <= 0 {
		ttl = defaultTempTagTTL
	}
	var end sql.NullInt64 // NULL: never expires
	if m.Subject == "" {
		end = sql.NullInt64{Int64: nowMs + ttl.Milliseconds(), Valid: true}
	}
	var kept bool
	if err := db.queryRow(ctx, tx, `SELECT EXISTS (SELECT 1 FROM tag WHERE manifest_id = ?
		AND (lifetime_end_ms IS NULL OR lifetime_end_ms >= ?))`, m.ID, end).Scan(&kept); err != nil {
		return fmt.Errorf("tags of manifest: %w", err)
	}
	if kept {
		return nil
	}
	if _, err := db.exec(ctx, tx, `INSERT INTO tag (name, repository_id, manifest_id, lifetime_start_ms, lifetime_end_ms,
		hidden, reversion, tag_kind_id, linked_tag_id, immutable)
		VALUES (?, ?, ?, ?, ?, true, false, (SELECT id FROM tagkind WHERE name = 'tag'), NULL, false)`,
		"$temp-"+uuid.NewString(), repositoryID, m.ID, nowMs, end); err != nil {
		return fmt.Errorf("insert temporary tag: %w", err)
	}
	return nil
}

// DeleteManifest removes a manifest with its blob and child links and its
// tag rows (alive ones included), in one transaction.
func (db *DB) DeleteManifest(ctx context.Context, repositoryID int64, digest string) error {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		if err := db.advisoryLock(ctx, tx, retargetLockName(repositoryID)); err != nil {
			return err
		}
		var id int64
		if err := db.queryRow(ctx, tx, `SELECT id FROM manifest WHERE repository_id = ? AND digest = ?`,
			repositoryID, digest).Scan(&id); err != nil {
			return notFound(err, "manifest")
		}
		steps := []struct {
			what, sql string
			args      []any
		}{
			{"manifestchild", `DELETE FROM manifestchild WHERE manifest_id = ? OR child_manifest_id = ?`, []any{id, id}},
			{"manifestblob", `DELETE FROM manifestblob WHERE manifest_id = ?`, []any{id}},
			// Rows of other tags may link to the tag rows about to go.
			{"tag links", `UPDATE tag SET linked_tag_id = NULL WHERE linked_tag_id IN (SELECT id FROM tag WHERE manifest_id = ?)`, []any{id}},
			{"tag", `DELETE FROM tag WHERE manifest_id = ?`, []any{id}},
			{"manifest", `DELETE FROM manifest WHERE id = ?`, []any{id}},
		}
		for _, s := range steps {
			if _, err := db.exec(ctx, tx, s.sql, s.args...); err != nil {
				return fmt.Errorf("delete %s: %w", s.what, err)
			}
		}
		return db.quotaChanged(ctx, tx, false, repositoryID) // quota.go
	})
	if err != nil {
		return fmt.Errorf("delete manifest %s in repository id %d: %w", digest, repositoryID, err)
	}
	return nil
}

// Referrers lists the repository's manifests whose subject is the digest.
func (db *DB) Referrers(ctx context.Context, repositoryID int64, subjectDigest, artifactType string) ([]Manifest, error) {
	q := `SELECT ` + manifestColumns + manifestFrom + ` WHERE m.repository_id = ? AND m.subject = ?`
	args := []any{repositoryID, subjectDigest}
	if artifactType != "" {
		q += ` AND m.artifact_type = ?`
		args = append(args, artifactType)
	}
	return queryAll(ctx, db, "referrers of "+subjectDigest, q+` ORDER BY m.id`, args, func(rows *sql.Rows) (Manifest, error) {
		m, err := scanManifest(rows)
		if err != nil {
			return Manifest{}, err
		}
		return *m, nil
	})
}

// ListTags lists alive, non-hidden tag names in byte order after last.
func (db *DB) ListTags(ctx context.Context, repositoryID int64, last string, n int) ([]string, error) {
	coll := db.d.collateC()
	q := `SELECT DISTINCT name` + coll + ` AS n FROM tag
		WHERE repository_id = ? AND hidden = false AND (lifetime_end_ms IS NULL OR lifetime_end_ms > ?)
		AND name` + coll + ` > ? ORDER BY n`
	args := []any{repositoryID, db.nowMs(), last}
	if n > 0 {
		q += ` LIMIT ?`
		args = append(args, n)
	}
	return queryAll(ctx, db, fmt.Sprintf("list tags of repository id %d", repositoryID), q, args, scanString)
}

// DeleteTag ends the lifetime of an alive, non-hidden tag.
func (db *DB) DeleteTag(ctx context.Context, repositoryID int64, name string) error {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		if err := db.advisoryLock(ctx, tx, retargetLockName(repositoryID)); err != nil {
			return err
		}
		nowMs := db.nowMs()
		t, err := scanTag(db.queryRow(ctx, tx, aliveTagQuery+` AND t.hidden = false`+aliveTagOrder, repositoryID, name, nowMs))
		if err != nil {
			return notFound(err, "alive tag")
		}
		return db.endTag(ctx, tx, t, nowMs)
	})
	if err != nil {
		return fmt.Errorf("delete tag %q in repository id %d: %w", name, repositoryID, err)
	}
	return nil
}
