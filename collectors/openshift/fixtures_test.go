package openshift

import (
	"bytes"
	"context"
	"io"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynfake "k8s.io/client-go/dynamic/fake"
	kubefake "k8s.io/client-go/kubernetes/fake"
	"sigs.k8s.io/yaml"
)

const (
	testNS  = "quay"
	testReg = "registry"
)

var t0 = time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)

// registryYAML is a QuayRegistry as the Operator leaves it after a
// reconcile: defaults filled into spec.components, a status with conditions.
const registryYAML = `
apiVersion: quay.redhat.com/v1
kind: QuayRegistry
metadata:
  name: registry
  namespace: quay
spec:
  configBundleSecret: config-bundle-secret
  components:
  - kind: clair
    managed: true
  - kind: postgres
    managed: true
  - kind: objectstorage
    managed: false
  - kind: redis
    managed: true
  - kind: horizontalpodautoscaler
    managed: true
  - kind: route
    managed: true
  - kind: mirror
    managed: true
  - kind: monitoring
    managed: false
  - kind: tls
    managed: true
  - kind: quay
    managed: true
  - kind: clairpostgres
    managed: true
status:
  currentVersion: 3.11.1
  registryEndpoint: https://registry-quay-quay.apps.example.com
  lastUpdated: 2024-05-01 10:00:00.000000000 +0000 UTC
  conditions:
  - type: ComponentsCreated
    status: "False"
    reason: MigrationsInProgress
    message: running database migrations
    lastUpdateTime: "2024-05-01T10:00:00Z"
    lastTransitionTime: "2024-05-01T09:58:00Z"
  - type: Available
    status: "False"
    reason: ComponentNotReady
    message: Quay component not ready
    lastUpdateTime: "2024-05-01T10:00:00Z"
    lastTransitionTime: "2024-05-01T09:58:00Z"
  - type: RolloutBlocked
    status: "True"
    reason: ConfigInvalid
    message: "required component ` + "`objectstorage`" + ` marked as unmanaged, but ` + "`configBundleSecret`" + ` is missing necessary fields"
    lastUpdateTime: "2024-05-01T10:00:00Z"
    lastTransitionTime: "2024-05-01T09:58:00Z"
  - type: ComponentQuayReady
    status: "False"
    reason: ComponentNotReady
    message: Deployment registry-quay-app has zero replicas available
    lastUpdateTime: "2024-05-01T10:00:00Z"
    lastTransitionTime: "2024-05-01T09:58:00Z"
  - type: ComponentPostgresReady
    status: "True"
    reason: ComponentReady
    message: Deployment registry-quay-database healthy
    lastUpdateTime: "2024-05-01T10:00:00Z"
    lastTransitionTime: "2024-05-01T09:58:00Z"
  - type: ComponentObjectStorageReady
    status: "True"
    reason: ComponentNotManaged
    message: Objectstorage not managed by the operator
    lastUpdateTime: "2024-05-01T10:00:00Z"
    lastTransitionTime: "2024-05-01T09:58:00Z"
`

// mustObj parses a YAML object into an Unstructured.
func mustObj(t testing.TB, y string) *unstructured.Unstructured {
	t.Helper()
	var m map[string]any
	if err := yaml.Unmarshal([]byte(y), &m); err != nil {
		t.Fatalf("fixture: %v", err)
	}
	return &unstructured.Unstructured{Object: m}
}

func namedRegistry(t testing.TB, ns, name string) *unstructured.Unstructured {
	o := mustObj(t, registryYAML)
	o.SetNamespace(ns)
	o.SetName(name)
	return o
}

func newDyn(objs ...runtime.Object) *dynfake.FakeDynamicClient {
	return dynfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{QuayRegistryGVR: QuayRegistryListKind}, objs...)
}

// podSpec is a compact description of a pod for the fixtures.
type podSpec struct {
	ns, name   string
	labels     map[string]string
	containers []string
	image      string
	phase      corev1.PodPhase
	ready      bool
	statuses   []corev1.ContainerStatus
	created    time.Time
	limits     corev1.ResourceList
	requests   corev1.ResourceList
	env        []corev1.EnvVar
	volumes    []corev1.Volume
	mounts     []corev1.VolumeMount
}

func (s podSpec) pod() *corev1.Pod {
	ns := s.ns
	if ns == "" {
		ns = testNS
	}
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: s.name, Labels: s.labels, CreationTimestamp: metav1.NewTime(s.created)},
		Status:     corev1.PodStatus{Phase: s.phase, ContainerStatuses: s.statuses},
	}
	if !s.created.IsZero() {
		st := metav1.NewTime(s.created)
		p.Status.StartTime = &st
	}
	for i, c := range s.containers {
		ct := corev1.Container{Name: c, Image: s.image}
		if i == 0 {
			ct.Resources = corev1.ResourceRequirements{Limits: s.limits, Requests: s.requests}
			ct.Env = s.env
			ct.VolumeMounts = s.mounts
		}
		p.Spec.Containers = append(p.Spec.Containers, ct)
	}
	p.Spec.Volumes = s.volumes
	cond := corev1.ConditionFalse
	if s.ready {
		cond = corev1.ConditionTrue
	}
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: cond}}
	return p
}

