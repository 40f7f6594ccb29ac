package store

import (
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
)

const blobColumns = `s.id, s.uuid, s.content_checksum, s.image_size, s.uploading`

func scanBlob(row interface{ Scan(...any) error }) (*Blob, error) {
	var (
		b         Blob
		size      sql.NullInt64
		uploading sql.NullBool
	)
	if err := row.Scan(&b.ID, &b.UUID, &b.Digest, &size, &uploading); err != nil {
		return nil, err
	}
	b.Size, b.Uploading = size.Int64, uploading.Bool
	return &b, nil
}

// BlobByDigest finds the stored blob with that digest (the oldest row, if a
// database Quay wrote holds several).
func (db *DB) BlobByDigest(ctx context.Context, digest string) (*Blob, error) {
	b, err := scanBlob(db.queryRow(ctx, db.r, `SELECT `+blobColumns+` FROM imagestorage s
		WHERE s.content_checksum = ? AND (s.uploading = false OR s.uploading IS NULL)
		ORDER BY s.id LIMIT 1`, digest))
	if err != nil {
		return nil, notFound(err, "blob "+digest)
	}
	return b, nil
}

// repositoryBlobQuery is the one definition of "blob linked to repository".
const repositoryBlobQuery = `SELECT ` + blobColumns + ` FROM imagestorage s
	WHERE s.content_checksum = ?
	AND (EXISTS (SELECT 1 FROM manifestblob mb WHERE mb.repository_id = ? AND mb.blob_id = s.id)
		OR EXISTS (SELECT 1 FROM uploadedblob ub WHERE ub.repository_id = ? AND ub.blob_id = s.id AND ub.expires_at > ?))
	ORDER BY s.id LIMIT 1`

func (db *DB) repositoryBlob(ctx context.Context, q queryer, repositoryID int64, digest string) (*Blob, error) {
	return scanBlob(db.queryRow(ctx, q, repositoryBlobQuery, digest, repositoryID, repositoryID, db.d.ts(db.now())))
}

// RepositoryBlob finds a blob referenced by one of the repository's
// manifests or uploaded to it and not yet expired.
func (db *DB) RepositoryBlob(ctx context.Context, repositoryID int64, digest string) (*Blob, error) {
	b, err := db.repositoryBlob(ctx, db.r, repositoryID, digest)
	if err != nil {
		return nil, notFound(err, fmt.Sprintf("blob %s in repository id %d", digest, repositoryID))
	}
	return b, nil
}

// LinkBlob records a stored blob and links it to the repository until
// now+ttl. Quay keeps no unique index on imagestorage.content_checksum, so
// "one row per digest" is kept by serialising on the digest: an advisory
// lock on PostgreSQL, the single writer on SQLite.
func (db *DB) LinkBlob(ctx context.Context, repositoryID int64, digest string, size int64, location string, ttl time.Duration) (*Blob, error) {
	var blob *Blob
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		if err := db.advisoryLock(ctx, tx, "imagestorage:"+digest); err != nil {
			return err
		}
		if err := db.checkTombstone(ctx, tx, location, digest); err != nil {
			return err
		}
		b, err := scanBlob(db.queryRow(ctx, tx, `SELECT `+blobColumns+` FROM imagestorage s
			WHERE s.content_checksum = ? ORDER BY s.id LIMIT 1`, digest))
		switch {
		case errors.Is(err, sql.ErrNoRows):
			b = &Blob{UUID: uuid.NewString(), Digest: digest, Size: size}
			if err := db.queryRow(ctx, tx, `INSERT INTO imagestorage (uuid, image_size, uploading, cas_path, content_checksum)
				VALUES (?, ?, false, true, ?) RETURNING id`, b.UUID, size, digest).Scan(&b.ID); err != nil {
				return fmt.Errorf("insert imagestorage: %w", err)
			}
		case err != nil:
			return err
		case b.Uploading || b.Size != size:
			// A row left by an interrupted upload, or with a size unknown
			// until now: this write is the complete blob.
			if _, err := db.exec(ctx, tx, `UPDATE imagestorage SET image_size = ?, uploading = false WHERE id = ?`, size, b.ID); err != nil {
				return fmt.Errorf("update imagestorage: %w", err)
			}
			b.Size, b.Uploading = size, false
		}
		locID, err := db.locationID(ctx, tx, location)
		if err != nil {
			return err
		}
		if _, err := db.exec(ctx, tx, `INSERT INTO imagestorageplacement (storage_id, location_id) VALUES (?, ?)
			ON CONFLICT (storage_id, location_id) DO NOTHING`, b.ID, locID); err != nil {
			return fmt.Errorf("insert imagestorageplacement: %w", err)
		}
		now := db.now()
		if _, err := db.exec(ctx, tx, `INSERT INTO uploadedblob (repository_id, blob_id, uploaded_at, expires_at)
			VALUES (?, ?, ?, ?)`, repositoryID, b.ID, db.d.ts(now), db.d.ts(now.Add(ttl))); err != nil {
			return fmt.Errorf("insert uploadedblob: %w", err)
		}
		blob = b
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("link blob %s to repository id %d: %w", digest, repositoryID, err)
	}
	return blob, nil
}

