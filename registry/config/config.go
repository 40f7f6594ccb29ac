// Package config models Quay's config.yaml as `quayctl serve` reads it: the
// keys the server uses (typed, with Quay's defaults), where the file comes
// from, and validation that names the offending key and the fix.
//
// Keys keep Quay's spelling and case. A real Quay config carries many keys
// the server does not use; those are accepted with a warning, while keys that
// Quay does not know at all are errors (usually typos).
package config

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode"

	"go.yaml.in/yaml/v3"
)

// Config holds the keys quayctl serve uses. Field tags are Quay's key names.
type Config struct {
	// Hosting.
	ServerHostname         string `yaml:"SERVER_HOSTNAME"`
	PreferredURLScheme     string `yaml:"PREFERRED_URL_SCHEME"`
	ExternalTLSTermination bool   `yaml:"EXTERNAL_TLS_TERMINATION"`

	// Database.
	DBURI            string         `yaml:"DB_URI"`
	DBConnectionArgs map[string]any `yaml:"DB_CONNECTION_ARGS"`

	// Storage.
	DistributedStorageConfig           map[string]StorageLocation `yaml:"DISTRIBUTED_STORAGE_CONFIG"`
	DistributedStoragePreference       []string                   `yaml:"DISTRIBUTED_STORAGE_PREFERENCE"`
	DistributedStorageDefaultLocations []string                   `yaml:"DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS"`
	FeatureProxyStorage                bool                       `yaml:"FEATURE_PROXY_STORAGE"`
	// FeatureStorageProxy is the spelling used by the Red Hat troubleshooting
	// guide. Quay ignores it; quayctl reads it as FEATURE_PROXY_STORAGE when
	// that key is absent. Use ProxyStorage() rather than either field.
	FeatureStorageProxy       *bool `yaml:"FEATURE_STORAGE_PROXY,omitempty"`
	FeatureStorageReplication bool  `yaml:"FEATURE_STORAGE_REPLICATION"`

	// Users and authentication.
	AuthenticationType               string   `yaml:"AUTHENTICATION_TYPE"`
	SuperUsers                       []string `yaml:"SUPER_USERS"`
	SecretKey                        string   `yaml:"SECRET_KEY"`
	DatabaseSecretKey                string   `yaml:"DATABASE_SECRET_KEY"`
	SetupComplete                    bool     `yaml:"SETUP_COMPLETE"`
	FeatureUserInitialize            bool     `yaml:"FEATURE_USER_INITIALIZE"`
	FeatureAnonymousAccess           bool     `yaml:"FEATURE_ANONYMOUS_ACCESS"`
	FeatureSuperusersFullAccess      bool     `yaml:"FEATURE_SUPERUSERS_FULL_ACCESS"`
	FeatureRequireEncryptedBasicAuth bool     `yaml:"FEATURE_REQUIRE_ENCRYPTED_BASIC_AUTH"`
	FeatureMailing                   bool     `yaml:"FEATURE_MAILING"`

	// E-mail notifications (mail.go): the SMTP server, used when
	// FEATURE_MAILING is on and MAIL_SERVER is set. MAIL_USE_TLS (default
	// true, as in Quay) requires STARTTLS; MAIL_USE_AUTH sends
	// MAIL_USERNAME and MAIL_PASSWORD (AUTH PLAIN, only over TLS or to
	// localhost).
	MailServer        string `yaml:"MAIL_SERVER"`
	MailPort          int    `yaml:"MAIL_PORT"`
	MailUseTLS        bool   `yaml:"MAIL_USE_TLS"`
	MailUseAuth       bool   `yaml:"MAIL_USE_AUTH"`
	MailUsername      string `yaml:"MAIL_USERNAME"`
	MailPassword      string `yaml:"MAIL_PASSWORD"`
	MailDefaultSender string `yaml:"MAIL_DEFAULT_SENDER"`
	// WebhookHostnameBlacklist are host names webhook notifications may
	// not target, besides localhost and 127.0.0.1.
	WebhookHostnameBlacklist []string `yaml:"WEBHOOK_HOSTNAME_BLACKLIST"`

	// Registry features and workers.
	// FeatureSparseIndex lets an image index reference child manifests the
	// registry does not hold (Quay's sparse manifest lists).
	FeatureSparseIndex     bool `yaml:"FEATURE_SPARSE_INDEX"`
	FeatureQuotaManagement bool `yaml:"FEATURE_QUOTA_MANAGEMENT"`
	// Quota management (quota.go in this package): FEATURE_EDIT_QUOTA and
	// FEATURE_VERIFY_QUOTA are true when unset, as in Quay.
	FeatureEditQuota              bool  `yaml:"FEATURE_EDIT_QUOTA"`
	FeatureVerifyQuota            bool  `yaml:"FEATURE_VERIFY_QUOTA"`
	DefaultSystemRejectQuotaBytes int64 `yaml:"DEFAULT_SYSTEM_REJECT_QUOTA_BYTES"`
	QuotaTotalDelaySeconds        int   `yaml:"QUOTA_TOTAL_DELAY_SECONDS"`
	FeatureAutoPrune              bool  `yaml:"FEATURE_AUTO_PRUNE"`
	FeatureRepoMirror             bool  `yaml:"FEATURE_REPO_MIRROR"`
	FeatureGarbageCollection      bool  `yaml:"FEATURE_GARBAGE_COLLECTION"`
	// GarbageCollectionFrequency is seconds between GC passes (Quay: 30).
	GarbageCollectionFrequency int `yaml:"GARBAGE_COLLECTION_FREQUENCY"`
	// RepoMirrorInterval is seconds between mirror worker passes (Quay:
	// 30); RepoMirrorRollback undoes a sync in which any tag failed.
	RepoMirrorInterval int  `yaml:"REPO_MIRROR_INTERVAL"`
	RepoMirrorRollback bool `yaml:"REPO_MIRROR_ROLLBACK"`
	// Auto-prune worker (Quay's autopruneworker): seconds between passes
	// (Quay: 30), namespaces per pass (Quay: 10), and minutes a namespace
	// rests after a run (Quay: 60).
	AutoPruningPollPeriod                  int `yaml:"AUTO_PRUNING_POLL_PERIOD"`
	AutoPruningBatchSize                   int `yaml:"AUTO_PRUNING_BATCH_SIZE"`
	AutopruneTaskRunMinimumIntervalMinutes int `yaml:"AUTOPRUNE_TASK_RUN_MINIMUM_INTERVAL_MINUTES"`
	// The registry-wide policy (checked when serve starts): applied to
	// every namespace once per poll period in seconds (Quay: a day), by
	// one replica whose hold lapses after the timeout in seconds (Quay: an
	// hour), reading namespaces a page at a time (Quay: 50).
	DefaultNamespaceAutoPrunePolicy              map[string]any `yaml:"DEFAULT_NAMESPACE_AUTOPRUNE_POLICY"`
	AutoPruningDefaultPolicyPollPeriod           int            `yaml:"AUTO_PRUNING_DEFAULT_POLICY_POLL_PERIOD"`
	AutopruneDefaultPolicyTimeout                int            `yaml:"AUTOPRUNE_DEFAULT_POLICY_TIMEOUT"`
	AutoPruningDefaultPolicyFetchNamespacesLimit int            `yaml:"AUTO_PRUNING_DEFAULT_POLICY_FETCH_NAMESPACES_LIMIT"`
	// Abandoned upload sessions (Quay's blobuploadcleanupworker): the age
	// in minutes after which one is removed (Quay: 2 days), seconds
	// between passes (Quay: 1 hour), and whether partial uploads are also
	// swept from storage (Quay: true).
	BlobUploadDeletionThreshold int  `yaml:"BLOBUPLOAD_DELETION_DATE_THRESHOLD"`
	BlobUploadCleanupFrequency  int  `yaml:"BLOBUPLOAD_CLEANUP_FREQUENCY"`
	CleanBlobUploadFolder       bool `yaml:"CLEAN_BLOB_UPLOAD_FOLDER"`

	// Repositories and tags.
	CreatePrivateRepoOnPush  bool     `yaml:"CREATE_PRIVATE_REPO_ON_PUSH"`
	CreateNamespaceOnPush    bool     `yaml:"CREATE_NAMESPACE_ON_PUSH"`
	PublicNamespaces         []string `yaml:"PUBLIC_NAMESPACES"`
	DefaultTagExpirationRaw  string   `yaml:"DEFAULT_TAG_EXPIRATION"`
	TagExpirationOptions     []string `yaml:"TAG_EXPIRATION_OPTIONS"`
	PushTempTagExpirationSec int      `yaml:"PUSH_TEMP_TAG_EXPIRATION_SEC"`

	// Redis.
	BuildlogsRedis  RedisConfig `yaml:"BUILDLOGS_REDIS"`
	UserEventsRedis RedisConfig `yaml:"USER_EVENTS_REDIS"`

	// Health.
	DiskspaceHealthThreshold        float64       `yaml:"DISKSPACE_HEALTH_THRESHOLD"`
	DiskspaceHealthWarningThreshold float64       `yaml:"DISKSPACE_HEALTH_WARNING_THRESHOLD"`
	HealthChecker                   HealthChecker `yaml:"HEALTH_CHECKER"`

	// Instance service key (signs /v2/auth tokens), both in minutes.
	InstanceServiceKeyExpiration int `yaml:"INSTANCE_SERVICE_KEY_EXPIRATION"`
	InstanceServiceKeyRefresh    int `yaml:"INSTANCE_SERVICE_KEY_REFRESH"`

	// Misc.
	Testing   bool   `yaml:"TESTING"`
	LogsModel string `yaml:"LOGS_MODEL"`

	// quayctl-only keys (Quay ignores unknown keys, so these are safe to keep
	// in a config shared with Quay).
	MaxManifestBytes int64 `yaml:"QUAYCTL_MAX_MANIFEST_BYTES"`
	// SparseManifests lets an image manifest reference layers the registry
	// does not hold (the OCI conformance suite's sparse data needs it).
	SparseManifests           bool     `yaml:"QUAYCTL_SPARSE_MANIFESTS"`
	UploadedBlobExpirationSec int      `yaml:"QUAYCTL_UPLOADED_BLOB_EXPIRATION_SEC"`
	IgnoredKeys               []string `yaml:"QUAYCTL_IGNORED_KEYS"`

	source   Source
	set      map[string]bool
	badType  map[string]bool // keys dropped for a type error; not judged again
	env      func(string) string
	warnings []Problem
}

