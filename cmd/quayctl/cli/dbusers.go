package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/quayctl/quayctl/collectors"
	"github.com/quayctl/quayctl/dbtools/diagnostics"
)

// defaultUsersLimit bounds the account list unless --limit says otherwise.
const defaultUsersLimit = 1000

// DBUsersOptions are the flags of `quayctl db users`.
type DBUsersOptions struct {
	IO         *IOStreams
	Target     TargetOptions
	Deployment func(context.Context) (collectors.Deployment, error)
	Federated  bool
	SuperUsers bool
	Limit      int
	Output     string
}

// dbUsersResult is the stable JSON/YAML schema of `quayctl db users`
// (docs/db.md). Accounts is there without --federated/--superusers;
// Federated with --federated; SuperUsers with --superusers.
type dbUsersResult struct {
	Database string `json:"database"`
	// Config is where DB_URI and SUPER_USERS came from ("" with --db alone).
	Config string `json:"config,omitempty"`
	// SuperUsersKnown is false when no config.yaml was read: superuser
	// then only reflects quayctl serve's own table.
	SuperUsersKnown bool                   `json:"super_users_known"`
	Counts          diagnostics.UserCounts `json:"counts"`
	// NoLogin are the people with neither a password nor a federated login.
	NoLogin           []string                        `json:"no_login"`
	Accounts          []diagnostics.Account           `json:"accounts,omitempty"`
	AccountsTruncated bool                            `json:"accounts_truncated,omitempty"`
	Federated         []diagnostics.FederatedIdentity `json:"federated,omitempty"`
	SuperUsers        []superUserResult               `json:"super_users,omitempty"`
}

// superUserResult is a SUPER_USERS entry with what keeps it from working.
type superUserResult struct {
	diagnostics.SuperUser
	Problems []string `json:"problems"`
}

// NewCmdDBUsers builds `quayctl db users`.
func NewCmdDBUsers(f *Factory, runF func(*DBUsersOptions) error) *cobra.Command {
	opts := &DBUsersOptions{IO: f.IO}
	opts.Deployment = f.deploymentFunc(&opts.Target)
	cmd := &cobra.Command{
		Use:   "users",
		Short: "List the registry's accounts with their login methods, federated identities and superusers",
		Long: `List the accounts in the registry's database, as chapter 6.2 of the
troubleshooting guide does with SQL: each account's kind (user, robot,
organization), whether it is enabled, whether it is a superuser (named in
SUPER_USERS of config.yaml, or in quayctl serve's own table) and how it can
log in (password, a robot's token, or the federated services it is linked
to: ldap, github, oidc …). Password hashes and tokens are never read out;
only whether one is set.

  --federated   the federated identities instead (federatedlogin joined to
                loginservice and user): which external identity maps to
                which account, and identities whose account is missing
  --superusers  each name of SUPER_USERS: does the account exist, is it
                enabled, a person (not a robot or organization), and can it
                log in

Both flags together show both tables. SUPER_USERS comes from --config, or
from the deployment's config.yaml; with --db alone it is unknown.

Exit codes: 0 shown, 1 the database cannot be reached or read, 2 bad flags.`,
		Example: `  quayctl db users --podman
  quayctl db users --superusers --openshift -n quay-enterprise
  quayctl db users --federated --db 'postgresql://quayuser:PASSWORD@127.0.0.1:5432/quay' --config config.yaml -o json`,
		Args: targetArgs(exactArgs(0, "no arguments")),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := targetFromFlags(cmd.Flags())
			if err != nil {
				return err
			}
			opts.Target = t
			if err := checkOutput(opts.Output); err != nil {
				return err
			}
			if opts.SuperUsers && t.Kind == TargetDirect && t.ConfigPath == "" {
				return flagError{errors.New("--superusers checks SUPER_USERS of config.yaml: add --config config.yaml (a copy of Quay's), or name the deployment with --podman or --openshift")}
			}
			if opts.Limit < 0 {
				return flagError{fmt.Errorf("--limit %d: give a positive number, or 0 for all accounts", opts.Limit)}
			}
			if runF != nil {
				return runF(opts)
			}
			return dbUsersRun(cmd.Context(), opts)
		},
	}
	addTargetFlags(cmd)
	fl := cmd.Flags()
	fl.BoolVar(&opts.Federated, "federated", false, "show the federated identities (LDAP, GitHub, OIDC …) and the accounts they map to")
	fl.BoolVar(&opts.SuperUsers, "superusers", false, "check each name of SUPER_USERS")
	fl.IntVar(&opts.Limit, "limit", defaultUsersLimit, "list at most this many accounts (0: all)")
	addOutputFlag(cmd, &opts.Output)
	return cmd
}

