package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/quayctl/quayctl/internal/testregistry"
	"github.com/quayctl/quayctl/registry/server"
)

// safetyTimeout only bounds a hung test; synchronisation uses Ready and
// channels.
const safetyTimeout = 2 * time.Minute

// runningServe is `quayctl serve` started through the real command tree.
type runningServe struct {
	t      *testing.T
	url    string
	stderr *syncBuffer
	stdout *syncBuffer
	cancel context.CancelFunc
	runErr chan error // what serveRun returned
	code   chan int   // the exit code execute mapped it to
}

// startServe runs serve with args in a goroutine and returns once the
// server listens (its Ready hook fired). It fails the test if serve exits
// first.
func startServe(t *testing.T, env map[string]string, args ...string) *runningServe {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	io, out, errOut := testIO("")
	f := testFactory(io, env)
	ready := make(chan string, 1)
	s := &runningServe{t: t, stderr: errOut, stdout: out, cancel: cancel, runErr: make(chan error, 1), code: make(chan int, 1)}
	cmd := NewCmdServe(f, func(o *ServeOptions) error {
		o.Ready = func(addr string) { ready <- addr }
		err := serveRun(ctx, o)
		s.runErr <- err
		return err
	})
	root := withCmd(t, f, cmd)
	go func() { s.code <- execute(ctx, root, append([]string{"serve"}, args...), io.ErrOut) }()
	select {
	case addr := <-ready:
		s.url = "http://" + addr
	case code := <-s.code:
		cancel()
		t.Fatalf("serve exited with %d before it was ready; stderr:\n%s", code, errOut.String())
	case <-time.After(safetyTimeout):
		cancel()
		t.Fatalf("serve not ready; stderr:\n%s", errOut.String())
	}
	t.Cleanup(func() {
		cancel()
		select {
		case <-s.code:
		case <-time.After(safetyTimeout):
			t.Error("serve did not stop")
		}
	})
	return s
}

// stop cancels serve's context (Ctrl-C) and returns what serveRun returned
// and the exit code.
func (s *runningServe) stop() (error, int) {
	s.t.Helper()
	s.cancel()
	select {
	case code := <-s.code:
		err := <-s.runErr
		s.code <- code // for Cleanup
		return err, code
	case <-time.After(safetyTimeout):
		s.t.Fatalf("serve did not stop; stderr:\n%s", s.stderr.String())
		return nil, 0
	}
}

