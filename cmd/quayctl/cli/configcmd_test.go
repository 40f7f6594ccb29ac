package cli

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quayctl/quayctl/collectors"
	"github.com/quayctl/quayctl/collectors/openshift"
)

func readTestdata(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "toolkit", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// noSeed fails when s holds a seeded secret.
func noSeed(t *testing.T, what, s string) {
	t.Helper()
	for i, l := range strings.Split(s, "\n") {
		if strings.Contains(l, "SEED") && !strings.HasPrefix(l, "# A Quay config") {
			t.Errorf("%s line %d holds a secret: %s", what, i+1, l)
		}
	}
}

func TestConfigGetFlags(t *testing.T) {
	clear := func(o *ConfigGetOptions) { o.IO, o.Deployment = nil, nil }
	tkFlagTable(t, []string{"config"}, NewCmdConfigGet, clear, []tkFlagCase[ConfigGetOptions]{
		{name: "defaults", args: []string{"config", "get"}, want: ConfigGetOptions{Output: "yaml"}},
		{name: "json, secrets, podman", args: []string{"config", "get", "-o", "json", "--show-secrets", "--podman"},
			want: ConfigGetOptions{Output: "json", ShowSecrets: true, Target: TargetOptions{Kind: "podman"}}},
		{name: "target flags before the subcommand", args: []string{"config", "--openshift", "-n", "quay", "get", "--from", "bundle"},
			want: ConfigGetOptions{Output: "yaml", From: "bundle", Target: TargetOptions{Kind: "openshift", Namespace: "quay"}}},
		{name: "table is not a format here", args: []string{"config", "get", "-o", "table"}, wantErr: `--output "table" is not one of yaml, json`},
		{name: "bad from", args: []string{"config", "get", "--from", "etcd"}, wantErr: `--from "etcd" is not one of pod, bundle, mounted`},
		{name: "bundle needs openshift", args: []string{"config", "get", "--from", "bundle", "--podman"}, wantErr: "--from bundle reads a Kubernetes secret: it needs --openshift"},
		{name: "no args", args: []string{"config", "get", "x"}, wantErr: "quayctl config get takes 0 argument(s): no arguments"},
	})
}

func TestConfigValidateFlags(t *testing.T) {
	clear := func(o *ConfigValidateOptions) { o.IO, o.Deployment = nil, nil }
	tkFlagTable(t, []string{"config"}, NewCmdConfigValidate, clear, []tkFlagCase[ConfigValidateOptions]{
		{name: "deployment", args: []string{"config", "validate"}, want: ConfigValidateOptions{For: "quay", Output: "table"}},
		{name: "file", args: []string{"config", "validate", "conf/config.yaml", "-o", "json", "--for", "quayctl"},
			want: ConfigValidateOptions{File: "conf/config.yaml", For: "quayctl", Output: "json"}},
		{name: "bad for", args: []string{"config", "validate", "--for", "clair"}, wantErr: `--for "clair" is not one of quay, quayctl`},
		{name: "file and from", args: []string{"config", "validate", "c.yaml", "--from", "mounted", "--openshift"}, wantErr: "--from reads the deployment's config; it cannot be combined with FILE"},
		{name: "two files", args: []string{"config", "validate", "a", "b"}, wantErr: "quayctl config validate takes at most one argument: FILE"},
		{name: "unknown subcommand", args: []string{"config", "show"}, wantErr: `unknown command "show" for "quayctl config"`},
	})
}

func TestConfigGetRun(t *testing.T) {
	cfg := readTestdata(t, "quay-config.yaml")
	tests := []struct {
		name        string
		opts        ConfigGetOptions
		golden      string
		wantErrOut  string
		showSecrets bool
	}{
		{"yaml redacted", ConfigGetOptions{Output: "yaml"}, "config_get.yaml.golden",
			"# /conf/stack/config.yaml in the quay component of podman unix:///run/podman/podman.sock\n# 8 values redacted (quay-config-key: 7, uri-password: 1); --show-secrets prints them\n", false},
		{"json redacted", ConfigGetOptions{Output: "json"}, "config_get.json.golden",
			"# /conf/stack/config.yaml in the quay component of podman unix:///run/podman/podman.sock\n# 8 values redacted (quay-config-key: 7, uri-password: 1); --show-secrets prints them\n", false},
		{"show secrets", ConfigGetOptions{Output: "yaml", ShowSecrets: true}, "",
			"# /conf/stack/config.yaml in the quay component of podman unix:///run/podman/podman.sock\nquayctl: --show-secrets: this output holds passwords and keys; do not paste it into a ticket or chat\n", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := podmanFake()
			d.files = map[string]string{"quay:/conf/stack/config.yaml": cfg}
			io, out, errOut := tkIO("", false)
			opts := tt.opts
			opts.IO, opts.Deployment = io, deploymentOf(d)
			if err := configGetRun(context.Background(), &opts); err != nil {
				t.Fatal(err)
			}
			if errOut.String() != tt.wantErrOut {
				t.Errorf("stderr:\n got %q\nwant %q", errOut.String(), tt.wantErrOut)
			}
			if tt.showSecrets {
				if !strings.Contains(out.String(), "SEED-db-password") || !strings.Contains(out.String(), "SEED-secret-access") {
					t.Errorf("--show-secrets hid secrets:\n%s", out)
				}
				return
			}
			noSeed(t, "config get", out.String())
			golden(t, tt.golden, out.String())
		})
	}
}

