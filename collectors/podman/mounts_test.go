package podman_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/quayctl/quayctl/collectors"
	"github.com/quayctl/quayctl/collectors/podman"
	"github.com/quayctl/quayctl/internal/testpodman"
)

// TestMounts creates (without starting: inspect needs no running process)
// a quay container with a bind mount, a read-only bind mount and a named
// volume, and reads them back through the service.
func TestMounts(t *testing.T) {
	if testing.Short() {
		t.Skip("podman integration test; skipped with -short")
	}
	env := testpodman.New(t)
	sock := env.StartService(t)
	image := env.BuildScratchImage(t, "localhost/quayctl-test/mounts:v1", map[string][]byte{"marker": []byte("x")})
	data, conf := t.TempDir(), t.TempDir()
	env.Run(t, "volume", "create", "quayctl-mounts-test")
	env.Run(t, "create", "--name", "quay-mounts", "-v", data+":/datastorage", "-v", conf+":/conf/stack:ro",
		"-v", "quayctl-mounts-test:/var/lib/extra", image, "/marker")
	ctx := context.Background()
	d, err := podman.New(ctx, podman.Options{URL: sock, Components: map[string]string{collectors.ComponentQuay: "quay-mounts"}})
	if err != nil {
		t.Fatal(err)
	}
	var m collectors.Mounter = d
	got, err := m.Mounts(ctx, collectors.ComponentQuay)
	if err != nil {
		t.Fatal(err)
	}
	byDest := map[string]collectors.Mount{}
	for _, mt := range got {
		byDest[mt.Destination] = mt
	}
	if mt := byDest["/datastorage"]; mt.Type != "bind" || mt.Source != data || !mt.RW {
		t.Errorf("/datastorage: %+v", mt)
	}
	if mt := byDest["/conf/stack"]; mt.Type != "bind" || mt.Source != conf || mt.RW {
		t.Errorf("/conf/stack: %+v", mt)
	}
	vol := byDest["/var/lib/extra"]
	if vol.Type != "volume" || vol.Name != "quayctl-mounts-test" || !vol.RW {
		t.Errorf("/var/lib/extra: %+v", vol)
	}
	// A local service's volume paths are on this machine.
	if fi, err := os.Stat(vol.Source); err != nil || !fi.IsDir() || !filepath.IsAbs(vol.Source) {
		t.Errorf("volume source %q: %v", vol.Source, err)
	}
	if _, err := m.Mounts(ctx, "clair"); err == nil {
		t.Error("mounts of a missing component: no error")
	}
}
