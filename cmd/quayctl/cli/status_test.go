package cli

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/quayctl/quayctl/collectors"
	"github.com/quayctl/quayctl/collectors/openshift"
)

var testNow = time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)

func intp(i int) *int { return &i }

// podmanFake is a standalone deployment: quay running, the database
// OOM-killed and restarted, redis exited.
func podmanFake() *fakeDeployment {
	return &fakeDeployment{
		kind: "podman", name: "unix:///run/podman/podman.sock",
		comps: []collectors.Component{
			{Name: "database", Instance: "postgresql-quay", State: "running", Ready: true, Restarts: 3, ExitCode: intp(137), Reason: "OOMKilled",
				Image: "registry.redhat.io/rhel8/postgresql-13:1", StartedAt: testNow.Add(-5 * time.Minute)},
			{Name: "quay", Instance: "quay", State: "running", Ready: true, Image: "localhost/quayctl:dev", StartedAt: testNow.Add(-50 * time.Hour),
				Env: map[string]string{"DEBUGLOG": "true", "QUAY_OVERRIDE_CONFIG": `{"SECRET_KEY":"sk-SEED"}`}},
			{Name: "redis", Instance: "redis", State: "exited", ExitCode: intp(1), Reason: "Error", Image: "registry.redhat.io/rhel8/redis-6:1", StartedAt: testNow.Add(-2 * time.Hour)},
		},
		stats: map[string]collectors.Stats{
			"quay":     {CPUPercent: 2.5, MemoryBytes: 300 << 20, MemoryLimitBytes: 2 << 30, PIDs: 42},
			"database": {CPUPercent: 0.4, MemoryBytes: 96 << 20},
		},
	}
}

// openshiftFake is a QuayRegistry rolling out with a crash-looping pod.
func openshiftFake() *fakeOpenShift {
	d := &fakeDeployment{
		kind: "openshift", name: "quay-enterprise/example-registry",
		comps: []collectors.Component{
			{Name: "database", Instance: "example-registry-quay-database-5d9f-abcde", State: "running", Ready: true, Image: "registry.redhat.io/rhel8/postgresql-13", StartedAt: testNow.Add(-3 * 24 * time.Hour)},
			{Name: "quay", Instance: "example-registry-quay-app-7c9d-x2x4q", Containers: []string{"quay-app"}, State: "CrashLoopBackOff", Restarts: 7, ExitCode: intp(1), Reason: "Error", Image: "registry.redhat.io/quay/quay-rhel8:v3.11.0", StartedAt: testNow.Add(-30 * time.Second)},
			{Name: "quay", Instance: "example-registry-quay-app-7c9d-zz9k1", Containers: []string{"quay-app"}, State: "running", Ready: true, Image: "registry.redhat.io/quay/quay-rhel8:v3.11.0", StartedAt: testNow.Add(-20 * time.Minute)},
		},
		stats: map[string]collectors.Stats{"quay": {MemoryLimitBytes: 8 << 30}, "database": {MemoryLimitBytes: 4 << 30}},
	}
	return &fakeOpenShift{
		fakeDeployment: d,
		status: openshift.RegistryStatus{
			Namespace: "quay-enterprise", Name: "example-registry", CurrentVersion: "3.11.0",
			RegistryEndpoint: "https://example-registry-quay-quay-enterprise.apps.example.com", ConfigBundleSecret: "config-bundle-secret",
			Conditions: []openshift.Condition{
				{Type: "Available", Status: "False", Reason: "MigrationsInProgress", Message: "running database migrations"},
				{Type: "RolloutBlocked", Status: "False", Reason: "HealthChecksPassing"},
				{Type: "ComponentQuayReady", Status: "False", Reason: "ComponentNotReady", Message: "Deployment example-registry-quay-app has 1/2 ready pods"},
			},
			Components: []openshift.RegistryComponent{{Kind: "quay", Managed: true}, {Kind: "clair", Managed: false}, {Kind: "objectstorage", Managed: false}},
			DebugLog:   true,
		},
		events: []openshift.Event{
			{Type: "Normal", Reason: "Pulled", Object: "Pod/example-registry-quay-app-7c9d-x2x4q", Message: "image pulled", Count: 1, LastTime: testNow.Add(-10 * time.Minute)},
			{Type: "Warning", Reason: "BackOff", Object: "Pod/example-registry-quay-app-7c9d-x2x4q", Message: "Back-off restarting failed container quay-app", Count: 7, LastTime: testNow.Add(-1 * time.Minute)},
			{Type: "Warning", Reason: "Unhealthy", Object: "Pod/example-registry-quay-app-7c9d-x2x4q", Message: "Readiness probe failed: connecting to postgresql://quay:SEEDpw@db/quay", Count: 2, LastTime: testNow.Add(-2 * time.Minute)},
		},
	}
}

