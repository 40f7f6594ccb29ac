// Package direct is the collector for a Quay deployment quayctl can only
// reach over the network and through local files: the registry's URL
// (--url), a copy of its config.yaml (--config) and its database (--db).
// There are no containers to look into, so logs, exec and stats are not
// supported; the error says which flags reach a deployment that has them.
package direct

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/quayctl/quayctl/collectors"
)

// Kind is what Deployment.Kind returns.
const Kind = "direct"

// StackConfigPath is where Quay's container reads config.yaml; ReadFile of
// it on the quay component returns the --config file.
const StackConfigPath = "/conf/stack/config.yaml"

// StateExternal is the state of a component quayctl knows of but does not
// run or watch: it may be up or down (health and db commands find out).
const StateExternal = "external"

// Options are the direct target flags. At least one must be set.
type Options struct {
	URL        string // --url: the registry's base URL (https://quay.example.com)
	ConfigPath string // --config: config.yaml, or a directory holding one (a config bundle)
	DBURI      string // --db: the database URI; default: DB_URI of the config
}

// Deployment is a registry known by URL, config file and database URI.
type Deployment struct {
	url        *url.URL
	configPath string // resolved to the file
	dbURI      string
	redis      string // host:port of BUILDLOGS_REDIS, from the config
	hostname   string // SERVER_HOSTNAME, from the config
}

var _ collectors.Deployment = (*Deployment)(nil)

