package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/quayctl/quayctl/collectors"
	"github.com/quayctl/quayctl/collectors/direct"
	"github.com/quayctl/quayctl/collectors/openshift"
	"github.com/quayctl/quayctl/collectors/podman"
)

// Target kinds.
const (
	TargetAuto      = ""
	TargetPodman    = "podman"
	TargetOpenShift = "openshift"
	TargetDirect    = "direct"
)

// podmanDefaultURL is what a bare --podman stores: podman's default service.
const podmanDefaultURL = "default"

// TargetOptions are the target flags every toolkit command shares: where
// the Quay deployment runs.
type TargetOptions struct {
	Kind       string // TargetAuto (detect), TargetPodman, TargetOpenShift, TargetDirect
	PodmanURL  string // --podman=URL; "" = CONTAINER_HOST, else the default socket
	Kubeconfig string
	Context    string
	Namespace  string
	Registry   string
	URL        string            // --url: the registry's base URL (any kind: overrides what health derives)
	ConfigPath string            // --config (direct)
	DBURI      string            // --db (direct)
	Components map[string]string // --component ROLE=CONTAINER (podman)
}

// componentRoles are the roles --component accepts.
var componentRoles = []string{
	collectors.ComponentQuay, collectors.ComponentDatabase, collectors.ComponentRedis,
	collectors.ComponentClair, collectors.ComponentMirror, collectors.ComponentClairPostgres,
}

// addTargetFlags adds the target flags to cmd (persistent, so that the
// subcommands of a group share them).
func addTargetFlags(cmd *cobra.Command) {
	fs := cmd.PersistentFlags()
	fs.String("podman", "", "a standalone deployment on podman; bare: CONTAINER_HOST, else the default socket; a URL goes after '=': --podman=unix:///run/podman/podman.sock")
	fs.Lookup("podman").NoOptDefVal = podmanDefaultURL
	fs.Bool("openshift", false, "a Quay Operator deployment on OpenShift (the current kube context)")
	fs.String("kubeconfig", "", "kubeconfig file (implies --openshift; default: KUBECONFIG, else ~/.kube/config)")
	fs.String("context", "", "kubeconfig context (implies --openshift)")
	fs.StringP("namespace", "n", "", "namespace of the QuayRegistry (implies --openshift; default: the context's)")
	fs.String("registry", "", "name of the QuayRegistry (implies --openshift; default: the only one in the namespace)")
	fs.String("url", "", "the registry's base URL, such as https://quay.example.com (alone: a direct target)")
	fs.String("config", "", "a copy of Quay's config.yaml, or a directory holding one (a direct target)")
	fs.String("db", "", "the database URI, as DB_URI (a direct target)")
	fs.StringArray("component", nil, "map a role to a podman container: ROLE=CONTAINER, repeatable (quay, database, redis, clair, mirror, clairpostgres)")
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Annotations == nil {
			f.Annotations = map[string][]string{}
		}
		f.Annotations[targetAnnotation] = []string{"true"}
	})
	cmd.SetUsageFunc(targetUsage)
}

// targetAnnotation marks the target flags, which help lists apart.
const targetAnnotation = "quayctl_target"

// targetUsage is cobra's usage text with the target flags in a section of
// their own, after the command's own flags.
func targetUsage(c *cobra.Command) error {
	var b strings.Builder
	b.WriteString("Usage:")
	if c.Runnable() {
		b.WriteString("\n  " + c.UseLine())
	}
	if c.HasAvailableSubCommands() {
		b.WriteString("\n  " + c.CommandPath() + " [command]")
	}
	if c.HasExample() {
		b.WriteString("\n\nExamples:\n" + c.Example)
	}
	if c.HasAvailableSubCommands() {
		b.WriteString("\n\nAvailable Commands:")
		for _, s := range c.Commands() {
			if s.IsAvailableCommand() || s.Name() == "help" {
				fmt.Fprintf(&b, "\n  %-*s %s", c.NamePadding(), s.Name(), s.Short)
			}
		}
	}
	own, target, global := pflag.NewFlagSet("own", pflag.ContinueOnError), pflag.NewFlagSet("target", pflag.ContinueOnError), pflag.NewFlagSet("global", pflag.ContinueOnError)
	sort := func(into *pflag.FlagSet) func(*pflag.Flag) {
		return func(f *pflag.Flag) {
			switch {
			case f.Hidden:
			case f.Annotations[targetAnnotation] != nil:
				if target.Lookup(f.Name) == nil {
					target.AddFlag(f)
				}
			default:
				into.AddFlag(f)
			}
		}
	}
	c.LocalFlags().VisitAll(sort(own))
	c.InheritedFlags().VisitAll(sort(global))
	for _, sec := range []struct {
		title string
		fs    *pflag.FlagSet
	}{{"Flags", own}, {"Target flags (where the deployment runs; default: detected)", target}, {"Global Flags", global}} {
		if sec.fs.HasFlags() {
			b.WriteString("\n\n" + sec.title + ":\n" + strings.TrimRight(sec.fs.FlagUsages(), " \n"))
		}
	}
	if c.HasAvailableSubCommands() {
		fmt.Fprintf(&b, "\n\nUse \"%s [command] --help\" for more information about a command.", c.CommandPath())
	}
	b.WriteString("\n")
	_, err := io.WriteString(c.OutOrStderr(), b.String())
	return err
}

