package e2e

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	s3api "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/quayctl/quayctl/registry/gc"
	"github.com/quayctl/quayctl/registry/server"
	"github.com/quayctl/quayctl/registry/storage/s3"
	"github.com/quayctl/quayctl/registry/store"
)

// Load shape of TestGCUnderPushLoad.
const (
	gcLoadFor    = 8 * time.Second
	gcLinkTTL    = 1500 * time.Millisecond // upload links and hidden $temp- tags: short, so blobs become collectable while pushes still use them
	gcLinkMargin = 250 * time.Millisecond
	gcPassEvery  = 150 * time.Millisecond // between GC passes: often, without starving the pushers
	gcPushers    = 3
	gcReaders    = 2
	gcRepos      = 3
	gcShared     = 16 // layers every pusher reuses, across repositories
	gcTagsEach   = 2  // tags each pusher owns in every repository
)

// loadClient is a goroutine-safe HTTP client for one user: errors are
// returned, never t.Fatal'd, so pushers and readers can run beside the
// test goroutine.
type loadClient struct {
	base, user, pass string
	hc               *http.Client
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

func (c *loadClient) call(method, path string, body []byte, hdr map[string]string) (reply, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		return reply{}, err
	}
	req.SetBasicAuth(c.user, c.pass)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return reply{}, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{}, fmt.Errorf("%s %s: reading the body: %w", method, path, err)
	}
	return reply{resp.StatusCode, resp.Header, b}, nil
}

func (r reply) code() string {
	var e struct {
		Errors []struct{ Code string } `json:"errors"`
	}
	if json.Unmarshal(r.body, &e) == nil && len(e.Errors) > 0 {
		return e.Errors[0].Code
	}
	return fmt.Sprintf("%q", r.body)
}

// uploadBlob stores content in repo one of three ways: a cross-repository
// mount (falling back to the upload the registry opens), a chunked upload,
// or a monolithic one.
func (c *loadClient) uploadBlob(repo, mountFrom string, content []byte, chunked bool) error {
	d := digest.FromBytes(content)
	octet := map[string]string{"Content-Type": "application/octet-stream"}
	if mountFrom != "" {
		r, err := c.call("POST", "/v2/"+repo+"/blobs/uploads/?mount="+d.String()+"&from="+mountFrom, nil, nil)
		if err != nil {
			return err
		}
		switch r.status {
		case http.StatusCreated:
			return nil
		case http.StatusAccepted: // not mountable (collected meanwhile): upload into the session
			return c.finishUpload(r.header.Get("Location"), d, content)
		default:
			return fmt.Errorf("mount %s: %d %s", d, r.status, r.code())
		}
	}
	if !chunked {
		r, err := c.call("POST", "/v2/"+repo+"/blobs/uploads/?digest="+d.String(), content, octet)
		if err != nil {
			return err
		}
		if r.status != http.StatusCreated {
			return fmt.Errorf("monolithic upload of %s: %d %s", d, r.status, r.code())
		}
		return nil
	}
	r, err := c.call("POST", "/v2/"+repo+"/blobs/uploads/", nil, nil)
	if err != nil {
		return err
	}
	if r.status != http.StatusAccepted {
		return fmt.Errorf("start upload: %d %s", r.status, r.code())
	}
	loc := r.header.Get("Location")
	half := len(content) / 2
	r, err = c.call("PATCH", loc, content[:half], map[string]string{"Content-Type": "application/octet-stream",
		"Content-Range": fmt.Sprintf("0-%d", half-1)})
	if err != nil {
		return err
	}
	if r.status != http.StatusAccepted {
		return fmt.Errorf("chunk of %s: %d %s", d, r.status, r.code())
	}
	return c.finishUpload(r.header.Get("Location"), d, content[half:])
}

func (c *loadClient) finishUpload(loc string, d digest.Digest, rest []byte) error {
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	r, err := c.call("PUT", loc+sep+"digest="+d.String(), rest, map[string]string{"Content-Type": "application/octet-stream"})
	if err != nil {
		return err
	}
	if r.status != http.StatusCreated {
		return fmt.Errorf("finish upload of %s: %d %s", d, r.status, r.code())
	}
	return nil
}

