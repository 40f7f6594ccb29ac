// Package testpodman runs the real podman (and skopeo) for tests: as an OCI
// client (login, push, pull against a registry on loopback) or as a REST
// service (podman system service on a private unix socket).
//
// Every Env has its own private tree under a fresh temporary directory:
// containers.conf (runc, cgroupfs, ulimits the sandbox accepts), storage.conf
// (vfs graphroot and runroot inside the tree), registries.conf (no search
// registries, short names disabled), policy.json and an auth file. Commands
// get these through CONTAINERS_CONF, CONTAINERS_STORAGE_CONF,
// CONTAINERS_REGISTRIES_CONF and REGISTRY_AUTH_FILE, plus explicit --root and
// --runroot flags, so the machine's own images and containers are never
// touched. Close (or the test cleanup registered by New) removes all
// containers, stops services and deletes the tree.
//
// What podman 4.3 (Debian 12) still shares with the machine: drop-ins in
// /etc/containers/registries.conf.d (short-name aliases) and, as root, the
// blob-info cache in /var/lib/containers/cache that push/pull/copy update (it
// only records where blobs were seen; it cannot be redirected). Its pull and
// push retry network errors 3 times with a back-off and have no --retry flag,
// so a test of an unreachable registry takes a few seconds.
//
// Typical use:
//
//	e := testpodman.New(t)               // skips without podman; fails when CI is set
//	e.BuildScratchImage(t, "127.0.0.1:5000/ns/app:v1", map[string][]byte{"hello.txt": []byte("hi")})
//	e.Run(t, "login", "--tls-verify=false", "-u", "quayadmin", "-p", pw, "127.0.0.1:5000")
//	e.Run(t, "push", "--tls-verify=false", "127.0.0.1:5000/ns/app:v1")
//
// For one Env per package, call Open in TestMain and Close after m.Run.
//
// Podman needs root here (rootful storage, runc); tests run as root on the
// project's machines.
package testpodman

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// CommandTimeout bounds each command started by Run, RunSkopeo and
// BuildScratchImage.
var CommandTimeout = 5 * time.Minute

// ErrNotInstalled reports that podman (or the runc runtime it is configured
// with) is not installed.
var ErrNotInstalled = errors.New("podman is not installed")

// Env is a private podman/skopeo environment. Its fields are read-only.
type Env struct {
	Dir            string // root of the private tree
	GraphRoot      string // containers-storage graph root (images, containers)
	RunRoot        string // containers-storage run root
	ContainersConf string // containers.conf (CONTAINERS_CONF)
	StorageConf    string // storage.conf (CONTAINERS_STORAGE_CONF)
	RegistriesConf string // registries.conf (CONTAINERS_REGISTRIES_CONF)
	AuthFile       string // auth.json (REGISTRY_AUTH_FILE), written by podman/skopeo login
	PolicyFile     string // policy.json passed to skopeo (accept anything)

	podmanPath string
	skopeoPath string // "" when skopeo is not installed
	env        []string

	mu       sync.Mutex
	insecure []string // registries marked insecure in registries.conf
	services map[*service]struct{}
	closed   bool
	seq      atomic.Int64
}

// Available reports whether podman and runc are installed.
func Available() error {
	if _, err := exec.LookPath("podman"); err != nil {
		return fmt.Errorf("%w (podman not on PATH); install it with scripts/install-test-deps.sh", ErrNotInstalled)
	}
	if findRunc() == "" {
		return fmt.Errorf("%w (runc not found); install it with scripts/install-test-deps.sh", ErrNotInstalled)
	}
	return nil
}

func findRunc() string {
	if p, err := exec.LookPath("runc"); err == nil {
		return p
	}
	for _, p := range []string{"/usr/sbin/runc", "/usr/bin/runc", "/usr/local/sbin/runc", "/usr/local/bin/runc"} {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p
		}
	}
	return ""
}

// InCI reports whether the environment variable CI is set to a true value;
// then missing components fail tests instead of skipping them.
func InCI() bool {
	v := strings.ToLower(strings.TrimSpace(os.Getenv("CI")))
	return v != "" && v != "0" && v != "false" && v != "no"
}

// New returns a fresh Env removed when the test (and its subtests) finish. It
// skips the test with a loud message when podman is missing, and fails it
// instead when CI is set: CI must run everything.
func New(t testing.TB) *Env {
	t.Helper()
	if err := Available(); err != nil {
		if InCI() {
			t.Fatalf("testpodman: %v; CI is set, so podman tests must not be skipped", err)
		}
		t.Skipf("SKIPPING podman test: %v", err)
	}
	e, err := Open()
	if err != nil {
		t.Fatalf("testpodman: %v", err)
	}
	t.Cleanup(func() {
		if err := e.Close(); err != nil {
			t.Errorf("testpodman cleanup: %v", err)
		}
	})
	return e
}

