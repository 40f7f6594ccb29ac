package checks

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/quayctl/quayctl/collectors"
	"github.com/quayctl/quayctl/diag"
)

var containersStarted = time.Date(2024, 5, 14, 11, 0, 0, 0, time.UTC)

// comp is a component as the collectors report it: running and ready
// unless changed by the options.
func comp(name, instance string, opts ...func(*collectors.Component)) collectors.Component {
	c := collectors.Component{Name: name, Instance: instance, State: "running", Ready: true,
		Image: "registry.example.com/" + name + ":1", StartedAt: containersStarted}
	for _, o := range opts {
		o(&c)
	}
	return c
}

func state(s string) func(*collectors.Component) {
	return func(c *collectors.Component) {
		c.State = s
		c.Ready = strings.EqualFold(s, "running")
	}
}

func notReady(c *collectors.Component) { c.Ready = false }

func restarts(n int) func(*collectors.Component) {
	return func(c *collectors.Component) { c.Restarts = n }
}

func exit(code int, reason string) func(*collectors.Component) {
	return func(c *collectors.Component) { c.ExitCode, c.Reason = &code, reason }
}

// containerFacts holds components.json of cs plus extra facts (values are
// JSON or, for NAME.error, the error text).
func containerFacts(t *testing.T, cs []collectors.Component, extra map[string]string) diag.MapFacts {
	t.Helper()
	b, err := json.Marshal(cs)
	if err != nil {
		t.Fatal(err)
	}
	m := diag.MapFacts{diag.FactComponents: b}
	for k, v := range extra {
		m[k] = []byte(v)
	}
	return m
}

func stats(used, limit uint64) string {
	b, _ := json.Marshal(collectors.Stats{CPUPercent: 12.5, MemoryBytes: used, MemoryLimitBytes: limit, PIDs: 40})
	return string(b)
}

const gib = 1 << 30

var healthyComponents = []collectors.Component{
	comp("database", "postgresql-quay"), comp("quay", "quay-app"), comp("redis", "quay-redis"),
}

type containerCase struct {
	name  string
	cs    []collectors.Component
	extra map[string]string
	want  []want
	evid  map[int][]string // finding index → evidence substrings
	rem   map[int][]string // finding index → remedy substrings
}

func runContainerCases(t *testing.T, c diag.Check, tests []containerCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			facts := containerFacts(t, tt.cs, tt.extra)
			if tt.cs == nil {
				delete(facts, diag.FactComponents)
			}
			got := runCheck(t, c, facts, tt.want...)
			for i, subs := range tt.evid {
				for _, s := range subs {
					if !strings.Contains(evidence(got[i]), s) {
						t.Errorf("finding %d evidence = %q, want %q", i, evidence(got[i]), s)
					}
				}
			}
			for i, subs := range tt.rem {
				for _, s := range subs {
					if !strings.Contains(got[i].Remedy, s) {
						t.Errorf("finding %d remedy = %q, want %q", i, got[i].Remedy, s)
					}
				}
			}
		})
	}
}

