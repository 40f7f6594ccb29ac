package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"

	"github.com/quayctl/quayctl/collectors"
	"github.com/quayctl/quayctl/collectors/openshift"
	"github.com/quayctl/quayctl/internal/redact"
)

// StatusOptions are the flags of `quayctl status`.
type StatusOptions struct {
	IO         *IOStreams
	Target     TargetOptions
	Deployment func(context.Context) (collectors.Deployment, error)
	Output     string
	NoStats    bool
	// Now is the clock for ages (tests fix it).
	Now func() time.Time
}

// statusResult is the stable JSON/YAML schema of `quayctl status`.
type statusResult struct {
	Kind       string                    `json:"kind"`
	Deployment string                    `json:"deployment"`
	Components []componentStatus         `json:"components"`
	Registry   *openshift.RegistryStatus `json:"registry,omitempty"`
	Events     []openshift.Event         `json:"warning_events,omitempty"`
	Notes      []string                  `json:"notes,omitempty"`
}

type componentStatus struct {
	collectors.Component
	Stats      *collectors.Stats `json:"stats,omitempty"`
	StatsError string            `json:"stats_error,omitempty"`
}

// registryStatuser and eventLister are what the OpenShift collector adds
// to collectors.Deployment for status.
type registryStatuser interface {
	Status(ctx context.Context) (openshift.RegistryStatus, error)
}

type eventLister interface {
	Events(ctx context.Context) ([]openshift.Event, error)
}

// maxEvents is how many recent warning events status shows.
const maxEvents = 10

// NewCmdStatus builds `quayctl status`.
func NewCmdStatus(f *Factory, runF func(*StatusOptions) error) *cobra.Command {
	opts := &StatusOptions{IO: f.IO, Now: time.Now}
	opts.Deployment = f.deploymentFunc(&opts.Target)
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the deployment's components: state, restarts, images, resources",
		Long: `Show each component of the Quay deployment (quay, database, redis, clair,
mirror, and on OpenShift the QuayRegistry's other components and the
Operator): its state, readiness, restarts, last exit code and reason
(OOMKilled, CrashLoopBackOff, Error), image, start time and resource usage
(podman stats; on OpenShift the pod's memory limit). On OpenShift it also
shows the QuayRegistry's conditions and the namespace's recent warning
events.

Exit codes: 0 shown (whatever the states), 1 the deployment cannot be
reached, 2 bad flags.`,
		Example: `  quayctl status
  quayctl status --podman
  quayctl status --openshift -n quay-enterprise -o json`,
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
			if runF != nil {
				return runF(opts)
			}
			return statusRun(cmd.Context(), opts)
		},
	}
	addTargetFlags(cmd)
	addOutputFlag(cmd, &opts.Output)
	cmd.Flags().BoolVar(&opts.NoStats, "no-stats", false, "skip resource usage (faster)")
	return cmd
}

func statusRun(ctx context.Context, opts *StatusOptions) error {
	d, err := opts.Deployment(ctx)
	if err != nil {
		return err
	}
	comps, err := d.Components(ctx)
	if err != nil {
		return deploymentError("cannot list the components", err)
	}
	res := statusResult{Kind: d.Kind(), Deployment: d.Name(), Components: make([]componentStatus, 0, len(comps))}
	stats := map[string]componentStatus{}
	for _, c := range comps {
		if len(c.Env) > 0 {
			c.Env, _ = redact.Env(c.Env) // collectors redact already; this is the one function's guarantee
		}
		cs := componentStatus{Component: c}
		if !opts.NoStats && c.Running() {
			s, seen := stats[c.Name]
			if !seen {
				st, err := d.Stats(ctx, c.Name)
				var nr *collectors.NotRunningError
				switch {
				case err == nil:
					s.Stats = &st
				case errors.Is(err, collectors.ErrNotSupported), errors.As(err, &nr):
				default:
					s.StatsError, _ = redact.String(err.Error())
				}
				stats[c.Name] = s
			}
			cs.Stats, cs.StatsError = s.Stats, s.StatsError
		}
		res.Components = append(res.Components, cs)
	}
	if rs, ok := d.(registryStatuser); ok {
		st, err := rs.Status(ctx)
		if err != nil {
			res.Notes = append(res.Notes, "QuayRegistry status: "+redactErr(err))
		} else {
			res.Registry = &st
		}
	}
	if el, ok := d.(eventLister); ok {
		evs, err := el.Events(ctx)
		if err != nil {
			res.Notes = append(res.Notes, "events: "+redactErr(err))
		}
		for _, e := range evs {
			if e.Type == "Warning" {
				e.Message, _ = redact.String(e.Message)
				res.Events = append(res.Events, e)
			}
		}
		if len(res.Events) > maxEvents {
			res.Events = res.Events[len(res.Events)-maxEvents:]
		}
	}
	if len(comps) == 0 {
		res.Notes = append(res.Notes, noComponentsNote(d.Kind()))
	}
	return render(opts.IO.Out, opts.Output, res, func(w io.Writer) error {
		return statusHuman(w, opts.IO.OutTTY, res, opts.Now())
	})
}

func redactErr(err error) string {
	s, _ := redact.String(err.Error())
	return s
}

func noComponentsNote(kind string) string {
	if kind == TargetPodman {
		return "no Quay containers found: name them with --component quay=CONTAINER (and database=, redis=)"
	}
	return "no components found"
}

