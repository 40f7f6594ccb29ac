package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quayctl/quayctl/internal/testregistry"
	"github.com/quayctl/quayctl/registry/config"
	"github.com/quayctl/quayctl/registry/server"
)

// seededSecrets are in the e2e config; none may appear in redacted output.
var seededSecrets = []string{
	"SEED-secret-key-9f8e7d", "SEED-database-secret-key-1a2b3c", "SEED-redis-password-4d5e",
	"SEED-events-password-6f7a", "SEED-mail-password-8b9c", "SEED-github-client-secret-0d1e",
}

// startToolkitServe runs a real quayctl serve core in-process (SQLite and local
// storage in a temp dir) on 127.0.0.1, with a config.yaml holding seeded
// secrets and a Redis that is not there (so /health/endtoend is unhealthy).
// It returns the base URL and the config file.
func startToolkitServe(t *testing.T) (string, string) {
	t.Helper()
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	cfgText := fmt.Sprintf(`SERVER_HOSTNAME: %s
PREFERRED_URL_SCHEME: http
SETUP_COMPLETE: true
TESTING: false
AUTHENTICATION_TYPE: Database
FEATURE_USER_INITIALIZE: true
SECRET_KEY: %s
DATABASE_SECRET_KEY: %s
DB_URI: sqlite:///%s
DISTRIBUTED_STORAGE_CONFIG:
  default:
    - LocalStorage
    - storage_path: %s
DISTRIBUTED_STORAGE_PREFERENCE: [default]
BUILDLOGS_REDIS:
  host: 127.0.0.1
  port: 1
  password: %s
USER_EVENTS_REDIS:
  host: 127.0.0.1
  port: 1
  password: %s
MAIL_PASSWORD: %s
GITHUB_LOGIN_CONFIG:
  CLIENT_ID: github-client-id
  CLIENT_SECRET: %s
`, addr, seededSecrets[0], seededSecrets[1], filepath.Join(dir, "quay.db"), filepath.Join(dir, "storage"),
		seededSecrets[2], seededSecrets[3], seededSecrets[4], seededSecrets[5])
	cfgPath := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, _, err := config.Load(config.LoadOptions{Path: cfgPath, Env: func(string) string { return "" }})
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	testregistry.Serve(t, ln, server.FromConfig(cfg))
	return "http://" + addr, cfgPath
}

func TestToolkitEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a registry; skipped with -short")
	}
	url, cfgPath := startToolkitServe(t)
	ctx := context.Background()
	noSecret := func(t *testing.T, what, s string) {
		t.Helper()
		for _, sec := range seededSecrets {
			if strings.Contains(s, sec) {
				t.Errorf("%s shows secret %s:\n%s", what, sec, s)
			}
		}
	}

	t.Run("config get redacts", func(t *testing.T) {
		for _, format := range []string{"yaml", "json"} {
			code, stdout, stderr := tkRun(t, ctx, nil, "config", "get", "--url", url, "--config", cfgPath, "-o", format)
			if code != ExitOK {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			noSecret(t, "config get -o "+format, stdout+stderr)
			if !strings.Contains(stdout, "<redacted>") || !strings.Contains(stdout, "SERVER_HOSTNAME") {
				t.Errorf("output:\n%s", stdout)
			}
			if !strings.Contains(stderr, "6 values redacted (quay-config-key: 6); --show-secrets prints them") {
				t.Errorf("stderr = %q", stderr)
			}
		}
		code, stdout, _ := tkRun(t, ctx, nil, "config", "get", "--config", cfgPath, "-o", "json")
		var cfg map[string]any
		if code != ExitOK || json.Unmarshal([]byte(stdout), &cfg) != nil || cfg["SECRET_KEY"] != "<redacted>" {
			t.Errorf("json: exit %d, %v", code, cfg["SECRET_KEY"])
		}
	})
	t.Run("config get --show-secrets", func(t *testing.T) {
		code, stdout, stderr := tkRun(t, ctx, nil, "config", "get", "--url", url, "--config", cfgPath, "--show-secrets")
		if code != ExitOK {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		for _, sec := range seededSecrets {
			if !strings.Contains(stdout, sec) {
				t.Errorf("--show-secrets hides %s", sec)
			}
		}
		if !strings.Contains(stderr, "do not paste it") {
			t.Errorf("no warning: %q", stderr)
		}
	})
	t.Run("health instance healthy", func(t *testing.T) {
		code, stdout, stderr := tkRun(t, ctx, nil, "health", "--url", url)
		if code != ExitOK || stderr != "" {
			t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
		}
		for _, svc := range []string{"database", "disk_space", "registry_gunicorn", "web_gunicorn", "service_key", "auth"} {
			if !strings.Contains(stdout, "instance\t"+svc+"\ttrue\n") {
				t.Errorf("no healthy row for %s:\n%s", svc, stdout)
			}
		}
	})
	t.Run("health endtoend without redis is unhealthy", func(t *testing.T) {
		// URL from the config's SERVER_HOSTNAME this time.
		code, stdout, stderr := tkRun(t, ctx, nil, "health", "endtoend", "--config", cfgPath)
		if code != ExitUnhealthy {
			t.Fatalf("exit %d, want %d\n%s\n%s", code, ExitUnhealthy, stdout, stderr)
		}
		if !strings.Contains(stdout, "endtoend\tredis\tfalse\n") || !strings.Contains(stdout, "endtoend\tdatabase\ttrue\n") || !strings.Contains(stdout, url+": UNHEALTHY") {
			t.Errorf("stdout:\n%s", stdout)
		}
		if !strings.Contains(stderr, "checking "+url+" (SERVER_HOSTNAME of "+cfgPath) {
			t.Errorf("stderr = %q", stderr)
		}
		noSecret(t, "health", stdout+stderr)
	})
	t.Run("health -o json is Quay's JSON", func(t *testing.T) {
		code, stdout, _ := tkRun(t, ctx, nil, "health", "warning", "--url", url, "-o", "json")
		resp, err := http.Get(url + "/health/warning")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		want := string(body)
		if !strings.HasSuffix(want, "\n") {
			want += "\n"
		}
		if stdout != want {
			t.Errorf("exit %d\n got %q\nwant %q", code, stdout, want)
		}
	})
	t.Run("status of a direct target", func(t *testing.T) {
		code, stdout, stderr := tkRun(t, ctx, nil, "status", "--url", url, "--config", cfgPath)
		if code != ExitOK {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		host := strings.TrimPrefix(url, "http://")
		for _, want := range []string{"Deployment: direct " + url, "quay\t" + host + "\texternal", "database\tsqlite:", "redis\t127.0.0.1:1\texternal"} {
			if !strings.Contains(stdout, want) {
				t.Errorf("no %q in:\n%s", want, stdout)
			}
		}
	})
	t.Run("config validate of the served config", func(t *testing.T) {
		code, stdout, stderr := tkRun(t, ctx, nil, "config", "validate", "--config", cfgPath, "--for", "quayctl")
		if code != ExitOK || !strings.Contains(stdout, "valid for quayctl") {
			t.Errorf("exit %d\n%s\n%s", code, stdout, stderr)
		}
		noSecret(t, "validate", stdout+stderr)
	})
}
