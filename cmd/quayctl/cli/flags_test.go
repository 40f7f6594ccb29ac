package cli

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/quayctl/quayctl/internal/version"
)

const usageHint = "Run 'quayctl --help' for usage.\n"

// usageErr is the exact stderr of a flag or argument error.
func usageErr(msg string) string { return "Error: " + msg + "\n" + usageHint }

// flagCase is one row of an argv → options table: either want (the options
// runF received, with IO and hooks cleared) or wantStderr (exit 2, runF not
// called).
type flagCase[O any] struct {
	name       string
	args       []string
	want       O
	wantStderr string
}

// runFlagTable runs each case through the real command tree, with the
// command at path replaced by build(runF).
func runFlagTable[O any](t *testing.T, path []string, build func(*Factory, func(*O) error) *cobra.Command, clear func(*O), tests []flagCase[O]) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			io, out, errOut := testIO("")
			f := testFactory(io, nil)
			var got *O
			cmd := build(f, func(o *O) error { c := *o; got = &c; return nil })
			root := withCmd(t, f, cmd, path...)
			code := execute(context.Background(), root, tt.args, io.ErrOut)
			if tt.wantStderr != "" {
				if code != ExitUsage {
					t.Errorf("exit code = %d, want %d", code, ExitUsage)
				}
				if got != nil {
					t.Errorf("runF was called with %+v", *got)
				}
				if errOut.String() != tt.wantStderr {
					t.Errorf("stderr:\n got %q\nwant %q", errOut.String(), tt.wantStderr)
				}
				if out.String() != "" {
					t.Errorf("stdout = %q, want nothing", out.String())
				}
				return
			}
			if code != ExitOK || errOut.String() != "" {
				t.Fatalf("exit code = %d, stderr = %q", code, errOut.String())
			}
			if got == nil {
				t.Fatal("runF was not called")
			}
			clear(got)
			if fmt.Sprintf("%+v", *got) != fmt.Sprintf("%+v", tt.want) {
				t.Errorf("options:\n got %+v\nwant %+v", *got, tt.want)
			}
		})
	}
}

func TestServeFlags(t *testing.T) {
	defaults := ServeOptions{Listen: ":8080", DataDir: "./quay-data"}
	runFlagTable(t, nil, NewCmdServe,
		func(o *ServeOptions) {
			if o.IO == nil || o.Getenv == nil {
				t.Error("IO or Getenv not set from the Factory")
			}
			o.IO, o.Getenv, o.Ready = nil, nil, nil
		},
		[]flagCase[ServeOptions]{
			{name: "defaults", args: []string{"serve"}, want: defaults},
			{name: "every flag", args: []string{"serve", "--config", "/conf/stack/config.yaml", "--listen", "127.0.0.1:0", "--data-dir", "/var/lib/quay"},
				want: ServeOptions{ConfigPath: "/conf/stack/config.yaml", Listen: "127.0.0.1:0", DataDir: "/var/lib/quay"}},
			{name: "equals form", args: []string{"serve", "--listen=[::1]:9090", "--data-dir=d"},
				want: ServeOptions{Listen: "[::1]:9090", DataDir: "d"}},
			{name: "config directory", args: []string{"serve", "--config", "bundle/"},
				want: ServeOptions{ConfigPath: "bundle/", Listen: ":8080", DataDir: "./quay-data"}},
			{name: "unknown flag", args: []string{"serve", "--bogus"}, wantStderr: usageErr("unknown flag: --bogus")},
			{name: "no -o on serve", args: []string{"serve", "-o", "json"}, wantStderr: usageErr("unknown shorthand flag: 'o' in -o")},
			{name: "flag without value", args: []string{"serve", "--listen"}, wantStderr: usageErr("flag needs an argument: --listen")},
			{name: "extra argument", args: []string{"serve", "now"}, wantStderr: usageErr("quayctl serve takes 0 argument(s): no arguments")},
		})
}