// StorageLocation is one entry of DISTRIBUTED_STORAGE_CONFIG. In YAML it is
// Quay's two-element list: [DriverName, {param: value, ...}].
type StorageLocation struct {
	Driver string
	Params map[string]any
}

// Param returns a string parameter, or "" when it is missing or not a string.
func (l StorageLocation) Param(name string) string {
	s, _ := l.Params[name].(string)
	return s
}

// UnmarshalYAML reads Quay's [DriverName, {params}] form.
func (l *StorageLocation) UnmarshalYAML(n *yaml.Node) error {
	v, err := nodeValue(n)
	if err != nil {
		return err
	}
	name, params, msg := pairFromRaw(v, "driver")
	if msg != "" {
		return fmt.Errorf("storage location: %s", msg)
	}
	*l = StorageLocation{Driver: name, Params: params}
	return nil
}

// MarshalYAML writes Quay's [DriverName, {params}] form.
func (l StorageLocation) MarshalYAML() (any, error) {
	return []any{l.Driver, nonNilMap(l.Params)}, nil
}

// HealthChecker is HEALTH_CHECKER: [CheckerName, {params}].
type HealthChecker struct {
	Name   string
	Params map[string]any
}

// UnmarshalYAML reads Quay's [CheckerName, {params}] form.
func (h *HealthChecker) UnmarshalYAML(n *yaml.Node) error {
	v, err := nodeValue(n)
	if err != nil {
		return err
	}
	name, params, msg := pairFromRaw(v, "checker")
	if msg != "" {
		return fmt.Errorf("health checker: %s", msg)
	}
	*h = HealthChecker{Name: name, Params: params}
	return nil
}