const manifestAccept = ocispec.MediaTypeImageManifest + ", " + ocispec.MediaTypeImageIndex

// pullFully fetches ref (tag or digest) and every blob and child it
// references, checking each digest. It returns the manifest digest, the
// manifests (the root and any children) and the blobs it saw. missing
// names the first thing that was not there (404); err is anything else,
// always a failure (a wrong digest, a server error).
func (c *loadClient) pullFully(repo, ref string) (root digest.Digest, manifests, blobs []digest.Digest, missing string, err error) {
	r, err := c.call("GET", "/v2/"+repo+"/manifests/"+ref, nil, map[string]string{"Accept": manifestAccept})
	if err != nil {
		return "", nil, nil, "", err
	}
	if r.status == http.StatusNotFound {
		return "", nil, nil, "manifest " + ref, nil
	}
	if r.status != http.StatusOK {
		return "", nil, nil, "", fmt.Errorf("GET manifest %s/%s: %d %s", repo, ref, r.status, r.code())
	}
	root = digest.FromBytes(r.body)
	if got := r.header.Get("Docker-Content-Digest"); got != root.String() {
		return "", nil, nil, "", fmt.Errorf("manifest %s/%s: Docker-Content-Digest %s, body hashes to %s", repo, ref, got, root)
	}
	if strings.HasPrefix(ref, "sha256:") && ref != root.String() {
		return "", nil, nil, "", fmt.Errorf("manifest %s@%s: body hashes to %s", repo, ref, root)
	}
	manifests = []digest.Digest{root}
	var m struct {
		MediaType string               `json:"mediaType"`
		Config    *ocispec.Descriptor  `json:"config"`
		Layers    []ocispec.Descriptor `json:"layers"`
		Manifests []ocispec.Descriptor `json:"manifests"`
	}
	if err := json.Unmarshal(r.body, &m); err != nil {
		return "", nil, nil, "", fmt.Errorf("manifest %s/%s: %w", repo, ref, err)
	}
	for _, child := range m.Manifests {
		_, cm, cb, miss, err := c.pullFully(repo, child.Digest.String())
		if err != nil || miss != "" {
			return root, nil, nil, miss, err
		}
		manifests = append(manifests, cm...)
		blobs = append(blobs, cb...)
	}
	descs := m.Layers
	if m.Config != nil {
		descs = append([]ocispec.Descriptor{*m.Config}, descs...)
	}
	for _, d := range descs {
		r, err := c.call("GET", "/v2/"+repo+"/blobs/"+d.Digest.String(), nil, nil)
		if err != nil {
			return root, nil, nil, "", err
		}
		if r.status == http.StatusNotFound {
			return root, nil, nil, "blob " + d.Digest.String(), nil
		}
		if r.status != http.StatusOK {
			return root, nil, nil, "", fmt.Errorf("GET blob %s in %s: %d %s", d.Digest, repo, r.status, r.code())
		}
		if got := digest.FromBytes(r.body); got != d.Digest {
			return root, nil, nil, "", fmt.Errorf("blob %s in %s: %d bytes hash to %s", d.Digest, repo, len(r.body), got)
		}
		blobs = append(blobs, d.Digest)
	}
	return root, manifests, blobs, "", nil
}

func randomBlob(r *rand.ChaCha8, lo, hi int) []byte {
	b := make([]byte, lo+int(r.Uint64()%uint64(hi-lo+1)))
	_, _ = r.Read(b)
	return b
}

// image is a manifest ready to push, with the blobs it needs.
type image struct {
	manifest []byte
	blobs    [][]byte
}

