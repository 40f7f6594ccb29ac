package podman

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"

	"github.com/quayctl/quayctl/collectors"
)

var _ collectors.Mounter = (*Deployment)(nil)

// Mounts lists the bind mounts and volumes of component's container, with
// their host paths. Only a local service (unix://) has host paths on this
// machine; for tcp:// and ssh:// it says so with ErrNotSupported.
func (d *Deployment) Mounts(ctx context.Context, component string) ([]collectors.Mount, error) {
	if u, err := url.Parse(d.url); err != nil || u.Scheme != "unix" {
		return nil, fmt.Errorf("mounts of %s: %w: the podman service %s is not on this machine, so its host paths are not either", component, collectors.ErrNotSupported, d.url)
	}
	_, data, err := d.inspect(ctx, component)
	if err != nil {
		return nil, err
	}
	out := make([]collectors.Mount, 0, len(data.Mounts))
	for _, m := range data.Mounts {
		src := m.Source
		if m.SubPath != "" && src != "" {
			src = filepath.Join(src, m.SubPath)
		}
		out = append(out, collectors.Mount{Type: m.Type, Name: m.Name, Source: src, Destination: m.Destination, RW: m.RW})
	}
	return out, nil
}

var _ collectors.ProcessUser = (*Deployment)(nil)

// User is the user component's container runs as (podman inspect
// .Config.User: --user, else the image's USER).
func (d *Deployment) User(ctx context.Context, component string) (string, error) {
	_, data, err := d.inspect(ctx, component)
	if err != nil {
		return "", err
	}
	if data.Config == nil {
		return "", nil
	}
	return data.Config.User, nil
}
