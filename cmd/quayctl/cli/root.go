// Package cli wires quayctl's cobra commands: flags → options → a package
// call → rendering. No business logic lives here.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/mattn/go-isatty"
	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/quayctl/quayctl/internal/version"
)

// IOStreams are the command's standard streams.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer
	// IsTTY says whether Out is a terminal (styles on) and In is one (prompts).
	OutTTY, InTTY bool
}

// System returns the process streams.
func System() *IOStreams {
	return &IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr,
		OutTTY: isatty.IsTerminal(os.Stdout.Fd()), InTTY: isatty.IsTerminal(os.Stdin.Fd())}
}

// Factory holds the dependencies commands use, built lazily.
type Factory struct {
	IO     *IOStreams
	Getenv func(string) string
}

// Exit codes, documented in each command's help.
const (
	ExitOK        = 0
	ExitError     = 1 // a user-facing failure (bad input, unreachable dependency)
	ExitUsage     = 2 // bad flags or arguments
	ExitUnhandled = 3 // an unexpected internal error
)

// UserError is a failure the user can fix; it prints without a stack of
// wrapping and carries the remedy.
type UserError struct {
	Msg    string
	Remedy string
	Err    error
}

func (e *UserError) Error() string {
	s := e.Msg
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	if e.Remedy != "" {
		if strings.Contains(s, "\n") {
			// A multi-line cause (a list of config problems): the remedy
			// gets its own line instead of trailing the last item.
			s += "\n" + e.Remedy
		} else {
			s += " — " + e.Remedy
		}
	}
	return s
}

func (e *UserError) Unwrap() error { return e.Err }

type flagError struct{ error }

// NewRootCmd builds the command tree.
func NewRootCmd(f *Factory) *cobra.Command {
	root := &cobra.Command{
		Use:           "quayctl",
		Short:         "A Quay-compatible registry and a troubleshooting toolkit for Quay deployments",
		SilenceErrors: true,
		SilenceUsage:  true,
		Version:       version.Version,
	}
	root.SetIn(f.IO.In)
	root.SetOut(f.IO.Out)
	root.SetErr(f.IO.ErrOut)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return flagError{err} })
	groupCmd(root)
	root.AddCommand(NewCmdServe(f, nil), NewCmdUser(f), NewCmdDB(f), NewCmdVersion(f, nil), NewCmdResetPassword(f, nil), NewCmdMirror(f))
	root.AddCommand(NewCmdOrg(f), NewCmdRobot(f))
	root.AddCommand(NewCmdGC(f))
	addToolkitCommands(root, f)
	return root
}

// groupCmd makes a command that only holds subcommands print its help when
// called alone, and turns an unknown subcommand into a usage error (exit 2).
// Without it cobra returns a plain error for `quayctl foo` (exit 3) and
// prints help with exit 0 for `quayctl user foo`.
func groupCmd(cmd *cobra.Command) *cobra.Command {
	cmd.Args = func(c *cobra.Command, args []string) error {
		if len(args) == 0 {
			return nil
		}
		msg := fmt.Sprintf("unknown command %q for %q", args[0], c.CommandPath())
		if c.SuggestionsMinimumDistance <= 0 {
			c.SuggestionsMinimumDistance = 2 // cobra's default, set lazily elsewhere
		}
		if s := c.SuggestionsFor(args[0]); len(s) > 0 {
			msg += fmt.Sprintf(" (did you mean %q?)", s[0])
		}
		return argsError{errors.New(msg)}
	}
	cmd.RunE = func(c *cobra.Command, args []string) error { return c.Help() }
	return cmd
}

// Main runs quayctl and maps errors to exit codes in one place.
func Main(ctx context.Context, args []string, io *IOStreams) int {
	f := &Factory{IO: io, Getenv: os.Getenv}
	return execute(ctx, NewRootCmd(f), args, io.ErrOut)
}

// execute runs root with args and maps its error to an exit code, printing
// the error to errOut.
func execute(ctx context.Context, root *cobra.Command, args []string, errOut io.Writer) int {
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	var fe flagError
	var ue *UserError
	var ce *exitCodeError
	switch {
	case errors.As(err, &ce):
		return ce.code
	case errors.As(err, &fe) || isArgsError(err):
		fmt.Fprintf(errOut, "Error: %v\nRun 'quayctl --help' for usage.\n", err)
		return ExitUsage
	case errors.As(err, &ue):
		fmt.Fprintf(errOut, "Error: %v\n", err)
		return ExitError
	case errors.Is(err, context.Canceled):
		fmt.Fprintln(errOut, "Interrupted.")
		return ExitError
	default:
		fmt.Fprintf(errOut, "Error: %v\n", err)
		return ExitUnhandled
	}
}

// exitCodeError lets a command choose its exit code after printing.
type exitCodeError struct{ code int }

func (e *exitCodeError) Error() string { return fmt.Sprintf("exit %d", e.code) }

func isArgsError(err error) bool {
	var ae argsError
	return errors.As(err, &ae)
}

type argsError struct{ error }

func exactArgs(n int, usage string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return argsError{fmt.Errorf("%s takes %d argument(s): %s", cmd.CommandPath(), n, usage)}
		}
		return nil
	}
}

// Output formats shared by every command.
const (
	OutputTable = "table"
	OutputJSON  = "json"
	OutputYAML  = "yaml"
)

func addOutputFlag(cmd *cobra.Command, p *string) {
	cmd.Flags().StringVarP(p, "output", "o", OutputTable, "output format: table, json or yaml")
}

func checkOutput(o string) error {
	switch o {
	case OutputTable, OutputJSON, OutputYAML:
		return nil
	}
	return flagError{fmt.Errorf("--output %q is not one of table, json, yaml", o)}
}

// render writes v as JSON or YAML, or calls human for the table form.
func render(w io.Writer, format string, v any, human func(io.Writer) error) error {
	switch format {
	case OutputJSON:
		return writeStructured(w, OutputJSON, v)
	case OutputYAML:
		b, err := json.Marshal(v) // honour json tags in YAML too
		if err != nil {
			return err
		}
		var generic any
		if err := yaml.Unmarshal(b, &generic); err != nil {
			return err
		}
		enc := yaml.NewEncoder(w)
		enc.SetIndent(2)
		return enc.Encode(generic)
	}
	return human(w)
}
