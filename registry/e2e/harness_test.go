// Package e2e runs the registry end to end: a real `quayctl serve` core on a
// real TCP port, driven by real clients (the OCI conformance suite, podman,
// skopeo) against SQLite and a real PostgreSQL.
package e2e

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/quayctl/quayctl/internal/testpg"
	"github.com/quayctl/quayctl/internal/testregistry"
	"github.com/quayctl/quayctl/internal/tests3"
	"github.com/quayctl/quayctl/registry/server"
	"github.com/quayctl/quayctl/registry/store"
)

func TestMain(m *testing.M) {
	stop := tests3.Begin()
	code := testpg.Run(m)
	stop()
	os.Exit(code)
}

// registry is a live server under test (internal/testregistry).
type registry struct{ *testregistry.Registry }

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
	return &registry{testregistry.Start(t, dbURI, mutate)}
}

// createUser adds a user with a password straight into the store.
func (r *registry) createUser(t testing.TB, name, password string) *store.User {
	t.Helper()
	return r.CreateUser(t, name, password)
}
