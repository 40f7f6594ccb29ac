package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/quayctl/quayctl/collectors"
	"github.com/quayctl/quayctl/collectors/gather"
	"github.com/quayctl/quayctl/diag/configcheck"
	"github.com/quayctl/quayctl/internal/redact"
	"github.com/quayctl/quayctl/registry/config"
)

// Config sources (--from).
const (
	fromAuto    = gather.ConfigFromAuto
	fromPod     = gather.ConfigFromPod
	fromBundle  = gather.ConfigFromBundle
	fromMounted = gather.ConfigFromMounted
)

// NewCmdConfig builds `quayctl config`.
func NewCmdConfig(f *Factory) *cobra.Command {
	cmd := groupCmd(&cobra.Command{Use: "config", Short: "Show and check the deployment's config.yaml"})
	addTargetFlags(cmd)
	cmd.AddCommand(NewCmdConfigGet(f, nil), NewCmdConfigValidate(f, nil))
	return cmd
}

// ConfigGetOptions are the flags of `quayctl config get`.
type ConfigGetOptions struct {
	IO          *IOStreams
	Target      TargetOptions
	Deployment  func(context.Context) (collectors.Deployment, error)
	ShowSecrets bool
	From        string
	Output      string // yaml or json
}

// NewCmdConfigGet builds `quayctl config get`.
func NewCmdConfigGet(f *Factory, runF func(*ConfigGetOptions) error) *cobra.Command {
	opts := &ConfigGetOptions{IO: f.IO}
	opts.Deployment = f.deploymentFunc(&opts.Target)
	cmd := &cobra.Command{
		Use:   "get",
		Short: "Print the deployment's config.yaml, secrets redacted",
		Long: `Print the configuration Quay runs with: /conf/stack/config.yaml read from the
quay container (podman) or pod (OpenShift), or the --config file of a
direct target — the troubleshooting guide's chapter 4.1 without oc exec.

Secrets are redacted by default: every secret key of Quay's config at any
depth (DB_URI's password, SECRET_KEY, DATABASE_SECRET_KEY, redis passwords,
OAuth client secrets, storage access and secret keys, LOGS_MODEL_CONFIG
and BUILD_MANAGER credentials …), passwords inside URIs, tokens and PEM
keys, so the output can go into a support case. --show-secrets prints them.
Keys are sorted; comments are dropped (they may hold secrets too).

On OpenShift, --from bundle reads the QuayRegistry's config bundle secret
(spec.configBundleSecret: the administrator's input) and --from mounted the
secret the Operator generated and mounted at /conf/stack (what Quay runs
with). Without --from the quay pod's file is read, falling back to the
mounted secret when no quay pod runs (CrashLoopBackOff).

Exit codes: 0 printed, 1 the config cannot be read, 2 bad flags.`,
		Example: `  quayctl config get
  quayctl config get -o json | jq .DISTRIBUTED_STORAGE_CONFIG
  quayctl config get --openshift -n quay --from bundle
  quayctl config get --config ./config.yaml`,
		Args: targetArgs(exactArgs(0, "no arguments")),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := targetFromFlags(cmd.Flags())
			if err != nil {
				return err
			}
			opts.Target = t
			if opts.Output != OutputYAML && opts.Output != OutputJSON {
				return flagError{fmt.Errorf("--output %q is not one of yaml, json", opts.Output)}
			}
			if err := checkFrom(opts.From, t); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return configGetRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.ShowSecrets, "show-secrets", false, "print secrets instead of <redacted> (do not paste the output anywhere)")
	cmd.Flags().StringVar(&opts.From, "from", fromAuto, "OpenShift: pod (the quay pod's file), bundle (the config bundle secret) or mounted (the generated config secret)")
	cmd.Flags().StringVarP(&opts.Output, "output", "o", OutputYAML, "output format: yaml or json")
	return cmd
}

func checkFrom(from string, t TargetOptions) error {
	switch from {
	case fromAuto, fromPod:
		return nil
	case fromBundle, fromMounted:
		if t.Kind != TargetOpenShift && t.Kind != TargetAuto {
			return flagError{fmt.Errorf("--from %s reads a Kubernetes secret: it needs --openshift", from)}
		}
		return nil
	}
	return flagError{fmt.Errorf("--from %q is not one of pod, bundle, mounted", from)}
}

