package openshift

import (
	"context"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/quayctl/quayctl/collectors"
	"github.com/quayctl/quayctl/internal/redact"
)

// Labels the Quay Operator puts on what it creates (quay-operator repository:
// pkg/kustomize/kustomize.go sets LabelRegistry as a kustomize common label on
// every object, pod templates included; kustomize/**/*.yaml set
// LabelComponent on each Deployment/StatefulSet/Job template).
const (
	LabelRegistry  = "quay-operator/quayregistry"
	LabelComponent = "quay-component"
	// Job pods carry their Job's name; the Operator's Job templates for the
	// Postgres upgrades have no quay-component label of their own.
	LabelJobName      = "job-name"
	LabelBatchJobName = "batch.kubernetes.io/job-name"
	// The Operator's own pod (its ClusterServiceVersion's deployment
	// quay-operator-tng has this template label).
	LabelOperatorKey   = "name"
	LabelOperatorValue = "quay-operator-alm-owned"
	// Newer bundles also label the Operator pod the recommended way.
	LabelAppName          = "app.kubernetes.io/name"
	LabelAppNameOperator  = "quay-operator"
	annotationDefaultCtnr = "kubectl.kubernetes.io/default-container"
)

// ComponentClairPGUpgrade is the Operator's Clair database upgrade job
// (clair-postgres-upgrade), which the collectors package does not name.
const ComponentClairPGUpgrade = "clair-postgres-upgrade"

// componentForLabel maps a quay-component label value (or an Operator job's
// name without the registry prefix) to the component name quayctl uses.
var componentForLabel = map[string]string{
	"quay-app":               collectors.ComponentQuay,
	"postgres":               collectors.ComponentDatabase,
	"quay-database":          collectors.ComponentDatabase,
	"redis":                  collectors.ComponentRedis,
	"clair-app":              collectors.ComponentClair,
	"clair-postgres":         collectors.ComponentClairPostgres,
	"quay-mirror":            collectors.ComponentMirror,
	"quay-config-editor":     collectors.ComponentConfigEditor,
	"quay-app-upgrade":       collectors.ComponentAppUpgrade,
	"quay-postgres-upgrade":  collectors.ComponentPGUpgrade,
	"clair-postgres-upgrade": ComponentClairPGUpgrade,
}

// ComponentLabels returns the label mapping (quay-component value → component
// name), for documentation and the status command.
func ComponentLabels() map[string]string {
	m := make(map[string]string, len(componentForLabel))
	for k, v := range componentForLabel {
		m[k] = v
	}
	return m
}

// podRef is a pod found for a component.
type podRef struct {
	component string
	pod       *corev1.Pod
}

// componentName classifies a pod of the registry. ok is false for pods that
// play no role quayctl can name.
func (d *Deployment) componentName(p *corev1.Pod) (string, bool) {
	if v := p.Labels[LabelComponent]; v != "" {
		if c, ok := componentForLabel[v]; ok {
			return c, true
		}
		return v, true
	}
	job := p.Labels[LabelBatchJobName]
	if job == "" {
		job = p.Labels[LabelJobName]
	}
	if job != "" {
		job = strings.TrimPrefix(job, d.registry+"-")
		if c, ok := componentForLabel[job]; ok {
			return c, true
		}
		return job, true
	}
	return "", false
}

// pods lists the registry's pods (label quay-operator/quayregistry=NAME) and
// the Operator's pod, each with its component name, sorted by component then
// pod name.
func (d *Deployment) pods(ctx context.Context) ([]podRef, error) {
	sel := labels.Set{LabelRegistry: d.registry}.AsSelector().String()
	list, err := d.kube.CoreV1().Pods(d.namespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		if apierrors.IsForbidden(err) {
			return nil, fmt.Errorf("not allowed to list pods in namespace %s: %w — ask for get/list on pods (docs/openshift.md lists the RBAC quayctl needs)", d.namespace, err)
		}
		return nil, fmt.Errorf("listing pods of QuayRegistry %s: %w", d.Name(), err)
	}
	var refs []podRef
	for i := range list.Items {
		p := &list.Items[i]
		if c, ok := d.componentName(p); ok {
			refs = append(refs, podRef{component: c, pod: p})
		}
	}
	refs = append(refs, d.operatorPods(ctx)...)
	sort.SliceStable(refs, func(i, j int) bool {
		if refs[i].component != refs[j].component {
			return refs[i].component < refs[j].component
		}
		return refs[i].pod.Name < refs[j].pod.Name
	})
	return refs, nil
}