func TestUserCreateFlags(t *testing.T) {
	runFlagTable(t, []string{"user"}, NewCmdUserCreate,
		func(o *UserCreateOptions) {
			if o.IO == nil || o.Getenv == nil {
				t.Error("IO or Getenv not set from the Factory")
			}
			o.IO, o.Getenv = nil, nil
		},
		[]flagCase[UserCreateOptions]{
			{name: "defaults", args: []string{"user", "create", "alice", "--password-stdin"},
				want: UserCreateOptions{Username: "alice", DataDir: "./quay-data", PasswordStdin: true, Output: OutputTable}},
			{name: "every flag", args: []string{"user", "create", "--password-stdin", "--email", "a@example.com", "--superuser",
				"--config", "c.yaml", "--data-dir", "/d", "-o", "json", "alice"},
				want: UserCreateOptions{ConfigPath: "c.yaml", DataDir: "/d", Username: "alice", Email: "a@example.com",
					PasswordStdin: true, Superuser: true, Output: OutputJSON}},
			{name: "long output flag", args: []string{"user", "create", "bob", "--password-stdin", "--output=yaml"},
				want: UserCreateOptions{Username: "bob", DataDir: "./quay-data", PasswordStdin: true, Output: OutputYAML}},
			// The username is checked by userCreateRun, not by flag parsing.
			{name: "bad username reaches run", args: []string{"user", "create", "Bad_Name!", "--password-stdin"},
				want: UserCreateOptions{Username: "Bad_Name!", DataDir: "./quay-data", PasswordStdin: true, Output: OutputTable}},
			{name: "no --password-stdin", args: []string{"user", "create", "alice"},
				wantStderr: usageErr("--password-stdin is required: pipe the password on standard input")},
			{name: "no username", args: []string{"user", "create", "--password-stdin"},
				wantStderr: usageErr("quayctl user create takes 1 argument(s): USERNAME")},
			{name: "two usernames", args: []string{"user", "create", "alice", "bob", "--password-stdin"},
				wantStderr: usageErr("quayctl user create takes 1 argument(s): USERNAME")},
			{name: "output xml", args: []string{"user", "create", "alice", "--password-stdin", "-o", "xml"},
				wantStderr: usageErr(`--output "xml" is not one of table, json, yaml`)},
			{name: "unknown flag", args: []string{"user", "create", "alice", "--password", "x"},
				wantStderr: usageErr("unknown flag: --password")},
			{name: "password-stdin takes no value", args: []string{"user", "create", "alice", "--password-stdin=maybe"},
				wantStderr: usageErr(`invalid argument "maybe" for "--password-stdin" flag: strconv.ParseBool: parsing "maybe": invalid syntax`)},
		})
}

func TestDBMigrateFlags(t *testing.T) {
	runFlagTable(t, []string{"db"}, NewCmdDBMigrate,
		func(o *DBMigrateOptions) {
			if o.IO == nil || o.Getenv == nil {
				t.Error("IO or Getenv not set from the Factory")
			}
			o.IO, o.Getenv = nil, nil
		},
		[]flagCase[DBMigrateOptions]{
			{name: "defaults", args: []string{"db", "migrate"}, want: DBMigrateOptions{DataDir: "./quay-data", Output: OutputTable}},
			{name: "every flag", args: []string{"db", "migrate", "--config", "c.yaml", "--data-dir", "/d", "-o", "yaml"},
				want: DBMigrateOptions{ConfigPath: "c.yaml", DataDir: "/d", Output: OutputYAML}},
			{name: "output xml", args: []string{"db", "migrate", "-o", "xml"}, wantStderr: usageErr(`--output "xml" is not one of table, json, yaml`)},
			{name: "extra argument", args: []string{"db", "migrate", "now"}, wantStderr: usageErr("quayctl db migrate takes 0 argument(s): no arguments")},
			{name: "unknown flag", args: []string{"db", "migrate", "--dry-run"}, wantStderr: usageErr("unknown flag: --dry-run")},
		})
}

func TestVersionFlags(t *testing.T) {
	runFlagTable(t, nil, NewCmdVersion,
		func(o *VersionOptions) {
			if o.IO == nil {
				t.Error("IO not set from the Factory")
			}
			o.IO = nil
		},
		[]flagCase[VersionOptions]{
			{name: "defaults", args: []string{"version"}, want: VersionOptions{Output: OutputTable}},
			{name: "json", args: []string{"version", "-o", "json"}, want: VersionOptions{Output: OutputJSON}},
			{name: "yaml", args: []string{"version", "--output", "yaml"}, want: VersionOptions{Output: OutputYAML}},
			{name: "output xml", args: []string{"version", "-o", "xml"}, wantStderr: usageErr(`--output "xml" is not one of table, json, yaml`)},
			{name: "empty output", args: []string{"version", "-o", ""}, wantStderr: usageErr(`--output "" is not one of table, json, yaml`)},
			{name: "extra argument", args: []string{"version", "1.0"}, wantStderr: usageErr("quayctl version takes 0 argument(s): no arguments")},
			{name: "unknown flag", args: []string{"version", "--short"}, wantStderr: usageErr("unknown flag: --short")},
		})
}

