package gc

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/quayctl/quayctl/internal/testpg"
	"github.com/quayctl/quayctl/registry/storage"
	"github.com/quayctl/quayctl/registry/storage/local"
	"github.com/quayctl/quayctl/registry/store"
)

func TestMain(m *testing.M) { testpg.Main(m) }

var dialects = []struct {
	name string
	uri  func(t *testing.T) string
}{
	{"sqlite", func(t *testing.T) string { return "sqlite:///" + filepath.Join(t.TempDir(), "quay.db") }},
	{"postgresql", func(t *testing.T) string { return testpg.NewDatabase(t) }},
}

// env is a migrated database with a local storage location "local_us".
type env struct {
	st   *store.DB
	blob storage.Driver
	c    *Collector
}

func newEnv(t *testing.T, uri string) *env {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, uri)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	st.SetDefaultTagExpiration(0) // no time machine: dead tags go at once
	d, err := local.New(map[string]any{"storage_path": t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	// Upload links expire almost at once, so the tests need not wait an hour.
	c := New(st, map[string]storage.Driver{"local_us": d}, Options{Store: store.GCOptions{UploadLinkMargin: -1}})
	return &env{st: st, blob: d, c: c}
}

// linkTTL is short so tests need not wait an hour, yet long enough for a
// busy machine to push the manifest before its blobs lose their links.
const linkTTL = 750 * time.Millisecond

func digestOf(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// putBlob stores content and links it to the repository briefly.
func (e *env) putBlob(t *testing.T, repoID int64, content string) string {
	t.Helper()
	ctx := context.Background()
	d := digestOf([]byte(content))
	path, _ := blobPath(d)
	w, err := e.blob.Writer(ctx, path, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte(content)); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.LinkBlob(ctx, repoID, d, int64(len(content)), "local_us", linkTTL); err != nil {
		t.Fatal(err)
	}
	return d
}

// push stores an image of a config and the given layers under tag.
func (e *env) push(t *testing.T, repoID int64, tag, config string, layers ...string) (string, []string) {
	t.Helper()
	digests := []string{e.putBlob(t, repoID, config)}
	for _, l := range layers {
		digests = append(digests, e.putBlob(t, repoID, l))
	}
	body := `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"digest":"` + digests[0] + `"},"tag":"` + tag + `"}`
	m, err := e.st.PutManifest(context.Background(), store.PutManifestParams{RepositoryID: repoID,
		Manifest:    store.Manifest{Digest: digestOf([]byte(body)), MediaType: "application/vnd.oci.image.manifest.v1+json", Bytes: []byte(body)},
		BlobDigests: digests, Tag: tag})
	if err != nil {
		t.Fatal(err)
	}
	return m.Digest, digests
}

func (e *env) readable(t *testing.T, digest string) bool {
	t.Helper()
	path, _ := blobPath(digest)
	rc, err := e.blob.Reader(context.Background(), path, 0)
	if errors.Is(err, storage.ErrNotFound) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(rc)
	return digestOf(b.Bytes()) == digest
}

func TestCollector(t *testing.T) {
	if testing.Short() {
		t.Skip("needs PostgreSQL; skipped with -short")
	}
	for _, dl := range dialects {
		t.Run(dl.name, func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t, dl.uri(t))
			ns, err := e.st.CreateUser(ctx, store.NewUser{Username: "alice", Email: "alice@example.com"})
			if err != nil {
				t.Fatal(err)
			}
			a, _ := e.st.CreateRepository(ctx, ns.ID, "a", false, ns.ID)
			b, _ := e.st.CreateRepository(ctx, ns.ID, "b", false, ns.ID)
			_, da := e.push(t, a.ID, "latest", "config a", "shared layer", "layer a")
			mb, db := e.push(t, b.ID, "latest", "config b", "shared layer")
			time.Sleep(2 * linkTTL)
			if err := e.st.DeleteTag(ctx, a.ID, "latest"); err != nil {
				t.Fatal(err)
			}
			time.Sleep(5 * time.Millisecond)

			steps := []struct {
				name       string
				dry        bool
				before     func()
				want       Report
				gone, kept []string
			}{
				{name: "dry run", dry: true, want: Report{DryRun: true, Tags: 1, Manifests: Amount{Count: 1},
					Blobs: Amount{2, int64(len("config a") + len("layer a"))}, Objects: Amount{2, int64(len("config a") + len("layer a"))}},
					kept: append(da, db...)},
				{name: "real pass", want: Report{Tags: 1, Manifests: Amount{Count: 1},
					Blobs: Amount{2, 15}, Objects: Amount{2, 15}}, gone: []string{da[0], da[2]}, kept: db},
				{name: "nothing left", kept: db},
				{name: "deleted repository reclaimed", before: func() {
					if err := e.st.DeleteRepository(ctx, b.ID); err != nil {
						t.Fatal(err)
					}
				}, want: Report{Repositories: 1, Tags: 1, Manifests: Amount{Count: 1}, Blobs: Amount{2, 20}, Objects: Amount{2, 20}},
					gone: db},
			}
			for _, s := range steps {
				if s.before != nil {
					s.before()
				}
				rep, err := e.c.Run(ctx, s.dry)
				if err != nil {
					t.Fatalf("%s: %v", s.name, err)
				}
				rep.Manifests.Bytes = 0 // manifest sizes are checked by the store tests
				s.want.Failures = []string{}
				if rep.DryRun != s.want.DryRun || rep.Repositories != s.want.Repositories || rep.Tags != s.want.Tags ||
					rep.Manifests != s.want.Manifests || rep.Blobs != s.want.Blobs || rep.Objects != s.want.Objects || len(rep.Failures) != 0 {
					t.Errorf("%s: report %+v, want %+v", s.name, *rep, s.want)
				}
				for _, d := range s.gone {
					if e.readable(t, d) {
						t.Errorf("%s: %s still in storage", s.name, d)
					}
				}
				for _, d := range s.kept {
					if !e.readable(t, d) {
						t.Errorf("%s: %s lost from storage", s.name, d)
					}
				}
			}
			_ = mb
		})
	}
}

// TestMissingLocation: an object in a location the collector does not know
// is reported and stays scheduled, so a later pass with the location
// configured deletes it.
func TestMissingLocation(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, dialects[0].uri(t))
	ns, _ := e.st.CreateUser(ctx, store.NewUser{Username: "bob", Email: "bob@example.com"})
	r, _ := e.st.CreateRepository(ctx, ns.ID, "r", false, ns.ID)
	d := e.putBlob(t, r.ID, "orphan")
	time.Sleep(2 * linkTTL)
	blind := New(e.st, map[string]storage.Driver{}, Options{Store: store.GCOptions{UploadLinkMargin: -1}})
	rep, err := blind.Run(ctx, false)
	if err != nil || len(rep.Failures) != 1 || rep.Objects.Count != 0 {
		t.Fatalf("without the location: %+v, %v", rep, err)
	}
	rep, err = e.c.Run(ctx, false)
	if err != nil || rep.Objects.Count != 1 || e.readable(t, d) {
		t.Fatalf("with the location: %+v, %v", rep, err)
	}
}
