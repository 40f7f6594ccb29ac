package e2e

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/quayctl/quayctl/registry/server"
)

// client speaks to a live registry as one user.
type client struct {
	t     *testing.T
	base  string
	user  string
	pass  string
	token string
}

func (c *client) do(method, path string, body []byte, hdr map[string]string) *http.Response {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	switch {
	case c.token != "":
		req.Header.Set("Authorization", "Bearer "+c.token)
	case c.user != "":
		req.SetBasicAuth(c.user, c.pass)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func errorCode(t *testing.T, resp *http.Response) string {
	t.Helper()
	var body struct {
		Errors []struct{ Code string } `json:"errors"`
	}
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &body); err != nil || len(body.Errors) == 0 {
		return fmt.Sprintf("<no OCI error: %q>", b)
	}
	return body.Errors[0].Code
}

// fetchToken runs the Docker token flow for scope.
func fetchToken(t *testing.T, reg *registry, user, pass, scope string) string {
	t.Helper()
	q := url.Values{"service": {reg.Addr}, "scope": {scope}}
	req, _ := http.NewRequest(http.MethodGet, reg.URL+"/v2/auth?"+q.Encode(), nil)
	req.SetBasicAuth(user, pass)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("token request: %d %s", resp.StatusCode, b)
	}
	var tr struct{ Token string }
	if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil {
		t.Fatal(err)
	}
	return tr.Token
}

// pushBlob uploads content monolithically and returns its digest.
func (c *client) pushBlob(repo string, content []byte) digest.Digest {
	c.t.Helper()
	d := digest.FromBytes(content)
	resp := c.do(http.MethodPost, "/v2/"+repo+"/blobs/uploads/?digest="+d.String(), content, map[string]string{"Content-Type": "application/octet-stream"})
	if resp.StatusCode != http.StatusCreated {
		c.t.Fatalf("push blob: %d %s", resp.StatusCode, errorCode(c.t, resp))
	}
	return d
}

func imageManifest(config digest.Digest, configSize int64, layers ...ocispec.Descriptor) []byte {
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest,
		Config: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: config, Size: configSize}, Layers: layers}
	m.SchemaVersion = 2
	if m.Layers == nil {
		m.Layers = []ocispec.Descriptor{}
	}
	b, _ := json.Marshal(m)
	return b
}

