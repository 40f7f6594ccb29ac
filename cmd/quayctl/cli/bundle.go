package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/quayctl/quayctl/collectors"
	"github.com/quayctl/quayctl/collectors/bundle"
	"github.com/quayctl/quayctl/collectors/gather"
	"github.com/quayctl/quayctl/collectors/upload"
	"github.com/quayctl/quayctl/diag"
	"github.com/quayctl/quayctl/diag/checks"
	"github.com/quayctl/quayctl/internal/redact"
)

// SupportBundleOptions are the flags of `quayctl support-bundle` (collect).
type SupportBundleOptions struct {
	IO         *IOStreams
	Target     TargetOptions
	Deployment func(context.Context) (collectors.Deployment, error)
	File       string        // -O: the archive, or a directory for it ("" = the default name here)
	Since      time.Duration // how far back logs go
	LogLimit   int64         // per-log cap in bytes, the newest kept
	Redact     []string      // extra secret key-name patterns
	NoRedact   bool
	Quiet      bool
	Output     string
	Insecure   bool
	Timeout    time.Duration // per fact
	HTTPClient func(insecure bool, timeout time.Duration) *http.Client
	Checks     func() []diag.Check
	Now        func() time.Time
	// Upload, when its To is set, sends the bundle once written (--upload).
	Upload *SupportBundleUploadOptions
}

const supportBundleLong = `Collect everything a Quay support case needs into one redacted archive:
per component its status, logs and previous logs (--since, and the newest
--log-limit bytes of each), resource stats; Quay's config.yaml (redacted);
postgresql.conf; the three health endpoints' answers; diagnose's database
diagnostics (settings, activity, locks, sizes, schema version — never table
contents, password hashes or tokens); storage probe results; on OpenShift
the QuayRegistry's status and the namespace's events; and the findings of
quayctl diagnose with the rendered report.

The archive is quayctl-bundle-<deployment>-<UTC time>.tar.gz (or -O FILE)
with manifest.json at its root: what each collector gathered, what failed
and why, and how many values each redaction rule replaced in each file
(never the values). A collector that fails is recorded and the bundle still
completes. Logs stream to disk, so memory stays flat however large they are.

Everything written is redacted by quayctl's one redaction function: Quay's
secret config keys, passwords in URIs, AWS keys, Authorization and Cookie
headers, bearer tokens, JWTs, PEM private keys, and values of keys named like
passwords, secrets, tokens and keys. --redact PATTERN adds key-name rules;
--no-redact turns redaction of logs and config.yaml off and is recorded in
the manifest.

Analyse a bundle anywhere with: quayctl support-bundle analyze FILE.
See docs/support-bundle.md.

Exit codes: 0 the bundle was written, 1 it could not be (unreachable target,
disk error), 2 bad flags.`

// NewCmdSupportBundle builds the `quayctl support-bundle` group: itself
// collects a bundle; `analyze` (and `upload`) are its subcommands.
func NewCmdSupportBundle(f *Factory) *cobra.Command {
	cmd := newCmdSupportBundleCollect(f, nil, "support-bundle")
	cmd.AddCommand(newCmdSupportBundleCollect(f, nil, "collect"), NewCmdSupportBundleAnalyze(f, nil))
	return cmd
}

// NewCmdSupportBundleCollect builds `quayctl support-bundle` alone (tests).
func NewCmdSupportBundleCollect(f *Factory, runF func(*SupportBundleOptions) error) *cobra.Command {
	return newCmdSupportBundleCollect(f, runF, "support-bundle")
}

