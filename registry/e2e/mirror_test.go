package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/quayctl/quayctl/internal/testpodman"
	"github.com/quayctl/quayctl/internal/testregistry"
	"github.com/quayctl/quayctl/registry/server"
)

// pushIndex pushes a two-platform OCI index (and its images) to
// reg/repo:tag with the OCI client code and returns its digest and its
// children's.
func pushIndex(t *testing.T, reg *registry, repo, user, pass, tag string) (string, []string) {
	t.Helper()
	ctx := context.Background()
	r := reg.OCIRepository(t, repo, user, pass)
	push := func(b []byte, mt string) ocispec.Descriptor { return testregistry.PushBlob(t, r, b, mt) }
	var children []ocispec.Descriptor
	var digests []string
	for _, arch := range []string{"amd64", "arm64"} {
		m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest,
			Config: push([]byte(fmt.Sprintf(`{"architecture":%q,"os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`, arch)), ocispec.MediaTypeImageConfig),
			Layers: []ocispec.Descriptor{push([]byte("layer for "+arch), ocispec.MediaTypeImageLayer)}}
		m.SchemaVersion = 2
		b, _ := json.Marshal(m)
		d := push(b, ocispec.MediaTypeImageManifest)
		d.Platform = &ocispec.Platform{Architecture: arch, OS: "linux"}
		children = append(children, d)
		digests = append(digests, d.Digest.String())
	}
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: children}
	idx.SchemaVersion = 2
	b, _ := json.Marshal(idx)
	d := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageIndex, Digest: digest.FromBytes(b), Size: int64(len(b))}
	if err := r.PushReference(ctx, d, bytes.NewReader(b), tag); err != nil {
		t.Fatalf("push index: %v", err)
	}
	return d.Digest.String(), digests
}

