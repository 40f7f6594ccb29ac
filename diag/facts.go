package diag

import (
	"path"
	"time"
)

// Fact names: the layout of a support bundle and the only way checks reach
// a deployment. Per-component and per-location names are built by the
// functions below. docs/diagnose.md documents each.
const (
	FactTarget     = "target.json"     // Target
	FactComponents = "components.json" // []collectors.Component

	FactConfig       = "config/config.yaml" // Quay's config.yaml, redacted
	FactConfigSource = "config/source.json" // ConfigSource
	FactClairConfig  = "clair/config.yaml"  // Clair's config.yaml, redacted
	FactOpenShiftCR  = "openshift/quayregistry.json"
	FactOpenShiftEvt = "openshift/events.json"

	FactDBConnection = "database/connection.json"           // Connectivity from where quayctl runs
	FactDBFromQuay   = "database/connection-from-quay.json" // Connectivity from inside the quay component
	FactDBServer     = "database/server.json"
	FactDBActivity   = "database/activity.json"
	FactDBLocks      = "database/locks.json"
	FactDBSizes      = "database/sizes.json"
	FactDBSchema     = "database/schema.json"
	FactDBBloat      = "database/bloat.json"
	FactDBUsers      = "database/users.json"
	FactDBMirrors    = "database/mirrors.json"
	FactDBPlacement  = "database/placement.json"
	FactDBDiskFree   = "database/df.txt" // df -P inside the database component

	FactStorageLocations = "storage/locations.json" // []string, from DISTRIBUTED_STORAGE_CONFIG
)

// HealthEndpoints are Quay's three health endpoints (troubleshooting guide
// chapter 5).
var HealthEndpoints = []string{"instance", "endtoend", "warning"}

// FactHealth is the answer of /health/<endpoint> (HealthAnswer).
func FactHealth(endpoint string) string { return "health/" + endpoint + ".json" }

// FactLogs is a component's recent log; previous is the instance before the
// last restart.
func FactLogs(component string, previous bool) string {
	if previous {
		return path.Join("components", component, "logs-previous.txt")
	}
	return path.Join("components", component, "logs.txt")
}

// FactStats is a component's resource usage (collectors.Stats).
func FactStats(component string) string { return path.Join("components", component, "stats.json") }

// FactInspect is a component's full description, redacted: podman's
// container inspect, or the pods' objects on OpenShift. Bundles store it.
func FactInspect(component string) string {
	return path.Join("components", component, "inspect.json")
}

// FactStorageProbe is the probe of one storage location (StorageProbe).
func FactStorageProbe(location string) string {
	return path.Join("storage", location, "probe.json")
}

// FactStorageSample is the sample of blobs checked in one location
// (StorageSample), for geo-replication.
func FactStorageSample(location string) string {
	return path.Join("storage", location, "sample.json")
}

// ConfigSource says where config/config.yaml came from.
type ConfigSource struct {
	Source string `json:"source"` // "/conf/stack/config.yaml in the quay component of podman …"
}

// HealthAnswer is what a health endpoint said.
type HealthAnswer struct {
	URL         string  `json:"url"`
	HTTPStatus  int     `json:"http_status,omitempty"`
	ContentType string  `json:"content_type,omitempty"`
	ElapsedMS   float64 `json:"elapsed_ms"`
	// Body is Quay's JSON ({"data":{"services":{…}},"status_code":200}),
	// or the start of whatever else answered.
	Body  string `json:"body,omitempty"`
	Error string `json:"error,omitempty"` // could not connect, TLS failure …
}

// Connectivity is a connection attempt to a dependency.
type Connectivity struct {
	From      string  `json:"from"`             // "quayctl" or "quay component (quay-app)"
	Target    string  `json:"target"`           // host:port or the redacted URI
	Method    string  `json:"method,omitempty"` // pgx, tcp dial, bash /dev/tcp, python …
	OK        bool    `json:"ok"`
	ElapsedMS float64 `json:"elapsed_ms"`
	Error     string  `json:"error,omitempty"`
	Detail    string  `json:"detail,omitempty"` // extra lines (tool output), redacted
}

// StorageProbe is the write/read/compare/delete probe of one location.
type StorageProbe struct {
	Location string             `json:"location"`
	Driver   string             `json:"driver"`
	Where    string             `json:"where,omitempty"` // path or endpoint/bucket (no secrets)
	OK       bool               `json:"ok"`
	Steps    []StorageProbeStep `json:"steps"`
	Error    string             `json:"error,omitempty"`
	// Download is the proxy or signed-URL fetch a client would make.
	Download *StorageProbeStep `json:"download,omitempty"`
}

// StorageProbeStep is one step of a probe, with its timing.
type StorageProbeStep struct {
	Step      string  `json:"step"` // write, stat, read, compare, delete, signed-url, proxy
	OK        bool    `json:"ok"`
	ElapsedMS float64 `json:"elapsed_ms"`
	Error     string  `json:"error,omitempty"`
}

// StorageSample is which sampled blobs a location really holds.
type StorageSample struct {
	Location string    `json:"location"`
	Checked  int       `json:"checked"`
	Missing  []string  `json:"missing,omitempty"` // content checksums the database places here but storage lacks
	When     time.Time `json:"when"`
}
