package bundle

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"

	"github.com/quayctl/quayctl/collectors"
	"github.com/quayctl/quayctl/collectors/direct"
	"github.com/quayctl/quayctl/collectors/gather"
	"github.com/quayctl/quayctl/diag"
)

// Deployment is the deployment a bundle describes, as of its collection:
// components, logs, stats and the config files it stored. It cannot run
// anything, so Exec is collectors.ErrNotSupported.
type Deployment struct {
	dir      string
	file     string
	manifest Manifest
}

var _ collectors.Deployment = (*Deployment)(nil)

// Kind is "bundle".
func (d *Deployment) Kind() string { return "bundle" }

// Name is the collected deployment's kind and name, and the bundle file.
func (d *Deployment) Name() string {
	t := d.manifest.Target
	return strings.TrimSpace(fmt.Sprintf("%s %s (%s)", t.Kind, t.Name, d.file))
}

// read returns a stored fact's bytes; a missing fact says why it is
// missing (the recorded error) and wraps fs.ErrNotExist.
func (d *Deployment) read(name string) ([]byte, error) {
	p, err := localPath(d.dir, name)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(p)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return b, err
	}
	if msg, rerr := os.ReadFile(p + ErrorSuffix); rerr == nil {
		return nil, &notStoredError{name: name, why: string(bytes.TrimSpace(msg))}
	}
	return nil, &notStoredError{name: name, why: "it was not collected"}
}

type notStoredError struct{ name, why string }

func (e *notStoredError) Error() string {
	return fmt.Sprintf("the bundle has no %s: %s", e.name, e.why)
}
func (e *notStoredError) Unwrap() error { return fs.ErrNotExist }

// Components lists components.json.
func (d *Deployment) Components(ctx context.Context) ([]collectors.Component, error) {
	b, err := d.read(diag.FactComponents)
	if err != nil {
		return nil, err
	}
	var cs []collectors.Component
	if err := json.Unmarshal(b, &cs); err != nil {
		return nil, fmt.Errorf("the bundle's %s is damaged: %w", diag.FactComponents, err)
	}
	return cs, nil
}

// component finds a component by role.
func (d *Deployment) component(ctx context.Context, name string) (collectors.Component, error) {
	cs, err := d.Components(ctx)
	if err != nil {
		return collectors.Component{}, err
	}
	var avail []string
	for _, c := range cs {
		if c.Name == name {
			return c, nil
		}
		if !slices.Contains(avail, c.Name) {
			avail = append(avail, c.Name)
		}
	}
	return collectors.Component{}, &collectors.ComponentNotFoundError{Name: name, Available: avail}
}

// Logs writes the stored log (the last opts.Tail lines when set). A bundle
// holds what --since chose at collection; Since and Follow cannot go
// further, so they are ignored.
func (d *Deployment) Logs(ctx context.Context, component string, opts collectors.LogOptions, w io.Writer) error {
	if _, err := d.component(ctx, component); err != nil {
		return err
	}
	name := diag.FactLogs(component, opts.Previous)
	p, err := localPath(d.dir, name)
	if err != nil {
		return err
	}
	if opts.Tail > 0 {
		b, err := tailFile(p, opts.Tail)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				_, err = d.read(name)
			}
			return err
		}
		_, err = w.Write(b)
		return err
	}
	f, err := os.Open(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			_, err = d.read(name)
		}
		return err
	}
	defer f.Close()
	_, err = io.Copy(w, f)
	return err
}

// storedFiles maps files inside components to the facts holding them.
func storedFile(component, path string) (string, bool) {
	switch {
	case component == collectors.ComponentQuay && path == direct.StackConfigPath:
		return diag.FactConfig, true
	case component == collectors.ComponentClair && slices.Contains([]string{"/clair/config.yaml", "/config/config.yaml", "/etc/clair/config.yaml"}, path):
		return diag.FactClairConfig, true
	case component == collectors.ComponentDatabase && slices.Contains(gather.PostgresConfPaths, path):
		return gather.FactPostgresConf, true
	}
	return "", false
}

// ReadFile returns a config file the bundle stored: the quay component's
// config.yaml, Clair's config.yaml, the database's postgresql.conf (all as
// redacted at collection). Other paths do not exist.
func (d *Deployment) ReadFile(ctx context.Context, component, path string) (io.ReadCloser, error) {
	if _, err := d.component(ctx, component); err != nil {
		return nil, err
	}
	name, ok := storedFile(component, path)
	if !ok {
		return nil, fmt.Errorf("%s in %s: a bundle stores only config.yaml, Clair's config and postgresql.conf: %w", path, component, fs.ErrNotExist)
	}
	b, err := d.read(name)
	if err != nil {
		return nil, err
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

// Exec is not possible in a bundle.
func (d *Deployment) Exec(ctx context.Context, component string, argv []string, opts collectors.ExecOptions) (int, error) {
	return 0, fmt.Errorf("a support bundle cannot run commands (collect a new one from the live deployment instead): %w", collectors.ErrNotSupported)
}

// Stats returns the stats stored at collection.
func (d *Deployment) Stats(ctx context.Context, component string) (collectors.Stats, error) {
	c, err := d.component(ctx, component)
	if err != nil {
		return collectors.Stats{}, err
	}
	if !c.Running() {
		return collectors.Stats{}, &collectors.NotRunningError{Component: component, Instance: c.Instance, State: c.State}
	}
	b, err := d.read(diag.FactStats(component))
	if err != nil {
		return collectors.Stats{}, fmt.Errorf("%v: %w", err, collectors.ErrNotSupported)
	}
	var st collectors.Stats
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("the bundle's %s is damaged: %w", diag.FactStats(component), err)
	}
	return st, nil
}
