package cli

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/quayctl/quayctl/collectors"
	"github.com/quayctl/quayctl/dbtools/password"
	"github.com/quayctl/quayctl/dbtools/pg"
)

// stackConfigPath is where Quay's container reads config.yaml.
const stackConfigPath = "/conf/stack/config.yaml"

// verifyFromConfig is what a bare --verify stores: the registry's URL from
// --url, else PREFERRED_URL_SCHEME://SERVER_HOSTNAME of the config.
const verifyFromConfig = "auto"

// ResetPasswordOptions are the flags of `quayctl reset-password`.
type ResetPasswordOptions struct {
	IO         *IOStreams
	Target     TargetOptions
	Deployment func(context.Context) (collectors.Deployment, error)
	// HTTPClient is used by --verify; nil: a client with a 30 s timeout.
	HTTPClient func(insecure bool) *http.Client
	// ReadHidden reads a line from the terminal without echo; nil: the
	// terminal's own (Linux), or a plain line when standard input is not a file.
	ReadHidden func() (string, error)

	Username       string
	Via            string
	PasswordStdin  bool
	Generate       bool
	Yes            bool
	DryRun         bool
	PrintHash      bool
	Verify         string // "" = no check; verifyFromConfig = the registry's URL
	VerifyInsecure bool
	Output         string
}

// resetPasswordResult is the stable output of the command (-o json|yaml).
type resetPasswordResult struct {
	Username          string                 `json:"username"`
	User              *password.UserInfo     `json:"user"`
	Via               string                 `json:"via"`
	Database          string                 `json:"database"`
	Config            string                 `json:"config,omitempty"` // where DB_URI and SUPER_USERS came from
	SuperUsersKnown   bool                   `json:"super_users_known"`
	Fallbacks         []string               `json:"fallbacks,omitempty"` // ways tried before, and why they failed
	DryRun            bool                   `json:"dry_run"`
	Changed           bool                   `json:"changed"`
	Change            *password.Change       `json:"change,omitempty"`
	PasswordHash      string                 `json:"password_hash,omitempty"`      // only with --print-hash
	GeneratedPassword string                 `json:"generated_password,omitempty"` // only with --generate
	Verify            *password.Verification `json:"verify,omitempty"`
	Warnings          []string               `json:"warnings,omitempty"`
}

