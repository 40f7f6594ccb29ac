package testpodman

import (
	"debug/elf"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// When the test binary runs inside a container (TestRunContainer), it only
// reports what it sees.
func TestMain(m *testing.M) {
	if os.Getenv("TESTPODMAN_IN_CONTAINER") == "1" {
		var r syscall.Rlimit
		_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r)
		fmt.Printf("in-container pid=%d nofile=%d\n", os.Getpid(), r.Cur)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestScratchImage(t *testing.T) {
	t.Parallel()
	e := New(t)

	// Storage is private.
	root := strings.TrimSpace(e.Run(t, "info", "--format", "{{.Store.GraphDriverName}} {{.Store.GraphRoot}} {{.Host.OCIRuntime.Name}} {{.Host.CgroupManager}}"))
	if want := "vfs " + e.GraphRoot + " runc cgroupfs"; root != want {
		t.Fatalf("podman info = %q, want %q", root, want)
	}

	id := e.BuildScratchImage(t, "localhost/testpodman/hello:v1", map[string][]byte{
		"etc/hello.txt":   []byte("hello\n"),
		"/bin/script":     []byte("#!/bin/sh\necho hi\n"),
		"deep/a/b/c.json": []byte(`{"ok":true}`),
	})
	if len(id) != 64 {
		t.Fatalf("image id = %q, want 64 hex digits", id)
	}

	images := e.Run(t, "images", "--no-trunc", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}")
	if want := "localhost/testpodman/hello:v1 sha256:" + id; !strings.Contains(images, want) {
		t.Fatalf("podman images does not list %q:\n%s", want, images)
	}

	// The image holds the files, with the modes BuildScratchImage promises:
	// export it as an OCI layout and look at the layer through skopeo.
	var inspect []struct {
		RootFS struct{ Layers []string }
		Config struct{ Labels map[string]string }
	}
	if err := json.Unmarshal([]byte(e.Run(t, "image", "inspect", id)), &inspect); err != nil || len(inspect) != 1 {
		t.Fatalf("podman image inspect: %v", err)
	}
	if n := len(inspect[0].RootFS.Layers); n != 1 {
		t.Fatalf("image has %d layers, want 1", n)
	}

	layout := filepath.Join(t.TempDir(), "layout")
	e.Run(t, "push", "localhost/testpodman/hello:v1", "oci:"+layout+":v1")
	if _, err := os.Stat(filepath.Join(layout, "index.json")); err != nil {
		t.Fatalf("podman push to an OCI layout wrote no index.json: %v", err)
	}
	if e.HasSkopeo() || InCI() {
		var si struct {
			Digest string
			Layers []string
		}
		out := e.RunSkopeo(t, "inspect", "oci:"+layout+":v1")
		if err := json.Unmarshal([]byte(out), &si); err != nil {
			t.Fatalf("skopeo inspect: %v\n%s", err, out)
		}
		if !strings.HasPrefix(si.Digest, "sha256:") || len(si.Layers) != 1 {
			t.Fatalf("skopeo inspect of the pushed layout: %+v", si)
		}
		// skopeo sees this Env's containers-storage too.
		e.RunSkopeo(t, "inspect", "containers-storage:localhost/testpodman/hello:v1")
	}

	// An image with no files builds as well.
	e.BuildScratchImage(t, "localhost/testpodman/empty:v1", nil)

	e.Run(t, "rmi", "localhost/testpodman/empty:v1")
}

func TestRunContainer(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("runs a container; skipped with -short")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// The test binary itself is the container's program, so it must not need
	// a dynamic loader in a FROM scratch image.
	if static, err := isStatic(self); err != nil {
		t.Fatal(err)
	} else if !static {
		t.Skip("test binary is dynamically linked; build with CGO_ENABLED=0 (as make test does) to run it in a scratch container")
	}
	e := New(t)
	bin, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	e.BuildScratchImage(t, "localhost/testpodman/probe:v1", map[string][]byte{"probe": bin})
	out := e.Run(t, "run", "--rm", "--network", "host", "--env", "TESTPODMAN_IN_CONTAINER=1",
		"localhost/testpodman/probe:v1", "/probe")
	// PID 1 in its own namespace, and the ulimit from containers.conf.
	if want := "in-container pid=1 nofile=1024"; !strings.Contains(out, want) {
		t.Fatalf("container printed %q, want %q", out, want)
	}

	// A detached container is removed by cleanup even if the test forgets it.
	e.Run(t, "create", "--name", "leftover", "--network", "host", "localhost/testpodman/probe:v1", "/probe")
}

func isStatic(path string) (bool, error) {
	f, err := elf.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return false, nil
		}
	}
	return true, nil
}

