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
)

// ConfigMountPath is where Quay reads its configuration in the quay pods.
const ConfigMountPath = "/conf/stack"

// ConfigSecret is a Secret holding Quay configuration files (config.yaml,
// extra certificates). Values are raw and unredacted: the caller redacts.
type ConfigSecret struct {
	Namespace string
	Name      string
	Files     map[string][]byte
}

// ConfigYAML returns the config.yaml file, if present.
func (c ConfigSecret) ConfigYAML() ([]byte, bool) {
	b, ok := c.Files["config.yaml"]
	return b, ok
}

// ConfigBundle reads the config bundle secret the QuayRegistry names in
// spec.configBundleSecret: the administrator's own config, before the
// Operator adds the fields of managed components.
func (d *Deployment) ConfigBundle(ctx context.Context) (ConfigSecret, error) {
	obj, err := d.getRegistry(ctx)
	if err != nil {
		return ConfigSecret{}, err
	}
	st, err := registryStatus(obj)
	if err != nil {
		return ConfigSecret{}, err
	}
	if st.ConfigBundleSecret == "" {
		return ConfigSecret{}, fmt.Errorf("QuayRegistry %s has no spec.configBundleSecret yet (the Operator sets it on its first reconcile): check the Operator's logs with quayctl logs operator", d.Name())
	}
	return d.readSecret(ctx, st.ConfigBundleSecret, "the config bundle secret (spec.configBundleSecret)")
}

// MountedConfig reads the secret the Operator generated and mounted at
// /conf/stack in the quay pods (NAME-quay-config-secret-HASH): the effective
// config.yaml Quay runs with, including the managed components' fields.
func (d *Deployment) MountedConfig(ctx context.Context) (ConfigSecret, error) {
	if r, err := d.pick(ctx, collectors.ComponentQuay); err == nil {
		if name := configSecretOfPod(r.pod); name != "" {
			return d.readSecret(ctx, name, "the config secret mounted at "+ConfigMountPath)
		}
	}
	// No quay pod: the newest generated config secret of the registry.
	sel := labels.Set{LabelRegistry: d.registry}.AsSelector().String()
	list, err := d.kube.CoreV1().Secrets(d.namespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return ConfigSecret{}, secretError(err, d.namespace, d.registry+"-quay-config-secret-*", "the generated config secret")
	}
	prefix := d.registry + "-quay-config-secret-"
	var cands []corev1.Secret
	for _, s := range list.Items {
		if strings.HasPrefix(s.Name, prefix) {
			cands = append(cands, s)
		}
	}
	if len(cands) == 0 {
		return ConfigSecret{}, fmt.Errorf("no %s* secret in namespace %s and no quay pod mounting one: the Operator has not rendered the config yet; see quayctl status and the Operator's logs", prefix, d.namespace)
	}
	sort.SliceStable(cands, func(i, j int) bool {
		return cands[j].CreationTimestamp.Before(&cands[i].CreationTimestamp)
	})
	return ConfigSecret{Namespace: d.namespace, Name: cands[0].Name, Files: cands[0].Data}, nil
}

// configSecretOfPod finds the secret behind the volume mounted at
// /conf/stack in the pod's main container.
func configSecretOfPod(p *corev1.Pod) string {
	ct := specContainer(p, mainContainer(p))
	if ct == nil {
		return ""
	}
	vol := ""
	for _, m := range ct.VolumeMounts {
		if strings.TrimSuffix(m.MountPath, "/") == ConfigMountPath {
			vol = m.Name
		}
	}
	for _, v := range p.Spec.Volumes {
		if v.Name != vol || vol == "" {
			continue
		}
		if v.Secret != nil {
			return v.Secret.SecretName
		}
		if v.Projected != nil {
			for _, s := range v.Projected.Sources {
				if s.Secret != nil && strings.Contains(s.Secret.Name, "quay-config-secret") {
					return s.Secret.Name
				}
			}
		}
	}
	return ""
}

func (d *Deployment) readSecret(ctx context.Context, name, what string) (ConfigSecret, error) {
	s, err := d.kube.CoreV1().Secrets(d.namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return ConfigSecret{}, secretError(err, d.namespace, name, what)
	}
	return ConfigSecret{Namespace: d.namespace, Name: s.Name, Files: s.Data}, nil
}

func secretError(err error, ns, name, what string) error {
	switch {
	case apierrors.IsNotFound(err):
		return fmt.Errorf("%s %s not found in namespace %s: %w — check the QuayRegistry's spec.configBundleSecret (oc get quayregistry -n %s -o yaml)", what, name, ns, err, ns)
	case apierrors.IsForbidden(err):
		return fmt.Errorf("not allowed to read %s %s in namespace %s: %w — ask for get on secrets, or read the file from the pod: quayctl config get reads %s/config.yaml through exec", what, name, ns, err, ConfigMountPath)
	}
	return fmt.Errorf("reading %s %s in namespace %s: %w", what, name, ns, err)
}
