package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/quayctl/quayctl/registry/auth"
	"github.com/quayctl/quayctl/registry/store"
)

// NewCmdUser builds `quayctl user`.
func NewCmdUser(f *Factory) *cobra.Command {
	cmd := groupCmd(&cobra.Command{Use: "user", Short: "Manage registry users in the database"})
	cmd.AddCommand(NewCmdUserCreate(f, nil))
	return cmd
}

// UserCreateOptions are the flags of `quayctl user create`.
type UserCreateOptions struct {
	IO            *IOStreams
	Getenv        func(string) string
	ConfigPath    string
	DataDir       string
	Username      string
	Email         string
	PasswordStdin bool
	Superuser     bool
	Output        string
}

type userResult struct {
	Username  string `json:"username"`
	Email     string `json:"email"`
	Superuser bool   `json:"superuser"`
	Database  string `json:"database"`
}

// NewCmdUserCreate builds `quayctl user create`.
func NewCmdUserCreate(f *Factory, runF func(*UserCreateOptions) error) *cobra.Command {
	opts := &UserCreateOptions{IO: f.IO, Getenv: f.Getenv}
	cmd := &cobra.Command{
		Use:   "create USERNAME --password-stdin",
		Short: "Create a user directly in the registry database",
		Long: `Create a user in the database named by the configuration (DB_URI), with a
bcrypt (cost 12) password hash, as Quay stores it. The password is read from
standard input (one line) so it never appears in shell history or ps.

Exit codes: 0 created, 1 failed (user exists, invalid name or password,
database unreachable), 2 bad flags.`,
		Example: `  echo -n 's3cret-pass' | quayctl user create quayadmin --password-stdin --email admin@example.com --superuser`,
		Args:    exactArgs(1, "USERNAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Username = args[0]
			if err := checkOutput(opts.Output); err != nil {
				return err
			}
			if !opts.PasswordStdin {
				return flagError{errors.New("--password-stdin is required: pipe the password on standard input")}
			}
			if runF != nil {
				return runF(opts)
			}
			return userCreateRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.ConfigPath, "config", "", "path to Quay's config.yaml (default: /conf/stack/config.yaml, else the embedded default)")
	cmd.Flags().StringVar(&opts.DataDir, "data-dir", "./quay-data", "data directory of the embedded default")
	cmd.Flags().StringVar(&opts.Email, "email", "", "e-mail address")
	cmd.Flags().BoolVar(&opts.PasswordStdin, "password-stdin", false, "read the password from standard input")
	cmd.Flags().BoolVar(&opts.Superuser, "superuser", false, "make the user a registry superuser")
	addOutputFlag(cmd, &opts.Output)
	return cmd
}

func readSecretLine(in io.Reader) (string, error) {
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	return strings.TrimRight(line, "\r\n"), nil
}

func userCreateRun(ctx context.Context, opts *UserCreateOptions) error {
	if err := auth.ValidateUsername(opts.Username); err != nil {
		return &UserError{Msg: "invalid username " + fmt.Sprintf("%q", opts.Username), Err: err}
	}
	pw, err := readSecretLine(opts.IO.In)
	if err != nil {
		return &UserError{Msg: "cannot read the password from standard input", Err: err}
	}
	if pw == "" {
		return &UserError{Msg: "no password on standard input", Remedy: "pipe it in: echo -n PASSWORD | quayctl user create NAME --password-stdin"}
	}
	if err := auth.ValidatePassword(opts.Username, pw); err != nil {
		return &UserError{Msg: "the password is not acceptable", Err: err}
	}
	if opts.Email != "" {
		if a, err := mail.ParseAddress(opts.Email); err != nil || a.Address != opts.Email {
			return &UserError{Msg: fmt.Sprintf("invalid e-mail address %q", opts.Email), Remedy: "pass --email name@example.com, or omit it"}
		}
	}
	// Hash before touching the database: every check on the input happens
	// before anything is opened or written.
	hash, err := auth.HashPassword(pw)
	if err != nil {
		// bcrypt refuses passwords over 72 bytes.
		return &UserError{Msg: "the password is not acceptable", Err: err, Remedy: "use a password of at most 72 bytes"}
	}
	st, dbKind, err := openStore(ctx, opts.IO.ErrOut, opts.ConfigPath, opts.DataDir, opts.Getenv)
	if err != nil {
		return err
	}
	defer st.Close()
	u, err := st.CreateUser(ctx, store.NewUser{Username: opts.Username, Email: opts.Email, PasswordHash: hash, Verified: true, Superuser: opts.Superuser})
	if errors.Is(err, store.ErrExists) {
		// CreateUser says ErrExists for a taken username and a taken e-mail.
		if _, e := st.UserByName(ctx, opts.Username); e == nil {
			return &UserError{Msg: "user " + opts.Username + " already exists", Remedy: "choose another name, or reset the password with quayctl reset-password"}
		}
		return &UserError{Msg: fmt.Sprintf("the e-mail address %s is already used by another user", opts.Email), Remedy: "pass another --email, or omit it"}
	} else if err != nil {
		return &UserError{Msg: "cannot create the user", Err: err}
	}
	_ = st.Log(ctx, store.LogEntry{Kind: "user_create", AccountID: u.ID, Metadata: map[string]any{"username": u.Username, "source": "quayctl user create"}})
	res := userResult{Username: u.Username, Email: opts.Email, Superuser: opts.Superuser, Database: dbKind}
	return render(opts.IO.Out, opts.Output, res, func(w io.Writer) error {
		su := ""
		if res.Superuser {
			su = " (superuser)"
		}
		_, err := fmt.Fprintf(w, "Created user %s%s in the %s database.\n", res.Username, su, res.Database)
		return err
	})
}

// openStore opens (and migrates) the database the configuration names; the
// store logs (migrations applied) to errOut.
func openStore(ctx context.Context, errOut io.Writer, configPath, dataDir string, getenv func(string) string) (store.Store, string, error) {
	cfg, err := loadConfig(configPath, dataDir, ":8080", getenv)
	if err != nil {
		return nil, "", err
	}
	if cfg.Source().Embedded {
		// As serve does: the first command run on a machine may be this one.
		if err := os.MkdirAll(dataDir, 0o750); err != nil {
			return nil, "", &UserError{Msg: "cannot create the data directory " + dataDir, Err: err, Remedy: "choose a writable --data-dir"}
		}
	}
	st, err := store.Open(ctx, cfg.DBURI)
	if err != nil {
		return nil, "", &UserError{Msg: "cannot open the database", Err: err}
	}
	st.SetLogger(newLogger(errOut, getenv))
	if err := st.Migrate(ctx); err != nil {
		st.Close()
		return nil, "", &UserError{Msg: "cannot apply database migrations", Err: err}
	}
	return st, st.Dialect(), nil
}
