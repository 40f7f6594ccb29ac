package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/quayctl/quayctl/dbtools/diagnostics/diagtest"
)

func TestStorageReplicationStatusFlags(t *testing.T) {
	clear := func(o *StorageReplicationStatusOptions) { o.IO, o.Deployment, o.Now = nil, nil, nil }
	tkFlagTable(t, []string{"storage"}, NewCmdStorageReplicationStatus, clear, []tkFlagCase[StorageReplicationStatusOptions]{
		{name: "defaults", args: []string{"storage", "replication-status"}, want: StorageReplicationStatusOptions{Output: "table"}},
		{name: "db, required, json", args: []string{"storage", "replication-status", "--db", "postgresql://u@h/q", "--required", "us, eu", "-o", "json"},
			want: StorageReplicationStatusOptions{Target: TargetOptions{Kind: TargetDirect, DBURI: "postgresql://u@h/q"}, Required: []string{"us", "eu"}, Output: "json"}},
		{name: "podman yaml", args: []string{"storage", "replication-status", "--podman", "-o", "yaml"},
			want: StorageReplicationStatusOptions{Target: TargetOptions{Kind: TargetPodman}, Output: "yaml"}},
		{name: "empty required", args: []string{"storage", "replication-status", "--required", ","}, wantErr: "--required is empty: name the locations every blob must reach, such as us,eu"},
		{name: "bad required", args: []string{"storage", "replication-status", "--required", "us,a/b"}, wantErr: `--required "us,a/b": "a/b" is not a location name of DISTRIBUTED_STORAGE_CONFIG`},
		{name: "bad output", args: []string{"storage", "replication-status", "-o", "xml"}, wantErr: `--output "xml" is not one of table, json, yaml`},
		{name: "an argument", args: []string{"storage", "replication-status", "us"}, wantErr: "quayctl storage replication-status takes 0 argument(s): no arguments"},
	})
}

var replicationDBRE = regexp.MustCompile(`(postgres(ql)?|sqlite)://[^\s"]+`)

// TestStorageReplicationStatusRun reads the seeded placements (usstorage
// holds three blobs, eustorage one) and a replication queue from a real
// PostgreSQL in Quay's schema; the required locations come from the flag,
// the config, or the placements.
func TestStorageReplicationStatusRun(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL")
	}
	// The same rows in PostgreSQL and in SQLite (quayctl serve's default
	// database): the same output, the same goldens.
	for _, db := range diagtest.SeededDatabases(t) {
		t.Run(db.Dialect, func(t *testing.T) { testStorageReplicationStatusRun(t, db) })
	}
}

func testStorageReplicationStatusRun(t *testing.T, db *diagtest.Database) {
	uri := db.URI
	db.Exec(t, `INSERT INTO queueitem (queue_name, body, available_after, available, processing_expires, retries_remaining, state_id) VALUES
		('imagestoragereplication/u1/', '{"storage_id": "u1", "quayctl_attempts": 3, "quayctl_queued_at": "2026-03-01T09:30:00Z"}', '2026-03-01 12:05:00', true, NULL, 5, 's1'),
		('imagestoragereplication/u2/', '{"storage_id": "u2", "quayctl_queued_at": "2026-03-01T11:58:00Z"}', '2026-03-01 11:58:00', false, '2026-03-01 12:30:00', 4, 's2')`)
	dir := t.TempDir()
	config := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(config, []byte(fmt.Sprintf("DB_URI: %s\nFEATURE_STORAGE_REPLICATION: true\nDISTRIBUTED_STORAGE_DEFAULT_LOCATIONS: [usstorage, eustorage]\n", uri)), 0o600); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name, golden string
		args         []string
		want         []string
	}{
		{"flag", "storage_replication_status.txt.golden", []string{"--db", uri, "--required", "usstorage,eustorage,apstorage"},
			[]string{"apstorage\tyes\t0\t0 B\t3\t1.2 KiB", "from --required", "2 queued, 1 in progress, 1 retrying", "2h30m0s ago", "older than an hour"}},
		{"config", "storage_replication_status_config.json.golden", []string{"--config", config, "-o", "json"},
			[]string{`"required_from": "config"`, `"replication": true`, `"oldest_age_seconds": 9000`}},
		{"placements", "storage_replication_status_placements.yaml.golden", []string{"--db", uri, "-o", "yaml"},
			[]string{"required_from: placements", "required:\n  - eustorage\n  - usstorage"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			io, out, errOut := tkIO("", false)
			f := tkFactory(io, nil)
			cmd := NewCmdStorageReplicationStatus(f, func(o *StorageReplicationStatusOptions) error {
				o.Now = func() time.Time { return now }
				return storageReplicationStatusRun(context.Background(), o)
			})
			code := execute(context.Background(), tkWithCmd(t, f, cmd, "storage"), append([]string{"storage", "replication-status"}, tt.args...), io.ErrOut)
			if code != ExitOK {
				t.Fatalf("exit %d: %s", code, errOut.String())
			}
			got := replicationDBRE.ReplaceAllString(out.String(), "$$DB")
			got = strings.ReplaceAll(got, config, "$CONFIG")
			golden(t, tt.golden, got)
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("no %q in:\n%s", w, got)
				}
			}
			if strings.Contains(got, diagtest.Secret) {
				t.Errorf("a secret in the output:\n%s", got)
			}
		})
	}
}