func dbUsersRun(ctx context.Context, opts *DBUsersOptions) error {
	db, err := openQuayDB(ctx, opts.IO, opts.Target, opts.Deployment, "")
	if err != nil {
		return err
	}
	defer db.close()
	rep, err := diagnostics.Users(ctx, db.q, db.superUsers)
	if err != nil {
		return dbReadError(err)
	}
	res := dbUsersResult{Database: db.uri.Redacted, Config: db.config, SuperUsersKnown: db.superUsersKnown, Counts: rep.Counts, NoLogin: rep.NoLogin}
	if opts.Federated {
		res.Federated = rep.Federated
		if rep.FederatedTruncated {
			fmt.Fprintf(opts.IO.ErrOut, "quayctl: showing the first %d federated identities\n", len(rep.Federated))
		}
	}
	if opts.SuperUsers {
		if !db.superUsersKnown { // RunE refuses --db alone; this guards other callers
			return &UserError{Msg: "--superusers needs SUPER_USERS, and no config.yaml was read",
				Remedy: "add --config config.yaml (a copy of Quay's), or name the deployment with --podman or --openshift"}
		}
		res.SuperUsers = []superUserResult{}
		for _, s := range rep.SuperUsers {
			p := s.Problems()
			if p == nil {
				p = []string{}
			}
			res.SuperUsers = append(res.SuperUsers, superUserResult{SuperUser: s, Problems: p})
		}
	}
	if !opts.Federated && !opts.SuperUsers {
		limit := opts.Limit
		if limit > 0 {
			limit++ // one more, to know whether there are more
		}
		accounts, err := diagnostics.Accounts(ctx, db.q, db.superUsers, limit)
		if err != nil {
			return dbReadError(err)
		}
		if opts.Limit > 0 && len(accounts) > opts.Limit {
			accounts, res.AccountsTruncated = accounts[:opts.Limit], true
			fmt.Fprintf(opts.IO.ErrOut, "quayctl: showing the first %d accounts (--limit 0 shows all)\n", opts.Limit)
		}
		res.Accounts = accounts
		if !db.superUsersKnown && opts.Output == OutputTable {
			fmt.Fprintln(opts.IO.ErrOut, "quayctl: SUPER_USERS is unknown (no config.yaml was read): SUPERUSER shows quayctl serve's own table only — add --config to check it")
		}
	}
	return render(opts.IO.Out, opts.Output, res, func(w io.Writer) error { return dbUsersHuman(w, opts.IO.OutTTY, &res) })
}

func dbUsersHuman(w io.Writer, tty bool, res *dbUsersResult) error {
	// Titles only when both tables are shown (--superusers --federated).
	both := res.SuperUsers != nil && res.Federated != nil
	section := func(title string, first bool) error {
		if !both {
			return nil
		}
		if !first {
			if _, err := fmt.Fprintln(w); err != nil {
				return err
			}
		}
		return heading(w, tty, title)
	}
	toneOf := func(col int, v string) tone {
		switch v {
		case "yes":
			return toneGood
		case "no", "missing":
			return toneBad
		}
		return toneNone
	}
	if res.Accounts != nil {
		tb := newTable("USER", "KIND", "ENABLED", "SUPERUSER", "LOGIN")
		for _, a := range res.Accounts {
			login := strings.Join(a.LoginMethods, ",")
			if login == "" && a.Kind != diagnostics.KindOrganization {
				login = "none"
			}
			tb.row(a.Username, a.Kind, yesNo(a.Enabled), yesNo(a.Superuser), login)
			if !a.Enabled {
				tb.tone(2, toneWarn)
			}
			if login == "none" {
				tb.tone(4, toneBad)
			}
		}
		if err := tb.render(w, tty); err != nil {
			return err
		}
	}
	if res.SuperUsers != nil {
		if err := section("SUPER_USERS", true); err != nil {
			return err
		}
		tb := newTable("NAME", "EXISTS", "KIND", "ENABLED", "PASSWORD", "FEDERATED", "PROBLEM")
		tb.toneOf = func(col int, v string) tone {
			if col == 6 {
				if v == "" {
					return toneGood
				}
				return toneBad
			}
			return toneOf(col, v)
		}
		for _, s := range res.SuperUsers {
			if !s.Exists {
				tb.row(s.Username, "no", "", "", "", "", strings.Join(s.Problems, "; "))
				continue
			}
			k := "user"
			switch {
			case s.Robot:
				k = diagnostics.KindRobot
			case s.Organization:
				k = diagnostics.KindOrganization
			}
			tb.row(s.Username, "yes", k, yesNo(s.Enabled), yesNo(s.HasPassword), strings.Join(s.FederatedLogins, ","), strings.Join(s.Problems, "; "))
		}
		if len(res.SuperUsers) == 0 {
			if _, err := fmt.Fprintln(w, "SUPER_USERS is empty: nobody can use the superuser panel"); err != nil {
				return err
			}
		} else if err := tb.render(w, tty); err != nil {
			return err
		}
	}
	if res.Federated != nil {
		if err := section("Federated identities", false); err != nil {
			return err
		}
		tb := newTable("SERVICE", "IDENTITY", "USER", "KIND", "ENABLED")
		tb.toneOf = toneOf
		for _, f := range res.Federated {
			if !f.UserExists {
				tb.row(f.Service, f.ServiceIdent, fmt.Sprintf("missing (user id %d)", f.UserID), "", "")
				tb.tone(2, toneBad)
				continue
			}
			tb.row(f.Service, f.ServiceIdent, f.Username, f.Kind, yesNo(f.Enabled))
		}
		if len(res.Federated) == 0 {
			_, err := fmt.Fprintln(w, "no federated identities: nobody has logged in through LDAP, OIDC, GitHub …")
			return err
		}
		return tb.render(w, tty)
	}
	return nil
}