// do sends a request and returns the status and body.
func (s *runningServe) do(method, path, body string, basic ...string) (int, []byte) {
	s.t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, s.url+path, r)
	if err != nil {
		s.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if len(basic) == 2 {
		req.SetBasicAuth(basic[0], basic[1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	return resp.StatusCode, b
}

// wantJSON checks that body is the JSON value want (field order ignored).
func wantJSON(t *testing.T, what string, body []byte, want string) {
	t.Helper()
	var got, exp any
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("%s: body is not JSON: %v: %q", what, err, body)
	}
	if err := json.Unmarshal([]byte(want), &exp); err != nil {
		t.Fatal(err)
	}
	gb, _ := json.Marshal(got)
	eb, _ := json.Marshal(exp)
	if !bytes.Equal(gb, eb) {
		t.Errorf("%s: body = %s, want %s", what, gb, eb)
	}
}

func checkHealth(t *testing.T, s *runningServe) {
	t.Helper()
	code, body := s.do("GET", "/health/instance", "")
	if code != http.StatusOK {
		t.Fatalf("/health/instance: %d %s", code, body)
	}
	var h struct {
		Data struct {
			Services map[string]bool `json:"services"`
		} `json:"data"`
		StatusCode int `json:"status_code"`
	}
	if err := json.Unmarshal(body, &h); err != nil {
		t.Fatalf("/health/instance: %v: %s", err, body)
	}
	if h.StatusCode != 200 {
		t.Errorf("/health/instance status_code = %d", h.StatusCode)
	}
	for _, svc := range []string{"registry_gunicorn", "web_gunicorn", "service_key", "disk_space", "database", "auth"} {
		if ok, found := h.Data.Services[svc]; !found || !ok {
			t.Errorf("/health/instance service %s = %v (present %v): %s", svc, ok, found, body)
		}
	}
}

// TestServe starts quayctl serve on the embedded default, creates the first
// user, shuts down with Ctrl-C, and starts again on the same data directory.
func TestServe(t *testing.T) {
	needEmbeddedDefault(t)
	heavy(t)
	dir := t.TempDir()
	args := []string{"--listen", "127.0.0.1:0", "--data-dir", dir}
	const (
		user     = "quayadmin"
		pass     = "quayadmin-pass"
		nonEmpty = `{"message":"Cannot initialize user in a non-empty database"}`
		initBody = `{"username":"quayadmin","password":"quayadmin-pass","email":"a@example.com"}`
	)

	s := startServe(t, nil, args...)
	checkHealth(t, s)

	code, body := s.do("GET", "/v2/", "")
	if code != http.StatusUnauthorized {
		t.Errorf("anonymous /v2/: %d %s, want 401", code, body)
	}
	code, body = s.do("POST", "/api/v1/user/initialize", initBody)
	if code != http.StatusOK {
		t.Fatalf("initialize: %d %s", code, body)
	}
	wantJSON(t, "initialize", body, `{"username":"quayadmin","email":"a@example.com"}`)
	code, body = s.do("POST", "/api/v1/user/initialize", `{"username":"other","password":"other-pass-1","email":"o@example.com"}`)
	if code != http.StatusBadRequest {
		t.Errorf("second initialize: %d %s, want 400", code, body)
	}
	wantJSON(t, "second initialize", body, nonEmpty)
	if code, body = s.do("GET", "/v2/", "", user, pass); code != http.StatusOK {
		t.Errorf("/v2/ as %s: %d %s", user, code, body)
	}
	if code, body = s.do("GET", "/v2/", "", user, "wrong-pass"); code != http.StatusUnauthorized {
		t.Errorf("/v2/ with a wrong password: %d %s, want 401", code, body)
	}

	err, exit := s.stop()
	if err != nil {
		t.Errorf("serveRun returned %v after Ctrl-C, want nil", err)
	}
	if exit != ExitOK {
		t.Errorf("exit code %d after a clean shutdown", exit)
	}
	stderr := s.stderr.String()
	for _, want := range []string{
		"quayctl serve ready", `config="embedded default"`, "database=sqlite",
		"quayctl serve is running on " + s.url + " (embedded default, data in " + dir + ")",
		"Create the first user:", "curl -X POST " + s.url + "/api/v1/user/initialize",
		"applied database migration", // a fresh database, through serve's logger
		"shutting down",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if strings.Contains(stderr, pass) {
		t.Error("stderr shows the password")
	}
	if strings.Contains(stderr, "level=DEBUG") {
		t.Errorf("debug lines without DEBUGLOG:\n%s", stderr)
	}
	if s.stdout.String() != "" {
		t.Errorf("serve wrote to stdout: %q", s.stdout.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "quay.db")); err != nil {
		t.Errorf("no database in the data directory: %v", err)
	}

	// Again on the same data directory: migrations are idempotent and the
	// user is still there.
	s2 := startServe(t, nil, args...)
	checkHealth(t, s2)
	if code, body = s2.do("GET", "/v2/", "", user, pass); code != http.StatusOK {
		t.Errorf("after restart, /v2/ as %s: %d %s", user, code, body)
	}
	code, body = s2.do("POST", "/api/v1/user/initialize", initBody)
	if code != http.StatusBadRequest {
		t.Errorf("initialize after restart: %d %s, want 400", code, body)
	}
	wantJSON(t, "initialize after restart", body, nonEmpty)
	if err, exit := s2.stop(); err != nil || exit != ExitOK {
		t.Errorf("second shutdown: %v, exit %d", err, exit)
	}
	if stderr := s2.stderr.String(); strings.Contains(stderr, "applied database migration") {
		t.Errorf("the second start applied migrations again:\n%s", stderr)
	}
}

// TestServeJSONLog: JSONLOG=true (read through the Factory's Getenv) makes
// every log line JSON; the first-user hint stays plain text after them.
func TestServeJSONLog(t *testing.T) {
	needEmbeddedDefault(t)
	s := startServe(t, map[string]string{"JSONLOG": "true", "DEBUGLOG": "true"}, "--listen", "127.0.0.1:0", "--data-dir", t.TempDir())
	if code, body := s.do("GET", "/health/instance", ""); code != http.StatusOK {
		t.Fatalf("/health/instance: %d %s", code, body)
	}
	if err, exit := s.stop(); err != nil || exit != ExitOK {
		t.Fatalf("shutdown: %v, exit %d", err, exit)
	}
	var msgs []string
	var requestIDs int
	for _, line := range strings.Split(s.stderr.String(), "\n") {
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Errorf("log line is not JSON: %v: %s", err, line)
			continue
		}
		msgs = append(msgs, rec["msg"].(string))
		if id, _ := rec["request_id"].(string); strings.HasPrefix(id, "urn:request:") {
			requestIDs++
		}
	}
	joined := strings.Join(msgs, "|")
	for _, want := range []string{"quayctl serve ready", "request", "shutting down"} {
		if !strings.Contains(joined, want) {
			t.Errorf("no JSON log line %q among %q", want, msgs)
		}
	}
	if requestIDs == 0 {
		t.Errorf("no log line carries a request id:\n%s", s.stderr.String())
	}
	if !strings.Contains(s.stderr.String(), "Create the first user:") {
		t.Error("no first-user hint")
	}
}

// TestNewLogger: DEBUGLOG and JSONLOG, as serve (and user create, db
// migrate) read them through the Factory's Getenv.
func TestNewLogger(t *testing.T) {
	tests := []struct {
		env       map[string]string
		wantDebug bool
		wantJSON  bool
	}{
		{env: nil},
		{env: map[string]string{"DEBUGLOG": "true"}, wantDebug: true},
		{env: map[string]string{"DEBUGLOG": "TRUE"}, wantDebug: true},
		{env: map[string]string{"DEBUGLOG": "false"}},
		{env: map[string]string{"DEBUGLOG": "1"}}, // Quay compares with "true"
		{env: map[string]string{"JSONLOG": "true"}, wantJSON: true},
		{env: map[string]string{"JSONLOG": "true", "DEBUGLOG": "true"}, wantDebug: true, wantJSON: true},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		log := newLogger(&buf, func(k string) string { return tt.env[k] })
		if got := log.Enabled(context.Background(), slog.LevelDebug); got != tt.wantDebug {
			t.Errorf("env %v: debug enabled = %v, want %v", tt.env, got, tt.wantDebug)
		}
		log.Debug("debug line", "k", "v")
		log.Info("info line", "k", "v")
		out := buf.String()
		if got := strings.Contains(out, "debug line"); got != tt.wantDebug {
			t.Errorf("env %v: debug line written = %v:\n%s", tt.env, got, out)
		}
		if !strings.Contains(out, "info line") {
			t.Errorf("env %v: no info line:\n%s", tt.env, out)
		}
		if got := strings.HasPrefix(out, "{"); got != tt.wantJSON {
			t.Errorf("env %v: JSON = %v:\n%s", tt.env, got, out)
		}
	}
}

// TestServeConfigFile: with --config, serve uses the file and does not
// print the embedded default's first-user hint.
func TestServeConfigFile(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	writeFile(t, cfg, `SERVER_HOSTNAME: localhost:8080
PREFERRED_URL_SCHEME: http
DB_URI: sqlite:///`+dir+`/quay.db
DATABASE_SECRET_KEY: test-database-secret
SECRET_KEY: test-secret-key
SETUP_COMPLETE: true
TESTING: false
FEATURE_USER_INITIALIZE: true
DISTRIBUTED_STORAGE_CONFIG:
  local_us: [LocalStorage, {storage_path: `+dir+`/storage}]
DISTRIBUTED_STORAGE_PREFERENCE: [local_us]
`)
	s := startServe(t, nil, "--config", cfg, "--listen", "127.0.0.1:0", "--data-dir", filepath.Join(dir, "unused"))
	checkHealth(t, s)
	if err, exit := s.stop(); err != nil || exit != ExitOK {
		t.Fatalf("shutdown: %v, exit %d", err, exit)
	}
	stderr := s.stderr.String()
	if !strings.Contains(stderr, "config="+cfg) {
		t.Errorf("the ready line does not name the config file:\n%s", stderr)
	}
	if strings.Contains(stderr, "Create the first user") {
		t.Errorf("first-user hint printed for a config file:\n%s", stderr)
	}
	if strings.Contains(stderr, "level=WARN") {
		t.Errorf("warnings for a complete config:\n%s", stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "unused")); !os.IsNotExist(err) {
		t.Errorf("--data-dir was created although a config file was used (stat: %v)", err)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestServeFails: bad configuration and unusable resources exit 1 with a
// message naming the problem and the remedy, and never the password.
func TestServeFails(t *testing.T) {
	needEmbeddedDefault(t)
	dir := t.TempDir()
	mysql := filepath.Join(dir, "mysql.yaml")
	writeFile(t, mysql, "DB_URI: mysql+pymysql://u:p@h/quay\n")
	notYAML := filepath.Join(dir, "broken.yaml")
	writeFile(t, notYAML, "DB_URI: [unclosed\n")
	aFile := filepath.Join(dir, "a-file")
	writeFile(t, aFile, "")
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()

	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		want    []string
		notWant []string
	}{
		{name: "mysql DB_URI", args: []string{"--config", mysql},
			want: []string{"Error: the configuration is invalid", "DB_URI: ", `"mysql+pymysql" is not supported`, "use postgresql://",
				"\nfix the keys above (see docs/configuration.md), or check it with: quayctl config validate FILE\n"},
			notWant: []string{"u:p@", ":p@h", "//u:"}},
		{name: "missing config file", args: []string{"--config", filepath.Join(dir, "nope.yaml")},
			want: []string{"Error: cannot load the configuration", "nope.yaml does not exist", "check --config"}},
		{name: "config is not YAML", args: []string{"--config", notYAML},
			want: []string{"cannot load the configuration", "is not valid YAML"}},
		{name: "bad QUAY_OVERRIDE_CONFIG", env: map[string]string{"QUAY_OVERRIDE_CONFIG": "{not json"}, args: []string{"--data-dir", t.TempDir()},
			want: []string{"the configuration is invalid", "QUAY_OVERRIDE_CONFIG"}},
		{name: "data directory cannot be created", args: []string{"--data-dir", filepath.Join(aFile, "data")},
			want: []string{"Error: cannot create the data directory " + filepath.Join(aFile, "data"), "choose a writable --data-dir"}},
		{name: "address in use", args: []string{"--listen", busy.Addr().String(), "--data-dir", t.TempDir()},
			want: []string{"Error: cannot listen on " + busy.Addr().String(), "address already in use", "choose another --listen address"}},
		{name: "bad listen address", args: []string{"--listen", "nonsense", "--data-dir", t.TempDir()},
			want: []string{"Error: cannot listen on nonsense", "missing port in address", "choose another --listen address"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"serve", "--listen", "127.0.0.1:0"}, tt.args...)
			code, stdout, stderr := run(t, context.Background(), tt.env, "", args...)
			if code != ExitError {
				t.Errorf("exit code = %d, want %d", code, ExitError)
			}
			if stdout != "" {
				t.Errorf("stdout = %q", stdout)
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(stderr, w) {
					t.Errorf("stderr contains %q:\n%s", w, stderr)
				}
			}
			if strings.Contains(stderr, "quayctl serve ready") {
				t.Errorf("serve said it was ready:\n%s", stderr)
			}
		})
	}
}

func TestBoundListen(t *testing.T) {
	bound := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 43210}
	tests := []struct{ listen, want string }{
		{"127.0.0.1:0", "127.0.0.1:43210"},
		{":0", ":43210"},
		{"[::1]:0", "[::1]:43210"},
		{":8080", ":8080"},
		{"localhost:http", "localhost:http"},
		{"nonsense", "nonsense"},
	}
	for _, tt := range tests {
		if got := boundListen(tt.listen, bound); got != tt.want {
			t.Errorf("boundListen(%q) = %q, want %q", tt.listen, got, tt.want)
		}
	}
}

