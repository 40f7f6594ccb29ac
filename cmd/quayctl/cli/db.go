package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

// NewCmdDB builds `quayctl db`.
func NewCmdDB(f *Factory) *cobra.Command {
	cmd := groupCmd(&cobra.Command{Use: "db", Short: "Database tools"})
	cmd.AddCommand(NewCmdDBMigrate(f, nil))
	return cmd
}

// DBMigrateOptions are the flags of `quayctl db migrate`.
type DBMigrateOptions struct {
	IO         *IOStreams
	Getenv     func(string) string
	ConfigPath string
	DataDir    string
	Output     string
}

// NewCmdDBMigrate builds `quayctl db migrate`.
func NewCmdDBMigrate(f *Factory, runF func(*DBMigrateOptions) error) *cobra.Command {
	opts := &DBMigrateOptions{IO: f.IO, Getenv: f.Getenv}
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply quayctl's schema migrations to the configured database",
		Long: `Apply the embedded schema migrations (Quay's tables and enum rows) to the
database in DB_URI. quayctl serve does the same at start; this command lets
an administrator run it alone, for example before starting many replicas.

Exit codes: 0 applied (or nothing to do), 1 failed.`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(opts.Output); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return dbMigrateRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.ConfigPath, "config", "", "path to Quay's config.yaml")
	cmd.Flags().StringVar(&opts.DataDir, "data-dir", "./quay-data", "data directory of the embedded default")
	addOutputFlag(cmd, &opts.Output)
	return cmd
}

func dbMigrateRun(ctx context.Context, opts *DBMigrateOptions) error {
	st, kind, err := openStore(ctx, opts.IO.ErrOut, opts.ConfigPath, opts.DataDir, opts.Getenv)
	if err != nil {
		return err
	}
	defer st.Close()
	res := map[string]any{"database": kind, "migrated": true}
	return render(opts.IO.Out, opts.Output, res, func(w io.Writer) error {
		_, err := fmt.Fprintf(w, "The %s database is at the latest schema.\n", kind)
		return err
	})
}
