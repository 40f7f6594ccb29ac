package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/quayctl/quayctl/registry/server"
	"github.com/quayctl/quayctl/registry/store"
)

// TestUploadSurvivesRestart: a chunked upload started on one process is
// finished on another sharing the database and storage (a restart, or
// another replica), because the hash state lives in blobupload.
func TestUploadSurvivesRestart(t *testing.T) {
	for name, newDB := range dialects(t) {
		t.Run(name, func(t *testing.T) {
			dbURI := newDB(t)
			storageDir := filepath.Join(t.TempDir(), "storage")
			shared := func(s *server.Settings) {
				s.Locations["default"] = server.Location{Driver: "LocalStorage", Params: map[string]any{"storage_path": storageDir}}
			}
			a := startRegistry(t, dbURI, shared)
			a.createUser(t, "alice", "alice-password")
			ca := &client{t: t, base: a.URL, user: "alice", pass: "alice-password"}
			content := []byte(strings.Repeat("quayctl-resumable-", 4096))
			d := digest.FromBytes(content)
			half := len(content) / 2

			resp := ca.do("POST", "/v2/alice/big/blobs/uploads/", nil, nil)
			if resp.StatusCode != http.StatusAccepted {
				t.Fatalf("start upload: %d", resp.StatusCode)
			}
			loc := resp.Header.Get("Location")
			resp = ca.do("PATCH", loc, content[:half], map[string]string{"Content-Range": fmt.Sprintf("0-%d", half-1), "Content-Type": "application/octet-stream"})
			if resp.StatusCode != http.StatusAccepted || resp.Header.Get("Range") != fmt.Sprintf("0-%d", half-1) {
				t.Fatalf("first chunk: %d range %q", resp.StatusCode, resp.Header.Get("Range"))
			}

			// A second process over the same database and storage.
			b := startRegistry(t, dbURI, shared)
			cb := &client{t: t, base: b.URL, user: "alice", pass: "alice-password"}
			resp = cb.do("GET", loc, nil, nil)
			if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Range") != fmt.Sprintf("0-%d", half-1) {
				t.Fatalf("status on the other process: %d %q", resp.StatusCode, resp.Header.Get("Range"))
			}
			resp = cb.do("PATCH", loc, content[half:], map[string]string{"Content-Range": fmt.Sprintf("%d-%d", half, len(content)-1)})
			if resp.StatusCode != http.StatusAccepted {
				t.Fatalf("second chunk: %d %s", resp.StatusCode, errorCode(t, resp))
			}
			resp = cb.do("PUT", loc+"?digest="+d.String(), nil, nil)
			if resp.StatusCode != http.StatusCreated {
				t.Fatalf("finish: %d %s", resp.StatusCode, errorCode(t, resp))
			}
			resp = ca.do("GET", "/v2/alice/big/blobs/"+d.String(), nil, nil)
			got, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 || digest.FromBytes(got) != d {
				t.Fatalf("blob after resumed upload: %d, %d bytes", resp.StatusCode, len(got))
			}
		})
	}
}

// TestInterruptedChunkLeavesNothing: a chunk cut off mid-body never
// becomes a blob, and the session is refused afterwards rather than
// producing a corrupt one.
func TestInterruptedChunkLeavesNothing(t *testing.T) {
	reg := startRegistry(t, "sqlite:///"+filepath.Join(t.TempDir(), "q.db"), nil)
	reg.createUser(t, "alice", "alice-password")
	c := &client{t: t, base: reg.URL, user: "alice", pass: "alice-password"}
	resp := c.do("POST", "/v2/alice/app/blobs/uploads/", nil, nil)
	loc := resp.Header.Get("Location")
	content := []byte(strings.Repeat("x", 10000))

	conn, err := net.Dial("tcp", reg.Addr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "PATCH %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Basic %s\r\nContent-Length: %d\r\nContent-Type: application/octet-stream\r\n\r\n",
		loc, reg.Addr, basic("alice", "alice-password"), len(content))
	_, _ = conn.Write(content[:4000])
	time.Sleep(200 * time.Millisecond) // let the server start reading before the cut
	conn.Close()

	d := digest.FromBytes(content)
	// The cut request still holds the session's lock, so this PATCH runs
	// after the server has seen the body end early.
	resp = c.do("PATCH", loc, content, nil)
	if resp.StatusCode != http.StatusBadRequest || errorCode(t, resp) != "BLOB_UPLOAD_INVALID" {
		t.Fatalf("append after an interrupted chunk: %d, want 400 BLOB_UPLOAD_INVALID", resp.StatusCode)
	}
	if resp := c.do("GET", loc, nil, nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("the broken session is still open: %d", resp.StatusCode)
	}
	if resp := c.do("PUT", loc+"?digest="+d.String(), nil, nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("finishing the broken session: %d, want 404", resp.StatusCode)
	}
	if resp := c.do("HEAD", "/v2/alice/app/blobs/"+d.String(), nil, nil); resp.StatusCode != 404 {
		t.Fatalf("a blob became visible from an interrupted upload: %d", resp.StatusCode)
	}
}

