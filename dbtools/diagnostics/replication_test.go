package diagnostics_test

import (
	"testing"
	"time"

	"github.com/quayctl/quayctl/dbtools/diagnostics"
	"github.com/quayctl/quayctl/dbtools/diagnostics/diagtest"
)

// TestReplication: the seeded blobs (three placed in usstorage, one of them
// also in eustorage) against required locations, and a queue of three items
// (one Quay's, one retried by quayctl serve, one leased).
func TestReplication(t *testing.T) {
	for _, db := range diagtest.SeededDatabases(t) {
		t.Run(db.Dialect, func(t *testing.T) { testReplication(t, db) })
	}
}

func testReplication(t *testing.T, db *diagtest.Database) {
	ctx := ctxT(t)
	conn := db.Q
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

	st, err := diagnostics.Replication(ctx, conn, []string{"usstorage", "eustorage", "apstorage"}, now)
	if err != nil {
		t.Fatal(err)
	}
	if st.PlacedBlobs != 3 || st.PlacedBytes != 1230 {
		t.Errorf("placed %d blobs, %d bytes; want 3, 1230", st.PlacedBlobs, st.PlacedBytes)
	}
	want := map[string]diagnostics.ReplicationLocation{
		"apstorage": {Name: "apstorage", Required: true, MissingBlobs: 3, MissingBytes: 1230},
		"eustorage": {Name: "eustorage", Required: true, Blobs: 1, Bytes: 1000, MissingBlobs: 2, MissingBytes: 230},
		"usstorage": {Name: "usstorage", Required: true, Blobs: 3, Bytes: 1230},
	}
	for _, l := range st.Locations {
		// Unused, unrequired locations (Quay seeds "local") are left out.
		if w := want[l.Name]; l != w {
			t.Errorf("location %s = %+v, want %+v", l.Name, l, w)
		}
		delete(want, l.Name)
	}
	if len(want) != 0 {
		t.Errorf("locations missing from the report: %v", want)
	}
	if st.Backlog.Queued != 0 || st.Backlog.OldestQueuedAt != nil {
		t.Errorf("empty queue reported as %+v", st.Backlog)
	}

	db.Exec(t, `INSERT INTO queueitem (queue_name, body, available_after, available, processing_expires, retries_remaining, state_id) VALUES
		('imagestoragereplication/u1/', '{"namespace_user_id": 1, "storage_id": "u1"}', '2026-03-01 10:00:00', true, NULL, 5, 's1'),
		('imagestoragereplication/u2/', '{"storage_id": "u2", "quayctl_attempts": 2, "quayctl_queued_at": "2026-03-01T09:00:00Z"}', '2026-03-01 12:05:00', true, NULL, 5, 's2'),
		('imagestoragereplication/u3/', '{"storage_id": "u3"}', '2026-03-01 11:59:00', false, '2026-03-01 12:10:00', 4, 's3'),
		('repositorygc/9/', '{}', '2026-01-01 00:00:00', true, NULL, 5, 's4')`)
	b, err := diagnostics.ReplicationQueue(ctx, conn, now)
	if err != nil {
		t.Fatal(err)
	}
	// The oldest item is the first queued (lowest id): Quay's, available
	// since 10:00.
	if b.Queued != 3 || b.InProgress != 1 || b.Retrying != 1 || b.OldestQueuedAt == nil ||
		!b.OldestQueuedAt.Equal(time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)) || b.OldestAgeSeconds != 7200 {
		t.Errorf("backlog %+v", b)
	}
	db.Exec(t, `DELETE FROM queueitem WHERE state_id = 's1'`)
	b, _ = diagnostics.ReplicationQueue(ctx, conn, now)
	// Now quayctl serve's retried item is oldest: its queued_at counts,
	// not its next try.
	if b.OldestAgeSeconds != 3*3600 {
		t.Errorf("age of a retried item = %d s, want 10800 (%+v)", b.OldestAgeSeconds, b)
	}
	p, err := diagnostics.Placement(ctx, conn, 0)
	if err != nil || p.ReplicationBacklog == nil || p.ReplicationBacklog.Queued != 2 {
		t.Errorf("Placement's backlog = %+v, %v", p.ReplicationBacklog, err)
	}
}
