package openshift

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	k8stesting "k8s.io/client-go/testing"
	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// The guide's chapter 2.2 snippet, with its indentation repaired: as
// printed, `overrides` sits beside `spec` and the list has no `components:`
// key, which the QuayRegistry CRD would reject. This is the entry quayctl
// must produce.
const guideQuayEntry = `
kind: quay
managed: true
overrides:
  env:
    - name: DEBUGLOG
      value: "true"
`

// Spec variations of the QuayRegistry the debug toggle must handle.
var debugCases = []struct {
	name string
	spec string // replaces the fixture's spec
	// offRestores: debug off after on gives back the original object.
	offRestores bool
	// onNoop: the registry is already in debug mode.
	onNoop bool
}{
	{
		name: "defaults",
		spec: `
spec:
  configBundleSecret: config-bundle-secret
  components:
  - {kind: clair, managed: true}
  - {kind: postgres, managed: true}
  - {kind: objectstorage, managed: false}
  - {kind: redis, managed: true}
  - {kind: quay, managed: true}
  - {kind: clairpostgres, managed: true}
`,
		offRestores: true,
	},
	{
		name: "other-overrides",
		spec: `
spec:
  configBundleSecret: config-bundle-secret
  components:
  - kind: clair
    managed: true
    overrides:
      env:
      - {name: CLAIR_LOG_LEVEL, value: debug}
  - kind: postgres
    managed: true
    overrides:
      volumeSize: 70Gi
  - kind: quay
    managed: true
    overrides:
      replicas: 3
      labels:
        team: registry
      env:
      - {name: WORKER_COUNT_WEB, value: "8"}
      - name: HTTP_PROXY
        valueFrom:
          secretKeyRef: {name: quay-proxy-config, key: HTTP_PROXY}
  - kind: mirror
    managed: true
    overrides:
      replicas: 2
`,
		offRestores: true,
	},
	{
		name: "quay-overrides-without-env",
		spec: `
spec:
  configBundleSecret: config-bundle-secret
  components:
  - kind: quay
    managed: true
    overrides:
      replicas: 2
  - {kind: redis, managed: true}
`,
		offRestores: true,
	},
	{
		name: "no-quay-entry",
		spec: `
spec:
  configBundleSecret: config-bundle-secret
  components:
  - {kind: clair, managed: false}
  - {kind: objectstorage, managed: false}
`,
	},
	{
		name: "no-components",
		spec: `
spec:
  configBundleSecret: config-bundle-secret
`,
	},
	{
		name: "debuglog-false",
		spec: `
spec:
  components:
  - kind: quay
    managed: true
    overrides:
      env:
      - {name: DEBUGLOG, value: "false"}
      - {name: WORKER_COUNT_REGISTRY, value: "16"}
`,
	},
	{
		name: "already-on",
		spec: `
spec:
  components:
  - {kind: postgres, managed: true}
  - kind: quay
    managed: true
    overrides:
      env:
      - {name: DEBUGLOG, value: "true"}
`,
		onNoop: true,
	},
}

func registryWithSpec(t *testing.T, spec string) *unstructured.Unstructured {
	t.Helper()
	obj := mustObj(t, registryYAML)
	s := mustObj(t, spec)
	if v, ok := s.Object["spec"]; ok {
		obj.Object["spec"] = v
	} else {
		delete(obj.Object, "spec")
	}
	return obj
}

