package openshift

import (
	"bytes"
	"context"
	"encoding/json"

	corev1 "k8s.io/api/core/v1"

	"github.com/quayctl/quayctl/collectors"
	"github.com/quayctl/quayctl/internal/redact"
)

var _ collectors.Inspector = (*Deployment)(nil)

// Inspect is the component's pods as the API server has them (spec and
// status: what `oc describe pod` shows), managed fields dropped, literal
// env values of secret-looking names redacted, then the text rules.
func (d *Deployment) Inspect(ctx context.Context, component string) ([]byte, error) {
	refs, err := d.pods(ctx)
	if err != nil {
		return nil, err
	}
	var pods []corev1.Pod
	var have []string
	for _, r := range refs {
		have = append(have, r.component)
		if r.component != component {
			continue
		}
		p := r.pod.DeepCopy()
		p.ManagedFields = nil
		for _, cs := range [][]corev1.Container{p.Spec.InitContainers, p.Spec.Containers} {
			for i := range cs {
				redactPodEnv(cs[i].Env)
			}
		}
		pods = append(pods, *p)
	}
	if len(pods) == 0 {
		return nil, &collectors.ComponentNotFoundError{Name: component, Available: have}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // keep <redacted> readable
	enc.SetIndent("", "  ")
	if err := enc.Encode(pods); err != nil {
		return nil, err
	}
	s, _ := redact.String(buf.String())
	return []byte(s), nil
}

// redactPodEnv redacts literal values by name, as Component.Env is.
func redactPodEnv(env []corev1.EnvVar) {
	m := map[string]string{}
	for _, e := range env {
		if e.ValueFrom == nil {
			m[e.Name] = e.Value
		}
	}
	red, _ := redact.Env(m)
	for i := range env {
		if v, ok := red[env[i].Name]; ok && env[i].ValueFrom == nil {
			env[i].Value = v
		}
	}
}
