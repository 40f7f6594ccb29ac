package diagnostics

import (
	"context"
	"fmt"
	"time"
)

// PlacementReport is where the database says blobs are stored, for
// geo-replication (fact database/placement.json).
type PlacementReport struct {
	// Locations are every imagestoragelocation row, by name, with the
	// blobs placed there (zero for a location nothing was replicated to).
	Locations []LocationPlacement `json:"locations"`
	// TotalBlobs and TotalBytes count imagestorage rows and the sum of
	// their image_size; UnplacedBlobs are rows with no placement at all.
	TotalBlobs    int64 `json:"total_blobs"`
	TotalBytes    int64 `json:"total_bytes"`
	UnplacedBlobs int64 `json:"unplaced_blobs"`
	// Sample are the newest blobs (at most the number asked for), newest
	// first, with the locations holding them, to compare with storage.
	Sample []BlobPlacement `json:"sample"`
	// ReplicationBacklog is the geo-replication queue when the
	// placements were read (replication.go), so the checks see the same
	// numbers as quayctl storage replication-status.
	ReplicationBacklog *ReplicationBacklog `json:"replication_backlog,omitempty"`
	// Replication is what quayctl storage replication-status shows
	// (Replication, for DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS as the fact's
	// producer read it): the geo-replication checks read their
	// per-location numbers here. Absent from older bundles.
	Replication *ReplicationStatus `json:"replication,omitempty"`
}

// LocationPlacement is one storage location's share.
type LocationPlacement struct {
	Name  string `json:"name"`
	Blobs int64  `json:"blobs"`
	Bytes int64  `json:"bytes"`
}

// BlobPlacement is one blob and where it is placed.
type BlobPlacement struct {
	// Digest is content_checksum ("sha256:…"); UUID the row's uuid, which
	// names the file of a blob stored outside the content-addressed
	// layout (CASPath false).
	Digest  string `json:"digest"`
	UUID    string `json:"uuid"`
	CASPath bool   `json:"cas_path"`
	// SizeBytes is image_size (absent when unknown).
	SizeBytes *int64 `json:"size_bytes,omitempty"`
	// Uploading is true while a push has not finished.
	Uploading bool `json:"uploading"`
	// Locations are the names of the locations holding it, sorted.
	Locations []string `json:"locations"`
}

// Placement counts blobs and bytes per storage location and samples the
// newest blobs with their locations.
func Placement(ctx context.Context, q Querier, sample int) (PlacementReport, error) {
	p := PlacementReport{Locations: []LocationPlacement{}, Sample: []BlobPlacement{}}
	rows, err := q.Query(ctx, `SELECT l.name, count(s.id), CAST(COALESCE(sum(s.image_size), 0) AS BIGINT)
		FROM imagestoragelocation l
		LEFT JOIN imagestorageplacement pl ON pl.location_id = l.id
		LEFT JOIN imagestorage s ON s.id = pl.storage_id
		GROUP BY l.id, l.name ORDER BY l.name`)
	if err != nil {
		return p, fmt.Errorf("count placements per location: %w", err)
	}
	for rows.Next() {
		var l LocationPlacement
		if err := rows.Scan(&l.Name, &l.Blobs, &l.Bytes); err != nil {
			rows.Close()
			return p, fmt.Errorf("count placements per location: %w", err)
		}
		p.Locations = append(p.Locations, l)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return p, fmt.Errorf("count placements per location: %w", err)
	}

	err = q.QueryRow(ctx, `SELECT count(*), CAST(COALESCE(sum(s.image_size), 0) AS BIGINT),
		count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM imagestorageplacement pl WHERE pl.storage_id = s.id))
		FROM imagestorage s`).Scan(&p.TotalBlobs, &p.TotalBytes, &p.UnplacedBlobs)
	if err != nil {
		return p, fmt.Errorf("count blobs: %w", err)
	}
	backlog, err := ReplicationQueue(ctx, q, time.Now())
	if err != nil {
		return p, err
	}
	p.ReplicationBacklog = &backlog

	if sample <= 0 {
		return p, nil
	}
	rows, err = q.Query(ctx, `SELECT COALESCE(s.content_checksum, ''), s.uuid, s.cas_path, s.image_size, COALESCE(s.uploading, false),
		COALESCE(`+sortedList(q, "l.name")+` FILTER (WHERE l.name IS NOT NULL), `+emptyList(q)+`)
		FROM (SELECT * FROM imagestorage ORDER BY id DESC LIMIT $1) s
		LEFT JOIN imagestorageplacement pl ON pl.storage_id = s.id
		LEFT JOIN imagestoragelocation l ON l.id = pl.location_id
		GROUP BY s.id, s.content_checksum, s.uuid, s.cas_path, s.image_size, s.uploading
		ORDER BY s.id DESC`, sample)
	if err != nil {
		return p, fmt.Errorf("sample blobs: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var b BlobPlacement
		if err := rows.Scan(&b.Digest, &b.UUID, &b.CASPath, &b.SizeBytes, &b.Uploading, &b.Locations); err != nil {
			return p, fmt.Errorf("sample blobs: %w", err)
		}
		p.Sample = append(p.Sample, b)
	}
	if err := rows.Err(); err != nil {
		return p, fmt.Errorf("sample blobs: %w", err)
	}
	return p, nil
}