// objectYAML is the QuayRegistry as `oc get quayregistry -o yaml` would show
// it, minus the status (which the patch cannot touch) and server-managed
// metadata.
func objectYAML(t *testing.T, obj *unstructured.Unstructured) []byte {
	t.Helper()
	o := obj.DeepCopy()
	delete(o.Object, "status")
	unstructured.RemoveNestedField(o.Object, "metadata", "resourceVersion")
	unstructured.RemoveNestedField(o.Object, "metadata", "managedFields")
	b, err := yaml.Marshal(o.Object)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if string(got) != string(want) {
		t.Errorf("%s differs (go test -update rewrites it):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

func (e *testEnv) registryObj(t *testing.T) *unstructured.Unstructured {
	t.Helper()
	obj, err := e.dyn.Resource(QuayRegistryGVR).Namespace(testNS).Get(t.Context(), testReg, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return obj
}

func (e *testEnv) patches() []k8stesting.PatchAction {
	var out []k8stesting.PatchAction
	for _, a := range e.dyn.Actions() {
		if p, ok := a.(k8stesting.PatchAction); ok {
			out = append(out, p)
		}
	}
	return out
}

// quayEntry returns spec.components[kind=quay].
func quayEntry(t *testing.T, obj *unstructured.Unstructured) map[string]any {
	t.Helper()
	comps, _, _ := unstructured.NestedSlice(obj.Object, "spec", "components")
	for _, c := range comps {
		if m, ok := c.(map[string]any); ok && m["kind"] == "quay" {
			return m
		}
	}
	t.Fatal("no quay component")
	return nil
}

// withoutQuay is spec.components minus the quay entry.
func withoutQuay(obj *unstructured.Unstructured) []any {
	comps, _, _ := unstructured.NestedSlice(obj.Object, "spec", "components")
	var out []any
	for _, c := range comps {
		if m, ok := c.(map[string]any); ok && m["kind"] == "quay" {
			continue
		}
		out = append(out, c)
	}
	return out
}

func TestDebugToggle(t *testing.T) {
	for _, tc := range debugCases {
		t.Run(tc.name, func(t *testing.T) {
			orig := registryWithSpec(t, tc.spec)
			e := newTestEnv(t, orig.DeepCopy())
			ctx := t.Context()

			// On.
			plan, err := e.d.PlanDebug(ctx, true)
			if err != nil {
				t.Fatal(err)
			}
			if plan.NoOp != tc.onNoop || plan.Target != "QuayRegistry quay/registry" || len(plan.Changes) == 0 {
				t.Errorf("plan(on) = %+v", plan)
			}
			if err := e.d.SetDebug(ctx, true); err != nil {
				t.Fatal(err)
			}
			on := e.registryObj(t)
			golden(t, "debug/"+tc.name+"-on.yaml", objectYAML(t, on))
			if n := len(e.patches()); (n == 0) != tc.onNoop {
				t.Errorf("%d patches sent for on (noop=%v)", n, tc.onNoop)
			}
			for _, p := range e.patches() {
				if p.GetPatchType() != types.JSONPatchType {
					t.Errorf("patch type %s", p.GetPatchType())
				}
			}
			if enabled, err := e.d.DebugEnabled(ctx); err != nil || !enabled {
				t.Errorf("DebugEnabled after on = %v, %v", enabled, err)
			}
			// Everything but the quay entry is untouched, and in the quay
			// entry everything but DEBUGLOG.
			if yamlOf(t, withoutQuay(on)) != yamlOf(t, withoutQuay(orig)) {
				t.Errorf("other components changed:\n got %s\nwant %s", yamlOf(t, withoutQuay(on)), yamlOf(t, withoutQuay(orig)))
			}
			q := quayEntry(t, on)
			env, _, _ := unstructured.NestedSlice(q, "overrides", "env")
			debugs := 0
			for _, v := range env {
				if m := v.(map[string]any); m["name"] == "DEBUGLOG" {
					debugs++
					if !reflect.DeepEqual(m, map[string]any{"name": "DEBUGLOG", "value": "true"}) {
						t.Errorf("DEBUGLOG entry = %v", m)
					}
				}
			}
			if debugs != 1 {
				t.Errorf("%d DEBUGLOG entries, want 1", debugs)
			}

			// On again: nothing to do, nothing sent.
			before := len(e.patches())
			if plan, _ := e.d.PlanDebug(ctx, true); !plan.NoOp {
				t.Errorf("second plan(on) = %+v, want no-op", plan)
			}
			if err := e.d.SetDebug(ctx, true); err != nil {
				t.Fatal(err)
			}
			if len(e.patches()) != before {
				t.Error("SetDebug(on) on a registry in debug mode sent a patch")
			}

			// Off.
			if plan, _ := e.d.PlanDebug(ctx, false); plan.NoOp {
				t.Errorf("plan(off) = %+v, want changes", plan)
			}
			if err := e.d.SetDebug(ctx, false); err != nil {
				t.Fatal(err)
			}
			off := e.registryObj(t)
			golden(t, "debug/"+tc.name+"-off.yaml", objectYAML(t, off))
			if enabled, _ := e.d.DebugEnabled(ctx); enabled {
				t.Error("DebugEnabled after off")
			}
			if yamlOf(t, withoutQuay(off)) != yamlOf(t, withoutQuay(orig)) {
				t.Errorf("other components changed by off")
			}
			if tc.offRestores && string(objectYAML(t, off)) != string(objectYAML(t, orig)) {
				t.Errorf("on then off did not restore the object:\n--- got\n%s\n--- want\n%s", objectYAML(t, off), objectYAML(t, orig))
			}

			// Off again: no-op.
			before = len(e.patches())
			if plan, _ := e.d.PlanDebug(ctx, false); !plan.NoOp {
				t.Errorf("second plan(off) = %+v, want no-op", plan)
			}
			if err := e.d.SetDebug(ctx, false); err != nil {
				t.Fatal(err)
			}
			if len(e.patches()) != before {
				t.Error("SetDebug(off) on a registry not in debug mode sent a patch")
			}
		})
	}
}

// yamlOf compares values whatever their number types (float64 from YAML,
// int64 from the API machinery).
func yamlOf(t *testing.T, v any) string {
	t.Helper()
	b, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The entry quayctl adds is the guide's, key for key.
func TestDebugEntryIsTheGuides(t *testing.T) {
	var want map[string]any
	if err := yaml.Unmarshal([]byte(guideQuayEntry), &want); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"defaults", "no-quay-entry", "no-components"} {
		for _, tc := range debugCases {
			if tc.name != name {
				continue
			}
			e := newTestEnv(t, registryWithSpec(t, tc.spec))
			if err := e.d.SetDebug(t.Context(), true); err != nil {
				t.Fatal(err)
			}
			if got := quayEntry(t, e.registryObj(t)); !reflect.DeepEqual(got, want) {
				t.Errorf("%s: quay entry = %v, want the guide's %v", name, got, want)
			}
		}
	}
}

// The patch is a JSON patch that pins the entry it changes.
func TestDebugPatchBody(t *testing.T) {
	tests := []struct {
		name string
		on   bool
		want string
	}{
		{"defaults", true, `[{"op":"test","path":"/spec/components/4/kind","value":"quay"},{"op":"add","path":"/spec/components/4/overrides","value":{"env":[{"name":"DEBUGLOG","value":"true"}]}}]`},
		{"other-overrides", true, `[{"op":"test","path":"/spec/components/2/kind","value":"quay"},{"op":"add","path":"/spec/components/2/overrides/env/-","value":{"name":"DEBUGLOG","value":"true"}}]`},
		{"no-quay-entry", true, `[{"op":"add","path":"/spec/components/-","value":{"kind":"quay","managed":true,"overrides":{"env":[{"name":"DEBUGLOG","value":"true"}]}}}]`},
		{"debuglog-false", true, `[{"op":"test","path":"/spec/components/0/kind","value":"quay"},{"op":"test","path":"/spec/components/0/overrides/env/0/name","value":"DEBUGLOG"},{"op":"replace","path":"/spec/components/0/overrides/env/0","value":{"name":"DEBUGLOG","value":"true"}}]`},
		{"already-on", false, `[{"op":"test","path":"/spec/components/1/kind","value":"quay"},{"op":"test","path":"/spec/components/1/overrides","value":{"env":[{"name":"DEBUGLOG","value":"true"}]}},{"op":"remove","path":"/spec/components/1/overrides"}]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var spec string
			for _, tc := range debugCases {
				if tc.name == tt.name {
					spec = tc.spec
				}
			}
			e := newTestEnv(t, registryWithSpec(t, spec))
			if err := e.d.SetDebug(t.Context(), tt.on); err != nil {
				t.Fatal(err)
			}
			ps := e.patches()
			if len(ps) != 1 {
				t.Fatalf("%d patches", len(ps))
			}
			if got := string(ps[0].GetPatch()); got != tt.want {
				t.Errorf("patch:\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestDebugPlanText(t *testing.T) {
	tests := []struct {
		name string
		on   bool
		want []string
	}{
		{"defaults", true, []string{
			`add spec.components[kind=quay].overrides.env: DEBUGLOG="true"`,
			"the Quay Operator then rolls out new quay pods (Quay restarts)",
		}},
		{"other-overrides", true, []string{
			`add spec.components[kind=quay].overrides.env: DEBUGLOG="true" (after WORKER_COUNT_WEB, HTTP_PROXY)`,
			"the Quay Operator then rolls out new quay pods (Quay restarts)",
		}},
		{"debuglog-false", true, []string{
			`change spec.components[kind=quay].overrides.env: DEBUGLOG from "false" to "true"`,
			"the Quay Operator then rolls out new quay pods (Quay restarts)",
		}},
		{"debuglog-false", false, []string{
			`none: spec.components[kind=quay].overrides.env has DEBUGLOG="false", debug logging is already off`,
		}},
		{"already-on", true, []string{
			`none: spec.components[kind=quay].overrides.env already has DEBUGLOG="true"`,
		}},
		{"already-on", false, []string{
			"remove spec.components[kind=quay].overrides.env entry DEBUGLOG (and the then empty overrides of the quay component)",
			"the Quay Operator then rolls out new quay pods (Quay restarts)",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var spec string
			for _, tc := range debugCases {
				if tc.name == tt.name {
					spec = tc.spec
				}
			}
			e := newTestEnv(t, registryWithSpec(t, spec))
			plan, err := e.d.PlanDebug(t.Context(), tt.on)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(plan.Changes, tt.want) {
				t.Errorf("changes:\n got %s\nwant %s", strings.Join(plan.Changes, "\n     "), strings.Join(tt.want, "\n     "))
			}
			if len(e.patches()) != 0 {
				t.Error("PlanDebug must not patch")
			}
		})
	}
}

// A concurrent edit that moved the quay entry makes the patch fail instead
// of landing on another component.
func TestDebugPatchIsPinned(t *testing.T) {
	e := newTestEnv(t, registryWithSpec(t, debugCases[0].spec))
	obj := e.registryObj(t)
	p, err := planDebugPatch(obj, true)
	if err != nil {
		t.Fatal(err)
	}
	// Someone removes the first component meanwhile.
	comps, _, _ := unstructured.NestedSlice(obj.Object, "spec", "components")
	if err := unstructured.SetNestedSlice(obj.Object, comps[1:], "spec", "components"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.dyn.Resource(QuayRegistryGVR).Namespace(testNS).Update(t.Context(), obj, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	body := mustJSON(t, p.ops)
	_, err = e.dyn.Resource(QuayRegistryGVR).Namespace(testNS).Patch(t.Context(), testReg, types.JSONPatchType, body, metav1.PatchOptions{})
	if err == nil {
		t.Fatal("a stale patch applied")
	}
	after := e.registryObj(t)
	for _, c := range withoutQuay(after) {
		if _, ok := c.(map[string]any)["overrides"]; ok {
			t.Errorf("stale patch changed %v", c)
		}
	}
}