func (p *pusher) newImage() image {
	config := []byte(fmt.Sprintf(`{"architecture":"amd64","os":"linux","nonce":%q}`, randomBlob(p.rnd, 16, 16)))
	cd := digest.FromBytes(config)
	blobs := [][]byte{config}
	var layers []ocispec.Descriptor
	add := func(b []byte) {
		blobs = append(blobs, b)
		layers = append(layers, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: digest.FromBytes(b), Size: int64(len(b))})
	}
	add(randomBlob(p.rnd, 512, 32<<10))
	for range 1 + p.rnd.Uint64()%2 {
		add(p.shared[p.rnd.Uint64()%uint64(len(p.shared))])
	}
	return image{manifest: imageManifest(cd, int64(len(config)), layers...), blobs: blobs}
}

// pusher owns its tags, so right after it pushes one, the tag points at
// what it pushed until its own next push, and must pull completely.
type pusher struct {
	id     int
	c      *loadClient
	rnd    *rand.ChaCha8
	shared [][]byte
	repos  []string
	linkOK time.Duration // uploads older than this may have lost their link
	stats  *loadStats
	errorf func(format string, args ...any)
}

type loadStats struct {
	pushes, indexes, deletes, verified atomic.Int64
	slow                               atomic.Int64 // pushes refused because the client outlived its upload links
	pulls, raced                       atomic.Int64
}

func (p *pusher) tag(i int) string { return fmt.Sprintf("p%d-t%d", p.id, i) }

// pushBlobs uploads an image's blobs, choosing how per blob.
func (p *pusher) pushBlobs(repo string, blobs [][]byte) error {
	for _, b := range blobs {
		from := ""
		if p.rnd.Uint64()%3 == 0 {
			from = p.repos[p.rnd.Uint64()%uint64(len(p.repos))]
			if from == repo {
				from = ""
			}
		}
		if err := p.c.uploadBlob(repo, from, b, p.rnd.Uint64()%3 == 0); err != nil {
			return err
		}
	}
	return nil
}

func (p *pusher) putManifest(repo, ref string, body []byte, mediaType string, since time.Time) (bool, error) {
	r, err := p.c.call("PUT", "/v2/"+repo+"/manifests/"+ref, body, map[string]string{"Content-Type": mediaType})
	if err != nil {
		return false, err
	}
	if r.status == http.StatusCreated {
		return true, nil
	}
	// A blob or child pushed longer ago than its link lasts may be
	// collected before the manifest names it: the client was too slow,
	// which is the protocol's rule, not a race.
	if c := r.code(); (c == "MANIFEST_BLOB_UNKNOWN" || c == "MANIFEST_UNKNOWN" || c == "BLOB_UNKNOWN") && time.Since(since) > p.linkOK {
		p.stats.slow.Add(1)
		return false, nil
	}
	return false, fmt.Errorf("PUT manifest %s/%s %.0fms after its first blob: %d %s", repo, ref,
		float64(time.Since(since).Milliseconds()), r.status, r.code())
}