// NewCmdResetPassword builds `quayctl reset-password`.
func NewCmdResetPassword(f *Factory, runF func(*ResetPasswordOptions) error) *cobra.Command {
	opts := &ResetPasswordOptions{IO: f.IO}
	opts.Deployment = f.deploymentFunc(&opts.Target)
	cmd := &cobra.Command{
		Use:   "reset-password USERNAME",
		Short: "Reset a user's password in the registry database (a locked-out superuser's, for instance)",
		Long: `Reset the password of a Quay user directly in the registry's database, as
chapters 6.1.2 (standalone) and 6.1.3 (Operator) of the troubleshooting guide
do by hand, with the checks a careful administrator makes:

  - the account is looked up first and shown (e-mail, superuser, enabled,
    verified, failed logins); organizations and robots are refused, an
    unknown name gets the nearest usernames suggested, and a damaged
    database with duplicate usernames is refused;
  - the new password must have at least 8 characters, no whitespace, and
    differ from the username; it is hashed with bcrypt at cost 12 as Quay
    does, and neither it nor the hash is shown (unless --print-hash);
  - the change is one transaction: password_hash, invalid_login_attempts
    reset to 0 (so a locked-out account can log in again), exactly one row
    or a rollback, and an audit row in logentry3 (user_change_password).

The new password comes from a prompt without echo (asked twice), from
standard input (--password-stdin, one line), or is generated (--generate,
printed once at the end).

The database is reached one of three ways, tried in this order unless
--via forces one:
  direct  pgx to DB_URI (--db, DB_URI of --config, or of the target's own
          config.yaml, read from the quay component)
  sqlite  a SQLite DB_URI (quayctl serve's embedded default, mirror-registry)
  exec    psql inside the database component (podman exec, or the pod's exec
          on OpenShift), user and database from its POSTGRESQL_USER and
          POSTGRESQL_DATABASE; values travel as psql variables, never as SQL

Before writing, quayctl asks for confirmation; --yes skips it, and without a
terminal --yes is required. --dry-run does everything but the write.
--verify logs in with the new password afterwards (the Docker token flow at
/v2/auth) and reports the registry's answer. See docs/reset-password.md,
also for the manual fallback with --print-hash.

Exit codes: 0 reset (or dry run passed), 1 refused or failed (nothing was
changed, unless the output says so; a failed --verify after the change also
exits 1), 2 bad flags or arguments.`,
		Example: `  # A standalone deployment on podman: prompts for the password, shows the user, asks
  sudo quayctl reset-password quayadmin --podman

  # An Operator deployment; the database pod's psql is used when the service is not reachable
  quayctl reset-password quayadmin --openshift -n quay-enterprise --verify

  # A database reachable from here, in a script
  echo -n "$NEW_PASSWORD" | quayctl reset-password quayadmin --password-stdin --yes \
      --db 'postgresql://quayuser:PASSWORD@quay-server.example.com:5432/quay'

  # quayctl serve's embedded default, with a generated password
  quayctl reset-password admin --db sqlite:///quay-data/quay.db --generate --yes

  # Only the hash, to apply by hand
  quayctl reset-password quayadmin --config /etc/quay/config.yaml --dry-run --print-hash`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 2 && opts.Verify == verifyFromConfig && strings.Contains(args[1], "://") {
				return argsError{fmt.Errorf("--verify takes its URL after '=': --verify=%s", args[1])}
			}
			return exactArgs(1, "USERNAME")(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := targetFromFlags(cmd.Flags())
			if err != nil {
				return err
			}
			opts.Target = t
			opts.Username = args[0]
			if err := checkOutput(opts.Output); err != nil {
				return err
			}
			if err := checkResetPasswordFlags(opts); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return resetPasswordRun(cmd.Context(), opts)
		},
	}
	addTargetFlags(cmd)
	fl := cmd.Flags()
	fl.StringVar(&opts.Via, "via", "", "force one way to the database: direct, sqlite or exec (default: try them in that order)")
	fl.BoolVar(&opts.PasswordStdin, "password-stdin", false, "read the new password from standard input (one line)")
	fl.BoolVar(&opts.Generate, "generate", false, "generate a strong random password and print it once at the end")
	fl.BoolVarP(&opts.Yes, "yes", "y", false, "do not ask for confirmation")
	fl.BoolVar(&opts.DryRun, "dry-run", false, "look up and check everything, hash the password, but change nothing")
	fl.BoolVar(&opts.PrintHash, "print-hash", false, "show the bcrypt hash (for applying it by hand)")
	fl.StringVar(&opts.Verify, "verify", "", "after the change, log in with the new password at `URL` (bare --verify: --url, else SERVER_HOSTNAME of the config)")
	fl.Lookup("verify").NoOptDefVal = verifyFromConfig
	fl.BoolVar(&opts.VerifyInsecure, "verify-insecure", false, "do not verify the registry's TLS certificate for --verify")
	addOutputFlag(cmd, &opts.Output)
	return cmd
}

// checkResetPasswordFlags refuses contradictory flags before anything runs.
func checkResetPasswordFlags(opts *ResetPasswordOptions) error {
	if opts.Via != "" && !slices.Contains(password.Vias, opts.Via) {
		return flagError{fmt.Errorf("--via %q is not one of %s", opts.Via, strings.Join(password.Vias, ", "))}
	}
	if opts.PasswordStdin && opts.Generate {
		return flagError{errors.New("--password-stdin and --generate exclude each other: choose where the new password comes from")}
	}
	if strings.TrimSpace(opts.Username) == "" {
		return argsError{errors.New("USERNAME is empty")}
	}
	if opts.DryRun && opts.Verify != "" {
		return flagError{errors.New("--verify logs in with the new password, which --dry-run does not store: drop one of them")}
	}
	if opts.Via == password.ViaExec && opts.Target.Kind == TargetDirect {
		return flagError{errors.New("--via exec runs psql in the database container: name the deployment with --podman or --openshift instead of --db/--config")}
	}
	if !opts.PasswordStdin && !opts.Generate && !opts.IO.InTTY {
		return &UserError{Msg: "no new password: standard input is not a terminal, so quayctl cannot prompt",
			Remedy: "pipe it in with --password-stdin, or use --generate"}
	}
	if !opts.Yes && !opts.DryRun && !opts.IO.InTTY {
		return &UserError{Msg: "refusing to change a password without confirmation: there is no terminal to ask on",
			Remedy: "check the user first with --dry-run, then add --yes"}
	}
	return nil
}

