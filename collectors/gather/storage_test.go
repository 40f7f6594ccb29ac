package gather_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/quayctl/quayctl/collectors"
	"github.com/quayctl/quayctl/collectors/direct"
	"github.com/quayctl/quayctl/collectors/gather"
	"github.com/quayctl/quayctl/dbtools/diagnostics/diagtest"
	"github.com/quayctl/quayctl/diag"
	"github.com/quayctl/quayctl/diag/checks"
	"github.com/quayctl/quayctl/internal/testpg"
	"github.com/quayctl/quayctl/internal/tests3"
	"github.com/quayctl/quayctl/registry/storage"
)

func TestMain(m *testing.M) {
	stop := tests3.Begin()
	code := testpg.Run(m)
	stop()
	os.Exit(code)
}

// storageDirect is a direct target whose --config is config.
func storageDirect(t *testing.T, config string) *gather.Gatherer {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(p, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	d, err := direct.New(direct.Options{ConfigPath: p})
	if err != nil {
		t.Fatal(err)
	}
	return storageGatherer(t, d)
}

func storageGatherer(t *testing.T, d collectors.Deployment) *gather.Gatherer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	g := gather.New(ctx, d, gather.Options{Timeout: time.Minute})
	t.Cleanup(func() { cancel(); _ = g.Close() })
	return g
}

// localConfig is a config with LocalStorage locations (name → path) and
// the extra location lines.
func localConfig(locations map[string]string, extra ...string) string {
	var b strings.Builder
	b.WriteString("SERVER_HOSTNAME: quay.example.com\nDISTRIBUTED_STORAGE_CONFIG:\n")
	names := make([]string, 0, len(locations))
	for n := range locations {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(&b, "  %s: [LocalStorage, {storage_path: %q}]\n", n, locations[n])
	}
	for _, e := range extra {
		b.WriteString("  " + e + "\n")
	}
	fmt.Fprintf(&b, "DISTRIBUTED_STORAGE_PREFERENCE: [%s]\n", names[0])
	return b.String()
}

func getProbe(t *testing.T, g *gather.Gatherer, loc string) diag.StorageProbe {
	t.Helper()
	p, err := diag.GetJSON[diag.StorageProbe](context.Background(), g, diag.FactStorageProbe(loc))
	if err != nil {
		t.Fatalf("probe of %s: %v", loc, err)
	}
	return p
}

// tree lists every file and directory below dir ("" when dir is missing),
// to show that a probe leaves nothing behind.
func tree(t *testing.T, dir string) string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out = append(out, rel)
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(out, "\n")
}

func stepNames(p diag.StorageProbe) string {
	var s []string
	for _, st := range p.Steps {
		mark := "ok"
		if !st.OK {
			mark = "FAIL"
		}
		s = append(s, st.Step+":"+mark)
	}
	return strings.Join(s, " ")
}

