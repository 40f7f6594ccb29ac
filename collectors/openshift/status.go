package openshift

import (
	"context"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/quayctl/quayctl/internal/redact"
)

// QuayRegistry condition types and reasons the Operator reports
// (quay-operator: apis/quay/v1/quayregistry_types.go).
const (
	ConditionAvailable         = "Available"
	ConditionRolloutBlocked    = "RolloutBlocked"
	ConditionComponentsCreated = "ComponentsCreated"
	// Per component: "Component" + Kind + "Ready", e.g. ComponentQuayReady,
	// ComponentPostgresReady, ComponentClairReady, ComponentRedisReady.

	ReasonHealthChecksPassing   = "HealthChecksPassing"
	ReasonMigrationsInProgress  = "MigrationsInProgress"
	ReasonMigrationsFailed      = "MigrationsFailed"
	ReasonMigrationsJobMissing  = "MigrationsJobMissing"
	ReasonComponentNotReady     = "ComponentNotReady"
	ReasonComponentReady        = "ComponentReady"
	ReasonComponentNotManaged   = "ComponentNotManaged"
	ReasonConfigInvalid         = "ConfigInvalid"
	ReasonOverrideInvalid       = "ComponentOverrideInvalid"
	ReasonComponentCreateFailed = "ComponentCreationFailed"
	ReasonUpgradeUnsupported    = "UpgradeUnsupported"
	ReasonPGUpgradeInProgress   = "PostgresUpgradeInProgress"
	ReasonPGUpgradeFailed       = "PostgresUpgradeFailed"
)

// Condition is one entry of the QuayRegistry's status.conditions.
type Condition struct {
	Type               string    `json:"type"`
	Status             string    `json:"status"` // True, False, Unknown
	Reason             string    `json:"reason,omitempty"`
	Message            string    `json:"message,omitempty"`
	LastUpdateTime     time.Time `json:"last_update_time,omitzero"`
	LastTransitionTime time.Time `json:"last_transition_time,omitzero"`
}

// RegistryComponent is one entry of spec.components.
type RegistryComponent struct {
	Kind         string   `json:"kind"` // quay, postgres, clair, redis, horizontalpodautoscaler, objectstorage, route, mirror, monitoring, tls, clairpostgres, configeditor
	Managed      bool     `json:"managed"`
	OverrideKeys []string `json:"overrides,omitempty"` // env, replicas, volumeSize, affinity, labels, annotations
	// Env is the env override (names and literal values, secrets redacted).
	Env map[string]string `json:"env,omitempty"`
}

// RegistryStatus is the QuayRegistry as `quayctl status` reports it.
type RegistryStatus struct {
	Namespace            string              `json:"namespace"`
	Name                 string              `json:"name"`
	CurrentVersion       string              `json:"current_version,omitempty"`
	RegistryEndpoint     string              `json:"registry_endpoint,omitempty"`
	ConfigEditorEndpoint string              `json:"config_editor_endpoint,omitempty"`
	ConfigBundleSecret   string              `json:"config_bundle_secret,omitempty"`
	LastUpdated          string              `json:"last_updated,omitempty"`
	Conditions           []Condition         `json:"conditions,omitempty"`
	Components           []RegistryComponent `json:"components,omitempty"`
	DebugLog             bool                `json:"debug_log"` // DEBUGLOG=true override on the quay component
}

// Condition returns the condition of that type, or nil.
func (s RegistryStatus) Condition(typ string) *Condition {
	for i := range s.Conditions {
		if s.Conditions[i].Type == typ {
			return &s.Conditions[i]
		}
	}
	return nil
}

// Managed returns the kinds of spec.components with managed true, in order.
func (s RegistryStatus) Managed() []string { return s.kinds(true) }

// Unmanaged returns the kinds with managed false, in order.
func (s RegistryStatus) Unmanaged() []string { return s.kinds(false) }

func (s RegistryStatus) kinds(managed bool) []string {
	var out []string
	for _, c := range s.Components {
		if c.Managed == managed {
			out = append(out, c.Kind)
		}
	}
	return out
}

// Status reads the QuayRegistry's spec and status.
func (d *Deployment) Status(ctx context.Context) (RegistryStatus, error) {
	obj, err := d.getRegistry(ctx)
	if err != nil {
		return RegistryStatus{}, err
	}
	return registryStatus(obj)
}

func registryStatus(obj *unstructured.Unstructured) (RegistryStatus, error) {
	s := RegistryStatus{Namespace: obj.GetNamespace(), Name: obj.GetName()}
	o := obj.Object
	s.ConfigBundleSecret, _, _ = unstructured.NestedString(o, "spec", "configBundleSecret")
	s.CurrentVersion, _, _ = unstructured.NestedString(o, "status", "currentVersion")
	s.RegistryEndpoint, _, _ = unstructured.NestedString(o, "status", "registryEndpoint")
	s.ConfigEditorEndpoint, _, _ = unstructured.NestedString(o, "status", "configEditorEndpoint")
	s.LastUpdated, _, _ = unstructured.NestedString(o, "status", "lastUpdated")

	conds, _, err := unstructured.NestedSlice(o, "status", "conditions")
	if err != nil {
		return s, fmt.Errorf("QuayRegistry %s/%s: status.conditions: %w", s.Namespace, s.Name, err)
	}
	for _, c := range conds {
		m, ok := c.(map[string]any)
		if !ok {
			continue
		}
		s.Conditions = append(s.Conditions, Condition{
			Type:               str(m["type"]),
			Status:             str(m["status"]),
			Reason:             str(m["reason"]),
			Message:            str(m["message"]),
			LastUpdateTime:     parseTime(str(m["lastUpdateTime"])),
			LastTransitionTime: parseTime(str(m["lastTransitionTime"])),
		})
	}

	comps, _, err := unstructured.NestedSlice(o, "spec", "components")
	if err != nil {
		return s, fmt.Errorf("QuayRegistry %s/%s: spec.components: %w", s.Namespace, s.Name, err)
	}
	for _, c := range comps {
		m, ok := c.(map[string]any)
		if !ok {
			continue
		}
		rc := RegistryComponent{Kind: str(m["kind"])}
		rc.Managed, _ = m["managed"].(bool)
		if ov, ok := m["overrides"].(map[string]any); ok {
			for _, k := range sortedKeys(ov) {
				rc.OverrideKeys = append(rc.OverrideKeys, k)
			}
			if env, ok := ov["env"].([]any); ok {
				rc.Env = overrideEnv(env)
			}
		}
		s.Components = append(s.Components, rc)
	}
	s.DebugLog = debugEnabled(obj)
	return s, nil
}

func overrideEnv(env []any) map[string]string {
	literal := map[string]string{}
	refs := map[string]string{}
	for _, e := range env {
		em, ok := e.(map[string]any)
		if !ok {
			continue
		}
		name := str(em["name"])
		if em["valueFrom"] != nil {
			refs[name] = "<from reference>"
			delete(literal, name)
			continue
		}
		literal[name] = str(em["value"])
		delete(refs, name)
	}
	out, _ := redact.Env(literal)
	for k, v := range refs {
		out[k] = v
	}
	return out
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func parseTime(s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}
	}
	return t.UTC()
}
