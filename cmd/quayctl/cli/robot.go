package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/quayctl/quayctl/registry/auth"
	"github.com/quayctl/quayctl/registry/encfield"
	"github.com/quayctl/quayctl/registry/server"
	"github.com/quayctl/quayctl/registry/store"
)

// NewCmdRobot builds `quayctl robot`.
func NewCmdRobot(f *Factory) *cobra.Command {
	cmd := groupCmd(&cobra.Command{Use: "robot", Short: "Manage robot accounts in the database"})
	cmd.AddCommand(NewCmdRobotCreate(f, nil), NewCmdRobotToken(f, nil))
	return cmd
}

// splitRobotName splits "namespace+short".
func splitRobotName(name string) (ns, short string, err error) {
	ns, short, ok := strings.Cut(name, "+")
	if !ok || ns == "" || short == "" || strings.Contains(short, "+") {
		return "", "", flagError{fmt.Errorf("robot name %q must be NAMESPACE+NAME, such as acme+deployer", name)}
	}
	return ns, short, nil
}

// robotKey is the key robot tokens are encrypted with: DATABASE_SECRET_KEY
// from the configuration or, for the embedded default, the key `quayctl
// serve` generated next to its database.
func robotKey(cfgDBURI, configured string) ([]byte, error) {
	secret, err := server.SecretKey(server.Settings{DBURI: cfgDBURI, DatabaseSecretKey: configured})
	if err != nil {
		return nil, &UserError{Msg: "cannot read DATABASE_SECRET_KEY", Err: err}
	}
	if secret == "" {
		return nil, &UserError{Msg: "DATABASE_SECRET_KEY is not set", Remedy: "set it in config.yaml to the value the registry uses; robot tokens are encrypted with it"}
	}
	key, err := encfield.DeriveKey(secret)
	if err != nil {
		return nil, &UserError{Msg: "DATABASE_SECRET_KEY is unusable", Err: err}
	}
	return key, nil
}

// RobotCreateOptions are the flags of `quayctl robot create`.
type RobotCreateOptions struct {
	IO          *IOStreams
	Getenv      func(string) string
	ConfigPath  string
	DataDir     string
	Name        string // namespace+short
	Description string
	Output      string
}

type robotResult struct {
	Name        string `json:"name"`
	Token       string `json:"token"`
	Description string `json:"description,omitempty"`
	Regenerated bool   `json:"regenerated,omitempty"`
	Database    string `json:"database"`
}

// NewCmdRobotCreate builds `quayctl robot create`.
func NewCmdRobotCreate(f *Factory, runF func(*RobotCreateOptions) error) *cobra.Command {
	opts := &RobotCreateOptions{IO: f.IO, Getenv: f.Getenv}
	cmd := &cobra.Command{
		Use:   "create NAMESPACE+NAME",
		Short: "Create a robot account and print its token",
		Long: `Create a robot account in an organization (or a user's namespace) in the
database named by the configuration, as Quay does: the robot's user row, its
token (64 characters, stored encrypted with DATABASE_SECRET_KEY), its
federated login and metadata rows, and Quay's create_robot audit entry.

The token is printed: it is the robot's password (podman login -u
NAMESPACE+NAME). Grant the robot repository permissions through the API.

Exit codes: 0 created, 1 failed (name invalid or taken, no such namespace,
no DATABASE_SECRET_KEY, database unreachable), 2 bad flags.`,
		Example: `  quayctl robot create acme+deployer --description "CI deployments" -o json`,
		Args:    exactArgs(1, "NAMESPACE+NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Name = args[0]
			if err := checkOutput(opts.Output); err != nil {
				return err
			}
			if _, _, err := splitRobotName(opts.Name); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return robotCreateRun(cmd.Context(), opts)
		},
	}
	storeFlags(cmd, &opts.ConfigPath, &opts.DataDir)
	cmd.Flags().StringVar(&opts.Description, "description", "", "what the robot is for (at most 255 characters)")
	addOutputFlag(cmd, &opts.Output)
	return cmd
}

func robotCreateRun(ctx context.Context, opts *RobotCreateOptions) error {
	nsName, short, err := splitRobotName(opts.Name)
	if err != nil {
		return err
	}
	st, cfg, err := openStoreConfig(ctx, opts.IO.ErrOut, opts.ConfigPath, opts.DataDir, opts.Getenv)
	if err != nil {
		return err
	}
	defer st.Close()
	key, err := robotKey(cfg.DBURI, cfg.DatabaseSecretKey)
	if err != nil {
		return err
	}
	ns, err := st.UserByName(ctx, nsName)
	if errors.Is(err, store.ErrNotFound) || (err == nil && ns.Robot) {
		return &UserError{Msg: "no organization or user named " + nsName, Remedy: "create it first: quayctl org create " + nsName + " --owner USER"}
	} else if err != nil {
		return &UserError{Msg: "cannot look up namespace " + nsName, Err: err}
	}
	tok, enc, err := auth.NewRobotToken(key)
	if err != nil {
		return &UserError{Msg: "cannot generate the robot token", Err: err}
	}
	robot, err := st.CreateRobot(ctx, ns.ID, short, opts.Description, enc)
	var inv store.InvalidInputError
	switch {
	case errors.As(err, &inv):
		return &UserError{Msg: inv.Error(), Remedy: "robot names start with a letter and hold only a-z, 0-9 and _ (2 to 255 characters)"}
	case errors.Is(err, store.ErrExists):
		return &UserError{Msg: "robot " + opts.Name + " already exists", Remedy: "read its token with: quayctl robot token " + opts.Name}
	case err != nil:
		return &UserError{Msg: "cannot create the robot", Err: err}
	}
	_ = st.Log(ctx, store.LogEntry{Kind: "create_robot", AccountID: ns.ID, Metadata: map[string]any{"robot": short,
		"description": opts.Description, "unstructured_metadata": nil, "source": "quayctl robot create"}})
	res := robotResult{Name: robot.Username, Token: tok, Description: opts.Description, Database: st.Dialect()}
	return render(opts.IO.Out, opts.Output, res, func(w io.Writer) error {
		_, err := fmt.Fprintf(w, "Created robot %s in the %s database.\nToken: %s\nLog in with: podman login -u '%s' -p TOKEN REGISTRY\n",
			res.Name, res.Database, res.Token, res.Name)
		return err
	})
}