// once pushes one image (or, one time in five, an index of two) to one of
// the pusher's tags, checks that it pulls completely, and sometimes
// deletes one of its tags.
func (p *pusher) once() {
	repo := p.repos[p.rnd.Uint64()%uint64(len(p.repos))]
	tag := p.tag(int(p.rnd.Uint64() % gcTagsEach))
	start := time.Now()
	var body []byte
	mediaType := ocispec.MediaTypeImageManifest
	if p.rnd.Uint64()%5 == 0 {
		idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{}}
		idx.SchemaVersion = 2
		for _, arch := range []string{"amd64", "arm64"} {
			img := p.newImage()
			if err := p.pushBlobs(repo, img.blobs); err != nil {
				p.errorf("pusher %d: %v", p.id, err)
				return
			}
			cd := digest.FromBytes(img.manifest)
			ok, err := p.putManifest(repo, cd.String(), img.manifest, ocispec.MediaTypeImageManifest, start)
			if err != nil {
				p.errorf("pusher %d: child of an index: %v", p.id, err)
			}
			if !ok {
				return
			}
			idx.Manifests = append(idx.Manifests, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: cd,
				Size: int64(len(img.manifest)), Platform: &ocispec.Platform{OS: "linux", Architecture: arch}})
		}
		body, _ = json.Marshal(idx)
		mediaType = ocispec.MediaTypeImageIndex
		p.stats.indexes.Add(1)
	} else {
		img := p.newImage()
		if err := p.pushBlobs(repo, img.blobs); err != nil {
			p.errorf("pusher %d: %v", p.id, err)
			return
		}
		body = img.manifest
	}
	ok, err := p.putManifest(repo, tag, body, mediaType, start)
	if err != nil {
		p.errorf("pusher %d: %v", p.id, err)
	}
	if !ok {
		return
	}
	p.stats.pushes.Add(1)
	// Nobody else moves this tag: whatever GC does meanwhile, the push
	// must pull completely.
	root, _, _, missing, err := p.c.pullFully(repo, tag)
	switch {
	case err != nil:
		p.errorf("pusher %d: pulling %s:%s right after pushing it: %v", p.id, repo, tag, err)
	case missing != "":
		p.errorf("pusher %d: %s:%s was pushed, but its %s is gone", p.id, repo, tag, missing)
	case root != digest.FromBytes(body):
		p.errorf("pusher %d: %s:%s points at %s, pushed %s", p.id, repo, tag, root, digest.FromBytes(body))
	default:
		p.stats.verified.Add(1)
	}
	if p.rnd.Uint64()%6 == 0 {
		victim := p.tag(int(p.rnd.Uint64() % gcTagsEach))
		r, err := p.c.call("DELETE", "/v2/"+repo+"/manifests/"+victim, nil, nil)
		if err != nil || (r.status != http.StatusAccepted && r.status != http.StatusNotFound) {
			p.errorf("pusher %d: delete tag %s:%s: %v %d %s", p.id, repo, victim, err, r.status, r.code())
			return
		}
		p.stats.deletes.Add(1)
	}
}

// read pulls a random tag of any pusher. A missing piece is a failure
// only while the manifest that names it still exists: a tag moved by its
// pusher may leave a reader holding a manifest GC then removes.
func read(c *loadClient, rnd *rand.ChaCha8, repos []string, stats *loadStats, errorf func(string, ...any)) {
	repo := repos[rnd.Uint64()%uint64(len(repos))]
	tag := fmt.Sprintf("p%d-t%d", rnd.Uint64()%gcPushers, rnd.Uint64()%gcTagsEach)
	root, _, _, missing, err := c.pullFully(repo, tag)
	switch {
	case err != nil:
		errorf("reader: %s:%s: %v", repo, tag, err)
	case missing == "":
		stats.pulls.Add(1)
	case root != "":
		r, err := c.call("HEAD", "/v2/"+repo+"/manifests/"+root.String(), nil, map[string]string{"Accept": manifestAccept})
		if err != nil {
			errorf("reader: %v", err)
		} else if r.status == http.StatusOK {
			errorf("reader: %s@%s still exists, but its %s is gone", repo, root, missing)
		} else {
			stats.raced.Add(1)
		}
	}
}

