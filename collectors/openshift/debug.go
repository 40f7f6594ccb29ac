package openshift

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"

	"github.com/quayctl/quayctl/collectors"
)

// Debug mode on the Operator (troubleshooting guide, chapter 2.2): the quay
// component of the QuayRegistry gets an env override
//
//	spec:
//	  components:
//	    - kind: quay
//	      managed: true
//	      overrides:
//	        env:
//	          - name: DEBUGLOG
//	            value: "true"
//
// and the Operator rolls out new quay pods with it. quayctl patches exactly
// that entry with a JSON patch whose test operations pin what it changes, so
// other components, other env entries and other overrides stay untouched and
// a concurrent edit of the same entry fails instead of being overwritten.
const (
	debugEnvName  = "DEBUGLOG"
	debugEnvValue = "true"
	quayKind      = "quay"
	fieldManager  = "quayctl"
)

// patchOp is one RFC 6902 operation.
type patchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value,omitempty"`
}

// debugPlan is what SetDebug would do to one QuayRegistry object.
type debugPlan struct {
	ops     []patchOp
	changes []string
	noop    bool
}

func debugEnv() map[string]any { return map[string]any{"name": debugEnvName, "value": debugEnvValue} }

// planDebugPatch computes the JSON patch that turns DEBUGLOG on or off in obj.
func planDebugPatch(obj *unstructured.Unstructured, on bool) (debugPlan, error) {
	var p debugPlan
	spec, hasSpec := obj.Object["spec"].(map[string]any)
	if obj.Object["spec"] != nil && !hasSpec {
		return p, fmt.Errorf("QuayRegistry %s/%s: spec is not an object", obj.GetNamespace(), obj.GetName())
	}
	var comps []any
	hasComps := false
	if hasSpec && spec["components"] != nil {
		var ok bool
		comps, ok = spec["components"].([]any)
		if !ok {
			return p, fmt.Errorf("QuayRegistry %s/%s: spec.components is not a list", obj.GetNamespace(), obj.GetName())
		}
		hasComps = true
	}
	idx := -1
	var quay map[string]any
	for i, c := range comps {
		if m, ok := c.(map[string]any); ok && m["kind"] == quayKind {
			idx, quay = i, m
			break
		}
	}
	cpath := fmt.Sprintf("/spec/components/%d", idx)
	testKind := patchOp{Op: "test", Path: cpath + "/kind", Value: quayKind}

	var overrides map[string]any
	var env []any
	if quay != nil {
		if quay["overrides"] != nil {
			var ok bool
			if overrides, ok = quay["overrides"].(map[string]any); !ok {
				return p, fmt.Errorf("QuayRegistry %s/%s: spec.components[kind=quay].overrides is not an object", obj.GetNamespace(), obj.GetName())
			}
		}
		if overrides != nil && overrides["env"] != nil {
			var ok bool
			if env, ok = overrides["env"].([]any); !ok {
				return p, fmt.Errorf("QuayRegistry %s/%s: spec.components[kind=quay].overrides.env is not a list", obj.GetNamespace(), obj.GetName())
			}
		}
	}
	// Indexes of DEBUGLOG entries in the env override.
	var dbg []int
	for j, e := range env {
		if m, ok := e.(map[string]any); ok && m["name"] == debugEnvName {
			dbg = append(dbg, j)
		}
	}
	isOn := func(j int) bool {
		m := env[j].(map[string]any)
		v, _ := m["value"].(string)
		return m["valueFrom"] == nil && strings.EqualFold(v, debugEnvValue)
	}
	where := "spec.components[kind=quay].overrides.env"

	if on {
		newQuay := map[string]any{"kind": quayKind, "managed": true, "overrides": map[string]any{"env": []any{debugEnv()}}}
		switch {
		case !hasSpec:
			p.ops = []patchOp{{Op: "add", Path: "/spec", Value: map[string]any{"components": []any{newQuay}}}}
			p.changes = []string{"add spec.components entry {kind: quay, managed: true} with " + where + ": DEBUGLOG=\"true\""}
		case !hasComps:
			p.ops = []patchOp{{Op: "add", Path: "/spec/components", Value: []any{newQuay}}}
			p.changes = []string{"add spec.components entry {kind: quay, managed: true} with " + where + ": DEBUGLOG=\"true\""}
		case quay == nil:
			p.ops = []patchOp{{Op: "add", Path: "/spec/components/-", Value: newQuay}}
			p.changes = []string{"add spec.components entry {kind: quay, managed: true} with " + where + ": DEBUGLOG=\"true\""}
		case overrides == nil:
			p.ops = []patchOp{testKind, {Op: "add", Path: cpath + "/overrides", Value: map[string]any{"env": []any{debugEnv()}}}}
			p.changes = []string{"add " + where + ": DEBUGLOG=\"true\""}
		case env == nil:
			p.ops = []patchOp{testKind, {Op: "add", Path: cpath + "/overrides/env", Value: []any{debugEnv()}}}
			p.changes = []string{"add " + where + ": DEBUGLOG=\"true\""}
		case len(dbg) == 0:
			p.ops = []patchOp{testKind, {Op: "add", Path: cpath + "/overrides/env/-", Value: debugEnv()}}
			p.changes = []string{"add " + where + ": DEBUGLOG=\"true\" (after " + envNames(env) + ")"}
		case isOn(dbg[0]) && len(dbg) == 1:
			p.noop = true
			p.changes = []string{"none: " + where + " already has DEBUGLOG=\"true\""}
			return p, nil
		default:
			j := dbg[0]
			ep := fmt.Sprintf("%s/overrides/env/%d", cpath, j)
			p.ops = []patchOp{testKind, {Op: "test", Path: ep + "/name", Value: debugEnvName}, {Op: "replace", Path: ep, Value: debugEnv()}}
			p.changes = []string{fmt.Sprintf("change %s: DEBUGLOG from %s to \"true\"", where, describeEnv(env[j]))}
			// Later duplicates would win in the container: drop them.
			for k := len(dbg) - 1; k >= 1; k-- {
				dp := fmt.Sprintf("%s/overrides/env/%d", cpath, dbg[k])
				p.ops = append(p.ops, patchOp{Op: "test", Path: dp + "/name", Value: debugEnvName}, patchOp{Op: "remove", Path: dp})
				p.changes = append(p.changes, fmt.Sprintf("remove duplicate %s entry DEBUGLOG=%s", where, describeEnv(env[dbg[k]])))
			}
		}
	} else {
		active := false
		for _, j := range dbg {
			if isOn(j) {
				active = true
			}
		}
		if !active {
			p.noop = true
			if len(dbg) > 0 {
				p.changes = []string{"none: " + where + " has DEBUGLOG=" + describeEnv(env[dbg[0]]) + ", debug logging is already off"}
			} else {
				p.changes = []string{"none: the quay component has no DEBUGLOG override"}
			}
			return p, nil
		}
		p.ops = []patchOp{testKind}
		if len(dbg) == len(env) {
			// Nothing else in env: drop env (and overrides when env was all),
			// testing first that they hold nothing else.
			if len(overrides) == 1 {
				p.ops = append(p.ops, patchOp{Op: "test", Path: cpath + "/overrides", Value: overrides}, patchOp{Op: "remove", Path: cpath + "/overrides"})
				p.changes = []string{"remove " + where + " entry DEBUGLOG (and the then empty overrides of the quay component)"}
			} else {
				p.ops = append(p.ops, patchOp{Op: "test", Path: cpath + "/overrides/env", Value: env}, patchOp{Op: "remove", Path: cpath + "/overrides/env"})
				p.changes = []string{"remove " + where + " entry DEBUGLOG (and the then empty env list; other overrides stay)"}
			}
		} else {
			for k := len(dbg) - 1; k >= 0; k-- {
				ep := fmt.Sprintf("%s/overrides/env/%d", cpath, dbg[k])
				p.ops = append(p.ops, patchOp{Op: "test", Path: ep + "/name", Value: debugEnvName}, patchOp{Op: "remove", Path: ep})
			}
			p.changes = []string{"remove " + where + " entry DEBUGLOG (keeping " + envNamesExcept(env, debugEnvName) + ")"}
		}
	}
	p.changes = append(p.changes, "the Quay Operator then rolls out new quay pods (Quay restarts)")
	return p, nil
}