// targetFromFlags reads and checks the target flags of a parsed command.
func targetFromFlags(fs *pflag.FlagSet) (TargetOptions, error) {
	var t TargetOptions
	str := func(name string) string { v, _ := fs.GetString(name); return v }
	changed := func(name string) bool { f := fs.Lookup(name); return f != nil && f.Changed }
	t.Kubeconfig, t.Context, t.Namespace, t.Registry = str("kubeconfig"), str("context"), str("namespace"), str("registry")
	t.URL, t.ConfigPath, t.DBURI = str("url"), str("config"), str("db")
	openShift, _ := fs.GetBool("openshift")
	podmanSet := changed("podman")
	if podmanSet {
		t.PodmanURL = str("podman")
		if t.PodmanURL == podmanDefaultURL {
			t.PodmanURL = "" // the URL-as-argument mistake is caught by targetArgs
		}
		if t.PodmanURL == "" && str("podman") != podmanDefaultURL {
			return t, flagError{errors.New("--podman= needs a URL, such as --podman=unix:///run/podman/podman.sock (or a bare --podman for the default)")}
		}
	}
	comps, _ := fs.GetStringArray("component")
	for _, c := range comps {
		role, name, ok := strings.Cut(c, "=")
		role, name = strings.TrimSpace(role), strings.TrimSpace(name)
		if !ok || role == "" || name == "" {
			return t, flagError{fmt.Errorf("--component %q: want ROLE=CONTAINER, such as quay=quay-app", c)}
		}
		if !slices.Contains(componentRoles, role) {
			return t, flagError{fmt.Errorf("--component %q: unknown role %q (use one of: %s)", c, role, strings.Join(componentRoles, ", "))}
		}
		if t.Components == nil {
			t.Components = map[string]string{}
		}
		if prev, dup := t.Components[role]; dup && prev != name {
			return t, flagError{fmt.Errorf("--component %s is given twice (%s and %s)", role, prev, name)}
		}
		t.Components[role] = name
	}

	kubeFlags := t.Kubeconfig != "" || t.Context != "" || t.Namespace != "" || t.Registry != ""
	directFlags := t.ConfigPath != "" || t.DBURI != ""
	switch {
	case podmanSet && (openShift || kubeFlags):
		return t, flagError{errors.New("--podman cannot be combined with --openshift, --kubeconfig, --context, -n or --registry: choose where the deployment runs")}
	case podmanSet || len(t.Components) > 0 && !openShift && !kubeFlags:
		t.Kind = TargetPodman
	case openShift || kubeFlags:
		t.Kind = TargetOpenShift
	case directFlags || t.URL != "":
		t.Kind = TargetDirect
	}
	if len(t.Components) > 0 && t.Kind != TargetPodman {
		return t, flagError{errors.New("--component maps podman containers; on OpenShift the Operator's pods are found by their labels (drop --component)")}
	}
	if directFlags && t.Kind != TargetDirect {
		return t, flagError{fmt.Errorf("--config and --db describe a direct target; with --%s quayctl reads the deployment's own (drop them, or give the file to config validate as an argument)", t.Kind)}
	}
	return t, nil
}

// targetArgs checks, before next, that no positional argument is a URL
// meant for --podman (`--podman unix:///…` leaves the URL as an argument,
// since --podman's value is optional and must follow '=').
func targetArgs(next cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if f := cmd.Flags().Lookup("podman"); f != nil && f.Changed && f.Value.String() == podmanDefaultURL {
			for _, a := range args {
				if strings.Contains(a, "://") {
					return flagError{fmt.Errorf("--podman takes its URL after '=': --podman=%s", a)}
				}
			}
		}
		if next == nil {
			return nil
		}
		return next(cmd, args)
	}
}

// String describes the target for messages ("podman (default socket)").
func (t TargetOptions) String() string {
	switch t.Kind {
	case TargetPodman:
		if t.PodmanURL == "" {
			return "podman (default service)"
		}
		return "podman at " + t.PodmanURL
	case TargetOpenShift:
		return "OpenShift"
	case TargetDirect:
		return "direct"
	}
	return "auto-detected"
}

// deploymentFunc returns a lazy, memoised opener of the deployment t
// names: commands that fail on their flags never contact anything.
func (f *Factory) deploymentFunc(t *TargetOptions) func(context.Context) (collectors.Deployment, error) {
	var once sync.Once
	var d collectors.Deployment
	var err error
	return func(ctx context.Context) (collectors.Deployment, error) {
		once.Do(func() { d, err = openDeployment(ctx, *t, f.Getenv) })
		return d, err
	}
}