func TestContainersRunning(t *testing.T) {
	runContainerCases(t, containersRunning.With(checkContainersRunning), []containerCase{
		{
			name: "healthy: one ok per component",
			cs:   healthyComponents,
			want: []want{
				{diag.OK, "containers.running", "database (postgresql-quay) running, 0 restarts"},
				{diag.OK, "", "quay (quay-app) running, 0 restarts"},
				{diag.OK, "", "redis (quay-redis) running, 0 restarts"},
			},
			evid: map[int][]string{1: {"state: running, ready: true, restarts: 0", "started at: 2024-05-14T11:00:00Z"}},
		},
		{
			name: "not running: fail for quay, database and redis, warn for clair and mirror",
			cs: []collectors.Component{
				comp("clair", "clair-app", state("Pending")),
				comp("database", "postgresql-quay", state("created")),
				comp("mirror", "quay-mirror", state("CrashLoopBackOff"), restarts(7), exit(1, "Error")),
				comp("quay", "quay-app", state("exited"), restarts(2), exit(137, "OOMKilled")),
				comp("redis", "quay-redis", state("paused")),
			},
			want: []want{
				{diag.Warn, "", "clair (clair-app) is not running (Pending)"},
				{diag.Fail, "", "database (postgresql-quay) is not running (created)"},
				{diag.Warn, "", "mirror (quay-mirror) is not running (CrashLoopBackOff, last exit Error)"},
				{diag.Fail, "", "quay (quay-app) is not running (exited, last exit OOMKilled)"},
				{diag.Fail, "", "redis (quay-redis) is not running (paused)"},
			},
			evid: map[int][]string{3: {"state: exited, ready: false, restarts: 2", "last exit: code 137 (OOMKilled)", "started at: 2024-05-14T11:00:00Z"}},
			rem:  map[int][]string{3: {"quayctl logs quay --previous", "quayctl status", "podman start quay-app"}},
		},
		{
			name: "running but not ready",
			cs:   []collectors.Component{comp("quay", "quay-app", notReady)},
			want: []want{{diag.Warn, "", "quay (quay-app) is running but not ready"}},
			rem:  map[int][]string{0: {"quayctl logs quay", "quayctl diagnose --only health"}},
		},
		{
			name: "no quay component",
			cs:   []collectors.Component{comp("database", "postgresql-quay"), comp("redis", "quay-redis")},
			want: []want{
				{diag.Fail, "", "no quay component"},
				{diag.OK, "", "database"}, {diag.OK, "", "redis"},
			},
			evid: map[int][]string{0: {"components found: database, redis"}},
			rem:  map[int][]string{0: {"--component quay=CONTAINER", "quayctl status"}},
		},
		{
			name: "no components on podman",
			cs:   []collectors.Component{},
			want: []want{{diag.Fail, "", "no Quay components found"}},
		},
		{
			name:  "no components on a direct target",
			cs:    []collectors.Component{},
			extra: map[string]string{diag.FactTarget: `{"kind":"direct","name":"quay.example.com"}`},
			want:  []want{{diag.Info, "", "no containers or pods to look at: the target is a direct connection"}},
		},
		{
			name:  "direct target: external components, no missing-quay failure",
			cs:    []collectors.Component{comp("database", "db.example.com:5432/quay", state("external"))},
			extra: map[string]string{diag.FactTarget: `{"kind":"direct","name":"quay.example.com"}`},
			want:  []want{{diag.Info, "", "database (db.example.com:5432/quay) is external"}},
		},
		{
			name: "Operator jobs: succeeded is fine, failed fails",
			cs: []collectors.Component{
				comp("quay", "registry-quay-app-7c9d"),
				comp("quay-app-upgrade", "registry-quay-app-upgrade-x2x4q", state("Succeeded"), exit(0, "Completed")),
				comp("quay-postgres-upgrade", "registry-quay-postgres-upgrade-k8s7w", state("Failed"), exit(1, "Error")),
			},
			want: []want{
				{diag.OK, "", "quay (registry-quay-app-7c9d) running"},
				{diag.OK, "", "quay-app-upgrade (registry-quay-app-upgrade-x2x4q) completed"},
				{diag.Fail, "", "quay-postgres-upgrade (registry-quay-postgres-upgrade-k8s7w) is not running (Failed, last exit Error)"},
			},
			rem: map[int][]string{2: {"quayctl logs quay-postgres-upgrade --openshift"}},
		},
		{
			name:  "components.json could not be gathered",
			cs:    nil,
			extra: map[string]string{diag.FactComponents + ".error": "cannot reach podman at unix:///run/podman/podman.sock: connection refused"},
			want:  []want{{diag.Warn, "", "could not gather components.json: cannot reach podman"}},
			rem:   map[int][]string{0: {"quayctl status"}},
		},
	})
}

