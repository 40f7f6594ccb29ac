package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/quayctl/quayctl/internal/testpodman"
)

// TestRobotRealClients: robots push and pull with podman and skopeo
// through the Docker token flow, limited to exactly their permissions.
func TestRobotRealClients(t *testing.T) {
	if testing.Short() {
		t.Skip("real clients are an end-to-end run")
	}
	pm := testpodman.New(t)
	for name, newDB := range dialects(t) {
		t.Run(name, func(t *testing.T) {
			w := setupAccess(t, newDB(t), nil)
			reg := w.reg
			if err := pm.AddInsecureRegistry(reg.Addr); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			writer, reader := w.creds["robot-write"], w.creds["robot-read"]

			// A wrong token is refused at login.
			if out, err := pm.Command(ctx, "login", "-u", writer.user, "-p", strings.Repeat("X", 64), reg.Addr).CombinedOutput(); err == nil {
				t.Fatalf("podman login with a wrong robot token succeeded: %s", out)
			}
			pm.Run(t, "login", "-u", writer.user, "-p", writer.pass, reg.Addr)
			ref := reg.Addr + "/" + privateRepo + ":robot-" + name
			pm.BuildScratchImage(t, ref, map[string][]byte{"/robot.txt": []byte("pushed by a robot on " + name)})
			pm.Run(t, "push", ref)
			pm.Run(t, "rmi", ref)
			pm.Run(t, "pull", ref)
			pm.Run(t, "rmi", ref)
			pm.Run(t, "logout", reg.Addr)

			// The read robot pulls with skopeo but cannot push or copy in.
			rc := "--creds=" + reader.user + ":" + reader.pass
			raw := pm.RunSkopeo(t, "inspect", "--tls-verify=false", rc, "docker://"+ref)
			var info struct{ Digest string }
			if err := json.Unmarshal([]byte(raw), &info); err != nil || !strings.HasPrefix(info.Digest, "sha256:") {
				t.Fatalf("skopeo inspect as the read robot: %v %s", err, raw)
			}
			if out, err := pm.Skopeo(ctx, "copy", "--src-tls-verify=false", "--dest-tls-verify=false", "--src-creds="+reader.user+":"+reader.pass,
				"--dest-creds="+reader.user+":"+reader.pass, "docker://"+ref, "docker://"+reg.Addr+"/"+privateRepo+":by-reader").CombinedOutput(); err == nil {
				t.Fatalf("the read robot pushed: %s", out)
			}
			// The write robot copies with skopeo; a robot of no grant reads nothing.
			wc := writer.user + ":" + writer.pass
			pm.RunSkopeo(t, "copy", "--src-tls-verify=false", "--dest-tls-verify=false", "--src-creds="+wc, "--dest-creds="+wc,
				"docker://"+ref, "docker://"+reg.Addr+"/"+mountTarget+":copied")
			rb := mustAPI(t, reg, w.creds[orgOwner], 201, "PUT", "/organization/acme/robots/nogrant", nil)
			if out, err := pm.Skopeo(ctx, "inspect", "--tls-verify=false", "--creds=acme+nogrant:"+rb["token"].(string), "docker://"+ref).CombinedOutput(); err == nil {
				t.Fatalf("a robot without a grant read a private repository: %s", out)
			}
		})
	}
}
