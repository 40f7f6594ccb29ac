package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quayctl/quayctl/collectors"
	"github.com/quayctl/quayctl/collectors/direct"
)

// TestTargetFlags: the target flags, through `status` (every toolkit
// command reads them the same way).
func TestTargetFlags(t *testing.T) {
	clear := func(o *StatusOptions) {
		o.IO, o.Deployment, o.Now = nil, nil, nil
	}
	st := func(t TargetOptions) StatusOptions { return StatusOptions{Target: t, Output: "table"} }
	tkFlagTable(t, nil, NewCmdStatus, clear, []tkFlagCase[StatusOptions]{
		{name: "none: auto-detect", args: []string{"status"}, want: st(TargetOptions{})},
		{name: "bare podman", args: []string{"status", "--podman"}, want: st(TargetOptions{Kind: "podman"})},
		{name: "podman URL", args: []string{"status", "--podman=unix:///run/user/1000/podman/podman.sock"},
			want: st(TargetOptions{Kind: "podman", PodmanURL: "unix:///run/user/1000/podman/podman.sock"})},
		{name: "podman components", args: []string{"status", "--podman", "--component", "quay=quay-app", "--component", "database=pg"},
			want: st(TargetOptions{Kind: "podman", Components: map[string]string{"quay": "quay-app", "database": "pg"}})},
		{name: "component implies podman", args: []string{"status", "--component", "redis=r1"},
			want: st(TargetOptions{Kind: "podman", Components: map[string]string{"redis": "r1"}})},
		{name: "openshift", args: []string{"status", "--openshift"}, want: st(TargetOptions{Kind: "openshift"})},
		{name: "namespace implies openshift", args: []string{"status", "-n", "quay", "--registry", "example", "--context", "admin", "--kubeconfig", "/k"},
			want: st(TargetOptions{Kind: "openshift", Namespace: "quay", Registry: "example", Context: "admin", Kubeconfig: "/k"})},
		{name: "url alone is direct", args: []string{"status", "--url", "https://quay.example.com"},
			want: st(TargetOptions{Kind: "direct", URL: "https://quay.example.com"})},
		{name: "direct config and db", args: []string{"status", "--config", "/tmp/c.yaml", "--db", "postgresql://u:p@db/quay"},
			want: st(TargetOptions{Kind: "direct", ConfigPath: "/tmp/c.yaml", DBURI: "postgresql://u:p@db/quay"})},
		{name: "url with podman", args: []string{"status", "--podman", "--url", "http://127.0.0.1:8080"},
			want: st(TargetOptions{Kind: "podman", URL: "http://127.0.0.1:8080"})},
		{name: "podman URL as separate word", args: []string{"status", "--podman", "unix:///run/podman/podman.sock"},
			wantErr: "--podman takes its URL after '=': --podman=unix:///run/podman/podman.sock"},
		{name: "empty podman URL", args: []string{"status", "--podman="},
			wantErr: "--podman= needs a URL, such as --podman=unix:///run/podman/podman.sock (or a bare --podman for the default)"},
		{name: "podman and openshift", args: []string{"status", "--podman", "--openshift"},
			wantErr: "--podman cannot be combined with --openshift, --kubeconfig, --context, -n or --registry: choose where the deployment runs"},
		{name: "podman and namespace", args: []string{"status", "--podman", "-n", "x"},
			wantErr: "--podman cannot be combined with --openshift, --kubeconfig, --context, -n or --registry: choose where the deployment runs"},
		{name: "component on openshift", args: []string{"status", "--openshift", "--component", "quay=x"},
			wantErr: "--component maps podman containers; on OpenShift the Operator's pods are found by their labels (drop --component)"},
		{name: "component format", args: []string{"status", "--component", "quay"},
			wantErr: `--component "quay": want ROLE=CONTAINER, such as quay=quay-app`},
		{name: "component role", args: []string{"status", "--component", "postgres=pg"},
			wantErr: `--component "postgres=pg": unknown role "postgres" (use one of: quay, database, redis, clair, mirror, clairpostgres)`},
		{name: "component twice", args: []string{"status", "--component", "quay=a", "--component", "quay=b"},
			wantErr: "--component quay is given twice (a and b)"},
		{name: "config with podman", args: []string{"status", "--podman", "--config", "c.yaml"},
			wantErr: "--config and --db describe a direct target; with --podman quayctl reads the deployment's own (drop them, or give the file to config validate as an argument)"},
		{name: "db with openshift", args: []string{"status", "--openshift", "--db", "postgresql://x"},
			wantErr: "--config and --db describe a direct target; with --openshift quayctl reads the deployment's own (drop them, or give the file to config validate as an argument)"},
		{name: "unknown flag", args: []string{"status", "--podmn"}, wantErr: "unknown flag: --podmn"},
		{name: "output", args: []string{"status", "-o", "json", "--no-stats"}, want: StatusOptions{Output: "json", NoStats: true}},
		{name: "bad output", args: []string{"status", "-o", "xml"}, wantErr: `--output "xml" is not one of table, json, yaml`},
		{name: "no args", args: []string{"status", "quay"}, wantErr: "quayctl status takes 0 argument(s): no arguments"},
	})
}

