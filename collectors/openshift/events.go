package openshift

import (
	"context"
	"fmt"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Event is a Kubernetes event of the registry's namespace (oc get events).
type Event struct {
	Type      string    `json:"type"`   // Normal, Warning
	Reason    string    `json:"reason"` // BackOff, Failed, OOMKilling, FailedScheduling…
	Object    string    `json:"object"` // Kind/name, e.g. Pod/registry-quay-app-7c9d-x2x4q
	Message   string    `json:"message"`
	Count     int       `json:"count"`
	FirstTime time.Time `json:"first_time,omitzero"`
	LastTime  time.Time `json:"last_time"`
	Source    string    `json:"source,omitempty"` // reporting component (kubelet, quay-operator…)
}

// Events lists the namespace's events, oldest first (as
// `oc get events --sort-by=.lastTimestamp`).
func (d *Deployment) Events(ctx context.Context) ([]Event, error) {
	list, err := d.kube.CoreV1().Events(d.namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		if apierrors.IsForbidden(err) {
			return nil, fmt.Errorf("not allowed to list events in namespace %s: %w — ask for list on events (docs/openshift.md lists the RBAC quayctl needs)", d.namespace, err)
		}
		return nil, fmt.Errorf("listing events in namespace %s: %w", d.namespace, err)
	}
	out := make([]Event, 0, len(list.Items))
	for i := range list.Items {
		out = append(out, toEvent(&list.Items[i]))
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].LastTime.Equal(out[j].LastTime) {
			return out[i].LastTime.Before(out[j].LastTime)
		}
		return out[i].Object < out[j].Object
	})
	return out, nil
}

func toEvent(e *corev1.Event) Event {
	ev := Event{
		Type:    e.Type,
		Reason:  e.Reason,
		Object:  e.InvolvedObject.Kind + "/" + e.InvolvedObject.Name,
		Message: e.Message,
		Count:   int(e.Count),
		Source:  e.Source.Component,
	}
	if ev.Source == "" {
		ev.Source = e.ReportingController
	}
	ev.FirstTime = e.FirstTimestamp.Time
	if ev.FirstTime.IsZero() {
		ev.FirstTime = e.EventTime.Time
	}
	switch {
	case e.Series != nil && !e.Series.LastObservedTime.IsZero():
		ev.LastTime = e.Series.LastObservedTime.Time
		if ev.Count < int(e.Series.Count) {
			ev.Count = int(e.Series.Count)
		}
	case !e.LastTimestamp.IsZero():
		ev.LastTime = e.LastTimestamp.Time
	case !e.EventTime.IsZero():
		ev.LastTime = e.EventTime.Time
	default:
		ev.LastTime = e.FirstTimestamp.Time
	}
	if ev.Count == 0 {
		ev.Count = 1
	}
	if !ev.FirstTime.IsZero() {
		ev.FirstTime = ev.FirstTime.UTC()
	}
	if !ev.LastTime.IsZero() {
		ev.LastTime = ev.LastTime.UTC()
	}
	return ev
}
