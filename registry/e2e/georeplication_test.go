package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/quayctl/quayctl/internal/testpodman"
	"github.com/quayctl/quayctl/internal/tests3"
	"github.com/quayctl/quayctl/registry/server"
	"github.com/quayctl/quayctl/registry/storage"
	"github.com/quayctl/quayctl/registry/storage/s3"
)

// geoRegion is one region of a geo-replicated registry: its own S3 server
// (stoppable) and bucket.
type geoRegion struct {
	name     string
	srv      *tests3.Server
	bucket   string
	endpoint string // as the registry and clients see it
	params   map[string]any
}

func newGeoRegion(t *testing.T, name string) *geoRegion {
	t.Helper()
	srv := tests3.NewServer(t)
	bucket := srv.NewBucket(t)
	// "localhost", not 127.0.0.1: another host than the registry's, so
	// clients following a redirect do not send registry credentials.
	endpoint := strings.Replace(srv.Endpoint, "127.0.0.1", "localhost", 1)
	return &geoRegion{name: name, srv: srv, bucket: bucket, endpoint: endpoint, params: map[string]any{
		"storage_path": "/" + s3Root, "s3_bucket": bucket, "s3_region": tests3.Region,
		"s3_access_key": srv.AccessKey, "s3_secret_key": srv.SecretKey, "endpoint_url": endpoint,
	}}
}