// MarshalYAML writes Quay's [CheckerName, {params}] form.
func (h HealthChecker) MarshalYAML() (any, error) {
	return []any{h.Name, nonNilMap(h.Params)}, nil
}

// defaultInstanceSkips are the services Quay's checkers leave out of
// /health/instance unless instance_skips says otherwise.
var defaultInstanceSkips = []string{"redis", "storage"}

// healthServices are the service names Quay's health checks report.
var healthServices = []string{"registry_gunicorn", "web_gunicorn", "service_key", "disk_space", "database", "redis", "storage", "auth"}

// InstanceSkips are the services /health/instance neither runs nor lists:
// the checker's instance_skips parameter, or redis and storage by default.
// An invalid parameter (reported by Validate) also gives the default.
func (h HealthChecker) InstanceSkips() []string {
	raw, ok := h.Params["instance_skips"]
	if !ok {
		return slices.Clone(defaultInstanceSkips)
	}
	skips, ok := stringList(raw)
	if !ok {
		return slices.Clone(defaultInstanceSkips)
	}
	return skips
}

// stringList converts a raw YAML list of strings.
func stringList(v any) ([]string, bool) {
	switch x := v.(type) {
	case []string:
		return slices.Clone(x), true
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil, false
			}
			out = append(out, s)
		}
		return out, true
	}
	return nil, false
}

