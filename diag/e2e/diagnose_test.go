// Package e2e runs `quayctl diagnose` against a real deployment: quayctl
// serve as the quay container of a real podman service, a real PostgreSQL
// and a real Redis; then breaks one thing at a time and checks that the
// right finding, severity and exit code come out.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/quayctl/quayctl/cmd/quayctl/cli"
	"github.com/quayctl/quayctl/diag"
	"github.com/quayctl/quayctl/internal/testpg"
	"github.com/quayctl/quayctl/internal/testpodman"
	"github.com/quayctl/quayctl/internal/testredis"
)

func TestMain(m *testing.M) { testpg.Main(m) }

// deployment is the podman deployment under test.
type deployment struct {
	env     *testpodman.Env
	sock    string
	image   string
	cfgPath string
	dbURI   string
	addr    string
	storage string // host directory mounted at /datastorage
}

func (d *deployment) runQuay(t *testing.T, extra ...string) {
	t.Helper()
	// As Quay's image does, quay runs as UID 1001, so file modes bind it.
	args := append([]string{"run", "-d", "--name", "quay", "--network", "host", "--user", "1001",
		"-v", filepath.Dir(d.cfgPath) + ":/conf/stack:ro", "-v", d.storage + ":/datastorage"}, extra...)
	args = append(args, d.image, "/quayctl", "serve", "--listen", d.addr)
	d.env.Run(t, args...)
}

func (d *deployment) waitHealthy(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + d.addr + "/health/instance")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("quay never became healthy: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// quayctl runs the real command tree and returns the exit code and streams.
func quayctl(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	io := &cli.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}
	code := cli.Main(context.Background(), args, io)
	return code, out.String(), errOut.String()
}

func (d *deployment) diagnose(t *testing.T, args ...string) (int, diag.Report) {
	t.Helper()
	code, stdout, stderr := quayctl(t, append([]string{"diagnose", "--podman=" + d.sock, "-o", "json", "--timeout", "20s"}, args...)...)
	var rep diag.Report
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("diagnose %v: exit %d, not JSON: %v\n%s\n%s", args, code, err, stdout, stderr)
	}
	if code != rep.ExitCode() {
		t.Errorf("exit code %d but the report's worst finding says %d", code, rep.ExitCode())
	}
	return code, rep
}

// find returns the findings of check id at severity sev or worse.
func find(rep diag.Report, id string, sev diag.Severity) []diag.Finding {
	var out []diag.Finding
	for _, f := range rep.Findings {
		if f.ID == id && f.Severity >= sev {
			out = append(out, f)
		}
	}
	return out
}

func dump(rep diag.Report) string {
	var b strings.Builder
	for _, f := range rep.Findings {
		fmt.Fprintf(&b, "%s %s %s\n", f.Severity, f.ID, f.Title)
		for _, e := range f.Evidence {
			fmt.Fprintf(&b, "    | %s\n", e)
		}
	}
	return b.String()
}