func TestHTTPBadInput(t *testing.T) {
	for name, newDB := range dialects(t) {
		t.Run(name, func(t *testing.T) {
			reg := startRegistry(t, newDB(t), func(s *server.Settings) { s.MaxManifestBytes = 64 << 10 })
			reg.createUser(t, "alice", "alice-password")
			reg.createUser(t, "bob", "bob-password1")
			alice := &client{t: t, base: reg.URL, user: "alice", pass: "alice-password"}
			anon := &client{t: t, base: reg.URL}

			config := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
			cd := alice.pushBlob("alice/app", config)
			layer := []byte("0123456789")
			ld := alice.pushBlob("alice/app", layer)
			manifest := imageManifest(cd, int64(len(config)), ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: ld, Size: int64(len(layer))})
			resp := alice.do(http.MethodPut, "/v2/alice/app/manifests/v1", manifest, map[string]string{"Content-Type": ocispec.MediaTypeImageManifest})
			if resp.StatusCode != http.StatusCreated {
				t.Fatalf("manifest push: %d %s", resp.StatusCode, errorCode(t, resp))
			}
			missing := digest.FromString("never pushed")
			huge := append([]byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","annotations":{"x":"`), bytes.Repeat([]byte("a"), 70<<10)...)
			huge = append(huge, []byte(`"}}`)...)

			tests := []struct {
				name     string
				c        *client
				method   string
				path     string
				body     []byte
				hdr      map[string]string
				status   int
				code     string
				wantAuth bool // WWW-Authenticate challenge expected
			}{
				{name: "base anonymous", c: anon, method: "GET", path: "/v2/", status: 401, code: "UNAUTHORIZED", wantAuth: true},
				{name: "base wrong password", c: &client{t: t, base: reg.URL, user: "alice", pass: "nope-nope-nope"}, method: "GET", path: "/v2/", status: 401, code: "UNAUTHORIZED", wantAuth: true},
				{name: "uppercase name", c: alice, method: "GET", path: "/v2/Alice/app/manifests/v1", status: 400, code: "NAME_INVALID"},
				{name: "traversal in name", c: alice, method: "GET", path: "/v2/alice/..%2f..%2fetc/manifests/v1", status: 400, code: "NAME_INVALID"},
				{name: "traversal in digest", c: alice, method: "GET", path: "/v2/alice/app/blobs/sha256:..%2f..%2f..%2fetc%2fpasswd", status: 404, code: "NAME_UNKNOWN"},
				{name: "dots in digest", c: alice, method: "GET", path: "/v2/alice/app/blobs/sha256:....", status: 400, code: "DIGEST_INVALID"},
				{name: "short digest", c: alice, method: "GET", path: "/v2/alice/app/blobs/sha256:abc", status: 400, code: "DIGEST_INVALID"},
				{name: "unknown algorithm", c: alice, method: "GET", path: "/v2/alice/app/blobs/md5:d41d8cd98f00b204e9800998ecf8427e", status: 400, code: "DIGEST_INVALID"},
				{name: "missing blob", c: alice, method: "GET", path: "/v2/alice/app/blobs/" + missing.String(), status: 404, code: "BLOB_UNKNOWN"},
				{name: "missing manifest", c: alice, method: "GET", path: "/v2/alice/app/manifests/nope", status: 404, code: "MANIFEST_UNKNOWN"},
				{name: "bad tag", c: alice, method: "PUT", path: "/v2/alice/app/manifests/-bad", body: manifest, status: 400, code: "TAG_INVALID"},
				{name: "bad range", c: alice, method: "GET", path: "/v2/alice/app/blobs/" + ld.String(), hdr: map[string]string{"Range": "bytes=100-200"}, status: 416},
				{name: "schema1 refused", c: alice, method: "PUT", path: "/v2/alice/app/manifests/s1", body: []byte(`{"schemaVersion":1,"fsLayers":[]}`), hdr: map[string]string{"Content-Type": "application/vnd.docker.distribution.manifest.v1+prettyjws"}, status: 415, code: "MANIFEST_INVALID"},
				{name: "content type disagrees", c: alice, method: "PUT", path: "/v2/alice/app/manifests/ct", body: manifest, hdr: map[string]string{"Content-Type": "application/vnd.docker.distribution.manifest.v2+json"}, status: 400, code: "MANIFEST_INVALID"},
				{name: "not json", c: alice, method: "PUT", path: "/v2/alice/app/manifests/nj", body: []byte("{nope"), hdr: map[string]string{"Content-Type": ocispec.MediaTypeImageManifest}, status: 400, code: "MANIFEST_INVALID"},
				{name: "oversized manifest", c: alice, method: "PUT", path: "/v2/alice/app/manifests/big", body: huge, hdr: map[string]string{"Content-Type": ocispec.MediaTypeImageManifest}, status: 413, code: "MANIFEST_INVALID"},
				{name: "manifest references missing blob", c: alice, method: "PUT", path: "/v2/alice/app/manifests/sparse",
					body: imageManifest(cd, int64(len(config)), ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: missing, Size: 3}),
					hdr:  map[string]string{"Content-Type": ocispec.MediaTypeImageManifest}, status: 400, code: "MANIFEST_BLOB_UNKNOWN"},
				{name: "manifest digest mismatch", c: alice, method: "PUT", path: "/v2/alice/app/manifests/" + missing.String(), body: manifest, hdr: map[string]string{"Content-Type": ocispec.MediaTypeImageManifest}, status: 400, code: "DIGEST_INVALID"},
				{name: "blob digest mismatch", c: alice, method: "POST", path: "/v2/alice/app/blobs/uploads/?digest=" + missing.String(), body: []byte("other bytes"), status: 400, code: "DIGEST_INVALID"},
				{name: "other user denied", c: &client{t: t, base: reg.URL, user: "bob", pass: "bob-password1"}, method: "GET", path: "/v2/alice/app/manifests/v1", status: 403, code: "DENIED"},
				{name: "other user cannot push", c: &client{t: t, base: reg.URL, user: "bob", pass: "bob-password1"}, method: "POST", path: "/v2/alice/app/blobs/uploads/", status: 403, code: "DENIED"},
				{name: "anonymous private", c: anon, method: "GET", path: "/v2/alice/app/manifests/v1", status: 401, code: "UNAUTHORIZED", wantAuth: true},
				{name: "unknown upload", c: alice, method: "GET", path: "/v2/alice/app/blobs/uploads/7b0a2c2e-0000-4000-8000-000000000000", status: 404, code: "BLOB_UPLOAD_UNKNOWN"},
				{name: "upload id not uuid", c: alice, method: "PATCH", path: "/v2/alice/app/blobs/uploads/..%2f..%2fx", status: 404},
				{name: "bad n", c: alice, method: "GET", path: "/v2/alice/app/tags/list?n=-1", status: 400},
				{name: "method not allowed", c: alice, method: "POST", path: "/v2/alice/app/manifests/v1", status: 405, code: "UNSUPPORTED"},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					tt.c.t = t
					resp := tt.c.do(tt.method, tt.path, tt.body, tt.hdr)
					if resp.StatusCode != tt.status {
						t.Fatalf("status %d, want %d (%s)", resp.StatusCode, tt.status, errorCode(t, resp))
					}
					if tt.code != "" {
						if got := errorCode(t, resp); got != tt.code {
							t.Fatalf("code %s, want %s", got, tt.code)
						}
					}
					if tt.wantAuth && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), `Bearer realm="http://`+reg.Addr+`/v2/auth"`) {
						t.Fatalf("WWW-Authenticate = %q", resp.Header.Get("WWW-Authenticate"))
					}
				})
			}
			alice.t = t

			// The failed blob upload stored nothing.
			if resp := alice.do(http.MethodHead, "/v2/alice/app/blobs/"+missing.String(), nil, nil); resp.StatusCode != 404 {
				t.Fatalf("blob with mismatched digest is visible: %d", resp.StatusCode)
			}
			// A good range works and carries the digest header.
			resp = alice.do(http.MethodGet, "/v2/alice/app/blobs/"+ld.String(), nil, map[string]string{"Range": "bytes=2-5"})
			if b, _ := io.ReadAll(resp.Body); resp.StatusCode != 206 || string(b) != "2345" || resp.Header.Get("Docker-Content-Digest") != ld.String() {
				t.Fatalf("range GET: %d %q %q", resp.StatusCode, b, resp.Header.Get("Docker-Content-Digest"))
			}

			t.Run("tokens", func(t *testing.T) {
				pull := fetchToken(t, reg, "alice", "alice-password", "repository:alice/app:pull")
				c := &client{t: t, base: reg.URL, token: pull}
				if resp := c.do("GET", "/v2/alice/app/manifests/v1", nil, nil); resp.StatusCode != 200 {
					t.Fatalf("pull with pull token: %d", resp.StatusCode)
				}
				// A pull-only token cannot push: challenged for a wider token.
				resp := c.do("POST", "/v2/alice/app/blobs/uploads/", nil, nil)
				if resp.StatusCode != 401 || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `scope="repository:alice/app:pull,push"`) {
					t.Fatalf("push with pull token: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
				}
				// A token for one repository does not open another.
				if resp := c.do("GET", "/v2/alice/other/tags/list", nil, nil); resp.StatusCode != 401 {
					t.Fatalf("token for another repository: %d", resp.StatusCode)
				}
				// Bob's token request for alice's repository grants nothing.
				bobTok := fetchToken(t, reg, "bob", "bob-password1", "repository:alice/app:pull,push")
				if resp := (&client{t: t, base: reg.URL, token: bobTok}).do("GET", "/v2/alice/app/manifests/v1", nil, nil); resp.StatusCode != 401 && resp.StatusCode != 403 {
					t.Fatalf("bob with his own token read alice's repo: %d", resp.StatusCode)
				}
				// Forged: same claims and kid, signed with another key.
				parts := strings.Split(pull, ".")
				hdrJSON, _ := jwt.NewParser().DecodeSegment(parts[0])
				var hdr map[string]any
				_ = json.Unmarshal(hdrJSON, &hdr)
				claimsJSON, _ := jwt.NewParser().DecodeSegment(parts[1])
				var claims jwt.MapClaims
				_ = json.Unmarshal(claimsJSON, &claims)
				key, _ := rsa.GenerateKey(rand.Reader, 2048)
				forged := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
				forged.Header["kid"] = hdr["kid"]
				forgedTok, _ := forged.SignedString(key)
				none := jwt.NewWithClaims(jwt.SigningMethodNone, claims)
				none.Header["kid"] = hdr["kid"]
				noneTok, _ := none.SignedString(jwt.UnsafeAllowNoneSignatureType)
				expiredClaims := jwt.MapClaims{}
				for k, v := range claims {
					expiredClaims[k] = v
				}
				expiredClaims["exp"] = time.Now().Add(-time.Hour).Unix()
				expired := jwt.NewWithClaims(jwt.SigningMethodRS256, expiredClaims)
				expired.Header["kid"] = hdr["kid"]
				expiredTok, _ := expired.SignedString(key)
				wrongAud := jwt.MapClaims{}
				for k, v := range claims {
					wrongAud[k] = v
				}
				wrongAud["aud"] = "elsewhere.example.com"
				wa := jwt.NewWithClaims(jwt.SigningMethodRS256, wrongAud)
				wa.Header["kid"] = hdr["kid"]
				waTok, _ := wa.SignedString(key)
				for name, tok := range map[string]string{"forged": forgedTok, "alg none": noneTok, "expired": expiredTok, "wrong audience": waTok, "garbage": "abc.def.ghi"} {
					resp := (&client{t: t, base: reg.URL, token: tok}).do("GET", "/v2/alice/app/manifests/v1", nil, nil)
					if resp.StatusCode != 401 {
						t.Errorf("%s token: status %d, want 401", name, resp.StatusCode)
					}
				}
			})

			t.Run("mount only from readable repositories", func(t *testing.T) {
				bob := &client{t: t, base: reg.URL, user: "bob", pass: "bob-password1"}
				for _, q := range []string{"?mount=" + ld.String() + "&from=alice/app", "?mount=" + ld.String()} {
					resp := bob.do("POST", "/v2/bob/stolen/blobs/uploads/"+q, nil, nil)
					if resp.StatusCode != http.StatusAccepted {
						t.Fatalf("mount %s from a private repository: %d, want 202 (a plain upload session)", q, resp.StatusCode)
					}
					if resp := bob.do("HEAD", "/v2/bob/stolen/blobs/"+ld.String(), nil, nil); resp.StatusCode != 404 {
						t.Fatalf("mount %s linked alice's blob into bob's repository: %d", q, resp.StatusCode)
					}
				}
				// Alice may mount her own blob into another of her repositories.
				resp := alice.do("POST", "/v2/alice/copy/blobs/uploads/?mount="+ld.String()+"&from=alice/app", nil, nil)
				if resp.StatusCode != http.StatusCreated || resp.Header.Get("Docker-Content-Digest") != ld.String() {
					t.Fatalf("mount between own repositories: %d", resp.StatusCode)
				}
			})

			t.Run("catalog lists only readable repositories", func(t *testing.T) {
				bob := &client{t: t, base: reg.URL, user: "bob", pass: "bob-password1"}
				bob.pushBlob("bob/tools", []byte("bob's blob"))
				var cat struct{ Repositories []string }
				resp := bob.do("GET", "/v2/_catalog", nil, nil)
				_ = json.NewDecoder(resp.Body).Decode(&cat)
				for _, r := range cat.Repositories {
					if strings.HasPrefix(r, "alice/") {
						t.Fatalf("bob's catalog shows %s", r)
					}
				}
				if !slices.Contains(cat.Repositories, "bob/tools") {
					t.Fatalf("bob's catalog = %v", cat.Repositories)
				}
			})

			t.Run("health", func(t *testing.T) {
				for _, p := range []string{"/health/instance", "/health/endtoend", "/health/warning"} {
					resp := anon.do("GET", p, nil, nil)
					var h struct {
						Data struct {
							Services map[string]bool `json:"services"`
						} `json:"data"`
						StatusCode int `json:"status_code"`
					}
					if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
						t.Fatal(err)
					}
					if resp.StatusCode != 200 || h.StatusCode != 200 || len(h.Data.Services) == 0 {
						t.Fatalf("%s: %d %+v", p, resp.StatusCode, h)
					}
					for svc, ok := range h.Data.Services {
						if !ok {
							t.Errorf("%s: service %s unhealthy", p, svc)
						}
					}
				}
				resp := anon.do("GET", "/health/instance", nil, nil)
				var h map[string]map[string]map[string]bool
				_ = json.NewDecoder(resp.Body).Decode(&h)
				for _, want := range []string{"registry_gunicorn", "web_gunicorn", "service_key", "disk_space", "database", "auth"} {
					if _, ok := h["data"]["services"][want]; !ok {
						t.Errorf("/health/instance lacks service %s: %v", want, h)
					}
				}
			})
		})
	}
}

// sha256Hex is a helper for tests that compare content.
func sha256Hex(b []byte) string { s := sha256.Sum256(b); return fmt.Sprintf("%x", s) }