// openDeployment connects to the target. Errors are UserErrors that say
// what to do.
func openDeployment(ctx context.Context, t TargetOptions, getenv func(string) string) (collectors.Deployment, error) {
	switch t.Kind {
	case TargetPodman:
		d, err := podman.New(ctx, podman.Options{URL: podmanURL(t.PodmanURL, getenv), Components: t.Components})
		if err != nil {
			return nil, &UserError{Msg: "cannot reach the podman deployment", Err: redactedError{err}}
		}
		return d, nil
	case TargetOpenShift:
		d, err := openshift.New(ctx, openshift.Options{Kubeconfig: t.Kubeconfig, Context: t.Context, Namespace: t.Namespace, Registry: t.Registry})
		if err != nil {
			return nil, &UserError{Msg: "cannot reach the OpenShift deployment", Err: redactedError{err}}
		}
		return d, nil
	case TargetDirect:
		d, err := direct.New(direct.Options{URL: t.URL, ConfigPath: t.ConfigPath, DBURI: t.DBURI})
		if err != nil {
			return nil, &UserError{Msg: "invalid direct target", Err: redactedError{err}}
		}
		return d, nil
	}
	return detectDeployment(ctx, getenv)
}

// podmanURL is the --podman URL, else CONTAINER_HOST from the command's
// environment, else "" (podman's default socket).
func podmanURL(flag string, getenv func(string) string) string {
	if flag != "" {
		return flag
	}
	return getenv("CONTAINER_HOST")
}

// detectTimeout bounds each probe of auto-detection.
const detectTimeout = 10 * time.Second

// detectDeployment finds a deployment when no target flag is given: a
// reachable podman service with Quay containers, else the current kube
// context with a QuayRegistry.
func detectDeployment(ctx context.Context, getenv func(string) string) (collectors.Deployment, error) {
	var tried []string
	pctx, cancel := context.WithTimeout(ctx, detectTimeout)
	pd, err := podman.New(pctx, podman.Options{URL: podmanURL("", getenv)})
	if err == nil {
		comps, cerr := pd.Components(pctx)
		switch {
		case cerr != nil:
			tried = append(tried, "podman at "+pd.Name()+": "+cerr.Error())
		case hasComponent(comps, collectors.ComponentQuay):
			cancel()
			return pd, nil
		default:
			tried = append(tried, "podman at "+pd.Name()+": no Quay container (name one with --podman --component quay=CONTAINER)")
		}
	} else {
		tried = append(tried, "podman: "+err.Error())
	}
	cancel()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	octx, cancel := context.WithTimeout(ctx, detectTimeout)
	defer cancel()
	od, err := openshift.New(octx, openshift.Options{})
	if err == nil {
		return od, nil
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	tried = append(tried, "OpenShift: "+err.Error())
	return nil, &UserError{
		Msg: "no Quay deployment found",
		Err: errors.New("tried:\n  " + strings.Join(tried, "\n  ")),
		Remedy: "name the target:\n" +
			"  --podman[=URL] [--component quay=CONTAINER]   a standalone deployment on podman\n" +
			"  --openshift [-n NAMESPACE] [--registry NAME]   a Quay Operator deployment (also --kubeconfig, --context)\n" +
			"  --url URL, --config FILE, --db URI             a registry without containers to look into",
	}
}

func hasComponent(comps []collectors.Component, name string) bool {
	for _, c := range comps {
		if c.Name == name {
			return true
		}
	}
	return false
}

// componentNames lists the distinct component names, sorted.
func componentNames(comps []collectors.Component) []string {
	var out []string
	for _, c := range comps {
		if !slices.Contains(out, c.Name) {
			out = append(out, c.Name)
		}
	}
	sort.Strings(out)
	return out
}

// deploymentError wraps what a collector reports (component not found or
// not running, not supported for this target, unreachable) as a UserError:
// the collectors' messages already say what to do.
func deploymentError(what string, err error) error {
	var ue *UserError
	if err == nil || errors.As(err, &ue) || errors.Is(err, context.Canceled) {
		return err
	}
	return &UserError{Msg: what, Err: redactedError{err}}
}

// redactedError shows err's message through the redaction (a collector's
// error may quote a command line or a URI with a password) and keeps it
// for errors.Is and errors.As.
type redactedError struct{ err error }

func (e redactedError) Error() string { return redactErr(e.err) }
func (e redactedError) Unwrap() error { return e.err }

// optionalComponentArg accepts at most one COMPONENT argument, defaulting
// to def (the commands that read one component: logs, db conf).
func optionalComponentArg(def string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) > 1 {
			return argsError{fmt.Errorf("%s takes at most one argument: COMPONENT (default %s)", cmd.CommandPath(), def)}
		}
		return nil
	}
}

// componentArg is the COMPONENT argument, or def when none was given.
func componentArg(args []string, def string) string {
	if len(args) == 1 {
		return args[0]
	}
	return def
}