// TestServeOnlyWorkersFlags: --only-workers takes Quay's worker names,
// comma-separated or repeated; unknown names are refused with the list.
func TestServeOnlyWorkersFlags(t *testing.T) {
	valid := strings.Join(WorkerNames, ", ")
	runFlagTable(t, nil, NewCmdServe,
		func(o *ServeOptions) { o.IO, o.Getenv, o.Ready = nil, nil, nil },
		[]flagCase[ServeOptions]{
			{name: "one", args: []string{"serve", "--only-workers", "repomirror"},
				want: ServeOptions{Listen: ":8080", DataDir: "./quay-data", OnlyWorkers: []string{"repomirror"}}},
			{name: "comma-separated", args: []string{"serve", "--only-workers", "repomirror,gcworker"},
				want: ServeOptions{Listen: ":8080", DataDir: "./quay-data", OnlyWorkers: []string{"repomirror", "gcworker"}}},
			{name: "repeated, duplicates dropped", args: []string{"serve", "--only-workers=gcworker", "--only-workers", "repomirror", "--only-workers", "gcworker"},
				want: ServeOptions{Listen: ":8080", DataDir: "./quay-data", OnlyWorkers: []string{"gcworker", "repomirror"}}},
			{name: "every worker", args: []string{"serve", "--only-workers", strings.Join(WorkerNames, ",")},
				want: ServeOptions{Listen: ":8080", DataDir: "./quay-data", OnlyWorkers: WorkerNames}},
			{name: "unknown worker", args: []string{"serve", "--only-workers", "repomirror,repomirrorworker"},
				wantStderr: usageErr(`--only-workers: "repomirrorworker" is not a worker; valid workers: ` + valid)},
			{name: "empty name", args: []string{"serve", "--only-workers", "gcworker,,repomirror"},
				wantStderr: usageErr("--only-workers has an empty name; valid workers: " + valid)},
			{name: "no value", args: []string{"serve", "--only-workers"}, wantStderr: usageErr("flag needs an argument: --only-workers")},
		})
}

