package openshift

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
	kubefake "k8s.io/client-go/kubernetes/fake"
)

func TestDiscovery(t *testing.T) {
	tests := []struct {
		name       string
		registries []runtime.Object
		namespace  string
		registry   string
		want       string // Deployment.Name()
		wantErr    string // exact error text
		wantType   any    // pointer to the error type expected via errors.As
	}{
		{
			name:       "the only one",
			registries: []runtime.Object{namedRegistry(t, "quay", "registry")},
			namespace:  "quay",
			want:       "quay/registry",
		},
		{
			name:       "one here, others elsewhere",
			registries: []runtime.Object{namedRegistry(t, "quay", "registry"), namedRegistry(t, "other-ns", "a"), namedRegistry(t, "other-ns", "b")},
			namespace:  "quay",
			want:       "quay/registry",
		},
		{
			name:      "none",
			namespace: "quay",
			wantErr:   "no QuayRegistry in namespace quay: pass -n/--namespace (oc get quayregistry -A lists them)",
			wantType:  new(*RegistryNotFoundError),
		},
		{
			name:       "none in this namespace",
			registries: []runtime.Object{namedRegistry(t, "elsewhere", "registry")},
			namespace:  "quay",
			wantErr:    "no QuayRegistry in namespace quay: pass -n/--namespace (oc get quayregistry -A lists them)",
			wantType:   new(*RegistryNotFoundError),
		},
		{
			name:       "several",
			registries: []runtime.Object{namedRegistry(t, "quay", "b"), namedRegistry(t, "quay", "a")},
			namespace:  "quay",
			wantErr:    "several QuayRegistry objects in quay (a, b): pass --registry NAME",
			wantType:   new(*AmbiguousRegistryError),
		},
		{
			name:       "several, one named",
			registries: []runtime.Object{namedRegistry(t, "quay", "b"), namedRegistry(t, "quay", "a")},
			namespace:  "quay",
			registry:   "b",
			want:       "quay/b",
		},
		{
			name:       "named but missing",
			registries: []runtime.Object{namedRegistry(t, "quay", "registry")},
			namespace:  "quay",
			registry:   "nope",
			wantErr:    `QuayRegistry "nope" not found in namespace quay: check --registry (oc get quayregistry -n quay) or pass -n/--namespace`,
			wantType:   new(*RegistryNotFoundError),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := NewFromClients(kubefake.NewClientset(), newDyn(tt.registries...), &recordingExecutor{}, tt.namespace, tt.registry)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("got %s, want error %q", d.Name(), tt.wantErr)
				}
				if err.Error() != tt.wantErr {
					t.Errorf("error:\n got %q\nwant %q", err.Error(), tt.wantErr)
				}
				if tt.wantType != nil && !errors.As(err, tt.wantType) {
					t.Errorf("error %T is not %T", err, tt.wantType)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d.Name() != tt.want || d.Kind() != "openshift" {
				t.Errorf("got %s %s, want openshift %s", d.Kind(), d.Name(), tt.want)
			}
		})
	}
}

// writeKubeconfig writes a kubeconfig with two contexts; the current one
// has namespace quay-enterprise.
func writeKubeconfig(t *testing.T) string {
	t.Helper()
	const kc = `apiVersion: v1
kind: Config
clusters:
- name: c
  cluster:
    server: https://api.example.com:6443
users:
- name: u
  user:
    token: sha256~abc
contexts:
- name: quay-admin
  context:
    cluster: c
    user: u
    namespace: quay-enterprise
- name: plain
  context:
    cluster: c
    user: u
current-context: quay-admin
`
	p := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(p, []byte(kc), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// isolate points every kubeconfig source at nothing.
func isolate(t *testing.T) {
	t.Helper()
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("KUBECONFIG", filepath.Join(home, "does-not-exist"))
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	t.Setenv("KUBERNETES_SERVICE_PORT", "")
}

func TestLoadConfig(t *testing.T) {
	kc := writeKubeconfig(t)
	tests := []struct {
		name     string
		opts     Options
		env      string // KUBECONFIG
		wantNS   string
		wantHost string
		wantErr  string // substring
		wantIs   error
	}{
		{name: "no kubeconfig anywhere", wantErr: "no kube context: log in with oc login or pass --kubeconfig", wantIs: ErrNoKubeContext},
		{name: "current context's namespace", opts: Options{Kubeconfig: kc}, wantNS: "quay-enterprise", wantHost: "https://api.example.com:6443"},
		{name: "KUBECONFIG", env: kc, wantNS: "quay-enterprise", wantHost: "https://api.example.com:6443"},
		{name: "-n wins", opts: Options{Kubeconfig: kc, Namespace: "quay"}, wantNS: "quay"},
		{name: "--context without namespace", opts: Options{Kubeconfig: kc, Context: "plain"}, wantNS: "default"},
		{name: "unknown --context", opts: Options{Kubeconfig: kc, Context: "nope"}, wantErr: `kube context "nope" not found in the kubeconfig: pick one of ` + "`oc config get-contexts`" + ` with --context`},
		{name: "missing --kubeconfig file", opts: Options{Kubeconfig: "/nonexistent/kubeconfig"}, wantErr: "cannot use kubeconfig /nonexistent/kubeconfig"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			isolate(t)
			if tt.env != "" {
				t.Setenv("KUBECONFIG", tt.env)
			}
			cfg, ns, err := loadConfig(tt.opts)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want it to contain %q", err, tt.wantErr)
				}
				if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
					t.Errorf("error %v is not %v", err, tt.wantIs)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ns != tt.wantNS {
				t.Errorf("namespace = %q, want %q", ns, tt.wantNS)
			}
			if tt.wantHost != "" && cfg.Host != tt.wantHost {
				t.Errorf("host = %q, want %q", cfg.Host, tt.wantHost)
			}
		})
	}
}

// New without any kube context fails before touching the network, with the
// remedy in the message.
func TestNewWithoutKubeContext(t *testing.T) {
	isolate(t)
	_, err := New(t.Context(), Options{})
	if !errors.Is(err, ErrNoKubeContext) {
		t.Fatalf("New() error = %v, want ErrNoKubeContext", err)
	}
	if err.Error() != "no kube context: log in with oc login or pass --kubeconfig" {
		t.Errorf("message = %q", err.Error())
	}
}