// locationID returns the id of a storage location, creating the row when
// missing: Quay adds one row per DISTRIBUTED_STORAGE_CONFIG key at boot.
func (db *DB) locationID(ctx context.Context, q queryer, name string) (int64, error) {
	if name == "" {
		return 0, errors.New("storage location name is empty")
	}
	if _, err := db.exec(ctx, q, `INSERT INTO imagestoragelocation (name) VALUES (?) ON CONFLICT (name) DO NOTHING`, name); err != nil {
		return 0, fmt.Errorf("insert imagestoragelocation %q: %w", name, err)
	}
	var id int64
	if err := db.queryRow(ctx, q, `SELECT id FROM imagestoragelocation WHERE name = ?`, name).Scan(&id); err != nil {
		return 0, fmt.Errorf("storage location %q: %w", name, err)
	}
	return id, nil
}

// UnlinkBlob removes the repository's uploadedblob rows for the blob.
func (db *DB) UnlinkBlob(ctx context.Context, repositoryID, blobID int64) error {
	if _, err := db.exec(ctx, db.w, `DELETE FROM uploadedblob WHERE repository_id = ? AND blob_id = ?`, repositoryID, blobID); err != nil {
		return fmt.Errorf("unlink blob id %d from repository id %d: %w", blobID, repositoryID, err)
	}
	return nil
}

// BlobRepositories lists up to limit repositories (limit <= 0: all) the blob
// is linked to, as RepositoryBlob defines it, oldest first. Callers use it to
// mount a blob when the client named no source, and must still check that
// the user may read the repository.
func (db *DB) BlobRepositories(ctx context.Context, blobID int64, limit int) ([]Repository, error) {
	q := repoSelect + ` WHERE r.state <> ?
		AND (EXISTS (SELECT 1 FROM manifestblob mb WHERE mb.repository_id = r.id AND mb.blob_id = ?)
			OR EXISTS (SELECT 1 FROM uploadedblob ub WHERE ub.repository_id = r.id AND ub.blob_id = ? AND ub.expires_at > ?))
		ORDER BY r.id`
	args := []any{RepoStateMarkedForDeletion, blobID, blobID, db.d.ts(db.now())}
	if limit > 0 {
		q += ` LIMIT ?`
		args = append(args, limit)
	}
	return queryAll(ctx, db, fmt.Sprintf("repositories of blob id %d", blobID), q, args, func(rows *sql.Rows) (Repository, error) {
		r, err := scanRepo(rows)
		if err != nil {
			return Repository{}, err
		}
		return *r, nil
	})
}

// BlobLocations lists the names of the locations holding the blob.
func (db *DB) BlobLocations(ctx context.Context, blobID int64) ([]string, error) {
	return queryAll(ctx, db, fmt.Sprintf("locations of blob id %d", blobID), `SELECT l.name FROM imagestorageplacement p
		JOIN imagestoragelocation l ON l.id = p.location_id
		WHERE p.storage_id = ? ORDER BY l.name`, []any{blobID}, scanString)
}