func regLabels(component string) map[string]string {
	return map[string]string{LabelRegistry: testReg, LabelComponent: component}
}

func running(name string, started time.Time) corev1.ContainerStatus {
	return corev1.ContainerStatus{Name: name, Ready: true, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(started)}}}
}

const quayImage = "registry.redhat.io/quay/quay-rhel8:v3.11.1"

// clusterPods is a Quay Operator deployment with trouble: one quay pod in
// CrashLoopBackOff, the database OOMKilled once, Clair unable to pull.
func clusterPods() []runtime.Object {
	specs := []podSpec{
		{ // quay: crash looping
			name: "registry-quay-app-6d9c7f8b4-crash", labels: regLabels("quay-app"), containers: []string{"quay-app"}, image: quayImage,
			phase: corev1.PodRunning, created: t0.Add(-2 * time.Hour),
			statuses: []corev1.ContainerStatus{{
				Name: "quay-app", RestartCount: 12,
				State:                corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff", Message: "back-off 5m0s restarting failed container"}},
				LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1, Reason: "Error", FinishedAt: metav1.NewTime(t0.Add(-time.Minute))}},
			}},
			limits: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("8Gi")},
			env: []corev1.EnvVar{
				{Name: "DEBUGLOG", Value: "false"},
				{Name: "QE_K8S_CONFIG_SECRET", Value: "registry-quay-config-secret-abc123"},
				{Name: "DB_PASSWORD", Value: "s3cret"},
				{Name: "PROXY", Value: "http://user:hunter2@proxy.example.com:3128"},
				{Name: "HTTP_PROXY", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "quay-proxy-config"}, Key: "HTTP_PROXY"}}},
			},
		},
		{ // quay: the healthy replica
			name: "registry-quay-app-6d9c7f8b4-ok", labels: regLabels("quay-app"), containers: []string{"quay-app"}, image: quayImage,
			phase: corev1.PodRunning, ready: true, created: t0.Add(-3 * time.Hour),
			statuses: []corev1.ContainerStatus{running("quay-app", t0.Add(-3*time.Hour))},
			limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("8Gi")},
			requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2000m"), corev1.ResourceMemory: resource.MustParse("8Gi")},
			volumes:  []corev1.Volume{{Name: "configvolume", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "registry-quay-config-secret-abc123"}}}},
			mounts:   []corev1.VolumeMount{{Name: "configvolume", MountPath: "/conf/stack"}},
		},
		{ // database: restarted after an OOM kill, running again
			name: "registry-quay-database-5f7d9c6b8-db", labels: regLabels("postgres"), containers: []string{"postgres"}, image: "registry.redhat.io/rhel8/postgresql-13:1",
			phase: corev1.PodRunning, ready: true, created: t0.Add(-5 * time.Hour),
			statuses: []corev1.ContainerStatus{{
				Name: "postgres", Ready: true, RestartCount: 3,
				State:                corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(t0.Add(-10 * time.Minute))}},
				LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 137, Reason: "OOMKilled", FinishedAt: metav1.NewTime(t0.Add(-11 * time.Minute))}},
			}},
			requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("2Gi")},
		},
		{
			name: "registry-quay-redis-7b8c9d-rd", labels: regLabels("redis"), containers: []string{"redis-master"}, image: "registry.redhat.io/rhel8/redis-6:1",
			phase: corev1.PodRunning, ready: true, created: t0.Add(-5 * time.Hour),
			statuses: []corev1.ContainerStatus{running("redis-master", t0.Add(-5*time.Hour))},
			limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("16Gi")},
		},
		{
			name: "registry-clair-app-8c7b6a-cl", labels: regLabels("clair-app"), containers: []string{"clair-app"}, image: "registry.redhat.io/quay/clair-rhel8:v3.11.1",
			phase: corev1.PodPending, created: t0.Add(-time.Hour),
			statuses: []corev1.ContainerStatus{{Name: "clair-app", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff"}}}},
		},
		{
			name: "registry-clair-postgres-6b5a4c-cp", labels: regLabels("clair-postgres"), containers: []string{"clair-postgres"}, image: "registry.redhat.io/rhel8/postgresql-15:1",
			phase: corev1.PodRunning, ready: true, created: t0.Add(-5 * time.Hour),
			statuses: []corev1.ContainerStatus{running("clair-postgres", t0.Add(-5*time.Hour))},
		},
		{
			name: "registry-quay-mirror-7c6d5e-mi", labels: regLabels("quay-mirror"), containers: []string{"quay-mirror"}, image: quayImage,
			phase: corev1.PodRunning, ready: true, created: t0.Add(-5 * time.Hour),
			statuses: []corev1.ContainerStatus{running("quay-mirror", t0.Add(-5*time.Hour))},
		},
		{ // the migration job: finished
			name: "registry-quay-app-upgrade-xk2p9", labels: map[string]string{LabelRegistry: testReg, LabelComponent: "quay-app-upgrade", LabelJobName: "registry-quay-app-upgrade"},
			containers: []string{"quay-app-upgrade"}, image: quayImage, phase: corev1.PodSucceeded, created: t0.Add(-6 * time.Hour),
			statuses: []corev1.ContainerStatus{{Name: "quay-app-upgrade", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed", FinishedAt: metav1.NewTime(t0.Add(-5 * time.Hour))}}}},
		},
		{ // the Postgres upgrade job's pod: no quay-component label, only the job's name
			name: "registry-quay-postgres-upgrade-p8r7q", labels: map[string]string{LabelRegistry: testReg, LabelBatchJobName: "registry-quay-postgres-upgrade", LabelJobName: "registry-quay-postgres-upgrade"},
			containers: []string{"postgres-new"}, image: "registry.redhat.io/rhel8/postgresql-13:1", phase: corev1.PodFailed, created: t0.Add(-6 * time.Hour),
			statuses: []corev1.ContainerStatus{{Name: "postgres-new", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 2, Reason: "Error", FinishedAt: metav1.NewTime(t0.Add(-6 * time.Hour))}}}},
		},
		{ // the Operator, installed for all namespaces
			ns: DefaultOperatorNamespace, name: "quay-operator.v3.11.1-6f9b8c7d5-op", labels: map[string]string{LabelOperatorKey: LabelOperatorValue},
			containers: []string{"quay-operator"}, image: "registry.redhat.io/quay/quay-operator-rhel8:v3.11.1", phase: corev1.PodRunning, ready: true, created: t0.Add(-24 * time.Hour),
			statuses: []corev1.ContainerStatus{running("quay-operator", t0.Add(-24*time.Hour))},
		},
		{ // another registry's quay pod in the same namespace: not ours
			name: "other-quay-app-1-x", labels: map[string]string{LabelRegistry: "other", LabelComponent: "quay-app"}, containers: []string{"quay-app"}, image: quayImage,
			phase: corev1.PodRunning, ready: true, created: t0,
		},
		{ // an unrelated pod
			name: "unrelated", labels: map[string]string{"app": "something"}, containers: []string{"c"}, image: "busybox", phase: corev1.PodRunning, created: t0,
		},
	}
	objs := make([]runtime.Object, 0, len(specs))
	for _, s := range specs {
		objs = append(objs, s.pod())
	}
	return objs
}