// storageFindings runs the storage and geo-replication checks over g.
func storageFindings(t *testing.T, g diag.Facts, area string) []diag.Finding {
	t.Helper()
	cs, err := diag.Select(checks.All(), []string{area}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return diag.Run(context.Background(), g, diag.Target{Kind: "test"}, cs, diag.Options{}).Findings
}

func findingOf(fs []diag.Finding, id, subject string) (diag.Finding, bool) {
	for _, f := range fs {
		if f.ID == id && f.Subject == subject {
			return f, true
		}
	}
	return diag.Finding{}, false
}

func TestStorageProbeLocal(t *testing.T) {
	base := t.TempDir()
	good := filepath.Join(base, "good")
	unwritable := filepath.Join(base, "unwritable")
	missing := filepath.Join(base, "missing", "registry")
	file := filepath.Join(base, "file")
	for _, d := range []string{good, unwritable} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// Root ignores 0555, so the driver's work directory is a file too:
	// every write fails, as on a read-only or foreign-owned volume.
	if err := os.WriteFile(filepath.Join(unwritable, ".inprogress"), nil, 0o444); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(unwritable, 0o555); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(unwritable, 0o755) })
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(good, "existing"), []byte("blob"), 0o644); err != nil {
		t.Fatal(err)
	}
	config := localConfig(map[string]string{"good": good, "unwritable": unwritable, "missing": missing, "file": file},
		"azure: [AzureStorage, {azure_container: c, azure_account_name: a, azure_account_key: sekrit, storage_path: /q}]",
		"typo: [localstorage, {storage_path: /tmp}]")

	tests := []struct {
		loc       string
		ok        bool
		steps     string
		errPart   string
		wherePart string
		severity  diag.Severity
		title     string
	}{
		{loc: "good", ok: true, steps: "write:ok stat:ok read:ok compare:ok delete:ok", wherePart: good + " (on this host)",
			severity: diag.OK, title: "good (LocalStorage): write, read back and delete in"},
		{loc: "unwritable", steps: "write:FAIL", errPart: "failed at write", wherePart: unwritable,
			severity: diag.Fail, title: "unwritable: storage probe failed at write"},
		{loc: "missing", steps: "open:FAIL", errPart: "storage_path " + missing + " does not exist",
			severity: diag.Fail, title: "missing: storage probe failed at open"},
		{loc: "file", steps: "open:FAIL", errPart: "is not a directory",
			severity: diag.Fail, title: "file: storage probe failed at open"},
		{loc: "azure", steps: "", errPart: gather.StorageSkipped + "quayctl cannot probe AzureStorage yet", wherePart: "bucket c path /q",
			severity: diag.Warn, title: "azure: quayctl cannot probe AzureStorage yet"},
		{loc: "typo", steps: "open:FAIL", errPart: `unknown storage driver "localstorage" (did you mean LocalStorage?`,
			severity: diag.Fail, title: "typo: storage probe failed at open"},
	}
	before := tree(t, base)
	g := storageDirect(t, config)
	for _, tt := range tests {
		t.Run(tt.loc, func(t *testing.T) {
			p := getProbe(t, g, tt.loc)
			if p.OK != tt.ok || stepNames(p) != tt.steps || !strings.Contains(p.Error, tt.errPart) || !strings.Contains(p.Where, tt.wherePart) || p.Location != tt.loc {
				t.Errorf("probe = ok %v, steps %q, where %q, error %q\nwant ok %v, steps %q, where ~%q, error ~%q",
					p.OK, stepNames(p), p.Where, p.Error, tt.ok, tt.steps, tt.wherePart, tt.errPart)
			}
			for _, st := range p.Steps {
				if st.OK && st.ElapsedMS <= 0 && st.Step != "compare" {
					t.Errorf("step %s has no timing", st.Step)
				}
			}
		})
	}
	t.Run("probes leave nothing behind and create nothing", func(t *testing.T) {
		if after := tree(t, base); after != before {
			t.Errorf("the tree changed:\nbefore:\n%s\nafter:\n%s", before, after)
		}
	})
	t.Run("no secret in any probe", func(t *testing.T) {
		for _, tt := range tests {
			b, _ := g.Get(context.Background(), diag.FactStorageProbe(tt.loc))
			if bytes.Contains(b, []byte("sekrit")) {
				t.Errorf("%s: %s", tt.loc, b)
			}
		}
	})
	t.Run("checks", func(t *testing.T) {
		fs := storageFindings(t, g, checks.AreaStorage)
		for _, tt := range tests {
			f, ok := findingOf(fs, "storage.probe", tt.loc)
			if !ok || f.Severity != tt.severity || !strings.Contains(f.Title, tt.title) {
				t.Errorf("%s: finding %+v, want %s ~%q", tt.loc, f, tt.severity, tt.title)
			}
		}
	})
	t.Run("unknown location", func(t *testing.T) {
		_, err := g.Get(context.Background(), diag.FactStorageProbe("nowhere"))
		if err == nil || !strings.Contains(err.Error(), `DISTRIBUTED_STORAGE_CONFIG has no location "nowhere" (it has: azure, file, good, missing, typo, unwritable)`) {
			t.Errorf("err = %v", err)
		}
	})
}

// hostDeployment is a deployment whose quay "container" is this machine:
// Exec runs argv here, so the exec fallback runs a real sh on real files.
// mounts, when set, makes it a collectors.Mounter.
type hostDeployment struct {
	config string
	noSh   bool
	execs  int
}

