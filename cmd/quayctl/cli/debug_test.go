package cli

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/quayctl/quayctl/collectors"
)

func TestDebugFlags(t *testing.T) {
	clear := func(o *DebugOptions) { o.IO, o.Deployment = nil, nil }
	tkFlagTable(t, nil, NewCmdDebug, clear, []tkFlagCase[DebugOptions]{
		{name: "on", args: []string{"debug", "on"}, want: DebugOptions{On: true, Output: "table"}},
		{name: "off yes podman", args: []string{"debug", "off", "-y", "--podman"}, want: DebugOptions{Yes: true, Output: "table", Target: TargetOptions{Kind: "podman"}}},
		{name: "dry run json", args: []string{"debug", "ON", "--dry-run", "-o", "json", "--openshift", "-n", "quay"},
			want: DebugOptions{On: true, DryRun: true, Output: "json", Target: TargetOptions{Kind: "openshift", Namespace: "quay"}}},
		{name: "neither", args: []string{"debug", "maybe"}, wantErr: `quayctl debug takes on or off, not "maybe"`},
		{name: "missing", args: []string{"debug"}, wantErr: "quayctl debug takes 1 argument(s): on or off"},
	})
}

func debugFake() *fakeDeployment {
	d := podmanFake()
	d.plan = collectors.DebugPlan{Target: "container quay", Changes: []string{
		"add env DEBUGLOG=true",
		"re-create container quay (same image, command, mounts, env, network, ports)",
	}}
	return d
}

func TestDebugRun(t *testing.T) {
	const plan = "Switching debug logging on for container quay will:\n" +
		"  - add env DEBUGLOG=true\n" +
		"  - re-create container quay (same image, command, mounts, env, network, ports)\n"
	tests := []struct {
		name       string
		opts       DebugOptions
		tty        bool
		stdin      string
		noop       bool
		wantOut    string
		wantErrOut string
		wantErr    string
		wantSet    []bool
	}{
		{name: "yes", opts: DebugOptions{On: true, Yes: true, Output: "table"},
			wantOut: plan + "Debug logging is on for container quay. Follow the logs with: quayctl logs -f; switch it off with: quayctl debug off\n", wantSet: []bool{true}},
		{name: "tty confirms", opts: DebugOptions{On: true, Output: "table"}, tty: true, stdin: "y\n",
			wantOut:    plan + "Debug logging is on for container quay. Follow the logs with: quayctl logs -f; switch it off with: quayctl debug off\n",
			wantErrOut: "Apply? [y/N] ", wantSet: []bool{true}},
		{name: "tty declines", opts: DebugOptions{On: true, Output: "table"}, tty: true, stdin: "\n",
			wantOut: plan, wantErrOut: "Apply? [y/N] ", wantErr: "aborted: nothing was changed"},
		{name: "not a tty, no --yes", opts: DebugOptions{On: true, Output: "table"},
			wantOut: plan, wantErr: "refusing to change the deployment without confirmation — run it on a terminal to be asked, or pass --yes"},
		{name: "dry run", opts: DebugOptions{On: true, DryRun: true, Output: "table"},
			wantOut: plan + "Dry run: nothing was changed.\n"},
		{name: "already on", opts: DebugOptions{On: true, Output: "table"}, noop: true,
			wantOut: "Debug logging is already on for container quay: nothing to change.\n"},
		{name: "json", opts: DebugOptions{On: true, Yes: true, Output: "json"},
			wantOut: `{
  "kind": "podman",
  "target": "container quay",
  "debug": true,
  "changes": [
    "add env DEBUGLOG=true",
    "re-create container quay (same image, command, mounts, env, network, ports)"
  ],
  "no_op": false,
  "applied": true
}
`,
			wantErrOut: plan + "Debug logging is on for container quay. Follow the logs with: quayctl logs -f; switch it off with: quayctl debug off\n", wantSet: []bool{true}},
		{name: "off", opts: DebugOptions{On: false, Yes: true, Output: "table"},
			wantOut: strings.Replace(plan, "logging on", "logging off", 1) + "Debug logging is off for container quay.\n", wantSet: []bool{false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := debugFake()
			d.plan.NoOp = tt.noop
			io, out, errOut := tkIO(tt.stdin, tt.tty)
			opts := tt.opts
			opts.IO, opts.Deployment = io, deploymentOf(d)
			err := debugRun(context.Background(), &opts)
			if tt.wantErr != "" {
				var ue *UserError
				if !errors.As(err, &ue) || err.Error() != tt.wantErr {
					t.Errorf("err = %v, want %q", err, tt.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if out.String() != tt.wantOut {
				t.Errorf("stdout:\n got %q\nwant %q", out.String(), tt.wantOut)
			}
			if errOut.String() != tt.wantErrOut {
				t.Errorf("stderr:\n got %q\nwant %q", errOut.String(), tt.wantErrOut)
			}
			if !reflect.DeepEqual(d.debugSet, tt.wantSet) {
				t.Errorf("SetDebug calls %v, want %v", d.debugSet, tt.wantSet)
			}
		})
	}
}

func TestDebugNotSupported(t *testing.T) {
	code, stdout, stderr := tkRun(t, context.Background(), nil, "debug", "on", "--yes", "--url", "http://127.0.0.1:1")
	want := "Error: debug logging cannot be switched on a direct target — point quayctl at the deployment with --podman[=URL] or --openshift [-n NAMESPACE], or set DEBUGLOG=true in the quay container's environment yourself\n"
	if code != ExitError || stdout != "" || stderr != want {
		t.Errorf("exit %d\nstderr %q\nwant   %q", code, stderr, want)
	}
	d := debugFake()
	d.planErr = errors.New("podman: container quay not found")
	io, _, _ := tkIO("", false)
	err := debugRun(context.Background(), &DebugOptions{IO: io, Deployment: deploymentOf(d), On: true, Yes: true, Output: "table"})
	if err == nil || err.Error() != "cannot plan the change: podman: container quay not found" {
		t.Errorf("plan error: %v", err)
	}
}