func TestContainersRestarts(t *testing.T) {
	old := containersNow
	containersNow = func() time.Time { return containersStarted.Add(time.Hour) }
	defer func() { containersNow = old }()
	justStarted := func(c *collectors.Component) { c.StartedAt = containersStarted.Add(time.Hour - 90*time.Second) }
	runContainerCases(t, containersRestarts.With(checkContainersRestarts), []containerCase{
		{name: "healthy", cs: healthyComponents},
		{name: "below the threshold", cs: []collectors.Component{comp("quay", "quay-app", restarts(containersRestartsWarn-1))}},
		{
			name: "thresholds, CrashLoopBackOff, and a warn cap for clair",
			cs: []collectors.Component{
				comp("clair", "clair-app", restarts(25)),
				comp("database", "postgresql-quay", restarts(containersRestartsWarn)),
				comp("quay", "quay-app", state("CrashLoopBackOff"), restarts(4), exit(1, "Error")),
				comp("redis", "quay-redis", restarts(containersRestartsFail)),
			},
			want: []want{
				{diag.Warn, "containers.restarts", "clair (clair-app) has restarted 25 times"},
				{diag.Warn, "", "database (postgresql-quay) has restarted 3 times"},
				{diag.Fail, "", "quay (quay-app) is in CrashLoopBackOff after 4 restarts"},
				{diag.Fail, "", "redis (quay-redis) has restarted 10 times"},
			},
			evid: map[int][]string{2: {"restarts: 4", "last exit: code 1 (Error)", "started at: 2024-05-14T11:00:00Z"}},
			rem:  map[int][]string{2: {"quayctl logs quay --previous"}},
		},
		{
			name: "restarted a few times and just started again: crash-looping now",
			cs: []collectors.Component{
				comp("quay", "quay-app", restarts(containersRestartsWarn), exit(1, "Error"), justStarted),
				comp("clair", "clair-app", restarts(containersRestartsWarn), justStarted),
				comp("redis", "quay-redis", restarts(containersRestartsWarn-1), justStarted),
			},
			want: []want{
				{diag.Fail, "", "quay (quay-app) has restarted 3 times, the last 1m30s ago: it is crash-looping"},
				{diag.Warn, "", "clair (clair-app) has restarted 3 times, the last 1m30s ago"},
			},
		},
		{
			name: "podman restarting",
			cs:   []collectors.Component{comp("quay", "quay-app", state("restarting"), restarts(1))},
			want: []want{{diag.Warn, "", "quay (quay-app) is restarting (1 restarts so far)"}},
		},
		{name: "components.json unreadable: left to containers.running", cs: nil},
	})
}

func TestContainersOOM(t *testing.T) {
	runContainerCases(t, containersOOM.With(checkContainersOOM), []containerCase{
		{name: "healthy", cs: healthyComponents},
		{
			name: "OOMKilled quay fails with its memory, clair warns",
			cs: []collectors.Component{
				comp("clair", "clair-app", state("exited"), exit(137, "OOMKilled")),
				comp("quay", "quay-app", restarts(3), exit(137, "OOMKilled")),
			},
			extra: map[string]string{"components/quay/stats.json": stats(3*gib, 4*gib)},
			want: []want{
				{diag.Warn, "containers.oom", "clair (clair-app) was killed for running out of memory (OOMKilled)"},
				{diag.Fail, "", "quay (quay-app) was killed for running out of memory (OOMKilled)"},
			},
			evid: map[int][]string{1: {"last exit: code 137 (OOMKilled)", "memory: 3.0 GiB (limit 4.0 GiB)"}},
			rem:  map[int][]string{1: {"--memory", "QuayRegistry", "quayctl logs quay --previous"}},
		},
	})
}

func TestContainersResources(t *testing.T) {
	na := "stats: " + diag.ErrNotApplicable.Error()
	runContainerCases(t, containersResources.With(checkContainersResources), []containerCase{
		{
			name: "healthy: well below, unlimited, not applicable",
			cs:   healthyComponents,
			extra: map[string]string{
				"components/database/stats.json":    stats(1*gib, 0),
				"components/quay/stats.json":        stats(2*gib, 8*gib),
				"components/redis/stats.json.error": na,
			},
		},
		{
			name: "near the limit: warn at 90%, fail at 97%, clair capped at warn",
			cs:   []collectors.Component{comp("clair", "clair-app"), comp("database", "postgresql-quay"), comp("quay", "quay-app")},
			extra: map[string]string{
				"components/clair/stats.json":    stats(99*gib/100, 1*gib),
				"components/database/stats.json": stats(92*gib/100, 1*gib),
				"components/quay/stats.json":     stats(98*gib/100, 1*gib),
			},
			want: []want{
				{diag.Warn, "containers.resources", "clair (clair-app) uses 99% of its memory limit"},
				{diag.Warn, "", "database (postgresql-quay) uses 92% of its memory limit (942 MiB of 1.0 GiB)"},
				{diag.Fail, "", "quay (quay-app) uses 98% of its memory limit"},
			},
			evid: map[int][]string{2: {"memory: 1004 MiB (limit 1.0 GiB), CPU 12.5%", "processes: 40"}},
			rem:  map[int][]string{2: {"OOMKilled", "--memory"}},
		},
		{
			name: "a stopped component has no stats to read; a failed stats fact is reported",
			cs:   []collectors.Component{comp("quay", "quay-app"), comp("redis", "quay-redis", state("exited"))},
			extra: map[string]string{
				"components/quay/stats.json.error": "stats of quay (container quay-app): podman: timeout",
			},
			want: []want{{diag.Warn, "", "could not gather components/quay/stats.json"}},
			rem:  map[int][]string{0: {"podman stats quay-app"}},
		},
	})
}

