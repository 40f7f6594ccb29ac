package cli

import (
	"context"
	"fmt"
	"io"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/quayctl/quayctl/registry/gc"
	"github.com/quayctl/quayctl/registry/server"
	"github.com/quayctl/quayctl/registry/storage"
	"github.com/quayctl/quayctl/registry/storage/drivers"
)

// NewCmdGC builds `quayctl gc`.
func NewCmdGC(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "gc",
		Short: "Garbage collection of the registry's database and storage",
		Args:  exactArgs(0, "a subcommand: run"),
	}
	cmd.AddCommand(NewCmdGCRun(f, nil))
	return cmd
}

// GCRunOptions are the flags of `quayctl gc run`.
type GCRunOptions struct {
	IO         *IOStreams
	Getenv     func(string) string
	ConfigPath string
	DataDir    string
	DryRun     bool
	Output     string
}

// NewCmdGCRun builds `quayctl gc run`.
func NewCmdGCRun(f *Factory, runF func(*GCRunOptions) error) *cobra.Command {
	opts := &GCRunOptions{IO: f.IO, Getenv: f.Getenv}
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run one garbage-collection pass now",
		Long: `Run one garbage-collection pass against the database and storage named by
the configuration, as the registry's worker does every
GARBAGE_COLLECTION_FREQUENCY seconds: purge deleted repositories, delete
tags past their namespace's time machine window, manifests no tag or index
reaches, and blobs no manifest references (from the database, then from
storage). It is safe while the registry serves pushes and pulls.

With --dry-run nothing changes; the report says what a pass would remove.

Exit codes: 0 done (or nothing to do), 1 failed or some items failed
(listed; the next pass retries them), 2 bad flags.`,
		Example: `  quayctl gc run --dry-run
  quayctl gc run --config /conf/stack/config.yaml -o json`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(opts.Output); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return gcRun(cmd.Context(), opts)
		},
	}
	storeFlags(cmd, &opts.ConfigPath, &opts.DataDir)
	cmd.Flags().BoolVar(&opts.DryRun, "dry-run", false, "report what would be removed, remove nothing")
	addOutputFlag(cmd, &opts.Output)
	return cmd
}

func gcRun(ctx context.Context, opts *GCRunOptions) error {
	st, cfg, err := openStoreConfig(ctx, opts.IO.ErrOut, opts.ConfigPath, opts.DataDir, opts.Getenv)
	if err != nil {
		return err
	}
	defer st.Close()
	locs := map[string]storage.Driver{}
	for name, loc := range server.FromConfig(cfg).Locations {
		d, err := drivers.New(ctx, loc.Driver, loc.Params)
		if err != nil {
			return &UserError{Msg: "cannot open storage location " + name, Err: err,
				Remedy: "fix DISTRIBUTED_STORAGE_CONFIG." + name + " in the configuration"}
		}
		locs[name] = d
	}
	rep, err := gc.New(st, locs, gc.Options{Logger: newLogger(opts.IO.ErrOut, opts.Getenv)}).Run(ctx, opts.DryRun)
	if err != nil {
		return &UserError{Msg: "garbage collection failed", Err: fmt.Errorf("%s", redactErr(err)),
			Remedy: "check that the database is reachable; what was removed before the failure stays removed, run again to continue"}
	}
	if err := render(opts.IO.Out, opts.Output, rep, func(w io.Writer) error { return writeGCReport(w, opts.IO.OutTTY, rep) }); err != nil {
		return err
	}
	if len(rep.Failures) > 0 {
		return &UserError{Msg: fmt.Sprintf("%d items could not be removed", len(rep.Failures)),
			Remedy: "see the failures listed; the next pass retries them"}
	}
	return nil
}

func writeGCReport(w io.Writer, tty bool, rep *gc.Report) error {
	title := "Garbage collection removed"
	if rep.DryRun {
		title = "Garbage collection would remove (dry run, nothing changed)"
	}
	if err := heading(w, tty, title); err != nil {
		return err
	}
	tb := newTable("WHAT", "COUNT", "BYTES")
	size := func(n int64) string { return strconv.FormatInt(n, 10) }
	tb.row("deleted repositories", strconv.Itoa(rep.Repositories), "")
	tb.row("tags", strconv.Itoa(rep.Tags), "")
	tb.row("manifests", strconv.Itoa(rep.Manifests.Count), size(rep.Manifests.Bytes))
	tb.row("blobs (database)", strconv.Itoa(rep.Blobs.Count), size(rep.Blobs.Bytes))
	tb.row("blobs (storage)", strconv.Itoa(rep.Objects.Count), size(rep.Objects.Bytes))
	tb.row("abandoned uploads", strconv.Itoa(rep.Uploads), "")
	if err := tb.render(w, tty); err != nil {
		return err
	}
	for _, f := range rep.Failures {
		if _, err := fmt.Fprintln(w, "failed: "+f); err != nil {
			return err
		}
	}
	return nil
}