func TestConfigGetNotYAML(t *testing.T) {
	d := podmanFake()
	d.files = map[string]string{"quay:/conf/stack/config.yaml": "DB_URI: postgresql://u:SEEDpw@db/quay\n  bad: [indent\n"}
	io, out, errOut := tkIO("", false)
	opts := &ConfigGetOptions{IO: io, Deployment: deploymentOf(d), Output: "yaml"}
	if err := configGetRun(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	if out.String() != "DB_URI: postgresql://u:<redacted>@db/quay\n  bad: [indent\n" {
		t.Errorf("stdout = %q", out.String())
	}
	if !strings.Contains(errOut.String(), "the config is not valid YAML") || strings.Contains(errOut.String(), "SEED") {
		t.Errorf("stderr = %q", errOut.String())
	}
}

func TestConfigGetOpenShift(t *testing.T) {
	cfg := readTestdata(t, "quay-config.yaml")
	o := openshiftFake()
	o.bundle = openshift.ConfigSecret{Namespace: "quay-enterprise", Name: "config-bundle-secret", Files: map[string][]byte{"config.yaml": []byte("SERVER_HOSTNAME: bundle.example.com\nSECRET_KEY: SEEDbundle\n")}}
	o.mounted = openshift.ConfigSecret{Namespace: "quay-enterprise", Name: "example-registry-quay-config-secret-abc", Files: map[string][]byte{"config.yaml": []byte(cfg)}}
	// No quay pod serves the file (exec fails): get falls back to the mounted secret.
	run := func(from string) (string, string, error) {
		io, out, errOut := tkIO("", false)
		opts := &ConfigGetOptions{IO: io, Deployment: deploymentOf(o), Output: "yaml", From: from}
		err := configGetRun(context.Background(), opts)
		return out.String(), errOut.String(), err
	}
	out, errOut, err := run(fromBundle)
	if err != nil || out != "SECRET_KEY: <redacted>\nSERVER_HOSTNAME: bundle.example.com\n" ||
		!strings.HasPrefix(errOut, "# secret quay-enterprise/config-bundle-secret (the config bundle)\n") {
		t.Errorf("--from bundle: %v\n%s\n%s", err, out, errOut)
	}
	out, errOut, err = run(fromMounted)
	if err != nil || !strings.Contains(out, "SERVER_HOSTNAME: quay.example.com") || !strings.HasPrefix(errOut, "# secret quay-enterprise/example-registry-quay-config-secret-abc (the mounted config)") {
		t.Errorf("--from mounted: %v\n%s\n%s", err, out, errOut)
	}
	noSeed(t, "mounted", out)

	// The quay pod is crash-looping: the fake's ReadFile fails as the
	// collector does (not running), and get reads the mounted secret.
	nr := &notRunningReads{fakeOpenShift: o}
	io, outB, errB := tkIO("", false)
	opts := &ConfigGetOptions{IO: io, Deployment: deploymentOf(nr), Output: "yaml"}
	if err := configGetRun(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(errB.String(), "no running quay pod") || !strings.Contains(outB.String(), "quay.example.com") {
		t.Errorf("fallback:\n%s\n%s", outB, errB)
	}

	// --from bundle on podman is refused at run time too.
	io, _, _ = tkIO("", false)
	err = configGetRun(context.Background(), &ConfigGetOptions{IO: io, Deployment: deploymentOf(podmanFake()), Output: "yaml", From: fromBundle})
	if err == nil || !strings.Contains(err.Error(), "use it with --openshift; this is a podman deployment") {
		t.Errorf("bundle on podman: %v", err)
	}
}

// validateJSON decodes config validate's JSON (Severity has no
// UnmarshalText).
type validateJSON struct {
	Source   string `json:"source"`
	Valid    bool   `json:"valid"`
	Errors   int    `json:"errors"`
	Problems []struct {
		Group, Key, Message, Fix, Severity string
	} `json:"problems"`
}

// notRunningReads is an OpenShift fake whose quay pod cannot be exec'd.
type notRunningReads struct{ *fakeOpenShift }

func (n *notRunningReads) ReadFile(ctx context.Context, component, path string) (io.ReadCloser, error) {
	return nil, &collectors.NotRunningError{Component: component, Instance: "example-registry-quay-app-7c9d-x2x4q", State: "CrashLoopBackOff"}
}

func TestConfigValidateRun(t *testing.T) {
	tests := []struct {
		name     string
		file     string
		flavour  string
		output   string
		golden   string
		wantCode int
	}{
		{"valid table", "quay-config.yaml", "quay", "table", "config_validate_valid.txt.golden", 0},
		{"invalid table", "invalid-config.yaml", "quay", "table", "config_validate_invalid.txt.golden", 1},
		{"invalid tty", "invalid-config.yaml", "quay", "table", "config_validate_invalid.tty.golden", 1},
		{"invalid json", "invalid-config.yaml", "quay", "json", "config_validate_invalid.json.golden", 1},
		{"for quayctl", "quay-config.yaml", "quayctl", "table", "config_validate_quayctl.txt.golden", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			io, out, errOut := tkIO("", strings.HasSuffix(tt.golden, ".tty.golden"))
			opts := &ConfigValidateOptions{IO: io, File: filepath.Join("testdata", "toolkit", tt.file), For: tt.flavour, Output: tt.output}
			err := configValidateRun(context.Background(), opts)
			code := 0
			var ce *exitCodeError
			if errors.As(err, &ce) {
				code = ce.code
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tt.wantCode {
				t.Errorf("exit code %d, want %d", code, tt.wantCode)
			}
			if errOut.String() != "" {
				t.Errorf("stderr = %q", errOut.String())
			}
			noSeed(t, "validate", out.String())
			golden(t, tt.golden, out.String())
			if tt.output == "json" {
				var res validateJSON
				if err := json.Unmarshal([]byte(out.String()), &res); err != nil {
					t.Fatal(err)
				}
				if res.Valid || res.Errors == 0 {
					t.Errorf("json says valid: %+v", res)
				}
			}
		})
	}
}

// TestConfigValidateExitCode runs the real tree: errors exit 1, the
// report is printed first.
func TestConfigValidateExitCode(t *testing.T) {
	code, stdout, stderr := tkRun(t, context.Background(), nil, "config", "validate", "testdata/toolkit/invalid-config.yaml")
	if code != ExitError || stderr != "" || !strings.Contains(stdout, "INVALID for quay") {
		t.Errorf("exit %d\nstdout %s\nstderr %s", code, stdout, stderr)
	}
	code, _, stderr = tkRun(t, context.Background(), nil, "config", "validate", "testdata/toolkit/quay-config.yaml")
	if code != ExitOK || stderr != "" {
		t.Errorf("valid: exit %d, stderr %s", code, stderr)
	}
	code, _, stderr = tkRun(t, context.Background(), nil, "config", "validate", "testdata/toolkit/nope.yaml")
	if code != ExitError || !strings.Contains(stderr, "Error: cannot read testdata/toolkit/nope.yaml") {
		t.Errorf("missing: exit %d, stderr %s", code, stderr)
	}
	// A direct --config is the file to check.
	code, stdout, _ = tkRun(t, context.Background(), nil, "config", "validate", "--config", "testdata/toolkit/invalid-config.yaml", "-o", "json")
	if code != ExitError || !strings.Contains(stdout, `"source": "testdata/toolkit/invalid-config.yaml"`) {
		t.Errorf("--config: exit %d\n%s", code, stdout)
	}
}

func TestConfigValidateDeployment(t *testing.T) {
	d := podmanFake()
	d.files = map[string]string{
		"quay:/conf/stack/config.yaml": "SERVER_HOSTNAME: quay.example.com\nPREFERRED_URL_SCHEME: https\n",
		"quay:/conf/stack/ssl.cert":    "cert",
	}
	io, out, _ := tkIO("", false)
	opts := &ConfigValidateOptions{IO: io, Deployment: deploymentOf(d), For: "quay", Output: "json"}
	err := configValidateRun(context.Background(), opts)
	var ce *exitCodeError
	if !errors.As(err, &ce) || ce.code != 1 {
		t.Fatalf("err = %v", err)
	}
	var res validateJSON
	if err := json.Unmarshal([]byte(out.String()), &res); err != nil {
		t.Fatal(err)
	}
	if res.Source != "/conf/stack/config.yaml in the quay component of podman unix:///run/podman/podman.sock" {
		t.Errorf("source = %q", res.Source)
	}
	found := false
	for _, p := range res.Problems {
		if p.Key == "ssl.cert" && p.Group == "TLS" && strings.Contains(p.Message, "ssl.key is missing") {
			found = true
		}
	}
	if !found {
		t.Errorf("no TLS problem for the missing ssl.key: %+v", res.Problems)
	}
}

// TestQuayRules: each Quay-only rule, on a minimal otherwise-valid file.
