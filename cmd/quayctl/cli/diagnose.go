package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/quayctl/quayctl/collectors"
	"github.com/quayctl/quayctl/collectors/gather"
	"github.com/quayctl/quayctl/diag"
	"github.com/quayctl/quayctl/diag/checks"
)

// DiagnoseOptions are the flags of `quayctl diagnose` (and `db check`,
// which fixes Only).
type DiagnoseOptions struct {
	IO         *IOStreams
	Target     TargetOptions
	Deployment func(context.Context) (collectors.Deployment, error)
	Only, Skip []string
	Output     string
	Verbose    bool
	List       bool
	Insecure   bool
	Timeout    time.Duration // per fact
	Since      time.Duration // logs scanned
	// Bundle, when set, is a support bundle whose facts are checked
	// instead of a live deployment's (--bundle, support-bundle analyze).
	Bundle string
	// HTTPClient returns the client for health and storage requests.
	HTTPClient func(insecure bool, timeout time.Duration) *http.Client
	// Checks returns the checks to choose from (tests narrow them).
	Checks func() []diag.Check
	// Now is the report's clock (tests fix it).
	Now func() time.Time
}

const diagnoseLong = `Gather facts from a Quay deployment and run the checks a Quay support
engineer runs first (chapter 6 of the troubleshooting guide): containers
and pods, the health endpoints, config.yaml, the database (connections,
long queries, locks, disk, schema, bloat), authentication and superusers,
storage locations, geo-replication, repository mirroring, Clair, and known
error signatures in the logs.

Each finding has a severity (ok, info, warn, fail), the evidence that
proves it, what to do, and a link to docs/diagnose.md. Facts are gathered
concurrently, each with --timeout; a fact that cannot be gathered is a
finding of its own. Secrets never appear in the report.

Areas: ` + "containers, health, config, database, auth, storage, geo-replication, mirroring, clair, logs" + `.

Exit codes: 0 no warnings, 1 warnings (or a bad target), 2 failures (or bad flags).`

// NewCmdDiagnose builds `quayctl diagnose`.
func NewCmdDiagnose(f *Factory, runF func(*DiagnoseOptions) error) *cobra.Command {
	opts := newDiagnoseOptions(f)
	cmd := &cobra.Command{
		Use:   "diagnose",
		Short: "Check a Quay deployment and report problems with evidence and remedies",
		Long:  diagnoseLong,
		Example: `  quayctl diagnose
  quayctl diagnose --podman --only database,storage
  quayctl diagnose --openshift -n quay-enterprise -o json > findings.json
  quayctl diagnose --config ./config.yaml --db postgresql://quay:…@db:5432/quay`,
		Args: targetArgs(exactArgs(0, "no arguments; choose areas with --only")),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := prepareDiagnose(cmd, opts); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return diagnoseRun(cmd.Context(), opts)
		},
	}
	addDiagnoseFlags(cmd, opts, true)
	cmd.Flags().StringVar(&opts.Bundle, "bundle", "", "check the facts of this support bundle (quayctl support-bundle) instead of a live deployment")
	addTargetFlags(cmd)
	return cmd
}

// NewCmdDBCheck builds `quayctl db check`: diagnose's database area alone.
func NewCmdDBCheck(f *Factory, runF func(*DiagnoseOptions) error) *cobra.Command {
	opts := newDiagnoseOptions(f)
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Run diagnose's database checks: connectivity, connections, long queries, locks, disk, schema, bloat",
		Long: `Run the database area of quayctl diagnose alone (see quayctl diagnose --help):
reachable from here and from inside the quay component, server version and
max_connections against connections in use, long-running queries and
transactions, sessions idle in transaction, blocked locks, database size and
free disk of the database component, Quay's schema and migration version,
the pg_trgm extension, and dead-tuple bloat.

Exit codes: 0 no warnings, 1 warnings, 2 failures (or bad flags).`,
		Example: `  quayctl db check --podman
  quayctl db check --db postgresql://quay:…@127.0.0.1:5432/quay -o json`,
		Args: targetArgs(exactArgs(0, "no arguments")),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := prepareDiagnose(cmd, opts); err != nil {
				return err
			}
			opts.Only = []string{checks.AreaDatabase}
			if runF != nil {
				return runF(opts)
			}
			return diagnoseRun(cmd.Context(), opts)
		},
	}
	addDiagnoseFlags(cmd, opts, false)
	addTargetFlags(cmd)
	return cmd
}

func newDiagnoseOptions(f *Factory) *DiagnoseOptions {
	opts := &DiagnoseOptions{IO: f.IO, HTTPClient: healthClient, Checks: checks.All, Now: time.Now}
	opts.Deployment = f.deploymentFunc(&opts.Target)
	return opts
}

func addDiagnoseFlags(cmd *cobra.Command, opts *DiagnoseOptions, areas bool) {
	fs := cmd.Flags()
	if areas {
		fs.StringSliceVar(&opts.Only, "only", nil, "run only these areas or check ids (comma-separated)")
		fs.StringSliceVar(&opts.Skip, "skip", nil, "leave out these areas or check ids (comma-separated)")
		fs.BoolVar(&opts.List, "list", false, "list the checks and exit")
	}
	fs.BoolVarP(&opts.Verbose, "verbose", "v", false, "show the evidence of ok and info findings too")
	fs.BoolVar(&opts.Insecure, "insecure", false, "do not verify the registry's TLS certificate")
	fs.DurationVar(&opts.Timeout, "timeout", 30*time.Second, "time allowed to gather each fact")
	fs.DurationVar(&opts.Since, "since", 24*time.Hour, "how far back the logs are scanned")
	addOutputFlag(cmd, &opts.Output)
}

