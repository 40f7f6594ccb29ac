package checks

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/quayctl/quayctl/diag"
)

func TestReplicationPlacementCheck(t *testing.T) {
	const on = `
FEATURE_STORAGE_REPLICATION: true
DISTRIBUTED_STORAGE_CONFIG:
  us: [S3Storage, {s3_bucket: a}]
  eu: [S3Storage, {s3_bucket: b}]
  ap: [S3Storage, {s3_bucket: c}]
DISTRIBUTED_STORAGE_PREFERENCE: [us]
DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS: [us, eu]
`
	placement := func(us, eu, ap, gone int) []byte {
		return []byte(`{"locations":[` +
			`{"name":"ap","blobs":` + strconv.Itoa(ap) + `,"bytes":2048},` +
			`{"name":"eu","blobs":` + strconv.Itoa(eu) + `,"bytes":3145728},` +
			`{"name":"local","blobs":` + strconv.Itoa(gone) + `,"bytes":10},` +
			`{"name":"us","blobs":` + strconv.Itoa(us) + `,"bytes":5368709120}],` +
			`"total_blobs":12,"total_bytes":5368709120,"unplaced_blobs":2,"sample":[]}`)
	}
	tests := []struct {
		name     string
		facts    diag.MapFacts
		want     []want
		evidence string
	}{
		{name: "not enabled", facts: diag.MapFacts{diag.FactConfig: []byte("FEATURE_STORAGE_REPLICATION: false")},
			want: []want{{diag.Info, "geo-replication.placement", "geo-replication is not enabled"}}},
		{name: "caught up", facts: diag.MapFacts{diag.FactConfig: []byte(on), diag.FactDBPlacement: placement(10, 10, 1, 0)},
			want: []want{
				{diag.OK, "", "ap holds 1 blobs (2.0 KiB); it is not a default location"},
				{diag.OK, "", "eu holds all 10 placed blobs (3.0 MiB)"},
				{diag.OK, "", "us holds all 10 placed blobs (5.0 GiB)"}},
			evidence: "ap: 1 blobs, 2.0 KiB"},
		{name: "backlog in a default location", facts: diag.MapFacts{diag.FactConfig: []byte(on), diag.FactDBPlacement: placement(10, 7, 0, 0)},
			want: []want{
				{diag.OK, "", "ap holds 0 blobs"},
				{diag.Warn, "", "eu lacks 3 of 10 blobs: replication to this default location is behind"},
				{diag.OK, "", "us holds all 10"}}},
		{name: "blobs in a location no longer configured", facts: diag.MapFacts{diag.FactConfig: []byte(on), diag.FactDBPlacement: placement(10, 10, 0, 4)},
			want: []want{
				{diag.OK, "", "ap"}, {diag.OK, "", "eu"}, {diag.OK, "", "us"},
				{diag.Warn, "", "the database places 4 blobs in local, which DISTRIBUTED_STORAGE_CONFIG does not configure"}}},
		{name: "no default locations", facts: diag.MapFacts{
			diag.FactConfig:      []byte("FEATURE_STORAGE_REPLICATION: 'true'\nDISTRIBUTED_STORAGE_CONFIG: {us: [S3Storage, {}]}\n"),
			diag.FactDBPlacement: []byte(`{"locations":[{"name":"us","blobs":1,"bytes":1}],"total_blobs":1,"total_bytes":1,"unplaced_blobs":0}`)},
			want: []want{{diag.OK, "", "us holds 1 blobs (1 B)"}, {diag.Info, "", "DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS is empty"}}},
		// quayctl storage replication-status's numbers (the fact's
		// "replication"), which the checks use when present.
		{name: "the command's numbers", facts: diag.MapFacts{diag.FactConfig: []byte(on), diag.FactDBPlacement: []byte(`{"locations":[],` +
			`"total_blobs":12,"total_bytes":9999,"unplaced_blobs":2,"replication":{"placed_blobs":10,"placed_bytes":4096,"locations":[` +
			`{"name":"eu","required":true,"blobs":7,"bytes":1024,"missing_blobs":3,"missing_bytes":3072},` +
			`{"name":"us","required":true,"blobs":10,"bytes":4096,"missing_blobs":0,"missing_bytes":0}]}}`)},
			want: []want{
				{diag.OK, "", "ap holds 0 blobs (0 B); it is not a default location"},
				{diag.Warn, "", "eu lacks 3 of 10 blobs (3.0 KiB): replication to this default location is behind"},
				{diag.OK, "", "us holds all 10 placed blobs (4.0 KiB)"}},
			evidence: "ap: 0 blobs, 0 bytes (0 B); missing 10 blobs, 4096 bytes (4.0 KiB)\nall locations: 10 blobs placed, 4.0 KiB (12 rows in imagestorage, 2 without a placement)"},
		{name: "database unreachable", facts: diag.MapFacts{diag.FactConfig: []byte(on), diag.FactDBPlacement + ".error": []byte("no database connection: connection refused")},
			want: []want{{diag.Warn, "", "could not gather database/placement.json"}}},
		{name: "sqlite", facts: diag.MapFacts{diag.FactConfig: []byte(on), diag.FactDBPlacement + ".error": []byte("the database is SQLite: not applicable to this deployment")},
			want: []want{{diag.Info, "", "skipped: database/placement.json"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := runCheck(t, replicationChecks[0], tt.facts, tt.want...)
			if tt.evidence != "" && !strings.Contains(evidence(fs[0]), tt.evidence) {
				t.Errorf("evidence %q lacks %q", evidence(fs[0]), tt.evidence)
			}
		})
	}
}

func TestReplicationSampleCheck(t *testing.T) {
	const on = "FEATURE_STORAGE_REPLICATION: true\nDISTRIBUTED_STORAGE_CONFIG: {us: [S3Storage, {}], eu: [S3Storage, {}]}\n"
	sample := func(loc string, checked int, missing ...string) []byte {
		return storageTestJSON(t, diag.StorageSample{Location: loc, Checked: checked, Missing: missing, When: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)})
	}
	var many []string
	for i := 0; i < 12; i++ {
		many = append(many, "sha256:"+strings.Repeat(string(rune('a'+i)), 64))
	}
	locs := storageTestJSON(t, []string{"eu", "us"})
	tests := []struct {
		name     string
		facts    diag.MapFacts
		want     []want
		evidence string
	}{
		{name: "not enabled: the placement check says so", facts: diag.MapFacts{diag.FactConfig: []byte("SERVER_HOSTNAME: q")}},
		{name: "all present", facts: diag.MapFacts{diag.FactConfig: []byte(on), diag.FactStorageLocations: locs,
			diag.FactStorageSample("eu"): sample("eu", 0), diag.FactStorageSample("us"): sample("us", 50)},
			want: []want{{diag.Info, "geo-replication.sample", "eu: no sampled blob is placed here"}, {diag.OK, "", "us: all 50 sampled blobs the database places here are in storage"}}},
		{name: "missing blobs", facts: diag.MapFacts{diag.FactConfig: []byte(on), diag.FactStorageLocations: locs,
			diag.FactStorageSample("eu"): sample("eu", 20, many...), diag.FactStorageSample("us"): sample("us", 50)},
			want:     []want{{diag.Fail, "", "eu: 12 of 20 sampled blobs the database places here are missing from its storage"}, {diag.OK, "", "us"}},
			evidence: "missing: sha256:aaaa"},
		{name: "location unreachable", facts: diag.MapFacts{diag.FactConfig: []byte(on), diag.FactStorageLocations: locs,
			diag.FactStorageSample("eu") + ".error": []byte("checking sampled blobs in eu: AccessDenied"), diag.FactStorageSample("us"): sample("us", 1)},
			want: []want{{diag.Warn, "", "could not gather storage/eu/sample.json: checking sampled blobs in eu: AccessDenied"}, {diag.OK, "", "us"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := runCheck(t, replicationChecks[1], tt.facts, tt.want...)
			if tt.evidence != "" {
				ev := evidence(fs[0])
				if !strings.Contains(ev, tt.evidence) || !strings.Contains(ev, "… and 2 more") || len(fs[0].Evidence) != replicationMaxEvidence+1 {
					t.Errorf("evidence:\n%s", ev)
				}
			}
		})
	}
}

func TestReplicationBacklogCheck(t *testing.T) {
	const on = "FEATURE_STORAGE_REPLICATION: true\nDISTRIBUTED_STORAGE_CONFIG: {us: [S3Storage, {}], eu: [S3Storage, {}]}\n"
	placement := func(backlog string) []byte {
		return []byte(`{"locations":[],"total_blobs":1,"total_bytes":1,"unplaced_blobs":0` + backlog + `}`)
	}
	queue := func(queued, retrying int, age time.Duration) string {
		at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		return `,"replication_backlog":{"queued":` + strconv.Itoa(queued) + `,"in_progress":0,"retrying":` + strconv.Itoa(retrying) +
			`,"oldest_queued_at":"` + at.Format(time.RFC3339) + `","oldest_age_seconds":` + strconv.Itoa(int(age/time.Second)) + `}`
	}
	tests := []struct {
		name     string
		facts    diag.MapFacts
		want     []want
		remedy   string
		evidence string
	}{
		{name: "not enabled", facts: diag.MapFacts{diag.FactConfig: []byte("FEATURE_STORAGE_REPLICATION: false")}},
		{name: "empty queue", facts: diag.MapFacts{diag.FactConfig: []byte(on), diag.FactDBPlacement: placement(`,"replication_backlog":{"queued":0,"in_progress":0,"retrying":0,"oldest_age_seconds":0}`)},
			want: []want{{diag.OK, "geo-replication.backlog", "the replication queue is empty"}}},
		{name: "young backlog", facts: diag.MapFacts{diag.FactConfig: []byte(on), diag.FactDBPlacement: placement(queue(7, 0, 90*time.Second))},
			want: []want{{diag.OK, "", "7 blobs wait for replication; the oldest for 1m30s"}}, evidence: "oldest queued at 2026-03-01T12:00:00Z, 1m30s ago"},
		{name: "an hour behind", facts: diag.MapFacts{diag.FactConfig: []byte(on), diag.FactDBPlacement: placement(queue(40, 0, 2*time.Hour))},
			want: []want{{diag.Warn, "", "replication is behind: 40 blobs queued, the oldest for 2h0m0s"}}, remedy: "storagereplication worker runs"},
		{name: "a day behind, retrying", facts: diag.MapFacts{diag.FactConfig: []byte(on), diag.FactDBPlacement: placement(queue(3, 3, 25*time.Hour))},
			want: []want{{diag.Fail, "", "replication is behind: 3 blobs queued"}}, remedy: "3 items failed and are retried"},
		{name: "older bundle without the queue", facts: diag.MapFacts{diag.FactConfig: []byte(on), diag.FactDBPlacement: placement("")},
			want: []want{{diag.Info, "", "the replication queue was not read"}}},
		{name: "database unreachable", facts: diag.MapFacts{diag.FactConfig: []byte(on), diag.FactDBPlacement + ".error": []byte("no database connection: connection refused")},
			want: []want{{diag.Warn, "", "could not gather database/placement.json"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := runCheck(t, replicationBacklogCheck.With(checkReplicationBacklog), tt.facts, tt.want...)
			if tt.remedy != "" && !strings.Contains(fs[0].Remedy, tt.remedy) {
				t.Errorf("remedy %q lacks %q", fs[0].Remedy, tt.remedy)
			}
			if tt.evidence != "" && !strings.Contains(evidence(fs[0]), tt.evidence) {
				t.Errorf("evidence %q lacks %q", evidence(fs[0]), tt.evidence)
			}
		})
	}
}
