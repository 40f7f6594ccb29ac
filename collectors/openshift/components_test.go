package openshift

import (
	"errors"
	"reflect"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/quayctl/quayctl/collectors"
)

func intp(i int) *int { return &i }

func TestComponents(t *testing.T) {
	e := newTestEnv(t, nil)
	got, err := e.d.Components(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		Name, Instance, State string
		Ready                 bool
		Restarts              int
		ExitCode              *int
		Reason, Image         string
		StartedAt             time.Time
	}
	want := []row{
		{collectors.ComponentClair, "registry-clair-app-8c7b6a-cl", "ImagePullBackOff", false, 0, nil, "", "registry.redhat.io/quay/clair-rhel8:v3.11.1", t0.Add(-time.Hour)},
		{collectors.ComponentClairPostgres, "registry-clair-postgres-6b5a4c-cp", "Running", true, 0, nil, "", "registry.redhat.io/rhel8/postgresql-15:1", t0.Add(-5 * time.Hour)},
		{collectors.ComponentDatabase, "registry-quay-database-5f7d9c6b8-db", "Running", true, 3, intp(137), "OOMKilled", "registry.redhat.io/rhel8/postgresql-13:1", t0.Add(-10 * time.Minute)},
		{collectors.ComponentMirror, "registry-quay-mirror-7c6d5e-mi", "Running", true, 0, nil, "", quayImage, t0.Add(-5 * time.Hour)},
		{collectors.ComponentOperator, "quay-operator.v3.11.1-6f9b8c7d5-op", "Running", true, 0, nil, "", "registry.redhat.io/quay/quay-operator-rhel8:v3.11.1", t0.Add(-24 * time.Hour)},
		{collectors.ComponentQuay, "registry-quay-app-6d9c7f8b4-crash", "CrashLoopBackOff", false, 12, intp(1), "Error", quayImage, t0.Add(-2 * time.Hour)},
		{collectors.ComponentQuay, "registry-quay-app-6d9c7f8b4-ok", "Running", true, 0, nil, "", quayImage, t0.Add(-3 * time.Hour)},
		{collectors.ComponentAppUpgrade, "registry-quay-app-upgrade-xk2p9", "Succeeded", false, 0, intp(0), "Completed", quayImage, t0.Add(-6 * time.Hour)},
		{collectors.ComponentPGUpgrade, "registry-quay-postgres-upgrade-p8r7q", "Failed", false, 0, intp(2), "Error", "registry.redhat.io/rhel8/postgresql-13:1", t0.Add(-6 * time.Hour)},
		{collectors.ComponentRedis, "registry-quay-redis-7b8c9d-rd", "Running", true, 0, nil, "", "registry.redhat.io/rhel8/redis-6:1", t0.Add(-5 * time.Hour)},
	}
	var rows []row
	for _, c := range got {
		rows = append(rows, row{c.Name, c.Instance, c.State, c.Ready, c.Restarts, c.ExitCode, c.Reason, c.Image, c.StartedAt})
	}
	if len(rows) != len(want) {
		t.Fatalf("got %d components, want %d:\n%+v", len(rows), len(want), rows)
	}
	for i := range want {
		g, w := rows[i], want[i]
		if g.Name != w.Name || g.Instance != w.Instance || g.State != w.State || g.Ready != w.Ready ||
			g.Restarts != w.Restarts || !reflect.DeepEqual(g.ExitCode, w.ExitCode) || g.Reason != w.Reason ||
			g.Image != w.Image || !g.StartedAt.Equal(w.StartedAt) {
			t.Errorf("component %d:\n got %+v (exit %v)\nwant %+v (exit %v)", i, g, deref(g.ExitCode), w, deref(w.ExitCode))
		}
	}
	// Running() follows the state.
	for _, c := range got {
		if c.Instance == "registry-quay-app-6d9c7f8b4-crash" && c.Running() {
			t.Error("a CrashLoopBackOff pod must not report Running()")
		}
		if c.Instance == "registry-quay-database-5f7d9c6b8-db" && !c.Running() {
			t.Error("the restarted database pod is running")
		}
	}
	// Environment: names kept, secrets redacted, references described.
	for _, c := range got {
		if c.Instance != "registry-quay-app-6d9c7f8b4-crash" {
			continue
		}
		wantEnv := map[string]string{
			"DEBUGLOG":             "false",
			"QE_K8S_CONFIG_SECRET": Redacted, // *SECRET* names are redacted, whatever they hold
			"DB_PASSWORD":          Redacted,
			"PROXY":                "http://user:" + Redacted + "@proxy.example.com:3128",
			"HTTP_PROXY":           "<from secret quay-proxy-config key HTTP_PROXY>",
		}
		if !reflect.DeepEqual(c.Env, wantEnv) {
			t.Errorf("env:\n got %v\nwant %v", c.Env, wantEnv)
		}
		if !reflect.DeepEqual(c.Containers, []string{"quay-app"}) {
			t.Errorf("containers = %v", c.Containers)
		}
	}
}

