package cli

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/quayctl/quayctl/collectors"
	"github.com/quayctl/quayctl/diag/checks"
)

func TestSupportBundleFlags(t *testing.T) {
	clear := func(o *SupportBundleOptions) {
		o.IO, o.Deployment, o.HTTPClient, o.Checks, o.Now = nil, nil, nil, nil, nil
		o.Upload = nil // the --upload-* flags have their own table (TestCheckCollectUpload)
	}
	def := SupportBundleOptions{Output: "table", Since: 24 * time.Hour, LogLimit: 50 << 20, Timeout: 30 * time.Second}
	with := func(f func(*SupportBundleOptions)) SupportBundleOptions { o := def; f(&o); return o }
	tkFlagTable(t, nil, NewCmdSupportBundleCollect, clear, []tkFlagCase[SupportBundleOptions]{
		{name: "defaults", args: []string{"support-bundle"}, want: def},
		{name: "everything", args: []string{"support-bundle", "--podman", "-O", "/tmp/case.tar.gz", "--since", "2h", "--log-limit", "1GiB",
			"--redact", "LICENSE", "--redact", "^x_", "-q", "-o", "json", "--timeout", "5s", "--insecure"},
			want: with(func(o *SupportBundleOptions) {
				o.Target = TargetOptions{Kind: "podman"}
				o.File, o.Since, o.LogLimit, o.Redact, o.Quiet, o.Output = "/tmp/case.tar.gz", 2*time.Hour, 1<<30, []string{"LICENSE", "^x_"}, true, "json"
				o.Timeout, o.Insecure = 5*time.Second, true
			})},
		{name: "log limit in bytes", args: []string{"support-bundle", "--log-limit", "500000", "--no-redact"},
			want: with(func(o *SupportBundleOptions) { o.LogLimit, o.NoRedact = 500000, true })},
		{name: "decimal log limit", args: []string{"support-bundle", "--log-limit", "20MB"},
			want: with(func(o *SupportBundleOptions) { o.LogLimit = 20_000_000 })},
		{name: "upload flags without upload", args: []string{"support-bundle", "--upload-insecure"},
			wantErr: "the --upload-* flags need --upload DEST"},
		{name: "bad log limit", args: []string{"support-bundle", "--log-limit", "lots"},
			wantErr: `--log-limit "lots": want a positive size such as 50MiB, 1GiB or 500000`},
		{name: "redact and no-redact", args: []string{"support-bundle", "--redact", "X", "--no-redact"},
			wantErr: "--redact adds rules and --no-redact turns redaction off: give one of them"},
		{name: "bad pattern", args: []string{"support-bundle", "--redact", "("},
			wantErr: "--redact: redact: key rule \"(\": error parsing regexp: missing closing ): `(?i)(`"},
		{name: "argument", args: []string{"support-bundle", "case.tar.gz"},
			wantErr: "quayctl support-bundle takes 0 argument(s): no arguments; the archive is named with -O FILE"},
	})
	dclear := func(o *DiagnoseOptions) { o.IO, o.Deployment, o.HTTPClient, o.Checks, o.Now = nil, nil, nil, nil, nil }
	ddef := DiagnoseOptions{Output: "table", Bundle: "b.tar.gz"}
	tkFlagTable(t, []string{"support-bundle"}, NewCmdSupportBundleAnalyze, dclear, []tkFlagCase[DiagnoseOptions]{
		{name: "analyze", args: []string{"support-bundle", "analyze", "b.tar.gz"}, want: ddef},
		{name: "analyze areas", args: []string{"support-bundle", "analyze", "b.tar.gz", "--only", "database", "-v", "-o", "yaml"},
			want: func() DiagnoseOptions {
				o := ddef
				o.Only, o.Verbose, o.Output = []string{"database"}, true, "yaml"
				return o
			}()},
		{name: "analyze with a target", args: []string{"support-bundle", "analyze", "b.tar.gz", "--podman"},
			wantErr: "--podman: analyze reads a bundle, not a deployment (drop --podman)"},
		{name: "analyze without file", args: []string{"support-bundle", "analyze"},
			wantErr: "quayctl support-bundle analyze takes 1 argument(s): FILE, a bundle written by quayctl support-bundle"},
	})
	tkFlagTable(t, nil, NewCmdDiagnose, dclear, []tkFlagCase[DiagnoseOptions]{
		{name: "diagnose --bundle", args: []string{"diagnose", "--bundle", "b.tar.gz"},
			want: DiagnoseOptions{Output: "table", Bundle: "b.tar.gz", Timeout: 30 * time.Second, Since: 24 * time.Hour}},
		{name: "diagnose --bundle with a target", args: []string{"diagnose", "--bundle", "b.tar.gz", "--url", "https://q", "-n", "quay"},
			wantErr: "--namespace, --url: --bundle reads a support bundle, not a deployment (drop --namespace, --url)"},
	})
}

var (
	bundleShaRE   = regexp.MustCompile(`[0-9a-f]{64}`)
	bundleSizeRE  = regexp.MustCompile(`\(\d+(\.\d)? (B|KiB|MiB)\)|"size": \d+`)
	bundleStampRE = regexp.MustCompile(`collected \d{4}-\d\d-\d\d \d\d:\d\d UTC`)
)

