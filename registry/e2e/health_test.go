package e2e

import (
	"database/sql"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/quayctl/quayctl/internal/testpg"
	"github.com/quayctl/quayctl/internal/testredis"
	"github.com/quayctl/quayctl/registry/server"
)

type healthBody struct {
	Data struct {
		Services map[string]bool `json:"services"`
	} `json:"data"`
	StatusCode int `json:"status_code"`
}

func getHealth(t *testing.T, reg *registry, path string) (int, healthBody) {
	t.Helper()
	resp, err := http.Get(reg.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var h healthBody
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if h.StatusCode != resp.StatusCode {
		t.Fatalf("%s: status_code %d but HTTP %d", path, h.StatusCode, resp.StatusCode)
	}
	return resp.StatusCode, h
}

// TestHealthStorageFailure: storage that stops accepting writes turns
// /health/endtoend unhealthy with storage=false, while /health/instance,
// which skips storage by default as Quay's does, stays healthy.
func TestHealthStorageFailure(t *testing.T) {
	storageDir := filepath.Join(t.TempDir(), "storage")
	reg := startRegistry(t, "sqlite:///"+filepath.Join(t.TempDir(), "q.db"), func(s *server.Settings) {
		s.Locations["default"] = server.Location{Driver: "LocalStorage", Params: map[string]any{"storage_path": storageDir}}
	})
	if code, h := getHealth(t, reg, "/health/endtoend"); code != 200 || !h.Data.Services["storage"] {
		t.Fatalf("healthy endtoend: %d %+v", code, h)
	}
	if err := os.RemoveAll(storageDir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(storageDir, []byte("not a directory"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, h := getHealth(t, reg, "/health/endtoend")
	if code != 503 || h.Data.Services["storage"] || !h.Data.Services["database"] {
		t.Fatalf("broken storage: %d %+v", code, h)
	}
	if code, h := getHealth(t, reg, "/health/instance"); code != 200 {
		t.Fatalf("instance with broken storage (skipped by default): %d %+v", code, h)
	}
}

// TestHealthDatabaseFailure: a PostgreSQL that refuses connections makes
// both endpoints unhealthy with database=false; it recovers by itself.
func TestHealthDatabaseFailure(t *testing.T) {
	uri := testpg.NewDatabase(t)
	reg := startRegistry(t, uri, nil)
	if code, h := getHealth(t, reg, "/health/instance"); code != 200 || !h.Data.Services["database"] {
		t.Fatalf("healthy instance: %d %+v", code, h)
	}
	u, _ := url.Parse(uri)
	dbName := u.Path[1:]
	u.Path = "/postgres"
	admin, err := sql.Open("pgx", u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	exec := func(q string) {
		if _, err := admin.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec(`ALTER DATABASE "` + dbName + `" WITH ALLOW_CONNECTIONS false`)
	exec(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '` + dbName + `'`)
	for _, p := range []string{"/health/instance", "/health/endtoend"} {
		if code, h := getHealth(t, reg, p); code != 503 || h.Data.Services["database"] {
			t.Fatalf("%s with the database refusing connections: %d %+v", p, code, h)
		}
	}
	exec(`ALTER DATABASE "` + dbName + `" WITH ALLOW_CONNECTIONS true`)
	if code, h := getHealth(t, reg, "/health/instance"); code != 200 {
		t.Fatalf("instance after the database came back: %d %+v", code, h)
	}
}

// TestHealthRedis: with BUILDLOGS_REDIS configured, endtoend checks a real
// Redis (PING, SET, GET) and reports it down when it stops.
func TestHealthRedis(t *testing.T) {
	rs := testredis.Start(t)
	stop := rs.Stop
	port := rs.Port
	reg := startRegistry(t, "sqlite:///"+filepath.Join(t.TempDir(), "q.db"), func(s *server.Settings) {
		s.Redis = &server.Redis{Host: "127.0.0.1", Port: port}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, h := getHealth(t, reg, "/health/endtoend")
		if code == 200 && h.Data.Services["redis"] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis never became healthy: %d %+v", code, h)
		}
		time.Sleep(100 * time.Millisecond) // redis-server is still starting
	}
	stop()
	if code, h := getHealth(t, reg, "/health/endtoend"); code != 503 || h.Data.Services["redis"] {
		t.Fatalf("endtoend with redis stopped: %d %+v", code, h)
	}

}