// Open creates a private Env. The caller must Close it. It returns an error
// wrapping ErrNotInstalled when podman is missing.
func Open() (*Env, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	podmanPath, _ := exec.LookPath("podman")
	skopeoPath, _ := exec.LookPath("skopeo")

	// Short base: unix socket paths (podman service, conmon) are limited to
	// 108 bytes, and t.TempDir names can be long.
	base := os.TempDir()
	if len(base) > 40 {
		base = "/tmp"
	}
	sweepStale(base)
	dir, err := os.MkdirTemp(base, "tpodman-")
	if err != nil {
		return nil, fmt.Errorf("create private podman tree: %w", err)
	}
	if dir, err = filepath.EvalSymlinks(dir); err != nil {
		return nil, err
	}
	e := &Env{
		Dir:            dir,
		GraphRoot:      filepath.Join(dir, "root"),
		RunRoot:        filepath.Join(dir, "run"),
		ContainersConf: filepath.Join(dir, "containers.conf"),
		StorageConf:    filepath.Join(dir, "storage.conf"),
		RegistriesConf: filepath.Join(dir, "registries.conf"),
		AuthFile:       filepath.Join(dir, "auth.json"),
		PolicyFile:     filepath.Join(dir, "policy.json"),
		podmanPath:     podmanPath,
		skopeoPath:     skopeoPath,
		services:       map[*service]struct{}{},
	}
	if err := os.WriteFile(e.path("owner.pid"), []byte(strconv.Itoa(os.Getpid())), 0o600); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := e.writeConfig(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	e.env = e.buildEnviron()

	// Fail early, with podman's own words, if the configuration is refused.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := e.Command(ctx, "info", "--format", "{{.Store.GraphDriverName}} {{.Store.GraphRoot}}").CombinedOutput()
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("podman info with the private configuration failed: %v\n%s", err, out)
	}
	if got := strings.TrimSpace(string(out)); !strings.HasSuffix(got, e.GraphRoot) {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("podman ignored the private storage configuration: graph root is %q, want %q", got, e.GraphRoot)
	}
	return e, nil
}

// sweepStale removes private trees left by test binaries that died without
// cleaning up (a go test -timeout panic skips cleanups); each tree records the
// pid of the process that owns it.
func sweepStale(base string) {
	dirs, _ := filepath.Glob(filepath.Join(base, "tpodman-*"))
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "owner.pid"))
		if err != nil {
			continue // being created, or not ours
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 || processAlive(pid) {
			continue
		}
		unmountUnder(d)
		os.RemoveAll(d)
	}
}

func (e *Env) writeConfig() error {
	for _, d := range []string{e.GraphRoot, e.RunRoot, e.path("tmp"), e.path("libpod-tmp"), e.path("networks"), e.path("volumes")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	containersConf := fmt.Sprintf(`# written by internal/testpodman
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
# API exec sessions keep a conmon alive for this long (default 300 s);
# short, so test trees can be removed promptly.
exit_command_delay = 5
events_logger = "file"
events_logfile_path = %q
tmp_dir = %q
static_dir = %q
volume_path = %q
image_copy_tmp_dir = %q

[network]
network_config_dir = %q
`, e.path("events.log"), e.path("libpod-tmp"), filepath.Join(e.GraphRoot, "libpod"),
		e.path("volumes"), e.path("tmp"), e.path("networks"))

	storageConf := fmt.Sprintf(`# written by internal/testpodman
[storage]
driver = "vfs"
graphroot = %q
runroot = %q
`, e.GraphRoot, e.RunRoot)

	policy := `{"default": [{"type": "insecureAcceptAnything"}]}` + "\n"

	files := map[string]string{
		e.ContainersConf: containersConf,
		e.StorageConf:    storageConf,
		e.PolicyFile:     policy,
		// podman 4.3 refuses push/pull when REGISTRY_AUTH_FILE names a file
		// that does not exist, so start with an empty one.
		e.AuthFile: "{}\n",
	}
	for name, content := range files {
		if err := os.WriteFile(name, []byte(content), 0o600); err != nil {
			return err
		}
	}
	return e.writeRegistriesConf()
}

func (e *Env) writeRegistriesConf() error {
	var b strings.Builder
	b.WriteString("# written by internal/testpodman\nunqualified-search-registries = []\nshort-name-mode = \"disabled\"\n")
	for _, h := range e.insecure {
		fmt.Fprintf(&b, "\n[[registry]]\nlocation = %q\ninsecure = true\n", h)
	}
	tmp := e.RegistriesConf + ".new"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, e.RegistriesConf)
}