// rawDB opens the registry's database directly, to look at what GC left.
func rawDB(t *testing.T, dbURI string) *sql.DB {
	t.Helper()
	driver, dsn := "pgx", dbURI
	if rest, ok := strings.CutPrefix(dbURI, "sqlite:///"); ok {
		driver, dsn = "sqlite", rest+"?_pragma=busy_timeout(10000)"
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func queryStrings(t *testing.T, db *sql.DB, q string) []string {
	t.Helper()
	rows, err := db.Query(q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// storedBlobs lists the digests of the blob objects under a local
// storage directory.
func storedBlobs(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(filepath.Join(root, "sha256"), func(path string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) && path == filepath.Join(root, "sha256") {
			return nil // nothing stored yet
		}
		if err != nil || d.IsDir() {
			return err
		}
		out = append(out, "sha256:"+d.Name())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestGCUnderPushLoad runs garbage collection in a loop while pushers
// overwrite and delete tags (sharing layers across repositories, mounting,
// uploading in chunks, pushing indexes) and readers pull, with no time
// machine so that everything a moved tag leaves is collectable at once.
// No push may fail or pull incompletely because of GC, no manifest that
// exists may miss a blob, and once the load stops a final pass leaves
// exactly what the live tags reference, in the database and in storage.
func TestGCUnderPushLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("load test")
	}
	for name, newDB := range dialects(t) {
		t.Run(name, func(t *testing.T) {
			dbURI := newDB(t)
			reg := startRegistry(t, dbURI, func(s *server.Settings) {
				none := time.Duration(0)
				s.DefaultTagExpiration = &none
				s.UploadedBlobTTL = gcLinkTTL
				s.TempTagTTL = gcLinkTTL
				s.GarbageCollection = false // the test runs the passes
			})
			reg.createUser(t, "alice", "alice-password")
			storageDir := filepath.Join(reg.Dir, "storage")
			hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}, Timeout: 30 * time.Second}
			c := &loadClient{base: reg.URL, user: "alice", pass: "alice-password", hc: hc}
			// Upload links go soon after their TTL: a quarter second of
			// margin (serve keeps five minutes) still covers a manifest push
			// that resolved a link just before it expired.
			collector := gc.New(reg.Srv.Store, reg.Srv.Storage, gc.Options{Store: store.GCOptions{UploadLinkMargin: gcLinkMargin}})

			var seed [32]byte
			_, _ = crand.Read(seed[:])
			t.Logf("seed %x", seed)
			base := rand.NewChaCha8(seed)
			var repos []string
			for i := range gcRepos {
				repos = append(repos, fmt.Sprintf("alice/load%d", i))
			}
			var shared [][]byte
			for range gcShared {
				shared = append(shared, randomBlob(base, 4<<10, 4<<10))
			}
			var (
				stats   loadStats
				errMu   sync.Mutex
				errs    []string
				stopped atomic.Bool
			)
			errorf := func(format string, args ...any) {
				errMu.Lock()
				defer errMu.Unlock()
				if len(errs) < 50 {
					errs = append(errs, fmt.Sprintf(format, args...))
				}
			}
			newRand := func() *rand.ChaCha8 {
				var s [32]byte
				_, _ = base.Read(s[:])
				return rand.NewChaCha8(s)
			}
			var wg sync.WaitGroup
			for i := range gcPushers {
				p := &pusher{id: i, c: c, rnd: newRand(), shared: shared, repos: repos, linkOK: gcLinkTTL - 300*time.Millisecond, stats: &stats, errorf: errorf}
				wg.Go(func() {
					for !stopped.Load() {
						p.once()
					}
				})
			}
			for range gcReaders {
				rnd := newRand()
				wg.Go(func() {
					for !stopped.Load() {
						read(c, rnd, repos, &stats, errorf)
					}
				})
			}
			var passes, objects, gcFailures atomic.Int64
			ctx := context.Background()
			wg.Go(func() {
				for !stopped.Load() {
					rep, err := collector.Run(ctx, false)
					if err != nil {
						errorf("gc pass: %v", err)
						return
					}
					passes.Add(1)
					objects.Add(int64(rep.Objects.Count))
					gcFailures.Add(int64(len(rep.Failures)))
					for _, f := range rep.Failures {
						t.Logf("gc pass: item retried later: %s", f)
					}
					time.Sleep(gcPassEvery)
				}
			})
			time.Sleep(gcLoadFor)
			stopped.Store(true)
			wg.Wait()
			t.Logf("%d pushes (%d indexes, %d verified, %d refused as too slow), %d tag deletes, %d pulls (%d raced a moved tag), %d GC passes deleted %d objects (%d items retried)",
				stats.pushes.Load(), stats.indexes.Load(), stats.verified.Load(), stats.slow.Load(), stats.deletes.Load(),
				stats.pulls.Load(), stats.raced.Load(), passes.Load(), objects.Load(), gcFailures.Load())
			for _, e := range errs {
				t.Error(e)
			}
			// A floor low enough for a busy two-core machine.
			if stats.verified.Load() < 5 || stats.pulls.Load() < 5 || objects.Load() == 0 {
				t.Fatalf("the load did too little to mean anything: %d verified pushes, %d pulls, %d objects collected",
					stats.verified.Load(), stats.pulls.Load(), objects.Load())
			}

			// Quiet: once links and temporary tags expire, a pass leaves
			// exactly what the live tags reference.
			time.Sleep(gcLinkTTL + gcLinkMargin + 250*time.Millisecond)
			for i := 0; ; i++ {
				rep, err := collector.Run(ctx, false)
				if err != nil {
					t.Fatalf("final gc pass: %v", err)
				}
				if len(rep.Failures) > 0 {
					t.Errorf("final gc pass failed items: %v", rep.Failures)
				}
				if rep.Empty() {
					break
				}
				if i == 5 {
					t.Fatalf("gc still removes things after %d quiet passes: %+v", i, rep)
				}
			}
			wantBlobs, wantManifests := map[string]bool{}, map[string]bool{}
			live := 0
			for _, repo := range repos {
				r, err := c.call("GET", "/v2/"+repo+"/tags/list", nil, nil)
				if err != nil || r.status != http.StatusOK {
					t.Fatalf("tags of %s: %v %d", repo, err, r.status)
				}
				var list struct{ Tags []string }
				if err := json.Unmarshal(r.body, &list); err != nil {
					t.Fatal(err)
				}
				for _, tag := range list.Tags {
					_, ms, bs, missing, err := c.pullFully(repo, tag)
					if err != nil || missing != "" {
						t.Errorf("live tag %s:%s after the final pass: %v missing %s", repo, tag, err, missing)
						continue
					}
					live++
					for _, m := range ms {
						wantManifests[repo+"@"+m.String()] = true
					}
					for _, b := range bs {
						wantBlobs[b.String()] = true
					}
				}
			}
			if live == 0 {
				t.Fatal("no live tags left to check")
			}
			db := rawDB(t, dbURI)
			gotManifests := queryStrings(t, db, `SELECT n.username || '/' || r.name || '@' || m.digest FROM manifest m
				JOIN repository r ON r.id = m.repository_id JOIN "user" n ON n.id = r.namespace_user_id`)
			if want := sortedKeys(wantManifests); !slices.Equal(gotManifests, want) {
				t.Errorf("manifests left: %d rows, want the %d the live tags reach\ngot  %v\nwant %v", len(gotManifests), len(want), gotManifests, want)
			}
			want := sortedKeys(wantBlobs)
			if got := queryStrings(t, db, `SELECT content_checksum FROM imagestorage`); !slices.Equal(got, want) {
				t.Errorf("imagestorage: %d rows, want the %d blobs the live tags reference\ngot  %v\nwant %v", len(got), len(want), got, want)
			}
			if got := storedBlobs(t, storageDir); !slices.Equal(got, want) {
				t.Errorf("storage: %d blob objects, want the %d the live tags reference\ngot  %v\nwant %v", len(got), len(want), got, want)
			}
			if n := queryStrings(t, db, `SELECT CAST(COUNT(*) AS VARCHAR(20)) FROM quayctl_blob_tombstone WHERE storage_deleted_ms IS NULL`); n[0] != "0" {
				t.Errorf("%s tombstones still wait for their object to be deleted", n[0])
			}
		})
	}
}

// s3Uploads lists the keys of the multipart uploads in progress in a
// registry's bucket (ListMultipartUploads), below the storage root.
func s3Uploads(t *testing.T, reg *registry) []string {
	t.Helper()
	d, ok := reg.Srv.Storage["default"].(*s3.Driver)
	if !ok {
		t.Fatalf("the default location is %T, not S3", reg.Srv.Storage["default"])
	}
	out, err := d.Client().ListMultipartUploads(t.Context(), &s3api.ListMultipartUploadsInput{Bucket: aws.String(d.Bucket())})
	if err != nil {
		t.Fatalf("ListMultipartUploads: %v", err)
	}
	var keys []string
	for _, u := range out.Uploads {
		keys = append(keys, strings.TrimPrefix(aws.ToString(u.Key), s3Root+"/"))
	}
	sort.Strings(keys)
	return keys
}

// startChunk opens an upload session and sends one chunk of more than an
// S3 part, so the driver has a multipart upload with a part in flight; it
// returns the session's location and UUID.
func startChunk(t *testing.T, c *client, repo string, chunk []byte) (loc, uuid string) {
	t.Helper()
	resp := c.do(http.MethodPost, "/v2/"+repo+"/blobs/uploads/", nil, nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("start upload: %d %s", resp.StatusCode, errorCode(t, resp))
	}
	loc = resp.Header.Get("Location")
	resp = c.do(http.MethodPatch, loc, chunk, map[string]string{"Content-Type": "application/octet-stream",
		"Content-Range": fmt.Sprintf("0-%d", len(chunk)-1)})
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("chunk: %d %s", resp.StatusCode, errorCode(t, resp))
	}
	loc = resp.Header.Get("Location")
	path, _, _ := strings.Cut(loc, "?")
	return loc, path[strings.LastIndex(path, "/")+1:]
}

// TestUploadCleanupS3: on S3 storage, the upload cleanup removes an
// abandoned session with its multipart upload, and a multipart upload no
// session names (a process died mid-write), and leaves a fresh session
// whole: it still finishes into a correct blob. With the worker on, serve
// does the same on its own.
func TestUploadCleanupS3(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the S3 gateway")
	}
	const part = 5 << 20
	for name, newDB := range dialects(t) {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			reg, _ := startS3Registry(t, newDB(t), false, func(s *server.Settings) { s.CleanUploadFolder = true })
			reg.createUser(t, "alice", "alice-password")
			c := &client{t: t, base: reg.URL, user: "alice", pass: "alice-password"}

			abandonedLoc, abandoned := startChunk(t, c, "alice/app", randomContent(t, part+1024))
			// A writer whose process died: a part sent, never closed, no session.
			w, err := reg.Srv.Storage["default"].Writer(ctx, "uploads/orphan", false)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.Write(randomContent(t, part+1024)); err != nil {
				t.Fatal(err)
			}
			if got, want := s3Uploads(t, reg), []string{"uploads/" + abandoned, "uploads/orphan"}; !slices.Equal(got, want) {
				t.Fatalf("multipart uploads before the cleanup = %v, want %v", got, want)
			}
			const age = 2 * time.Second
			time.Sleep(age + 500*time.Millisecond)
			content := randomContent(t, part+4096)
			freshLoc, fresh := startChunk(t, c, "alice/app", content[:part+1024])

			rep, err := reg.Srv.CleanupUploads(ctx, age)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Sessions != 1 || rep.Abandoned < 1 || len(rep.Failures) > 0 {
				t.Errorf("cleanup report = %+v, want 1 session and the orphan", rep)
			}
			if got, want := s3Uploads(t, reg), []string{"uploads/" + fresh}; !slices.Equal(got, want) {
				t.Errorf("multipart uploads after the cleanup = %v, want only the fresh one %v", got, want)
			}
			if resp := c.do(http.MethodGet, abandonedLoc, nil, nil); resp.StatusCode != http.StatusNotFound {
				t.Errorf("the abandoned session answers %d, want 404", resp.StatusCode)
			}
			if ups, err := reg.Srv.Store.StaleUploads(ctx, time.Now(), 0); err != nil || len(ups) != 1 || ups[0].UUID != fresh {
				t.Errorf("blobupload rows after the cleanup = %v %v, want only %s", ups, err, fresh)
			}
			// The fresh session finishes into the right blob.
			d := digest.FromBytes(content)
			sep := "?"
			if strings.Contains(freshLoc, "?") {
				sep = "&"
			}
			resp := c.do(http.MethodPut, freshLoc+sep+"digest="+d.String(), content[part+1024:], map[string]string{"Content-Type": "application/octet-stream"})
			if resp.StatusCode != http.StatusCreated {
				t.Fatalf("finishing the fresh upload: %d %s", resp.StatusCode, errorCode(t, resp))
			}
			resp = c.do(http.MethodGet, "/v2/alice/app/blobs/"+d.String(), nil, nil)
			got, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK || digest.FromBytes(got) != d {
				t.Errorf("the fresh upload's blob: %d, %d bytes", resp.StatusCode, len(got))
			}

			// The scheduled worker, as serve runs it.
			worker, _ := startS3Registry(t, newDB(t), false, func(s *server.Settings) {
				s.UploadCleanup, s.CleanUploadFolder = true, true
				s.UploadCleanupInterval, s.UploadCleanupAge = 300*time.Millisecond, age
			})
			worker.createUser(t, "alice", "alice-password")
			wc := &client{t: t, base: worker.URL, user: "alice", pass: "alice-password"}
			loc, _ := startChunk(t, wc, "alice/app", randomContent(t, part+1024))
			deadline := time.Now().Add(15 * time.Second)
			for len(s3Uploads(t, worker)) > 0 || wc.do(http.MethodGet, loc, nil, nil).StatusCode != http.StatusNotFound {
				if time.Now().After(deadline) {
					t.Fatalf("the worker left the abandoned upload: multipart uploads %v", s3Uploads(t, worker))
				}
				time.Sleep(200 * time.Millisecond)
			}
		})
	}
}

