package podman_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/quayctl/quayctl/collectors"
	"github.com/quayctl/quayctl/collectors/podman"
	"github.com/quayctl/quayctl/collectors/testsuite"
	"github.com/quayctl/quayctl/internal/redact"
	"github.com/quayctl/quayctl/internal/testpodman"
)

// goTags are the build tags of every quayctl build (see the Makefile).
const goTags = "remote exclude_graphdriver_btrfs btrfs_noversion exclude_graphdriver_devicemapper containers_image_openpgp"

const testImage = "localhost/quayctl:podman-collector-test"

// Secrets seeded into the deployment: the config file holds some (ReadFile
// returns them raw), container environments hold others (Component.Env must
// not show them).
const (
	secretKey      = "s3cret-key-8d1f0c2e"
	dbSecretKey    = "s3cret-dbkey-77aa3b10"
	uriPassword    = "s3cret-uri-pw-4410"
	pgPassword     = "s3cret-pg-pw-9c1e"
	pgAdminPass    = "s3cret-pg-admin-02b7"
	registryToken  = "s3cret-token-5e5e"
	quayMarkerPath = "/quayctl-collector-marker"
	probePassword  = "Probe-pass-phrase-4242"
)

// TestPodman runs everything against one podman service and one image build:
// a quay container (quayctl serve with a mounted /conf/stack/config.yaml) and
// a crashing postgresql-quay container with a restart policy.
func TestPodman(t *testing.T) {
	if testing.Short() {
		t.Skip("podman integration test; skipped with -short")
	}
	start := time.Now()
	env := testpodman.New(t)
	sock := env.StartService(t)
	t.Cleanup(func() { settle(t, env) })
	buildImage(t, env)
	t.Logf("podman service and image ready in %s", time.Since(start).Round(time.Millisecond))

	port := freePort(t)
	cfgDir := t.TempDir()
	if err := os.Chmod(cfgDir, 0o755); err != nil {
		t.Fatal(err)
	}
	config := []byte(fmt.Sprintf(`# quayctl collector test
SERVER_HOSTNAME: 127.0.0.1:%d
PREFERRED_URL_SCHEME: http
AUTHENTICATION_TYPE: Database
DB_URI: sqlite:////datastorage/quay.db
DATABASE_SECRET_KEY: %s
SECRET_KEY: %s
DISTRIBUTED_STORAGE_CONFIG:
  default:
    - LocalStorage
    - storage_path: /datastorage/registry
DISTRIBUTED_STORAGE_PREFERENCE:
  - default
FEATURE_USER_INITIALIZE: true
`, port, dbSecretKey, secretKey))
	if err := os.WriteFile(filepath.Join(cfgDir, "config.yaml"), config, 0o644); err != nil {
		t.Fatal(err)
	}

	env.Run(t, "run", "-d", "--name", "quay", "--network", "host",
		"-v", cfgDir+":/conf/stack:ro",
		"-e", "QUAY_DB_URI=postgresql://quayuser:"+uriPassword+"@db.example.com:5432/quay",
		"-e", "REGISTRY_TOKEN="+registryToken,
		"-e", "PLAIN_SETTING=visible",
		"-l", "io.quayctl.test=collector",
		"--memory", "512m",
		"--restart", "on-failure:5",
		testImage, "serve", "--listen", fmt.Sprintf("127.0.0.1:%d", port))
	// The database role: a container that cannot start (its config is
	// missing), restarted twice by its restart policy.
	env.Run(t, "run", "-d", "--name", "postgresql-quay", "--network", "none",
		"-v", cfgDir+":/conf/stack:ro",
		"-e", "POSTGRESQL_USER=quayuser",
		"-e", "POSTGRESQL_PASSWORD="+pgPassword,
		"-e", "POSTGRESQL_ADMIN_PASSWORD="+pgAdminPass,
		"--restart", "on-failure:2",
		testImage, "serve", "--config", "/nonexistent/config.yaml")
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	waitHealthy(t, base)
	waitExited(t, env, "postgresql-quay", 2)
	get(t, base+quayMarkerPath+"-first") // a request line in the log

	ctx := context.Background()
	d, err := podman.New(ctx, podman.Options{URL: sock})
	if err != nil {
		t.Fatal(err)
	}
	waitLog(t, d, "quay", quayMarkerPath+"-first")
	t.Logf("setup done in %s (libpod API %s)", time.Since(start).Round(time.Millisecond), d.APIVersion())

	t.Run("Contract", func(t *testing.T) {
		testsuite.Run(t, testsuite.Fixture{
			Deployment:    d,
			Kind:          "podman",
			Components:    map[string]string{"quay": "running", "database": "exited"},
			LogComponent:  "quay",
			LogLine:       "quayctl serve ready",
			LogFollow:     true,
			FileComponent: "quay",
			FilePath:      "/conf/stack/config.yaml",
			FileContent:   config,
			ExecComponent: "quay",
			Exec: []testsuite.ExecCase{
				{Argv: []string{"/quayctl", "version"}, Stdout: "quayctl", ExitCode: 0},
				// Documented: 1 when the config cannot be loaded.
				{Argv: []string{"/quayctl", "serve", "--config", "/nonexistent/config.yaml"}, ExitCode: 1},
			},
			StatsComponent: "quay",
			Stopped:        "database",
			Secrets:        []string{uriPassword, pgPassword, pgAdminPass, registryToken},
		})
	})

	t.Run("ComponentDetails", func(t *testing.T) {
		comps := components(t, d)
		q, db := comps["quay"], comps["database"]
		if q.Instance != "quay" || q.Image != testImage || !q.Ready || q.StartedAt.IsZero() {
			t.Errorf("quay = %+v", q)
		}
		if q.ExitCode != nil {
			t.Errorf("quay never exited, but ExitCode = %d", *q.ExitCode)
		}
		if got := q.Env["QUAY_DB_URI"]; got != "postgresql://quayuser:"+redact.Marker+"@db.example.com:5432/quay" {
			t.Errorf("quay env QUAY_DB_URI = %q, want the password redacted", got)
		}
		if q.Env["REGISTRY_TOKEN"] != redact.Marker || q.Env["PLAIN_SETTING"] != "visible" {
			t.Errorf("quay env = %v; want REGISTRY_TOKEN redacted, PLAIN_SETTING kept", q.Env)
		}
		if q.Labels["io.quayctl.test"] != "collector" {
			t.Errorf("quay labels = %v", q.Labels)
		}
		if db.Instance != "postgresql-quay" || db.State != "exited" || db.Ready {
			t.Errorf("database = %+v", db)
		}
		if db.ExitCode == nil || *db.ExitCode != 1 || db.Reason != "Error" {
			t.Errorf("database last exit = %v %q, want 1 Error", db.ExitCode, db.Reason)
		}
		if db.Restarts != 2 {
			t.Errorf("database restarts = %d, want 2 (restart policy on-failure:2)", db.Restarts)
		}
		if db.Env["POSTGRESQL_PASSWORD"] != redact.Marker || db.Env["POSTGRESQL_ADMIN_PASSWORD"] != redact.Marker || db.Env["POSTGRESQL_USER"] != "quayuser" {
			t.Errorf("database env = %v", db.Env)
		}
	})

	t.Run("LogsOfCrashedComponent", func(t *testing.T) {
		var buf bytes.Buffer
		if err := d.Logs(ctx, "database", collectors.LogOptions{}, &buf); err != nil {
			t.Fatal(err)
		}
		// Three runs (the first and two restarts), each failing the same way.
		if n := strings.Count(buf.String(), "/nonexistent/config.yaml does not exist"); n != 3 {
			t.Errorf("database log has the error %d times, want 3:\n%s", n, buf.String())
		}
	})

	t.Run("LogsPreviousStopped", func(t *testing.T) {
		// Every instance of a stopped container has ended: the whole log.
		var prev bytes.Buffer
		if err := d.Logs(ctx, "database", collectors.LogOptions{Previous: true, Tail: 1}, &prev); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(prev.String(), "/nonexistent/config.yaml does not exist") {
			t.Errorf("Logs(database, Previous, Tail 1) = %q, want the last run's error", prev.String())
		}
	})

	t.Run("ReadFileStopped", func(t *testing.T) {
		// The archive API reads from stopped containers too (podman cp).
		got := readAll(t, d, "database", "/conf/stack/config.yaml")
		if !bytes.Equal(got, config) {
			t.Errorf("ReadFile(database) = %q", got)
		}
		for _, s := range []string{secretKey, dbSecretKey} {
			if !bytes.Contains(got, []byte(s)) {
				t.Errorf("ReadFile must return the raw file (redaction is the command's job); %q missing", s)
			}
		}
		if _, err := d.ReadFile(ctx, "quay", "/conf/stack"); err == nil || !strings.Contains(err.Error(), "directory") {
			t.Errorf("ReadFile of a directory: %v", err)
		}
		if _, err := d.ReadFile(ctx, "quay", "relative/path"); err == nil {
			t.Error("ReadFile of a relative path succeeded")
		}
	})

	t.Run("ExecErrors", func(t *testing.T) {
		var stderr bytes.Buffer
		code, err := d.Exec(ctx, "quay", []string{"cat", "/conf/stack/config.yaml"}, collectors.ExecOptions{Stderr: &stderr})
		if err == nil || code != 127 || !strings.Contains(err.Error(), "not found") {
			t.Errorf("Exec of a missing command = %d, %v (stderr %q); want 127 and an error saying not found", code, err, stderr.String())
		}
		code, err = d.Exec(ctx, "quay", []string{"/datastorage"}, collectors.ExecOptions{})
		if err == nil || code != 126 || !strings.Contains(err.Error(), "permission denied") {
			t.Errorf("Exec of a directory = %d, %v; want 126 and an error saying permission denied", code, err)
		}
		if _, err := d.Exec(ctx, "quay", nil, collectors.ExecOptions{}); err == nil {
			t.Error("Exec without a command succeeded")
		}
		_, err = d.Exec(ctx, "quay", []string{"/quayctl", "version"}, collectors.ExecOptions{Container: "sidecar"})
		if !errors.Is(err, collectors.ErrNotSupported) {
			t.Errorf("Exec with another container: %v; want ErrNotSupported", err)
		}
		var out bytes.Buffer
		if _, err := d.Exec(ctx, "quay", []string{"/quayctl", "version"}, collectors.ExecOptions{Container: "quay", Stdout: &out}); err != nil || !strings.Contains(out.String(), "quayctl") {
			t.Errorf("Exec with the container's own name: %v %q", err, out.String())
		}
	})

	t.Run("ExecStdin", func(t *testing.T) {
		// A real administrator's task: create a user in the registry's
		// database, the password on standard input.
		var stdout, stderr bytes.Buffer
		code, err := d.Exec(ctx, "quay", []string{"/quayctl", "user", "create", "probeuser", "--password-stdin"},
			collectors.ExecOptions{Stdin: strings.NewReader(probePassword + "\n"), Stdout: &stdout, Stderr: &stderr})
		if err != nil || code != 0 || !strings.Contains(stdout.String(), "Created user probeuser") {
			t.Fatalf("Exec with stdin = %d, %v; stdout %q, stderr %q", code, err, stdout.String(), stderr.String())
		}
	})

	t.Run("TTYLogs", func(t *testing.T) {
		env.Run(t, "run", "-t", "--name", "redis", "--network", "none", testImage, "version")
		defer env.Run(t, "rm", "-f", "redis")
		logs := logsOf(t, d, "redis")
		if !bytes.Contains(logs, []byte("quayctl")) {
			t.Errorf("logs of a container with a terminal = %q", logs)
		}
		if c := components(t, d)["redis"]; c.State != "exited" || c.ExitCode == nil || *c.ExitCode != 0 || c.Reason != "Completed" {
			t.Errorf("redis = %+v", c)
		}
	})

	t.Run("Stats", func(t *testing.T) {
		s, err := d.Stats(ctx, "quay")
		if err != nil {
			t.Fatal(err)
		}
		if s.MemoryBytes == 0 || s.MemoryLimitBytes != 512<<20 || s.PIDs == 0 {
			t.Errorf("Stats(quay) = %+v; want memory > 0, limit 512 MiB, pids > 0", s)
		}
	})

	t.Run("LogsPreviousAfterRestart", func(t *testing.T) {
		before := components(t, d)["quay"]
		err := d.Logs(ctx, "quay", collectors.LogOptions{Previous: true}, io.Discard)
		if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "no previous instance") {
			t.Errorf("Logs(Previous) of a container never restarted: %v; want fs.ErrNotExist saying there is no previous instance", err)
		}
		env.Run(t, "restart", "--time", "10", "quay")
		waitHealthy(t, base)
		get(t, base+quayMarkerPath+"-second")
		waitLog(t, d, "quay", quayMarkerPath+"-second") // the access log line follows the response
		after := components(t, d)["quay"]
		if !after.StartedAt.After(before.StartedAt) {
			t.Errorf("StartedAt %s not after %s", after.StartedAt, before.StartedAt)
		}
		// podman counts only restarts by the restart policy.
		if after.Restarts != before.Restarts {
			t.Errorf("restarts %d → %d after podman restart", before.Restarts, after.Restarts)
		}
		if after.ExitCode == nil || *after.ExitCode != 0 {
			t.Errorf("last exit code after a clean restart = %v, want 0", after.ExitCode)
		}
		var prev, all bytes.Buffer
		if err := d.Logs(ctx, "quay", collectors.LogOptions{Previous: true}, &prev); err != nil {
			t.Fatal(err)
		}
		if err := d.Logs(ctx, "quay", collectors.LogOptions{}, &all); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(prev.String(), quayMarkerPath+"-first") || strings.Contains(prev.String(), quayMarkerPath+"-second") {
			t.Errorf("previous logs must hold the first instance's request only:\n%s", prev.String())
		}
		t.Logf("previous log: %d start lines, ends with %q", strings.Count(prev.String(), "quayctl serve ready"), lastLine(prev.String()))
		if !strings.Contains(all.String(), quayMarkerPath+"-first") || !strings.Contains(all.String(), quayMarkerPath+"-second") {
			t.Errorf("logs must hold both instances:\n%s", all.String())
		}
		if n := strings.Count(all.String(), "quayctl serve ready"); n != 2 {
			t.Errorf("logs have %d start lines, want 2", n)
		}
		// Since: a short window excludes the first instance's lines.
		var recent bytes.Buffer
		if err := d.Logs(ctx, "quay", collectors.LogOptions{Since: time.Since(after.StartedAt) + time.Second}, &recent); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(recent.String(), quayMarkerPath+"-first") || !strings.Contains(recent.String(), quayMarkerPath+"-second") {
			t.Errorf("Logs(Since) = %s", recent.String())
		}
	})

	t.Run("Debug", func(t *testing.T) {
		orig := inspect(t, env, "quay")
		p, err := d.PlanDebug(ctx, false)
		if err != nil || !p.NoOp {
			t.Fatalf("PlanDebug(off) on a container without DEBUGLOG = %+v, %v; want NoOp", p, err)
		}
		p, err = d.PlanDebug(ctx, true)
		if err != nil || p.NoOp || p.Target != "container quay" || !strings.Contains(strings.Join(p.Changes, "\n"), "add env DEBUGLOG=true") {
			t.Fatalf("PlanDebug(on) = %+v, %v", p, err)
		}
		t.Logf("plan: %s", strings.Join(p.Changes, "; "))

		if err := d.SetDebug(ctx, true); err != nil {
			t.Fatal(err)
		}
		waitHealthy(t, base)
		on := inspect(t, env, "quay")
		if on["Id"] == orig["Id"] {
			t.Fatal("SetDebug(on) did not re-create the container")
		}
		if !containsString(on["Config"].(map[string]any)["Env"], "DEBUGLOG=true") {
			t.Errorf("re-created container env lacks DEBUGLOG=true: %v", on["Config"].(map[string]any)["Env"])
		}
		compareInspect(t, orig, on)
		if c := components(t, d)["quay"]; c.Env["DEBUGLOG"] != "true" {
			t.Errorf("Component env DEBUGLOG = %q", c.Env["DEBUGLOG"])
		}
		if p, err := d.PlanDebug(ctx, true); err != nil || !p.NoOp {
			t.Errorf("PlanDebug(on) after SetDebug(on) = %+v, %v; want NoOp", p, err)
		}
		if out := env.Run(t, "ps", "-a", "--format", "{{.Names}}"); strings.Contains(out, "quayctl-previous") {
			t.Errorf("the original container was left behind:\n%s", out)
		}
		// The data volume came along: the user created before is there.
		var stderr bytes.Buffer
		code, err := d.Exec(ctx, "quay", []string{"/quayctl", "user", "create", "probeuser", "--password-stdin"},
			collectors.ExecOptions{Stdin: strings.NewReader(probePassword + "\n"), Stderr: &stderr})
		if err != nil || code != 1 || !strings.Contains(stderr.String(), "already exists") {
			t.Errorf("user create after re-create = %d, %v, %q; want the user from before (exit 1, already exists)", code, err, stderr.String())
		}

		if err := d.SetDebug(ctx, false); err != nil {
			t.Fatal(err)
		}
		waitHealthy(t, base)
		off := inspect(t, env, "quay")
		if containsString(off["Config"].(map[string]any)["Env"], "DEBUGLOG=true") {
			t.Error("SetDebug(off) kept DEBUGLOG=true")
		}
		compareInspect(t, orig, off)
		// The anonymous /datastorage volume (and with it the database)
		// survived both re-creations.
		if !bytes.Contains(logsOf(t, d, "quay"), []byte("quayctl serve ready")) {
			t.Error("no start line after debug off")
		}
	})

	t.Run("DebugBridgePorts", func(t *testing.T) {
		// Bridge network, a published port, hostname, DNS, extra hosts,
		// a named volume and a tmpfs: all carried over by SetDebug.
		hostPort := freePort(t)
		ctx2, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		out, err := env.Command(ctx2, "run", "-d", "--name", "quay-bridge",
			"-p", fmt.Sprintf("127.0.0.1:%d:8080", hostPort),
			"--hostname", "quay-bridge.example.com", "--dns", "10.0.0.53", "--dns-search", "example.com",
			"--add-host", "db.example.com:10.1.1.1",
			"-v", "quayctl-test-data:/datastorage", "--tmpfs", "/scratch:rw,size=1m",
			"--cap-drop", "NET_RAW", "--pids-limit", "300", "--stop-timeout", "7",
			"--restart", "always", "-e", "DEBUGLOG=false",
			testImage).CombinedOutput()
		if err != nil {
			if testpodman.InCI() {
				t.Fatalf("podman run with a bridge network: %v\n%s", err, out)
			}
			t.Skipf("SKIPPING: bridge networking does not work here: %v\n%s", err, out)
		}
		defer env.Run(t, "rm", "-f", "quay-bridge")
		bbase := fmt.Sprintf("http://127.0.0.1:%d", hostPort)
		waitHealthy(t, bbase)
		orig := inspect(t, env, "quay-bridge")
		db, err := podman.New(ctx, podman.Options{URL: sock, Components: map[string]string{"quay": "quay-bridge"}})
		if err != nil {
			t.Fatal(err)
		}
		p, err := db.PlanDebug(ctx, true)
		if err != nil || p.NoOp || !strings.Contains(strings.Join(p.Changes, "\n"), "set env DEBUGLOG=true (now false)") {
			t.Fatalf("PlanDebug(on) with DEBUGLOG=false = %+v, %v", p, err)
		}
		if err := db.SetDebug(ctx, true); err != nil {
			t.Fatal(err)
		}
		waitHealthy(t, bbase) // the port is published again
		on := inspect(t, env, "quay-bridge")
		if !containsString(on["Config"].(map[string]any)["Env"], "DEBUGLOG=true") {
			t.Errorf("env lacks DEBUGLOG=true")
		}
		compareInspect(t, orig, on)
		// Off removes DEBUGLOG altogether (the original had DEBUGLOG=false).
		if err := db.SetDebug(ctx, false); err != nil {
			t.Fatal(err)
		}
		waitHealthy(t, bbase)
		off := inspect(t, env, "quay-bridge")
		for _, e := range off["Config"].(map[string]any)["Env"].([]any) {
			if strings.HasPrefix(e.(string), "DEBUGLOG=") {
				t.Errorf("env after SetDebug(off) has %s", e)
			}
		}
		compareInspect(t, orig, off)
	})

	t.Run("DebugRollback", func(t *testing.T) {
		// A quay container whose bind mount source disappears cannot be
		// re-created: SetDebug must give the original back unchanged.
		gone := t.TempDir()
		env.Run(t, "create", "--name", "quay-victim", "--network", "none", "-v", gone+":/extra", testImage)
		if err := os.RemoveAll(gone); err != nil {
			t.Fatal(err)
		}
		before := inspect(t, env, "quay-victim")
		dv, err := podman.New(ctx, podman.Options{URL: sock, Components: map[string]string{"quay": "quay-victim"}})
		if err != nil {
			t.Fatal(err)
		}
		err = dv.SetDebug(ctx, true)
		if err == nil || !strings.Contains(err.Error(), "restored unchanged") {
			t.Fatalf("SetDebug with a missing bind source = %v; want an error saying the original was restored", err)
		}
		t.Logf("rollback error: %v", err)
		after := inspect(t, env, "quay-victim")
		if after["Id"] != before["Id"] {
			t.Errorf("container ID %v → %v; the original must be restored, not re-created", before["Id"], after["Id"])
		}
		if out := env.Run(t, "ps", "-a", "--format", "{{.Names}}"); strings.Contains(out, "quayctl-previous") {
			t.Errorf("leftover containers:\n%s", out)
		}
		// A leftover backup container blocks SetDebug before anything changes.
		env.Run(t, "create", "--name", "quay-victim-quayctl-previous", testImage)
		err = dv.SetDebug(ctx, true)
		if err == nil || !strings.Contains(err.Error(), "already exists") || !strings.Contains(err.Error(), "nothing was changed") {
			t.Errorf("SetDebug with a leftover backup container: %v", err)
		}
		if got := inspect(t, env, "quay-victim"); got["Id"] != before["Id"] {
			t.Error("SetDebug changed the container although it refused")
		}
		env.Run(t, "rm", "-f", "quay-victim", "quay-victim-quayctl-previous")

		// A --rm container disappears when stopped: refused.
		env.Run(t, "run", "-d", "--rm", "--name", "quay-rm", "--network", "none", testImage)
		defer env.Run(t, "rm", "-f", "--ignore", "quay-rm")
		drm, err := podman.New(ctx, podman.Options{URL: sock, Components: map[string]string{"quay": "quay-rm"}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := drm.PlanDebug(ctx, true); err == nil || !strings.Contains(err.Error(), "--rm") {
			t.Errorf("PlanDebug of a --rm container: %v", err)
		}
		if err := drm.SetDebug(ctx, true); err == nil || !strings.Contains(err.Error(), "--rm") {
			t.Errorf("SetDebug of a --rm container: %v", err)
		}
	})

	t.Run("Overrides", func(t *testing.T) {
		do, err := podman.New(ctx, podman.Options{URL: sock, Components: map[string]string{"mirror": "postgresql-quay"}})
		if err != nil {
			t.Fatal(err)
		}
		comps := components(t, do)
		if m, ok := comps["mirror"]; !ok || m.Instance != "postgresql-quay" {
			t.Errorf("override mirror=postgresql-quay: components %v", comps)
		}
		if _, ok := comps["database"]; ok {
			t.Error("a container named by an override must not also play its discovered role")
		}
		bad, err := podman.New(ctx, podman.Options{URL: sock, Components: map[string]string{"quay": "no-such-container"}})
		if err != nil {
			t.Fatal(err)
		}
		_, err = bad.Components(ctx)
		if err == nil || !strings.Contains(err.Error(), `--component quay=no-such-container`) || !strings.Contains(err.Error(), "postgresql-quay") {
			t.Errorf("override naming a missing container: %v", err)
		}
	})

	t.Run("EmbeddedDefault", func(t *testing.T) {
		// No /conf/stack/config.yaml: the embedded default under
		// /datastorage (the image's anonymous volume, writable by 1001).
		port2 := freePort(t)
		env.Run(t, "run", "-d", "--name", "quay-embedded", "--network", "host", testImage,
			"serve", "--listen", fmt.Sprintf("127.0.0.1:%d", port2), "--data-dir", "/datastorage")
		defer env.Run(t, "rm", "-f", "quay-embedded")
		waitHealthy(t, fmt.Sprintf("http://127.0.0.1:%d", port2))
		logs := logsOf(t, d, "quay-embedded")
		if !bytes.Contains(logs, []byte("embedded default")) {
			t.Errorf("quay-embedded does not run the embedded default:\n%s", logs)
		}
		user := strings.TrimSpace(env.Run(t, "inspect", "--format", "{{.Config.User}}", "quay-embedded"))
		if user != "1001" {
			t.Errorf("image user = %q, want 1001", user)
		}
		// Two quay containers, both running: "quay" is ambiguous.
		err := d.Logs(ctx, "quay", collectors.LogOptions{Tail: 1}, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "has 2 containers") {
			t.Errorf("Logs(quay) with two running quay containers: %v", err)
		}
	})

	t.Run("ServiceGone", func(t *testing.T) {
		// A stale socket file: the service stopped, the file stayed.
		stale := filepath.Join(env.Dir, "stale.sock")
		l, err := net.Listen("unix", stale)
		if err != nil {
			t.Fatal(err)
		}
		if ul, ok := l.(*net.UnixListener); ok {
			ul.SetUnlinkOnClose(false)
		}
		l.Close()
		_, err = podman.New(ctx, podman.Options{URL: "unix://" + stale})
		var ue *podman.UnreachableError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), "systemctl start podman.socket") {
			t.Errorf("New on a stale socket: %v", err)
		}
	})
}