func TestContainersQuayRegistry(t *testing.T) {
	cr := func(conds string) string {
		return `{"namespace":"quay-enterprise","name":"registry","current_version":"3.11.1","conditions":[` + conds + `]}`
	}
	available := `{"type":"Available","status":"True","reason":"HealthChecksPassing","message":"all registry component healthchecks passing"}`
	na := "a QuayRegistry exists only on OpenShift: " + diag.ErrNotApplicable.Error()
	runContainerCases(t, containersQuayRegistry.With(checkContainersQuayRegistry), []containerCase{
		{name: "podman: skipped quietly", cs: healthyComponents, extra: map[string]string{diag.FactOpenShiftCR + ".error": na}},
		{
			name:  "available",
			cs:    healthyComponents,
			extra: map[string]string{diag.FactOpenShiftCR: cr(available)},
			want:  []want{{diag.OK, "containers.quayregistry", "QuayRegistry quay-enterprise/registry is Available (version 3.11.1)"}},
			evid:  map[int][]string{0: {"Available=True (HealthChecksPassing): all registry component healthchecks passing"}},
		},
		{
			name: "migrations failed",
			cs:   healthyComponents,
			extra: map[string]string{diag.FactOpenShiftCR: cr(
				`{"type":"Available","status":"False","reason":"MigrationsFailed","message":"error running database migrations","last_transition_time":"2024-05-14T11:00:00Z"}`)},
			want: []want{{diag.Fail, "", "QuayRegistry quay-enterprise/registry: database migrations failed"}},
			evid: map[int][]string{0: {"Available=False (MigrationsFailed): error running database migrations since 2024-05-14T11:00:00Z"}},
			rem:  map[int][]string{0: {"quayctl logs quay-app-upgrade --openshift"}},
		},
		{
			name: "rollout blocked",
			cs:   healthyComponents,
			extra: map[string]string{diag.FactOpenShiftCR: cr(available + `,` +
				`{"type":"RolloutBlocked","status":"True","reason":"ConfigInvalid","message":"required component objectstorage marked as unmanaged, but DISTRIBUTED_STORAGE_CONFIG is missing"}`)},
			want: []want{{diag.Fail, "", "rollout blocked (ConfigInvalid)"}},
			evid: map[int][]string{0: {"DISTRIBUTED_STORAGE_CONFIG is missing"}},
			rem:  map[int][]string{0: {"quayctl config validate", "quayctl logs operator --openshift"}},
		},
		{
			name: "not available",
			cs:   healthyComponents,
			extra: map[string]string{diag.FactOpenShiftCR: cr(
				`{"type":"Available","status":"False","reason":"ComponentNotReady","message":"Quay component not ready"}`)},
			want: []want{{diag.Fail, "", "is not Available (ComponentNotReady)"}},
		},
		{
			name: "a component not ready",
			cs:   healthyComponents,
			extra: map[string]string{diag.FactOpenShiftCR: cr(available + `,` +
				`{"type":"ComponentClairReady","status":"False","reason":"ComponentNotReady","message":"Clair component not ready"}`)},
			want: []want{{diag.Warn, "", "components not ready: Clair"}},
		},
		{
			name:  "forbidden",
			cs:    healthyComponents,
			extra: map[string]string{diag.FactOpenShiftCR + ".error": "quayregistries.quay.redhat.com \"registry\" is forbidden"},
			want:  []want{{diag.Warn, "", "could not gather openshift/quayregistry.json"}},
			rem:   map[int][]string{0: {"RBAC"}},
		},
	})
}