func resetPasswordRun(ctx context.Context, opts *ResetPasswordOptions) error {
	in := bufio.NewReader(opts.IO.In)
	res := resetPasswordResult{Username: opts.Username, DryRun: opts.DryRun}

	// 1. The new password from stdin or the generator: checked before any
	// connection is made. (A prompted one comes after the look-up, so that
	// a mistyped username fails before the password is typed twice.)
	var pw string
	switch {
	case opts.PasswordStdin:
		line, err := readSecretLine(in)
		if err != nil {
			return &UserError{Msg: "cannot read the new password from standard input", Err: err}
		}
		if line == "" {
			return &UserError{Msg: "no password on standard input (it was empty)",
				Remedy: "pipe the new password in: printf '%s' \"$NEW_PASSWORD\" | quayctl reset-password " + opts.Username + " --password-stdin --yes"}
		}
		if err := password.Validate(opts.Username, line); err != nil {
			return &UserError{Msg: err.Error()}
		}
		pw = line
	case opts.Generate:
		g, err := password.Generate()
		if err != nil {
			return err
		}
		pw = g
		res.GeneratedPassword = g
	}

	// 2. Where the database is, and the configuration (DB_URI, SUPER_USERS).
	cfg, dep, err := resetPasswordTarget(ctx, opts, &res)
	if err != nil {
		if hashOnly(opts) {
			return resetPasswordHashOnly(opts, in, &res, pw, err)
		}
		return err
	}
	dbURI := cfg.DBURI
	if opts.Target.DBURI != "" {
		dbURI = opts.Target.DBURI
	}
	tg, failed, err := password.Open(ctx, password.OpenOptions{Via: opts.Via, DBURI: dbURI, ConnectionArgs: cfg.DBConnectionArgs, Deployment: dep})
	for _, a := range failed {
		res.Fallbacks = append(res.Fallbacks, a.Via+": "+a.Err.Error())
	}
	if err != nil {
		err = openError(err)
		if hashOnly(opts) {
			return resetPasswordHashOnly(opts, in, &res, pw, err)
		}
		return err
	}
	defer tg.Close()
	res.Via, res.Database = tg.Via(), tg.String()
	if len(failed) > 0 && opts.Output == OutputTable {
		for _, a := range failed {
			fmt.Fprintf(opts.IO.ErrOut, "Note: %s did not work (%v); using %s.\n", a.Via, a.Err, tg.Via())
		}
	}

	// 3. Who will be changed.
	u, err := password.Lookup(ctx, tg, opts.Username, cfg.SuperUsers)
	if err != nil {
		return lookupError(err)
	}
	res.User = &u
	res.Warnings = append(res.Warnings, resetWarnings(u, cfg, res.SuperUsersKnown)...)

	interactive := !opts.Yes && !opts.DryRun
	if interactive || (pw == "" && opts.Output == OutputTable) {
		fmt.Fprintf(opts.IO.ErrOut, "The password of this account will be reset:\n")
		writeUserBlock(opts.IO.ErrOut, &res, "  ")
		for _, w := range res.Warnings {
			fmt.Fprintf(opts.IO.ErrOut, "Warning: %s\n", w)
		}
	}

	// 4. A prompted password: twice, without echo.
	if pw == "" {
		p, err := promptNewPassword(opts, in)
		if err != nil {
			return err
		}
		pw = p
	}
	hash, err := password.Hash(pw)
	if err != nil {
		return &UserError{Msg: "cannot hash the new password", Err: err}
	}
	if opts.PrintHash {
		res.PasswordHash = hash
	}

	// 5. Confirmation.
	if interactive {
		fmt.Fprintf(opts.IO.ErrOut, "Reset the password of %q in %s? [y/N] ", u.Username, tg.String())
		answer, err := in.ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return &UserError{Msg: "cannot read the answer", Err: err}
		}
		if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
			return &UserError{Msg: "not confirmed: nothing was changed", Remedy: "answer y to reset the password, or pass --yes"}
		}
	}

	// 6. The change.
	if !opts.DryRun {
		ch, err := tg.Apply(ctx, u.Username, hash)
		if err != nil {
			return applyError(err)
		}
		res.Changed, res.Change = true, &ch
		if ch.AuditSkipped != "" {
			res.Warnings = append(res.Warnings, "no audit row was written: "+ch.AuditSkipped)
		}
	}

	// 7. The login check.
	var verifyErr error
	if opts.Verify != "" {
		verifyErr = verifyLogin(ctx, opts, cfg, &res, pw)
	}

	if err := render(opts.IO.Out, opts.Output, res, func(w io.Writer) error { return resetPasswordHuman(w, &res) }); err != nil {
		return err
	}
	if verifyErr != nil {
		return verifyErr
	}
	if res.Verify != nil && !res.Verify.OK {
		fmt.Fprintf(opts.IO.ErrOut, "Error: the password was reset, but logging in with it failed: %s\n", res.Verify.Detail)
		return &exitCodeError{code: ExitError}
	}
	return nil
}

