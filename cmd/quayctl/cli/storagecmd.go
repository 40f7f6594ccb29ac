package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/quayctl/quayctl/collectors"
	"github.com/quayctl/quayctl/collectors/gather"
	"github.com/quayctl/quayctl/diag"
	"github.com/quayctl/quayctl/diag/checks"
	"github.com/quayctl/quayctl/registry/storage"
)

// StorageProbeOptions are the flags of `quayctl storage probe`.
type StorageProbeOptions struct {
	IO         *IOStreams
	Target     TargetOptions
	Deployment func(context.Context) (collectors.Deployment, error)
	Location   string
	Output     string
	Insecure   bool
	Timeout    time.Duration
	// HTTPClient returns the client for the signed-URL fetch.
	HTTPClient func(insecure bool, timeout time.Duration) *http.Client
	// Now is the report's clock (tests fix it).
	Now func() time.Time
}

// storageProbeResult is the stable JSON/YAML schema of `quayctl storage
// probe`: the probes (diag.StorageProbe, as in a support bundle's
// storage/<location>/probe.json) and the storage area's findings.
type storageProbeResult struct {
	Version   int                 `json:"version"`
	Target    diag.Target         `json:"target"`
	Locations []diag.StorageProbe `json:"locations"`
	Summary   diag.Summary        `json:"summary"`
	Findings  []diag.Finding      `json:"findings"`
	report    diag.Report
}

// addStorageCommands adds `storage probe` to the storage group, creating
// the group if no other storage command has.
func addStorageCommands(root *cobra.Command, f *Factory) {
	group := findSubcommand(root, "storage")
	if group == nil {
		group = groupCmd(&cobra.Command{Use: "storage", Short: "Storage tools: probe each location, geo-replication status"})
		root.AddCommand(group)
	}
	group.AddCommand(NewCmdStorageProbe(f, nil))
	group.AddCommand(NewCmdStorageReplicationStatus(f, nil))
}

// NewCmdStorageProbe builds `quayctl storage probe`.
func NewCmdStorageProbe(f *Factory, runF func(*StorageProbeOptions) error) *cobra.Command {
	opts := &StorageProbeOptions{IO: f.IO, HTTPClient: healthClient, Now: time.Now}
	opts.Deployment = f.deploymentFunc(&opts.Target)
	cmd := &cobra.Command{
		Use:   "probe",
		Short: "Write, read back and delete a probe object in each storage location, with timings",
		Long: `Run the storage area of quayctl diagnose alone (troubleshooting guide 6.3).

For each location of DISTRIBUTED_STORAGE_CONFIG (or only --location), write a
small probe object (` + storage.ProbePathPrefix + `<random>), stat it, read it back,
compare and delete it, timing each step; nothing is left behind. S3-compatible
locations (S3Storage, RadosGWStorage, RHOCSStorage) are probed with the
configured endpoint, bucket and keys, and the probe object is also fetched
through a signed URL, the way a client redirected by the registry fetches a
blob. LocalStorage is probed on this host for a --config target; on podman
through the host path of the quay container's volume, else inside the
container with sh. Locations are also checked against
DISTRIBUTED_STORAGE_PREFERENCE and DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS.

Exit codes: 0 every location works, 1 warnings (slow, not probed), 2 a
location failed (or bad flags).`,
		Example: `  quayctl storage probe --podman
  quayctl storage probe --config /etc/quay/config.yaml --location default
  quayctl storage probe --openshift -n quay-enterprise -o json`,
		Args: targetArgs(exactArgs(0, "no arguments; choose a location with --location")),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := targetFromFlags(cmd.Flags())
			if err != nil {
				return err
			}
			opts.Target = t
			if err := checkOutput(opts.Output); err != nil {
				return err
			}
			if opts.Timeout <= 0 {
				return flagError{errors.New("--timeout must be positive, such as 30s")}
			}
			if strings.TrimSpace(opts.Location) != opts.Location || strings.Contains(opts.Location, "/") {
				return flagError{fmt.Errorf("--location %q is not a location name of DISTRIBUTED_STORAGE_CONFIG", opts.Location)}
			}
			if runF != nil {
				return runF(opts)
			}
			return storageProbeRun(cmd.Context(), opts)
		},
	}
	addTargetFlags(cmd)
	addOutputFlag(cmd, &opts.Output)
	cmd.Flags().StringVar(&opts.Location, "location", "", "probe only this location (a key of DISTRIBUTED_STORAGE_CONFIG)")
	cmd.Flags().BoolVar(&opts.Insecure, "insecure", false, "do not verify the storage endpoint's TLS certificate for the signed-URL fetch")
	cmd.Flags().DurationVar(&opts.Timeout, "timeout", 30*time.Second, "time allowed to probe each location")
	return cmd
}

// storageLocationFacts narrows storage/locations.json to one location, so
// the storage checks probe only it.
type storageLocationFacts struct {
	diag.Facts
	location string
}

func (f storageLocationFacts) Get(ctx context.Context, name string) ([]byte, error) {
	if name == diag.FactStorageLocations {
		return []byte(fmt.Sprintf("[%q]\n", f.location)), nil
	}
	return f.Facts.Get(ctx, name)
}

