package cli

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/spf13/cobra"

	"github.com/quayctl/quayctl/collectors"
	"github.com/quayctl/quayctl/collectors/openshift"
)

func tkIO(stdin string, tty bool) (*IOStreams, *syncBuffer, *syncBuffer) {
	out, errOut := &syncBuffer{}, &syncBuffer{}
	return &IOStreams{In: strings.NewReader(stdin), Out: out, ErrOut: errOut, OutTTY: tty, InTTY: tty}, out, errOut
}

// tkFactory has an environment of env alone.
func tkFactory(io *IOStreams, env map[string]string) *Factory {
	return &Factory{IO: io, Getenv: func(k string) string { return env[k] }}
}

// tkRoot is the real command tree with the toolkit commands (added here
// while root.go does not add them itself).
func tkRoot(f *Factory) *cobra.Command {
	root := NewRootCmd(f)
	if findSubcommand(root, "status") == nil {
		addToolkitCommands(root, f)
	}
	return root
}

// tkRun runs argv through the real tree and returns the exit code and
// streams.
func tkRun(t *testing.T, ctx context.Context, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	io, out, errOut := tkIO("", false)
	code := execute(ctx, tkRoot(tkFactory(io, env)), args, io.ErrOut)
	return code, out.String(), errOut.String()
}

// tkWithCmd returns the tree with the command at path (a parent) replaced
// by c.
func tkWithCmd(t *testing.T, f *Factory, c *cobra.Command, path ...string) *cobra.Command {
	t.Helper()
	root := tkRoot(f)
	parent := root
	for _, p := range path {
		parent = findSubcommand(parent, p)
		if parent == nil {
			t.Fatalf("no command %v", path)
		}
	}
	if old := findSubcommand(parent, c.Name()); old != nil {
		parent.RemoveCommand(old)
	}
	parent.AddCommand(c)
	return root
}

// tkFlagCase is one argv → options row: want (the options runF got, after
// clear) or wantErr (exact stderr, exit 2).
type tkFlagCase[O any] struct {
	name    string
	args    []string
	want    O
	wantErr string
}

func tkFlagTable[O any](t *testing.T, path []string, build func(*Factory, func(*O) error) *cobra.Command, clear func(*O), tests []tkFlagCase[O]) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			io, out, errOut := tkIO("", false)
			f := tkFactory(io, nil)
			var got *O
			cmd := build(f, func(o *O) error { c := *o; got = &c; return nil })
			code := execute(context.Background(), tkWithCmd(t, f, cmd, path...), tt.args, io.ErrOut)
			if tt.wantErr != "" {
				want := "Error: " + tt.wantErr + "\nRun 'quayctl --help' for usage.\n"
				if code != ExitUsage || errOut.String() != want {
					t.Errorf("exit %d, stderr:\n got %q\nwant %q", code, errOut.String(), want)
				}
				if got != nil {
					t.Errorf("runF called with %+v", *got)
				}
				if out.String() != "" {
					t.Errorf("stdout = %q", out.String())
				}
				return
			}
			if code != ExitOK || errOut.String() != "" {
				t.Fatalf("exit %d, stderr %q", code, errOut.String())
			}
			if got == nil {
				t.Fatal("runF not called")
			}
			clear(got)
			if g, w := fmt.Sprintf("%+v", *got), fmt.Sprintf("%+v", tt.want); g != w {
				t.Errorf("options:\n got %s\nwant %s", g, w)
			}
		})
	}
}

// fakeDeployment is an in-memory collectors.Deployment (and DebugToggler)
// for the command layer's tests. The real collectors have their contract
// suite (collectors/testsuite); this only feeds the commands.
type fakeDeployment struct {
	kind, name string
	comps      []collectors.Component
	logs       map[string]string // component (or "previous:"+component) → text
	files      map[string]string // component + ":" + path → content
	exec       func(component string, argv []string, stdout io.Writer) (int, error)
	stats      map[string]collectors.Stats
	statsErr   map[string]error
	plan       collectors.DebugPlan
	planErr    error

	mu       sync.Mutex
	logOpts  []collectors.LogOptions
	debugSet []bool
	execs    [][]string
}

