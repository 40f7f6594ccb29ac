package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/quayctl/quayctl/internal/testpodman"
	"github.com/quayctl/quayctl/registry/server"
	"github.com/quayctl/quayctl/registry/store"
)

// quotaOn turns quota management on with FEATURE_VERIFY_QUOTA.
func quotaOn(s *server.Settings) { s.QuotaManagement, s.EditQuota, s.VerifyQuota = true, true, true }

// setQuota gives a namespace a quota with a Warning at warn% and a Reject
// at 100%.
func setQuota(t *testing.T, reg *registry, nsID, limit int64, warn int) {
	t.Helper()
	ctx := context.Background()
	q, err := reg.Srv.Store.CreateQuota(ctx, nsID, limit)
	if err != nil {
		t.Fatal(err)
	}
	for typ, p := range map[string]int{"Warning": warn, "Reject": 100} {
		if _, err := reg.Srv.Store.CreateQuotaLimit(ctx, q.ID, typ, p); err != nil {
			t.Fatal(err)
		}
	}
}

func randomBytes(t *testing.T, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// deniedBody reads an OCI error body and checks it is Quay's quota DENIED.
func checkQuotaDenied(t *testing.T, resp *http.Response) {
	t.Helper()
	b, _ := io.ReadAll(resp.Body)
	var body struct {
		Errors []struct {
			Code, Message string
			Detail        map[string]any
		}
	}
	if resp.StatusCode != http.StatusForbidden || json.Unmarshal(b, &body) != nil || len(body.Errors) != 1 ||
		body.Errors[0].Code != "DENIED" || body.Errors[0].Message != "Quota has been exceeded on namespace" {
		t.Fatalf("want 403 DENIED \"Quota has been exceeded on namespace\", got %d %s", resp.StatusCode, b)
	}
	if body.Errors[0].Detail["limit_bytes"] == nil || body.Errors[0].Detail["namespace"] == nil {
		t.Errorf("DENIED detail lacks the namespace and limit: %s", b)
	}
}

// checkSizes fails unless the recorded namespace size equals a recount.
func checkSizes(t *testing.T, reg *registry, nsID int64) int64 {
	t.Helper()
	ctx := context.Background()
	want, err := reg.Srv.Store.RecountNamespace(ctx, nsID)
	if err != nil {
		t.Fatal(err)
	}
	got, err := reg.Srv.Store.NamespaceSize(ctx, nsID)
	if err != nil || got.SizeBytes != want || !got.BackfillComplete {
		t.Fatalf("recorded namespace size %+v (%v), recount %d", got, err, want)
	}
	return want
}

// TestQuotaPushes: a push over a Warning threshold succeeds and is audited;
// a blob or manifest over the Reject limit is refused with DENIED and
// leaves nothing behind.
func TestQuotaPushes(t *testing.T) {
	for name, newDB := range dialects(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			reg := startRegistry(t, newDB(t), func(s *server.Settings) {
				quotaOn(s)
				s.Notifications, s.NotificationPoll, s.NotificationRetryAfter = true, 25*time.Millisecond, 25*time.Millisecond
			})
			alice := reg.createUser(t, "alice", "alice-password")
			setQuota(t, reg, alice.ID, 10_000, 50)
			c := &client{t: t, base: reg.URL, user: "alice", pass: "alice-password"}
			ctype := map[string]string{"Content-Type": ocispec.MediaTypeImageManifest}
			push := func(repo, tag string, layers ...[]byte) *http.Response {
				config := []byte(`{"architecture":"amd64","os":"linux","tag":"` + tag + `"}`)
				cd := c.pushBlob(repo, config)
				var descs []ocispec.Descriptor
				for _, l := range layers {
					descs = append(descs, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: c.pushBlob(repo, l), Size: int64(len(l))})
				}
				return c.do("PUT", "/v2/"+repo+"/manifests/"+tag, imageManifest(cd, int64(len(config)), descs...), ctype)
			}

			// 1. Under every threshold.
			if resp := push("alice/app", "small", randomBytes(t, 2000)); resp.StatusCode != 201 {
				t.Fatalf("small push: %d %s", resp.StatusCode, errorCode(t, resp))
			}
			// Webhooks for the quota events of alice/app (the notification
			// worker delivers what the push emits).
			hooks := map[string]*hookReceiver{"quota_warning": newHookReceiver(t, http.StatusOK), "quota_error": newHookReceiver(t, http.StatusOK)}
			for event, h := range hooks {
				mustAPI(t, reg, cred{user: "alice", pass: "alice-password"}, http.StatusCreated, http.MethodPost, "/repository/alice/app/notification/",
					map[string]any{"event": event, "method": "webhook", "config": map[string]any{"url": h.URL}, "eventConfig": map[string]any{}})
			}
			// 2. Over the Warning (5000 bytes): accepted, audited, notified.
			if resp := push("alice/app", "warn", randomBytes(t, 4000)); resp.StatusCode != 201 {
				t.Fatalf("warning push: %d %s", resp.StatusCode, errorCode(t, resp))
			}
			size := checkSizes(t, reg, alice.ID)
			quotaWaitFor(t, "push_repo audit with quota_warning", func() bool {
				recs, _ := reg.Srv.Store.Logs(ctx, store.LogQuery{AccountID: alice.ID, Kind: "push_repo"})
				for _, r := range recs {
					if r.Metadata["quota_warning"] == true && r.Metadata["tag"] == "warn" {
						return true
					}
				}
				return false
			})

			quotaWaitFor(t, "the quota_warning webhook", func() bool { return len(hooks["quota_warning"].calls()) >= 1 })
			// 3. A blob that would take the namespace over 10000 bytes is
			// refused at upload completion; its bytes are not stored.
			big := randomBytes(t, 10_000-int(size)+1)
			bd := digest.FromBytes(big)
			checkQuotaDenied(t, c.do("POST", "/v2/alice/app/blobs/uploads/?digest="+bd.String(), big,
				map[string]string{"Content-Type": "application/octet-stream"}))
			// Chunked: the same refusal at the final PUT.
			resp := c.do("POST", "/v2/alice/app/blobs/uploads/", nil, nil)
			if resp.StatusCode != 202 {
				t.Fatalf("start upload: %d", resp.StatusCode)
			}
			loc := resp.Header.Get("Location")
			sep := "?"
			if strings.Contains(loc, "?") {
				sep = "&"
			}
			checkQuotaDenied(t, c.do("PUT", strings.TrimPrefix(loc, reg.URL)+sep+"digest="+bd.String(), big,
				map[string]string{"Content-Type": "application/octet-stream"}))
			if resp := c.do("HEAD", "/v2/alice/app/blobs/"+bd.String(), nil, nil); resp.StatusCode != 404 {
				t.Errorf("refused blob is visible: HEAD %d", resp.StatusCode)
			}
			if _, err := reg.Srv.Store.BlobByDigest(ctx, bd.String()); err == nil {
				t.Errorf("refused blob has an imagestorage row")
			}
			if _, err := os.Stat(filepath.Join(reg.Dir, "storage", "sha256", bd.Encoded()[:2], bd.Encoded())); !os.IsNotExist(err) {
				t.Errorf("refused blob's bytes are stored: %v", err)
			}
			if left := uploadsLeft(t, reg); left != 0 {
				t.Errorf("%d upload sessions or upload files left behind", left)
			}

			quotaWaitFor(t, "the quota_error webhook", func() bool { return len(hooks["quota_error"].calls()) >= 1 })
			// 4. Blobs that pass one by one, but a manifest that would
			// count them all: refused inside its transaction.
			l1, l2 := randomBytes(t, 3000), randomBytes(t, 3000)
			resp = push("alice/other", "toomuch", l1, l2)
			checkQuotaDenied(t, resp)
			if r, err := reg.Srv.Store.Repository(ctx, "alice", "other"); err == nil {
				if _, _, err := reg.Srv.Store.ManifestByTag(ctx, r.ID, "toomuch"); err == nil {
					t.Errorf("refused manifest's tag exists")
				}
				if n, _ := reg.Srv.Store.RecountRepository(ctx, r.ID); n != 0 {
					t.Errorf("refused push left %d counted bytes", n)
				}
			}
			if got := checkSizes(t, reg, alice.ID); got != size {
				t.Errorf("namespace size %d after refusals, want %d", got, size)
			}
			quotaWaitFor(t, "push_repo_failed audit", func() bool {
				recs, _ := reg.Srv.Store.Logs(ctx, store.LogQuery{AccountID: alice.ID, Kind: "push_repo_failed"})
				return len(recs) >= 3
			})

			// 5. A superuser raises the quota: the same push goes through.
			q, _ := reg.Srv.Store.NamespaceQuota(ctx, alice.ID)
			if err := reg.Srv.Store.UpdateQuota(ctx, q.ID, 1<<20); err != nil {
				t.Fatal(err)
			}
			if resp := push("alice/other", "toomuch", l1, l2); resp.StatusCode != 201 {
				t.Fatalf("push after raising the quota: %d %s", resp.StatusCode, errorCode(t, resp))
			}
			checkSizes(t, reg, alice.ID)

			// The repository view reports its size and the quota (Quay's
			// quota_report).
			r, _ := reg.Srv.Store.Repository(ctx, "alice", "other")
			repoSize, _ := reg.Srv.Store.RecountRepository(ctx, r.ID)
			var view struct {
				QuotaReport struct {
					QuotaBytes      int64 `json:"quota_bytes"`
					ConfiguredQuota int64 `json:"configured_quota"`
				} `json:"quota_report"`
			}
			resp = c.do("GET", "/api/v1/repository/alice/other", nil, nil)
			if err := json.NewDecoder(resp.Body).Decode(&view); err != nil || resp.StatusCode != 200 ||
				view.QuotaReport.QuotaBytes != repoSize || repoSize == 0 || view.QuotaReport.ConfiguredQuota != 1<<20 {
				t.Errorf("repository quota_report %+v (%d, %v), want %d bytes of %d", view.QuotaReport, resp.StatusCode, err, repoSize, 1<<20)
			}
		})
	}
}