// readDeploymentConfig reads the deployment's config.yaml and says where
// it came from (for messages; never holds a secret).
func readDeploymentConfig(ctx context.Context, d collectors.Deployment, from string, errOut io.Writer) ([]byte, string, error) {
	if _, ok := d.(gather.ConfigSecrets); (from == fromBundle || from == fromMounted) && !ok {
		return nil, "", &UserError{Msg: "--from " + from + " reads a Kubernetes secret", Remedy: "use it with --openshift; this is a " + d.Kind() + " deployment"}
	}
	b, src, err := gather.ReadConfig(ctx, d, from, func(note string) { fmt.Fprintln(errOut, "quayctl: "+note) })
	if err != nil {
		return nil, "", deploymentError("cannot read the config", err)
	}
	return b, src, nil
}

func configGetRun(ctx context.Context, opts *ConfigGetOptions) error {
	d, err := opts.Deployment(ctx)
	if err != nil {
		return err
	}
	raw, src, err := readDeploymentConfig(ctx, d, opts.From, opts.IO.ErrOut)
	if err != nil {
		return err
	}
	fmt.Fprintf(opts.IO.ErrOut, "# %s\n", src)
	var cfg map[string]any
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		// Not YAML: nothing structural to redact; the text rules still are.
		if opts.ShowSecrets {
			_, werr := opts.IO.Out.Write(raw)
			return werr
		}
		text, sum := redact.String(string(raw))
		fmt.Fprintf(opts.IO.ErrOut, "quayctl: the config is not valid YAML (%s); printing it as text, %s\n", redactErr(err), sum)
		_, werr := io.WriteString(opts.IO.Out, text)
		return werr
	}
	if opts.ShowSecrets {
		fmt.Fprintln(opts.IO.ErrOut, "quayctl: --show-secrets: this output holds passwords and keys; do not paste it into a ticket or chat")
	} else {
		var sum redact.Summary
		cfg, sum = redact.Config(cfg)
		if sum.Total() > 0 {
			fmt.Fprintf(opts.IO.ErrOut, "# %s; --show-secrets prints them\n", sum)
		}
	}
	return writeStructured(opts.IO.Out, opts.Output, jsonable(cfg))
}

// writeStructured writes v as JSON (two-space indent, <redacted> kept
// readable) or YAML (two-space indent, keys sorted).
func writeStructured(w io.Writer, format string, v any) error {
	if format == OutputJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(v)
	}
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(v); err != nil {
		return err
	}
	return enc.Close()
}

// jsonable turns YAML's map[any]any into map[string]any, recursively.
func jsonable(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			out[k] = jsonable(e)
		}
		return out
	case map[any]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			out[fmt.Sprint(k)] = jsonable(e)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = jsonable(e)
		}
		return out
	}
	return v
}

// ConfigValidateOptions are the flags of `quayctl config validate`.
type ConfigValidateOptions struct {
	IO         *IOStreams
	Target     TargetOptions
	Deployment func(context.Context) (collectors.Deployment, error)
	File       string // FILE argument: validate it instead of the deployment's
	From       string
	For        string // quay or quayctl
	Output     string
}

// Validation flavours (--for).
const (
	forQuay    = configcheck.ForQuay
	forQuayctl = configcheck.ForQuayctl
)