// testEnv is a Deployment over fakes, with the fakes at hand.
type testEnv struct {
	d    *Deployment
	kube *kubefake.Clientset
	dyn  *dynfake.FakeDynamicClient
	exec *recordingExecutor
}

func newTestEnv(t testing.TB, registry *unstructured.Unstructured, kubeObjs ...runtime.Object) *testEnv {
	t.Helper()
	if registry == nil {
		registry = mustObj(t, registryYAML)
	}
	if kubeObjs == nil {
		kubeObjs = clusterPods()
	}
	e := &testEnv{kube: kubefake.NewClientset(kubeObjs...), dyn: newDyn(registry), exec: &recordingExecutor{}}
	d, err := NewFromClients(e.kube, e.dyn, e.exec, testNS, "")
	if err != nil {
		t.Fatalf("NewFromClients: %v", err)
	}
	e.d = d
	return e
}

// recordingExecutor records each request (with its stdin read in full) and
// answers with canned output, or with respond when set.
type recordingExecutor struct {
	mu       sync.Mutex
	calls    []execCall
	stdout   string
	stderr   string
	code     int
	err      error
	respond  func(req ExecRequest) (stdout, stderr string, code int, err error)
	blockCtx bool // wait for ctx to end after writing stdout (follow-like)
}

type execCall struct {
	Namespace, Pod, Container string
	Command                   []string
	Stdin                     string
	HadStdin                  bool
}

func (r *recordingExecutor) Exec(ctx context.Context, req ExecRequest) (int, error) {
	c := execCall{Namespace: req.Namespace, Pod: req.Pod, Container: req.Container, Command: append([]string(nil), req.Command...)}
	if req.Stdin != nil {
		b, _ := io.ReadAll(req.Stdin)
		c.Stdin, c.HadStdin = string(b), true
	}
	r.mu.Lock()
	r.calls = append(r.calls, c)
	stdout, stderr, code, err := r.stdout, r.stderr, r.code, r.err
	respond, block := r.respond, r.blockCtx
	r.mu.Unlock()
	if respond != nil {
		stdout, stderr, code, err = respond(req)
	}
	if req.Stdout != nil && stdout != "" {
		if _, werr := io.Copy(req.Stdout, bytes.NewBufferString(stdout)); werr != nil {
			return -1, werr
		}
	}
	if req.Stderr != nil && stderr != "" {
		_, _ = io.WriteString(req.Stderr, stderr)
	}
	if block {
		<-ctx.Done()
		return -1, ctx.Err()
	}
	return code, err
}

func (r *recordingExecutor) Calls() []execCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]execCall(nil), r.calls...)
}