// TestMainExitCodes runs the real Main: flag and argument errors exit 2 with
// the usage hint, user errors exit 1 and print plainly, success exits 0.
func TestMainExitCodes(t *testing.T) {
	versionLine := fmt.Sprintf("quayctl %s (%s, %s/%s)\n", version.Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	tests := []struct {
		name       string
		args       []string
		stdin      string
		wantCode   int
		wantStdout string // exact unless empty
		stdoutHas  string
		wantStderr string // exact
	}{
		{name: "version", args: []string{"version"}, wantCode: ExitOK, wantStdout: versionLine},
		{name: "no arguments prints help", args: nil, wantCode: ExitOK, stdoutHas: "Available Commands:"},
		{name: "--help", args: []string{"--help"}, wantCode: ExitOK, stdoutHas: "Usage:"},
		{name: "serve --help shows exit codes", args: []string{"serve", "--help"}, wantCode: ExitOK, stdoutHas: "Exit codes: 0 after a clean shutdown"},
		{name: "group alone prints help", args: []string{"user"}, wantCode: ExitOK, stdoutHas: "create      Create a user"},
		{name: "unknown flag", args: []string{"version", "--bogus"}, wantCode: ExitUsage, wantStderr: usageErr("unknown flag: --bogus")},
		{name: "unknown root flag", args: []string{"--bogus"}, wantCode: ExitUsage, wantStderr: usageErr("unknown flag: --bogus")},
		{name: "extra argument", args: []string{"version", "x"}, wantCode: ExitUsage, wantStderr: usageErr("quayctl version takes 0 argument(s): no arguments")},
		{name: "output xml", args: []string{"version", "-o", "xml"}, wantCode: ExitUsage, wantStderr: usageErr(`--output "xml" is not one of table, json, yaml`)},
		{name: "unknown command", args: []string{"nope"}, wantCode: ExitUsage, wantStderr: usageErr(`unknown command "nope" for "quayctl"`)},
		{name: "unknown command with suggestion", args: []string{"versoin"}, wantCode: ExitUsage,
			wantStderr: usageErr(`unknown command "versoin" for "quayctl" (did you mean "version"?)`)},
		{name: "unknown subcommand", args: []string{"user", "delete"}, wantCode: ExitUsage, wantStderr: usageErr(`unknown command "delete" for "quayctl user"`)},
		{name: "unknown db subcommand", args: []string{"db", "migrat"}, wantCode: ExitUsage,
			wantStderr: usageErr(`unknown command "migrat" for "quayctl db" (did you mean "migrate"?)`)},
		{name: "user create without --password-stdin", args: []string{"user", "create", "alice"}, wantCode: ExitUsage,
			wantStderr: usageErr("--password-stdin is required: pipe the password on standard input")},
		{name: "user create without USERNAME", args: []string{"user", "create", "--password-stdin"}, wantCode: ExitUsage,
			wantStderr: usageErr("quayctl user create takes 1 argument(s): USERNAME")},
		// Checked before stdin or the database are touched: nothing to set up.
		{name: "user error", args: []string{"user", "create", "Bad_Name!", "--password-stdin", "--data-dir", "/nonexistent/quay"},
			stdin: "long-enough-pass\n", wantCode: ExitError,
			wantStderr: "Error: invalid username \"Bad_Name!\": invalid username: \"Bad_Name!\" may contain only lowercase letters, digits and single '.', '_' or '-' between them\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			io, out, errOut := testIO(tt.stdin)
			code := Main(context.Background(), tt.args, io)
			if code != tt.wantCode {
				t.Errorf("exit code = %d, want %d (stderr %q)", code, tt.wantCode, errOut.String())
			}
			if tt.wantStdout != "" && out.String() != tt.wantStdout {
				t.Errorf("stdout = %q, want %q", out.String(), tt.wantStdout)
			}
			if !strings.Contains(out.String(), tt.stdoutHas) {
				t.Errorf("stdout lacks %q:\n%s", tt.stdoutHas, out.String())
			}
			if tt.wantStdout == "" && tt.stdoutHas == "" && out.String() != "" {
				t.Errorf("stdout = %q, want nothing", out.String())
			}
			if errOut.String() != tt.wantStderr {
				t.Errorf("stderr:\n got %q\nwant %q", errOut.String(), tt.wantStderr)
			}
		})
	}
}

// TestExitCodeMapping checks the error → exit code table of execute with
// errors a command returns.
func TestExitCodeMapping(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		wantCode   int
		wantStderr string
	}{
		{"success", nil, ExitOK, ""},
		{"user error", &UserError{Msg: "cannot reach database", Err: errors.New("connection refused"), Remedy: "is postgresql running?"},
			ExitError, "Error: cannot reach database: connection refused — is postgresql running?\n"},
		{"wrapped user error", fmt.Errorf("outer: %w", &UserError{Msg: "bad"}), ExitError, "Error: outer: bad\n"},
		{"multi-line cause puts the remedy on its own line", &UserError{Msg: "invalid", Err: errors.New("2 errors\n  A: x\n  B: y"), Remedy: "fix the keys above"},
			ExitError, "Error: invalid: 2 errors\n  A: x\n  B: y\nfix the keys above\n"},
		{"flag error from a command", flagError{errors.New("--since must be a duration")}, ExitUsage, usageErr("--since must be a duration")},
		{"interrupted", fmt.Errorf("pull: %w", context.Canceled), ExitError, "Interrupted.\n"},
		{"chosen exit code", &exitCodeError{code: 7}, 7, ""},
		{"unexpected", errors.New("boom"), ExitUnhandled, "Error: boom\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			io, out, errOut := testIO("")
			f := testFactory(io, nil)
			root := withCmd(t, f, NewCmdVersion(f, func(*VersionOptions) error { return tt.err }))
			code := execute(context.Background(), root, []string{"version"}, io.ErrOut)
			if code != tt.wantCode {
				t.Errorf("exit code = %d, want %d", code, tt.wantCode)
			}
			if errOut.String() != tt.wantStderr {
				t.Errorf("stderr:\n got %q\nwant %q", errOut.String(), tt.wantStderr)
			}
			if out.String() != "" {
				t.Errorf("stdout = %q", out.String())
			}
		})
	}
}