// TestNoDeploymentFound: without flags, with no podman service and no
// kubeconfig, the error lists what was tried and every target flag.
func TestNoDeploymentFound(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("KUBECONFIG", filepath.Join(dir, "no-kubeconfig"))
	t.Setenv("HOME", dir)
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	sock := "unix://" + filepath.Join(dir, "podman.sock")
	code, stdout, stderr := tkRun(t, context.Background(), map[string]string{"CONTAINER_HOST": sock}, "status")
	if code != ExitError || stdout != "" {
		t.Fatalf("exit %d, stdout %q, stderr %s", code, stdout, stderr)
	}
	for _, want := range []string{
		"Error: no Quay deployment found: tried:\n  podman: podman service not reachable at " + sock,
		"\n  OpenShift: ",
		"name the target:\n",
		"--podman[=URL] [--component quay=CONTAINER]",
		"--openshift [-n NAMESPACE] [--registry NAME]",
		"--url URL, --config FILE, --db URI",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
}

// TestTargetErrors: each explicit target that cannot be reached says why
// and what to do (exit 1).
func TestTargetErrors(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("HOME", dir)
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"podman socket missing", []string{"status", "--podman=unix://" + dir + "/none.sock"},
			[]string{"Error: cannot reach the podman deployment: podman service not reachable at unix://" + dir + "/none.sock: socket " + dir + "/none.sock does not exist — start it with:"}},
		{"kube context missing", []string{"status", "--openshift", "--kubeconfig", filepath.Join(dir, "kc"), "--context", "nope"},
			[]string{"Error: cannot reach the OpenShift deployment: "}},
		{"direct config missing", []string{"status", "--config", filepath.Join(dir, "missing.yaml")},
			[]string{"Error: invalid direct target: --config " + filepath.Join(dir, "missing.yaml") + " does not exist"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := tkRun(t, context.Background(), nil, tt.args...)
			if code != ExitError || stdout != "" {
				t.Fatalf("exit %d, stdout %q, stderr %s", code, stdout, stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
		})
	}
}

func TestDeploymentFuncIsLazyAndMemoised(t *testing.T) {
	io, _, _ := tkIO("", false)
	f := tkFactory(io, nil)
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(cfg, []byte("SERVER_HOSTNAME: q\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	target := TargetOptions{Kind: TargetDirect, ConfigPath: cfg}
	open := f.deploymentFunc(&target)
	d1, err := open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	d2, _ := open(context.Background())
	if d1 != d2 {
		t.Error("the deployment was opened twice")
	}
	if _, ok := d1.(*direct.Deployment); !ok {
		t.Errorf("direct target opened a %T", d1)
	}
}

func TestDeploymentError(t *testing.T) {
	nf := &collectors.ComponentNotFoundError{Name: "clair", Available: []string{"quay"}}
	err := deploymentError("cannot read the logs of clair", nf)
	var ue *UserError
	if !errors.As(err, &ue) || !errors.As(err, &nf) {
		t.Fatalf("%T %v", err, err)
	}
	if got := err.Error(); got != `cannot read the logs of clair: component "clair" not found (have: quay) — check the name, or map it with --component clair=CONTAINER` {
		t.Errorf("message = %s", got)
	}
	red := deploymentError("cannot exec", fmt.Errorf("exec psql postgresql://u:s3cret@db/quay: %w", collectors.ErrNotSupported))
	if got := red.Error(); got != "cannot exec: exec psql postgresql://u:<redacted>@db/quay: not supported for this deployment" || !errors.Is(red, collectors.ErrNotSupported) {
		t.Errorf("redacted: %v", got)
	}
	if deploymentError("x", nil) != nil || !errors.Is(deploymentError("x", context.Canceled), context.Canceled) {
		t.Error("nil or cancel changed")
	}
}

// TestToolkitHelp: help lists a command's own flags apart from the target
// flags, for leaf commands and for the config group's subcommands, and the
// target flags do not leak into serve or version.
func TestToolkitHelp(t *testing.T) {
	for _, args := range [][]string{{"logs", "--help"}, {"config", "get", "--help"}, {"db", "conf", "--help"}, {"health", "--help"}} {
		code, stdout, stderr := tkRun(t, context.Background(), nil, args...)
		if code != ExitOK || stderr != "" {
			t.Fatalf("%v: exit %d, %s", args, code, stderr)
		}
		own, target, ok := strings.Cut(stdout, "\nTarget flags (where the deployment runs; default: detected):\n")
		if !ok || !strings.Contains(own, "\nFlags:\n") || !strings.Contains(own, "\nUsage:\n  quayctl ") {
			t.Errorf("%v: no usage, flags or target section:\n%s", args, stdout)
			continue
		}
		for _, f := range []string{"--podman", "--openshift", "--kubeconfig", "--context", "--namespace", "--registry", "--url", "--config", "--db", "--component"} {
			if !strings.Contains(target, f+" ") || strings.Contains(own[strings.Index(own, "\nFlags:\n"):], f+" ") {
				t.Errorf("%v: %s not (only) in the target section", args, f)
			}
		}
	}
	_, stdout, _ := tkRun(t, context.Background(), nil, "version", "--help")
	if strings.Contains(stdout, "--podman") {
		t.Errorf("version --help lists target flags:\n%s", stdout)
	}
}
