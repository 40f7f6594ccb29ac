package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/quayctl/quayctl/registry/auth"
	"github.com/quayctl/quayctl/registry/server"
	"github.com/quayctl/quayctl/registry/store"
)

// pushDistinct pushes an image whose config carries seed (so each seed is
// a different manifest) and returns its manifest digest.
func pushDistinct(t testing.TB, reg *registry, c cred, repo, tag, seed string) string {
	t.Helper()
	tok := token(t, reg, c, "repository:"+repo+":push,pull")
	if tok == "" {
		t.Fatalf("no push token for %s", repo)
	}
	bc := cred{bearer: tok}
	blob := func(content []byte, mt string) ocispec.Descriptor {
		d := digest.FromBytes(content)
		code, body := call(t, http.MethodPost, reg.URL+"/v2/"+repo+"/blobs/uploads/?digest="+d.String(), bc, content,
			map[string]string{"Content-Type": "application/octet-stream"})
		if code != http.StatusCreated {
			t.Fatalf("blob upload to %s: %d %s", repo, code, body)
		}
		return ocispec.Descriptor{MediaType: mt, Digest: d, Size: int64(len(content))}
	}
	config := blob([]byte(`{"architecture":"amd64","os":"linux","seed":"`+seed+`"}`), ocispec.MediaTypeImageConfig)
	layer := blob(testLayer, ocispec.MediaTypeImageLayer)
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: config, Layers: []ocispec.Descriptor{layer}}
	m.SchemaVersion = 2
	b, _ := json.Marshal(m)
	code, body := call(t, http.MethodPut, reg.URL+"/v2/"+repo+"/manifests/"+tag, bc, b,
		map[string]string{"Content-Type": ocispec.MediaTypeImageManifest})
	if code != http.StatusCreated {
		t.Fatalf("push %s:%s: %d %s", repo, tag, code, body)
	}
	return digest.FromBytes(b).String()
}

// v2Tags is GET /v2/{repo}/tags/list with c's pull token.
func v2Tags(t testing.TB, reg *registry, c cred, repo string) []string {
	t.Helper()
	tok := token(t, reg, c, "repository:"+repo+":pull")
	code, body := call(t, http.MethodGet, reg.URL+"/v2/"+repo+"/tags/list", cred{bearer: tok}, nil, nil)
	if code != http.StatusOK {
		t.Fatalf("tags/list %s: %d %s", repo, code, body)
	}
	var tl struct{ Tags []string }
	if err := json.Unmarshal(body, &tl); err != nil {
		t.Fatal(err)
	}
	return tl.Tags
}

// v2Digest is the digest /v2 serves for repo:ref ("" when not found).
func v2Digest(t testing.TB, reg *registry, c cred, repo, ref string) string {
	t.Helper()
	tok := token(t, reg, c, "repository:"+repo+":pull")
	req, _ := http.NewRequest(http.MethodHead, reg.URL+"/v2/"+repo+"/manifests/"+ref, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Accept", ocispec.MediaTypeImageManifest)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return ""
	}
	return resp.Header.Get("Docker-Content-Digest")
}

// activeTag is the API's view of the alive row of a tag (nil when none).
func activeTag(t testing.TB, reg *registry, c cred, repo, tag string) map[string]any {
	t.Helper()
	m := mustAPI(t, reg, c, http.StatusOK, "GET", "/repository/"+repo+"/tag/?onlyActiveTags=true&specificTag="+tag, nil)
	tags, _ := m["tags"].([]any)
	if len(tags) == 0 {
		return nil
	}
	return tags[0].(map[string]any)
}