// uploadsLeft counts upload files left in local storage.
func uploadsLeft(t *testing.T, reg *registry) int {
	t.Helper()
	entries, _ := os.ReadDir(filepath.Join(reg.Dir, "storage", "uploads"))
	return len(entries)
}

func quotaWaitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if ok() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// TestQuotaBackfill: images pushed while quota management was off are
// counted by the backfill worker once the feature is turned on.
func TestQuotaBackfill(t *testing.T) {
	for name, newDB := range dialects(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			uri := newDB(t)
			reg := startRegistry(t, uri, nil)
			alice := reg.createUser(t, "alice", "alice-password")
			c := &client{t: t, base: reg.URL, user: "alice", pass: "alice-password"}
			for _, repo := range []string{"alice/one", "alice/two"} {
				layer := randomBytes(t, 1500)
				ld := c.pushBlob(repo, layer)
				config := []byte(`{"architecture":"amd64","os":"linux"}`)
				cd := c.pushBlob(repo, config)
				m := imageManifest(cd, int64(len(config)), ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: ld, Size: 1500})
				if resp := c.do("PUT", "/v2/"+repo+"/manifests/v1", m, map[string]string{"Content-Type": ocispec.MediaTypeImageManifest}); resp.StatusCode != 201 {
					t.Fatalf("push: %d", resp.StatusCode)
				}
			}
			if _, err := reg.Srv.Store.NamespaceSize(ctx, alice.ID); err == nil {
				t.Fatal("a size was recorded with quota management off")
			}
			// Restart on the same database with the feature on and no delay.
			reg2 := startRegistry(t, uri, func(s *server.Settings) { quotaOn(s); s.QuotaTotalDelay = 0 })
			quotaWaitFor(t, "the backfill", func() bool {
				s, err := reg2.Srv.Store.NamespaceSize(ctx, alice.ID)
				return err == nil && s.BackfillComplete
			})
			if got := checkSizes(t, reg2, alice.ID); got != 2*1500+37 {
				t.Errorf("backfilled size %d, want %d", got, 2*1500+37)
			}
			quotaWaitFor(t, "the registry size", func() bool {
				rs, err := reg2.Srv.Store.RegistrySize(ctx)
				return err == nil && rs.CompletedMs != nil && rs.SizeBytes == 2*1500+37
			})
		})
	}
}