// operatorPods finds the Quay Operator's pod. It is best effort: the
// Operator often runs in a namespace the user cannot read, and then it is
// simply not listed.
func (d *Deployment) operatorPods(ctx context.Context) []podRef {
	selectors := []string{
		labels.Set{LabelOperatorKey: LabelOperatorValue}.AsSelector().String(),
		labels.Set{LabelAppName: LabelAppNameOperator}.AsSelector().String(),
	}
	seen := map[string]bool{}
	var refs []podRef
	for _, ns := range d.operatorNamespaces {
		for _, sel := range selectors {
			list, err := d.kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: sel})
			if err != nil {
				continue
			}
			for i := range list.Items {
				p := &list.Items[i]
				key := p.Namespace + "/" + p.Name
				if seen[key] {
					continue
				}
				seen[key] = true
				refs = append(refs, podRef{component: collectors.ComponentOperator, pod: p})
			}
		}
		if len(refs) > 0 {
			break
		}
	}
	return refs
}

// Components lists the registry's pods as components.
func (d *Deployment) Components(ctx context.Context) ([]collectors.Component, error) {
	refs, err := d.pods(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]collectors.Component, 0, len(refs))
	for _, r := range refs {
		out = append(out, podComponent(r.component, r.pod))
	}
	return out, nil
}

// podComponent turns a pod into a Component.
func podComponent(name string, p *corev1.Pod) collectors.Component {
	c := collectors.Component{
		Name:     name,
		Instance: p.Name,
		State:    podState(p),
		Ready:    podReady(p),
		Labels:   p.Labels,
	}
	for _, ct := range p.Spec.Containers {
		c.Containers = append(c.Containers, ct.Name)
	}
	for _, cs := range p.Status.ContainerStatuses {
		c.Restarts += int(cs.RestartCount)
	}
	main := mainContainer(p)
	if ct := specContainer(p, main); ct != nil {
		c.Image = ct.Image
		c.Env = redactEnv(ct.Env)
	}
	ms := containerStatus(p, main)
	if c.Image == "" && ms != nil {
		c.Image = ms.Image
	}
	switch {
	case ms != nil && ms.State.Running != nil:
		c.StartedAt = ms.State.Running.StartedAt.Time.UTC()
	case p.Status.StartTime != nil:
		c.StartedAt = p.Status.StartTime.Time.UTC()
	}
	if t := lastTermination(p, main); t != nil {
		code := int(t.ExitCode)
		c.ExitCode = &code
		c.Reason = t.Reason
		if c.Reason == "" && code != 0 {
			c.Reason = "Error"
		}
	}
	return c
}