func TestService(t *testing.T) {
	t.Parallel()
	e := New(t)
	e.BuildScratchImage(t, "localhost/testpodman/svc:v1", map[string][]byte{"x": []byte("x")})

	url := e.StartService(t)
	if !strings.HasPrefix(url, "unix://"+e.Dir+"/") {
		t.Fatalf("service URL %q is not inside the private tree %s", url, e.Dir)
	}
	c := UnixHTTPClient(url)
	for _, path := range []string{"/_ping", "/v4.0.0/libpod/_ping"} {
		resp, err := c.Get("http://d" + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || strings.TrimSpace(string(body)) != "OK" {
			t.Fatalf("GET %s = %s %q, want 200 OK", path, resp.Status, body)
		}
		if path == "/v4.0.0/libpod/_ping" && resp.Header.Get("Libpod-Api-Version") == "" {
			t.Errorf("GET %s: no Libpod-Api-Version header", path)
		}
	}

	// The service sees the same private storage as the CLI.
	resp, err := c.Get("http://d/v4.0.0/libpod/images/json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var imgs []struct{ Names []string }
	if err := json.NewDecoder(resp.Body).Decode(&imgs); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, im := range imgs {
		for _, n := range im.Names {
			found = found || n == "localhost/testpodman/svc:v1"
		}
	}
	if !found {
		t.Fatalf("service lists %+v, want localhost/testpodman/svc:v1", imgs)
	}
}

func TestCloseRemovesEverything(t *testing.T) {
	t.Parallel()
	if err := Available(); err != nil {
		New(t) // skips or fails the test as New does
	}
	e, err := Open()
	if err != nil {
		t.Fatal(err)
	}
	e.BuildScratchImage(t, "localhost/testpodman/gone:v1", map[string][]byte{"f": []byte("f")})
	sock, s, err := e.startService()
	if err != nil {
		t.Fatal(err)
	}
	_ = sock
	if err := e.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case <-s.done:
	default:
		t.Fatal("service still running after Close")
	}
	if _, err := os.Stat(e.Dir); !os.IsNotExist(err) {
		t.Fatalf("private tree %s still exists after Close (stat: %v)", e.Dir, err)
	}
	if err := e.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestAddInsecureRegistry(t *testing.T) {
	t.Parallel()
	e := New(t)
	if err := e.AddInsecureRegistry("127.0.0.1:5999"); err != nil {
		t.Fatal(err)
	}
	if err := e.AddInsecureRegistry("127.0.0.1:5999"); err != nil {
		t.Fatal(err)
	}
	out := e.Run(t, "info", "--format", "{{json .Registries}}")
	if !strings.Contains(out, "127.0.0.1:5999") || !strings.Contains(out, `"Insecure":true`) {
		t.Fatalf("podman info registries = %s, want 127.0.0.1:5999 insecure", out)
	}
	// Short names are not searched in any registry. (Aliases from the
	// machine's /etc/containers/registries.conf.d still apply, so use a name
	// no alias has.)
	b, err := e.Command(t.Context(), "pull", "quayctl-no-such-short-name").CombinedOutput()
	if err == nil || !strings.Contains(string(b), "short-name") {
		t.Fatalf("podman pull of a short name: err=%v, output %s; want a short-name error", err, b)
	}
}
