// Package e2e runs the registry end to end: a real `quayctl serve` core on a
// real TCP port, driven by real clients (the OCI conformance suite, podman,
// skopeo) against SQLite and a real PostgreSQL.
package e2e

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/quayctl/quayctl/internal/testpg"
	"github.com/quayctl/quayctl/registry/auth"
	"github.com/quayctl/quayctl/registry/server"
	"github.com/quayctl/quayctl/registry/store"
)

func TestMain(m *testing.M) { testpg.Main(m) }

// registry is a live server under test.
type registry struct {
	Addr string // host:port
	URL  string
	Srv  *server.Server
	Dir  string
}

// dialects are the databases every end-to-end test runs on.
func dialects(t testing.TB) map[string]func(t testing.TB) string {
	return map[string]func(t testing.TB) string{
		"sqlite": func(t testing.TB) string {
			return "sqlite:///" + filepath.Join(t.TempDir(), "quay.db")
		},
		"postgresql": func(t testing.TB) string { return testpg.NewDatabase(t) },
	}
}

// startRegistry runs the server core on 127.0.0.1 with local storage.
func startRegistry(t testing.TB, dbURI string, mutate func(*server.Settings)) *registry {
	t.Helper()
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	s := server.Settings{
		DBURI: dbURI,
		Locations: map[string]server.Location{
			"default": {Driver: "LocalStorage", Params: map[string]any{"storage_path": filepath.Join(dir, "storage")}},
		},
		Preference:              []string{"default"},
		ServerHostname:          addr,
		CreatePrivateRepoOnPush: true,
		UserInitialize:          true,
		AuthType:                "Database",
		DiskPaths:               []string{dir},
	}
	if mutate != nil {
		mutate(&s)
	}
	logw := io.Discard
	if os.Getenv("QUAYCTL_TEST_LOG") != "" {
		logw = os.Stderr
	}
	log := slog.New(server.WithRequestID(slog.NewTextHandler(logw, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, s, server.Options{Logger: log})
	if err != nil {
		cancel()
		t.Fatalf("server.New: %v", err)
	}
	srv.SetSelfURL("http://" + addr)
	srv.Start(ctx)
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 30 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		_ = hs.Shutdown(sctx)
		cancel()
		_ = srv.Close()
	})
	return &registry{Addr: addr, URL: "http://" + addr, Srv: srv, Dir: dir}
}

// createUser adds a user with a password straight into the store.
func (r *registry) createUser(t testing.TB, name, password string) *store.User {
	t.Helper()
	hash, err := auth.HashPassword(password)
	if err != nil {
		t.Fatal(err)
	}
	u, err := r.Srv.Store.CreateUser(context.Background(), store.NewUser{Username: name, Email: name + "@example.com", PasswordHash: hash, Verified: true})
	if err != nil {
		t.Fatalf("create user %s: %v", name, err)
	}
	return u
}
