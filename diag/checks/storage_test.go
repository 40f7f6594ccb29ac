package checks

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/quayctl/quayctl/diag"
)

// storageTestJSON marshals v for a MapFacts entry.
func storageTestJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func storageTestSteps(ms float64) []diag.StorageProbeStep {
	var out []diag.StorageProbeStep
	for _, s := range []string{"write", "stat", "read", "compare", "delete"} {
		out = append(out, diag.StorageProbeStep{Step: s, OK: true, ElapsedMS: ms})
	}
	return out
}

func TestStorageConfigCheck(t *testing.T) {
	const good = `
DISTRIBUTED_STORAGE_CONFIG:
  default: [LocalStorage, {storage_path: /datastorage/registry}]
  eu: [S3Storage, {s3_bucket: b, s3_secret_key: <redacted>, storage_path: /q}]
DISTRIBUTED_STORAGE_PREFERENCE: [default]
DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS: [default, eu]
`
	tests := []struct {
		name     string
		facts    diag.MapFacts
		want     []want
		evidence string // in the first finding
	}{
		{name: "consistent", facts: diag.MapFacts{diag.FactConfig: []byte(good)},
			want:     []want{{diag.OK, "storage.config", "2 storage location(s) configured (default, eu); uploads go to default"}},
			evidence: "DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS: [default, eu]"},
		{name: "preference names a missing location", facts: diag.MapFacts{diag.FactConfig: []byte(`
DISTRIBUTED_STORAGE_CONFIG: {default: [LocalStorage, {storage_path: /d}]}
DISTRIBUTED_STORAGE_PREFERENCE: [Default]
`)},
			want:     []want{{diag.Fail, "storage.config", `DISTRIBUTED_STORAGE_PREFERENCE names location "Default", which DISTRIBUTED_STORAGE_CONFIG does not configure`}},
			evidence: "DISTRIBUTED_STORAGE_CONFIG has: default"},
		{name: "default locations name a missing location", facts: diag.MapFacts{diag.FactConfig: []byte(`
DISTRIBUTED_STORAGE_CONFIG: {us: [S3Storage, {}]}
DISTRIBUTED_STORAGE_PREFERENCE: [us]
DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS: [us, eu, ap]
`)},
			want: []want{
				{diag.Fail, "", `DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS names location "eu"`},
				{diag.Fail, "", `DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS names location "ap"`}},
			evidence: "DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS: [us, eu, ap]"},
		{name: "empty preference", facts: diag.MapFacts{diag.FactConfig: []byte(`DISTRIBUTED_STORAGE_CONFIG: {default: [LocalStorage, {storage_path: /d}]}`)},
			want: []want{{diag.Warn, "", "DISTRIBUTED_STORAGE_PREFERENCE is empty"}}},
		{name: "no storage config", facts: diag.MapFacts{diag.FactConfig: []byte(`SERVER_HOSTNAME: q`)},
			want: []want{{diag.Fail, "", "DISTRIBUTED_STORAGE_CONFIG is missing or empty"}}},
		{name: "config not gathered", facts: diag.MapFacts{diag.FactConfig + ".error": []byte("cannot read /conf/stack/config.yaml: permission denied")},
			want: []want{{diag.Warn, "", "could not gather config/config.yaml"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := runCheck(t, storageChecks[0], tt.facts, tt.want...)
			if tt.evidence != "" && !strings.Contains(evidence(fs[0]), tt.evidence) {
				t.Errorf("evidence %q lacks %q", evidence(fs[0]), tt.evidence)
			}
		})
	}
}

func TestStorageProbeCheck(t *testing.T) {
	locs := func(names ...string) []byte { return storageTestJSON(t, names) }
	probe := func(p diag.StorageProbe) []byte { return storageTestJSON(t, p) }
	ok := diag.StorageProbe{Location: "default", Driver: "LocalStorage", Where: "/datastorage/registry (on this host)", OK: true, Steps: storageTestSteps(1.5)}
	failed := diag.StorageProbe{Location: "default", Driver: "LocalStorage", Where: "/d (on this host)",
		Steps: []diag.StorageProbeStep{{Step: "write", ElapsedMS: 0.2, Error: "LocalStorage: writer _verify-1: permission denied"}},
		Error: "storage probe on LocalStorage failed at write of _verify-1: LocalStorage: writer _verify-1: permission denied"}
	missing := diag.StorageProbe{Location: "default", Driver: "LocalStorage", Where: "/nope (on this host)",
		Steps: []diag.StorageProbeStep{{Step: "open", Error: "storage_path /nope does not exist"}}, Error: "storage_path /nope does not exist"}
	slow := ok
	slow.Steps = storageTestSteps(1.0)
	slow.Steps[2].ElapsedMS = 3500
	s3 := diag.StorageProbe{Location: "us", Driver: "S3Storage", Where: "http://s3:9000 bucket b", OK: true, Steps: storageTestSteps(3),
		Download: &diag.StorageProbeStep{Step: "signed-url", OK: true, ElapsedMS: 7}}
	s3bad := s3
	s3bad.Download = &diag.StorageProbeStep{Step: "signed-url", ElapsedMS: 7, Error: "GET http://s3:9000/b/_verify-1 (signed): HTTP 403: SignatureDoesNotMatch"}
	azure := diag.StorageProbe{Location: "az", Driver: "AzureStorage", Where: "bucket c", Steps: []diag.StorageProbeStep{}, Error: "skipped: quayctl cannot probe AzureStorage yet (it supports LocalStorage)"}
	unreachable := diag.StorageProbe{Location: "default", Driver: "LocalStorage", Where: "/datastorage", Steps: []diag.StorageProbeStep{}, Error: "skipped: /datastorage is inside the quay container, which has no shell to probe it with"}

	tests := []struct {
		name     string
		facts    diag.MapFacts
		want     []want
		evidence []string // in the findings, joined
	}{
		{name: "ok with timings", facts: diag.MapFacts{diag.FactStorageLocations: locs("default"), diag.FactStorageProbe("default"): probe(ok)},
			want:     []want{{diag.OK, "storage.probe", "default (LocalStorage): write, read back and delete in 7.5ms"}},
			evidence: []string{"steps: write 1.5ms, stat 1.5ms, read 1.5ms, compare 1.5ms, delete 1.5ms", "where: /datastorage/registry (on this host)"}},
		{name: "unwritable", facts: diag.MapFacts{diag.FactStorageLocations: locs("default"), diag.FactStorageProbe("default"): probe(failed)},
			want:     []want{{diag.Fail, "", "default: storage probe failed at write"}},
			evidence: []string{"permission denied", "write 0.2ms (failed)"}},
		{name: "missing path", facts: diag.MapFacts{diag.FactStorageLocations: locs("default"), diag.FactStorageProbe("default"): probe(missing)},
			want:     []want{{diag.Fail, "", "default: storage probe failed at open"}},
			evidence: []string{"storage_path /nope does not exist"}},
		{name: "slow", facts: diag.MapFacts{diag.FactStorageLocations: locs("default"), diag.FactStorageProbe("default"): probe(slow)},
			want: []want{{diag.Warn, "", "default: storage is slow (read 3.5s; over 2.0s a step)"}}},
		{name: "s3 with signed url, sorted by location", facts: diag.MapFacts{diag.FactStorageLocations: locs("default", "us"), diag.FactStorageProbe("default"): probe(ok), diag.FactStorageProbe("us"): probe(s3)},
			want: []want{{diag.OK, "", "default (LocalStorage)"}, {diag.OK, "", "us (S3Storage): write, read back and delete in 15.0ms, signed URL fetch in 7.0ms"}}},
		{name: "signed url fails", facts: diag.MapFacts{diag.FactStorageLocations: locs("us"), diag.FactStorageProbe("us"): probe(s3bad)},
			want:     []want{{diag.Fail, "", "us: the probe object could not be fetched through a signed URL"}},
			evidence: []string{"signed-url: GET http://s3:9000/b/_verify-1 (signed): HTTP 403"}},
		{name: "unsupported driver", facts: diag.MapFacts{diag.FactStorageLocations: locs("az"), diag.FactStorageProbe("az"): probe(azure)},
			want:     []want{{diag.Warn, "", "az: quayctl cannot probe AzureStorage yet"}},
			evidence: []string{"driver: AzureStorage"}},
		{name: "not reachable from here", facts: diag.MapFacts{diag.FactStorageLocations: locs("default"), diag.FactStorageProbe("default"): probe(unreachable)},
			want:     []want{{diag.Info, "", "default: could not probe LocalStorage from here"}},
			evidence: []string{"no shell"}},
		{name: "probe not gathered", facts: diag.MapFacts{diag.FactStorageLocations: locs("default"), diag.FactStorageProbe("default") + ".error": []byte("timed out after 30s")},
			want: []want{{diag.Warn, "", "could not gather storage/default/probe.json: timed out after 30s"}}},
		{name: "no locations fact", facts: diag.MapFacts{diag.FactStorageLocations + ".error": []byte("config.yaml has no DISTRIBUTED_STORAGE_CONFIG")},
			want: []want{{diag.Warn, "", "could not gather storage/locations.json"}}},
		{name: "no locations", facts: diag.MapFacts{diag.FactStorageLocations: locs()},
			want: []want{{diag.Info, "", "no storage locations to probe"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := runCheck(t, storageChecks[1], tt.facts, tt.want...)
			var all []string
			for _, f := range fs {
				all = append(all, evidence(f))
				if f.Subject == "" && f.Severity != diag.Info && !strings.HasPrefix(f.Title, "could not gather storage/locations") {
					t.Errorf("finding %q has no subject", f.Title)
				}
			}
			for _, e := range tt.evidence {
				if !strings.Contains(strings.Join(all, "\n"), e) {
					t.Errorf("evidence lacks %q:\n%s", e, strings.Join(all, "\n"))
				}
			}
		})
	}
	t.Run("remedies name the driver's fix", func(t *testing.T) {
		fs := runCheck(t, storageChecks[1], diag.MapFacts{diag.FactStorageLocations: locs("default"), diag.FactStorageProbe("default"): probe(failed)}, want{diag.Fail, "", ""})
		if !strings.Contains(fs[0].Remedy, "UID 1001") {
			t.Errorf("remedy: %s", fs[0].Remedy)
		}
		fs = runCheck(t, storageChecks[1], diag.MapFacts{diag.FactStorageLocations: locs("default"), diag.FactStorageProbe("default"): probe(unreachable)}, want{diag.Info, "", ""})
		if !strings.Contains(fs[0].Remedy, "quayctl health endtoend") {
			t.Errorf("remedy: %s", fs[0].Remedy)
		}
	})
}

func TestStorageProxyCheck(t *testing.T) {
	tests := []struct {
		name   string
		config string
		want   []want
	}{
		{"off", "FEATURE_PROXY_STORAGE: false", nil},
		{"unset", "SERVER_HOSTNAME: q", nil},
		{"on", "FEATURE_PROXY_STORAGE: true", []want{{diag.Info, "storage.proxy", "clients download blobs through the registry"}}},
		{"guide's spelling only", "FEATURE_STORAGE_PROXY: true", []want{{diag.Warn, "storage.proxy", "FEATURE_STORAGE_PROXY is set, but Quay reads FEATURE_PROXY_STORAGE"}}},
		{"both", "FEATURE_STORAGE_PROXY: true\nFEATURE_PROXY_STORAGE: 'true'", []want{{diag.Info, "", "through the registry"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			runCheck(t, storageChecks[2], diag.MapFacts{diag.FactConfig: []byte(tt.config)}, tt.want...)
		})
	}
}