// RedisConfig is BUILDLOGS_REDIS / USER_EVENTS_REDIS. Other keys Quay passes
// to redis-py are accepted and ignored.
type RedisConfig struct {
	Host     string `yaml:"host"`
	Port     int    `yaml:"port,omitempty"`
	Password string `yaml:"password,omitempty"`
	SSL      bool   `yaml:"ssl,omitempty"`
}

// Addr is host:port, with Redis's default port when none is set.
func (r RedisConfig) Addr() string {
	port := r.Port
	if port == 0 {
		port = 6379
	}
	return fmt.Sprintf("%s:%d", r.Host, port)
}

// Source reports where the configuration came from.
func (c *Config) Source() Source { return c.source }

// Warnings are the non-fatal problems Load found (ignored keys and the like).
func (c *Config) Warnings() []Problem { return slices.Clone(c.warnings) }

// IsSet reports whether key was given in the file or QUAY_OVERRIDE_CONFIG
// (for the embedded default: whether the default sets it), as opposed to
// falling back to Quay's default.
func (c *Config) IsSet(key string) bool { return c.set[key] }

func (c *Config) getenv(name string) string {
	if c.env == nil {
		return ""
	}
	return c.env(name)
}

// splitPreference reads QUAY_DISTRIBUTED_STORAGE_PREFERENCE. Quay splits
// it on whitespace; commas are accepted too ("us,eu"), which Quay would
// take as one unknown location name.
func splitPreference(v string) []string {
	return strings.FieldsFunc(v, func(r rune) bool { return r == ',' || unicode.IsSpace(r) })
}

// StoragePreference is the order in which locations are read; the first one
// receives uploads. The environment variable QUAY_DISTRIBUTED_STORAGE_PREFERENCE
// (space-separated) wins over the key, as in Quay; with neither set, every
// configured location is used, sorted by name.
func (c *Config) StoragePreference() []string {
	if env := splitPreference(c.getenv(EnvStoragePreference)); len(env) > 0 {
		return env
	}
	if len(c.DistributedStoragePreference) > 0 {
		return slices.Clone(c.DistributedStoragePreference)
	}
	return slices.Sorted(maps.Keys(c.DistributedStorageConfig))
}

// ProxyStorage reports whether blob downloads are proxied through the
// registry instead of redirecting clients to the storage backend.
func (c *Config) ProxyStorage() bool {
	if !c.IsSet("FEATURE_PROXY_STORAGE") && c.FeatureStorageProxy != nil {
		return *c.FeatureStorageProxy
	}
	return c.FeatureProxyStorage
}

// DefaultTagExpiration is the time machine window given to new namespaces.
func (c *Config) DefaultTagExpiration() (time.Duration, error) {
	d, err := ParseDuration(c.DefaultTagExpirationRaw)
	if err != nil {
		return 0, fmt.Errorf("DEFAULT_TAG_EXPIRATION: %w", err)
	}
	return d, nil
}

// durationOr is n units, or def when the key is unset or not positive (Quay
// falls back to its default the same way).
func durationOr(n int, unit, def time.Duration) time.Duration {
	if n <= 0 {
		return def
	}
	return time.Duration(n) * unit
}

// GCFrequency is the time between garbage collection passes
// (GARBAGE_COLLECTION_FREQUENCY, 30 s when unset).
func (c *Config) GCFrequency() time.Duration {
	return durationOr(c.GarbageCollectionFrequency, time.Second, 30*time.Second)
}