// TestSupportBundleRun collects from a fake podman deployment and a fake
// Quay, then analyses the bundle: collect's output and the analysis are
// golden, the analysis equals diagnose --bundle, and no secret shows.
func TestSupportBundleRun(t *testing.T) {
	srv := fakeQuay(t, map[string]string{
		"instance": `{"data":{"services":{"database":true,"disk_space":true}},"status_code":200}`,
		"endtoend": `{"data":{"services":{"database":true,"redis":false,"storage":true,"auth":true}},"status_code":503}`,
		"warning":  `{"data":{"services":{"disk_space_warning":true}},"status_code":200}`,
	}, map[string]int{"endtoend": 503})
	d := &fakeDeployment{kind: "podman", name: "unix:///run/podman/podman.sock",
		comps: []collectors.Component{{Name: "quay", Instance: "quay-app", State: "running", Ready: true, StartedAt: time.Unix(1, 0)}},
		files: map[string]string{"quay:/conf/stack/config.yaml": diagnoseConfig},
		logs:  map[string]string{"quay": "ready\nAuthorization: Bearer SEED-diag-bearer-5c5c\n"}}
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	dir := t.TempDir()
	clean := func(s string) string {
		s = strings.ReplaceAll(s, dir, "DIR")
		s = strings.ReplaceAll(s, srv.URL, "http://QUAY")
		s = bundleShaRE.ReplaceAllString(s, "SHA256")
		s = bundleSizeRE.ReplaceAllStringFunc(s, func(m string) string {
			if strings.HasPrefix(m, `"size"`) {
				return `"size": N`
			}
			return "(N)"
		})
		s = bundleStampRE.ReplaceAllString(s, "collected DATE")
		return elapsedRE.ReplaceAllString(s, "N ms")
	}
	secrets := []string{"SEED-diag-secret-1f2e", "SEED-diag-dbkey-9a8b", "SEED-diag-redis-77aa", "SEED-diag-bearer-5c5c"}
	var file string
	for _, tt := range []struct {
		name, output string
		quiet, tty   bool
	}{
		{"bundle_collect.txt", "table", false, false},
		{"bundle_collect.json", "json", false, false},
		{"bundle_collect_quiet.txt", "table", true, false},
		{"bundle_collect_tty.txt", "table", false, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			io, out, errOut := tkIO("", tt.tty)
			opts := &SupportBundleOptions{IO: io, Target: TargetOptions{URL: srv.URL}, File: filepath.Join(dir, strings.ReplaceAll(tt.name, ".", "_")+".tar.gz"),
				Since: time.Hour, LogLimit: 1 << 20, Quiet: tt.quiet, Output: tt.output, Timeout: 5 * time.Second,
				HTTPClient: healthClient, Checks: checks.All, Deployment: deploymentOf(d), Now: func() time.Time { return t0 }}
			if err := supportBundleRun(context.Background(), opts); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(opts.File); err != nil {
				t.Fatal(err)
			}
			file = opts.File
			if tt.tty != strings.Contains(errOut.String(), "collecting ") {
				t.Errorf("tty %v, stderr %q", tt.tty, errOut.String())
			}
			for _, s := range secrets {
				if strings.Contains(out.String()+errOut.String(), s) {
					t.Errorf("secret %s shown", s)
				}
			}
			golden(t, tt.name+".golden", clean(out.String()))
		})
	}

	t.Run("exists", func(t *testing.T) {
		io, _, _ := tkIO("", false)
		opts := &SupportBundleOptions{IO: io, File: file, Since: time.Hour, LogLimit: 1 << 20, Output: "table", Timeout: time.Second,
			HTTPClient: healthClient, Checks: checks.All, Deployment: deploymentOf(d), Now: func() time.Time { return t0 }}
		err := supportBundleRun(context.Background(), opts)
		if err == nil || !strings.Contains(err.Error(), "already exists — choose another name with -O FILE, or remove it") {
			t.Errorf("err %v", err)
		}
	})

	// Analysis: the same report through both commands, exit code 2 for
	// the unhealthy endtoend answer recorded in the bundle.
	var reports []string
	for _, args := range [][]string{
		{"support-bundle", "analyze", file, "--only", "health,config,auth"},
		{"diagnose", "--bundle", file, "--only", "health,config,auth"},
	} {
		code, stdout, stderr := tkRun(t, context.Background(), nil, args...)
		if code != 2 {
			t.Errorf("%v: exit %d, want 2\n%s%s", args, code, stdout, stderr)
		}
		reports = append(reports, clean(stdout))
	}
	if reports[0] != reports[1] {
		t.Errorf("analyze and diagnose --bundle differ:\n%s\n---\n%s", reports[0], reports[1])
	}
	golden(t, "bundle_analyze.txt.golden", reports[0])
	code, stdout, _ := tkRun(t, context.Background(), nil, "support-bundle", "analyze", file, "-o", "json", "--only", "health")
	if code != 2 || !strings.Contains(stdout, `"kind": "bundle"`) || !strings.Contains(stdout, `"id": "health.endpoints"`) {
		t.Errorf("json analysis: exit %d\n%s", code, stdout)
	}

	t.Run("not a bundle", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "notes.txt")
		os.WriteFile(p, []byte("hello"), 0o600)
		code, _, stderr := tkRun(t, context.Background(), nil, "support-bundle", "analyze", p)
		if code != ExitError || !strings.Contains(stderr, "cannot read the support bundle: "+p+" is not a quayctl support bundle (not gzip") {
			t.Errorf("exit %d, stderr %q", code, stderr)
		}
	})
}