func TestContainersEvents(t *testing.T) {
	old := containersNow
	containersNow = func() time.Time { return time.Date(2024, 5, 14, 12, 0, 0, 0, time.UTC) }
	defer func() { containersNow = old }()
	ev := func(typ, reason, object, msg string, count int, last string) string {
		return `{"type":"` + typ + `","reason":"` + reason + `","object":"` + object + `","message":"` + msg +
			`","count":` + strconv.Itoa(count) + `,"last_time":"` + last + `"}`
	}
	list := func(evs ...string) string { return "[" + strings.Join(evs, ",") + "]" }
	var manyBackOff []string
	for i := range 7 {
		manyBackOff = append(manyBackOff, ev("Warning", "BackOff", "Pod/registry-quay-app-"+strconv.Itoa(i), "Back-off restarting failed container quay-app", 2, "2024-05-14T11:5"+strconv.Itoa(i)+":00Z"))
	}
	runContainerCases(t, containersEvents.With(checkContainersEvents), []containerCase{
		{name: "podman: skipped quietly", cs: healthyComponents,
			extra: map[string]string{diag.FactOpenShiftEvt + ".error": "namespace events exist only on OpenShift: " + diag.ErrNotApplicable.Error()}},
		{
			name: "quiet namespace: old and normal events do not count",
			cs:   healthyComponents,
			extra: map[string]string{diag.FactOpenShiftEvt: list(
				ev("Warning", "BackOff", "Pod/registry-quay-app-1", "Back-off restarting failed container", 30, "2024-05-14T10:30:00Z"),
				ev("Normal", "Pulled", "Pod/registry-quay-app-2", "Container image already present", 1, "2024-05-14T11:55:00Z"),
				ev("Warning", "ProvisioningFailed", "PersistentVolumeClaim/x", "storageclass not found", 1, "2024-05-14T11:55:00Z"))},
			want: []want{{diag.OK, "containers.events", "no warning events that point at a failing pod in the last hour (3 events in all)"}},
		},
		{
			name: "recent warnings grouped by reason",
			cs:   healthyComponents,
			extra: map[string]string{diag.FactOpenShiftEvt: list(
				ev("Warning", "FailedScheduling", "Pod/registry-clair-postgres-5b7c", "0/3 nodes are available: 3 Insufficient memory.", 4, "2024-05-14T11:40:00Z"),
				ev("Warning", "BackOff", "Pod/registry-quay-app-7c9d", "Back-off restarting failed container quay-app in pod registry-quay-app-7c9d", 12, "2024-05-14T11:59:00Z"),
				ev("Warning", "OOMKilling", "Node/worker-1", "Memory cgroup out of memory: Killed process 4242 (gunicorn)", 1, "2024-05-14T11:58:00Z"),
				ev("Warning", "FailedMount", "Pod/registry-quay-app-7c9d", "MountVolume.SetUp failed for volume \\\"configvolume\\\" : secret \\\"registry-quay-config-secret\\\" not found", 3, "2024-05-14T11:30:00Z"))},
			want: []want{
				{diag.Warn, "containers.events", "12 BackOff warning events in the last hour"},
				{diag.Fail, "", "3 FailedMount warning events"},
				{diag.Fail, "", "4 FailedScheduling warning events"},
				{diag.Fail, "", "1 OOMKilling warning events"},
			},
			evid: map[int][]string{
				0: {"2024-05-14T11:59:00Z Pod/registry-quay-app-7c9d BackOff (x12): Back-off restarting failed container quay-app"},
				2: {"3 Insufficient memory"},
			},
			rem: map[int][]string{0: {"quayctl logs COMPONENT --previous"}, 3: {"--memory"}},
		},
		{
			name:  "many objects: the last five",
			cs:    healthyComponents,
			extra: map[string]string{diag.FactOpenShiftEvt: list(manyBackOff...)},
			want:  []want{{diag.Warn, "", "14 BackOff warning events"}},
			evid:  map[int][]string{0: {"(the last 5 of 7 objects)", "registry-quay-app-6"}},
		},
	})
}