// New checks the options and reads what the config says about the
// database, Redis and the hostname. It does not contact anything.
func New(opts Options) (*Deployment, error) {
	if opts.URL == "" && opts.ConfigPath == "" && opts.DBURI == "" {
		return nil, errors.New("direct target: give --url, --config or --db")
	}
	d := &Deployment{dbURI: opts.DBURI}
	if opts.URL != "" {
		u, err := ParseURL(opts.URL)
		if err != nil {
			return nil, err
		}
		d.url = u
	}
	if opts.ConfigPath != "" {
		p := opts.ConfigPath
		st, err := os.Stat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return nil, fmt.Errorf("--config %s does not exist — give the path of a Quay config.yaml (or of a directory holding one)", p)
		case err != nil:
			return nil, fmt.Errorf("--config %s: %w", p, err)
		case st.IsDir():
			p = filepath.Join(p, "config.yaml")
			if _, err := os.Stat(p); err != nil {
				return nil, fmt.Errorf("--config %s is a directory without config.yaml — give the file itself", opts.ConfigPath)
			}
		}
		d.configPath = p
		if err := d.readConfig(); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// ParseURL accepts a registry base URL ("https://quay.example.com",
// "http://127.0.0.1:8080/") or a bare host[:port], which gets https.
func ParseURL(s string) (*url.URL, error) {
	raw := strings.TrimSpace(s)
	if !strings.Contains(raw, "://") {
		raw = "https://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("--url %q is not a URL — use the registry's base URL, such as https://quay.example.com", s)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("--url %q: scheme %q is not http or https", s, u.Scheme)
	}
	if u.User != nil {
		return nil, fmt.Errorf("--url must not hold credentials (user:password@) — quayctl's health checks are anonymous")
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawQuery, u.Fragment = "", ""
	return u, nil
}

// readConfig takes DB_URI, SERVER_HOSTNAME and BUILDLOGS_REDIS from the
// config file. A file that is not YAML is an error here: nothing else
// could read it either.
func (d *Deployment) readConfig() error {
	b, err := os.ReadFile(d.configPath)
	if err != nil {
		return fmt.Errorf("--config %s: %w", d.configPath, err)
	}
	var cfg struct {
		DBURI          string `yaml:"DB_URI"`
		ServerHostname string `yaml:"SERVER_HOSTNAME"`
		Redis          struct {
			Host string `yaml:"host"`
			Port any    `yaml:"port"`
		} `yaml:"BUILDLOGS_REDIS"`
	}
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		var te *yaml.TypeError
		if !errors.As(err, &te) { // wrong types of single keys are config validate's business
			return fmt.Errorf("--config %s is not valid YAML: %w", d.configPath, err)
		}
	}
	if d.dbURI == "" {
		d.dbURI = cfg.DBURI
	}
	d.hostname = cfg.ServerHostname
	if cfg.Redis.Host != "" {
		port := "6379"
		if cfg.Redis.Port != nil {
			port = fmt.Sprint(cfg.Redis.Port)
		}
		d.redis = net.JoinHostPort(cfg.Redis.Host, port)
	}
	return nil
}

// Kind returns "direct".
func (d *Deployment) Kind() string { return Kind }

// Name is the URL, else the config file, else the database's address.
func (d *Deployment) Name() string {
	switch {
	case d.url != nil:
		return d.url.String()
	case d.configPath != "":
		return d.configPath
	}
	return dbAddress(d.dbURI)
}

// URL is the --url base URL, or nil.
func (d *Deployment) URL() *url.URL {
	if d.url == nil {
		return nil
	}
	u := *d.url
	return &u
}

// ConfigPath is the config.yaml file given with --config, or "".
func (d *Deployment) ConfigPath() string { return d.configPath }

// DBURI is --db, else the config's DB_URI, or "". It holds the password:
// never print it unredacted.
func (d *Deployment) DBURI() string { return d.dbURI }

// Components lists what the flags and the config name: quay (the URL or
// SERVER_HOSTNAME), database (DB_URI's host, never its password) and redis
// (BUILDLOGS_REDIS). Their state is "external": quayctl does not watch them.
func (d *Deployment) Components(ctx context.Context) ([]collectors.Component, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []collectors.Component
	if d.url != nil || d.configPath != "" {
		inst := d.hostname
		if d.url != nil {
			inst = d.url.Host
		}
		if inst == "" {
			inst = d.configPath
		}
		out = append(out, collectors.Component{Name: collectors.ComponentQuay, Instance: inst, State: StateExternal})
	}
	if d.dbURI != "" {
		out = append(out, collectors.Component{Name: collectors.ComponentDatabase, Instance: dbAddress(d.dbURI), State: StateExternal})
	}
	if d.redis != "" {
		out = append(out, collectors.Component{Name: collectors.ComponentRedis, Instance: d.redis, State: StateExternal})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// dbAddress is host:port/database of a DB URI, without user or password.
func dbAddress(uri string) string {
	u, err := url.Parse(uri)
	if err != nil || u.Scheme == "" {
		return "(unparseable DB_URI)"
	}
	if strings.HasPrefix(u.Scheme, "sqlite") {
		return u.Scheme + ":" + strings.TrimPrefix(u.Path, "/")
	}
	db := strings.TrimPrefix(u.Path, "/")
	if db == "" {
		return u.Host
	}
	return u.Host + "/" + db
}

func (d *Deployment) names() []string {
	comps, _ := d.Components(context.Background())
	out := make([]string, 0, len(comps))
	for _, c := range comps {
		out = append(out, c.Name)
	}
	return out
}

func (d *Deployment) check(component string) error {
	for _, n := range d.names() {
		if n == component {
			return nil
		}
	}
	return &collectors.ComponentNotFoundError{Name: component, Available: d.names()}
}

// notSupported names what can do the operation instead.
func notSupported(op string) error {
	return fmt.Errorf("%s: %w: a direct target (--url/--config/--db) has no containers — point quayctl at the deployment with --podman[=URL] (standalone) or --openshift [-n NAMESPACE] [--registry NAME] (Quay Operator)", op, collectors.ErrNotSupported)
}

// Logs is not supported: there is no container to read them from.
func (d *Deployment) Logs(ctx context.Context, component string, opts collectors.LogOptions, w io.Writer) error {
	if err := d.check(component); err != nil {
		return err
	}
	return notSupported("logs")
}

// ReadFile opens the --config file, as the quay component's
// /conf/stack/config.yaml or under its own path. Other files are not
// supported.
func (d *Deployment) ReadFile(ctx context.Context, component, p string) (io.ReadCloser, error) {
	if err := d.check(component); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if component == collectors.ComponentQuay && d.configPath != "" {
		abs, _ := filepath.Abs(d.configPath)
		if p == StackConfigPath || p == d.configPath || p == abs {
			return os.Open(d.configPath)
		}
	}
	if component == collectors.ComponentQuay && d.configPath == "" && p == StackConfigPath {
		return nil, fmt.Errorf("read %s: %w: no --config was given — pass --config /path/to/config.yaml, or reach the deployment with --podman or --openshift", p, collectors.ErrNotSupported)
	}
	return nil, notSupported("read " + p + " from " + component)
}

// Exec is not supported.
func (d *Deployment) Exec(ctx context.Context, component string, argv []string, opts collectors.ExecOptions) (int, error) {
	if err := d.check(component); err != nil {
		return -1, err
	}
	return -1, notSupported("exec")
}

// Stats is not supported.
func (d *Deployment) Stats(ctx context.Context, component string) (collectors.Stats, error) {
	if err := d.check(component); err != nil {
		return collectors.Stats{}, err
	}
	return collectors.Stats{}, notSupported("stats")
}