// TestMirrorRealClients mirrors a private repository of a second registry
// (the external source, filled with skopeo and the OCI client code) into
// the registry under test, configured through Quay's API, and checks the
// result with podman and skopeo: only matching tags, the index whole, a
// reader pulls, a user with write cannot push, tags that move or vanish at
// the source follow, a source that is down uses up the retries and FAILs,
// and wrong credentials FAIL with the reason (API and quayctl mirror
// status).
func TestMirrorRealClients(t *testing.T) {
	if testing.Short() {
		t.Skip("real clients are an end-to-end run")
	}
	pm := testpodman.New(t)
	for name, newDB := range dialects(t) {
		t.Run(name, func(t *testing.T) {
			// The CLI check runs in the PostgreSQL case only. The binary
			// lives in this subtest's directory, which is gone once it ends:
			// map order may run the other case after it.
			quayctl := ""
			if name == "postgresql" {
				quayctl = filepath.Join(t.TempDir(), "quayctl")
				if err := os.WriteFile(quayctl, testpodman.BuildQuayctl(t), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			testMirrorRealClients(t, pm, newDB(t), quayctl)
		})
	}
}

func testMirrorRealClients(t *testing.T, pm *testpodman.Env, dbURI, quayctl string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	const (
		srcUser, srcPass = "source", "source-password1"
		srcRepo          = "source/app"
	)
	srcCreds := "--creds=" + srcUser + ":" + srcPass
	src := startRegistry(t, "sqlite:///"+filepath.Join(t.TempDir(), "src.db"), nil)
	src.createUser(t, srcUser, srcPass)
	dst := startRegistry(t, dbURI, func(s *server.Settings) {
		// The worker's own passes are far apart; the test drives passes.
		s.RepoMirror, s.RepoMirrorInterval = true, 1<<40
	})
	for _, r := range []*registry{src, dst} {
		if err := pm.AddInsecureRegistry(r.Addr); err != nil {
			t.Fatal(err)
		}
	}

	// The source: a private repository filled with skopeo (two images,
	// tags v1 dev → A, v2 → B) and an index pushed with the OCI client.
	srcRef := func(tag string) string { return "docker://" + src.Addr + "/" + srcRepo + ":" + tag }
	imgA, imgB := src.Addr+"/build/a:latest", src.Addr+"/build/b:latest"
	pm.BuildScratchImage(t, imgA, map[string][]byte{"/mirrored.txt": []byte("image A")})
	pm.BuildScratchImage(t, imgB, map[string][]byte{"/mirrored.txt": []byte("image B")})
	for img, tags := range map[string][]string{imgA: {"v1", "dev"}, imgB: {"v2"}} {
		for _, tag := range tags {
			pm.RunSkopeo(t, "copy", "--dest-tls-verify=false", "--dest-creds="+srcUser+":"+srcPass, "containers-storage:"+img, srcRef(tag))
		}
	}
	multi, children := pushIndex(t, src, srcRepo, srcUser, srcPass, "multi")
	if out, err := pm.Skopeo(ctx, "inspect", "--tls-verify=false", "--no-creds", srcRef("v1")).CombinedOutput(); err == nil {
		t.Fatalf("the source repository is readable anonymously: %s", out)
	}
	srcDigest := func(tag string) string {
		t.Helper()
		return inspectDigest(t, pm, srcCreds, srcRef(tag))
	}

	// The mirror: owner olivia, her robot pushes; walter may write and
	// rita read, as users.
	owner := cred{user: "olivia", pass: "olivia-password1"}
	writer := cred{user: "walter", pass: "walter-password1"}
	reader := cred{user: "rita", pass: "rita-password1"}
	for _, c := range []cred{owner, writer, reader} {
		dst.createUser(t, c.user, c.pass)
	}
	mustAPI(t, dst, owner, 201, "POST", "/repository", map[string]any{"namespace": "olivia", "repository": "mirror", "visibility": "private", "description": ""})
	robot := mustAPI(t, dst, owner, 201, "PUT", "/user/robots/mirror", map[string]any{"description": "pushes the mirror"})
	mustAPI(t, dst, owner, 200, "PUT", "/repository/olivia/mirror/permissions/user/walter", map[string]any{"role": "write"})
	mustAPI(t, dst, owner, 200, "PUT", "/repository/olivia/mirror/permissions/user/rita", map[string]any{"role": "read"})
	path := "/repository/olivia/mirror/mirror"
	mustAPI(t, dst, owner, 201, "POST", path, map[string]any{
		"is_enabled": true, "external_reference": src.Addr + "/" + srcRepo,
		"external_registry_username": srcUser, "external_registry_password": srcPass,
		"sync_interval": 86400, "sync_start_date": time.Now().Add(time.Hour).UTC().Format(time.RFC3339),
		"root_rule":      map[string]any{"rule_kind": "tag_glob_csv", "rule_value": []string{"v*", "mul?i"}},
		"robot_username": robot["name"], "external_registry_config": map[string]any{"verify_tls": false},
	})
	syncer := dst.Srv.Mirror()
	status := func() map[string]any { return mustAPI(t, dst, owner, 200, "GET", path, nil) }
	pass := func(want int) map[string]any {
		t.Helper()
		if n, err := syncer.RunOnce(ctx); n != want || err != nil {
			t.Fatalf("worker pass claimed %d (%v), want %d; status %v", n, err, want, status())
		}
		return status()
	}
	syncNow := func() { mustAPI(t, dst, owner, 204, "POST", path+"/sync-now", nil) }
	dstRef := func(tag string) string { return "docker://" + dst.Addr + "/olivia/mirror:" + tag }
	readerCreds := "--creds=" + reader.user + ":" + reader.pass
	mirroredTags := func() []string {
		t.Helper()
		var out struct{ Tags []string }
		raw := pm.RunSkopeo(t, "list-tags", "--tls-verify=false", readerCreds, "docker://"+dst.Addr+"/olivia/mirror")
		if err := json.Unmarshal([]byte(raw), &out); err != nil {
			t.Fatalf("skopeo list-tags: %v %s", err, raw)
		}
		slices.Sort(out.Tags)
		return out.Tags
	}

	// Not due yet (the start is an hour away); sync-now runs it.
	pass(0)
	syncNow()
	if v := pass(1); v["sync_status"] != "SUCCESS" {
		t.Fatalf("first sync: %v", v)
	}
	if got := mirroredTags(); !slices.Equal(got, []string{"multi", "v1", "v2"}) {
		t.Fatalf("mirrored tags %v, want [multi v1 v2] (dev does not match)", got)
	}
	for _, tag := range []string{"v1", "v2", "multi"} {
		if got, want := inspectDigest(t, pm, readerCreds, dstRef(tag)), srcDigest(tag); got != want {
			t.Errorf("%s: mirror digest %s, source %s", tag, got, want)
		}
	}
	if srcDigest("multi") != multi {
		t.Fatalf("the source's multi is %s, pushed %s", srcDigest("multi"), multi)
	}
	// The index came whole: every platform's manifest is in the mirror.
	for _, c := range children {
		if got := inspectDigest(t, pm, readerCreds, "docker://"+dst.Addr+"/olivia/mirror@"+c); got != c {
			t.Errorf("index child %s: the mirror serves %s", c, got)
		}
	}

	// A reader pulls with podman; a user with write permission cannot push.
	pm.Run(t, "login", "-u", reader.user, "-p", reader.pass, dst.Addr)
	pm.Run(t, "pull", dst.Addr+"/olivia/mirror:v1")
	cid := strings.TrimSpace(pm.Run(t, "create", dst.Addr+"/olivia/mirror:v1", "/nothing"))
	out := filepath.Join(t.TempDir(), "mirrored.txt")
	pm.Run(t, "cp", cid+":/mirrored.txt", out)
	pm.Run(t, "rm", cid)
	if b, err := os.ReadFile(out); err != nil || string(b) != "image A" {
		t.Fatalf("pulled content %q, %v", b, err)
	}
	pm.Run(t, "logout", dst.Addr)
	pm.Run(t, "login", "-u", writer.user, "-p", writer.pass, dst.Addr)
	pm.Run(t, "tag", imgB, dst.Addr+"/olivia/mirror:by-walter")
	if o, err := pm.Command(ctx, "push", dst.Addr+"/olivia/mirror:by-walter").CombinedOutput(); err == nil {
		t.Fatalf("a user with write permission pushed to the mirror: %s", o)
	}
	pm.Run(t, "logout", dst.Addr)
	if got := mirroredTags(); slices.Contains(got, "by-walter") {
		t.Fatalf("the refused push left a tag: %v", got)
	}

	// At the source v1 moves to B and v2 is removed: the mirror follows.
	pm.RunSkopeo(t, "copy", "--src-tls-verify=false", "--dest-tls-verify=false", "--src-creds="+srcUser+":"+srcPass,
		"--dest-creds="+srcUser+":"+srcPass, srcRef("v2"), srcRef("v1"))
	movedTo := srcDigest("v1")
	mustAPI(t, src, cred{user: srcUser, pass: srcPass}, 204, "DELETE", "/repository/"+srcRepo+"/tag/v2", nil)
	syncNow()
	if v := pass(1); v["sync_status"] != "SUCCESS" {
		t.Fatalf("second sync: %v", v)
	}
	if got := mirroredTags(); !slices.Equal(got, []string{"multi", "v1"}) {
		t.Fatalf("after the source changed, mirrored tags %v, want [multi v1]", got)
	}
	if got := inspectDigest(t, pm, readerCreds, dstRef("v1")); got != movedTo {
		t.Fatalf("v1 in the mirror is %s, the source moved it to %s", got, movedTo)
	}

	// The source is down: each pass uses up a retry, the last one FAILs,
	// refills the retries and waits for the next interval.
	// Retries run while the start date has passed, as in Quay.
	mustAPI(t, dst, owner, 201, "PUT", path, map[string]any{"external_reference": "127.0.0.1:1/source/app",
		"sync_start_date": "2000-01-01T00:00:00Z"})
	if v := status(); v["sync_retries_remaining"] != float64(3) {
		t.Fatalf("retries before the source went down: %v", v["sync_retries_remaining"])
	}
	for want := 2; want >= 1; want-- {
		v := pass(1)
		if v["sync_status"] != "FAIL" || v["sync_retries_remaining"] != float64(want) {
			t.Fatalf("source down: status %v retries %v, want FAIL %d", v["sync_status"], v["sync_retries_remaining"], want)
		}
	}
	v := pass(1)
	if v["sync_status"] != "FAIL" || v["sync_retries_remaining"] != float64(3) || !strings.Contains(fmt.Sprint(v["last_error"]), "127.0.0.1:1") {
		t.Fatalf("after the last retry: %v", v)
	}
	pass(0)
	if got := mirroredTags(); !slices.Equal(got, []string{"multi", "v1"}) {
		t.Fatalf("failed syncs changed the tags: %v", got)
	}

	// Wrong credentials: FAIL with the reason, through the API and quayctl
	// mirror status; the password shows nowhere.
	mustAPI(t, dst, owner, 201, "PUT", path, map[string]any{"external_reference": src.Addr + "/" + srcRepo,
		"external_registry_username": srcUser, "external_registry_password": "not-the-password"})
	syncNow()
	v = pass(1)
	if v["sync_status"] != "FAIL" || !strings.Contains(strings.ToLower(fmt.Sprint(v["last_error"])), "unauthorized") {
		t.Fatalf("wrong credentials: %v", v)
	}
	if b, _ := json.Marshal(v); strings.Contains(string(b), "not-the-password") || strings.Contains(string(b), srcPass) {
		t.Fatalf("a password in the mirror view: %s", b)
	}
	if quayctl != "" {
		cmd := exec.CommandContext(ctx, quayctl, "mirror", "status", "olivia/mirror", "--db", dbURI, "-o", "json")
		cmd.Env = append(os.Environ(), "NO_COLOR=1")
		raw, err := cmd.Output()
		if err != nil {
			t.Fatalf("quayctl mirror status: %v %s", err, raw)
		}
		var rows struct {
			Mirrors []map[string]any `json:"mirrors"`
		}
		if err := json.Unmarshal(raw, &rows); err != nil || len(rows.Mirrors) != 1 {
			t.Fatalf("quayctl mirror status -o json: %v %s", err, raw)
		}
		m := rows.Mirrors[0]
		if m["repository"] != "olivia/mirror" || m["sync_status"] != "FAIL" || m["external_reference"] != src.Addr+"/"+srcRepo ||
			m["robot_role"] != "write" || !strings.Contains(strings.ToLower(fmt.Sprint(m["last_error"])), "unauthorized") {
			t.Fatalf("quayctl mirror status (want FAIL with the reason): %s", raw)
		}
		if strings.Contains(string(raw), "not-the-password") {
			t.Fatalf("quayctl mirror status shows the password: %s", raw)
		}
	}
}

// inspectDigest is skopeo inspect's digest of ref.
func inspectDigest(t *testing.T, pm *testpodman.Env, creds, ref string) string {
	t.Helper()
	raw := pm.RunSkopeo(t, "inspect", "--raw", "--tls-verify=false", creds, ref)
	return digest.FromBytes([]byte(raw)).String()
}