func basic(u, p string) string {
	req, _ := http.NewRequest("GET", "/", nil)
	req.SetBasicAuth(u, p)
	return strings.TrimPrefix(req.Header.Get("Authorization"), "Basic ")
}

// TestAuditLog: pushes, pulls and repository creation write logentry3 rows
// with Quay's kinds and metadata.
func TestAuditLog(t *testing.T) {
	for name, newDB := range dialects(t) {
		t.Run(name, func(t *testing.T) {
			reg := startRegistry(t, newDB(t), nil)
			alice := reg.createUser(t, "alice", "alice-password")
			c := &client{t: t, base: reg.URL, user: "alice", pass: "alice-password"}
			config := []byte(`{"architecture":"amd64","os":"linux"}`)
			cd := c.pushBlob("alice/audited", config)
			m := imageManifest(cd, int64(len(config)))
			if resp := c.do("PUT", "/v2/alice/audited/manifests/v1", m, map[string]string{"Content-Type": ocispec.MediaTypeImageManifest}); resp.StatusCode != 201 {
				t.Fatalf("push: %d", resp.StatusCode)
			}
			if resp := c.do("GET", "/v2/alice/audited/manifests/v1", nil, nil); resp.StatusCode != 200 {
				t.Fatalf("pull: %d", resp.StatusCode)
			}
			if resp := (&client{t: t, base: reg.URL, user: "alice", pass: "wrong-password"}).do("GET", "/v2/", nil, nil); resp.StatusCode != 401 {
				t.Fatalf("bad login: %d", resp.StatusCode)
			}
			want := map[string]bool{"create_repo": false, "push_repo": false, "pull_repo": false, "login_failure": false}
			deadline := time.Now().Add(10 * time.Second) // pulls are audited off the request path
			var logs []store.LogRecord
			for time.Now().Before(deadline) {
				var err error
				logs, err = reg.Srv.Store.Logs(context.Background(), store.LogQuery{AccountID: alice.ID})
				if err != nil {
					t.Fatal(err)
				}
				for k := range want {
					want[k] = false
				}
				for _, l := range logs {
					if _, ok := want[l.Kind]; ok {
						want[l.Kind] = true
					}
				}
				if want["create_repo"] && want["push_repo"] && want["pull_repo"] && want["login_failure"] {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			for k, seen := range want {
				if !seen {
					t.Errorf("no %s audit row; rows: %+v", k, logs)
				}
			}
			// A repository created by the token flow (podman, skopeo) is audited too.
			fetchToken(t, reg, "alice", "alice-password", "repository:alice/viatoken:pull,push")
			created, err := reg.Srv.Store.Logs(context.Background(), store.LogQuery{AccountID: alice.ID, Kind: "create_repo"})
			if err != nil {
				t.Fatal(err)
			}
			viaToken := false
			for _, l := range created {
				viaToken = viaToken || l.Metadata["repo"] == "viatoken"
			}
			if !viaToken {
				t.Errorf("no create_repo row for a repository created through /v2/auth: %+v", created)
			}
			for _, l := range logs {
				if l.Kind == "push_repo" {
					if l.Metadata["repo"] != "audited" || l.Metadata["namespace"] != "alice" || l.Metadata["tag"] != "v1" ||
						l.PerformerID == nil || *l.PerformerID != alice.ID || l.RepositoryID == nil {
						t.Errorf("push_repo row: %+v", l)
					}
				}
				if l.Kind == "login_failure" {
					for _, v := range l.Metadata {
						if s, ok := v.(string); ok && strings.Contains(s, "wrong-password") {
							t.Errorf("login_failure row leaks the password: %+v", l)
						}
					}
				}
			}
		})
	}
}