// Uploads -------------------------------------------------------------------

// sha_state is TEXT; our hash state is binary, so it is stored as base64
// (Quay stores base64 too, of a Python pickle that we cannot read).
func encodeState(b []byte) sql.NullString {
	if b == nil {
		return sql.NullString{}
	}
	return sql.NullString{String: base64.StdEncoding.EncodeToString(b), Valid: true}
}

func decodeState(s sql.NullString) ([]byte, error) {
	if !s.Valid {
		return nil, nil
	}
	b, err := base64.StdEncoding.DecodeString(s.String)
	if err != nil {
		return nil, fmt.Errorf("sha_state is not base64: %w", err)
	}
	return b, nil
}

// CreateUpload inserts a blobupload row; it fills in ID, Created and, when
// empty, UUID.
func (db *DB) CreateUpload(ctx context.Context, u *Upload) error {
	if u.UUID == "" {
		u.UUID = uuid.NewString()
	}
	now := db.now().UTC()
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		locID, err := db.locationID(ctx, tx, u.Location)
		if err != nil {
			return err
		}
		return db.queryRow(ctx, tx, `INSERT INTO blobupload (repository_id, uuid, byte_count, sha_state, location_id,
			storage_metadata, chunk_count, created)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			u.RepositoryID, u.UUID, u.ByteCount, encodeState(u.ShaState), locID,
			nullString(u.StorageMetadata), u.ChunkCount, db.d.ts(now)).Scan(&u.ID)
	})
	if err != nil {
		if isUniqueViolation(err) {
			err = ErrExists
		}
		return fmt.Errorf("create upload %s: %w", u.UUID, err)
	}
	u.Created = now
	return nil
}

// Upload finds an upload session of the repository.
func (db *DB) Upload(ctx context.Context, repositoryID int64, id string) (*Upload, error) {
	var (
		u        Upload
		state    sql.NullString
		metadata sql.NullString
		created  nullTime
	)
	err := db.queryRow(ctx, db.r, `SELECT b.id, b.repository_id, b.uuid, b.byte_count, b.sha_state, b.chunk_count,
		l.name, b.storage_metadata, b.created
		FROM blobupload b JOIN imagestoragelocation l ON l.id = b.location_id
		WHERE b.repository_id = ? AND b.uuid = ?`, repositoryID, id).
		Scan(&u.ID, &u.RepositoryID, &u.UUID, &u.ByteCount, &state, &u.ChunkCount, &u.Location, &metadata, &created)
	if err != nil {
		return nil, notFound(err, "upload "+id)
	}
	if u.ShaState, err = decodeState(state); err != nil {
		return nil, fmt.Errorf("upload %s: %w", id, err)
	}
	u.StorageMetadata, u.Created = metadata.String, created.Time
	return &u, nil
}

// UpdateUpload saves the progress of an upload session (found by UUID).
func (db *DB) UpdateUpload(ctx context.Context, u *Upload) error {
	res, err := db.exec(ctx, db.w, `UPDATE blobupload SET byte_count = ?, sha_state = ?, chunk_count = ?, storage_metadata = ?
		WHERE uuid = ?`, u.ByteCount, encodeState(u.ShaState), u.ChunkCount, nullString(u.StorageMetadata), u.UUID)
	if err != nil {
		return fmt.Errorf("update upload %s: %w", u.UUID, err)
	}
	return checkAffected(res, "update upload "+u.UUID)
}

// DeleteUpload removes an upload session; ErrNotFound if there is none.
func (db *DB) DeleteUpload(ctx context.Context, id string) error {
	res, err := db.exec(ctx, db.w, `DELETE FROM blobupload WHERE uuid = ?`, id)
	if err != nil {
		return fmt.Errorf("delete upload %s: %w", id, err)
	}
	return checkAffected(res, "delete upload "+id)
}
