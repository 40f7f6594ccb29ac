package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"

	"github.com/spf13/cobra"

	"github.com/quayctl/quayctl/collectors"
	"github.com/quayctl/quayctl/internal/redact"
)

// postgresConfPath is postgresql.conf in Red Hat's PostgreSQL image, the
// path the troubleshooting guide (4.2) reads.
const postgresConfPath = "/var/lib/pgsql/data/userdata/postgresql.conf"

// DBConfOptions are the flags of `quayctl db conf`.
type DBConfOptions struct {
	IO         *IOStreams
	Target     TargetOptions
	Deployment func(context.Context) (collectors.Deployment, error)
	Path       string // "" = postgresConfPath, then SHOW config_file
	Component  string
}

// NewCmdDBConf builds `quayctl db conf`.
func NewCmdDBConf(f *Factory, runF func(*DBConfOptions) error) *cobra.Command {
	opts := &DBConfOptions{IO: f.IO}
	opts.Deployment = f.deploymentFunc(&opts.Target)
	cmd := &cobra.Command{
		Use:   "conf [COMPONENT]",
		Short: "Print the database component's postgresql.conf",
		Long: `Print postgresql.conf from the database component, as chapter 4.2 of the
troubleshooting guide does with oc exec / podman exec:
` + postgresConfPath + ` in Red Hat's PostgreSQL image. When the
file is not there (another image), quayctl asks the server where it is:
psql -tAc 'SHOW config_file' inside the container. Values that look like
secrets (a password in primary_conninfo) are redacted. COMPONENT is the
one running PostgreSQL: database (default), or clairpostgres for Clair's.

Exit codes: 0 printed, 1 the file cannot be read, 2 bad flags.`,
		Example: `  quayctl db conf
  quayctl db conf --openshift -n quay
  quayctl db conf --podman --component database=postgresql-quay
  quayctl db conf clairpostgres --openshift`,
		Args: targetArgs(optionalComponentArg(collectors.ComponentDatabase)),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := targetFromFlags(cmd.Flags())
			if err != nil {
				return err
			}
			opts.Target = t
			opts.Component = componentArg(args, collectors.ComponentDatabase)
			if opts.Path != "" && !strings.HasPrefix(opts.Path, "/") {
				return flagError{fmt.Errorf("--path %q: give the absolute path inside the container", opts.Path)}
			}
			if runF != nil {
				return runF(opts)
			}
			return dbConfRun(cmd.Context(), opts)
		},
	}
	addTargetFlags(cmd)
	cmd.Flags().StringVar(&opts.Path, "path", "", "postgresql.conf's path in the container (default: "+postgresConfPath+", else SHOW config_file)")
	return cmd
}

func dbConfRun(ctx context.Context, opts *DBConfOptions) error {
	d, err := opts.Deployment(ctx)
	if err != nil {
		return err
	}
	comp := opts.Component
	path := opts.Path
	if path == "" {
		path = postgresConfPath
	}
	rc, err := d.ReadFile(ctx, comp, path)
	if err != nil && opts.Path == "" && errors.Is(err, fs.ErrNotExist) {
		shown, serr := showConfigFile(ctx, d, comp)
		if serr != nil {
			return &UserError{Msg: fmt.Sprintf("%s is not in the %s component, and asking PostgreSQL failed", postgresConfPath, comp), Err: serr,
				Remedy: "give the file's path with --path"}
		}
		fmt.Fprintf(opts.IO.ErrOut, "quayctl: %s not found; PostgreSQL says its config file is %s\n", postgresConfPath, shown)
		path = shown
		rc, err = d.ReadFile(ctx, comp, path)
	}
	if err != nil {
		if errors.Is(err, collectors.ErrNotSupported) {
			return &UserError{Msg: "cannot read postgresql.conf", Err: err}
		}
		return deploymentError("cannot read "+path+" from the "+comp+" component", err)
	}
	defer rc.Close()
	fmt.Fprintf(opts.IO.ErrOut, "# %s:%s\n", comp, path)
	rw := redact.Writer(opts.IO.Out)
	if _, err := io.Copy(rw, rc); err != nil {
		_ = rw.Close()
		return deploymentError("reading "+path, err)
	}
	if err := rw.Close(); err != nil {
		return err
	}
	if sum := rw.Summary(); sum.Total() > 0 {
		fmt.Fprintf(opts.IO.ErrOut, "quayctl: %s\n", sum)
	}
	return nil
}

// showConfigFile asks the server for its config file path.
func showConfigFile(ctx context.Context, d collectors.Deployment, comp string) (string, error) {
	var out, errb bytes.Buffer
	code, err := d.Exec(ctx, comp, []string{"psql", "-tAc", "SHOW config_file"}, collectors.ExecOptions{Stdout: &out, Stderr: &errb})
	if err != nil {
		return "", err
	}
	if code != 0 {
		msg, _ := redact.String(strings.TrimSpace(errb.String()))
		return "", fmt.Errorf("psql -tAc 'SHOW config_file' exited %d: %s", code, msg)
	}
	p := strings.TrimSpace(out.String())
	if !strings.HasPrefix(p, "/") {
		return "", fmt.Errorf("psql -tAc 'SHOW config_file' answered %q, not a path", p)
	}
	return p, nil
}
