// Package openshift is the collector for Quay deployments run by the Quay
// Operator on OpenShift (or any Kubernetes): the QuayRegistry custom resource
// (quay.redhat.com/v1) and the pods the Operator creates for it.
//
// Everything Kubernetes-specific goes through three small seams: a typed
// clientset (pods, logs, events, secrets), a dynamic client (QuayRegistry) and
// an Executor (pods/exec). Production wires them from a kubeconfig (New);
// tests pass client-go's fake clientsets and a recording Executor
// (NewFromClients). The logic above the seams — discovery, the label mapping,
// pod state, picking a pod, the debug patch — is what the tests cover.
package openshift

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/quayctl/quayctl/collectors"
)

// Kind is what Deployment.Kind returns.
const Kind = "openshift"

// QuayRegistryGVR is the Quay Operator's custom resource.
var QuayRegistryGVR = schema.GroupVersionResource{Group: "quay.redhat.com", Version: "v1", Resource: "quayregistries"}

// QuayRegistryListKind is the list kind of QuayRegistryGVR (fake dynamic
// clients need it registered).
const QuayRegistryListKind = "QuayRegistryList"

// DefaultOperatorNamespace is where OLM installs the Quay Operator for all
// namespaces. quayctl also looks in the registry's own namespace (an
// OwnNamespace/SingleNamespace install).
const DefaultOperatorNamespace = "openshift-operators"

// Options select the cluster, namespace and QuayRegistry. Zero values mean:
// the kubeconfig from KUBECONFIG or ~/.kube/config, its current context, that
// context's namespace, and the only QuayRegistry in it.
type Options struct {
	Kubeconfig string // --kubeconfig
	Context    string // --context
	Namespace  string // -n/--namespace
	Registry   string // --registry: the QuayRegistry's name
	// OperatorNamespace is where the Quay Operator's pod runs, when it is
	// neither the registry's namespace nor openshift-operators.
	OperatorNamespace string
}

// Deployment is a QuayRegistry and its pods. It implements
// collectors.Deployment and collectors.DebugToggler.
type Deployment struct {
	kube      kubernetes.Interface
	dyn       dynamic.Interface
	exec      Executor
	namespace string
	registry  string
	// operatorNamespaces are searched for the Operator's pod, in order.
	operatorNamespaces []string
}

var (
	_ collectors.Deployment   = (*Deployment)(nil)
	_ collectors.DebugToggler = (*Deployment)(nil)
)

// New loads the kubeconfig, finds the QuayRegistry and returns the
// deployment. Errors say what to do (log in, pass -n, pass --registry).
func New(ctx context.Context, opts Options) (*Deployment, error) {
	cfg, ns, err := loadConfig(opts)
	if err != nil {
		return nil, err
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client for %s: %w", cfg.Host, err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client for %s: %w", cfg.Host, err)
	}
	d, err := newDeployment(ctx, kube, dyn, NewRemoteExecutor(cfg, kube), ns, opts.Registry)
	if err != nil {
		return nil, clusterError(cfg.Host, err)
	}
	if opts.OperatorNamespace != "" {
		d.operatorNamespaces = []string{opts.OperatorNamespace}
	}
	return d, nil
}

// NewFromClients builds a Deployment from ready clients (the fakes in tests)
// and finds the QuayRegistry: the named one, or the only one in namespace.
func NewFromClients(kube kubernetes.Interface, dyn dynamic.Interface, exec Executor, namespace, registry string) (*Deployment, error) {
	return newDeployment(context.Background(), kube, dyn, exec, namespace, registry)
}

func newDeployment(ctx context.Context, kube kubernetes.Interface, dyn dynamic.Interface, exec Executor, namespace, registry string) (*Deployment, error) {
	if kube == nil || dyn == nil {
		return nil, errors.New("openshift: kubernetes clients are required")
	}
	if namespace == "" {
		namespace = "default"
	}
	name, err := findRegistry(ctx, dyn, namespace, registry)
	if err != nil {
		return nil, err
	}
	ons := []string{namespace}
	if namespace != DefaultOperatorNamespace {
		ons = append(ons, DefaultOperatorNamespace)
	}
	return &Deployment{
		kube: kube, dyn: dyn, exec: exec,
		namespace: namespace, registry: name,
		operatorNamespaces: ons,
	}, nil
}

// loadConfig resolves the kubeconfig the way oc does: --kubeconfig, else
// KUBECONFIG, else ~/.kube/config (in-cluster config when run in a pod), with
// --context overriding the current context. The namespace is -n, else the
// context's namespace, else "default".
func loadConfig(opts Options) (*rest.Config, string, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if opts.Kubeconfig != "" {
		rules.ExplicitPath = opts.Kubeconfig
	}
	overrides := &clientcmd.ConfigOverrides{CurrentContext: opts.Context}
	if opts.Namespace != "" {
		overrides.Context.Namespace = opts.Namespace
	}
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides)
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, "", kubeconfigError(opts, err)
	}
	ns, _, err := cc.Namespace()
	if err != nil {
		return nil, "", kubeconfigError(opts, err)
	}
	if opts.Namespace != "" {
		ns = opts.Namespace
	}
	return cfg, ns, nil
}

// ErrNoKubeContext is returned (wrapped) when no kubeconfig or context is
// available.
var ErrNoKubeContext = errors.New("no kube context: log in with oc login or pass --kubeconfig")