func storageProbeRun(ctx context.Context, opts *StorageProbeOptions) error {
	d, err := opts.Deployment(ctx)
	if err != nil {
		return err
	}
	g := gather.New(ctx, d, gather.Options{
		URL: opts.Target.URL, DBURI: opts.Target.DBURI, Timeout: opts.Timeout,
		HTTPClient: opts.HTTPClient(opts.Insecure, opts.Timeout),
		Warn:       func(msg string) { fmt.Fprintln(opts.IO.ErrOut, "quayctl: "+msg) },
	})
	defer g.Close()
	names, err := diag.GetJSON[[]string](ctx, g, diag.FactStorageLocations)
	if err != nil {
		return &UserError{Msg: "cannot tell the storage locations", Err: err,
			Remedy: "quayctl reads DISTRIBUTED_STORAGE_CONFIG from the deployment's config.yaml: pass --config FILE, or point at the deployment with --podman or --openshift"}
	}
	var facts diag.Facts = g
	if opts.Location != "" {
		if !slices.Contains(names, opts.Location) {
			return &UserError{Msg: fmt.Sprintf("no storage location %q", opts.Location),
				Remedy: "DISTRIBUTED_STORAGE_CONFIG has: " + strings.Join(names, ", ") + " (names are case-sensitive)"}
		}
		names = []string{opts.Location}
		facts = storageLocationFacts{Facts: g, location: opts.Location}
	}
	selected, err := diag.Select(checks.All(), []string{checks.AreaStorage}, nil)
	if err != nil {
		return err
	}
	rep := diag.Run(ctx, facts, diag.Target{Kind: d.Kind(), Name: d.Name()}, selected, diag.Options{Now: opts.Now})
	res := storageProbeResult{Version: diag.SchemaVersion, Target: rep.Target, Locations: []diag.StorageProbe{},
		Summary: rep.Summary, Findings: rep.Findings, report: rep}
	for _, n := range names {
		p, err := diag.GetJSON[diag.StorageProbe](ctx, facts, diag.FactStorageProbe(n))
		if err != nil {
			// The finding says why; the row keeps the location visible.
			p = diag.StorageProbe{Location: n, Steps: []diag.StorageProbeStep{}, Error: redactErr(err)}
		}
		res.Locations = append(res.Locations, p)
	}
	if err := render(opts.IO.Out, opts.Output, res, func(w io.Writer) error {
		return writeStorageProbe(w, opts.IO.OutTTY, res)
	}); err != nil {
		return err
	}
	if code := rep.ExitCode(); code != 0 {
		return &exitCodeError{code: code}
	}
	return nil
}

// storageProbeColumns are the steps shown as columns, in order.
var storageProbeColumns = []string{storage.ProbeWrite, storage.ProbeStat, storage.ProbeRead, storage.ProbeCompare, storage.ProbeDelete}

func writeStorageProbe(w io.Writer, tty bool, res storageProbeResult) error {
	if err := heading(w, tty, fmt.Sprintf("quayctl storage probe: %s %s", res.Target.Kind, res.Target.Name)); err != nil {
		return err
	}
	headers := []string{"LOCATION", "DRIVER", "WHERE"}
	for _, c := range storageProbeColumns {
		headers = append(headers, strings.ToUpper(c))
	}
	headers = append(headers, "SIGNED URL", "RESULT")
	t := newTable(headers...)
	result := len(headers) - 1
	t.toneOf = func(col int, v string) tone {
		switch {
		case col == result && v == "ok":
			return toneGood
		case col == result && v == "fail", v == "FAILED":
			return toneBad
		case col == result && v == "warn":
			return toneWarn
		case col == result:
			return toneDim
		}
		return toneNone
	}
	for _, p := range res.Locations {
		row := []string{p.Location, p.Driver, p.Where}
		for _, c := range storageProbeColumns {
			row = append(row, storageStepCell(p.Steps, c))
		}
		dl := ""
		if p.Download != nil {
			dl = storageStepCell([]diag.StorageProbeStep{*p.Download}, p.Download.Step)
		}
		row = append(row, dl, storageResult(res.Findings, p.Location))
		t.row(row...)
	}
	if err := t.render(w, tty); err != nil {
		return err
	}
	var b strings.Builder
	for _, f := range res.Findings {
		if f.Severity == diag.OK {
			continue
		}
		fmt.Fprintf(&b, "\n%s %s\n", strings.ToUpper(f.Severity.String()), f.Title)
		if f.Severity >= diag.Warn {
			for _, e := range f.Evidence {
				fmt.Fprintf(&b, "  │ %s\n", e)
			}
		}
		if f.Remedy != "" {
			fmt.Fprintf(&b, "  fix: %s\n", f.Remedy)
		}
	}
	fmt.Fprintf(&b, "\n%s\n", diag.SummaryLine(res.report))
	_, err := io.WriteString(w, b.String())
	return err
}

// storageStepCell is a step's time, FAILED, or empty when it did not run
// (an open failure shows under WRITE, where the probe stopped).
func storageStepCell(steps []diag.StorageProbeStep, name string) string {
	for _, s := range steps {
		if s.Step == name || (name == storage.ProbeWrite && s.Step == gather.StorageStepOpen) {
			if !s.OK {
				return "FAILED"
			}
			return fmt.Sprintf("%.1fms", s.ElapsedMS)
		}
	}
	return ""
}

// storageResult is the severity of the location's probe finding.
func storageResult(fs []diag.Finding, location string) string {
	for _, f := range fs {
		if f.ID == "storage.probe" && f.Subject == location {
			return f.Severity.String()
		}
	}
	return ""
}