func prepareDiagnose(cmd *cobra.Command, opts *DiagnoseOptions) error {
	t, err := targetFromFlags(cmd.Flags())
	if err != nil {
		return err
	}
	opts.Target = t
	if opts.Bundle != "" {
		if err := refuseTargetFlags(cmd.Flags(), "--bundle reads a support bundle"); err != nil {
			return err
		}
	}
	if err := checkOutput(opts.Output); err != nil {
		return err
	}
	if opts.Timeout <= 0 {
		return flagError{errors.New("--timeout must be positive, such as 30s")}
	}
	if opts.Since <= 0 {
		return flagError{errors.New("--since must be positive, such as 24h")}
	}
	if _, err := diag.Select(opts.Checks(), opts.Only, opts.Skip); err != nil {
		return flagError{err}
	}
	return nil
}

// checkList is the JSON of --list.
type checkList struct {
	ID    string `json:"id"`
	Area  string `json:"area"`
	Title string `json:"title"`
	Doc   string `json:"doc"`
}

func diagnoseRun(ctx context.Context, opts *DiagnoseOptions) error {
	selected, err := diag.Select(opts.Checks(), opts.Only, opts.Skip)
	if err != nil {
		return flagError{err}
	}
	if opts.List {
		return listChecks(opts, selected)
	}
	var rep diag.Report
	if opts.Bundle != "" {
		if rep, err = analyzeBundle(ctx, opts, selected); err != nil {
			return err
		}
	} else {
		rep = diagnose(ctx, opts, selected)
	}
	if err := render(opts.IO.Out, opts.Output, rep, func(w io.Writer) error {
		return diag.WriteText(w, rep, diag.TextOptions{TTY: opts.IO.OutTTY, Verbose: opts.Verbose})
	}); err != nil {
		return err
	}
	if code := rep.ExitCode(); code != 0 {
		return &exitCodeError{code: code}
	}
	return nil
}

// diagnose gathers and checks. A target that cannot be reached is the
// report's one failing finding, so scripts get the same JSON either way.
func diagnose(ctx context.Context, opts *DiagnoseOptions, selected []diag.Check) diag.Report {
	prog := newProgress(opts.IO.ErrOut, opts.Output == OutputTable && opts.IO.OutTTY)
	defer prog.clear()
	d, err := opts.Deployment(ctx)
	if err != nil {
		start := opts.Now().UTC()
		f := diag.Finding{ID: "target.reachable", Area: "target", Severity: diag.Fail,
			Title:  "cannot reach the deployment: " + redactErr(err),
			Remedy: "name the target: --podman[=URL], --openshift [-n NAMESPACE], or --url/--config/--db (see quayctl diagnose --help)",
			Doc:    "docs/diagnose.md#target"}
		return diag.Report{Version: diag.SchemaVersion, Target: diag.Target{Kind: opts.Target.Kind}, Started: start, Finished: opts.Now().UTC(),
			Areas: []string{"target"}, Findings: []diag.Finding{f}, Summary: diag.Summarize([]diag.Finding{f})}
	}
	g := gather.New(ctx, d, gather.Options{
		URL: opts.Target.URL, DBURI: opts.Target.DBURI, HTTPClient: opts.HTTPClient(opts.Insecure, opts.Timeout),
		Timeout: opts.Timeout, LogSince: opts.Since, Progress: prog.fact,
		Warn: func(msg string) { prog.note("quayctl: " + msg) },
	})
	defer g.Close()
	return diag.Run(ctx, g, diag.Target{Kind: d.Kind(), Name: d.Name()}, selected, diag.Options{Now: opts.Now})
}

func listChecks(opts *DiagnoseOptions, selected []diag.Check) error {
	list := make([]checkList, len(selected))
	for i, c := range selected {
		list[i] = checkList{ID: c.ID, Area: c.Area, Title: c.Title, Doc: c.Doc}
	}
	return render(opts.IO.Out, opts.Output, list, func(w io.Writer) error {
		t := newTable("AREA", "CHECK", "LOOKS AT")
		for _, c := range list {
			t.row(c.Area, c.ID, c.Title)
		}
		return t.render(w, opts.IO.OutTTY)
	})
}

// progress counts the facts being gathered for the status line.
type progress struct {
	statusLine
	running  map[string]bool
	finished int
}

func newProgress(w io.Writer, live bool) *progress {
	return &progress{statusLine: statusLine{w: w, live: live}, running: map[string]bool{}}
}

func (p *progress) fact(name string, done bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if done {
		delete(p.running, name)
		p.finished++
	} else {
		p.running[name] = true
	}
	cur := ""
	for n := range p.running {
		if cur == "" || n < cur {
			cur = n
		}
	}
	p.show(fmt.Sprintf("gathering facts: %d done, %d running %s", p.finished, len(p.running), cur))
}
