package gather_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/quayctl/quayctl/dbtools/diagnostics"
	"github.com/quayctl/quayctl/dbtools/diagnostics/diagtest"
	"github.com/quayctl/quayctl/diag"
	"github.com/quayctl/quayctl/diag/checks"
)

// TestReplicationSameNumbers: the geo-replication placement check of
// diagnose shows, per location, the numbers quayctl storage
// replication-status shows (diagnostics.Replication, which the command
// calls) for the same database — on PostgreSQL and on SQLite, whose
// facts are read from the file.
func TestReplicationSameNumbers(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL")
	}
	required := []string{"usstorage", "eustorage", "apstorage"}
	for _, db := range diagtest.SeededDatabases(t) {
		t.Run(db.Dialect, func(t *testing.T) {
			ctx := context.Background()
			// One item in the queue, so that the backlog is compared too.
			db.Exec(t, `INSERT INTO queueitem (queue_name, body, available_after, available, processing_expires, retries_remaining, state_id)
				VALUES ('imagestoragereplication/u1/', '{"storage_id": "u1"}', $1, true, NULL, 5, 's1')`, time.Now().Add(-2*time.Hour))
			dir := t.TempDir()
			g := storageDirect(t, "FEATURE_STORAGE_REPLICATION: true\nDB_URI: "+db.URI+"\n"+
				localConfig(map[string]string{"usstorage": dir, "eustorage": dir, "apstorage": dir})+
				"DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS: ["+strings.Join(required, ", ")+"]\n")

			cmd, err := diagnostics.Replication(ctx, db.Q, required, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if len(cmd.Locations) != 3 || cmd.PlacedBlobs != 3 {
				t.Fatalf("the command's numbers: %+v", cmd)
			}

			// The fact carries the command's numbers…
			pl, err := diag.GetJSON[diagnostics.PlacementReport](ctx, g, diag.FactDBPlacement)
			if err != nil {
				t.Fatal(err)
			}
			if pl.Replication == nil {
				t.Fatal("database/placement.json has no replication numbers")
			}
			got, want := *pl.Replication, cmd
			got.Backlog.OldestAgeSeconds, want.Backlog.OldestAgeSeconds = 0, 0 // read moments apart
			if gj, wj := js(t, got), js(t, want); gj != wj {
				t.Errorf("fact\n%s\ncommand\n%s", gj, wj)
			}
			if pl.ReplicationBacklog == nil || js(t, *pl.ReplicationBacklog) != js(t, pl.Replication.Backlog) || pl.Replication.Backlog.Queued != 1 {
				t.Errorf("backlog %+v, replication's %+v", pl.ReplicationBacklog, pl.Replication.Backlog)
			}

			// …and the check shows them, location by location.
			fs := storageFindings(t, g, checks.AreaReplication)
			for _, l := range cmd.Locations {
				f, ok := findingOf(fs, "geo-replication.placement", l.Name)
				line := checks.ReplicationEvidence(l.Name, l.Blobs, l.Bytes, l.MissingBlobs, l.MissingBytes)
				if !ok || len(f.Evidence) == 0 || f.Evidence[0] != line {
					t.Errorf("%s: finding %+v, want evidence %q", l.Name, f, line)
				}
				if l.MissingBlobs > 0 && (f.Severity != diag.Warn || !strings.Contains(f.Title, fmt.Sprintf("lacks %d of %d blobs", l.MissingBlobs, cmd.PlacedBlobs))) {
					t.Errorf("%s: %s %q", l.Name, f.Severity, f.Title)
				}
			}
			if f, ok := findingOf(fs, "geo-replication.backlog", ""); !ok || !strings.Contains(evidenceOf(f), "queued: 1 ") {
				t.Errorf("backlog finding %+v", f)
			}
		})
	}
}

// TestDatabaseFactsSQLite: on a SQLite DB_URI the facts that read only
// Quay's tables come from the file; the PostgreSQL ones do not apply.
func TestDatabaseFactsSQLite(t *testing.T) {
	ctx := context.Background()
	db := diagtest.SeededSQLiteDatabase(t)
	g := storageDirect(t, "DB_URI: "+db.URI+"\nSUPER_USERS: [quayadmin]\n")
	ms, err := diag.GetJSON[[]diagnostics.Mirror](ctx, g, diag.FactDBMirrors)
	if err != nil || len(ms) != 2 || ms[0].Repository != "acme/mirrored" || ms[0].SyncStatus != "FAIL" {
		t.Errorf("mirrors %+v, %v", ms, err)
	}
	us, err := diag.GetJSON[diagnostics.UsersReport](ctx, g, diag.FactDBUsers)
	if err != nil || len(us.SuperUsers) != 1 || !us.SuperUsers[0].Exists {
		t.Errorf("users %+v, %v", us, err)
	}
	for _, name := range []string{diag.FactDBActivity, diag.FactDBLocks, diag.FactDBServer} {
		if _, err := g.Get(ctx, name); err == nil || !strings.Contains(err.Error(), "SQLite") {
			t.Errorf("%s on SQLite: %v", name, err)
		}
	}

	// A SQLite file that is not on this machine (inside the registry's
	// container): not applicable, and says so.
	g = storageDirect(t, "DB_URI: sqlite:////datastorage/nowhere/quay.db\n")
	_, err = g.Get(ctx, diag.FactDBMirrors)
	if err == nil || !strings.Contains(err.Error(), "not on this machine") {
		t.Errorf("a missing file: %v", err)
	}
}

func js(t *testing.T, v any) string {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func evidenceOf(f diag.Finding) string { return strings.Join(f.Evidence, "\n") }