// hashOnly is the manual fallback: --dry-run --print-hash still gives the
// hash when the database cannot be reached, so that an administrator can
// apply it by hand.
func hashOnly(opts *ResetPasswordOptions) bool { return opts.DryRun && opts.PrintHash }

// resetPasswordHashOnly prints the hash with the reason the account was not
// checked.
func resetPasswordHashOnly(opts *ResetPasswordOptions, in *bufio.Reader, res *resetPasswordResult, pw string, cause error) error {
	res.Warnings = append(res.Warnings, "the account was not checked, because the database could not be reached: "+cause.Error())
	if pw == "" {
		p, err := promptNewPassword(opts, in)
		if err != nil {
			return err
		}
		pw = p
	}
	hash, err := password.Hash(pw)
	if err != nil {
		return &UserError{Msg: "cannot hash the new password", Err: err}
	}
	res.PasswordHash = hash
	return render(opts.IO.Out, opts.Output, res, func(w io.Writer) error { return resetPasswordHuman(w, res) })
}

// resetPasswordTarget reads the configuration and opens the deployment the
// target flags name. For a direct target (--db, --config) there is no
// deployment; otherwise config.yaml is read from the quay component.
func resetPasswordTarget(ctx context.Context, opts *ResetPasswordOptions, res *resetPasswordResult) (pg.QuayConfig, collectors.Deployment, error) {
	var cfg pg.QuayConfig
	if opts.Target.Kind == TargetDirect {
		if opts.Target.ConfigPath != "" {
			c, err := pg.ReadQuayConfig(opts.Target.ConfigPath)
			if err != nil {
				return cfg, nil, &UserError{Msg: "cannot read --config " + opts.Target.ConfigPath, Err: err, Remedy: "give the path of Quay's config.yaml (or of the directory holding it)"}
			}
			cfg = c
			res.Config = opts.Target.ConfigPath
			res.SuperUsersKnown = true
		}
		if opts.Target.DBURI == "" && cfg.DBURI == "" {
			if res.Config != "" {
				return cfg, nil, &UserError{Msg: res.Config + " has no DB_URI", Remedy: "pass --db URI"}
			}
			return cfg, nil, &UserError{Msg: "no database given", Remedy: "pass --db URI or --config config.yaml, or name the deployment with --podman or --openshift"}
		}
		return cfg, nil, nil
	}
	dep, err := opts.Deployment(ctx)
	if err != nil {
		return cfg, nil, deploymentError("cannot reach the deployment", err)
	}
	res.Config = fmt.Sprintf("%s (%s) quay component, %s", dep.Kind(), dep.Name(), stackConfigPath)
	rc, err := dep.ReadFile(ctx, collectors.ComponentQuay, stackConfigPath)
	if err == nil {
		b, rerr := io.ReadAll(io.LimitReader(rc, 4<<20))
		rc.Close()
		if rerr == nil {
			if c, perr := pg.ParseQuayConfig(b); perr == nil {
				res.SuperUsersKnown = true
				return c, dep, nil
			} else {
				err = perr
			}
		} else {
			err = rerr
		}
	}
	// Without the config, exec still works (POSTGRESQL_USER/DATABASE of the
	// database component); say what is missing.
	res.Warnings = append(res.Warnings, fmt.Sprintf("cannot read %s from the quay component (%v): SUPER_USERS and DB_URI are unknown; pass --config with a copy to use them", stackConfigPath, err))
	res.Config = ""
	return cfg, dep, nil
}

