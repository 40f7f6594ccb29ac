package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/quayctl/quayctl/internal/testpodman"
)

func TestStorageProbeFlags(t *testing.T) {
	clear := func(o *StorageProbeOptions) { o.IO, o.Deployment, o.HTTPClient, o.Now = nil, nil, nil, nil }
	def := StorageProbeOptions{Output: "table", Timeout: 30 * time.Second}
	with := func(f func(*StorageProbeOptions)) StorageProbeOptions { o := def; f(&o); return o }
	tkFlagTable(t, []string{"storage"}, NewCmdStorageProbe, clear, []tkFlagCase[StorageProbeOptions]{
		{name: "defaults", args: []string{"storage", "probe"}, want: def},
		{name: "location and json on a config", args: []string{"storage", "probe", "--config", "/etc/quay/config.yaml", "--location", "default", "-o", "json"},
			want: with(func(o *StorageProbeOptions) {
				o.Target = TargetOptions{Kind: TargetDirect, ConfigPath: "/etc/quay/config.yaml"}
				o.Location, o.Output = "default", "json"
			})},
		{name: "podman, yaml, insecure, timeout", args: []string{"storage", "probe", "--podman", "-o", "yaml", "--insecure", "--timeout", "5s"},
			want: with(func(o *StorageProbeOptions) {
				o.Target = TargetOptions{Kind: TargetPodman}
				o.Output, o.Insecure, o.Timeout = "yaml", true, 5*time.Second
			})},
		{name: "bad output", args: []string{"storage", "probe", "-o", "xml"}, wantErr: `--output "xml" is not one of table, json, yaml`},
		{name: "bad timeout", args: []string{"storage", "probe", "--timeout", "0s"}, wantErr: "--timeout must be positive, such as 30s"},
		{name: "bad location", args: []string{"storage", "probe", "--location", "a/b"}, wantErr: `--location "a/b" is not a location name of DISTRIBUTED_STORAGE_CONFIG`},
		{name: "an argument", args: []string{"storage", "probe", "default"}, wantErr: "quayctl storage probe takes 0 argument(s): no arguments; choose a location with --location"},
	})
}

// storageNormalize replaces what changes from run to run: the temporary
// directory, probe object names, timings.
func storageNormalize(s, dir string) string {
	s = strings.ReplaceAll(s, dir, "$DIR")
	s = regexp.MustCompile(`_verify-[0-9a-f]{16}`).ReplaceAllString(s, "_verify-RANDOM")
	s = regexp.MustCompile(`\d+\.\d+(ms|s)\b`).ReplaceAllString(s, "N.Nms")
	s = regexp.MustCompile(`"elapsed_ms": [0-9.e+-]+`).ReplaceAllString(s, `"elapsed_ms": 0`)
	s = regexp.MustCompile(`elapsed_ms: [0-9.e+-]+`).ReplaceAllString(s, `elapsed_ms: 0`)
	s = regexp.MustCompile(`"(started|finished)": "[^"]+"`).ReplaceAllString(s, `"$1": "TIME"`)
	s = regexp.MustCompile(` in \d+(\.\d+)?m?s — exit`).ReplaceAllString(s, " in N.Ns — exit")
	return s
}

func TestStorageProbeRun(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "registry")
	if err := os.MkdirAll(good, 0o755); err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(config, []byte(fmt.Sprintf(`SERVER_HOSTNAME: quay.example.com
DISTRIBUTED_STORAGE_CONFIG:
  default: [LocalStorage, {storage_path: %s}]
  missing: [LocalStorage, {storage_path: %s}]
  azure: [AzureStorage, {azure_container: quay, azure_account_name: acct, azure_account_key: s3cr3t-azure-key, storage_path: /registry}]
DISTRIBUTED_STORAGE_PREFERENCE: [default]
DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS: [default, eu]
`, good, filepath.Join(dir, "missing"))), 0o600); err != nil {
		t.Fatal(err)
	}
	okConfig := filepath.Join(dir, "ok.yaml")
	if err := os.WriteFile(okConfig, []byte(fmt.Sprintf("DISTRIBUTED_STORAGE_CONFIG:\n  default: [LocalStorage, {storage_path: %s}]\nDISTRIBUTED_STORAGE_PREFERENCE: [default]\n", good)), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		args       []string
		golden     string
		wantCode   int
		wantStderr string
	}{
		{name: "all locations", args: []string{"--config", config}, golden: "storage_probe.txt.golden", wantCode: 2},
		{name: "all locations json", args: []string{"--config", config, "-o", "json"}, golden: "storage_probe.json.golden", wantCode: 2},
		{name: "one location yaml", args: []string{"--config", okConfig, "--location", "default", "-o", "yaml"}, golden: "storage_probe_location.yaml.golden", wantCode: 0},
		{name: "one location table", args: []string{"--config", okConfig, "--location", "default"}, golden: "storage_probe_location.txt.golden", wantCode: 0},
		{name: "unknown location", args: []string{"--config", config, "--location", "Default"}, wantCode: ExitError,
			wantStderr: `Error: no storage location "Default" — DISTRIBUTED_STORAGE_CONFIG has: azure, default, missing (names are case-sensitive)` + "\n"},
		{name: "no config", args: []string{"--url", "http://127.0.0.1:1"}, wantCode: ExitError,
			wantStderr: "Error: cannot tell the storage locations: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := tkRun(t, context.Background(), nil, append([]string{"storage", "probe"}, tt.args...)...)
			if code != tt.wantCode {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tt.wantCode, stderr)
			}
			if !strings.HasPrefix(stderr, tt.wantStderr) || (tt.wantStderr == "" && stderr != "") {
				t.Errorf("stderr = %q, want %q", stderr, tt.wantStderr)
			}
			if strings.Contains(stdout+stderr, "s3cr3t-azure-key") {
				t.Error("a secret is in the output")
			}
			if tt.golden != "" {
				golden(t, tt.golden, storageNormalize(stdout, dir))
			}
			if strings.HasSuffix(tt.golden, ".json.golden") {
				var res storageProbeResult
				if err := json.Unmarshal([]byte(stdout), &res); err != nil || len(res.Locations) != 3 || res.Summary.Worst != "fail" {
					t.Errorf("json: %v %+v", err, res)
				}
			}
			entries, err := os.ReadDir(good)
			if err != nil || len(entries) != 0 {
				t.Errorf("the probe left %v behind (%v)", entries, err)
			}
			if _, err := os.Stat(filepath.Join(dir, "missing")); err == nil {
				t.Error("the probe created the missing storage_path")
			}
		})
	}
}