func newCmdSupportBundleCollect(f *Factory, runF func(*SupportBundleOptions) error, use string) *cobra.Command {
	opts := &SupportBundleOptions{IO: f.IO, HTTPClient: healthClient, Checks: checks.All, Now: time.Now}
	opts.Deployment = f.deploymentFunc(&opts.Target)
	var logLimit string
	cmd := &cobra.Command{
		Use:   use,
		Short: "Collect a redacted support bundle (logs, config, health, database diagnostics, findings)",
		Long:  supportBundleLong,
		Example: `  quayctl support-bundle --podman
  quayctl support-bundle --openshift -n quay-enterprise -O /tmp/case-0123.tar.gz
  quayctl support-bundle --since 2h --log-limit 200MiB --redact 'LICENSE' --quiet
  quayctl support-bundle analyze quayctl-bundle-podman-….tar.gz`,
		Args: targetArgs(exactArgs(0, "no arguments; the archive is named with -O FILE")),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := targetFromFlags(cmd.Flags())
			if err != nil {
				return err
			}
			opts.Target = t
			if err := checkOutput(opts.Output); err != nil {
				return err
			}
			if opts.Since <= 0 {
				return flagError{errors.New("--since must be positive, such as 24h")}
			}
			if opts.Timeout <= 0 {
				return flagError{errors.New("--timeout must be positive, such as 30s")}
			}
			if opts.LogLimit, err = parseByteSize(logLimit); err != nil || opts.LogLimit <= 0 {
				return flagError{fmt.Errorf("--log-limit %q: want a positive size such as 50MiB, 1GiB or 500000", logLimit)}
			}
			if opts.NoRedact && len(opts.Redact) > 0 {
				return flagError{errors.New("--redact adds rules and --no-redact turns redaction off: give one of them")}
			}
			if _, err := redact.New(redact.WithRules(opts.Redact...)); err != nil {
				return flagError{fmt.Errorf("--redact: %w", err)}
			}
			if err := checkCollectUpload(opts.Upload); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return supportBundleRun(cmd.Context(), opts)
		},
	}
	fs := cmd.Flags()
	fs.StringVarP(&opts.File, "output-file", "O", "", "write the bundle to FILE (or into a directory); default ./quayctl-bundle-<deployment>-<UTC time>.tar.gz")
	fs.DurationVar(&opts.Since, "since", 24*time.Hour, "how far back the logs go")
	fs.StringVar(&logLimit, "log-limit", "50MiB", "keep at most this much of each log, the newest lines (KiB, MiB, GiB; KB, MB, GB)")
	fs.StringArrayVar(&opts.Redact, "redact", nil, "also redact values of keys matching this pattern (a Go regular expression; repeatable)")
	fs.BoolVar(&opts.NoRedact, "no-redact", false, "do NOT redact logs and config.yaml (recorded in the manifest; share such a bundle with care)")
	fs.BoolVarP(&opts.Quiet, "quiet", "q", false, "no progress; print only the bundle's path")
	fs.BoolVar(&opts.Insecure, "insecure", false, "do not verify the registry's TLS certificate")
	fs.DurationVar(&opts.Timeout, "timeout", 30*time.Second, "time allowed to gather each fact (logs get ten times as long)")
	addOutputFlag(cmd, &opts.Output)
	opts.Upload = addCollectUploadFlags(cmd, f)
	if use == "support-bundle" {
		addTargetFlags(cmd)
	}
	return cmd
}

// supportBundleResult is the JSON/YAML of a collection.
type supportBundleResult struct {
	File      string              `json:"file"`
	Size      int64               `json:"size"`
	SHA256    string              `json:"sha256"`
	Target    diag.Target         `json:"target"`
	Facts     supportBundleCounts `json:"facts"`
	Failed    []supportBundleFail `json:"failed,omitempty"`
	Redaction redact.Summary      `json:"redaction"`
	NoRedact  bool                `json:"no_redact"`
	Diagnose  diag.Summary        `json:"diagnose"`
	Upload    *upload.Result      `json:"upload,omitempty"`
}

type supportBundleCounts struct {
	OK            int `json:"ok"`
	Failed        int `json:"failed"`
	NotApplicable int `json:"not_applicable"`
}

type supportBundleFail struct {
	Fact  string `json:"fact"`
	Error string `json:"error"`
}