// TestNewSocketMissing needs no podman.
func TestNewSocketMissing(t *testing.T) {
	dir := t.TempDir()
	url := "unix://" + filepath.Join(dir, "podman", "podman.sock")
	_, err := podman.New(context.Background(), podman.Options{URL: url})
	var ue *podman.UnreachableError
	if !errors.As(err, &ue) {
		t.Fatalf("New with a missing socket: %v; want *UnreachableError", err)
	}
	for _, want := range []string{
		"podman service not reachable at " + url,
		"does not exist",
		"systemctl start podman.socket",
		"podman system service --time=0 " + url,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	notSock := filepath.Join(dir, "file")
	os.WriteFile(notSock, nil, 0o644)
	if _, err := podman.New(context.Background(), podman.Options{URL: "unix://" + notSock}); err == nil || !strings.Contains(err.Error(), "is not a socket") {
		t.Errorf("New on a regular file: %v", err)
	}
	if _, err := podman.New(context.Background(), podman.Options{URL: "podman.sock"}); err == nil || !strings.Contains(err.Error(), "not valid") {
		t.Errorf("New with a URL without scheme: %v", err)
	}
}

// --- helpers ---

// buildImage builds testImage from the repository's Containerfile and a
// freshly built static quayctl (falling back to make build's bin/quayctl
// when the build fails, e.g. while other packages are being edited).
func buildImage(t *testing.T, env *testpodman.Env) {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "Containerfile")); err != nil {
		t.Fatalf("no Containerfile at the repository root: %v", err)
	}
	ctxDir := t.TempDir()
	bin := filepath.Join(ctxDir, "bin", "quayctl")
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	start := time.Now()
	cmd := exec.Command(goBin, "build", "-tags", goTags, "-o", bin, "./cmd/quayctl")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		fallback := filepath.Join(root, "bin", "quayctl")
		if _, serr := os.Stat(fallback); serr != nil {
			t.Fatalf("go build ./cmd/quayctl: %v\n%s", err, out)
		}
		t.Logf("go build ./cmd/quayctl failed (%v), using %s:\n%s", err, fallback, out)
		b, err := os.ReadFile(fallback)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(bin, b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("quayctl built in %s", time.Since(start).Round(time.Millisecond))
	// The directory skeleton make image creates (see the Containerfile).
	for dir, mode := range map[string]os.FileMode{"conf/stack": 0o775, "datastorage": 0o775, "tmp": 0o777 | os.ModeSticky} {
		p := filepath.Join(ctxDir, "bin", "image-root", dir)
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	cf, err := os.ReadFile(filepath.Join(root, "Containerfile"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ctxDir, "Containerfile"), cf, 0o644); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	env.Run(t, "build", "--quiet", "--pull=never", "--network=none", "-t", testImage, "-f", filepath.Join(ctxDir, "Containerfile"), ctxDir)
	t.Logf("image built in %s", time.Since(start).Round(time.Millisecond))
}

// settle removes the test's containers and waits for the podman processes
// their exits start (conmon's exit command, podman container cleanup), so
// that removing the private tree afterwards does not race with them.
//
// conmon keeps every exec session started through the API for podman's
// exit_command_delay (300s by default, so clients can read the exit code;
// podman 4.3 has no exec remove endpoint): those conmons, children of this
// test's podman service, are ended by pid.
func settle(t *testing.T, env *testpodman.Env) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if out, err := env.Command(ctx, "rm", "--all", "--force", "--time", "0").CombinedOutput(); err != nil {
		t.Logf("podman rm --all: %v\n%s", err, out)
	}
	for _, h := range helpers(env.GraphRoot) {
		if strings.Contains(h.cmdline, "--exec-attach") {
			syscall.Kill(h.pid, syscall.SIGTERM)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if len(helpers(env.GraphRoot)) == 0 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, h := range helpers(env.GraphRoot) {
		t.Logf("podman helper process still running: %d %.200s", h.pid, h.cmdline)
	}
}

type proc struct {
	pid     int
	cmdline string
}

// helpers lists processes (but the podman service) whose command line
// names root.
func helpers(root string) []proc {
	files, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	var out []proc
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil || !bytes.Contains(b, []byte(root)) || bytes.Contains(b, []byte("system\x00service")) {
			continue
		}
		pid, err := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		if err != nil || pid == os.Getpid() {
			continue
		}
		out = append(out, proc{pid: pid, cmdline: strings.ReplaceAll(string(b), "\x00", " ")})
	}
	return out
}

// waitLog waits until component's log contains s.
func waitLog(t *testing.T, d collectors.Deployment, component, s string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		logs := logsOf(t, d, component)
		if bytes.Contains(logs, []byte(s)) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s's log has no %q after 10s:\n%s", component, s, logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func waitHealthy(t *testing.T, base string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		resp, err := http.Get(base + "/health/instance")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			last = fmt.Sprintf("%s: %s", resp.Status, body)
		} else {
			last = err.Error()
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s/health/instance did not answer 200 within 60s: %s", base, last)
}

// waitExited waits until a container has exited for good after restarts
// restarts by its policy.
func waitExited(t *testing.T, env *testpodman.Env, name string, restarts int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		last = strings.TrimSpace(env.Run(t, "inspect", "--format", "{{.State.Status}} {{.RestartCount}}", name))
		if last == fmt.Sprintf("exited %d", restarts) {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("container %s: state and restarts %q, want \"exited %d\"", name, last, restarts)
}

func get(t *testing.T, u string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

func components(t *testing.T, d collectors.Deployment) map[string]collectors.Component {
	t.Helper()
	list, err := d.Components(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]collectors.Component{}
	for _, c := range list {
		out[c.Name] = c
	}
	return out
}

func logsOf(t *testing.T, d collectors.Deployment, component string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := d.Logs(context.Background(), component, collectors.LogOptions{}, &buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func readAll(t *testing.T, d collectors.Deployment, component, p string) []byte {
	t.Helper()
	rc, err := d.ReadFile(context.Background(), component, p)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func inspect(t *testing.T, env *testpodman.Env, name string) map[string]any {
	t.Helper()
	var out []map[string]any
	if err := json.Unmarshal([]byte(env.Run(t, "inspect", name)), &out); err != nil || len(out) != 1 {
		t.Fatalf("podman inspect %s: %v", name, err)
	}
	return out[0]
}

func containsString(list any, s string) bool {
	l, _ := list.([]any)
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// compareInspect checks that two containers' inspect data are the same
// apart from what differs between any two containers (ID, times, runtime
// paths, PIDs…) and DEBUGLOG in the environment.
func compareInspect(t *testing.T, a, b map[string]any) {
	t.Helper()
	na, nb := normalize(a), normalize(b)
	var diffs []string
	diffMaps("", na, nb, &diffs)
	if len(diffs) > 0 {
		t.Errorf("re-created container differs from the original:\n  %s", strings.Join(diffs, "\n  "))
	}
}

func normalize(in map[string]any) map[string]any {
	b, _ := json.Marshal(in)
	var m map[string]any
	json.Unmarshal(b, &m)
	for _, k := range []string{"Id", "Created", "State", "ResolvConfPath", "HostnamePath", "HostsPath", "StaticDir",
		"OCIConfigPath", "ConmonPidFile", "PidFile", "Rootfs", "ExecIDs", "GraphDriver", "SizeRw", "SizeRootFs",
		"Namespace", "lockNumber", "Dependencies", "MountLabel", "ProcessLabel"} {
		delete(m, k)
	}
	if cfg, ok := m["Config"].(map[string]any); ok {
		delete(cfg, "CreateCommand") // podman run vs the API
		if ann, ok := cfg["Annotations"].(map[string]any); ok {
			delete(ann, "io.kubernetes.cri-o.Created")
		}
		if env, ok := cfg["Env"].([]any); ok {
			var kept []string
			for _, e := range env {
				if s, _ := e.(string); !strings.HasPrefix(s, "DEBUGLOG=") {
					kept = append(kept, s)
				}
			}
			sort.Strings(kept)
			cfg["Env"] = kept
		}
	}
	if hc, ok := m["HostConfig"].(map[string]any); ok {
		if lc, ok := hc["LogConfig"].(map[string]any); ok {
			delete(lc, "Path") // under the container's own directory
		}
		// Binds: the same options, in any order.
		if binds, ok := hc["Binds"].([]any); ok {
			for i, b := range binds {
				s, _ := b.(string)
				if parts := strings.Split(s, ":"); len(parts) == 3 {
					opts := strings.Split(parts[2], ",")
					sort.Strings(opts)
					binds[i] = parts[0] + ":" + parts[1] + ":" + strings.Join(opts, ",")
				}
			}
		}
	}
	if ns, ok := m["NetworkSettings"].(map[string]any); ok {
		// Addresses are handed out again.
		for _, k := range []string{"SandboxID", "SandboxKey", "IPAddress", "MacAddress", "EndpointID"} {
			delete(ns, k)
		}
		if nets, ok := ns["Networks"].(map[string]any); ok {
			for _, n := range nets {
				if n, ok := n.(map[string]any); ok {
					for _, k := range []string{"IPAddress", "MacAddress", "EndpointID", "Aliases"} {
						delete(n, k)
					}
				}
			}
		}
	}
	b, _ = json.Marshal(m)
	var out map[string]any
	json.Unmarshal(b, &out)
	return out
}

func diffMaps(path string, a, b any, diffs *[]string) {
	am, aok := a.(map[string]any)
	bm, bok := b.(map[string]any)
	if aok && bok {
		keys := map[string]bool{}
		for k := range am {
			keys[k] = true
		}
		for k := range bm {
			keys[k] = true
		}
		sorted := make([]string, 0, len(keys))
		for k := range keys {
			sorted = append(sorted, k)
		}
		sort.Strings(sorted)
		for _, k := range sorted {
			diffMaps(path+"."+k, am[k], bm[k], diffs)
		}
		return
	}
	if !reflect.DeepEqual(a, b) {
		ja, _ := json.Marshal(a)
		jb, _ := json.Marshal(b)
		*diffs = append(*diffs, fmt.Sprintf("%s: %s → %s", path, ja, jb))
	}
}