// TestStorageProbePodman probes a quay container's LocalStorage through a
// real podman service: through the host path of its volume, a read-only
// mount, and a path inside the container (which is not running, so quayctl
// cannot exec there and says so).
func TestStorageProbePodman(t *testing.T) {
	if testing.Short() {
		t.Skip("podman integration test; skipped with -short")
	}
	env := testpodman.New(t)
	sock := env.StartService(t)
	image := env.BuildScratchImage(t, "localhost/quayctl-test/storage-probe:v1", map[string][]byte{"marker": []byte("x")})
	conf, data, ro := t.TempDir(), t.TempDir(), t.TempDir()
	for _, d := range []string{filepath.Join(data, "registry"), filepath.Join(ro, "registry"), filepath.Join(data, "denied")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// The container runs as 1001, as Quay's image does: registry is its
	// own, denied is root's and read-only to others (root, probing from
	// the host, could write it anyway).
	if err := os.Chown(filepath.Join(data, "registry"), 1001, 0); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(data, "denied"), 0o555); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(conf, "config.yaml"), []byte(`DISTRIBUTED_STORAGE_CONFIG:
  default: [LocalStorage, {storage_path: /datastorage/registry}]
  readonly: [LocalStorage, {storage_path: /ro/registry}]
  inside: [LocalStorage, {storage_path: /var/quay}]
  denied: [LocalStorage, {storage_path: /datastorage/denied}]
DISTRIBUTED_STORAGE_PREFERENCE: [default]
`), 0o644); err != nil {
		t.Fatal(err)
	}
	env.Run(t, "create", "--name", "quay-storage-probe", "--user", "1001", "-v", conf+":/conf/stack:ro", "-v", data+":/datastorage",
		"-v", ro+":/ro:ro", image, "/marker")
	code, stdout, stderr := tkRun(t, context.Background(), nil, "storage", "probe", "--podman="+sock, "--component", "quay=quay-storage-probe", "-o", "json")
	if code != 2 {
		t.Errorf("exit %d, want 2; stderr:\n%s", code, stderr)
	}
	var res storageProbeResult
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("%v:\n%s", err, stdout)
	}
	want := map[string]struct {
		ok    bool
		where string
		err   string
		sev   string
	}{
		"default":  {true, filepath.Join(data, "registry") + " (host path of /datastorage/registry in the quay container)", "", "ok"},
		"readonly": {false, filepath.Join(ro, "registry"), "/ro/registry is mounted read-only into the quay container", "fail"},
		"denied":   {false, filepath.Join(data, "denied"), "is not writable by the quay container's user 1001 (owner 0:0, mode 0555)", "fail"},
		"inside":   {false, "/var/quay in the quay component (quay-storage-probe), through sh [/var/quay is not on a volume or bind mount of the quay container]", "skipped: ", "info"},
	}
	if len(res.Locations) != len(want) {
		t.Fatalf("locations: %+v", res.Locations)
	}
	for _, p := range res.Locations {
		w := want[p.Location]
		if p.OK != w.ok || !strings.HasPrefix(p.Where, w.where) || !strings.Contains(p.Error, w.err) {
			t.Errorf("%s: ok %v, where %q, error %q; want ok %v, where %q…, error ~%q", p.Location, p.OK, p.Where, p.Error, w.ok, w.where, w.err)
		}
		if got := storageResult(res.Findings, p.Location); got != w.sev {
			t.Errorf("%s: finding %s, want %s", p.Location, got, w.sev)
		}
	}
	for _, d := range []string{filepath.Join(data, "registry"), filepath.Join(ro, "registry")} {
		if entries, err := os.ReadDir(d); err != nil || len(entries) != 0 {
			t.Errorf("%s holds %v (%v)", d, entries, err)
		}
	}
}
