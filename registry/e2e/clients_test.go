package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quayctl/quayctl/internal/testpodman"
)

// TestRealClients pushes and pulls with podman and copies, inspects and
// deletes with skopeo, through the Docker token flow (podman login).
func TestRealClients(t *testing.T) {
	if testing.Short() {
		t.Skip("real clients are an end-to-end run")
	}
	pm := testpodman.New(t)
	for name, newDB := range dialects(t) {
		t.Run(name, func(t *testing.T) {
			reg := startRegistry(t, newDB(t), nil)
			reg.createUser(t, "alice", "alice-password")
			reg.createUser(t, "bob", "bob-password1")
			if err := pm.AddInsecureRegistry(reg.Addr); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()

			// A wrong password is refused by the token flow.
			if out, err := pm.Command(ctx, "login", "-u", "alice", "-p", "wrong-password", reg.Addr).CombinedOutput(); err == nil {
				t.Fatalf("podman login with a wrong password succeeded: %s", out)
			}
			pm.Run(t, "login", "-u", "alice", "-p", "alice-password", reg.Addr)

			ref := reg.Addr + "/alice/app:" + name
			payload := []byte("hello from " + name + " " + time.Now().String())
			pm.BuildScratchImage(t, ref, map[string][]byte{"/hello.txt": payload, "/etc/motd": []byte("quayctl")})
			pm.Run(t, "push", ref)

			// Pull back into a clean image store and compare the layer content.
			pm.Run(t, "rmi", ref)
			pm.Run(t, "pull", ref)
			cid := strings.TrimSpace(pm.Run(t, "create", ref, "/nothing"))
			out := filepath.Join(t.TempDir(), "hello.txt")
			pm.Run(t, "cp", cid+":/hello.txt", out)
			pm.Run(t, "rm", cid)
			got, err := os.ReadFile(out)
			if err != nil || string(got) != string(payload) {
				t.Fatalf("pulled content = %q, %v; want %q", got, err, payload)
			}

			// skopeo: inspect, copy to a second tag, delete.
			creds := "--creds=alice:alice-password"
			raw := pm.RunSkopeo(t, "inspect", "--tls-verify=false", creds, "docker://"+ref)
			var info struct {
				Digest string
				Layers []string
			}
			if err := json.Unmarshal([]byte(raw), &info); err != nil || !strings.HasPrefix(info.Digest, "sha256:") || len(info.Layers) != 1 {
				t.Fatalf("skopeo inspect: %v %s", err, raw)
			}
			dst := reg.Addr + "/alice/copy:v1"
			pm.RunSkopeo(t, "copy", "--src-tls-verify=false", "--dest-tls-verify=false", "--src-creds=alice:alice-password", "--dest-creds=alice:alice-password",
				"docker://"+ref, "docker://"+dst)
			raw2 := pm.RunSkopeo(t, "inspect", "--tls-verify=false", creds, "docker://"+dst)
			if !strings.Contains(raw2, info.Digest) {
				t.Fatalf("copied image has another digest: %s", raw2)
			}

			// Another user cannot read alice's private repository.
			if out, err := pm.Skopeo(ctx, "inspect", "--tls-verify=false", "--creds=bob:bob-password1", "docker://"+ref).CombinedOutput(); err == nil {
				t.Fatalf("bob read alice's private repository: %s", out)
			}
			// Nor can anyone anonymously.
			if out, err := pm.Skopeo(ctx, "inspect", "--tls-verify=false", "--no-creds", "docker://"+ref).CombinedOutput(); err == nil {
				t.Fatalf("anonymous read of a private repository succeeded: %s", out)
			}

			pm.RunSkopeo(t, "delete", "--tls-verify=false", creds, "docker://"+dst)
			if out, err := pm.Skopeo(ctx, "inspect", "--tls-verify=false", creds, "docker://"+dst).CombinedOutput(); err == nil {
				t.Fatalf("deleted tag still resolves: %s", out)
			}
			pm.Run(t, "logout", reg.Addr)
		})
	}
}
