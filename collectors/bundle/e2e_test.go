package bundle_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/quayctl/quayctl/cmd/quayctl/cli"
	"github.com/quayctl/quayctl/collectors/bundle"
	"github.com/quayctl/quayctl/diag"
	"github.com/quayctl/quayctl/internal/testpg"
	"github.com/quayctl/quayctl/internal/testpodman"
	"github.com/quayctl/quayctl/internal/testredis"
)

// emitSource prints its arguments as log lines, then stays up: a
// component whose log holds whatever the test seeds.
const emitSource = `package main

import (
	"fmt"
	"os"
	"time"
)

func main() {
	for _, a := range os.Args[1:] {
		fmt.Println(a)
	}
	for {
		time.Sleep(time.Hour)
	}
}
`

func buildEmit(t *testing.T) []byte {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(emitSource), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module emit\n\ngo 1.22\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "build", "-o", "emit", ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the log emitter: %v\n%s", err, out)
	}
	b, err := os.ReadFile(filepath.Join(dir, "emit"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// e2eSecrets are planted in config, environment and logs.
var e2eSecrets = []string{
	"SEED-e2e-secret-key-a1", "SEED-e2e-db-secret-b2", "SEED-e2e-mail-c3", "SEED-e2e-env-d4",
	"SEED-e2e-bearer-e5", "SEED-e2e-uripass-f6", "SEED-e2e-pem-g7", "SEED-e2e-basic-h8", "AKIAIOSFODNN7E2EKEY9",
}

func quayctl(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := cli.Main(context.Background(), args, &cli.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
	return code, out.String(), errOut.String()
}

// TestBundlePodman collects a bundle from a real podman deployment
// (quayctl serve as quay, real PostgreSQL and Redis, a component logging
// seeded secrets, one whose logs cannot be read), checks its layout,
// manifest and redaction, and that analysing it offline finds what a live
// diagnose found.
func TestBundlePodman(t *testing.T) {
	if testing.Short() {
		t.Skip("podman end-to-end test; skipped with -short")
	}
	env := testpodman.New(t)
	sock := env.StartService(t)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		_ = env.Command(ctx, "rm", "--all", "--force", "--time", "0").Run()
	})
	image := "localhost/quayctl:bundle-test"
	env.BuildScratchImage(t, image, map[string][]byte{"quayctl": testpodman.BuildQuayctl(t), "emit": buildEmit(t), "tmp/.keep": nil})
	redis := testredis.Start(t)
	dbURI := testpg.NewDatabase(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	storage, cfgDir := t.TempDir(), t.TempDir()
	for _, dir := range []string{cfgDir, storage} {
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chown(storage, 1001, 1001); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`SERVER_HOSTNAME: %s
PREFERRED_URL_SCHEME: http
SETUP_COMPLETE: true
AUTHENTICATION_TYPE: Database
DB_URI: %s
SECRET_KEY: SEED-e2e-secret-key-a1
DATABASE_SECRET_KEY: SEED-e2e-db-secret-b2
MAIL_PASSWORD: SEED-e2e-mail-c3
CLOUDWATCH_AWS_ACCESS_KEY: AKIAIOSFODNN7E2EKEY9
SUPER_USERS: [admin]
DISTRIBUTED_STORAGE_CONFIG:
  default:
    - LocalStorage
    - storage_path: /datastorage/registry
DISTRIBUTED_STORAGE_PREFERENCE: [default]
DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS: [default]
BUILDLOGS_REDIS: {host: %s, port: %d}
USER_EVENTS_REDIS: {host: %s, port: %d}
`, addr, dbURI, redis.Host, redis.Port, redis.Host, redis.Port)
	if err := os.WriteFile(filepath.Join(cfgDir, "config.yaml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	env.Run(t, "run", "-d", "--name", "quay", "--network", "host", "--user", "1001", "-e", "QUAY_PASSWORD=SEED-e2e-env-d4",
		"-v", cfgDir+":/conf/stack:ro", "-v", storage+":/datastorage", image, "/quayctl", "serve", "--listen", addr)
	// A mirror worker whose log carries secrets, and a Redis whose logs
	// cannot be read (the "none" log driver).
	env.Run(t, "run", "-d", "--name", "quay-mirror", "--network", "host", image, "/emit",
		"mirror worker started",
		"GET /v2/ headers: Authorization: Bearer SEED-e2e-bearer-e5",
		"connecting to postgresql://quay:SEED-e2e-uripass-f6@db.example.com:5432/quay",
		"Proxy-Authorization: Basic SEED-e2e-basic-h8",
		"-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFSEED-e2e-pem-g7\n-----END PRIVATE KEY-----",
		"mirror worker idle")
	env.Run(t, "run", "-d", "--name", "quay-redis", "--network", "host", "--log-driver", "none", image, "/emit", "redis ready")
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/health/instance")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("quay never became healthy: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	var out, errOut bytes.Buffer
	io := &cli.IOStreams{In: strings.NewReader("correct-horse-battery\n"), Out: &out, ErrOut: &errOut}
	if code := cli.Main(context.Background(), []string{"user", "create", "admin", "--password-stdin", "--email", "admin@example.com", "--superuser", "--config", filepath.Join(cfgDir, "config.yaml")}, io); code != 0 {
		t.Fatalf("user create: exit %d\n%s\n%s", code, out.String(), errOut.String())
	}

	_, liveOut, liveErr := quayctl(t, "diagnose", "--podman="+sock, "-o", "json", "--timeout", "20s")
	var live diag.Report
	if err := json.Unmarshal([]byte(liveOut), &live); err != nil {
		t.Fatalf("live diagnose: %v\n%s\n%s", err, liveOut, liveErr)
	}

	file := filepath.Join(t.TempDir(), "case.tar.gz")
	code, stdout, stderr := quayctl(t, "support-bundle", "--podman="+sock, "-O", file, "-o", "json", "--timeout", "20s")
	if code != 0 {
		t.Fatalf("support-bundle: exit %d\n%s\n%s", code, stdout, stderr)
	}
	names, data := entries(t, file)
	var m bundle.Manifest
	if err := json.Unmarshal(data["manifest.json"], &m); err != nil {
		t.Fatal(err)
	}

	t.Run("layout", func(t *testing.T) {
		if names[0] != "manifest.json" || m.Format != bundle.FormatVersion || m.Target.Kind != "podman" || m.Options.NoRedact {
			t.Errorf("first entry %s, manifest %+v", names[0], m)
		}
		status := map[string]bundle.File{}
		for _, f := range m.Files {
			status[f.Fact] = f
			sum := sha256.Sum256(data[f.Path])
			if _, ok := data[f.Path]; !ok || hex.EncodeToString(sum[:]) != f.SHA256 || int64(len(data[f.Path])) != f.Size {
				t.Errorf("%s: missing or not as the manifest says", f.Path)
			}
		}
		for _, fact := range []string{"target.json", "components.json", "config/config.yaml", "config/source.json",
			"health/instance.json", "health/endtoend.json", "health/warning.json",
			"database/connection.json", "database/server.json", "database/activity.json", "database/locks.json",
			"database/sizes.json", "database/schema.json", "database/users.json", "storage/locations.json",
			"storage/default/probe.json", "components/quay/logs.txt", "components/quay/stats.json", "components/quay/inspect.json",
			"components/mirror/logs.txt", "diagnose/findings.json", "diagnose/report.txt"} {
			if f := status[fact]; f.Status != bundle.StatusOK {
				t.Errorf("%s: %s %s", fact, f.Status, f.Error)
			}
		}
		if f := status["components/redis/logs.txt"]; f.Status != bundle.StatusFailed || !strings.Contains(f.Error, "none") || data[f.Path] == nil {
			t.Errorf("unreadable redis logs recorded as %+v", f)
		}
		if !bytes.Contains(data["components/quay/logs.txt"], []byte("listening")) && len(data["components/quay/logs.txt"]) == 0 {
			t.Error("quay's log is empty")
		}
	})

	t.Run("secrets", func(t *testing.T) {
		for name, b := range data {
			for _, s := range e2eSecrets {
				if bytes.Contains(b, []byte(s)) {
					t.Errorf("%s holds the seeded secret %s", name, s)
				}
			}
		}
		red := map[string]map[string]int{}
		for _, f := range m.Files {
			red[f.Fact] = f.Redactions
		}
		mirror := red["components/mirror/logs.txt"]
		if mirror["authorization-header"] < 2 || mirror["uri-password"] < 1 || mirror["pem-private-key"] < 1 {
			t.Errorf("mirror log redactions %v", mirror)
		}
		if red["config/config.yaml"]["quay-config-key"] < 3 {
			t.Errorf("config redactions %v", red["config/config.yaml"])
		}
		if red["components.json"]["redacted-at-source"] < 1 {
			t.Errorf("components.json redactions %v (the env password)", red["components.json"])
		}
		if !bytes.Contains(data["components/mirror/logs.txt"], []byte("mirror worker idle")) {
			t.Errorf("mirror log lost its lines:\n%s", data["components/mirror/logs.txt"])
		}
	})

	t.Run("analyze", func(t *testing.T) {
		code, stdout, stderr := quayctl(t, "support-bundle", "analyze", file, "-o", "json")
		var off diag.Report
		if err := json.Unmarshal([]byte(stdout), &off); err != nil {
			t.Fatalf("analyze: exit %d %v\n%s\n%s", code, err, stdout, stderr)
		}
		if code != off.ExitCode() || off.Target.Kind != "bundle" {
			t.Errorf("exit %d, report says %d; target %+v", code, off.ExitCode(), off.Target)
		}
		var stored diag.Report
		if err := json.Unmarshal(data["diagnose/findings.json"], &stored); err != nil {
			t.Fatal(err)
		}
		if g, w := findingKeys(off), findingKeys(stored); !slices.Equal(g, w) {
			t.Errorf("analysis differs from the findings stored at collection:\n got %q\nwant %q", g, w)
		}
		// Against the live run: the checks whose facts are a snapshot of a
		// moment (activity, connections in use, timings) may change
		// between two runs; the components the live run never saw differ
		// in the same way for both.
		// quay's own log grows with every request.
		varies := func(f diag.Finding) bool {
			return slices.Contains([]string{"database.activity", "database.connections", "database.locks", "database.idle"}, f.ID) ||
				f.ID == "logs.scan" && f.Subject == "quay"
		}
		timing := regexp.MustCompile(`[0-9.]+ ?ms\b`)
		keep := func(r diag.Report) []string {
			var out []string
			for _, f := range r.Findings {
				if !varies(f) {
					out = append(out, fmt.Sprintf("%s %s %s: %s", f.Severity, f.ID, f.Subject, timing.ReplaceAllString(f.Title, "N ms")))
				}
			}
			slices.Sort(out)
			return out
		}
		if g, w := keep(off), keep(live); !slices.Equal(g, w) {
			t.Errorf("offline findings differ from live diagnose:\n got %q\nwant %q", g, w)
		}
	})
}
