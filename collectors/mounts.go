package collectors

import "context"

// Mount is a file system mounted into a component's container: a bind
// mount or a named volume.
type Mount struct {
	Type        string `json:"type"`           // bind, volume, tmpfs …
	Name        string `json:"name,omitempty"` // the volume's name
	Source      string `json:"source"`         // the path on the host that runs the container
	Destination string `json:"destination"`    // the path inside the container
	RW          bool   `json:"rw"`
}

// Mounter is implemented by deployments that can tell which host paths a
// component's container mounts, so quayctl can look at a container's
// storage from the host (LocalStorage's storage_path) when it runs there.
type Mounter interface {
	// Mounts lists the mounts of component's container. It returns an
	// error wrapping ErrNotSupported when the host paths are not on the
	// machine quayctl runs on (a remote podman service).
	Mounts(ctx context.Context, component string) ([]Mount, error)
}

// ProcessUser is implemented by deployments that can tell which user a
// component's main process runs as, so that quayctl, looking at a mount
// from the host as root, can judge permissions as that user would.
type ProcessUser interface {
	// User returns the user as the runtime reports it: "1001", "1001:0",
	// a name, or "" for the image's default (often root).
	User(ctx context.Context, component string) (string, error)
}