func kubeconfigError(opts Options, err error) error {
	switch {
	case clientcmd.IsEmptyConfig(err):
		return ErrNoKubeContext
	case clientcmd.IsContextNotFound(err) || opts.Context != "" && strings.Contains(err.Error(), fmt.Sprintf("context %q does not exist", opts.Context)):
		return fmt.Errorf("kube context %q not found in the kubeconfig: pick one of `oc config get-contexts` with --context, or log in with oc login: %w", opts.Context, err)
	case opts.Kubeconfig != "":
		return fmt.Errorf("cannot use kubeconfig %s: %w — pass a readable file with --kubeconfig, or log in with oc login", opts.Kubeconfig, err)
	default:
		return fmt.Errorf("cannot load the kubeconfig: %w — log in with oc login or pass --kubeconfig", err)
	}
}

// clusterError adds the remedy to errors that mean the cluster was not
// reached or refused the credentials.
func clusterError(host string, err error) error {
	switch {
	case apierrors.IsUnauthorized(err):
		return fmt.Errorf("%w — the cluster at %s rejected the credentials: log in again with oc login", err, host)
	case isConnectionError(err):
		return fmt.Errorf("cannot reach the cluster at %s: %w — check oc login, the network or VPN, or pick another --context", host, err)
	}
	return err
}

func isConnectionError(err error) bool {
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		return false
	}
	s := err.Error()
	for _, m := range []string{"connection refused", "no such host", "i/o timeout", "dial tcp", "TLS handshake", "certificate"} {
		if strings.Contains(s, m) {
			return true
		}
	}
	return false
}

// findRegistry returns the name of the QuayRegistry to use.
func findRegistry(ctx context.Context, dyn dynamic.Interface, ns, name string) (string, error) {
	res := dyn.Resource(QuayRegistryGVR).Namespace(ns)
	if name != "" {
		_, err := res.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return "", registryAPIError(err, ns, name)
		}
		return name, nil
	}
	list, err := res.List(ctx, metav1.ListOptions{})
	if err != nil {
		return "", registryAPIError(err, ns, "")
	}
	names := make([]string, 0, len(list.Items))
	for _, it := range list.Items {
		names = append(names, it.GetName())
	}
	sort.Strings(names)
	switch len(names) {
	case 0:
		return "", &RegistryNotFoundError{Namespace: ns}
	case 1:
		return names[0], nil
	default:
		return "", &AmbiguousRegistryError{Namespace: ns, Names: names}
	}
}

// RegistryNotFoundError: no QuayRegistry (or not the named one) in Namespace.
type RegistryNotFoundError struct {
	Namespace string
	Name      string // "" when none was named
}

func (e *RegistryNotFoundError) Error() string {
	if e.Name != "" {
		return fmt.Sprintf("QuayRegistry %q not found in namespace %s: check --registry (oc get quayregistry -n %s) or pass -n/--namespace", e.Name, e.Namespace, e.Namespace)
	}
	return fmt.Sprintf("no QuayRegistry in namespace %s: pass -n/--namespace (oc get quayregistry -A lists them)", e.Namespace)
}

// AmbiguousRegistryError: several QuayRegistry objects and none named.
type AmbiguousRegistryError struct {
	Namespace string
	Names     []string
}

func (e *AmbiguousRegistryError) Error() string {
	return fmt.Sprintf("several QuayRegistry objects in %s (%s): pass --registry NAME", e.Namespace, strings.Join(e.Names, ", "))
}

func registryAPIError(err error, ns, name string) error {
	switch {
	case apierrors.IsNotFound(err) && name != "" && isObjectNotFound(err):
		return &RegistryNotFoundError{Namespace: ns, Name: name}
	case apierrors.IsNotFound(err):
		// The resource type itself is unknown: the CRD is not installed.
		return fmt.Errorf("the QuayRegistry API (quay.redhat.com/v1) is not served by this cluster: is the Quay Operator installed? (oc get crd quayregistries.quay.redhat.com): %w", err)
	case apierrors.IsForbidden(err):
		return fmt.Errorf("not allowed to read QuayRegistry objects in namespace %s: %w — ask for get/list on quayregistries.quay.redhat.com (docs/openshift.md lists the RBAC quayctl needs)", ns, err)
	}
	return fmt.Errorf("reading QuayRegistry objects in namespace %s: %w", ns, err)
}

// isObjectNotFound tells "no such QuayRegistry" from "no such resource type":
// the API server names the object in the former's status details.
func isObjectNotFound(err error) bool {
	var status apierrors.APIStatus
	if !errors.As(err, &status) {
		return false
	}
	d := status.Status().Details
	return d != nil && d.Name != ""
}

// Kind returns "openshift".
func (d *Deployment) Kind() string { return Kind }

// Name returns "namespace/registry".
func (d *Deployment) Name() string { return d.namespace + "/" + d.registry }

// Namespace is the QuayRegistry's namespace.
func (d *Deployment) Namespace() string { return d.namespace }

// Registry is the QuayRegistry's name.
func (d *Deployment) Registry() string { return d.registry }

// getRegistry fetches the QuayRegistry object.
func (d *Deployment) getRegistry(ctx context.Context) (*unstructured.Unstructured, error) {
	obj, err := d.dyn.Resource(QuayRegistryGVR).Namespace(d.namespace).Get(ctx, d.registry, metav1.GetOptions{})
	if err != nil {
		return nil, registryAPIError(err, d.namespace, d.registry)
	}
	return obj, nil
}