func envNames(env []any) string {
	var n []string
	for _, e := range env {
		if m, ok := e.(map[string]any); ok {
			n = append(n, str(m["name"]))
		}
	}
	return strings.Join(n, ", ")
}

func envNamesExcept(env []any, name string) string {
	var n []string
	for _, e := range env {
		if m, ok := e.(map[string]any); ok && m["name"] != name {
			n = append(n, str(m["name"]))
		}
	}
	return strings.Join(n, ", ")
}

func describeEnv(e any) string {
	m, _ := e.(map[string]any)
	if m["valueFrom"] != nil {
		return "<from reference>"
	}
	return fmt.Sprintf("%q", str(m["value"]))
}

// debugEnabled reports whether the quay component has DEBUGLOG=true.
func debugEnabled(obj *unstructured.Unstructured) bool {
	p, err := planDebugPatch(obj, false)
	return err == nil && !p.noop
}

// PlanDebug shows what SetDebug(on) would change in the QuayRegistry.
func (d *Deployment) PlanDebug(ctx context.Context, on bool) (collectors.DebugPlan, error) {
	obj, err := d.getRegistry(ctx)
	if err != nil {
		return collectors.DebugPlan{}, err
	}
	p, err := planDebugPatch(obj, on)
	if err != nil {
		return collectors.DebugPlan{}, err
	}
	return collectors.DebugPlan{Target: "QuayRegistry " + d.Name(), Changes: p.changes, NoOp: p.noop}, nil
}

