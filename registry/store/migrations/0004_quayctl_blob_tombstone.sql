-- quayctl migration 4: blobs garbage collection removed from the database
-- and whose stored object is (about to be) deleted. A row is written in the
-- same transaction that deletes the last imagestorage row of a digest, under
-- the digest's lock; the object is deleted later under that lock again, and
-- LinkBlob checks this table under the same lock, so a push that finds the
-- object in storage just before it goes never links a blob whose bytes are
-- gone (see docs/garbage-collection.md). Our own table, hence the prefix.

CREATE TABLE IF NOT EXISTS quayctl_blob_tombstone (
	digest VARCHAR(255) NOT NULL,
	image_size BIGINT NOT NULL,
	locations TEXT NOT NULL,
	created_ms BIGINT NOT NULL,
	storage_deleted_ms BIGINT,
	CONSTRAINT pk_quayctl_blob_tombstone PRIMARY KEY (digest)
);
CREATE INDEX IF NOT EXISTS quayctl_blob_tombstone_storage_deleted_ms ON quayctl_blob_tombstone (storage_deleted_ms);