var (
	_ collectors.Deployment   = (*fakeDeployment)(nil)
	_ collectors.DebugToggler = (*fakeDeployment)(nil)
)

func (d *fakeDeployment) Kind() string { return d.kind }
func (d *fakeDeployment) Name() string { return d.name }

func (d *fakeDeployment) Components(ctx context.Context) ([]collectors.Component, error) {
	return append([]collectors.Component(nil), d.comps...), nil
}

func (d *fakeDeployment) find(name string) error {
	var have []string
	for _, c := range d.comps {
		if c.Name == name {
			return nil
		}
		have = append(have, c.Name)
	}
	sort.Strings(have)
	return &collectors.ComponentNotFoundError{Name: name, Available: have}
}

func (d *fakeDeployment) Logs(ctx context.Context, component string, opts collectors.LogOptions, w io.Writer) error {
	if err := d.find(component); err != nil {
		return err
	}
	d.mu.Lock()
	d.logOpts = append(d.logOpts, opts)
	d.mu.Unlock()
	key := component
	if opts.Previous {
		key = "previous:" + component
	}
	text, ok := d.logs[key]
	if !ok {
		return fmt.Errorf("no logs for %s", key)
	}
	// Write in uneven pieces, as a stream would.
	for len(text) > 0 {
		n := min(len(text), 7)
		if _, err := io.WriteString(w, text[:n]); err != nil {
			return err
		}
		text = text[n:]
	}
	if opts.Follow {
		<-ctx.Done()
		return ctx.Err()
	}
	return nil
}

func (d *fakeDeployment) ReadFile(ctx context.Context, component, path string) (io.ReadCloser, error) {
	if err := d.find(component); err != nil {
		return nil, err
	}
	text, ok := d.files[component+":"+path]
	if !ok {
		return nil, fmt.Errorf("read %s in %s: %w", path, component, fs.ErrNotExist)
	}
	return io.NopCloser(strings.NewReader(text)), nil
}

func (d *fakeDeployment) Exec(ctx context.Context, component string, argv []string, opts collectors.ExecOptions) (int, error) {
	if err := d.find(component); err != nil {
		return -1, err
	}
	d.mu.Lock()
	d.execs = append(d.execs, argv)
	d.mu.Unlock()
	if d.exec == nil {
		return -1, collectors.ErrNotSupported
	}
	return d.exec(component, argv, opts.Stdout)
}

func (d *fakeDeployment) Stats(ctx context.Context, component string) (collectors.Stats, error) {
	if err := d.find(component); err != nil {
		return collectors.Stats{}, err
	}
	if err := d.statsErr[component]; err != nil {
		return collectors.Stats{}, err
	}
	return d.stats[component], nil
}

func (d *fakeDeployment) PlanDebug(ctx context.Context, on bool) (collectors.DebugPlan, error) {
	return d.plan, d.planErr
}

func (d *fakeDeployment) SetDebug(ctx context.Context, on bool) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.debugSet = append(d.debugSet, on)
	return nil
}

// fakeOpenShift adds what the OpenShift collector offers beyond the
// interface: the QuayRegistry's status, events and config secrets.
type fakeOpenShift struct {
	*fakeDeployment
	status  openshift.RegistryStatus
	events  []openshift.Event
	bundle  openshift.ConfigSecret
	mounted openshift.ConfigSecret
}

func (d *fakeOpenShift) Status(ctx context.Context) (openshift.RegistryStatus, error) {
	return d.status, nil
}

func (d *fakeOpenShift) Events(ctx context.Context) ([]openshift.Event, error) {
	return d.events, nil
}

func (d *fakeOpenShift) ConfigBundle(ctx context.Context) (openshift.ConfigSecret, error) {
	return d.bundle, nil
}

func (d *fakeOpenShift) MountedConfig(ctx context.Context) (openshift.ConfigSecret, error) {
	return d.mounted, nil
}

// deploymentOf returns a Deployment opener for d.
func deploymentOf(d collectors.Deployment) func(context.Context) (collectors.Deployment, error) {
	return func(context.Context) (collectors.Deployment, error) { return d, nil }
}
