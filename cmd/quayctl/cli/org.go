package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/mail"

	"github.com/spf13/cobra"

	"github.com/quayctl/quayctl/registry/store"
)

// NewCmdOrg builds `quayctl org`.
func NewCmdOrg(f *Factory) *cobra.Command {
	cmd := groupCmd(&cobra.Command{Use: "org", Short: "Manage organizations in the database"})
	cmd.AddCommand(NewCmdOrgCreate(f, nil))
	return cmd
}

// OrgCreateOptions are the flags of `quayctl org create`.
type OrgCreateOptions struct {
	IO         *IOStreams
	Getenv     func(string) string
	ConfigPath string
	DataDir    string
	Name       string
	Owner      string
	Email      string
	Output     string
}

type orgCreateResult struct {
	Organization string `json:"organization"`
	Owner        string `json:"owner"`
	OwnersTeam   string `json:"owners_team"`
	Database     string `json:"database"`
}

// NewCmdOrgCreate builds `quayctl org create`.
func NewCmdOrgCreate(f *Factory, runF func(*OrgCreateOptions) error) *cobra.Command {
	opts := &OrgCreateOptions{IO: f.IO, Getenv: f.Getenv}
	cmd := &cobra.Command{
		Use:   "create NAME --owner USER",
		Short: "Create an organization directly in the registry database",
		Long: `Create an organization in the database named by the configuration, as Quay
does: the organization's row, its "owners" team (role admin) and USER as that
team's member, in one transaction, plus Quay's org_create audit entry.

Exit codes: 0 created, 1 failed (name taken or invalid, no such owner,
database unreachable), 2 bad flags.`,
		Example: `  quayctl org create acme --owner quayadmin --email ops@example.com`,
		Args:    exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Name = args[0]
			if err := checkOutput(opts.Output); err != nil {
				return err
			}
			if opts.Owner == "" {
				return flagError{errors.New("--owner is required: the user who becomes the organization's first admin")}
			}
			if runF != nil {
				return runF(opts)
			}
			return orgCreateRun(cmd.Context(), opts)
		},
	}
	storeFlags(cmd, &opts.ConfigPath, &opts.DataDir)
	cmd.Flags().StringVar(&opts.Owner, "owner", "", "user who becomes the organization's first admin (required)")
	cmd.Flags().StringVar(&opts.Email, "email", "", "e-mail address of the organization")
	addOutputFlag(cmd, &opts.Output)
	return cmd
}

func orgCreateRun(ctx context.Context, opts *OrgCreateOptions) error {
	if opts.Email != "" {
		if a, err := mail.ParseAddress(opts.Email); err != nil || a.Address != opts.Email {
			return &UserError{Msg: fmt.Sprintf("invalid e-mail address %q", opts.Email), Remedy: "pass --email name@example.com, or omit it"}
		}
	}
	st, _, err := openStoreConfig(ctx, opts.IO.ErrOut, opts.ConfigPath, opts.DataDir, opts.Getenv)
	if err != nil {
		return err
	}
	defer st.Close()
	owner, err := st.UserByName(ctx, opts.Owner)
	if errors.Is(err, store.ErrNotFound) || (err == nil && (owner.Organization || owner.Robot)) {
		return &UserError{Msg: "no user named " + opts.Owner, Remedy: "create it first (quayctl user create), or check the name with: quayctl user list"}
	} else if err != nil {
		return &UserError{Msg: "cannot look up user " + opts.Owner, Err: err}
	}
	org, err := st.CreateOrganization(ctx, opts.Name, opts.Email, owner.ID)
	var inv store.InvalidInputError
	switch {
	case errors.As(err, &inv):
		return &UserError{Msg: fmt.Sprintf("invalid organization name %q", opts.Name), Remedy: "use 2 to 255 characters of a-z and 0-9, with single '.', '_' or '-' between them"}
	case errors.Is(err, store.ErrExists):
		return &UserError{Msg: "a user or organization named " + opts.Name + " already exists", Remedy: "choose another name"}
	case err != nil:
		return &UserError{Msg: "cannot create the organization", Err: err}
	}
	_ = st.Log(ctx, store.LogEntry{Kind: "org_create", AccountID: org.ID, PerformerID: &owner.ID,
		Metadata: map[string]any{"email": opts.Email, "namespace": org.Username, "source": "quayctl org create"}})
	res := orgCreateResult{Organization: org.Username, Owner: owner.Username, OwnersTeam: store.OwnersTeam, Database: st.Dialect()}
	return render(opts.IO.Out, opts.Output, res, func(w io.Writer) error {
		_, err := fmt.Fprintf(w, "Created organization %s in the %s database; %s is in its owners team.\n", res.Organization, res.Database, res.Owner)
		return err
	})
}