func deref(p *int) any {
	if p == nil {
		return nil
	}
	return *p
}

func TestPodState(t *testing.T) {
	now := metav1.NewTime(t0)
	tests := []struct {
		name string
		pod  corev1.Pod
		want string
	}{
		{"pending, nothing yet", corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodPending}}, "Pending"},
		{"no phase", corev1.Pod{}, "Pending"},
		{"creating", corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodPending, ContainerStatuses: []corev1.ContainerStatus{{Name: "a", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}}}}}, "ContainerCreating"},
		{"bad config", corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodPending, ContainerStatuses: []corev1.ContainerStatus{{Name: "a", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CreateContainerConfigError"}}}}}}, "CreateContainerConfigError"},
		{"init crash", corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodPending, InitContainerStatuses: []corev1.ContainerStatus{{Name: "quay-mirror-init", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}}}}}}, "Init:CrashLoopBackOff"},
		{"init failed", corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodPending, InitContainerStatuses: []corev1.ContainerStatus{{Name: "i", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1}}}}}}, "Init:Error"},
		{"evicted", corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodFailed, Reason: "Evicted"}}, "Evicted"},
		{"terminating", corev1.Pod{ObjectMeta: metav1.ObjectMeta{DeletionTimestamp: &now}, Status: corev1.PodStatus{Phase: corev1.PodRunning}}, "Terminating"},
		{"sidecar OOMKilled", corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{
			{Name: "a", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}},
			{Name: "b", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "OOMKilled", ExitCode: 137}}},
		}}}, "OOMKilled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := podState(&tt.pod); got != tt.want {
				t.Errorf("podState = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestUnknownComponent(t *testing.T) {
	e := newTestEnv(t, nil)
	ctx := t.Context()
	checks := map[string]func() error{
		"logs": func() error { return e.d.Logs(ctx, "builder", collectors.LogOptions{}, &discard{}) },
		"exec": func() error {
			_, err := e.d.Exec(ctx, "builder", []string{"true"}, collectors.ExecOptions{})
			return err
		},
		"readfile": func() error { _, err := e.d.ReadFile(ctx, "builder", "/etc/hostname"); return err },
		"stats":    func() error { _, err := e.d.Stats(ctx, "builder"); return err },
	}
	for name, f := range checks {
		t.Run(name, func(t *testing.T) {
			err := f()
			var nf *collectors.ComponentNotFoundError
			if !errors.As(err, &nf) {
				t.Fatalf("error = %v (%T), want *collectors.ComponentNotFoundError", err, err)
			}
			want := []string{"clair", "clairpostgres", "database", "mirror", "operator", "quay", "quay-app-upgrade", "quay-postgres-upgrade", "redis"}
			if nf.Name != "builder" || !reflect.DeepEqual(nf.Available, want) {
				t.Errorf("got %q available %v", nf.Name, nf.Available)
			}
		})
	}
	if len(e.exec.Calls()) != 0 {
		t.Errorf("nothing should have been executed: %+v", e.exec.Calls())
	}
}

// pick prefers the running and ready pod, and accepts label values and pod
// names as well as component names.
func TestPick(t *testing.T) {
	e := newTestEnv(t, nil)
	tests := map[string]string{
		"quay":                               "registry-quay-app-6d9c7f8b4-ok",
		"quay-app":                           "registry-quay-app-6d9c7f8b4-ok",
		"registry-quay-app-6d9c7f8b4-crash":  "registry-quay-app-6d9c7f8b4-crash",
		"database":                           "registry-quay-database-5f7d9c6b8-db",
		"postgres":                           "registry-quay-database-5f7d9c6b8-db",
		"operator":                           "quay-operator.v3.11.1-6f9b8c7d5-op",
		collectors.ComponentPGUpgrade:        "registry-quay-postgres-upgrade-p8r7q",
		collectors.ComponentClairPostgres:    "registry-clair-postgres-6b5a4c-cp",
		"clair-postgres":                     "registry-clair-postgres-6b5a4c-cp",
		"registry-quay-mirror-7c6d5e-mi":     "registry-quay-mirror-7c6d5e-mi",
		collectors.ComponentAppUpgrade:       "registry-quay-app-upgrade-xk2p9",
		collectors.ComponentMirror:           "registry-quay-mirror-7c6d5e-mi",
		collectors.ComponentRedis:            "registry-quay-redis-7b8c9d-rd",
		collectors.ComponentClair:            "registry-clair-app-8c7b6a-cl",
		"registry-quay-redis-7b8c9d-rd":      "registry-quay-redis-7b8c9d-rd",
		"quay-operator.v3.11.1-6f9b8c7d5-op": "quay-operator.v3.11.1-6f9b8c7d5-op",
	}
	for in, want := range tests {
		r, err := e.d.pick(t.Context(), in)
		if err != nil {
			t.Errorf("pick(%q): %v", in, err)
			continue
		}
		if r.pod.Name != want {
			t.Errorf("pick(%q) = %s, want %s", in, r.pod.Name, want)
		}
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