func statusHuman(w io.Writer, tty bool, res statusResult, now time.Time) error {
	if err := heading(w, tty, fmt.Sprintf("Deployment: %s %s", res.Kind, res.Deployment)); err != nil {
		return err
	}
	t := newTable("COMPONENT", "INSTANCE", "STATE", "READY", "RESTARTS", "LAST EXIT", "IMAGE", "STARTED", "CPU", "MEMORY")
	t.toneOf = func(col int, v string) tone {
		switch col {
		case 2, 3:
			return stateTone(v)
		case 5:
			if strings.Contains(v, "OOMKilled") || strings.Contains(v, "Error") {
				return toneBad
			}
		}
		return toneNone
	}
	for _, c := range res.Components {
		ready, restarts := "no", strconv.Itoa(c.Restarts)
		if c.Ready {
			ready = "yes"
		}
		if c.State == "external" { // a direct target: nothing watched
			ready, restarts = "", ""
		}
		cpu, mem := "", ""
		if c.Stats != nil {
			cpu, mem = formatCPU(c.Stats), formatMemory(c.Stats)
		} else if c.StatsError != "" {
			cpu, mem = "?", "?"
		}
		t.row(c.Name, c.Instance, c.State, ready, restarts, lastExit(c.Component), c.Image, age(c.StartedAt, now), cpu, mem)
	}
	if err := t.render(w, tty); err != nil {
		return err
	}
	for _, c := range res.Components {
		if c.StatsError != "" {
			if _, err := fmt.Fprintf(w, "stats of %s: %s\n", c.Name, c.StatsError); err != nil {
				return err
			}
			break
		}
	}
	if r := res.Registry; r != nil {
		line := fmt.Sprintf("QuayRegistry %s/%s", r.Namespace, r.Name)
		if r.CurrentVersion != "" {
			line += " (version " + r.CurrentVersion + ")"
		}
		if _, err := fmt.Fprintln(w); err != nil {
			return err
		}
		if err := heading(w, tty, line); err != nil {
			return err
		}
		var facts []string
		if r.RegistryEndpoint != "" {
			facts = append(facts, "endpoint: "+r.RegistryEndpoint)
		}
		if r.ConfigBundleSecret != "" {
			facts = append(facts, "config bundle: "+r.ConfigBundleSecret)
		}
		if m := r.Unmanaged(); len(m) > 0 {
			facts = append(facts, "unmanaged: "+strings.Join(m, ", "))
		}
		debug := "off"
		if r.DebugLog {
			debug = "on"
		}
		facts = append(facts, "debug log: "+debug)
		if _, err := fmt.Fprintln(w, strings.Join(facts, "; ")); err != nil {
			return err
		}
		if len(r.Conditions) > 0 {
			ct := newTable("CONDITION", "STATUS", "REASON", "MESSAGE")
			for _, c := range r.Conditions {
				ct.row(c.Type, c.Status, c.Reason, c.Message)
				good := c.Status == "True"
				if c.Type == openshift.ConditionRolloutBlocked {
					good = !good
				}
				if good {
					ct.tone(1, toneGood)
				} else {
					ct.tone(1, toneBad)
				}
			}
			if err := ct.render(w, tty); err != nil {
				return err
			}
		}
	}
	if len(res.Events) > 0 {
		if _, err := fmt.Fprintln(w); err != nil {
			return err
		}
		if err := heading(w, tty, "Recent warning events"); err != nil {
			return err
		}
		et := newTable("LAST SEEN", "OBJECT", "REASON", "COUNT", "MESSAGE")
		for _, e := range res.Events {
			et.row(age(e.LastTime, now), e.Object, e.Reason, strconv.Itoa(e.Count), e.Message)
			et.tone(2, toneWarn)
		}
		if err := et.render(w, tty); err != nil {
			return err
		}
	}
	for _, n := range res.Notes {
		if _, err := fmt.Fprintln(w, "note: "+n); err != nil {
			return err
		}
	}
	return nil
}

// lastExit is "137 (OOMKilled)", "1", "(CrashLoopBackOff)" or "".
func lastExit(c collectors.Component) string {
	var parts []string
	if c.ExitCode != nil {
		parts = append(parts, strconv.Itoa(*c.ExitCode))
	}
	if c.Reason != "" {
		parts = append(parts, "("+c.Reason+")")
	}
	return strings.Join(parts, " ")
}

// age is how long ago t was: 45s, 12m, 5h, 3d; "" for the zero time.
func age(t, now time.Time) string {
	if t.IsZero() {
		return ""
	}
	d := now.Sub(t)
	switch {
	case d < 0:
		return "0s"
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d.Hours()))
	}
	return fmt.Sprintf("%dd ago", int(d.Hours()/24))
}

func formatCPU(s *collectors.Stats) string {
	if s.CPUPercent == 0 && s.MemoryBytes == 0 {
		return "" // usage unknown (OpenShift without the metrics API)
	}
	return fmt.Sprintf("%.1f%%", s.CPUPercent)
}

func formatMemory(s *collectors.Stats) string {
	used, limit := "", ""
	if s.MemoryBytes > 0 {
		used = humanize.IBytes(s.MemoryBytes)
	}
	if s.MemoryLimitBytes > 0 {
		limit = humanize.IBytes(s.MemoryLimitBytes)
	}
	switch {
	case used != "" && limit != "":
		return used + " / " + limit
	case used != "":
		return used
	case limit != "":
		return "limit " + limit
	}
	return ""
}
