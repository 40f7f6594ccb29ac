package openshift

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	kubefake "k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/quayctl/quayctl/collectors"
)

func TestStatus(t *testing.T) {
	e := newTestEnv(t, nil)
	st, err := e.d.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if st.Namespace != "quay" || st.Name != "registry" || st.CurrentVersion != "3.11.1" ||
		st.RegistryEndpoint != "https://registry-quay-quay.apps.example.com" || st.ConfigBundleSecret != "config-bundle-secret" {
		t.Errorf("status header: %+v", st)
	}
	if st.DebugLog {
		t.Error("DebugLog true without the override")
	}
	type cond struct{ Type, Status, Reason string }
	var got []cond
	for _, c := range st.Conditions {
		got = append(got, cond{c.Type, c.Status, c.Reason})
	}
	want := []cond{
		{"ComponentsCreated", "False", ReasonMigrationsInProgress},
		{"Available", "False", ReasonComponentNotReady},
		{"RolloutBlocked", "True", ReasonConfigInvalid},
		{"ComponentQuayReady", "False", ReasonComponentNotReady},
		{"ComponentPostgresReady", "True", ReasonComponentReady},
		{"ComponentObjectStorageReady", "True", ReasonComponentNotManaged},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("conditions:\n got %v\nwant %v", got, want)
	}
	rb := st.Condition(ConditionRolloutBlocked)
	if rb == nil || !strings.Contains(rb.Message, "marked as unmanaged") ||
		!rb.LastTransitionTime.Equal(time.Date(2024, 5, 1, 9, 58, 0, 0, time.UTC)) {
		t.Errorf("RolloutBlocked = %+v", rb)
	}
	if st.Condition("Nope") != nil {
		t.Error("unknown condition found")
	}
	if m := st.Managed(); !reflect.DeepEqual(m, []string{"clair", "postgres", "redis", "horizontalpodautoscaler", "route", "mirror", "tls", "quay", "clairpostgres"}) {
		t.Errorf("managed = %v", m)
	}
	if u := st.Unmanaged(); !reflect.DeepEqual(u, []string{"objectstorage", "monitoring"}) {
		t.Errorf("unmanaged = %v", u)
	}
}

func TestStatusOverrides(t *testing.T) {
	e := newTestEnv(t, registryWithSpec(t, `
spec:
  components:
  - kind: quay
    managed: true
    overrides:
      replicas: 3
      env:
      - {name: DEBUGLOG, value: "true"}
      - {name: DB_PASSWORD, value: hunter2}
      - name: HTTP_PROXY
        valueFrom: {secretKeyRef: {name: p, key: k}}
`))
	st, err := e.d.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !st.DebugLog {
		t.Error("DebugLog false with DEBUGLOG=true")
	}
	want := RegistryComponent{Kind: "quay", Managed: true, OverrideKeys: []string{"env", "replicas"},
		Env: map[string]string{"DEBUGLOG": "true", "DB_PASSWORD": Redacted, "HTTP_PROXY": "<from reference>"}}
	if len(st.Components) != 1 || !reflect.DeepEqual(st.Components[0], want) {
		t.Errorf("components = %+v", st.Components)
	}
}

