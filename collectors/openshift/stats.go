package openshift

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/quayctl/quayctl/collectors"
)

// ContainerResources are one container's requests and limits, as the pod
// spec declares them. CPU is in millicores, memory in bytes; 0 = not set.
type ContainerResources struct {
	Container          string `json:"container"`
	CPURequestMilli    int64  `json:"cpu_request_millicores,omitempty"`
	CPULimitMilli      int64  `json:"cpu_limit_millicores,omitempty"`
	MemoryRequestBytes uint64 `json:"memory_request_bytes,omitempty"`
	MemoryLimitBytes   uint64 `json:"memory_limit_bytes,omitempty"`
}

// PodResources are a component pod's declared resources (requests and
// limits from the pod spec; usage is Stats').
type PodResources struct {
	Component  string               `json:"component"`
	Pod        string               `json:"pod"`
	Containers []ContainerResources `json:"containers"`
}

// Resources reports the requests and limits of the component's pod.
func (d *Deployment) Resources(ctx context.Context, component string) (PodResources, error) {
	r, err := d.pick(ctx, component)
	if err != nil {
		return PodResources{}, err
	}
	return podResources(r), nil
}

func podResources(r podRef) PodResources {
	pr := PodResources{Component: r.component, Pod: r.pod.Name}
	for _, c := range r.pod.Spec.Containers {
		pr.Containers = append(pr.Containers, containerResources(c))
	}
	return pr
}

func containerResources(c corev1.Container) ContainerResources {
	cr := ContainerResources{Container: c.Name}
	if q, ok := c.Resources.Requests[corev1.ResourceCPU]; ok {
		cr.CPURequestMilli = q.MilliValue()
	}
	if q, ok := c.Resources.Limits[corev1.ResourceCPU]; ok {
		cr.CPULimitMilli = q.MilliValue()
	}
	if q, ok := c.Resources.Requests[corev1.ResourceMemory]; ok && q.Value() > 0 {
		cr.MemoryRequestBytes = uint64(q.Value())
	}
	if q, ok := c.Resources.Limits[corev1.ResourceMemory]; ok && q.Value() > 0 {
		cr.MemoryLimitBytes = uint64(q.Value())
	}
	return cr
}

// PodMetricsGVR is the metrics API's pod usage (what `oc adm top pods`
// reads), served by metrics-server or OpenShift's monitoring stack.
var PodMetricsGVR = schema.GroupVersionResource{Group: "metrics.k8s.io", Version: "v1beta1", Resource: "pods"}

// Stats reports the component's pod: memory limit from the pod spec (the sum
// of its containers' limits; 0 when any container is unlimited) and, when the
// cluster serves the metrics API (metrics.k8s.io, read through the dynamic
// client), CPU and memory usage. Without it usage is 0, meaning unknown.
// CPUPercent is of one CPU (100 = one full core), as podman stats counts.
// Resources gives the per-container requests and limits.
func (d *Deployment) Stats(ctx context.Context, component string) (collectors.Stats, error) {
	r, _, err := d.pickRunning(ctx, component, "")
	if err != nil {
		return collectors.Stats{}, err
	}
	var st collectors.Stats
	for _, c := range podResources(r).Containers {
		if c.MemoryLimitBytes == 0 {
			st.MemoryLimitBytes = 0
			break
		}
		st.MemoryLimitBytes += c.MemoryLimitBytes
	}
	if u, ok := d.podUsage(ctx, r.pod.Namespace, r.pod.Name); ok {
		st.CPUPercent = float64(u.cpuMilli) / 10
		st.MemoryBytes = u.memoryBytes
	}
	return st, nil
}

type usage struct {
	cpuMilli    int64
	memoryBytes uint64
}

// podUsage reads the pod's PodMetrics. ok is false when the metrics API is
// not served, not allowed, or has no sample for the pod yet.
func (d *Deployment) podUsage(ctx context.Context, ns, pod string) (usage, bool) {
	obj, err := d.dyn.Resource(PodMetricsGVR).Namespace(ns).Get(ctx, pod, metav1.GetOptions{})
	if err != nil {
		return usage{}, false
	}
	ctrs, _, err := unstructured.NestedSlice(obj.Object, "containers")
	if err != nil || len(ctrs) == 0 {
		return usage{}, false
	}
	var u usage
	for _, c := range ctrs {
		m, ok := c.(map[string]any)
		if !ok {
			continue
		}
		use, _ := m["usage"].(map[string]any)
		if q, err := resource.ParseQuantity(str(use["cpu"])); err == nil {
			u.cpuMilli += q.MilliValue()
		}
		if q, err := resource.ParseQuantity(str(use["memory"])); err == nil && q.Value() > 0 {
			u.memoryBytes += uint64(q.Value())
		}
	}
	return u, true
}
