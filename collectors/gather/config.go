package gather

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/quayctl/quayctl/collectors"
	"github.com/quayctl/quayctl/collectors/direct"
	"github.com/quayctl/quayctl/collectors/openshift"
	"github.com/quayctl/quayctl/diag"
	"github.com/quayctl/quayctl/diag/configcheck"
	"github.com/quayctl/quayctl/internal/redact"
)

// MaxConfigBytes bounds a config.yaml read from a deployment.
const MaxConfigBytes = 16 << 20

// Where a config is read from on OpenShift (`config get --from`).
const (
	ConfigFromAuto    = ""        // the quay pod's file, else the mounted secret
	ConfigFromPod     = "pod"     // /conf/stack/config.yaml in the quay pod
	ConfigFromBundle  = "bundle"  // the QuayRegistry's configBundleSecret
	ConfigFromMounted = "mounted" // the config secret the Operator generates
)

// ConfigSecrets is what the OpenShift collector offers beyond ReadFile.
type ConfigSecrets interface {
	ConfigBundle(ctx context.Context) (openshift.ConfigSecret, error)
	MountedConfig(ctx context.Context) (openshift.ConfigSecret, error)
}

// ReadConfig reads the deployment's config.yaml and says where it came
// from (a description that never holds a secret). note hears a fallback
// the user should know about. The bytes are NOT redacted.
func ReadConfig(ctx context.Context, d collectors.Deployment, from string, note func(string)) ([]byte, string, error) {
	cs, isOpenShift := d.(ConfigSecrets)
	if (from == ConfigFromBundle || from == ConfigFromMounted) && !isOpenShift {
		return nil, "", fmt.Errorf("--from %s reads a Kubernetes secret, and this is a %s deployment: use it with --openshift", from, d.Kind())
	}
	secret := func(s openshift.ConfigSecret, err error, what string) ([]byte, string, error) {
		if err != nil {
			return nil, "", fmt.Errorf("cannot read %s: %w", what, err)
		}
		b, ok := s.ConfigYAML()
		if !ok {
			return nil, "", fmt.Errorf("secret %s/%s has no config.yaml — check the QuayRegistry's spec.configBundleSecret", s.Namespace, s.Name)
		}
		return b, fmt.Sprintf("secret %s/%s (%s)", s.Namespace, s.Name, what), nil
	}
	switch from {
	case ConfigFromBundle:
		s, err := cs.ConfigBundle(ctx)
		return secret(s, err, "the config bundle")
	case ConfigFromMounted:
		s, err := cs.MountedConfig(ctx)
		return secret(s, err, "the mounted config")
	}
	b, err := ReadComponentFile(ctx, d, collectors.ComponentQuay, direct.StackConfigPath, MaxConfigBytes)
	if err == nil {
		src := fmt.Sprintf("%s in the quay component of %s %s", direct.StackConfigPath, d.Kind(), d.Name())
		if dd, ok := d.(*direct.Deployment); ok {
			src = dd.ConfigPath()
		}
		return b, src, nil
	}
	var nr *collectors.NotRunningError
	if isOpenShift && from == ConfigFromAuto && (errors.As(err, &nr) || errors.Is(err, collectors.ErrNotSupported)) {
		if note != nil {
			msg, _ := redact.String(err.Error())
			note(fmt.Sprintf("no running quay pod (%s); reading the mounted config secret instead", msg))
		}
		s, serr := cs.MountedConfig(ctx)
		return secret(s, serr, "the mounted config")
	}
	return nil, "", fmt.Errorf("cannot read %s of the quay component: %w", direct.StackConfigPath, err)
}

// ReadComponentFile reads a whole (small) file from a component.
func ReadComponentFile(ctx context.Context, d collectors.Deployment, component, path string, limit int64) ([]byte, error) {
	rc, err := d.ReadFile(ctx, component, path)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s is larger than %d MiB: not a config file", path, limit>>20)
	}
	return b, nil
}

// RegistryStatuser is the OpenShift collector's QuayRegistry status.
type RegistryStatuser interface {
	Status(ctx context.Context) (openshift.RegistryStatus, error)
}

// URLNotKnownError says the registry's URL could not be worked out.
type URLNotKnownError struct{ Reason string }

func (e *URLNotKnownError) Error() string {
	return "cannot tell the registry's URL: " + e.Reason + " — pass it with --url https://quay.example.com"
}