// read returns the blob's bytes straight from the region's bucket.
func (g *geoRegion) read(t *testing.T, d digest.Digest) ([]byte, error) {
	t.Helper()
	drv, err := s3.New(t.Context(), s3.NameS3, g.params)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := drv.Reader(t.Context(), storage.BlobPath("sha256", d.Encoded()), 0)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// geoSettings configures two regions, this instance preferring pref.
func geoSettings(regions []*geoRegion, replicate bool, pref ...string) func(*server.Settings) {
	return func(s *server.Settings) {
		s.Locations = map[string]server.Location{}
		s.DefaultLocations = nil
		for _, r := range regions {
			s.Locations[r.name] = server.Location{Driver: "S3Storage", Params: r.params}
			s.DefaultLocations = append(s.DefaultLocations, r.name)
		}
		s.Preference = pref
		s.StorageReplication = replicate
		s.ReplicationInterval = 200 * time.Millisecond
		s.ReplicationBackoff = 100 * time.Millisecond
	}
}

// geoLocations are the locations the database places the blob in.
func geoLocations(t *testing.T, reg *registry, d digest.Digest) []string {
	t.Helper()
	b, err := reg.Srv.Store.BlobByDigest(t.Context(), d.String())
	if err != nil {
		t.Fatalf("blob %s: %v", d, err)
	}
	l, err := reg.Srv.Store.BlobLocations(t.Context(), b.ID)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func geoEventually(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// geoPull GETs the blob without following the redirect and returns the
// region whose endpoint the 307 points at, then fetches the presigned URL
// and checks the bytes.
func geoPull(t *testing.T, c *client, repo string, d digest.Digest, want []byte, regions ...*geoRegion) string {
	t.Helper()
	resp, _ := c.request(noRedirects, http.MethodGet, "/v2/"+repo+"/blobs/"+d.String(), nil)
	if resp.StatusCode != http.StatusTemporaryRedirect {
		t.Fatalf("GET blob %s = %d, want 307", d, resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	region := ""
	for _, r := range regions {
		if u, _ := url.Parse(r.endpoint); u.Host == loc.Host {
			region = r.name
		}
	}
	if region == "" {
		t.Fatalf("redirect to %s, which is no region's endpoint", loc.Host)
	}
	got, body := fetch(t, loc.String(), nil)
	if got.StatusCode != http.StatusOK || !bytes.Equal(body, want) {
		t.Fatalf("presigned GET from %s = %d, %d bytes; want 200 and the %d bytes pushed", region, got.StatusCode, len(body), len(want))
	}
	return region
}

func geoBacklog(t *testing.T, reg *registry) int64 {
	t.Helper()
	n, _, err := reg.Srv.Store.ReplicationBacklog(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestGeoReplicationOutage: one instance preferring us, replicating to eu.
// Pushes land in us and appear, byte-identical, in eu within the worker's
// interval; with eu down pushes and pulls go on from us and the copies stay
// queued; when eu is back replication catches up.
func TestGeoReplicationOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("S3 end-to-end tests do not run with -short")
	}
	for name, newDB := range dialects(t) {
		t.Run(name, func(t *testing.T) {
			us, eu := newGeoRegion(t, "us"), newGeoRegion(t, "eu")
			regions := []*geoRegion{us, eu}
			reg := startRegistry(t, newDB(t), geoSettings(regions, true, "us", "eu"))
			reg.createUser(t, "alice", "alice-password")
			c := &client{t: t, base: reg.URL, user: "alice", pass: "alice-password"}

			content := randomContent(t, 7<<20+99) // a multipart copy to eu
			d := c.pushChunked("alice/app", content, 3<<20)
			geoEventually(t, "blob replicated to eu", 20*time.Second, func() bool {
				return slices.Equal(geoLocations(t, reg, d), []string{"eu", "us"})
			})
			if got, err := eu.read(t, d); err != nil || !bytes.Equal(got, content) {
				t.Fatalf("replica in eu: %d bytes, %v; want the %d bytes pushed", len(got), err, len(content))
			}
			if r := geoPull(t, c, "alice/app", d, content, regions...); r != "us" {
				t.Errorf("pull served from %s, want us (preferred)", r)
			}

			// eu down: pushes and pulls continue from us; the copy waits.
			eu.srv.Halt(t)
			small := []byte("pushed while eu is down")
			d2 := c.pushBlob("alice/app", small)
			if r := geoPull(t, c, "alice/app", d2, small, regions...); r != "us" {
				t.Errorf("pull during the outage served from %s", r)
			}
			time.Sleep(time.Second) // several worker intervals and retries
			if l := geoLocations(t, reg, d2); !slices.Equal(l, []string{"us"}) {
				t.Errorf("placements during the outage = %v, want [us]", l)
			}
			if n := geoBacklog(t, reg); n != 1 {
				t.Errorf("backlog during the outage = %d, want 1 (queued, not lost)", n)
			}

			// eu back: the retry catches up.
			eu.srv.Restart(t)
			geoEventually(t, "replication caught up after eu came back", 30*time.Second, func() bool {
				return slices.Equal(geoLocations(t, reg, d2), []string{"eu", "us"}) && geoBacklog(t, reg) == 0
			})
			if got, err := eu.read(t, d2); err != nil || !bytes.Equal(got, small) {
				t.Errorf("caught-up replica: %q, %v", got, err)
			}
		})
	}
}

// TestGeoReplicationTwoInstances: two instances on one PostgreSQL, one per
// region. An image pushed with podman to the us instance before
// replication runs is served by the eu instance from us (fallback); once
// the worker has copied it, the eu instance redirects to eu; with eu down
// it falls back to us again.
func TestGeoReplicationTwoInstances(t *testing.T) {
	if testing.Short() {
		t.Skip("S3 end-to-end tests do not run with -short")
	}
	pm := testpodman.New(t)
	dbURI := dialects(t)["postgresql"](t)
	us, eu := newGeoRegion(t, "us"), newGeoRegion(t, "eu")
	regions := []*geoRegion{us, eu}
	// Replication off at first, so the fallback can be seen.
	usReg := startRegistry(t, dbURI, geoSettings(regions, false, "us", "eu"))
	euReg := startRegistry(t, dbURI, geoSettings(regions, false, "eu", "us"))
	usReg.createUser(t, "alice", "alice-password")
	if err := pm.AddInsecureRegistry(usReg.Addr); err != nil {
		t.Fatal(err)
	}
	pm.Run(t, "login", "-u", "alice", "-p", "alice-password", usReg.Addr)
	ref := usReg.Addr + "/alice/app:v1"
	pm.BuildScratchImage(t, ref, map[string][]byte{"/hello.txt": []byte("hello, regions " + time.Now().String())})
	pm.Run(t, "push", ref)

	raw := pm.RunSkopeo(t, "inspect", "--raw", "--tls-verify=false", "--creds=alice:alice-password", "docker://"+ref)
	var m struct {
		Config struct{ Digest digest.Digest }
		Layers []struct{ Digest digest.Digest }
	}
	if err := json.Unmarshal([]byte(raw), &m); err != nil || len(m.Layers) == 0 {
		t.Fatalf("manifest: %v %s", err, raw)
	}
	blobs := []digest.Digest{m.Config.Digest}
	for _, l := range m.Layers {
		blobs = append(blobs, l.Digest)
	}
	content := map[digest.Digest][]byte{}
	for _, d := range blobs {
		b, err := us.read(t, d)
		if err != nil {
			t.Fatalf("pushed blob %s not in us: %v", d, err)
		}
		content[d] = b
		if _, err := eu.read(t, d); err == nil {
			t.Fatalf("blob %s in eu before any replication", d)
		}
	}
	euClient := &client{t: t, base: euReg.URL, user: "alice", pass: "alice-password"}
	for _, d := range blobs {
		if r := geoPull(t, euClient, "alice/app", d, content[d], regions...); r != "us" {
			t.Errorf("eu instance before replication: served %s from %s, want the fallback us", d, r)
		}
	}

	// Two workers, one per instance, share the queue.
	w1 := startRegistry(t, dbURI, geoSettings(regions, true, "us", "eu"))
	w2 := startRegistry(t, dbURI, geoSettings(regions, true, "eu", "us"))
	_ = w2
	for _, d := range blobs {
		geoEventually(t, "replica of "+d.String()+" in eu", 30*time.Second, func() bool {
			return slices.Equal(geoLocations(t, w1, d), []string{"eu", "us"})
		})
		if got, err := eu.read(t, d); err != nil || !bytes.Equal(got, content[d]) {
			t.Fatalf("replica of %s in eu differs: %v", d, err)
		}
		if r := geoPull(t, euClient, "alice/app", d, content[d], regions...); r != "eu" {
			t.Errorf("eu instance after replication: served %s from %s, want eu", d, r)
		}
	}
	// The whole image pulls from the eu instance.
	if err := pm.AddInsecureRegistry(euReg.Addr); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if out, err := pm.Skopeo(ctx, "copy", "--src-tls-verify=false", "--src-creds=alice:alice-password",
		"docker://"+euReg.Addr+"/alice/app:v1", "dir:"+t.TempDir()).CombinedOutput(); err != nil {
		t.Fatalf("skopeo copy from the eu instance: %v\n%s", err, out)
	}

	// An eu instance in proxy mode (FEATURE_PROXY_STORAGE) streams the
	// bytes itself.
	euProxy := startRegistry(t, dbURI, func(s *server.Settings) {
		geoSettings(regions, false, "eu", "us")(s)
		s.ProxyStorage = true
	})
	proxyClient := &client{t: t, base: euProxy.URL, user: "alice", pass: "alice-password"}
	proxyPull := func(when string) {
		t.Helper()
		for _, d := range blobs {
			resp, body := proxyClient.request(noRedirects, http.MethodGet, "/v2/alice/app/blobs/"+d.String(), nil)
			if resp.StatusCode != http.StatusOK || !bytes.Equal(body, content[d]) {
				t.Errorf("proxy pull of %s %s = %d, %d bytes; want 200 and the %d bytes pushed", d, when, resp.StatusCode, len(body), len(content[d]))
			}
		}
	}
	proxyPull("with both regions up")

	// eu down: the eu instances serve from us.
	eu.srv.Halt(t)
	for _, d := range blobs {
		if r := geoPull(t, euClient, "alice/app", d, content[d], regions...); r != "us" {
			t.Errorf("eu instance with eu down: served %s from %s, want us", d, r)
		}
	}
	proxyPull("with eu down")
	eu.srv.Restart(t)
}