func supportBundleRun(ctx context.Context, opts *SupportBundleOptions) error {
	live := opts.IO.OutTTY && !opts.Quiet && opts.Output == OutputTable
	prog := &bundleProgress{statusLine{w: opts.IO.ErrOut, live: live}}
	defer prog.clear()
	d, err := opts.Deployment(ctx)
	if err != nil {
		return deploymentError("cannot collect a support bundle", err)
	}
	path, err := bundlePath(opts.File, d, opts.Now())
	if err != nil {
		return err
	}
	// The default redactor, unless --redact adds rules: facts the gatherer
	// redacted already then need no second pass.
	red := redact.Default()
	if len(opts.Redact) > 0 {
		if red, err = redact.New(redact.WithRules(opts.Redact...)); err != nil {
			return flagError{err}
		}
	}
	g := gather.New(ctx, d, gather.Options{
		URL: opts.Target.URL, DBURI: opts.Target.DBURI, HTTPClient: opts.HTTPClient(opts.Insecure, opts.Timeout),
		Timeout: opts.Timeout, LogSince: opts.Since,
		Warn: func(msg string) {
			if !opts.Quiet {
				prog.note("quayctl: " + msg)
			}
		},
	})
	defer g.Close()
	res, err := bundle.Collect(ctx, g, bundle.CollectOptions{
		Path:        path,
		Stream:      gather.StreamOptions{Redactor: red, NoRedact: opts.NoRedact, LogLimit: opts.LogLimit, LogSince: opts.Since},
		RedactRules: opts.Redact, Checks: opts.Checks(), Now: opts.Now, Progress: prog.update,
	})
	prog.clear()
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return err
		}
		return &UserError{Msg: "cannot write the support bundle", Err: redactedError{err},
			Remedy: "check that the directory of -O is writable and has room"}
	}
	out := supportBundleResult{File: res.Path, Size: res.Size, SHA256: res.SHA256, Target: res.Manifest.Target,
		Redaction: res.Manifest.Redaction, NoRedact: opts.NoRedact, Diagnose: res.Manifest.Summary}
	out.Facts.OK, out.Facts.Failed, out.Facts.NotApplicable = res.Manifest.Counts()
	for _, f := range res.Manifest.Files {
		if f.Status == bundle.StatusFailed {
			out.Failed = append(out.Failed, supportBundleFail{Fact: f.Fact, Error: f.Error})
		}
	}
	if opts.Upload != nil && opts.Upload.To != "" {
		up, err := uploadCollected(ctx, opts.Upload, res.Path, opts.IO.ErrOut, opts.IO.OutTTY)
		if err != nil {
			return err
		}
		out.Upload = up
	}
	if opts.NoRedact && !opts.Quiet {
		fmt.Fprintln(opts.IO.ErrOut, "quayctl: warning: --no-redact: the bundle's logs and config.yaml hold secrets as the deployment has them")
	}
	return render(opts.IO.Out, opts.Output, out, func(w io.Writer) error {
		if opts.Quiet {
			_, err := fmt.Fprintln(w, out.File)
			return err
		}
		return writeBundleResult(w, out)
	})
}

func writeBundleResult(w io.Writer, r supportBundleResult) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Wrote %s (%s)\n", r.File, byteSize(r.Size))
	fmt.Fprintf(&b, "  sha256    %s\n", r.SHA256)
	fmt.Fprintf(&b, "  target    %s %s\n", r.Target.Kind, r.Target.Name)
	fmt.Fprintf(&b, "  facts     %d gathered, %d failed, %d not applicable\n", r.Facts.OK, r.Facts.Failed, r.Facts.NotApplicable)
	if r.NoRedact {
		fmt.Fprintf(&b, "  redacted  NOTHING in logs and config.yaml (--no-redact); %s elsewhere\n", r.Redaction)
	} else {
		fmt.Fprintf(&b, "  redacted  %s\n", r.Redaction)
	}
	fmt.Fprintf(&b, "  diagnose  %d fail, %d warn, %d info, %d ok — read it with: quayctl support-bundle analyze %s\n",
		r.Diagnose.Fail, r.Diagnose.Warn, r.Diagnose.Info, r.Diagnose.OK, r.File)
	if len(r.Failed) > 0 {
		b.WriteString("Not gathered (recorded in the bundle):\n")
		for _, f := range r.Failed {
			fmt.Fprintf(&b, "  %s: %s\n", f.Fact, bundleFirstLine(f.Error))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func bundleFirstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// bundlePath is -O: a file, a directory to put the default name in, or ""
// for the default name here. An existing file is never overwritten.
func bundlePath(file string, d collectors.Deployment, now time.Time) (string, error) {
	name := bundle.DefaultName(d.Kind(), d.Name(), now)
	p := file
	if p == "" {
		p = name
	} else if st, err := os.Stat(p); err == nil && st.IsDir() {
		p = filepath.Join(p, name)
	}
	if _, err := os.Stat(p); err == nil {
		return "", &UserError{Msg: "cannot write the support bundle", Err: fmt.Errorf("%s already exists", p),
			Remedy: "choose another name with -O FILE, or remove it"}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", &UserError{Msg: "cannot write the support bundle", Err: err}
	}
	if st, err := os.Stat(filepath.Dir(p)); err != nil || !st.IsDir() {
		return "", &UserError{Msg: "cannot write the support bundle", Err: fmt.Errorf("no directory %s", filepath.Dir(p)),
			Remedy: "create it, or give -O a path in an existing directory"}
	}
	return p, nil
}

// parseByteSize reads 50MiB, 1GiB, 500KB, 1048576.
func parseByteSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1000}, {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000},
		{"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"B", 1}}
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(strings.ToUpper(s), strings.ToUpper(u.suffix)) && (u.suffix != "B" || !strings.ContainsAny(s[:len(s)-1], "KMGkmg")) {
			s, mult = strings.TrimSpace(s[:len(s)-len(u.suffix)]), u.mult
			break
		}
	}
	n, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, err
	}
	return int64(n * float64(mult)), nil
}

