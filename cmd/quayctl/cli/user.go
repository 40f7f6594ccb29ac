package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/quayctl/quayctl/registry/auth"
	"github.com/quayctl/quayctl/registry/config"
	"github.com/quayctl/quayctl/registry/store"
)

// NewCmdUser builds `quayctl user`.
func NewCmdUser(f *Factory) *cobra.Command {
	cmd := groupCmd(&cobra.Command{Use: "user", Short: "Manage registry users in the database"})
	cmd.AddCommand(NewCmdUserCreate(f, nil), NewCmdUserList(f, nil),
		NewCmdUserSetEnabled(f, nil, false), NewCmdUserSetEnabled(f, nil, true))
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
	st, _, err := openStoreConfig(ctx, errOut, configPath, dataDir, getenv)
	if err != nil {
		return nil, "", err
	}
	return st, st.Dialect(), nil
}

// openStoreConfig is openStore that also returns the configuration.
func openStoreConfig(ctx context.Context, errOut io.Writer, configPath, dataDir string, getenv func(string) string) (store.Store, *config.Config, error) {
	cfg, err := loadConfig(configPath, dataDir, ":8080", getenv)
	if err != nil {
		return nil, nil, err
	}
	if cfg.Source().Embedded {
		// As serve does: the first command run on a machine may be this one.
		if err := os.MkdirAll(dataDir, 0o750); err != nil {
			return nil, nil, &UserError{Msg: "cannot create the data directory " + dataDir, Err: err, Remedy: "choose a writable --data-dir"}
		}
	}
	st, err := store.Open(ctx, cfg.DBURI)
	if err != nil {
		return nil, nil, &UserError{Msg: "cannot open the database", Err: err}
	}
	st.SetLogger(newLogger(errOut, getenv))
	// Namespaces created offline get DEFAULT_TAG_EXPIRATION, as serve's do.
	if d, err := cfg.DefaultTagExpiration(); err == nil {
		st.SetDefaultTagExpiration(d)
	}
	if err := st.Migrate(ctx); err != nil {
		st.Close()
		return nil, nil, &UserError{Msg: "cannot apply database migrations", Err: err}
	}
	return st, cfg, nil
}

// storeFlags are the flags of the offline commands that open the database.
func storeFlags(cmd *cobra.Command, configPath, dataDir *string) {
	cmd.Flags().StringVar(configPath, "config", "", "path to Quay's config.yaml (default: /conf/stack/config.yaml, else the embedded default)")
	cmd.Flags().StringVar(dataDir, "data-dir", "./quay-data", "data directory of the embedded default")
}

// UserListOptions are the flags of `quayctl user list`.
type UserListOptions struct {
	IO         *IOStreams
	Getenv     func(string) string
	ConfigPath string
	DataDir    string
	Output     string
}

type userListEntry struct {
	Username  string `json:"username"`
	Email     string `json:"email"`
	Enabled   bool   `json:"enabled"`
	Superuser bool   `json:"superuser"`
	Verified  bool   `json:"verified"`
}

type userListResult struct {
	Users []userListEntry `json:"users"`
}

// NewCmdUserList builds `quayctl user list`.
func NewCmdUserList(f *Factory, runF func(*UserListOptions) error) *cobra.Command {
	opts := &UserListOptions{IO: f.IO, Getenv: f.Getenv}
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the registry's users (people, not organizations or robots)",
		Long: `List the users in the database named by the configuration, with whether
each is enabled and a superuser (SUPER_USERS or recorded in the database).

Exit codes: 0 listed, 1 failed (database unreachable), 2 bad flags.`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(opts.Output); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return userListRun(cmd.Context(), opts)
		},
	}
	storeFlags(cmd, &opts.ConfigPath, &opts.DataDir)
	addOutputFlag(cmd, &opts.Output)
	return cmd
}