// TestGCRacesReupload aims at one window: a client uploads a blob whose
// object is already stored but that nothing references any more, while
// garbage collection deletes that object. The registry must link the
// blob with the bytes it was just sent, never answer "upload it again".
func TestGCRacesReupload(t *testing.T) {
	if testing.Short() {
		t.Skip("load test")
	}
	for name, newDB := range dialects(t) {
		t.Run(name, func(t *testing.T) {
			const ttl = 30 * time.Millisecond
			reg := startRegistry(t, newDB(t), func(s *server.Settings) { s.UploadedBlobTTL = ttl })
			reg.createUser(t, "alice", "alice-password")
			hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}, Timeout: 30 * time.Second}
			c := &loadClient{base: reg.URL, user: "alice", pass: "alice-password", hc: hc}
			collector := gc.New(reg.Srv.Store, reg.Srv.Storage, gc.Options{Store: store.GCOptions{UploadLinkMargin: -1}})
			blobs := make([][]byte, 4)
			for i := range blobs {
				blobs[i] = []byte(fmt.Sprintf("reuploaded layer %d", i))
			}
			var (
				stopped          atomic.Bool
				uploads, objects atomic.Int64
				errMu            sync.Mutex
				errs             []string
				wg               sync.WaitGroup
			)
			for i := range 4 {
				wg.Go(func() {
					for n := 0; !stopped.Load(); n++ {
						// One digest per uploader: two finishing uploads of
						// one digest can lose a race only when upload links
						// last less than a finish takes (see garbage-collection.md).
						err := c.uploadBlob("alice/again", "", blobs[i], n%2 == 0)
						if err != nil {
							errMu.Lock()
							errs = append(errs, err.Error())
							errMu.Unlock()
						}
						uploads.Add(1)
						time.Sleep(ttl)
					}
				})
			}
			wg.Go(func() {
				for !stopped.Load() {
					rep, err := collector.Run(context.Background(), false)
					if err != nil {
						errMu.Lock()
						errs = append(errs, err.Error())
						errMu.Unlock()
						return
					}
					objects.Add(int64(rep.Objects.Count))
				}
			})
			time.Sleep(4 * time.Second)
			stopped.Store(true)
			wg.Wait()
			t.Logf("%d uploads, %d objects collected", uploads.Load(), objects.Load())
			for i, e := range errs {
				if i == 10 {
					t.Errorf("… and %d more", len(errs)-i)
					break
				}
				t.Error(e)
			}
			if objects.Load() == 0 {
				t.Error("garbage collection removed nothing: the race was not exercised")
			}
		})
	}
}
