package diagnostics

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
)

// ReplicationQueuePrefix is the queue_name prefix of Quay's geo-replication
// queue (image_replication_queue): "imagestoragereplication/<uuid>/".
const ReplicationQueuePrefix = "imagestoragereplication/"

// ReplicationBacklog is the geo-replication queue: items waiting and the
// oldest one's age.
type ReplicationBacklog struct {
	// Queued counts queue items of any state; InProgress those a worker
	// holds under an unexpired lease; Retrying those that failed at least
	// once (quayctl serve records attempts) and wait for their next try.
	Queued     int64 `json:"queued"`
	InProgress int64 `json:"in_progress"`
	Retrying   int64 `json:"retrying"`
	// OldestQueuedAt is when the oldest item was queued (quayctl serve
	// records it; for Quay's items, when it is next available); absent
	// when nothing is queued.
	OldestQueuedAt *time.Time `json:"oldest_queued_at,omitempty"`
	// OldestAgeSeconds is now minus OldestQueuedAt.
	OldestAgeSeconds int64 `json:"oldest_age_seconds"`
}

// ReplicationLocation is one location's share of the placed blobs.
type ReplicationLocation struct {
	Name string `json:"name"`
	// Required is true for a DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS entry.
	Required bool  `json:"required"`
	Blobs    int64 `json:"blobs"`
	Bytes    int64 `json:"bytes"`
	// MissingBlobs and MissingBytes are the placed blobs (held somewhere)
	// this location lacks.
	MissingBlobs int64 `json:"missing_blobs"`
	MissingBytes int64 `json:"missing_bytes"`
}

// ReplicationStatus is what `quayctl storage replication-status` shows.
type ReplicationStatus struct {
	Locations []ReplicationLocation `json:"locations"`
	// PlacedBlobs and PlacedBytes are the blobs held in at least one
	// location: what every required location should hold.
	PlacedBlobs int64              `json:"placed_blobs"`
	PlacedBytes int64              `json:"placed_bytes"`
	Backlog     ReplicationBacklog `json:"backlog"`
}

// Replication counts, per location (every required name and every
// imagestoragelocation row holding a blob), the placed blobs it holds and
// lacks, and reads the replication queue's backlog as of now.
func Replication(ctx context.Context, q Querier, required []string, now time.Time) (ReplicationStatus, error) {
	st := ReplicationStatus{Locations: []ReplicationLocation{}}
	err := q.QueryRow(ctx, `SELECT count(*), CAST(COALESCE(sum(s.image_size), 0) AS BIGINT) FROM imagestorage s
		WHERE EXISTS (SELECT 1 FROM imagestorageplacement pl WHERE pl.storage_id = s.id)`).Scan(&st.PlacedBlobs, &st.PlacedBytes)
	if err != nil {
		return st, fmt.Errorf("count placed blobs: %w", err)
	}
	// One row per location: what it holds; what it lacks is the placed
	// total minus that (a placement implies the blob is placed).
	rows, err := q.Query(ctx, `SELECT n.name, count(s.id), CAST(COALESCE(sum(s.image_size), 0) AS BIGINT)
		FROM (SELECT name FROM imagestoragelocation UNION `+textSet(q, 1)+`) n
		LEFT JOIN imagestoragelocation l ON l.name = n.name
		LEFT JOIN imagestorageplacement pl ON pl.location_id = l.id
		LEFT JOIN imagestorage s ON s.id = pl.storage_id
		GROUP BY n.name ORDER BY n.name`, nonNil(required))
	if err != nil {
		return st, fmt.Errorf("count blobs per location: %w", err)
	}
	for rows.Next() {
		var l ReplicationLocation
		if err := rows.Scan(&l.Name, &l.Blobs, &l.Bytes); err != nil {
			rows.Close()
			return st, fmt.Errorf("count blobs per location: %w", err)
		}
		l.Required = slices.Contains(required, l.Name)
		if !l.Required && l.Blobs == 0 {
			continue // Quay seeds many location rows nothing uses
		}
		l.MissingBlobs, l.MissingBytes = max(st.PlacedBlobs-l.Blobs, 0), max(st.PlacedBytes-l.Bytes, 0)
		st.Locations = append(st.Locations, l)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return st, fmt.Errorf("count blobs per location: %w", err)
	}
	st.Backlog, err = ReplicationQueue(ctx, q, now)
	return st, err
}

// ReplicationQueue reads the geo-replication queue's backlog as of now.
func ReplicationQueue(ctx context.Context, q Querier, now time.Time) (ReplicationBacklog, error) {
	var b ReplicationBacklog
	err := q.QueryRow(ctx, `SELECT count(*),
		count(*) FILTER (WHERE NOT available AND processing_expires > $2),
		count(*) FILTER (WHERE body LIKE '%"quayctl_attempts"%')
		FROM queueitem WHERE queue_name LIKE $1`, ReplicationQueuePrefix+"%", now.UTC()).Scan(&b.Queued, &b.InProgress, &b.Retrying)
	if err != nil {
		return b, fmt.Errorf("read the replication queue: %w", err)
	}
	if b.Queued == 0 {
		return b, nil
	}
	// The lowest id is the oldest item; its body tells when quayctl serve
	// queued it (available_after moves on at every retry).
	var (
		body  string
		after time.Time
	)
	err = q.QueryRow(ctx, `SELECT body, available_after FROM queueitem WHERE queue_name LIKE $1 ORDER BY id LIMIT 1`,
		ReplicationQueuePrefix+"%").Scan(&body, &after)
	if errors.Is(err, pgx.ErrNoRows) {
		return b, nil
	}
	if err != nil {
		return b, fmt.Errorf("read the replication queue: %w", err)
	}
	var v struct {
		QueuedAt string `json:"quayctl_queued_at"`
	}
	at := after.UTC()
	if json.Unmarshal([]byte(body), &v) == nil {
		if t, err := time.Parse(time.RFC3339Nano, v.QueuedAt); err == nil {
			at = t.UTC()
		}
	}
	b.OldestQueuedAt = &at
	b.OldestAgeSeconds = max(int64(now.Sub(at)/time.Second), 0)
	return b, nil
}