// TestQuotaPodmanPush: podman's push of an image over the Reject limit
// fails with Quay's message, and nothing of it stays in the repository.
func TestQuotaPodmanPush(t *testing.T) {
	if testing.Short() {
		t.Skip("real clients are an end-to-end run")
	}
	pm := testpodman.New(t)
	for name, newDB := range dialects(t) {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			reg := startRegistry(t, newDB(t), quotaOn)
			alice := reg.createUser(t, "alice", "alice-password")
			setQuota(t, reg, alice.ID, 20_000, 80)
			if err := pm.AddInsecureRegistry(reg.Addr); err != nil {
				t.Fatal(err)
			}
			pm.Run(t, "login", "-u", "alice", "-p", "alice-password", reg.Addr)
			defer pm.Run(t, "logout", reg.Addr)
			ref := reg.Addr + "/alice/big:" + name
			pm.BuildScratchImage(t, ref, map[string][]byte{"/big.bin": randomBytes(t, 64<<10)})
			out, err := pm.Command(ctx, "push", ref).CombinedOutput()
			if err == nil {
				t.Fatalf("podman push over the quota succeeded: %s", out)
			}
			if !bytes.Contains(bytes.ToLower(out), []byte("denied")) || !bytes.Contains(out, []byte("Quota has been exceeded")) {
				t.Errorf("podman's output does not say why: %s", out)
			}
			if r, err := reg.Srv.Store.Repository(ctx, "alice", "big"); err == nil {
				if tags, _ := reg.Srv.Store.ListTags(ctx, r.ID, "", 0); len(tags) != 0 {
					t.Errorf("tags left after the refused push: %v", tags)
				}
			}
			if got := checkSizesOrZero(t, reg, alice.ID); got > 20_000 {
				t.Errorf("namespace size %d over the limit", got)
			}
		})
	}
}

func checkSizesOrZero(t *testing.T, reg *registry, nsID int64) int64 {
	t.Helper()
	if _, err := reg.Srv.Store.NamespaceSize(context.Background(), nsID); err != nil {
		return 0
	}
	return checkSizes(t, reg, nsID)
}