// pushSourceImage pushes a one-layer image to reg as user and tags it.
func pushSourceImage(t *testing.T, reg *testregistry.Registry, repo, user, pass, layer, tag string) string {
	t.Helper()
	ctx := context.Background()
	r := reg.OCIRepository(t, repo, user, pass)
	push := func(b []byte, mt string) ocispec.Descriptor { return testregistry.PushBlob(t, r, b, mt) }
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest,
		Config: push([]byte(`{"architecture":"amd64","os":"linux"}`), ocispec.MediaTypeImageConfig),
		Layers: []ocispec.Descriptor{push([]byte(layer), ocispec.MediaTypeImageLayer)}}
	m.SchemaVersion = 2
	b, _ := json.Marshal(m)
	d := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(b), Size: int64(len(b))}
	if err := r.PushReference(ctx, d, bytes.NewReader(b), tag); err != nil {
		t.Fatalf("push to the source: %v", err)
	}
	return d.Digest.String()
}

// TestServeOnlyWorkers: a `quayctl serve --only-workers repomirror`
// process syncs a due mirror and serves no /v2/ or /api/v1 (only health);
// one started with --only-workers gcworker leaves the mirror alone.
func TestServeOnlyWorkers(t *testing.T) {
	heavy(t)
	ctx := context.Background()
	const secret = "only-workers-test-secret"
	src := testregistry.Start(t, "sqlite:///"+filepath.Join(t.TempDir(), "src.db"), nil)
	src.CreateUser(t, "source", "source-password1")
	want := pushSourceImage(t, src, "source/app", "source", "source-password1", "app layer", "v1")

	dir := t.TempDir()
	dbURI := "sqlite:///" + filepath.Join(dir, "quay.db")
	// The API side: a registry on the same database and storage whose
	// mirror worker's next pass is far away, to configure and observe.
	api := testregistry.Start(t, dbURI, func(s *server.Settings) {
		s.RepoMirror, s.RepoMirrorInterval, s.DatabaseSecretKey = true, 1<<40, secret
		s.Locations = map[string]server.Location{"local_us": {Driver: "LocalStorage", Params: map[string]any{"storage_path": filepath.Join(dir, "storage")}}}
		s.Preference = []string{"local_us"}
	})
	ou := api.CreateUser(t, "olivia", "olivia-password1")
	robot, _, err := api.Srv.Auth.CreateRobot(ctx, ou.ID, "mirror", "")
	if err != nil {
		t.Fatal(err)
	}
	repo, err := api.Srv.Store.CreateRepository(ctx, ou.ID, "mirror", false, ou.ID)
	if err != nil {
		t.Fatal(err)
	}
	apiDo := func(method, path, body string) (int, []byte) {
		t.Helper()
		s := &runningServe{t: t, url: api.URL}
		return s.do(method, path, body, "olivia", "olivia-password1")
	}
	mirrorPath := "/api/v1/repository/olivia/mirror/mirror"
	if code, body := apiDo("POST", mirrorPath, `{"is_enabled": true, "external_reference": "`+src.Addr+`/source/app",
		"external_registry_username": "source", "external_registry_password": "source-password1",
		"external_registry_config": {"verify_tls": false}, "sync_interval": 3600, "sync_start_date": "2000-01-01T00:00:00Z",
		"root_rule": {"rule_kind": "tag_glob_csv", "rule_value": ["v*"]}, "robot_username": "`+robot.Username+`"}`); code != 201 {
		t.Fatalf("create mirror: %d %s", code, body)
	}
	syncStatus := func() string {
		t.Helper()
		code, body := apiDo("GET", mirrorPath, "")
		var v struct {
			SyncStatus string `json:"sync_status"`
		}
		if err := json.Unmarshal(body, &v); code != 200 || err != nil {
			t.Fatalf("GET mirror: %d %s", code, body)
		}
		return v.SyncStatus
	}

	cfg := filepath.Join(dir, "config.yaml")
	writeFile(t, cfg, `SERVER_HOSTNAME: localhost:8080
PREFERRED_URL_SCHEME: http
DB_URI: `+dbURI+`
DATABASE_SECRET_KEY: `+secret+`
SECRET_KEY: test-secret-key
SETUP_COMPLETE: true
FEATURE_REPO_MIRROR: true
REPO_MIRROR_INTERVAL: 1
FEATURE_GARBAGE_COLLECTION: true
DISTRIBUTED_STORAGE_CONFIG:
  local_us: [LocalStorage, {storage_path: `+filepath.Join(dir, "storage")+`}]
DISTRIBUTED_STORAGE_PREFERENCE: [local_us]
`)
	probe := func(s *runningServe) {
		t.Helper()
		checkHealth(t, s)
		for _, p := range []string{"/v2/", "/v2/olivia/mirror/tags/list", "/api/v1/repository/olivia/mirror/mirror", "/api/v1/discovery"} {
			if code, body := s.do("GET", p, ""); code != http.StatusNotFound || !strings.Contains(string(body), "--only-workers") {
				t.Errorf("GET %s on a worker-only process: %d %s, want 404", p, code, body)
			}
		}
	}

	gc := startServe(t, nil, "--config", cfg, "--listen", "127.0.0.1:0", "--only-workers", "gcworker")
	probe(gc)
	// Three mirror intervals: a process that ran the mirror worker would
	// have claimed the due mirror by now.
	time.Sleep(3500 * time.Millisecond)
	if got := syncStatus(); got != "NEVER_RUN" {
		t.Fatalf("--only-workers gcworker: mirror status %s, want NEVER_RUN", got)
	}
	if err, exit := gc.stop(); err != nil || exit != ExitOK {
		t.Fatalf("stop: %v, exit %d", err, exit)
	}
	if !strings.Contains(gc.stderr.String(), "workers=gcworker") {
		t.Errorf("the log does not name the workers:\n%s", gc.stderr.String())
	}

	mw := startServe(t, nil, "--config", cfg, "--listen", "127.0.0.1:0", "--only-workers", "repomirror")
	probe(mw)
	deadline := time.Now().Add(time.Minute)
	for syncStatus() != "SUCCESS" {
		if time.Now().After(deadline) {
			t.Fatalf("the repomirror worker did not sync within a minute: %s\n%s", syncStatus(), mw.stderr.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	m, _, err := api.Srv.Store.ManifestByTag(ctx, repo.ID, "v1")
	if err != nil || m.Digest != want {
		t.Fatalf("mirrored v1: %v %v, want %s", m, err, want)
	}
	if err, exit := mw.stop(); err != nil || exit != ExitOK {
		t.Fatalf("stop: %v, exit %d", err, exit)
	}
	if strings.Contains(mw.stderr.String(), "source-password1") {
		t.Error("the source password is in the log")
	}
}

// TestServeOnlyWorkersFeatureOff: naming a worker whose feature is off
// (the embedded default has no mirroring) warns that nothing will run;
// the process still answers health and refuses the registry API.
func TestServeOnlyWorkersFeatureOff(t *testing.T) {
	needEmbeddedDefault(t)
	s := startServe(t, nil, "--listen", "127.0.0.1:0", "--data-dir", t.TempDir(), "--only-workers", "repomirror")
	if code, body := s.do("GET", "/health/instance", ""); code != http.StatusOK {
		t.Fatalf("/health/instance: %d %s", code, body)
	}
	if code, _ := s.do("GET", "/v2/", ""); code != http.StatusNotFound {
		t.Errorf("/v2/ on a worker-only process: %d, want 404", code)
	}
	if err, exit := s.stop(); err != nil || exit != ExitOK {
		t.Fatalf("shutdown: %v, exit %d", err, exit)
	}
	stderr := s.stderr.String()
	for _, want := range []string{"level=WARN", "--only-workers names repomirror but FEATURE_REPO_MIRROR is off, so it will not run",
		"only background workers run; the registry API is not served", "workers=repomirror"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if strings.Contains(stderr, "Create the first user") {
		t.Error("the first-user hint on a worker-only process")
	}
}