// NewCmdConfigValidate builds `quayctl config validate`.
func NewCmdConfigValidate(f *Factory, runF func(*ConfigValidateOptions) error) *cobra.Command {
	opts := &ConfigValidateOptions{IO: f.IO}
	opts.Deployment = f.deploymentFunc(&opts.Target)
	cmd := &cobra.Command{
		Use:   "validate [FILE]",
		Short: "Check a config.yaml against Quay's rules, grouped as Quay's config-tool does",
		Long: `Check the deployment's config.yaml (or FILE, or the --config of a direct
target) against Quay's required keys and rules: storage configuration
well-formed and its driver known, DB_URI parseable, hostname and scheme,
Redis, TLS certificates for https, the authentication backend's keys, and
features whose prerequisites are missing. Problems are grouped by field
group, as Quay's config-tool groups them: database, storage, redis, host
settings, TLS, auth, features, other. Each names the key and the fix.
Problem messages never contain secret values.

--for quayctl checks the file as quayctl serve reads it instead (it also
reports what quayctl serve does not support yet).

Exit codes: 0 valid (warnings allowed), 1 errors found or the config cannot
be read, 2 bad flags.`,
		Example: `  quayctl config validate
  quayctl config validate ./quay-config/config.yaml
  quayctl config validate --openshift -n quay --from bundle -o json`,
		Args: targetArgs(func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return argsError{fmt.Errorf("%s takes at most one argument: FILE", cmd.CommandPath())}
			}
			return nil
		}),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := targetFromFlags(cmd.Flags())
			if err != nil {
				return err
			}
			opts.Target = t
			opts.File = ""
			if len(args) == 1 {
				opts.File = args[0]
			}
			if err := checkOutput(opts.Output); err != nil {
				return err
			}
			if opts.For != forQuay && opts.For != forQuayctl {
				return flagError{fmt.Errorf("--for %q is not one of quay, quayctl", opts.For)}
			}
			if err := checkFrom(opts.From, t); err != nil {
				return err
			}
			if opts.File != "" && opts.From != fromAuto {
				return flagError{errors.New("--from reads the deployment's config; it cannot be combined with FILE")}
			}
			if runF != nil {
				return runF(opts)
			}
			return configValidateRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.From, "from", fromAuto, "OpenShift: pod, bundle or mounted (see config get)")
	cmd.Flags().StringVar(&opts.For, "for", forQuay, "the rules to apply: quay (Red Hat Quay) or quayctl (quayctl serve)")
	addOutputFlag(cmd, &opts.Output)
	return cmd
}

func configValidateRun(ctx context.Context, opts *ConfigValidateOptions) error {
	var (
		raw   []byte
		src   string
		files configcheck.FileProbe
	)
	switch {
	case opts.File != "" || opts.Target.Kind == TargetDirect && opts.Target.ConfigPath != "":
		path := opts.File
		if path == "" {
			path = opts.Target.ConfigPath
		}
		if st, err := os.Stat(path); err == nil && st.IsDir() {
			path = filepath.Join(path, "config.yaml")
		}
		b, err := os.ReadFile(path)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return &UserError{Msg: "cannot read " + path, Err: err, Remedy: "give the path of a config.yaml, or of the directory holding it (a config bundle)"}
			}
			return &UserError{Msg: "cannot read " + path, Err: err}
		}
		raw, src, files = b, path, configcheck.LocalFiles(filepath.Dir(path))
	default:
		d, err := opts.Deployment(ctx)
		if err != nil {
			return err
		}
		raw, src, err = readDeploymentConfig(ctx, d, opts.From, opts.IO.ErrOut)
		if err != nil {
			return err
		}
		if opts.From == fromAuto || opts.From == fromPod {
			files = gather.DeploymentFiles(ctx, d)
		}
	}
	res, err := configcheck.Validate(raw, src, opts.For, files)
	if err != nil {
		return err
	}
	if err := render(opts.IO.Out, opts.Output, res, func(w io.Writer) error {
		return validateHuman(w, opts.IO.OutTTY, res)
	}); err != nil {
		return err
	}
	if !res.Valid {
		return &exitCodeError{code: ExitError}
	}
	return nil
}

func validateHuman(w io.Writer, tty bool, res configcheck.Result) error {
	verdict := "valid"
	if !res.Valid {
		verdict = "INVALID"
	}
	summary := fmt.Sprintf("%s: %s for %s — %d %s, %d %s", res.Source, verdict, res.For,
		res.Errors, plural(res.Errors, "error", "errors"), res.Warnings, plural(res.Warnings, "warning", "warnings"))
	if err := heading(w, tty, summary); err != nil {
		return err
	}
	if len(res.Problems) == 0 {
		return nil
	}
	t := newTable("GROUP", "SEVERITY", "KEY", "PROBLEM", "FIX")
	for _, p := range res.Problems {
		t.row(p.Group, p.Severity.String(), p.Key, p.Message, p.Fix)
		if p.Severity == config.SeverityError {
			t.tone(1, toneBad)
		} else {
			t.tone(1, toneWarn)
		}
	}
	return t.render(w, tty)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