func TestEvents(t *testing.T) {
	ev := func(name, typ, reason, kind, obj, msg string, count int32, last time.Time) *corev1.Event {
		return &corev1.Event{
			ObjectMeta:     metav1.ObjectMeta{Namespace: testNS, Name: name},
			Type:           typ,
			Reason:         reason,
			InvolvedObject: corev1.ObjectReference{Kind: kind, Name: obj, Namespace: testNS},
			Message:        msg,
			Count:          count,
			FirstTimestamp: metav1.NewTime(last.Add(-time.Hour)),
			LastTimestamp:  metav1.NewTime(last),
			Source:         corev1.EventSource{Component: "kubelet"},
		}
	}
	series := &corev1.Event{
		ObjectMeta:          metav1.ObjectMeta{Namespace: testNS, Name: "e4"},
		Type:                "Warning",
		Reason:              "FailedScheduling",
		InvolvedObject:      corev1.ObjectReference{Kind: "Pod", Name: "registry-clair-app-8c7b6a-cl"},
		Message:             "0/3 nodes are available: 3 Insufficient memory.",
		EventTime:           metav1.NewMicroTime(t0.Add(-30 * time.Minute)),
		Series:              &corev1.EventSeries{Count: 7, LastObservedTime: metav1.NewMicroTime(t0.Add(-time.Minute))},
		ReportingController: "default-scheduler",
	}
	objs := []runtime.Object{
		ev("e1", "Warning", "BackOff", "Pod", "registry-quay-app-6d9c7f8b4-crash", "Back-off restarting failed container quay-app in pod registry-quay-app-6d9c7f8b4-crash", 12, t0.Add(-2*time.Minute)),
		ev("e2", "Normal", "Pulled", "Pod", "registry-quay-database-5f7d9c6b8-db", "Container image already present on machine", 4, t0.Add(-10*time.Minute)),
		ev("e3", "Warning", "Failed", "Pod", "registry-clair-app-8c7b6a-cl", `Failed to pull image "registry.redhat.io/quay/clair-rhel8:v3.11.1": unauthorized`, 3, t0.Add(-5*time.Minute)),
		series,
		// Another namespace: not listed.
		&corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: "other", Name: "x"}, Reason: "Other", LastTimestamp: metav1.NewTime(t0)},
	}
	objs = append(objs, clusterPods()...)
	e := newTestEnv(t, nil, objs...)
	got, err := e.d.Events(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := []Event{
		{Type: "Normal", Reason: "Pulled", Object: "Pod/registry-quay-database-5f7d9c6b8-db", Message: "Container image already present on machine", Count: 4, FirstTime: t0.Add(-70 * time.Minute), LastTime: t0.Add(-10 * time.Minute), Source: "kubelet"},
		{Type: "Warning", Reason: "Failed", Object: "Pod/registry-clair-app-8c7b6a-cl", Message: `Failed to pull image "registry.redhat.io/quay/clair-rhel8:v3.11.1": unauthorized`, Count: 3, FirstTime: t0.Add(-65 * time.Minute), LastTime: t0.Add(-5 * time.Minute), Source: "kubelet"},
		{Type: "Warning", Reason: "BackOff", Object: "Pod/registry-quay-app-6d9c7f8b4-crash", Message: "Back-off restarting failed container quay-app in pod registry-quay-app-6d9c7f8b4-crash", Count: 12, FirstTime: t0.Add(-62 * time.Minute), LastTime: t0.Add(-2 * time.Minute), Source: "kubelet"},
		{Type: "Warning", Reason: "FailedScheduling", Object: "Pod/registry-clair-app-8c7b6a-cl", Message: "0/3 nodes are available: 3 Insufficient memory.", Count: 7, FirstTime: t0.Add(-30 * time.Minute), LastTime: t0.Add(-time.Minute), Source: "default-scheduler"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d events, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Type != w.Type || g.Reason != w.Reason || g.Object != w.Object || g.Message != w.Message ||
			g.Count != w.Count || !g.FirstTime.Equal(w.FirstTime) || !g.LastTime.Equal(w.LastTime) || g.Source != w.Source {
			t.Errorf("event %d:\n got %+v\nwant %+v", i, g, w)
		}
	}
}

const quayPodMetrics = `
apiVersion: metrics.k8s.io/v1beta1
kind: PodMetrics
metadata:
  name: registry-quay-app-6d9c7f8b4-ok
  namespace: quay
timestamp: "2024-05-01T10:00:00Z"
window: 30s
containers:
- name: quay-app
  usage:
    cpu: 250m
    memory: 3Gi
`

func TestStatsAndResources(t *testing.T) {
	ctx := t.Context()
	tests := []struct {
		name      string
		metrics   bool
		component string
		want      collectors.Stats
		wantErr   string
	}{
		{name: "limits only, no metrics API", component: "quay", want: collectors.Stats{MemoryLimitBytes: 8 << 30}},
		{name: "usage from metrics.k8s.io", metrics: true, component: "quay", want: collectors.Stats{CPUPercent: 25, MemoryBytes: 3 << 30, MemoryLimitBytes: 8 << 30}},
		{name: "no sample for this pod", metrics: true, component: "redis", want: collectors.Stats{MemoryLimitBytes: 16 << 30}},
		{name: "requests only: unlimited", component: "database", want: collectors.Stats{}},
		{name: "not running", component: "clair", wantErr: "component clair (registry-clair-app-8c7b6a-cl) is ImagePullBackOff, not running — start it, or read its previous logs with: quayctl logs clair --previous"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t, nil)
			if tt.metrics {
				// The kind PodMetrics is served as the resource "pods".
				if err := e.dyn.Tracker().Create(PodMetricsGVR, mustObj(t, quayPodMetrics), testNS); err != nil {
					t.Fatal(err)
				}
			}
			got, err := e.d.Stats(ctx, tt.component)
			if tt.wantErr != "" {
				var nr *collectors.NotRunningError
				if err == nil || err.Error() != tt.wantErr || !errors.As(err, &nr) {
					t.Fatalf("error = %v, want %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("Stats(%s) = %+v, want %+v", tt.component, got, tt.want)
			}
		})
	}
	e := newTestEnv(t, nil)
	res, err := e.d.Resources(ctx, "quay")
	if err != nil {
		t.Fatal(err)
	}
	want := PodResources{Component: "quay", Pod: "registry-quay-app-6d9c7f8b4-ok", Containers: []ContainerResources{{
		Container: "quay-app", CPURequestMilli: 2000, CPULimitMilli: 2000, MemoryRequestBytes: 8 << 30, MemoryLimitBytes: 8 << 30,
	}}}
	if !reflect.DeepEqual(res, want) {
		t.Errorf("Resources = %+v, want %+v", res, want)
	}
	// Resources works on pods that are not running too.
	if res, err := e.d.Resources(ctx, "clair"); err != nil || res.Pod != "registry-clair-app-8c7b6a-cl" {
		t.Errorf("Resources(clair) = %+v, %v", res, err)
	}
}

func TestConfigSecrets(t *testing.T) {
	bundle := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: "config-bundle-secret"},
		Data: map[string][]byte{"config.yaml": []byte("SERVER_HOSTNAME: quay.example.com\n"), "ssl.cert": []byte("CERT")}}
	mounted := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: "registry-quay-config-secret-abc123", Labels: map[string]string{LabelRegistry: testReg}, CreationTimestamp: metav1.NewTime(t0)},
		Data: map[string][]byte{"config.yaml": []byte("DB_URI: postgresql://u:p@registry-quay-database:5432/q\n")}}
	older := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: "registry-quay-config-secret-old999", Labels: map[string]string{LabelRegistry: testReg}, CreationTimestamp: metav1.NewTime(t0.Add(-time.Hour))},
		Data: map[string][]byte{"config.yaml": []byte("OLD: true\n")}}
	objs := append([]runtime.Object{bundle, mounted, older}, clusterPods()...)

	t.Run("bundle", func(t *testing.T) {
		e := newTestEnv(t, nil, objs...)
		cs, err := e.d.ConfigBundle(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if b, ok := cs.ConfigYAML(); !ok || string(b) != "SERVER_HOSTNAME: quay.example.com\n" || cs.Name != "config-bundle-secret" {
			t.Errorf("bundle = %+v", cs)
		}
	})
	t.Run("mounted at /conf/stack in the quay pod", func(t *testing.T) {
		e := newTestEnv(t, nil, objs...)
		cs, err := e.d.MountedConfig(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if cs.Name != "registry-quay-config-secret-abc123" {
			t.Errorf("mounted = %s", cs.Name)
		}
	})
	t.Run("no quay pod: newest generated secret", func(t *testing.T) {
		e := newTestEnv(t, nil, bundle, older, mounted)
		cs, err := e.d.MountedConfig(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if cs.Name != "registry-quay-config-secret-abc123" {
			t.Errorf("mounted = %s", cs.Name)
		}
	})
	t.Run("bundle missing", func(t *testing.T) {
		e := newTestEnv(t, nil, clusterPods()...)
		_, err := e.d.ConfigBundle(t.Context())
		if err == nil || !strings.Contains(err.Error(), "the config bundle secret (spec.configBundleSecret) config-bundle-secret not found in namespace quay") {
			t.Errorf("error = %v", err)
		}
	})
	t.Run("secrets forbidden", func(t *testing.T) {
		e := newTestEnv(t, nil, objs...)
		e.kube.PrependReactor("get", "secrets", func(k8stesting.Action) (bool, runtime.Object, error) {
			return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "secrets"}, "config-bundle-secret", errors.New("RBAC"))
		})
		_, err := e.d.ConfigBundle(t.Context())
		if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "ask for get on secrets") {
			t.Errorf("error = %v", err)
		}
	})
}