func TestStatusRun(t *testing.T) {
	tests := []struct {
		name   string
		d      collectors.Deployment
		output string
		tty    bool
		golden string
	}{
		{"podman table", podmanFake(), "table", true, "status_podman.tty.golden"},
		{"podman piped", podmanFake(), "table", false, "status_podman.txt.golden"},
		{"podman json", podmanFake(), "json", false, "status_podman.json.golden"},
		{"podman yaml", podmanFake(), "yaml", false, "status_podman.yaml.golden"},
		{"openshift table", openshiftFake(), "table", true, "status_openshift.tty.golden"},
		{"openshift json", openshiftFake(), "json", false, "status_openshift.json.golden"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			io, out, errOut := tkIO("", tt.tty)
			opts := &StatusOptions{IO: io, Deployment: deploymentOf(tt.d), Output: tt.output, Now: func() time.Time { return testNow }}
			if err := statusRun(context.Background(), opts); err != nil {
				t.Fatal(err)
			}
			if errOut.String() != "" {
				t.Errorf("stderr = %q", errOut.String())
			}
			if strings.Contains(out.String(), "SEED") {
				t.Errorf("a secret survived:\n%s", out)
			}
			if strings.Contains(out.String(), "\x1b[") {
				t.Errorf("colour codes in test output:\n%q", out)
			}
			golden(t, tt.golden, out.String())
			switch tt.output {
			case "json":
				var v statusResult
				if err := json.Unmarshal([]byte(out.String()), &v); err != nil {
					t.Fatal(err)
				}
			case "yaml":
				var v map[string]any
				if err := yaml.Unmarshal([]byte(out.String()), &v); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

func TestStatusStats(t *testing.T) {
	d := podmanFake()
	d.statsErr = map[string]error{
		"quay":     errors.New("podman stats: connection reset while reading postgresql://u:SEEDpw@db"),
		"database": &collectors.NotRunningError{Component: "database", Instance: "pg", State: "stopping"},
	}
	io, out, _ := tkIO("", false)
	opts := &StatusOptions{IO: io, Deployment: deploymentOf(d), Output: "json", Now: func() time.Time { return testNow }}
	if err := statusRun(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	var res statusResult
	if err := json.Unmarshal([]byte(out.String()), &res); err != nil {
		t.Fatal(err)
	}
	for _, c := range res.Components {
		switch c.Name {
		case "quay":
			if c.Stats != nil || c.StatsError != "podman stats: connection reset while reading postgresql://u:<redacted>@db" {
				t.Errorf("quay stats = %+v, %q", c.Stats, c.StatsError)
			}
		case "database", "redis":
			if c.Stats != nil || c.StatsError != "" {
				t.Errorf("%s: stats %+v, error %q (not running: neither)", c.Name, c.Stats, c.StatsError)
			}
		}
	}

	// --no-stats asks for none.
	d2 := podmanFake()
	d2.statsErr = map[string]error{"quay": errors.New("must not be called")}
	io, out, _ = tkIO("", false)
	opts = &StatusOptions{IO: io, Deployment: deploymentOf(d2), Output: "table", NoStats: true, Now: func() time.Time { return testNow }}
	if err := statusRun(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "must not") {
		t.Error("--no-stats still called Stats")
	}
}

func TestStatusNoComponents(t *testing.T) {
	io, out, _ := tkIO("", false)
	d := &fakeDeployment{kind: "podman", name: "unix:///run/podman/podman.sock"}
	opts := &StatusOptions{IO: io, Deployment: deploymentOf(d), Output: "table", Now: time.Now}
	if err := statusRun(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "note: no Quay containers found: name them with --component quay=CONTAINER") {
		t.Errorf("output:\n%s", out)
	}
}

func TestStatusHelpers(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{{0, "0s ago"}, {90 * time.Second, "1m ago"}, {3 * time.Hour, "3h ago"}, {72 * time.Hour, "3d ago"}, {-time.Hour, "0s"}} {
		if got := age(testNow.Add(-tt.d), testNow); got != tt.want {
			t.Errorf("age(%s) = %q, want %q", tt.d, got, tt.want)
		}
	}
	if age(time.Time{}, testNow) != "" {
		t.Error("zero time has an age")
	}
	if got := lastExit(collectors.Component{ExitCode: intp(137), Reason: "OOMKilled"}); got != "137 (OOMKilled)" {
		t.Errorf("lastExit = %q", got)
	}
}

// TestTableWraps: a styled table wider than the terminal wraps its cells;
// the plain form never does.
func TestTableWraps(t *testing.T) {
	tb := newTable("KEY", "PROBLEM", "FIX")
	tb.row("DATABASE_SECRET_KEY", "is required: robot tokens and mirror credentials in the database are encrypted with it", "set it to a long random string (uuidgen makes one)")
	tb.width = 80
	var out syncBuffer
	if err := tb.render(&out, true); err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
		if n := len([]rune(l)); n > 80 {
			t.Errorf("line of %d runes: %q", n, l)
		}
	}
	golden(t, "table_wrapped.tty.golden", out.String())
	var plain syncBuffer
	if err := tb.render(&plain, false); err != nil {
		t.Fatal(err)
	}
	if strings.Count(plain.String(), "\n") != 2 {
		t.Errorf("plain table wrapped:\n%s", plain.String())
	}
}
