package openshift

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// NewTroubledForTest is the fixtures' troubled Operator deployment (quay in
// CrashLoopBackOff, the database OOMKilled once, Clair unable to pull)
// behind fake clientsets, with warning events of the last minutes, for the
// external tests that run diagnose over it.
func NewTroubledForTest(t testing.TB) *Deployment {
	now := time.Now()
	ev := func(name, reason, pod, msg string) *corev1.Event {
		return &corev1.Event{
			ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: name}, Type: "Warning", Reason: reason,
			InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: pod, Namespace: testNS}, Message: msg, Count: 5,
			FirstTimestamp: metav1.NewTime(now.Add(-20 * time.Minute)), LastTimestamp: metav1.NewTime(now.Add(-2 * time.Minute)),
			Source: corev1.EventSource{Component: "kubelet"},
		}
	}
	objs := append([]runtime.Object{
		ev("e1", "BackOff", "registry-quay-app-6d9c7f8b4-crash", "Back-off restarting failed container quay-app"),
		ev("e2", "Failed", "registry-clair-app-8c7b6a-cl", `Failed to pull image "registry.redhat.io/quay/clair-rhel8:v3.11.1": unauthorized`),
	}, clusterPods()...)
	return newTestEnv(t, nil, objs...).d
}