func setup(t *testing.T) *deployment {
	env := testpodman.New(t)
	d := &deployment{env: env, sock: env.StartService(t), image: "localhost/quayctl:diagnose-test"}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		_ = env.Command(ctx, "rm", "--all", "--force", "--time", "0").Run()
	})
	env.BuildScratchImage(t, d.image, map[string][]byte{"quayctl": testpodman.BuildQuayctl(t), "tmp/.keep": nil})
	redis := testredis.Start(t)
	d.dbURI = testpg.NewDatabase(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d.addr = ln.Addr().String()
	ln.Close()
	d.storage = t.TempDir()
	cfgDir := t.TempDir()
	for _, dir := range []string{cfgDir, d.storage} {
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chown(d.storage, 1001, 1001); err != nil {
		t.Fatal(err)
	}
	d.cfgPath = filepath.Join(cfgDir, "config.yaml")
	cfg := fmt.Sprintf(`SERVER_HOSTNAME: %s
PREFERRED_URL_SCHEME: http
SETUP_COMPLETE: true
TESTING: false
AUTHENTICATION_TYPE: Database
DB_URI: %s
SECRET_KEY: e2e-secret-key-9f1c
DATABASE_SECRET_KEY: e2e-db-secret-4b7a
SUPER_USERS: [admin]
DISTRIBUTED_STORAGE_CONFIG:
  default:
    - LocalStorage
    - storage_path: /datastorage/registry
DISTRIBUTED_STORAGE_PREFERENCE: [default]
DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS: [default]
BUILDLOGS_REDIS: {host: %s, port: %d}
USER_EVENTS_REDIS: {host: %s, port: %d}
`, d.addr, d.dbURI, redis.Host, redis.Port, redis.Host, redis.Port)
	if err := os.WriteFile(d.cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	d.runQuay(t)
	d.waitHealthy(t)
	var out, errOut bytes.Buffer
	io := &cli.IOStreams{In: strings.NewReader("correct-horse-battery\n"), Out: &out, ErrOut: &errOut}
	if code := cli.Main(context.Background(), []string{"user", "create", "admin", "--password-stdin", "--email", "admin@example.com", "--superuser", "--config", d.cfgPath}, io); code != 0 {
		t.Fatalf("user create: exit %d\n%s\n%s", code, out.String(), errOut.String())
	}
	return d
}

// TestDiagnosePodman is issue 5's end-to-end test: healthy first, then one
// break at a time, each undone before the next.
func TestDiagnosePodman(t *testing.T) {
	if testing.Short() {
		t.Skip("podman end-to-end test; skipped with -short")
	}
	d := setup(t)
	ctx := context.Background()
	db, err := pgx.Connect(ctx, d.dbURI)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(ctx)

	t.Run("healthy", func(t *testing.T) {
		code, rep := d.diagnose(t)
		if code != 0 || rep.Summary.Warn+rep.Summary.Fail != 0 {
			t.Fatalf("healthy deployment: exit %d\n%s", code, dump(rep))
		}
		t.Logf("healthy report:\n%s", dump(rep))
		for _, id := range []string{"health.endpoints", "database.connection", "database.connections", "auth.superusers", "config.validation", "storage.probe", "containers.running", "logs.scan", "database.schema"} {
			if len(find(rep, id, diag.OK)) == 0 {
				t.Errorf("no %s finding in a full run:\n%s", id, dump(rep))
			}
		}
		// The human report of the same deployment.
		code, stdout, _ := quayctl(t, "diagnose", "--podman="+d.sock, "--only", "health,auth")
		if code != 0 || !strings.Contains(stdout, "/health/endtoend healthy") || !strings.Contains(stdout, "— exit 0") {
			t.Errorf("text report: exit %d\n%s", code, stdout)
		}
	})

	t.Run("superuser removed", func(t *testing.T) {
		if _, err := db.Exec(ctx, `UPDATE "user" SET username = 'admin-renamed' WHERE username = 'admin'`); err != nil {
			t.Fatal(err)
		}
		defer db.Exec(ctx, `UPDATE "user" SET username = 'admin' WHERE username = 'admin-renamed'`)
		code, rep := d.diagnose(t, "--only", "auth")
		fs := find(rep, "auth.superusers", diag.Fail)
		if code != 2 || len(fs) != 1 || !strings.Contains(fs[0].Title, "superuser admin: no account of that name exists") {
			t.Fatalf("exit %d\n%s", code, dump(rep))
		}
	})

	t.Run("lock held by another session", func(t *testing.T) {
		holder, err := pgx.Connect(ctx, d.dbURI)
		if err != nil {
			t.Fatal(err)
		}
		defer holder.Close(ctx)
		tx, err := holder.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, `LOCK TABLE tag IN ACCESS EXCLUSIVE MODE`); err != nil {
			t.Fatal(err)
		}
		waiter, err := pgx.Connect(ctx, d.dbURI)
		if err != nil {
			t.Fatal(err)
		}
		defer waiter.Close(ctx)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			var n int
			_ = waiter.QueryRow(ctx, `SELECT count(*) FROM tag`).Scan(&n)
		}()
		time.Sleep(6 * time.Second) // past the 5 s warning threshold
		code, rep := d.diagnose(t, "--only", "database.locks")
		_ = tx.Rollback(ctx)
		wg.Wait()
		fs := find(rep, "database.locks", diag.Warn)
		if code != 1 || len(fs) != 1 || !strings.Contains(strings.Join(fs[0].Evidence, "\n"), "AccessShareLock") {
			t.Fatalf("exit %d\n%s", code, dump(rep))
		}
	})

	t.Run("connections near max_connections", func(t *testing.T) {
		var max, reserved, used int
		if err := db.QueryRow(ctx, `SELECT current_setting('max_connections')::int, current_setting('superuser_reserved_connections')::int,
			(SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')`).Scan(&max, &reserved, &used); err != nil {
			t.Fatal(err)
		}
		// Leave room for diagnose's own connection and quay's pool.
		extra := (max-reserved)*96/100 - used
		var conns []*pgx.Conn
		defer func() {
			for _, c := range conns {
				c.Close(ctx)
			}
		}()
		for i := 0; i < extra; i++ {
			c, err := pgx.Connect(ctx, d.dbURI)
			if err != nil {
				t.Fatalf("connection %d of %d: %v", i, extra, err)
			}
			conns = append(conns, c)
		}
		code, rep := d.diagnose(t, "--only", "database.connections")
		fs := find(rep, "database.connections", diag.Fail)
		if code != 2 || len(fs) != 1 || !strings.Contains(fs[0].Title, "connections near max_connections") {
			t.Fatalf("exit %d with %d extra connections\n%s", code, extra, dump(rep))
		}
	})

	t.Run("storage unwritable", func(t *testing.T) {
		setModes := func(mode os.FileMode) {
			err := filepath.WalkDir(filepath.Join(d.storage, "registry"), func(p string, e os.DirEntry, err error) error {
				if err == nil && e.IsDir() {
					err = os.Chmod(p, mode)
				}
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		setModes(0o555)
		defer setModes(0o755)
		code, rep := d.diagnose(t, "--only", "health,storage")
		fs := find(rep, "health.endpoints", diag.Fail)
		if code != 2 || len(fs) == 0 || !strings.Contains(fs[0].Title, "storage") {
			t.Fatalf("exit %d\n%s", code, dump(rep))
		}
		if probe := find(rep, "storage.probe", diag.Fail); len(probe) != 1 {
			t.Errorf("the storage probe did not fail:\n%s", dump(rep))
		}
	})

	t.Run("storage location at a missing path", func(t *testing.T) {
		orig, err := os.ReadFile(d.cfgPath)
		if err != nil {
			t.Fatal(err)
		}
		defer os.WriteFile(d.cfgPath, orig, 0o644)
		// diagnose reads the config quay mounts: no restart needed to see it.
		broken := strings.Replace(string(orig), "DISTRIBUTED_STORAGE_CONFIG:\n", "DISTRIBUTED_STORAGE_CONFIG:\n  archive:\n    - LocalStorage\n    - storage_path: /datastorage/registy-typo\n", 1)
		if err := os.WriteFile(d.cfgPath, []byte(broken), 0o644); err != nil {
			t.Fatal(err)
		}
		code, rep := d.diagnose(t, "--only", "storage")
		var failed bool
		for _, f := range find(rep, "storage.probe", diag.Fail) {
			failed = failed || f.Subject == "archive" || strings.Contains(f.Title, "archive")
		}
		if code != 2 || !failed {
			t.Fatalf("exit %d\n%s", code, dump(rep))
		}
	})

	t.Run("quay crash-looping", func(t *testing.T) {
		d.env.Run(t, "rm", "--force", "--time", "0", "quay")
		defer func() {
			d.env.RemoveContainer(t, "quay") // it is crash-looping: podman may race its restart
			d.runQuay(t)
			d.waitHealthy(t)
		}()
		// A listen address it cannot bind: serve exits 1, podman restarts it.
		d.env.Run(t, "run", "-d", "--name", "quay", "--network", "host", "--restart", "always",
			"-v", filepath.Dir(d.cfgPath)+":/conf/stack:ro", d.image, "/quayctl", "serve", "--listen", "256.0.0.1:1")
		deadline := time.Now().Add(90 * time.Second)
		for {
			out := d.env.Run(t, "inspect", "--format", "{{.RestartCount}}", "quay")
			var n int
			fmt.Sscan(strings.TrimSpace(out), &n)
			if n >= 3 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("quay restarted %d times in 90 s", n)
			}
			time.Sleep(time.Second)
		}
		code, rep := d.diagnose(t, "--only", "containers")
		if code != 2 || !strings.Contains(dump(rep), "fail containers.") {
			t.Fatalf("exit %d\n%s", code, dump(rep))
		}
	})

	// Last: stopping PostgreSQL ends the package's database cluster.
	t.Run("postgres stopped", func(t *testing.T) {
		db.Close(ctx)
		if err := testpg.Stop(); err != nil {
			t.Fatal(err)
		}
		code, rep := d.diagnose(t, "--only", "database,health")
		conn := find(rep, "database.connection", diag.Fail)
		if code != 2 || len(conn) != 1 || !strings.Contains(conn[0].Title, "cannot connect to the database") {
			t.Fatalf("exit %d\n%s", code, dump(rep))
		}
		var unhealthy bool
		for _, f := range find(rep, "health.endpoints", diag.Fail) {
			unhealthy = unhealthy || strings.Contains(f.Title, "database")
		}
		if !unhealthy {
			t.Errorf("health did not name the database:\n%s", dump(rep))
		}
	})
}
