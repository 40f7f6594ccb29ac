// Package testregistry runs quayctl serve's core in-process on a real
// 127.0.0.1 listener for tests: the one harness end-to-end, CLI and dbtools
// tests share, so every test talks HTTP to the real server.
package testregistry

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/registry/remote"
	orasauth "oras.land/oras-go/v2/registry/remote/auth"

	"github.com/quayctl/quayctl/registry/auth"
	"github.com/quayctl/quayctl/registry/server"
	"github.com/quayctl/quayctl/registry/store"
	v2 "github.com/quayctl/quayctl/registry/v2"
)

// Registry is a live server under test.
type Registry struct {
	Addr string // host:port
	URL  string // http://host:port
	Srv  *server.Server
	Dir  string // temporary directory holding its storage
}

// Listen opens a loopback listener; callers that must know the address
// before building settings (a config file naming SERVER_HOSTNAME) use it
// with Serve.
func Listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// Start runs a registry on dbURI with local storage in a temporary
// directory; mutate adjusts the settings first.
func Start(t testing.TB, dbURI string, mutate func(*server.Settings)) *Registry {
	t.Helper()
	dir := t.TempDir()
	ln := Listen(t)
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
	r := Serve(t, ln, s)
	r.Dir = dir
	return r
}

// Serve runs a registry with the given settings on ln until the test ends.
// QUAYCTL_TEST_LOG=1 shows the server's log.
func Serve(t testing.TB, ln net.Listener, s server.Settings) *Registry {
	t.Helper()
	addr := ln.Addr().String()
	logw := io.Discard
	if os.Getenv("QUAYCTL_TEST_LOG") != "" {
		logw = os.Stderr
	}
	log := slog.New(server.WithRequestID(slog.NewTextHandler(logw, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, s, server.Options{Logger: log})
	if err != nil {
		cancel()
		ln.Close()
		t.Fatalf("server.New: %v", err)
	}
	srv.SetSelfURL("http://" + addr)
	srv.Start(ctx)
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 30 * time.Second, ConnContext: v2.ConnContext}
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		_ = hs.Shutdown(sctx)
		cancel()
		_ = srv.Close()
	})
	return &Registry{Addr: addr, URL: "http://" + addr, Srv: srv}
}

// CreateUser adds a user with a password straight into the store.
func (r *Registry) CreateUser(t testing.TB, name, password string) *store.User {
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

// OCIRepository is an authenticated OCI client (oras-go) for repo on r,
// over plain HTTP, as user.
func (r *Registry) OCIRepository(t testing.TB, repo, user, pass string) *remote.Repository {
	t.Helper()
	rr, err := remote.NewRepository(r.Addr + "/" + repo)
	if err != nil {
		t.Fatal(err)
	}
	rr.PlainHTTP = true
	rr.Client = &orasauth.Client{Client: http.DefaultClient, Cache: orasauth.NewCache(),
		Credential: orasauth.StaticCredential(r.Addr, orasauth.Credential{Username: user, Password: pass})}
	return rr
}

// PushBlob pushes content (a blob or a manifest, by media type) to repo
// and returns its descriptor.
func PushBlob(t testing.TB, repo *remote.Repository, content []byte, mediaType string) ocispec.Descriptor {
	t.Helper()
	d := ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(content), Size: int64(len(content))}
	if err := repo.Push(context.Background(), d, bytes.NewReader(content)); err != nil {
		t.Fatalf("push %s to %s: %v", mediaType, repo.Reference, err)
	}
	return d
}
