package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quayctl/quayctl/internal/testpodman"
)

// podmanSecrets are seeded into the podman deployment's config and
// environment; no toolkit command may print them.
var podmanSecrets = []string{"SEED-pod-secret-key-31c4", "SEED-pod-db-secret-77e1", "SEED-pod-github-secret-0b9a", "SEED-pod-env-password-5d2f", "SEED-pod-path-password-8a8a"}

// TestToolkitPodman runs the toolkit commands, through the real command
// tree, against a real podman service running quayctl serve as the quay
// component (a FROM scratch image of this build) — as an administrator
// would run them against a standalone Quay.
func TestToolkitPodman(t *testing.T) {
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
	bin := testpodman.BuildQuayctl(t)
	const image = "localhost/quayctl:toolkit-test"
	env.BuildScratchImage(t, image, map[string][]byte{
		"quayctl":           bin,
		"datastorage/.keep": nil,
		"tmp/.keep":         nil,
		"var/lib/pgsql/data/userdata/postgresql.conf": []byte("max_connections = 100\nprimary_conninfo = 'host=db user=r password=" + podmanSecrets[3] + "'\n"),
	})

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cfgDir := t.TempDir()
	if err := os.Chmod(cfgDir, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`SERVER_HOSTNAME: %s
PREFERRED_URL_SCHEME: http
SETUP_COMPLETE: true
TESTING: false
AUTHENTICATION_TYPE: Database
DB_URI: sqlite:////datastorage/quay.db
SECRET_KEY: %s
DATABASE_SECRET_KEY: %s
DISTRIBUTED_STORAGE_CONFIG:
  default:
    - LocalStorage
    - storage_path: /datastorage/registry
DISTRIBUTED_STORAGE_PREFERENCE: [default]
GITHUB_LOGIN_CONFIG:
  CLIENT_ID: github-client-id
  CLIENT_SECRET: %s
`, addr, podmanSecrets[0], podmanSecrets[1], podmanSecrets[2])
	if err := os.WriteFile(filepath.Join(cfgDir, "config.yaml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	env.Run(t, "run", "-d", "--name", "quay", "--network", "host",
		"-v", cfgDir+":/conf/stack:ro",
		"-e", "POSTGRESQL_PASSWORD="+podmanSecrets[3],
		image, "/quayctl", "serve", "--listen", addr)
	base := "http://" + addr
	waitFor(t, 60*time.Second, func() bool {
		resp, err := http.Get(base + "/health/instance")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	// A request whose path holds a secret: the access log records the path.
	if resp, err := http.Get(base + "/v2/password=" + podmanSecrets[4]); err == nil {
		resp.Body.Close()
	}

	ctx := context.Background()
	target := "--podman=" + sock
	run := func(t *testing.T, args ...string) (int, string, string) {
		t.Helper()
		code, stdout, stderr := tkRun(t, ctx, nil, append(args, target)...)
		for _, s := range podmanSecrets {
			if strings.Contains(stdout+stderr, s) {
				t.Errorf("quayctl %s shows secret %s:\n%s\n%s", strings.Join(args, " "), s, stdout, stderr)
			}
		}
		return code, stdout, stderr
	}

	t.Run("status", func(t *testing.T) {
		code, stdout, stderr := run(t, "status", "-o", "json")
		var res statusResult
		if code != ExitOK || json.Unmarshal([]byte(stdout), &res) != nil {
			t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
		}
		if res.Kind != "podman" || len(res.Components) == 0 || res.Components[0].Name != "quay" || !res.Components[0].Running() {
			t.Errorf("components: %+v", res.Components)
		}
		if res.Components[0].Stats == nil || res.Components[0].Stats.MemoryBytes == 0 {
			t.Errorf("no stats for the running quay container: %+v (%s)", res.Components[0].Stats, res.Components[0].StatsError)
		}
	})
	t.Run("logs", func(t *testing.T) {
		waitFor(t, 10*time.Second, func() bool {
			_, stdout, _ := run(t, "logs", "--grep", "password=")
			return strings.Contains(stdout, "/v2/password=<redacted>")
		})
		code, stdout, stderr := run(t, "logs", "quay", "--tail", "3")
		if code != ExitOK || strings.Count(stdout, "\n") != 3 {
			t.Errorf("--tail 3: exit %d, %d lines\n%s\n%s", code, strings.Count(stdout, "\n"), stdout, stderr)
		}
		code, _, stderr = run(t, "logs", "clair")
		if code != ExitError || !strings.Contains(stderr, `component "clair" not found (have: quay)`) {
			t.Errorf("unknown component: exit %d, %s", code, stderr)
		}
	})
	t.Run("config get", func(t *testing.T) {
		code, stdout, stderr := run(t, "config", "get")
		if code != ExitOK || !strings.Contains(stdout, "SECRET_KEY: <redacted>") || !strings.Contains(stdout, "CLIENT_SECRET: <redacted>") {
			t.Errorf("exit %d\n%s\n%s", code, stdout, stderr)
		}
		code, stdout, _ = tkRun(t, ctx, nil, "config", "get", "--show-secrets", target)
		if code != ExitOK || !strings.Contains(stdout, podmanSecrets[0]) {
			t.Errorf("--show-secrets: exit %d\n%s", code, stdout)
		}
	})
	t.Run("config validate", func(t *testing.T) {
		code, stdout, stderr := run(t, "config", "validate")
		if code != ExitError || !strings.Contains(stdout, "BUILDLOGS_REDIS") {
			t.Errorf("exit %d (Quay needs Redis, which this config lacks)\n%s\n%s", code, stdout, stderr)
		}
	})
	t.Run("health from SERVER_HOSTNAME", func(t *testing.T) {
		code, stdout, stderr := run(t, "health")
		if code != ExitOK || !strings.Contains(stdout, base+": healthy") || !strings.Contains(stderr, "checking "+base) {
			t.Errorf("exit %d\n%s\n%s", code, stdout, stderr)
		}
	})
	t.Run("db conf", func(t *testing.T) {
		code, stdout, stderr := run(t, "db", "conf", "--component", "database=quay")
		if code != ExitOK || stdout != "max_connections = 100\nprimary_conninfo = 'host=db user=r password=<redacted>'\n" {
			t.Errorf("exit %d\n%q\n%s", code, stdout, stderr)
		}
	})
	t.Run("debug round trip", func(t *testing.T) {
		code, stdout, stderr := run(t, "debug", "on")
		if code != ExitError || !strings.Contains(stderr, "refusing to change the deployment without confirmation") || !strings.Contains(stdout, "Switching debug logging on") {
			t.Fatalf("without --yes: exit %d\n%s\n%s", code, stdout, stderr)
		}
		code, stdout, stderr = run(t, "debug", "on", "--yes")
		if code != ExitOK || !strings.Contains(stdout, "Debug logging is on") {
			t.Fatalf("on: exit %d\n%s\n%s", code, stdout, stderr)
		}
		if env := inspectEnv(t, env, "quay"); !strings.Contains(env, "DEBUGLOG=true") || !strings.Contains(env, "POSTGRESQL_PASSWORD=") {
			t.Errorf("after debug on, env = %s", env)
		}
		code, stdout, _ = run(t, "debug", "on", "--yes")
		if code != ExitOK || !strings.Contains(stdout, "already on") {
			t.Errorf("again: exit %d\n%s", code, stdout)
		}
		code, stdout, stderr = run(t, "debug", "off", "--yes")
		if code != ExitOK || !strings.Contains(stdout, "Debug logging is off") {
			t.Fatalf("off: exit %d\n%s\n%s", code, stdout, stderr)
		}
		if env := inspectEnv(t, env, "quay"); strings.Contains(env, "DEBUGLOG=true") {
			t.Errorf("after debug off, env = %s", env)
		}
	})
}

// inspectEnv is the container's environment as podman inspect shows it.
func inspectEnv(t *testing.T, env *testpodman.Env, name string) string {
	t.Helper()
	return env.Run(t, "inspect", "--format", "{{range .Config.Env}}{{.}} {{end}}", name)
}

func waitFor(t *testing.T, d time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met after %s", d)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
