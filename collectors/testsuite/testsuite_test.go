package testsuite_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/quayctl/quayctl/collectors"
	"github.com/quayctl/quayctl/collectors/testsuite"
)

// memDeployment is the smallest Deployment that honours the contract; the
// broken field switches one behaviour off to check that the suite notices.
type memDeployment struct {
	broken string
	comps  []collectors.Component
	logs   map[string][]string
	files  map[string]string
}

func newMem(broken string) *memDeployment {
	started := time.Now().Add(-time.Hour)
	code := 1
	return &memDeployment{
		broken: broken,
		comps: []collectors.Component{
			{Name: "database", Instance: "postgresql-quay", State: "exited", ExitCode: &code, Reason: "Error", Env: map[string]string{"POSTGRESQL_PASSWORD": "<redacted>"}},
			{Name: "quay", Instance: "quay", State: "running", Ready: true, StartedAt: started, Env: map[string]string{"DB_URI": "postgresql://u:<redacted>@db/quay"}},
		},
		logs:  map[string][]string{"quay": {"starting", "quayctl serve ready", "GET /health/instance 200"}},
		files: map[string]string{"quay:/conf/stack/config.yaml": "SERVER_HOSTNAME: quay.example.com\n"},
	}
}

func (d *memDeployment) Kind() string { return "memory" }
func (d *memDeployment) Name() string { return "test" }

func (d *memDeployment) Components(context.Context) ([]collectors.Component, error) {
	out := append([]collectors.Component(nil), d.comps...)
	switch d.broken {
	case "unsorted":
		out[0], out[1] = out[1], out[0]
	case "secret":
		out[1].Env = map[string]string{"DB_URI": "postgresql://u:hunter2@db/quay"}
	}
	return out, nil
}

func (d *memDeployment) find(name string) (collectors.Component, error) {
	var avail []string
	for _, c := range d.comps {
		if c.Name == name {
			return c, nil
		}
		avail = append(avail, c.Name)
	}
	if d.broken == "notfound" {
		return collectors.Component{}, fmt.Errorf("no %s", name)
	}
	return collectors.Component{}, &collectors.ComponentNotFoundError{Name: name, Available: avail}
}

func (d *memDeployment) Logs(ctx context.Context, component string, opts collectors.LogOptions, w io.Writer) error {
	if _, err := d.find(component); err != nil {
		return err
	}
	lines := d.logs[component]
	if opts.Previous {
		return fmt.Errorf("no previous instance: %w", fs.ErrNotExist)
	}
	if opts.Tail > 0 && opts.Tail < len(lines) && d.broken != "tail" {
		lines = lines[len(lines)-opts.Tail:]
	}
	for _, l := range lines {
		if _, err := io.WriteString(w, l+"\n"); err != nil {
			return err
		}
	}
	if opts.Follow {
		<-ctx.Done()
		return ctx.Err()
	}
	return nil
}

func (d *memDeployment) ReadFile(_ context.Context, component, path string) (io.ReadCloser, error) {
	if _, err := d.find(component); err != nil {
		return nil, err
	}
	c, ok := d.files[component+":"+path]
	if !ok {
		return nil, fmt.Errorf("%s: %w", path, fs.ErrNotExist)
	}
	return io.NopCloser(strings.NewReader(c)), nil
}

func (d *memDeployment) Exec(_ context.Context, component string, argv []string, opts collectors.ExecOptions) (int, error) {
	c, err := d.find(component)
	if err != nil {
		return -1, err
	}
	if !c.Running() && d.broken != "stopped" {
		return -1, &collectors.NotRunningError{Component: c.Name, Instance: c.Instance, State: c.State}
	}
	switch argv[0] {
	case "echo":
		if opts.Stdout != nil {
			fmt.Fprintln(opts.Stdout, strings.Join(argv[1:], " "))
		}
		return 0, nil
	case "false":
		return 1, nil
	}
	return 127, fmt.Errorf("%s: not found", argv[0])
}

func (d *memDeployment) Stats(_ context.Context, component string) (collectors.Stats, error) {
	c, err := d.find(component)
	if err != nil {
		return collectors.Stats{}, err
	}
	if !c.Running() {
		return collectors.Stats{}, &collectors.NotRunningError{Component: c.Name, Instance: c.Instance, State: c.State}
	}
	return collectors.Stats{MemoryBytes: 64 << 20, CPUPercent: 1.5}, nil
}

func fixture(d collectors.Deployment) testsuite.Fixture {
	return testsuite.Fixture{
		Deployment:     d,
		Kind:           "memory",
		Components:     map[string]string{"quay": "running", "database": "exited"},
		LogComponent:   "quay",
		LogLine:        "quayctl serve ready",
		LogFollow:      true,
		FileComponent:  "quay",
		FilePath:       "/conf/stack/config.yaml",
		FileContent:    []byte("SERVER_HOSTNAME: quay.example.com\n"),
		ExecComponent:  "quay",
		Exec:           []testsuite.ExecCase{{Argv: []string{"echo", "hi"}, Stdout: "hi"}, {Argv: []string{"false"}, ExitCode: 1}},
		StatsComponent: "quay",
		Stopped:        "database",
		Secrets:        []string{"hunter2"},
		Timeout:        5 * time.Second,
	}
}

func TestSuitePassesAConformingDeployment(t *testing.T) {
	if b := os.Getenv("TESTSUITE_BROKEN"); b != "" {
		// Child process of TestSuiteCatchesViolations.
		testsuite.Run(t, fixture(newMem(b)))
		return
	}
	testsuite.Run(t, fixture(newMem("")))
}

// TestSuiteCatchesViolations runs the suite against deployments that each
// break one rule, in a child process, and expects it to fail saying why.
func TestSuiteCatchesViolations(t *testing.T) {
	if os.Getenv("TESTSUITE_BROKEN") != "" {
		t.Skip("child process")
	}
	cases := map[string]string{
		"unsorted": "not sorted",
		"secret":   `shows the secret "hunter2"`,
		"notfound": "want *collectors.ComponentNotFoundError",
		"tail":     "Logs(Tail: 1) returned 3 lines",
		"stopped":  "want *collectors.NotRunningError",
	}
	names := make([]string, 0, len(cases))
	for n := range cases {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(os.Args[0], "-test.run=^TestSuitePassesAConformingDeployment$", "-test.v")
			cmd.Env = append(os.Environ(), "TESTSUITE_BROKEN="+name)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			err := cmd.Run()
			if err == nil {
				t.Fatalf("the suite passed a deployment broken by %q:\n%s", name, out.String())
			}
			if !strings.Contains(out.String(), cases[name]) {
				t.Errorf("the suite failed without saying %q:\n%s", cases[name], out.String())
			}
		})
	}
}

func TestBadFixture(t *testing.T) {
	if os.Getenv("TESTSUITE_BAD_FIXTURE") == "1" {
		testsuite.Run(t, testsuite.Fixture{Deployment: newMem(""), Components: map[string]string{"quay": ""}, LogComponent: "quay", LogLine: "x", FileComponent: "quay", FilePath: "/f", ExecComponent: "quay"})
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestBadFixture$")
	cmd.Env = append(os.Environ(), "TESTSUITE_BAD_FIXTURE=1")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "bad Fixture") || !strings.Contains(string(out), "exiting 0 and non-zero") {
		t.Errorf("a fixture without exec cases: %v\n%s", err, out)
	}
}