// AddInsecureRegistry marks host[:port] as a plain-HTTP / unverified-TLS
// registry in this Env's registries.conf, so podman and skopeo talk to it
// without --tls-verify=false.
func (e *Env) AddInsecureRegistry(host string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, h := range e.insecure {
		if h == host {
			return nil
		}
	}
	e.insecure = append(e.insecure, host)
	return e.writeRegistriesConf()
}

func (e *Env) path(name string) string { return filepath.Join(e.Dir, name) }

// buildEnviron is the process environment minus anything that would send
// podman elsewhere (remote connections, other configuration files).
func (e *Env) buildEnviron() []string {
	drop := map[string]bool{
		"CONTAINER_HOST": true, "CONTAINER_CONNECTION": true, "CONTAINER_SSHKEY": true,
		"CONTAINER_PASSPHRASE": true, "CONTAINERS_CONF": true, "CONTAINERS_CONF_OVERRIDE": true,
		"CONTAINERS_STORAGE_CONF": true, "CONTAINERS_REGISTRIES_CONF": true,
		"REGISTRY_AUTH_FILE": true, "DOCKER_CONFIG": true, "TMPDIR": true,
		"BUILDAH_FORMAT": true, "BUILDAH_ISOLATION": true, "STORAGE_DRIVER": true,
		"STORAGE_OPTS": true, "NOTIFY_SOCKET": true,
	}
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if !drop[k] {
			env = append(env, kv)
		}
	}
	return append(env,
		"CONTAINERS_CONF="+e.ContainersConf,
		"CONTAINERS_STORAGE_CONF="+e.StorageConf,
		"CONTAINERS_REGISTRIES_CONF="+e.RegistriesConf,
		"REGISTRY_AUTH_FILE="+e.AuthFile,
		"TMPDIR="+e.path("tmp"),
	)
}

// Environ returns the environment podman and skopeo commands of this Env run
// with (useful for starting other tools that read containers-common files).
func (e *Env) Environ() []string { return append([]string(nil), e.env...) }

// Command returns a podman command bound to this Env: private configuration
// through the environment and --root/--runroot ahead of args.
func (e *Env) Command(ctx context.Context, args ...string) *exec.Cmd {
	full := append([]string{"--root", e.GraphRoot, "--runroot", e.RunRoot}, args...)
	cmd := exec.CommandContext(ctx, e.podmanPath, full...)
	cmd.Env = e.Environ()
	cmd.WaitDelay = 10 * time.Second
	return cmd
}

// HasSkopeo reports whether skopeo is installed.
func (e *Env) HasSkopeo() bool { return e.skopeoPath != "" }

// Skopeo returns a skopeo command with the same registries.conf and auth file
// (through the environment) and a permissive signature policy. containers-storage: references resolve
// to this Env's storage. When skopeo is not installed the command fails to
// start; check HasSkopeo or use RunSkopeo.
func (e *Env) Skopeo(ctx context.Context, args ...string) *exec.Cmd {
	bin := e.skopeoPath
	if bin == "" {
		bin = "skopeo"
	}
	full := append([]string{"--policy", e.PolicyFile}, args...)
	cmd := exec.CommandContext(ctx, bin, full...)
	cmd.Env = e.Environ()
	cmd.WaitDelay = 10 * time.Second
	return cmd
}

// Run runs podman with args and returns its standard output. On failure it
// fails the test with the command line and podman's combined output.
func (e *Env) Run(t testing.TB, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), CommandTimeout)
	defer cancel()
	return runCmd(t, e.Command(ctx, args...))
}

// RemoveContainer force-removes a container, retrying while podman
// reports the race of removing a container that a restart policy is
// restarting ("container state improper"), which podman 4 can hit with a
// crash-looping container.
func (e *Env) RemoveContainer(t testing.TB, name string) {
	t.Helper()
	var out []byte
	var err error
	for attempt := 0; attempt < 10; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), CommandTimeout)
		out, err = e.Command(ctx, "rm", "--force", "--time", "0", name).CombinedOutput()
		cancel()
		if err == nil {
			return
		}
		if !bytes.Contains(out, []byte("state improper")) && !bytes.Contains(out, []byte("not running")) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("podman rm --force %s: %v\n%s", name, err, out)
}