// Errors from the API carry the remedy.
func TestAPIErrors(t *testing.T) {
	t.Run("pods forbidden", func(t *testing.T) {
		e := newTestEnv(t, nil)
		e.kube.PrependReactor("list", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
			return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "", errors.New("RBAC"))
		})
		_, err := e.d.Components(t.Context())
		if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "ask for get/list on pods") {
			t.Errorf("error = %v", err)
		}
	})
	t.Run("operator namespace unreadable: operator just not listed", func(t *testing.T) {
		e := newTestEnv(t, nil)
		e.kube.PrependReactor("list", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
			if a.GetNamespace() == DefaultOperatorNamespace {
				return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "", errors.New("RBAC"))
			}
			return false, nil, nil
		})
		comps, err := e.d.Components(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range comps {
			if c.Name == collectors.ComponentOperator {
				t.Error("operator listed")
			}
		}
	})
	t.Run("QuayRegistry CRD missing", func(t *testing.T) {
		dyn := newDyn()
		dyn.PrependReactor("list", "quayregistries", func(k8stesting.Action) (bool, runtime.Object, error) {
			return true, nil, apierrors.NewNotFound(schema.GroupResource{Group: "quay.redhat.com", Resource: "quayregistries"}, "")
		})
		_, err := NewFromClients(kubefake.NewClientset(), dyn, nil, testNS, "")
		if err == nil || !strings.Contains(err.Error(), "is the Quay Operator installed?") {
			t.Errorf("error = %v", err)
		}
	})
	t.Run("QuayRegistry forbidden", func(t *testing.T) {
		dyn := newDyn()
		dyn.PrependReactor("list", "quayregistries", func(k8stesting.Action) (bool, runtime.Object, error) {
			return true, nil, apierrors.NewForbidden(schema.GroupResource{Group: "quay.redhat.com", Resource: "quayregistries"}, "", errors.New("RBAC"))
		})
		_, err := NewFromClients(kubefake.NewClientset(), dyn, nil, testNS, "")
		if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "get/list on quayregistries.quay.redhat.com") {
			t.Errorf("error = %v", err)
		}
	})
	t.Run("patch forbidden", func(t *testing.T) {
		e := newTestEnv(t, nil)
		e.dyn.PrependReactor("patch", "quayregistries", func(k8stesting.Action) (bool, runtime.Object, error) {
			return true, nil, apierrors.NewForbidden(schema.GroupResource{Group: "quay.redhat.com", Resource: "quayregistries"}, testReg, errors.New("RBAC"))
		})
		err := e.d.SetDebug(t.Context(), true)
		if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "oc edit quayregistry registry -n quay") {
			t.Errorf("error = %v", err)
		}
	})
	t.Run("no executor", func(t *testing.T) {
		e := newTestEnv(t, nil)
		e.d.exec = nil
		_, err := e.d.Exec(t.Context(), "quay", []string{"true"}, collectors.ExecOptions{})
		if !errors.Is(err, collectors.ErrNotSupported) {
			t.Errorf("error = %v", err)
		}
	})
}
