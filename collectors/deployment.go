// Package collectors reaches a Quay deployment wherever it runs: podman
// containers, pods of the Quay Operator on OpenShift, a direct connection,
// or (later) an offline support bundle. Each implements Deployment, and one
// contract suite (collectors/testsuite) runs against all of them. Nothing
// here exposes podman or Kubernetes types, so diag checks and bundles never
// depend on where a deployment lives.
package collectors

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// Component names, as an administrator calls them. The Operator adds more
// (QuayRegistry component kinds and its own jobs).
const (
	ComponentQuay          = "quay"
	ComponentDatabase      = "database"
	ComponentRedis         = "redis"
	ComponentClair         = "clair"
	ComponentMirror        = "mirror"
	ComponentClairPostgres = "clairpostgres"
	ComponentObjectStorage = "objectstorage"
	ComponentRoute         = "route"
	ComponentHPA           = "hpa"
	ComponentMonitoring    = "monitoring"
	ComponentTLS           = "tls"
	ComponentConfigEditor  = "configeditor"
	ComponentOperator      = "operator"
	ComponentAppUpgrade    = "quay-app-upgrade"
	ComponentPGUpgrade     = "quay-postgres-upgrade"
)

// Component is one part of a deployment: a container (podman) or a pod
// (OpenShift) playing a role.
type Component struct {
	Name       string            `json:"name"`     // role: quay, database, …
	Instance   string            `json:"instance"` // container or pod name
	Containers []string          `json:"containers,omitempty"`
	State      string            `json:"state"` // running, exited, created, paused, CrashLoopBackOff, Pending, …
	Ready      bool              `json:"ready"`
	Restarts   int               `json:"restarts"`
	ExitCode   *int              `json:"last_exit_code,omitempty"`
	Reason     string            `json:"last_reason,omitempty"` // OOMKilled, Error, Completed, CrashLoopBackOff
	Image      string            `json:"image"`
	StartedAt  time.Time         `json:"started_at,omitempty"`
	Labels     map[string]string `json:"labels,omitempty"`
	// Env is the component's environment with secret values already redacted
	// by the collector (names are kept: POSTGRESQL_USER, DEBUGLOG, …).
	Env map[string]string `json:"env,omitempty"`
}

// Running reports whether the component's process is up.
func (c Component) Running() bool { return strings.EqualFold(c.State, "running") }

// LogOptions select which log lines to stream.
type LogOptions struct {
	Container string        // within a pod; "" = the main container
	Previous  bool          // the previous instance (after a restart)
	Since     time.Duration // 0 = all
	Tail      int           // 0 = all
	Follow    bool
}

// ExecOptions are the standard streams of a command run in a component.
type ExecOptions struct {
	Container string
	Stdin     io.Reader
	Stdout    io.Writer
	Stderr    io.Writer
}

// Stats are a component's resource usage and limits (0 = unknown/unlimited).
type Stats struct {
	CPUPercent       float64 `json:"cpu_percent"`
	MemoryBytes      uint64  `json:"memory_bytes"`
	MemoryLimitBytes uint64  `json:"memory_limit_bytes"`
	PIDs             uint64  `json:"pids,omitempty"`
}

// Deployment is a Quay deployment as the toolkit sees it.
type Deployment interface {
	// Kind is "podman", "openshift", "direct" or "bundle".
	Kind() string
	// Name identifies the deployment (podman host, namespace/QuayRegistry).
	Name() string
	// Components lists the deployment's parts, sorted by Name then Instance.
	Components(ctx context.Context) ([]Component, error)
	// Logs streams a component's logs to w without holding them in memory.
	Logs(ctx context.Context, component string, opts LogOptions, w io.Writer) error
	// ReadFile streams a file from inside a component.
	ReadFile(ctx context.Context, component, path string) (io.ReadCloser, error)
	// Exec runs argv inside a component and returns its exit code.
	Exec(ctx context.Context, component string, argv []string, opts ExecOptions) (int, error)
	// Stats reports resource usage.
	Stats(ctx context.Context, component string) (Stats, error)
}

// Inspector is implemented by deployments that can describe a component in
// full: podman's container inspect, or the pods' objects on OpenShift (what
// `oc describe pod` shows). The JSON has secret values already redacted.
// Support bundles store it; checks do not depend on it.
type Inspector interface {
	Inspect(ctx context.Context, component string) ([]byte, error)
}

// DebugToggler is implemented by deployments whose Quay debug logging
// (DEBUGLOG=true, troubleshooting guide chapter 2) quayctl can switch.
type DebugToggler interface {
	// PlanDebug describes what SetDebug(on) would change, without changing it.
	PlanDebug(ctx context.Context, on bool) (DebugPlan, error)
	SetDebug(ctx context.Context, on bool) error
}

// DebugPlan is shown to the administrator before anything changes.
type DebugPlan struct {
	Target  string   `json:"target"`  // container or QuayRegistry
	Changes []string `json:"changes"` // human lines: "add env DEBUGLOG=true", "re-create container quay"
	NoOp    bool     `json:"no_op"`   // already in the requested state
}

// ErrNotSupported is returned by operations a deployment kind cannot do
// (exec into a bundle, stats of a direct target).
var ErrNotSupported = errors.New("not supported for this deployment")

// ComponentNotFoundError names the missing component and what exists.
type ComponentNotFoundError struct {
	Name      string
	Available []string
}

func (e *ComponentNotFoundError) Error() string {
	avail := append([]string(nil), e.Available...)
	sort.Strings(avail)
	if len(avail) == 0 {
		return fmt.Sprintf("component %q not found: the deployment has no components quayctl recognises — name it with --component %s=CONTAINER", e.Name, e.Name)
	}
	return fmt.Sprintf("component %q not found (have: %s) — check the name, or map it with --component %s=CONTAINER", e.Name, strings.Join(avail, ", "), e.Name)
}

// NotRunningError says a component exists but cannot serve the request.
type NotRunningError struct {
	Component string
	Instance  string
	State     string
}

func (e *NotRunningError) Error() string {
	return fmt.Sprintf("component %s (%s) is %s, not running — start it, or read its previous logs with: quayctl logs %s --previous", e.Component, e.Instance, e.State, e.Component)
}