// resetWarnings are facts that may make the new password useless.
func resetWarnings(u password.UserInfo, cfg pg.QuayConfig, superUsersKnown bool) []string {
	var w []string
	if !u.Enabled {
		w = append(w, "the account is disabled: Quay refuses its logins whatever the password — enable it in the superuser panel (or UPDATE \"user\" SET enabled = true)")
	}
	if at := cfg.AuthenticationType; at != "" && !strings.EqualFold(at, "Database") && !strings.EqualFold(at, "AppToken") {
		w = append(w, fmt.Sprintf("AUTHENTICATION_TYPE is %s: Quay checks passwords against it, not against its database, so the new password will not log in (reset it in %s instead)", at, at))
	}
	if !superUsersKnown {
		w = append(w, "SUPER_USERS is unknown (no config.yaml was read), so superuser shows only quayctl's own table — pass --config to check it")
	}
	return w
}

// promptNewPassword asks twice on the terminal, without echo.
func promptNewPassword(opts *ResetPasswordOptions, in *bufio.Reader) (string, error) {
	read := opts.ReadHidden
	if read == nil {
		read = func() (string, error) {
			if f, ok := opts.IO.In.(*os.File); ok {
				s, err := password.ReadHidden(f)
				fmt.Fprintln(opts.IO.ErrOut) // the Enter the terminal did not echo
				return s, err
			}
			return readSecretLine(in)
		}
	}
	fmt.Fprintf(opts.IO.ErrOut, "New password for %s: ", opts.Username)
	first, err := read()
	if err != nil {
		return "", &UserError{Msg: "cannot read the new password", Err: err, Remedy: "use --password-stdin or --generate"}
	}
	if err := password.Validate(opts.Username, first); err != nil {
		return "", &UserError{Msg: err.Error() + " (nothing was changed)"}
	}
	fmt.Fprintf(opts.IO.ErrOut, "Repeat the new password: ")
	second, err := read()
	if err != nil {
		return "", &UserError{Msg: "cannot read the new password", Err: err, Remedy: "use --password-stdin or --generate"}
	}
	if first != second {
		return "", &UserError{Msg: "the two passwords differ: nothing was changed", Remedy: "run the command again and type the same password twice"}
	}
	return first, nil
}

// verifyLogin runs --verify.
func verifyLogin(ctx context.Context, opts *ResetPasswordOptions, cfg pg.QuayConfig, res *resetPasswordResult, pw string) error {
	u := opts.Verify
	if u == verifyFromConfig {
		u = opts.Target.URL
		if u == "" {
			u = cfg.RegistryURL()
		}
		if u == "" {
			return &UserError{Msg: "the password was reset, but --verify has no URL: the config has no SERVER_HOSTNAME",
				Remedy: "check it with --verify=https://quay.example.com"}
		}
	}
	client := newVerifyClient(opts)
	vctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	v, err := password.Verify(vctx, client, u, res.User.Username, pw)
	if err != nil {
		return &UserError{Msg: "the password was reset, but the login check could not run", Err: err}
	}
	res.Verify = &v
	return nil
}