// TestTagExpirationMoveRestore drives PUT …/tag/{tag} and POST
// …/tag/{tag}/restore over HTTP as Quay's clients do.
func TestTagExpirationMoveRestore(t *testing.T) {
	for name, uri := range dialects(t) {
		t.Run(name, func(t *testing.T) {
			reg := startRegistry(t, uri(t), nil)
			owner, reader := cred{user: "olivia", pass: pw("olivia")}, cred{user: "mike", pass: pw("mike")}
			reg.createUser(t, "olivia", pw("olivia"))
			reg.createUser(t, "mike", pw("mike"))
			mustAPI(t, reg, owner, 201, "POST", "/organization/", map[string]any{"name": "acme", "email": "acme@example.com"})
			mustAPI(t, reg, owner, 201, "POST", "/repository", map[string]any{"namespace": "acme", "repository": "app", "visibility": "private"})
			mustAPI(t, reg, owner, 200, "PUT", "/repository/acme/app/permissions/user/mike", map[string]any{"role": "read"})
			const repo = "acme/app"
			dA := pushDistinct(t, reg, owner, repo, "v1", "a")
			dB := pushDistinct(t, reg, owner, repo, "v2", "b")
			pushDistinct(t, reg, owner, repo, "short", "c")
			pushDistinct(t, reg, owner, repo, "rel", "a")

			t.Run("set and clear expiration", func(t *testing.T) {
				exp := time.Now().Add(time.Hour).Unix()
				mustAPI(t, reg, owner, 201, "PUT", "/repository/acme/app/tag/v1", map[string]any{"expiration": exp})
				if v := activeTag(t, reg, owner, repo, "v1"); v == nil || v["end_ts"] != float64(exp) {
					t.Fatalf("after setting expiration: %v, want end_ts %d", v, exp)
				}
				mustAPI(t, reg, owner, 201, "PUT", "/repository/acme/app/tag/v1", map[string]any{"expiration": nil})
				if v := activeTag(t, reg, owner, repo, "v1"); v == nil || v["end_ts"] != nil {
					t.Fatalf("after clearing expiration: %v, want no end_ts", v)
				}
			})

			t.Run("expired tag leaves tags/list", func(t *testing.T) {
				mustAPI(t, reg, owner, 201, "PUT", "/repository/acme/app/tag/short",
					map[string]any{"expiration": float64(time.Now().Add(time.Second).UnixMilli()) / 1000})
				if !slices.Contains(v2Tags(t, reg, owner, repo), "short") {
					t.Fatal("tag gone before its expiration")
				}
				time.Sleep(1200 * time.Millisecond)
				if tags := v2Tags(t, reg, owner, repo); slices.Contains(tags, "short") {
					t.Fatalf("expired tag still listed: %v", tags)
				}
				if d := v2Digest(t, reg, owner, repo, "short"); d != "" {
					t.Fatalf("expired tag still served: %s", d)
				}
			})

			t.Run("move", func(t *testing.T) {
				mustAPI(t, reg, owner, 201, "PUT", "/repository/acme/app/tag/v1", map[string]any{"manifest_digest": dB})
				if d := v2Digest(t, reg, owner, repo, "v1"); d != dB {
					t.Fatalf("v1 serves %s after the move, want %s", d, dB)
				}
				// A new tag by digest is a create.
				mustAPI(t, reg, owner, 201, "PUT", "/repository/acme/app/tag/copy", map[string]any{"manifest_digest": dA})
				if d := v2Digest(t, reg, owner, repo, "copy"); d != dA {
					t.Fatalf("copy serves %s, want %s", d, dA)
				}
			})

			t.Run("delete and restore", func(t *testing.T) {
				if code, m := api(t, reg, owner, "DELETE", "/repository/acme/app/tag/rel", nil); code != http.StatusNoContent {
					t.Fatalf("delete: %d %v", code, m)
				}
				if slices.Contains(v2Tags(t, reg, owner, repo), "rel") {
					t.Fatal("deleted tag still listed")
				}
				mustAPI(t, reg, owner, 200, "POST", "/repository/acme/app/tag/rel/restore", map[string]any{"manifest_digest": dA})
				if d := v2Digest(t, reg, owner, repo, "rel"); d != dA {
					t.Fatalf("restored tag serves %q, want %s", d, dA)
				}
			})

			t.Run("refused", func(t *testing.T) {
				tests := []struct {
					name   string
					c      cred
					method string
					path   string
					body   any
					want   int
					detail string
				}{
					{"past expiration", owner, "PUT", "/repository/acme/app/tag/v2", map[string]any{"expiration": time.Now().Add(-time.Hour).Unix()}, 400, "must be in the future"},
					{"expiration not a number", owner, "PUT", "/repository/acme/app/tag/v2", map[string]any{"expiration": "tomorrow"}, 400, "seconds since the epoch"},
					{"expiration beyond year 9999", owner, "PUT", "/repository/acme/app/tag/v2", map[string]any{"expiration": 1e20}, 400, "between 1970 and 9999"},
					{"expiration of a missing tag", owner, "PUT", "/repository/acme/app/tag/nope", map[string]any{"expiration": time.Now().Add(time.Hour).Unix()}, 404, ""},
					{"move to an unknown manifest", owner, "PUT", "/repository/acme/app/tag/v2", map[string]any{"manifest_digest": digest.FromString("nothing").String()}, 404, ""},
					{"invalid tag name", owner, "PUT", "/repository/acme/app/tag/-bad", map[string]any{"manifest_digest": dA}, 400, "Invalid tag name"},
					{"restore without digest", owner, "POST", "/repository/acme/app/tag/rel/restore", map[string]any{}, 400, "manifest_digest"},
					{"restore an unknown manifest", owner, "POST", "/repository/acme/app/tag/rel/restore", map[string]any{"manifest_digest": digest.FromString("nothing").String()}, 404, "time machine"},
					{"reader sets expiration", reader, "PUT", "/repository/acme/app/tag/v2", map[string]any{"expiration": time.Now().Add(time.Hour).Unix()}, 403, ""},
					{"reader moves", reader, "PUT", "/repository/acme/app/tag/v2", map[string]any{"manifest_digest": dA}, 403, ""},
					{"reader restores", reader, "POST", "/repository/acme/app/tag/rel/restore", map[string]any{"manifest_digest": dA}, 403, ""},
					{"anonymous sets expiration", cred{}, "PUT", "/repository/acme/app/tag/v2", map[string]any{"expiration": nil}, 401, ""},
				}
				for _, tc := range tests {
					code, m := api(t, reg, tc.c, tc.method, tc.path, tc.body)
					if code != tc.want || !strings.Contains(fmt.Sprint(m["detail"]), tc.detail) {
						t.Errorf("%s: %d %v, want %d with %q", tc.name, code, m["detail"], tc.want, tc.detail)
					}
				}
				// Nothing refused changed the tag.
				if d := v2Digest(t, reg, owner, repo, "v2"); d != dB {
					t.Errorf("v2 serves %s after refused changes, want %s", d, dB)
				}
			})

			t.Run("audit", func(t *testing.T) {
				ctx := context.Background()
				r, err := reg.Srv.Store.Repository(ctx, "acme", "app")
				if err != nil {
					t.Fatal(err)
				}
				for _, kind := range []string{"change_tag_expiration", "move_tag", "create_tag", "revert_tag", "delete_tag"} {
					deadline := time.Now().Add(5 * time.Second)
					for {
						rows, err := reg.Srv.Store.Logs(ctx, store.LogQuery{RepositoryID: r.ID, Kind: kind})
						if err != nil {
							t.Fatal(err)
						}
						if len(rows) > 0 {
							break
						}
						if time.Now().After(deadline) {
							t.Errorf("no %s audit entry", kind)
							break
						}
						time.Sleep(50 * time.Millisecond)
					}
				}
			})
		})
	}
}