// RobotTokenOptions are the flags of `quayctl robot token`.
type RobotTokenOptions struct {
	IO         *IOStreams
	Getenv     func(string) string
	ConfigPath string
	DataDir    string
	Name       string
	Regenerate bool
	Output     string
}

// NewCmdRobotToken builds `quayctl robot token`.
func NewCmdRobotToken(f *Factory, runF func(*RobotTokenOptions) error) *cobra.Command {
	opts := &RobotTokenOptions{IO: f.IO, Getenv: f.Getenv}
	cmd := &cobra.Command{
		Use:   "token NAMESPACE+NAME [--regenerate]",
		Short: "Print a robot's token, or replace it with a new one",
		Long: `Print the token of a robot account, decrypted with DATABASE_SECRET_KEY, as
Quay's robot API shows it to the namespace's administrators. With
--regenerate, a new token replaces the old one, which stops working at once
(Quay's regenerate_robot_token audit entry is written).

Exit codes: 0 printed, 1 failed (no such robot, wrong or missing
DATABASE_SECRET_KEY, database unreachable), 2 bad flags.`,
		Example: `  quayctl robot token acme+deployer
  quayctl robot token acme+deployer --regenerate -o json`,
		Args: exactArgs(1, "NAMESPACE+NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Name = args[0]
			if err := checkOutput(opts.Output); err != nil {
				return err
			}
			if _, _, err := splitRobotName(opts.Name); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return robotTokenRun(cmd.Context(), opts)
		},
	}
	storeFlags(cmd, &opts.ConfigPath, &opts.DataDir)
	cmd.Flags().BoolVar(&opts.Regenerate, "regenerate", false, "replace the token with a new one")
	addOutputFlag(cmd, &opts.Output)
	return cmd
}

func robotTokenRun(ctx context.Context, opts *RobotTokenOptions) error {
	nsName, short, err := splitRobotName(opts.Name)
	if err != nil {
		return err
	}
	st, cfg, err := openStoreConfig(ctx, opts.IO.ErrOut, opts.ConfigPath, opts.DataDir, opts.Getenv)
	if err != nil {
		return err
	}
	defer st.Close()
	key, err := robotKey(cfg.DBURI, cfg.DatabaseSecretKey)
	if err != nil {
		return err
	}
	robot, err := st.UserByName(ctx, opts.Name)
	if errors.Is(err, store.ErrNotFound) || (err == nil && !robot.Robot) {
		return &UserError{Msg: "no robot named " + opts.Name, Remedy: "create it with: quayctl robot create " + opts.Name}
	} else if err != nil {
		return &UserError{Msg: "cannot look up robot " + opts.Name, Err: err}
	}
	res := robotResult{Name: robot.Username, Regenerated: opts.Regenerate, Database: st.Dialect()}
	if opts.Regenerate {
		tok, enc, err := auth.NewRobotToken(key)
		if err != nil {
			return &UserError{Msg: "cannot generate the robot token", Err: err}
		}
		if err := st.SetRobotToken(ctx, robot.ID, enc); err != nil {
			return &UserError{Msg: "cannot store the new token", Err: err}
		}
		res.Token = tok
		if ns, err := st.UserByName(ctx, nsName); err == nil {
			_ = st.Log(ctx, store.LogEntry{Kind: "regenerate_robot_token", AccountID: ns.ID,
				Metadata: map[string]any{"robot": short, "source": "quayctl robot token"}})
		}
	} else {
		stored, err := st.RobotToken(ctx, robot.ID)
		if err != nil {
			return &UserError{Msg: "robot " + opts.Name + " has no token", Err: err, Remedy: "give it one with --regenerate"}
		}
		if res.Token, err = auth.DecryptRobotToken(key, stored); err != nil {
			return &UserError{Msg: "cannot decrypt the token of " + opts.Name, Err: err,
				Remedy: "use the DATABASE_SECRET_KEY of the registry that created it, or replace the token with --regenerate"}
		}
	}
	return render(opts.IO.Out, opts.Output, res, func(w io.Writer) error {
		_, err := fmt.Fprintln(w, res.Token)
		return err
	})
}
