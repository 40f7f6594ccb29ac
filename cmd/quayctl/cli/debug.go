package cli

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/quayctl/quayctl/collectors"
)

// DebugOptions are the flags of `quayctl debug on|off`.
type DebugOptions struct {
	IO         *IOStreams
	Target     TargetOptions
	Deployment func(context.Context) (collectors.Deployment, error)
	On         bool
	Yes        bool
	DryRun     bool
	Output     string
}

// debugResult is the stable JSON/YAML schema of `quayctl debug`.
type debugResult struct {
	Kind    string   `json:"kind"`
	Target  string   `json:"target"`
	Debug   bool     `json:"debug"` // the requested state
	Changes []string `json:"changes"`
	NoOp    bool     `json:"no_op"`
	Applied bool     `json:"applied"`
}

// NewCmdDebug builds `quayctl debug`.
func NewCmdDebug(f *Factory, runF func(*DebugOptions) error) *cobra.Command {
	opts := &DebugOptions{IO: f.IO}
	opts.Deployment = f.deploymentFunc(&opts.Target)
	cmd := &cobra.Command{
		Use:   "debug on|off",
		Short: "Switch Quay's debug logging (DEBUGLOG=true) on or off",
		Long: `Switch Quay's debug logging on or off, as chapter 2 of the troubleshooting
guide does by hand:

  podman     re-create the quay container with DEBUGLOG=true (or without it),
             keeping its image, name, command, mounts, environment, network
             and ports
  OpenShift  add (or remove) the DEBUGLOG=true env override on the quay
             component of the QuayRegistry; the Operator rolls the pods

quayctl shows what will change and asks before doing it; --yes skips the
question (required when not on a terminal), --dry-run only shows it. Then
read the debug logs with: quayctl logs -f

Exit codes: 0 done (or nothing to change), 1 refused, aborted or failed,
2 bad flags.`,
		Example: `  quayctl debug on
  quayctl debug off --yes
  quayctl debug on --openshift -n quay --dry-run`,
		Args: targetArgs(exactArgs(1, "on or off")),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := targetFromFlags(cmd.Flags())
			if err != nil {
				return err
			}
			opts.Target = t
			switch strings.ToLower(args[0]) {
			case "on", "true", "enable":
				opts.On = true
			case "off", "false", "disable":
				opts.On = false
			default:
				return argsError{fmt.Errorf("%s takes on or off, not %q", cmd.CommandPath(), args[0])}
			}
			if err := checkOutput(opts.Output); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return debugRun(cmd.Context(), opts)
		},
	}
	addTargetFlags(cmd)
	addOutputFlag(cmd, &opts.Output)
	cmd.Flags().BoolVarP(&opts.Yes, "yes", "y", false, "apply without asking")
	cmd.Flags().BoolVar(&opts.DryRun, "dry-run", false, "show what would change, change nothing")
	return cmd
}

func debugRun(ctx context.Context, opts *DebugOptions) error {
	d, err := opts.Deployment(ctx)
	if err != nil {
		return err
	}
	tg, ok := d.(collectors.DebugToggler)
	if !ok {
		return &UserError{
			Msg:    fmt.Sprintf("debug logging cannot be switched on a %s target", d.Kind()),
			Remedy: "point quayctl at the deployment with --podman[=URL] or --openshift [-n NAMESPACE], or set DEBUGLOG=true in the quay container's environment yourself",
		}
	}
	plan, err := tg.PlanDebug(ctx, opts.On)
	if err != nil {
		return deploymentError("cannot plan the change", err)
	}
	res := debugResult{Kind: d.Kind(), Target: plan.Target, Debug: opts.On, Changes: plan.Changes, NoOp: plan.NoOp}
	if res.Changes == nil {
		res.Changes = []string{}
	}
	state := "off"
	if opts.On {
		state = "on"
	}
	// The plan is what the administrator approves: on stdout for a table,
	// on stderr when stdout is JSON/YAML (printed after).
	planW := opts.IO.Out
	if opts.Output != OutputTable {
		planW = opts.IO.ErrOut
	}
	done := func() error {
		return render(opts.IO.Out, opts.Output, res, func(w io.Writer) error { return nil })
	}
	if plan.NoOp {
		fmt.Fprintf(planW, "Debug logging is already %s for %s: nothing to change.\n", state, plan.Target)
		return done()
	}
	fmt.Fprintf(planW, "Switching debug logging %s for %s will:\n", state, plan.Target)
	for _, c := range plan.Changes {
		fmt.Fprintf(planW, "  - %s\n", c)
	}
	if opts.DryRun {
		fmt.Fprintln(planW, "Dry run: nothing was changed.")
		return done()
	}
	if !opts.Yes {
		if !opts.IO.InTTY {
			return &UserError{Msg: "refusing to change the deployment without confirmation", Remedy: "run it on a terminal to be asked, or pass --yes"}
		}
		fmt.Fprint(opts.IO.ErrOut, "Apply? [y/N] ")
		line, _ := bufio.NewReader(opts.IO.In).ReadString('\n')
		if a := strings.ToLower(strings.TrimSpace(line)); a != "y" && a != "yes" {
			return &UserError{Msg: "aborted: nothing was changed"}
		}
	}
	if err := tg.SetDebug(ctx, opts.On); err != nil {
		return deploymentError("switching debug logging "+state+" failed", err)
	}
	res.Applied = true
	fmt.Fprintf(planW, "Debug logging is %s for %s.", state, plan.Target)
	if opts.On {
		fmt.Fprint(planW, " Follow the logs with: quayctl logs -f")
		if opts.Target.Kind != TargetAuto {
			fmt.Fprint(planW, " (with the same target flags)")
		}
		fmt.Fprint(planW, "; switch it off with: quayctl debug off")
	}
	fmt.Fprintln(planW)
	return done()
}