// BlobUploadDeletionAge is how old an unfinished upload session must be
// before it is removed (BLOBUPLOAD_DELETION_DATE_THRESHOLD minutes, two
// days when unset).
func (c *Config) BlobUploadDeletionAge() time.Duration {
	return durationOr(c.BlobUploadDeletionThreshold, time.Minute, 48*time.Hour)
}

// BlobUploadCleanupInterval is the time between upload cleanup passes
// (BLOBUPLOAD_CLEANUP_FREQUENCY seconds, one hour when unset).
func (c *Config) BlobUploadCleanupInterval() time.Duration {
	return durationOr(c.BlobUploadCleanupFrequency, time.Second, time.Hour)
}

// CleansUploadFolder reports whether the upload cleanup also sweeps
// partial uploads from storage (CLEAN_BLOB_UPLOAD_FOLDER, true when unset).
func (c *Config) CleansUploadFolder() bool {
	return !c.IsSet("CLEAN_BLOB_UPLOAD_FOLDER") || c.CleanBlobUploadFolder
}

// RepoMirrorIntervalDuration is the time between mirror worker passes
// (REPO_MIRROR_INTERVAL, 30 s when unset).
func (c *Config) RepoMirrorIntervalDuration() time.Duration {
	return durationOr(c.RepoMirrorInterval, time.Second, 30*time.Second)
}

// AutoPrunePollPeriod is the time between auto-prune worker passes
// (AUTO_PRUNING_POLL_PERIOD, 30 s when unset).
func (c *Config) AutoPrunePollPeriod() time.Duration {
	return durationOr(c.AutoPruningPollPeriod, time.Second, 30*time.Second)
}

// AutoPruneMinInterval is how long a namespace rests between auto-prune
// runs (AUTOPRUNE_TASK_RUN_MINIMUM_INTERVAL_MINUTES, 60 minutes when unset).
func (c *Config) AutoPruneMinInterval() time.Duration {
	return durationOr(c.AutopruneTaskRunMinimumIntervalMinutes, time.Minute, time.Hour)
}

// AutoPruneRegistryPeriod is how often the registry-wide policy runs
// (AUTO_PRUNING_DEFAULT_POLICY_POLL_PERIOD, a day when unset).
func (c *Config) AutoPruneRegistryPeriod() time.Duration {
	return durationOr(c.AutoPruningDefaultPolicyPollPeriod, time.Second, 24*time.Hour)
}

// AutoPruneRegistryTimeout is how long one replica holds the registry-wide
// pass (AUTOPRUNE_DEFAULT_POLICY_TIMEOUT, an hour when unset).
func (c *Config) AutoPruneRegistryTimeout() time.Duration {
	return durationOr(c.AutopruneDefaultPolicyTimeout, time.Second, time.Hour)
}

// ExternalURL is the scheme and host clients use to reach the registry.
func (c *Config) ExternalURL() string {
	scheme := c.PreferredURLScheme
	if scheme == "" {
		scheme = "http"
	}
	return scheme + "://" + c.ServerHostname
}

// PushTempTagExpiration is how long a manifest pushed without a tag is kept.
func (c *Config) PushTempTagExpiration() time.Duration {
	return time.Duration(c.PushTempTagExpirationSec) * time.Second
}

// UploadedBlobExpiration is how long a blob uploaded but not yet referenced
// by a manifest is protected from garbage collection.
func (c *Config) UploadedBlobExpiration() time.Duration {
	return time.Duration(c.UploadedBlobExpirationSec) * time.Second
}

// ServiceKeyExpiration is the lifetime of the instance service key.
func (c *Config) ServiceKeyExpiration() time.Duration {
	return time.Duration(c.InstanceServiceKeyExpiration) * time.Minute
}

// ServiceKeyRefresh is how often the instance service key is extended.
func (c *Config) ServiceKeyRefresh() time.Duration {
	return time.Duration(c.InstanceServiceKeyRefresh) * time.Minute
}

// IsSuperUser reports whether username is listed in SUPER_USERS.
func (c *Config) IsSuperUser(username string) bool {
	return slices.Contains(c.SuperUsers, username)
}

func nonNilMap(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}