func (d *hostDeployment) Kind() string { return "podman" }
func (d *hostDeployment) Name() string { return "test" }
func (d *hostDeployment) Components(ctx context.Context) ([]collectors.Component, error) {
	return []collectors.Component{{Name: collectors.ComponentQuay, Instance: "quay-app", State: "running", Ready: true}}, nil
}
func (d *hostDeployment) Logs(context.Context, string, collectors.LogOptions, io.Writer) error {
	return collectors.ErrNotSupported
}
func (d *hostDeployment) ReadFile(ctx context.Context, component, p string) (io.ReadCloser, error) {
	if component == collectors.ComponentQuay && p == direct.StackConfigPath {
		return io.NopCloser(strings.NewReader(d.config)), nil
	}
	return nil, fs.ErrNotExist
}
func (d *hostDeployment) Exec(ctx context.Context, component string, argv []string, opts collectors.ExecOptions) (int, error) {
	d.execs++
	if d.noSh && argv[0] == "sh" {
		return 127, errors.New(`exec sh in quay (container quay-app): executable file not found in $PATH (exit code 127)`)
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = opts.Stdin, opts.Stdout, opts.Stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), nil
	}
	if err != nil {
		return -1, err
	}
	return 0, nil
}
func (d *hostDeployment) Stats(context.Context, string) (collectors.Stats, error) {
	return collectors.Stats{}, collectors.ErrNotSupported
}

// mountedDeployment adds the quay container's mounts.
type mountedDeployment struct {
	hostDeployment
	mounts []collectors.Mount
}

func (d *mountedDeployment) Mounts(ctx context.Context, component string) ([]collectors.Mount, error) {
	return d.mounts, nil
}

func TestStorageProbeInsideContainer(t *testing.T) {
	base := t.TempDir()
	data := filepath.Join(base, "data")
	if err := os.MkdirAll(filepath.Join(data, "registry"), 0o755); err != nil {
		t.Fatal(err)
	}
	config := localConfig(map[string]string{"default": "/datastorage/registry"})
	// The container's /datastorage is data on the host.
	mounts := func(rw bool) []collectors.Mount {
		return []collectors.Mount{
			{Type: "bind", Source: "/etc/hosts", Destination: "/etc/hosts", RW: true},
			{Type: "volume", Name: "quay-storage", Source: data, Destination: "/datastorage", RW: rw},
		}
	}
	execConfig := localConfig(map[string]string{"default": filepath.Join(data, "registry"), "gone": filepath.Join(base, "gone")})
	tests := []struct {
		name      string
		d         collectors.Deployment
		loc       string
		ok        bool
		steps     string
		wherePart string
		errPart   string
		severity  diag.Severity
	}{
		{name: "host path of the volume", d: &mountedDeployment{hostDeployment{config: config}, mounts(true)}, loc: "default", ok: true,
			steps: "write:ok stat:ok read:ok compare:ok delete:ok", wherePart: filepath.Join(data, "registry") + " (host path of /datastorage/registry in the quay container)", severity: diag.OK},
		{name: "read-only volume", d: &mountedDeployment{hostDeployment{config: config}, mounts(false)}, loc: "default",
			steps: "write:FAIL", errPart: "is mounted read-only into the quay container (volume " + data + " → /datastorage)", severity: diag.Fail},
		{name: "through sh", d: &hostDeployment{config: execConfig}, loc: "default", ok: true,
			steps: "write:ok stat:ok read:ok compare:ok delete:ok", wherePart: "in the quay component (quay-app), through sh", severity: diag.OK},
		{name: "through sh, missing path", d: &hostDeployment{config: execConfig}, loc: "gone",
			steps: "open:FAIL", errPart: "does not exist or is not a directory in the quay container", severity: diag.Fail},
		{name: "no shell", d: &hostDeployment{config: execConfig, noSh: true}, loc: "default",
			steps: "", errPart: gather.StorageSkipped + filepath.Join(data, "registry") + " is inside the quay container, and quayctl cannot run sh there", severity: diag.Info},
		{name: "mount not on this host: through sh", d: &mountedDeployment{hostDeployment{config: execConfig}, []collectors.Mount{{Type: "bind", Source: filepath.Join(base, "elsewhere"), Destination: data, RW: true}}}, loc: "default", ok: true,
			steps: "write:ok stat:ok read:ok compare:ok delete:ok", wherePart: "through sh [the host path " + filepath.Join(base, "elsewhere") + " of " + data + " is not reachable from here", severity: diag.OK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := tree(t, base)
			g := storageGatherer(t, tt.d)
			p := getProbe(t, g, tt.loc)
			if p.OK != tt.ok || stepNames(p) != tt.steps || !strings.Contains(p.Where, tt.wherePart) || !strings.Contains(p.Error, tt.errPart) {
				t.Errorf("probe = ok %v, steps %q, where %q, error %q\nwant ok %v, steps %q, where ~%q, error ~%q",
					p.OK, stepNames(p), p.Where, p.Error, tt.ok, tt.steps, tt.wherePart, tt.errPart)
			}
			if after := tree(t, base); after != before {
				t.Errorf("the probe left something behind:\n%s", after)
			}
			f, ok := findingOf(storageFindings(t, g, checks.AreaStorage), "storage.probe", tt.loc)
			if !ok || f.Severity != tt.severity {
				t.Errorf("finding %+v, want %s", f, tt.severity)
			}
		})
	}
}