// podState is the pod's state as an administrator reads it in `oc get pods`:
// a container's waiting reason (CrashLoopBackOff, ImagePullBackOff,
// CreateContainerConfigError…, "Init:" prefixed for init containers) when
// there is one, else the pod phase (Running, Pending, Succeeded, Failed).
func podState(p *corev1.Pod) string {
	if p.DeletionTimestamp != nil {
		return "Terminating"
	}
	if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
		if p.Status.Reason != "" { // Evicted, DeadlineExceeded…
			return p.Status.Reason
		}
		return string(p.Status.Phase)
	}
	for _, cs := range p.Status.InitContainerStatuses {
		if w := cs.State.Waiting; w != nil && w.Reason != "" && w.Reason != "PodInitializing" {
			return "Init:" + w.Reason
		}
		if t := cs.State.Terminated; t != nil && t.ExitCode != 0 {
			return "Init:" + nonEmpty(t.Reason, "Error")
		}
	}
	// The main container first, then the others.
	main := mainContainer(p)
	statuses := append([]corev1.ContainerStatus(nil), p.Status.ContainerStatuses...)
	sort.SliceStable(statuses, func(i, j int) bool { return statuses[i].Name == main && statuses[j].Name != main })
	for _, cs := range statuses {
		if w := cs.State.Waiting; w != nil && w.Reason != "" {
			return w.Reason
		}
	}
	for _, cs := range statuses {
		if t := cs.State.Terminated; t != nil && p.Status.Phase == corev1.PodRunning {
			return nonEmpty(t.Reason, "Terminated")
		}
	}
	if p.Status.Phase == "" {
		return string(corev1.PodPending)
	}
	if p.Status.Reason != "" && p.Status.Phase != corev1.PodRunning {
		return p.Status.Reason
	}
	return string(p.Status.Phase)
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// mainContainer names the container quayctl talks to when none is given: the
// kubectl default-container annotation, else the container named like the
// pod's quay-component label (quay-app, quay-mirror, clair-app…), else the
// first container.
func mainContainer(p *corev1.Pod) string {
	if n := p.Annotations[annotationDefaultCtnr]; n != "" && specContainer(p, n) != nil {
		return n
	}
	if n := p.Labels[LabelComponent]; n != "" && specContainer(p, n) != nil {
		return n
	}
	if len(p.Spec.Containers) > 0 {
		return p.Spec.Containers[0].Name
	}
	return ""
}

func specContainer(p *corev1.Pod, name string) *corev1.Container {
	for i := range p.Spec.Containers {
		if p.Spec.Containers[i].Name == name {
			return &p.Spec.Containers[i]
		}
	}
	return nil
}

func containerStatus(p *corev1.Pod, name string) *corev1.ContainerStatus {
	for i := range p.Status.ContainerStatuses {
		if p.Status.ContainerStatuses[i].Name == name {
			return &p.Status.ContainerStatuses[i]
		}
	}
	return nil
}

// lastTermination is the main container's last terminated state (its
// previous instance, or itself when it has terminated, as a job's does);
// failing that, the most recent termination of any container.
func lastTermination(p *corev1.Pod, main string) *corev1.ContainerStateTerminated {
	if cs := containerStatus(p, main); cs != nil {
		if t := cs.State.Terminated; t != nil {
			return t
		}
		if t := cs.LastTerminationState.Terminated; t != nil {
			return t
		}
	}
	var best *corev1.ContainerStateTerminated
	for i := range p.Status.ContainerStatuses {
		cs := &p.Status.ContainerStatuses[i]
		for _, t := range []*corev1.ContainerStateTerminated{cs.State.Terminated, cs.LastTerminationState.Terminated} {
			if t != nil && (best == nil || t.FinishedAt.After(best.FinishedAt.Time)) {
				best = t
			}
		}
	}
	return best
}