// RegistryURL finds the registry's base URL: override (--url), a direct
// target's URL, the QuayRegistry's endpoint, else SERVER_HOSTNAME and
// PREFERRED_URL_SCHEME of the config read by readConfig. from says which.
func RegistryURL(ctx context.Context, d collectors.Deployment, override string, readConfig func() ([]byte, string, error)) (*url.URL, string, error) {
	if override != "" {
		u, err := direct.ParseURL(override)
		return u, "--url", err
	}
	if dd, ok := d.(*direct.Deployment); ok && dd.URL() != nil {
		return dd.URL(), "--url", nil
	}
	if rs, ok := d.(RegistryStatuser); ok {
		if st, err := rs.Status(ctx); err == nil && st.RegistryEndpoint != "" {
			if u, err := direct.ParseURL(st.RegistryEndpoint); err == nil {
				return u, "the QuayRegistry's status.registryEndpoint", nil
			}
		}
	}
	raw, src, err := readConfig()
	if err != nil {
		return nil, "", &URLNotKnownError{Reason: err.Error()}
	}
	var cfg struct {
		Host   string `yaml:"SERVER_HOSTNAME"`
		Scheme string `yaml:"PREFERRED_URL_SCHEME"`
	}
	_ = yaml.Unmarshal(raw, &cfg)
	if strings.TrimSpace(cfg.Host) == "" {
		return nil, "", &URLNotKnownError{Reason: src + " has no SERVER_HOSTNAME"}
	}
	scheme := cfg.Scheme
	if scheme != "https" {
		scheme = "http"
	}
	u, err := direct.ParseURL(scheme + "://" + strings.TrimSpace(cfg.Host))
	if err != nil {
		return nil, "", &URLNotKnownError{Reason: "SERVER_HOSTNAME in " + src + " is not a host name (" + err.Error() + ")"}
	}
	return u, "SERVER_HOSTNAME of " + src, nil
}

// rawConfig is the deployment's unredacted config, read once.
type rawConfig struct {
	bytes  []byte
	source string
	values map[string]any
	err    error
}

func (g *Gatherer) rawConfig(ctx context.Context) rawConfig {
	g.rawOnce.Do(func() {
		ctx, cancel := context.WithTimeout(g.base, g.opts.Timeout)
		defer cancel()
		r := &g.raw
		r.bytes, r.source, r.err = ReadConfig(ctx, g.d, g.opts.ConfigFrom, g.opts.Warn)
		if r.err != nil {
			r.err = notApplicable(r.err)
			return
		}
		if err := yaml.Unmarshal(r.bytes, &r.values); err != nil {
			r.err = fmt.Errorf("%s is not valid YAML: %w", r.source, err)
		}
		if r.values == nil {
			r.values = map[string]any{}
		}
	})
	return g.raw
}

func (g *Gatherer) config(ctx context.Context, w io.Writer) error {
	rc := g.rawConfig(ctx)
	if rc.err != nil {
		return rc.err
	}
	red, _ := redact.Config(rc.values)
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	return enc.Encode(red)
}

func (g *Gatherer) configSource(ctx context.Context, w io.Writer) error {
	rc := g.rawConfig(ctx)
	if rc.err != nil {
		return rc.err
	}
	return writeJSON(w, diag.ConfigSource{Source: rc.source})
}

// clairConfigPaths are where Clair's config lives: the Operator mounts it
// at /clair/config.yaml; standalone guides use /config/config.yaml.
var clairConfigPaths = []string{"/clair/config.yaml", "/config/config.yaml", "/etc/clair/config.yaml"}

func (g *Gatherer) clairConfig(ctx context.Context, w io.Writer) error {
	if _, err := g.component(ctx, collectors.ComponentClair); err != nil {
		return err
	}
	var errs []string
	for _, p := range clairConfigPaths {
		b, err := ReadComponentFile(ctx, g.d, collectors.ComponentClair, p, MaxConfigBytes)
		if err != nil {
			if errors.Is(err, collectors.ErrNotSupported) {
				return notApplicable(err)
			}
			errs = append(errs, err.Error())
			continue
		}
		var v map[string]any
		if err := yaml.Unmarshal(b, &v); err != nil {
			return fmt.Errorf("%s in clair is not valid YAML: %w", p, err)
		}
		red, _ := redact.Config(v)
		var buf bytes.Buffer
		enc := yaml.NewEncoder(&buf)
		enc.SetIndent(2)
		if err := enc.Encode(red); err != nil {
			return err
		}
		_, err = w.Write(buf.Bytes())
		return err
	}
	return fmt.Errorf("no Clair config found at %s: %s", strings.Join(clairConfigPaths, ", "), strings.Join(errs, "; "))
}

// eventLister is the OpenShift collector's namespace events.
type eventLister interface {
	Events(ctx context.Context) ([]openshift.Event, error)
}

func (g *Gatherer) openShiftStatus(ctx context.Context, w io.Writer) error {
	rs, ok := g.d.(RegistryStatuser)
	if !ok {
		return fmt.Errorf("a QuayRegistry exists only on OpenShift: %w", diag.ErrNotApplicable)
	}
	st, err := rs.Status(ctx)
	if err != nil {
		return err
	}
	return writeJSON(w, st)
}

func (g *Gatherer) openShiftEvents(ctx context.Context, w io.Writer) error {
	el, ok := g.d.(eventLister)
	if !ok {
		return fmt.Errorf("namespace events exist only on OpenShift: %w", diag.ErrNotApplicable)
	}
	evs, err := el.Events(ctx)
	if err != nil {
		return err
	}
	if evs == nil {
		evs = []openshift.Event{}
	}
	return writeJSON(w, evs)
}

// DeploymentFiles probes /conf/stack in the quay component (the TLS files
// config validation looks for next to config.yaml).
func DeploymentFiles(ctx context.Context, d collectors.Deployment) configcheck.FileProbe {
	return func(name string) (bool, bool) {
		rc, err := d.ReadFile(ctx, collectors.ComponentQuay, "/conf/stack/"+name)
		if err == nil {
			rc.Close()
			return true, true
		}
		return false, errors.Is(err, fs.ErrNotExist)
	}
}
