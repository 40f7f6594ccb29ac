package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/quayctl/quayctl/internal/testpodman"
	"github.com/quayctl/quayctl/internal/tests3"
	"github.com/quayctl/quayctl/registry/server"
)

// s3Root is the storage_path of the S3 location, as in a Quay config.
const s3Root = "datastorage/registry"

// summaryCountRE finds the suite's summary counts that must be zero.
var summaryCountRE = regexp.MustCompile(`(?mi)^\s*(Fail|Skip|Error)\.*:\s*(\d+)`)

// pullModes are the two ways a registry on object storage serves blobs.
var pullModes = []struct {
	name  string
	proxy bool // FEATURE_PROXY_STORAGE
}{
	{"redirect", false},
	{"proxy", true},
}

// s3Storage is the bucket behind a registry under test.
type s3Storage struct {
	srv      *tests3.Server
	endpoint string
	bucket   string
}

// startS3Registry runs a registry whose only storage location is a fresh
// bucket on the package's S3 server (S3Storage with endpoint_url).
func startS3Registry(t *testing.T, dbURI string, proxy bool, mutate func(*server.Settings)) (*registry, s3Storage) {
	t.Helper()
	srv := tests3.Shared(t)
	bucket := srv.NewBucket(t)
	// The registry listens on 127.0.0.1; naming the S3 server "localhost"
	// gives it another host name, as in production, so clients following a
	// redirect do not forward their registry credentials to it.
	endpoint := strings.Replace(srv.Endpoint, "127.0.0.1", "localhost", 1)
	reg := startRegistry(t, dbURI, func(s *server.Settings) {
		s.Locations = map[string]server.Location{"default": {Driver: "S3Storage", Params: map[string]any{
			"storage_path": "/" + s3Root, "s3_bucket": bucket, "s3_region": tests3.Region,
			"s3_access_key": srv.AccessKey, "s3_secret_key": srv.SecretKey, "endpoint_url": endpoint,
		}}}
		s.Preference = []string{"default"}
		s.ProxyStorage = proxy
		if mutate != nil {
			mutate(s)
		}
	})
	return reg, s3Storage{srv: srv, endpoint: endpoint, bucket: bucket}
}

// blobKey is where a blob lives in the bucket.
func (s s3Storage) blobKey(d digest.Digest) string {
	return s3Root + "/sha256/" + d.Encoded()[:2] + "/" + d.Encoded()
}

// presignedGets counts the GETs of key that S3 answered with status for a
// presigned URL (a signature in the query string), that is, made by a client
// that followed a redirect rather than by the registry with its own keys.
func (s s3Storage) presignedGets(t *testing.T, key string, status int) int {
	t.Helper()
	b, err := os.ReadFile(s.srv.AccessLog)
	if err != nil {
		t.Fatalf("reading the S3 access log: %v", err)
	}
	n := 0
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, " "+s.bucket+" ") && strings.Contains(l, " s3_GetObject "+key+" ") &&
			strings.Contains(l, fmt.Sprintf(" %d ", status)) && strings.Contains(l, "X-Amz-Signature=") {
			n++
		}
	}
	return n
}

// noRedirects is a client that shows redirects instead of following them.
var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func randomContent(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// pushChunked uploads content in chunks of chunk bytes (PATCH each, then
// PUT), so the S3 driver resumes its multipart upload between requests.
func (c *client) pushChunked(repo string, content []byte, chunk int) digest.Digest {
	c.t.Helper()
	d := digest.FromBytes(content)
	resp := c.do(http.MethodPost, "/v2/"+repo+"/blobs/uploads/", nil, nil)
	if resp.StatusCode != http.StatusAccepted {
		c.t.Fatalf("start upload: %d %s", resp.StatusCode, errorCode(c.t, resp))
	}
	loc := resp.Header.Get("Location")
	for off := 0; off < len(content); off += chunk {
		end := min(off+chunk, len(content))
		resp = c.do(http.MethodPatch, loc, content[off:end], map[string]string{
			"Content-Range": fmt.Sprintf("%d-%d", off, end-1), "Content-Type": "application/octet-stream"})
		if resp.StatusCode != http.StatusAccepted {
			c.t.Fatalf("chunk at %d: %d %s", off, resp.StatusCode, errorCode(c.t, resp))
		}
		loc = resp.Header.Get("Location")
	}
	resp = c.do(http.MethodPut, loc+"?digest="+d.String(), nil, nil)
	if resp.StatusCode != http.StatusCreated {
		c.t.Fatalf("finish upload: %d %s", resp.StatusCode, errorCode(c.t, resp))
	}
	return d
}

func (c *client) request(hc *http.Client, method, path string, hdr map[string]string) (*http.Response, []byte) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	req.SetBasicAuth(c.user, c.pass)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := hc.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return resp, b
}