// byteSize renders n as "12.3 MiB".
func byteSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// bundleProgress is the one-line progress display on a terminal.
type bundleProgress struct{ statusLine }

func (p *bundleProgress) update(pr bundle.Progress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.live {
		return
	}
	var line string
	switch pr.Phase {
	case bundle.PhaseCollect:
		line = fmt.Sprintf("collecting %d/%d, %s: %s", pr.Done, pr.Total, byteSize(pr.Bytes), pr.Fact)
	case bundle.PhaseDiagnose:
		line = fmt.Sprintf("running %d diagnose checks over the facts", pr.Total)
	case bundle.PhaseArchive:
		line = fmt.Sprintf("writing the archive %d/%d, %s written", pr.Done, pr.Total, byteSize(pr.Bytes))
	}
	p.show(line)
}

// NewCmdSupportBundleAnalyze builds `quayctl support-bundle analyze FILE`:
// diagnose over a bundle.
func NewCmdSupportBundleAnalyze(f *Factory, runF func(*DiagnoseOptions) error) *cobra.Command {
	opts := newDiagnoseOptions(f)
	cmd := &cobra.Command{
		Use:   "analyze FILE",
		Short: "Run diagnose's checks over a support bundle, offline",
		Long: `Run quayctl diagnose's checks over the facts a support bundle holds, with no
access to the deployment: the same report, the same JSON and the same exit
codes as diagnose (same as quayctl diagnose --bundle FILE). Checks that need
a live probe the bundle did not record say "not available offline" as info.

Exit codes: 0 no warnings, 1 warnings (or a file that is not a bundle),
2 failures (or bad flags).`,
		Example: `  quayctl support-bundle analyze quayctl-bundle-podman-….tar.gz
  quayctl support-bundle analyze case-0123.tar.gz --only database -o json`,
		Args: exactArgs(1, "FILE, a bundle written by quayctl support-bundle"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Bundle = args[0]
			if err := refuseTargetFlags(cmd.Flags(), "analyze reads a bundle"); err != nil {
				return err
			}
			if err := checkOutput(opts.Output); err != nil {
				return err
			}
			if _, err := diag.Select(opts.Checks(), opts.Only, opts.Skip); err != nil {
				return flagError{err}
			}
			if runF != nil {
				return runF(opts)
			}
			return diagnoseRun(cmd.Context(), opts)
		},
	}
	fs := cmd.Flags()
	fs.StringSliceVar(&opts.Only, "only", nil, "run only these areas or check ids (comma-separated)")
	fs.StringSliceVar(&opts.Skip, "skip", nil, "leave out these areas or check ids (comma-separated)")
	fs.BoolVar(&opts.List, "list", false, "list the checks and exit")
	fs.BoolVarP(&opts.Verbose, "verbose", "v", false, "show the evidence of ok and info findings too")
	addOutputFlag(cmd, &opts.Output)
	return cmd
}

// refuseTargetFlags is a flag error when any target flag was given: the
// facts come from a bundle, not a deployment.
func refuseTargetFlags(fs *pflag.FlagSet, why string) error {
	var set []string
	fs.Visit(func(f *pflag.Flag) {
		if f.Annotations[targetAnnotation] != nil {
			set = append(set, "--"+f.Name)
		}
	})
	if len(set) > 0 {
		return flagError{fmt.Errorf("%s: %s, not a deployment (drop %s)", strings.Join(set, ", "), why, strings.Join(set, ", "))}
	}
	return nil
}

// analyzeBundle runs the checks over a bundle's facts.
func analyzeBundle(ctx context.Context, opts *DiagnoseOptions, selected []diag.Check) (diag.Report, error) {
	b, err := bundle.Open(ctx, opts.Bundle)
	if err != nil {
		return diag.Report{}, &UserError{Msg: "cannot read the support bundle", Err: err}
	}
	defer b.Close()
	return diag.Run(ctx, b.Facts(), diag.Target{Kind: "bundle", Name: b.Name()}, selected, diag.Options{Now: opts.Now}), nil
}
