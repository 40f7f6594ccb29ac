package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/quayctl/quayctl/collectors"
	"github.com/quayctl/quayctl/dbtools/diagnostics"
)

// MirrorStatusOptions are the flags of `quayctl mirror status`.
type MirrorStatusOptions struct {
	IO         *IOStreams
	Target     TargetOptions
	Deployment func(context.Context) (collectors.Deployment, error)
	Repository string // NS/REPO, "" = all
	Output     string
}

// mirrorStatusResult is the stable JSON/YAML schema of `quayctl mirror
// status` (docs/mirroring.md): the rows diagnose's mirroring check reads.
type mirrorStatusResult struct {
	Database string               `json:"database"`
	Mirrors  []diagnostics.Mirror `json:"mirrors"`
}

// NewCmdMirror builds `quayctl mirror`.
func NewCmdMirror(f *Factory) *cobra.Command {
	cmd := groupCmd(&cobra.Command{Use: "mirror", Short: "Repository mirroring"})
	cmd.AddCommand(NewCmdMirrorStatus(f, nil))
	return cmd
}

// NewCmdMirrorStatus builds `quayctl mirror status`.
func NewCmdMirrorStatus(f *Factory, runF func(*MirrorStatusOptions) error) *cobra.Command {
	opts := &MirrorStatusOptions{IO: f.IO}
	opts.Deployment = f.deploymentFunc(&opts.Target)
	cmd := &cobra.Command{
		Use:   "status [NS/REPO]",
		Short: "Show each mirrored repository: source, sync status, next sync, retries, and the robot's permission",
		Long: `Show the repository mirror configurations (repomirrorconfig) of the
registry's database, as chapter 6.5 of the troubleshooting guide checks
them: the external source, the last sync's status (NEVER_RUN, SYNC_NOW,
SYNCING, SUCCESS, FAIL, CANCEL), when the next sync starts, the retries
left, and the robot the mirror pushes as with its role on the repository
(it needs write). Credentials are never shown. quayctl diagnose --only
mirroring turns the same rows into findings.

The database is found as for quayctl db activity: --db, DB_URI of --config,
or the deployment's config.yaml: PostgreSQL, or SQLite (quayctl serve's
default), which is opened read-only and must be a file this machine can read.

Exit codes: 0 shown, 1 the database cannot be read or NS/REPO is not mirrored, 2 bad flags.`,
		Example: `  quayctl mirror status --podman
  quayctl mirror status acme/busybox --db 'postgresql://quay:PASSWORD@127.0.0.1:5432/quay' -o json`,
		Args: targetArgs(func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return argsError{fmt.Errorf("%s takes at most one argument: NS/REPO", cmd.CommandPath())}
			}
			return nil
		}),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := targetFromFlags(cmd.Flags())
			if err != nil {
				return err
			}
			opts.Target = t
			opts.Repository = ""
			if len(args) == 1 {
				if ns, repo, ok := strings.Cut(args[0], "/"); !ok || ns == "" || repo == "" {
					return argsError{fmt.Errorf("%q is not NS/REPO, such as acme/busybox", args[0])}
				}
				opts.Repository = args[0]
			}
			if err := checkOutput(opts.Output); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return mirrorStatusRun(cmd.Context(), opts)
		},
	}
	addTargetFlags(cmd)
	addOutputFlag(cmd, &opts.Output)
	return cmd
}

func mirrorStatusRun(ctx context.Context, opts *MirrorStatusOptions) error {
	db, err := openQuayDB(ctx, opts.IO, opts.Target, opts.Deployment, "")
	if err != nil {
		return err
	}
	defer db.close()
	all, err := diagnostics.Mirrors(ctx, db.q)
	if err != nil {
		return dbReadError(err)
	}
	res := mirrorStatusResult{Database: db.uri.Redacted, Mirrors: []diagnostics.Mirror{}}
	for _, m := range all {
		if opts.Repository == "" || m.Repository == opts.Repository {
			res.Mirrors = append(res.Mirrors, m)
		}
	}
	if opts.Repository != "" && len(res.Mirrors) == 0 {
		return &UserError{Msg: opts.Repository + " is not a mirrored repository", Remedy: "list the mirrored repositories with: quayctl mirror status"}
	}
	return render(opts.IO.Out, opts.Output, res, func(w io.Writer) error {
		if len(res.Mirrors) == 0 {
			_, err := fmt.Fprintln(w, "No repository is mirrored.")
			return err
		}
		t := newTable("REPOSITORY", "FROM", "ENABLED", "STATUS", "NEXT SYNC", "RETRIES", "ROBOT", "ROLE")
		for _, m := range res.Mirrors {
			next := "-"
			if m.SyncStartDate != nil {
				next = m.SyncStartDate.UTC().Format(time.RFC3339)
			}
			role := m.RobotRole
			if role == "" {
				role = "none"
			}
			t.row(m.Repository, m.ExternalReference, yesNo(m.Enabled), m.SyncStatus, next, fmt.Sprint(m.SyncRetriesRemaining), m.Robot, role)
			t.tone(3, map[string]tone{"FAIL": toneBad, "SUCCESS": toneGood, "CANCEL": toneWarn}[m.SyncStatus])
			if role != "write" && role != "admin" {
				t.tone(7, toneBad)
			}
		}
		if err := t.render(w, opts.IO.OutTTY); err != nil {
			return err
		}
		// The reason does not fit a column; it is what the operator needs
		// first (chapter 6.5: wrong credentials, TLS, source down).
		for _, m := range res.Mirrors {
			if m.LastError != "" {
				if _, err := fmt.Fprintf(w, "\n%s: last sync failed: %s", m.Repository, m.LastError); err != nil {
					return err
				}
			}
		}
		return nil
	})
}