func fetch(t *testing.T, u string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := noRedirects.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// TestS3BlobPulls: on S3 storage a blob GET answers a 307 to a short-lived
// presigned URL that serves the bytes (and ranges) without registry
// credentials; with FEATURE_PROXY_STORAGE the registry streams them itself.
// HEAD and Range behave the same either way.
func TestS3BlobPulls(t *testing.T) {
	if testing.Short() {
		t.Skip("S3 end-to-end tests do not run with -short")
	}
	for _, mode := range pullModes {
		t.Run(mode.name, func(t *testing.T) {
			reg, s3 := startS3Registry(t, "sqlite:///"+filepath.Join(t.TempDir(), "quay.db"), mode.proxy, nil)
			reg.createUser(t, "alice", "alice-password")
			c := &client{t: t, base: reg.URL, user: "alice", pass: "alice-password"}
			small := []byte("a small blob, one PUT")
			big := randomContent(t, 13<<20+4321) // several 5 MiB parts and a tail
			blobs := map[digest.Digest][]byte{
				c.pushBlob("alice/app", small):            small,
				c.pushChunked("alice/app", big, 3<<20+17): big,
			}
			for d, content := range blobs {
				path := "/v2/alice/app/blobs/" + d.String()
				size := int64(len(content))

				resp, _ := c.request(noRedirects, http.MethodHead, path, nil)
				if resp.StatusCode != http.StatusOK || resp.ContentLength != size || resp.Header.Get("Docker-Content-Digest") != d.String() {
					t.Errorf("HEAD %s = %d, length %d, digest %q; want 200, %d, the digest", d, resp.StatusCode, resp.ContentLength, resp.Header.Get("Docker-Content-Digest"), size)
				}

				for _, tc := range []struct {
					rangeHdr string
					status   int
					want     []byte
				}{
					{"", http.StatusOK, content},
					{"bytes=10-19", http.StatusPartialContent, content[10:20]},
					{fmt.Sprintf("bytes=%d-", size-5), http.StatusPartialContent, content[size-5:]},
				} {
					hdr := map[string]string{}
					if tc.rangeHdr != "" {
						hdr["Range"] = tc.rangeHdr
					}
					resp, body := c.request(noRedirects, http.MethodGet, path, hdr)
					if !mode.proxy {
						if resp.StatusCode != http.StatusTemporaryRedirect || resp.Header.Get("Docker-Content-Digest") != d.String() {
							t.Fatalf("GET %s (Range %q) = %d with digest %q, want 307 to S3 with the digest", d, tc.rangeHdr, resp.StatusCode, resp.Header.Get("Docker-Content-Digest"))
						}
						loc := resp.Header.Get("Location")
						if want := s3.endpoint + "/" + s3.bucket + "/" + s3.blobKey(d) + "?"; !strings.HasPrefix(loc, want) {
							t.Fatalf("redirect to %s, want a URL starting %s", loc, want)
						}
						if !strings.Contains(loc, "X-Amz-Signature=") || !strings.Contains(loc, "X-Amz-Expires=60") {
							t.Errorf("redirect is not a presigned URL valid for 60s: %s", loc)
						}
						if strings.Contains(loc, s3.srv.SecretKey) {
							t.Error("the redirect carries the S3 secret key")
						}
						resp, body = fetch(t, loc, hdr) // no registry credentials
					}
					if resp.StatusCode != tc.status || !bytes.Equal(body, tc.want) {
						t.Errorf("GET %s (Range %q) = %d with %d bytes, want %d with %d bytes", d, tc.rangeHdr, resp.StatusCode, len(body), tc.status, len(tc.want))
					}
				}

				// What a client does: follow the redirect, credentials and all.
				resp, body := c.request(http.DefaultClient, http.MethodGet, path, nil)
				if resp.StatusCode != http.StatusOK || !bytes.Equal(body, content) {
					t.Errorf("GET %s following redirects = %d with %d bytes, want 200 with %d", d, resp.StatusCode, len(body), size)
				}
				presigned := s3.presignedGets(t, s3.blobKey(d), http.StatusOK)
				if mode.proxy && presigned != 0 {
					t.Errorf("proxy mode: S3 served %s to %d clients directly, want none", d, presigned)
				}
				if !mode.proxy && presigned < 2 {
					t.Errorf("redirect mode: S3 served %s directly %d times, want at least 2", d, presigned)
				}
			}
		})
	}
}

// TestS3RealClients pushes and pulls with podman and skopeo against a
// registry on PostgreSQL and S3, in both pull modes; in redirect mode the
// layer bytes must come from S3 itself.
func TestS3RealClients(t *testing.T) {
	if testing.Short() {
		t.Skip("real clients are an end-to-end run")
	}
	tests3.Shared(t) // skip early, before podman is set up, if S3 is missing
	pm := testpodman.New(t)
	for _, mode := range pullModes {
		t.Run(mode.name, func(t *testing.T) {
			reg, s3 := startS3Registry(t, dialects(t)["postgresql"](t), mode.proxy, nil)
			reg.createUser(t, "alice", "alice-password")
			if err := pm.AddInsecureRegistry(reg.Addr); err != nil {
				t.Fatal(err)
			}
			pm.Run(t, "login", "-u", "alice", "-p", "alice-password", reg.Addr)

			ref := reg.Addr + "/alice/s3app:" + mode.name
			payload := randomContent(t, 7<<20) // a layer over one S3 part
			pm.BuildScratchImage(t, ref, map[string][]byte{"/payload.bin": payload, "/etc/motd": []byte("on S3, " + mode.name)})
			pm.Run(t, "push", ref)
			pm.Run(t, "rmi", ref)
			pm.Run(t, "pull", ref)
			cid := strings.TrimSpace(pm.Run(t, "create", ref, "/nothing"))
			out := filepath.Join(t.TempDir(), "payload.bin")
			pm.Run(t, "cp", cid+":/payload.bin", out)
			pm.Run(t, "rm", cid)
			if got, err := os.ReadFile(out); err != nil || !bytes.Equal(got, payload) {
				t.Fatalf("pulled payload: %d bytes, %v; want the %d pushed", len(got), err, len(payload))
			}

			creds := "--creds=alice:alice-password"
			dst := reg.Addr + "/alice/s3copy:v1"
			pm.RunSkopeo(t, "copy", "--src-tls-verify=false", "--dest-tls-verify=false", "--src-creds=alice:alice-password",
				"--dest-creds=alice:alice-password", "docker://"+ref, "docker://"+dst)
			layers := strings.TrimSpace(pm.RunSkopeo(t, "inspect", "--tls-verify=false", creds, "--format", "{{range .Layers}}{{.}} {{end}}", "docker://"+dst))
			if layers == "" {
				t.Fatal("skopeo inspect shows no layers")
			}
			// skopeo reads every blob of the copy from the registry.
			dir := t.TempDir()
			pm.RunSkopeo(t, "copy", "--src-tls-verify=false", "--src-creds=alice:alice-password", "docker://"+dst, "dir:"+dir)
			var presigned int
			for _, l := range strings.Fields(layers) {
				d, err := digest.Parse(l)
				if err != nil {
					t.Fatalf("layer digest %q: %v", l, err)
				}
				got, err := os.ReadFile(filepath.Join(dir, d.Encoded()))
				if err != nil || digest.FromBytes(got) != d {
					t.Errorf("skopeo copied layer %s: %v, content digest %s", d, err, digest.FromBytes(got))
				}
				presigned += s3.presignedGets(t, s3.blobKey(d), http.StatusOK)
			}
			if mode.proxy && presigned != 0 {
				t.Errorf("proxy mode: clients fetched %d layers from S3 directly, want none", presigned)
			}
			if !mode.proxy && presigned < 2 {
				t.Errorf("redirect mode: clients fetched layers from S3 directly %d times, want at least 2 (podman pull, skopeo copy)", presigned)
			}
		})
	}
}

// TestS3Conformance runs the whole OCI conformance suite against S3 storage
// in both pull modes, every switch on (in redirect mode all but the blob GET
// digest header, which the storage's response cannot carry).
func TestS3Conformance(t *testing.T) {
	if testing.Short() {
		t.Skip("conformance suite is a heavy end-to-end run")
	}
	bin := conformanceBin(t)
	for _, mode := range pullModes {
		t.Run(mode.name, func(t *testing.T) {
			reg, _ := startS3Registry(t, "sqlite:///"+filepath.Join(t.TempDir(), "quay.db"), mode.proxy, func(s *server.Settings) {
				s.SparseIndex, s.SparseManifests = true, true // the suite pushes sparse manifests on purpose
			})
			reg.createUser(t, "conformance", "conformance-pass")
			results := t.TempDir()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin)
			cmd.Dir = results
			cmd.Env = append(os.Environ(),
				"OCI_REGISTRY="+reg.Addr, "OCI_TLS=disabled", "OCI_REPO1=conformance/repo1", "OCI_REPO2=conformance/repo2",
				"OCI_USERNAME=conformance", "OCI_PASSWORD=conformance-pass", "OCI_RESULTS_DIR="+results, "OCI_VERSION=1.1")
			for _, sw := range conformanceSwitches {
				// A blob GET that redirects ends at S3, which cannot send
				// Docker-Content-Digest (no presigned-URL override exists
				// for it); the 307 and HEAD carry it, TestS3BlobPulls checks.
				on := sw != "OCI_API_BLOBS_DIGEST_HEADER" || mode.proxy
				cmd.Env = append(cmd.Env, fmt.Sprintf("%s=%t", sw, on))
			}
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			err := cmd.Run()
			yaml, _ := os.ReadFile(filepath.Join(results, "results.yaml"))
			t.Logf("conformance summary (S3, %s):\n%s", mode.name, summaryLines(out.String()))
			if err != nil {
				t.Fatalf("conformance suite failed: %v\n%s\n--- failing details ---\n%s", err, out.String(), failures(string(yaml)))
			}
			for _, bad := range []string{"fail", "error", "skip"} {
				if n := countStatus(string(yaml), bad); n > 0 {
					t.Errorf("%d tests with status %s\n%s", n, bad, failures(string(yaml)))
				}
			}
			for _, m := range summaryCountRE.FindAllStringSubmatch(out.String(), -1) {
				if m[2] != "0" {
					t.Errorf("conformance summary: %s %s, want 0", m[1], m[2])
				}
			}
		})
	}
}