func nonEmpty(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// pick resolves a component name to one pod: a component name (quay,
// database…), a quay-component label value (quay-app, postgres…) or a pod
// name. Among several pods of a component it prefers a running and ready one,
// then a running one, then the newest.
func (d *Deployment) pick(ctx context.Context, component string) (podRef, error) {
	refs, err := d.pods(ctx)
	if err != nil {
		return podRef{}, err
	}
	want := component
	if c, ok := componentForLabel[component]; ok {
		want = c
	}
	var cands []podRef
	for _, r := range refs {
		if r.component == want || r.pod.Name == component {
			cands = append(cands, r)
		}
	}
	if len(cands) == 0 {
		return podRef{}, &collectors.ComponentNotFoundError{Name: component, Available: componentNames(refs)}
	}
	rank := func(p *corev1.Pod) int {
		switch {
		case p.DeletionTimestamp != nil:
			return 3
		case p.Status.Phase == corev1.PodRunning && podReady(p):
			return 0
		case p.Status.Phase == corev1.PodRunning:
			return 1
		}
		return 2
	}
	sort.SliceStable(cands, func(i, j int) bool {
		ri, rj := rank(cands[i].pod), rank(cands[j].pod)
		if ri != rj {
			return ri < rj
		}
		ti, tj := cands[i].pod.CreationTimestamp, cands[j].pod.CreationTimestamp
		if !ti.Equal(&tj) {
			return tj.Before(&ti)
		}
		return cands[i].pod.Name < cands[j].pod.Name
	})
	return cands[0], nil
}

// pickRunning is pick for operations that need a live container.
func (d *Deployment) pickRunning(ctx context.Context, component, container string) (podRef, string, error) {
	r, err := d.pick(ctx, component)
	if err != nil {
		return podRef{}, "", err
	}
	ctr, err := containerFor(r, container)
	if err != nil {
		return podRef{}, "", err
	}
	if r.pod.Status.Phase != corev1.PodRunning || r.pod.DeletionTimestamp != nil {
		return podRef{}, "", &collectors.NotRunningError{Component: r.component, Instance: r.pod.Name, State: podState(r.pod)}
	}
	if cs := containerStatus(r.pod, ctr); cs != nil && cs.State.Running == nil {
		state := "not running"
		if w := cs.State.Waiting; w != nil && w.Reason != "" {
			state = w.Reason
		} else if t := cs.State.Terminated; t != nil {
			state = nonEmpty(t.Reason, "Terminated")
		}
		return podRef{}, "", &collectors.NotRunningError{Component: r.component, Instance: r.pod.Name + "/" + ctr, State: state}
	}
	return r, ctr, nil
}

// containerFor checks a requested container name, or picks the main one.
func containerFor(r podRef, container string) (string, error) {
	if container == "" {
		return mainContainer(r.pod), nil
	}
	if specContainer(r.pod, container) != nil {
		return container, nil
	}
	for _, c := range r.pod.Spec.InitContainers {
		if c.Name == container {
			return container, nil
		}
	}
	var have []string
	for _, c := range r.pod.Spec.InitContainers {
		have = append(have, c.Name)
	}
	for _, c := range r.pod.Spec.Containers {
		have = append(have, c.Name)
	}
	return "", &ContainerNotFoundError{Component: r.component, Pod: r.pod.Name, Container: container, Available: have}
}

// ContainerNotFoundError: -c/--container names no container of the pod.
type ContainerNotFoundError struct {
	Component, Pod, Container string
	Available                 []string
}

func (e *ContainerNotFoundError) Error() string {
	return fmt.Sprintf("container %q not found in pod %s (%s); it has: %s — pass one of them with -c/--container", e.Container, e.Pod, e.Component, strings.Join(e.Available, ", "))
}

func componentNames(refs []podRef) []string {
	seen := map[string]bool{}
	var out []string
	for _, r := range refs {
		if !seen[r.component] {
			seen[r.component] = true
			out = append(out, r.component)
		}
	}
	sort.Strings(out)
	return out
}

// Redacted replaces secret values in component environments (the marker of
// internal/redact, quayctl's one redaction function).
const Redacted = redact.Marker

// redactEnv turns a container's env into names and values: literal values go
// through internal/redact (secret names, passwords inside URIs…); values
// taken from secrets or config maps are never read, only described.
func redactEnv(env []corev1.EnvVar) map[string]string {
	if len(env) == 0 {
		return nil
	}
	literal := make(map[string]string, len(env))
	refs := map[string]string{}
	for _, e := range env {
		if e.ValueFrom != nil {
			refs[e.Name] = describeValueFrom(e.ValueFrom)
			delete(literal, e.Name)
			continue
		}
		literal[e.Name] = e.Value
		delete(refs, e.Name)
	}
	out, _ := redact.Env(literal)
	for k, v := range refs {
		out[k] = v
	}
	return out
}

func describeValueFrom(v *corev1.EnvVarSource) string {
	switch {
	case v.SecretKeyRef != nil:
		return fmt.Sprintf("<from secret %s key %s>", v.SecretKeyRef.Name, v.SecretKeyRef.Key)
	case v.ConfigMapKeyRef != nil:
		return fmt.Sprintf("<from configmap %s key %s>", v.ConfigMapKeyRef.Name, v.ConfigMapKeyRef.Key)
	case v.FieldRef != nil:
		return fmt.Sprintf("<from field %s>", v.FieldRef.FieldPath)
	case v.ResourceFieldRef != nil:
		return fmt.Sprintf("<from resource %s>", v.ResourceFieldRef.Resource)
	}
	return "<from reference>"
}