func newVerifyClient(opts *ResetPasswordOptions) *http.Client {
	if opts.HTTPClient != nil {
		return opts.HTTPClient(opts.VerifyInsecure)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if opts.VerifyInsecure {
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // the administrator asked for it
	}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// openError turns a failure to reach the database into a UserError.
func openError(err error) error {
	var ue *UserError
	var oe *password.OpenError
	switch {
	case errors.As(err, &ue):
		return err
	case errors.Is(err, password.ErrNoDatabase):
		return &UserError{Msg: err.Error()}
	case errors.As(err, &oe) && len(oe.Attempts) > 1:
		return &UserError{Msg: err.Error(), Remedy: "fix one of these ways, or force one with --via; for the manual fallback (docs/reset-password.md), --dry-run --print-hash gives the hash"}
	}
	return &UserError{Msg: "cannot reach the registry's database", Err: err}
}

// lookupError explains a refused look-up; nothing was changed.
func lookupError(err error) error {
	var nf *password.NotFoundError
	var np *password.NotAPersonError
	var de *password.DuplicateError
	var nq *password.NotQuayError
	switch {
	case errors.As(err, &nf), errors.As(err, &np), errors.As(err, &de), errors.As(err, &nq):
		return &UserError{Msg: err.Error() + " (nothing was changed)"}
	}
	return &UserError{Msg: "cannot look the user up (nothing was changed)", Err: err}
}

// applyError explains a failed change; the transaction was rolled back.
func applyError(err error) error {
	return &UserError{Msg: "the password was not changed", Err: err, Remedy: "the transaction was rolled back; fix the cause and run the command again"}
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// writeUserBlock prints who is (or would be) changed.
func writeUserBlock(w io.Writer, res *resetPasswordResult, indent string) {
	u := res.User
	su := yesNo(u.Superuser)
	if u.Superuser {
		su += " (" + strings.Join(u.SuperuserSources, ", ") + ")"
	} else if !res.SuperUsersKnown {
		su += " (SUPER_USERS unknown)"
	}
	email := u.Email
	if email == "" {
		email = "-"
	}
	attempts := fmt.Sprint(u.InvalidLoginAttempts)
	if u.InvalidLoginAttempts > 0 && u.LastInvalidLogin != nil {
		attempts += ", the last at " + u.LastInvalidLogin.UTC().Format("2006-01-02 15:04:05 UTC")
	}
	rows := [][2]string{
		{"Username", u.Username},
		{"Email", email},
		{"Superuser", su},
		{"Enabled", yesNo(u.Enabled)},
		{"Verified", yesNo(u.Verified)},
		{"Failed logins", attempts},
		{"Database", res.Database + " (" + res.Via + ")"},
	}
	if res.Config != "" {
		rows = append(rows, [2]string{"Config", res.Config})
	}
	for _, r := range rows {
		fmt.Fprintf(w, "%s%-14s %s\n", indent, r[0]+":", r[1])
	}
}

// resetPasswordHuman is the table form.
func resetPasswordHuman(w io.Writer, res *resetPasswordResult) error {
	if res.User == nil { // the manual fallback: a hash, no account
		fmt.Fprintf(w, "Dry run: nothing was changed, and the account %s was not checked.\n", res.Username)
		fmt.Fprintf(w, "  %-14s %s\n", "Hash:", res.PasswordHash)
		for _, warn := range res.Warnings {
			fmt.Fprintf(w, "Warning: %s\n", warn)
		}
		fmt.Fprintf(w, "Apply it by hand as docs/reset-password.md shows (UPDATE \"user\" SET password_hash = '…', invalid_login_attempts = 0 WHERE username = '%s').\n", res.Username)
		if res.GeneratedPassword != "" {
			fmt.Fprintf(w, "Generated password (matches the hash; store it now): %s\n", res.GeneratedPassword)
		}
		return nil
	}
	if res.DryRun {
		fmt.Fprintf(w, "Dry run: the password of %s would be reset; nothing was changed.\n", res.User.Username)
	} else {
		fmt.Fprintf(w, "Password of %s reset.\n", res.User.Username)
	}
	writeUserBlock(w, res, "  ")
	if res.Change != nil {
		if res.User.InvalidLoginAttempts > 0 {
			fmt.Fprintf(w, "  %-14s reset to 0 (was %d)\n", "Failed logins:", res.User.InvalidLoginAttempts)
		}
		if res.Change.Audited {
			fmt.Fprintf(w, "  %-14s logentry3, kind %s\n", "Audit:", password.AuditKind)
		} else {
			fmt.Fprintf(w, "  %-14s none (%s)\n", "Audit:", res.Change.AuditSkipped)
		}
	}
	if res.PasswordHash != "" {
		fmt.Fprintf(w, "  %-14s %s\n", "Hash:", res.PasswordHash)
	}
	for _, warn := range res.Warnings {
		fmt.Fprintf(w, "Warning: %s\n", warn)
	}
	if v := res.Verify; v != nil {
		status := "FAILED"
		if v.OK {
			status = "OK"
		}
		fmt.Fprintf(w, "Login check at %s: %s — %s\n", v.URL, status, v.Detail)
	}
	if res.GeneratedPassword != "" {
		if res.DryRun {
			fmt.Fprintf(w, "Generated password (not stored, dry run): %s\n", res.GeneratedPassword)
		} else {
			fmt.Fprintf(w, "New password (shown once, store it now): %s\n", res.GeneratedPassword)
		}
	}
	return nil
}