func TestStorageProbeS3(t *testing.T) {
	endpoint, bucket, access, secret := tests3.NewBucket(t)
	srv := tests3.Shared(t)
	config := fmt.Sprintf(`DISTRIBUTED_STORAGE_CONFIG:
  s3:
    - S3Storage
    - {s3_bucket: %[2]s, storage_path: /quay/registry, s3_access_key: %[3]s, s3_secret_key: %[4]s, endpoint_url: %[1]s, s3_region: us-east-1}
  rgw:
    - RadosGWStorage
    - {bucket_name: %[2]s, storage_path: /rgw, access_key: %[3]s, secret_key: %[4]s, hostname: %[5]s, is_secure: false}
  badkey:
    - S3Storage
    - {s3_bucket: %[2]s, storage_path: /x, s3_access_key: %[3]s, s3_secret_key: wrong-%[4]s, endpoint_url: %[1]s, s3_region: us-east-1}
  nobucket:
    - S3Storage
    - {s3_bucket: no-such-bucket, storage_path: /x, s3_access_key: %[3]s, s3_secret_key: %[4]s, endpoint_url: %[1]s, s3_region: us-east-1}
DISTRIBUTED_STORAGE_PREFERENCE: [s3]
`, endpoint, bucket, access, secret, strings.TrimPrefix(endpoint, "http://"))
	g := storageDirect(t, config)
	tests := []struct {
		loc      string
		ok       bool
		steps    string
		where    string
		download bool
		severity diag.Severity
	}{
		{loc: "s3", ok: true, steps: "write:ok stat:ok read:ok compare:ok delete:ok", where: endpoint + " bucket " + bucket + " path /quay/registry", download: true, severity: diag.OK},
		{loc: "rgw", ok: true, steps: "write:ok stat:ok read:ok compare:ok delete:ok", where: endpoint + " bucket " + bucket + " path /rgw", download: true, severity: diag.OK},
		{loc: "badkey", steps: "write:FAIL", where: endpoint, severity: diag.Fail},
		// A failed commit may have left an object, so the probe tries to
		// delete it, and that fails too without a bucket.
		{loc: "nobucket", steps: "write:FAIL delete:FAIL", where: "bucket no-such-bucket", severity: diag.Fail},
	}
	for _, tt := range tests {
		t.Run(tt.loc, func(t *testing.T) {
			p := getProbe(t, g, tt.loc)
			if p.OK != tt.ok || stepNames(p) != tt.steps || !strings.Contains(p.Where, tt.where) {
				t.Errorf("probe = ok %v, steps %q, where %q, error %q; want ok %v, steps %q, where ~%q", p.OK, stepNames(p), p.Where, p.Error, tt.ok, tt.steps, tt.where)
			}
			if tt.download != (p.Download != nil) || (p.Download != nil && (!p.Download.OK || p.Download.Step != gather.StorageStepSignedURL)) {
				t.Errorf("download = %+v, want one: %v", p.Download, tt.download)
			}
			b, _ := json.Marshal(p)
			if bytes.Contains(b, []byte(secret)) {
				t.Errorf("the secret key is in the probe: %s", b)
			}
		})
	}
	t.Run("the bucket is empty afterwards", func(t *testing.T) {
		// The gateway keeps its own work files in .sgwtmp.
		var objects []string
		for _, p := range strings.Split(tree(t, filepath.Join(srv.Dir, bucket)), "\n") {
			if p != "." && p != ".sgwtmp" && !strings.HasPrefix(p, ".sgwtmp/") {
				objects = append(objects, p)
			}
		}
		if len(objects) > 0 {
			t.Errorf("bucket holds:\n%s", strings.Join(objects, "\n"))
		}
	})
	t.Run("checks", func(t *testing.T) {
		fs := storageFindings(t, g, checks.AreaStorage)
		for _, tt := range tests {
			f, ok := findingOf(fs, "storage.probe", tt.loc)
			if !ok || f.Severity != tt.severity {
				t.Errorf("%s: finding %+v, want %s", tt.loc, f, tt.severity)
			}
			if strings.Contains(strings.Join(f.Evidence, "\n"), secret) {
				t.Errorf("%s: the secret key is in the evidence", tt.loc)
			}
		}
	})
}