// TestRestoreAfterWindow: a namespace whose time machine keeps deleted
// tags for one second cannot restore after that.
func TestRestoreAfterWindow(t *testing.T) {
	for name, uri := range dialects(t) {
		t.Run(name, func(t *testing.T) {
			reg := startRegistry(t, uri(t), func(s *server.Settings) { s.CreatePrivateRepoOnPush = true })
			hash, err := auth.HashPassword(pw("tiny"))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := reg.Srv.Store.CreateUser(context.Background(), store.NewUser{Username: "tiny", Email: "tiny@example.com",
				PasswordHash: hash, Verified: true, RemovedTagExpirationS: 1}); err != nil {
				t.Fatal(err)
			}
			c := cred{user: "tiny", pass: pw("tiny")}
			d := pushDistinct(t, reg, c, "tiny/app", "gone", "x")
			mustAPI(t, reg, c, 204, "DELETE", "/repository/tiny/app/tag/gone", nil)
			time.Sleep(1500 * time.Millisecond)
			code, m := api(t, reg, c, "POST", "/repository/tiny/app/tag/gone/restore", map[string]any{"manifest_digest": d})
			if code != http.StatusNotFound || !strings.Contains(fmt.Sprint(m["detail"]), "time machine") {
				t.Fatalf("restore after the window: %d %v, want 404 naming the time machine", code, m)
			}
			if slices.Contains(v2Tags(t, reg, c, "tiny/app"), "gone") {
				t.Fatal("refused restore brought the tag back")
			}
		})
	}
}