func userListRun(ctx context.Context, opts *UserListOptions) error {
	st, cfg, err := openStoreConfig(ctx, opts.IO.ErrOut, opts.ConfigPath, opts.DataDir, opts.Getenv)
	if err != nil {
		return err
	}
	defer st.Close()
	users, err := st.ListUsers(ctx)
	if err != nil {
		return &UserError{Msg: "cannot list users", Err: err}
	}
	supers, err := st.Superusers(ctx)
	if err != nil {
		return &UserError{Msg: "cannot list superusers", Err: err}
	}
	res := userListResult{Users: []userListEntry{}}
	for _, u := range users {
		res.Users = append(res.Users, userListEntry{Username: u.Username, Email: u.Email, Enabled: u.Enabled,
			Verified: u.Verified, Superuser: slices.Contains(supers, u.Username) || cfg.IsSuperUser(u.Username)})
	}
	return render(opts.IO.Out, opts.Output, res, func(w io.Writer) error {
		tb := newTable("USERNAME", "EMAIL", "ENABLED", "SUPERUSER")
		for _, u := range res.Users {
			tb.row(u.Username, u.Email, strconv.FormatBool(u.Enabled), strconv.FormatBool(u.Superuser))
			if !u.Enabled {
				tb.tone(2, toneBad)
			}
		}
		return tb.render(w, opts.IO.OutTTY)
	})
}

// UserSetEnabledOptions are the flags of `quayctl user disable|enable`.
type UserSetEnabledOptions struct {
	IO         *IOStreams
	Getenv     func(string) string
	ConfigPath string
	DataDir    string
	Username   string
	Enable     bool
	Output     string
}

type userEnabledResult struct {
	Username string `json:"username"`
	Enabled  bool   `json:"enabled"`
	Changed  bool   `json:"changed"`
}

// NewCmdUserSetEnabled builds `quayctl user enable` (enable) or
// `quayctl user disable`.
func NewCmdUserSetEnabled(f *Factory, runF func(*UserSetEnabledOptions) error, enable bool) *cobra.Command {
	opts := &UserSetEnabledOptions{IO: f.IO, Getenv: f.Getenv, Enable: enable}
	verb, effect := "disable", "cannot log in, pull or push, and its tokens and robots stop working, until enabled again"
	if enable {
		verb, effect = "enable", "can log in again"
	}
	cmd := &cobra.Command{
		Use:   verb + " USERNAME",
		Short: strings.ToUpper(verb[:1]) + verb[1:] + " a user in the database",
		Long: `Set user.enabled in the database named by the configuration, as Quay's
superuser panel does, and write Quay's user_` + verb + ` audit entry. A disabled user
` + effect + `.

Exit codes: 0 done (or already so), 1 failed (no such user, database
unreachable), 2 bad flags.`,
		Example: "  quayctl user " + verb + " alice --config /conf/stack/config.yaml",
		Args:    exactArgs(1, "USERNAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Username = args[0]
			if err := checkOutput(opts.Output); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return userSetEnabledRun(cmd.Context(), opts)
		},
	}
	storeFlags(cmd, &opts.ConfigPath, &opts.DataDir)
	addOutputFlag(cmd, &opts.Output)
	return cmd
}

func userSetEnabledRun(ctx context.Context, opts *UserSetEnabledOptions) error {
	st, _, err := openStoreConfig(ctx, opts.IO.ErrOut, opts.ConfigPath, opts.DataDir, opts.Getenv)
	if err != nil {
		return err
	}
	defer st.Close()
	u, err := st.UserByName(ctx, opts.Username)
	if errors.Is(err, store.ErrNotFound) || (err == nil && (u.Organization || u.Robot)) {
		return &UserError{Msg: "no user named " + opts.Username, Remedy: "check the name with: quayctl user list"}
	} else if err != nil {
		return &UserError{Msg: "cannot look up user " + opts.Username, Err: err}
	}
	res := userEnabledResult{Username: u.Username, Enabled: opts.Enable, Changed: u.Enabled != opts.Enable}
	if res.Changed {
		if err := st.SetUserEnabled(ctx, u.ID, opts.Enable); err != nil {
			return &UserError{Msg: "cannot change user " + u.Username, Err: err}
		}
		kind := "user_disable"
		if opts.Enable {
			kind = "user_enable"
		}
		_ = st.Log(ctx, store.LogEntry{Kind: kind, AccountID: u.ID, Metadata: map[string]any{"username": u.Username, "source": "quayctl user"}})
	}
	return render(opts.IO.Out, opts.Output, res, func(w io.Writer) error {
		state := map[bool]string{true: "enabled", false: "disabled"}[res.Enabled]
		if !res.Changed {
			_, err := fmt.Fprintf(w, "User %s is already %s.\n", res.Username, state)
			return err
		}
		_, err := fmt.Fprintf(w, "User %s is now %s.\n", res.Username, state)
		return err
	})
}