// RunSkopeo is Run for skopeo. It skips the test when skopeo is missing
// (fails when CI is set).
func (e *Env) RunSkopeo(t testing.TB, args ...string) string {
	t.Helper()
	if !e.HasSkopeo() {
		if InCI() {
			t.Fatal("testpodman: skopeo is not installed; CI is set, so skopeo tests must not be skipped (scripts/install-test-deps.sh installs it)")
		}
		t.Skip("SKIPPING skopeo test: skopeo is not installed; install it with scripts/install-test-deps.sh")
	}
	ctx, cancel := context.WithTimeout(context.Background(), CommandTimeout)
	defer cancel()
	return runCmd(t, e.Skopeo(ctx, args...))
}

// lockedBuffer is written by both the stdout and stderr copiers.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type teeWriter struct {
	own      *bytes.Buffer
	combined *lockedBuffer
}

func (w teeWriter) Write(p []byte) (int, error) {
	w.own.Write(p)
	return w.combined.Write(p)
}

func runCmd(t testing.TB, cmd *exec.Cmd) string {
	t.Helper()
	var stdout bytes.Buffer
	var combined lockedBuffer
	cmd.Stdout = teeWriter{&stdout, &combined}
	cmd.Stderr = &combined
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s failed after %s: %v\n--- output ---\n%s", shellQuote(cmd.Args), time.Since(start).Round(time.Millisecond), err, combined.String())
	}
	return stdout.String()
}

func shellQuote(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\n'\"\\$`*?[]{}()<>|&;#~") {
			q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		} else {
			q[i] = a
		}
	}
	return strings.Join(q, " ")
}

// BuildScratchImage builds a FROM scratch image tagged tag that holds files
// (path inside the image, relative or absolute, to content) and returns its
// image ID. It needs no network. Files whose content starts with "#!" or an
// ELF header are executable (0755); others are 0644. Use a fully qualified
// tag such as "127.0.0.1:5000/ns/repo:v1" to push it later; a bare
// "ns/repo:v1" becomes "localhost/ns/repo:v1".
func (e *Env) BuildScratchImage(t testing.TB, tag string, files map[string][]byte) string {
	t.Helper()
	ctxDir := e.path(fmt.Sprintf("build-%d", e.seq.Add(1)))
	rootDir := filepath.Join(ctxDir, "root")
	if err := os.MkdirAll(rootDir, 0o755); err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(ctxDir)
	for name, content := range files {
		rel := filepath.Clean("/" + name)[1:]
		if rel == "" || rel == "." {
			t.Fatalf("BuildScratchImage: invalid file name %q", name)
		}
		p := filepath.Join(rootDir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		mode := os.FileMode(0o644)
		if bytes.HasPrefix(content, []byte("#!")) || bytes.HasPrefix(content, []byte("\x7fELF")) {
			mode = 0o755
		}
		if err := os.WriteFile(p, content, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // not subject to umask
			t.Fatal(err)
		}
	}
	containerfile := "FROM scratch\n"
	if len(files) > 0 {
		containerfile += "COPY root/ /\n"
	} else {
		containerfile += "LABEL io.quayctl.test.empty=true\n"
	}
	if err := os.WriteFile(filepath.Join(ctxDir, "Containerfile"), []byte(containerfile), 0o644); err != nil {
		t.Fatal(err)
	}
	iidFile := filepath.Join(ctxDir, "iid")
	e.Run(t, "build", "--quiet", "--pull=never", "--network=none", "--iidfile", iidFile,
		"-t", tag, "-f", filepath.Join(ctxDir, "Containerfile"), ctxDir)
	iid, err := os.ReadFile(iidFile)
	if err != nil {
		t.Fatalf("BuildScratchImage: podman build wrote no image id: %v", err)
	}
	return strings.TrimPrefix(strings.TrimSpace(string(iid)), "sha256:")
}

// Close stops services started on e, removes every container and deletes the
// private tree. It is safe to call more than once.
func (e *Env) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	svcs := make([]*service, 0, len(e.services))
	for s := range e.services {
		svcs = append(svcs, s)
	}
	e.mu.Unlock()

	var errs []error
	for _, s := range svcs {
		if err := s.stop(); err != nil {
			errs = append(errs, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, args := range [][]string{
		{"pod", "rm", "--all", "--force", "--time", "0"},
		{"rm", "--all", "--force", "--time", "0"},
	} {
		if out, err := e.Command(ctx, args...).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("podman %s: %v: %s", strings.Join(args, " "), err, out))
		}
	}
	unmountUnder(e.Dir)
	if err := os.RemoveAll(e.Dir); err != nil {
		errs = append(errs, fmt.Errorf("remove private podman tree: %w", err))
	}
	return errors.Join(errs...)
}