// SetDebug adds (on) or removes (off) the DEBUGLOG="true" env override of
// the quay component. It does nothing when already in that state.
func (d *Deployment) SetDebug(ctx context.Context, on bool) error {
	obj, err := d.getRegistry(ctx)
	if err != nil {
		return err
	}
	p, err := planDebugPatch(obj, on)
	if err != nil {
		return err
	}
	if p.noop {
		return nil
	}
	body, err := json.Marshal(p.ops)
	if err != nil {
		return err
	}
	_, err = d.dyn.Resource(QuayRegistryGVR).Namespace(d.namespace).Patch(ctx, d.registry, types.JSONPatchType, body, metav1.PatchOptions{FieldManager: fieldManager})
	switch {
	case err == nil:
		return nil
	case apierrors.IsForbidden(err):
		return fmt.Errorf("patching QuayRegistry %s: %w — ask for patch on quayregistries.quay.redhat.com in namespace %s, or edit it by hand: oc edit quayregistry %s -n %s", d.Name(), err, d.namespace, d.registry, d.namespace)
	case apierrors.IsInvalid(err) || apierrors.IsConflict(err) || isTestFailed(err):
		return fmt.Errorf("patching QuayRegistry %s: %w — it changed while quayctl was patching it; run the command again", d.Name(), err)
	}
	return fmt.Errorf("patching QuayRegistry %s: %w", d.Name(), err)
}

func isTestFailed(err error) bool {
	return strings.Contains(err.Error(), "test") && strings.Contains(strings.ToLower(err.Error()), "fail")
}

// DebugEnabled reports whether the QuayRegistry asks for DEBUGLOG=true on
// the quay component.
func (d *Deployment) DebugEnabled(ctx context.Context) (bool, error) {
	obj, err := d.getRegistry(ctx)
	if err != nil {
		return false, err
	}
	return debugEnabled(obj), nil
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