func TestStorageSample(t *testing.T) {
	uri := diagtest.QuayDatabase(t)
	conn := diagtest.Connect(t, uri)
	us, eu := diagtest.AddLocation(t, conn, "us"), diagtest.AddLocation(t, conn, "eu")
	digest := func(c string) string { return "sha256:" + strings.Repeat(c, 64) }
	diagtest.AddBlob(t, conn, digest("1"), 10, false, us, eu)
	diagtest.AddBlob(t, conn, digest("2"), 20, false, us)
	diagtest.AddBlob(t, conn, digest("3"), 30, true, us) // still uploading: not sampled
	diagtest.AddBlob(t, conn, digest("4"), 40, false, eu)

	base := t.TempDir()
	put := func(dir, c string) {
		p := filepath.Join(dir, filepath.FromSlash(storage.BlobPath("sha256", strings.Repeat(c, 64))))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	usDir, euDir := filepath.Join(base, "us"), filepath.Join(base, "eu")
	put(usDir, "1") // blob 2 is missing from us
	put(euDir, "1")
	put(euDir, "4")
	config := "FEATURE_STORAGE_REPLICATION: true\nDB_URI: " + uri + "\n" +
		localConfig(map[string]string{"us": usDir, "eu": euDir}) + "DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS: [us, eu]\n"
	g := storageDirect(t, config)
	ctx := context.Background()
	for _, tt := range []struct {
		loc     string
		checked int
		missing []string
	}{{"us", 2, []string{digest("2")}}, {"eu", 2, nil}} {
		s, err := diag.GetJSON[diag.StorageSample](ctx, g, diag.FactStorageSample(tt.loc))
		if err != nil {
			t.Fatal(err)
		}
		if s.Location != tt.loc || s.Checked != tt.checked || strings.Join(s.Missing, ",") != strings.Join(tt.missing, ",") || s.When.IsZero() {
			t.Errorf("%s: sample %+v, want checked %d, missing %v", tt.loc, s, tt.checked, tt.missing)
		}
	}
	fs := storageFindings(t, g, checks.AreaReplication)
	for _, w := range []struct {
		id, subject string
		sev         diag.Severity
		title       string
	}{
		{"geo-replication.sample", "us", diag.Fail, "us: 1 of 2 sampled blobs the database places here are missing"},
		{"geo-replication.sample", "eu", diag.OK, "eu: all 2 sampled blobs"},
		{"geo-replication.placement", "us", diag.Warn, "us lacks 1 of 4 blobs"},
		{"geo-replication.placement", "eu", diag.Warn, "eu lacks 2 of 4 blobs"},
	} {
		f, ok := findingOf(fs, w.id, w.subject)
		if !ok || f.Severity != w.sev || !strings.Contains(f.Title, w.title) {
			t.Errorf("%s %s: %+v, want %s ~%q", w.id, w.subject, f, w.sev, w.title)
		}
	}
}
