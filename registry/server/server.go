// Package server wires the registry together: store, storage, auth, the
// OCI handlers, Quay's API and health endpoints, behind one middleware chain
// (request id, recovery, access log, metrics).
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/quayctl/quayctl/registry/api"
	"github.com/quayctl/quayctl/registry/auth"
	"github.com/quayctl/quayctl/registry/autoprune"
	"github.com/quayctl/quayctl/registry/encfield"
	"github.com/quayctl/quayctl/registry/health"
	"github.com/quayctl/quayctl/registry/notify"
	"github.com/quayctl/quayctl/registry/storage"
	"github.com/quayctl/quayctl/registry/storage/drivers"
	"github.com/quayctl/quayctl/registry/store"
	v2 "github.com/quayctl/quayctl/registry/v2"
)

// Location is one DISTRIBUTED_STORAGE_CONFIG entry.
type Location struct {
	Driver string
	Params map[string]any
}

// Redis is a BUILDLOGS_REDIS connection (used only by the health check).
type Redis struct {
	Host     string
	Port     int
	Password string
}

// Settings is everything the server takes from Quay's config.yaml.
type Settings struct {
	DBURI                   string
	Locations               map[string]Location
	Preference              []string // first entry receives pushes
	ServerHostname          string
	SuperUsers              []string
	AnonymousAccess         bool
	SuperusersFullAccess    bool
	CreatePrivateRepoOnPush bool
	UserInitialize          bool
	AuthType                string
	Mailing                 bool
	MaxManifestBytes        int64
	UploadedBlobTTL         time.Duration
	TempTagTTL              time.Duration
	SparseIndex             bool
	SparseManifests         bool
	DiskThreshold           float64 // DISKSPACE_HEALTH_THRESHOLD
	DiskWarningThreshold    float64 // DISKSPACE_HEALTH_WARNING_THRESHOLD
	Redis                   *Redis  // nil: no Redis configured
	InstanceSkips           []string
	DiskPaths               []string // filesystems the disk checks measure
	ServiceKeyExpiration    time.Duration
	ServiceKeyRefresh       time.Duration
	// ProxyStorage (FEATURE_PROXY_STORAGE) streams blobs through the registry
	// instead of redirecting clients to signed object-storage URLs.
	ProxyStorage bool
	// DatabaseSecretKey (DATABASE_SECRET_KEY) encrypts robot tokens and
	// app-specific tokens as Quay does. Empty: see SecretKey.
	DatabaseSecretKey string
	// GarbageCollection (FEATURE_GARBAGE_COLLECTION) runs the GC worker
	// every GCFrequency (GARBAGE_COLLECTION_FREQUENCY).
	GarbageCollection bool
	GCFrequency       time.Duration
	// DefaultTagExpiration (DEFAULT_TAG_EXPIRATION) is the time machine
	// window of new namespaces; nil keeps two weeks.
	DefaultTagExpiration *time.Duration
	// RepoMirror (FEATURE_REPO_MIRROR) serves the mirror API and runs the
	// mirror worker every RepoMirrorInterval (REPO_MIRROR_INTERVAL);
	// RepoMirrorRollback is REPO_MIRROR_ROLLBACK.
	RepoMirror         bool
	RepoMirrorInterval time.Duration
	RepoMirrorRollback bool
	// UploadCleanup runs the upload cleanup worker (Quay's
	// blobuploadcleanupworker, always on in Quay) every
	// UploadCleanupInterval (BLOBUPLOAD_CLEANUP_FREQUENCY), removing upload
	// sessions older than UploadCleanupAge
	// (BLOBUPLOAD_DELETION_DATE_THRESHOLD); CleanUploadFolder
	// (CLEAN_BLOB_UPLOAD_FOLDER) also sweeps the drivers' own leftovers.
	UploadCleanup         bool
	UploadCleanupInterval time.Duration
	UploadCleanupAge      time.Duration
	CleanUploadFolder     bool
	// AutoPrune (FEATURE_AUTO_PRUNE) serves the auto-prune policy API and
	// runs the worker every AutoPrunePollPeriod (AUTO_PRUNING_POLL_PERIOD),
	// taking at most AutoPruneBatchSize namespaces (AUTO_PRUNING_BATCH_SIZE)
	// each due once per AutoPruneMinInterval
	// (AUTOPRUNE_TASK_RUN_MINIMUM_INTERVAL_MINUTES); zero: Quay's defaults.
	AutoPrune            bool
	AutoPrunePollPeriod  time.Duration
	AutoPruneBatchSize   int
	AutoPruneMinInterval time.Duration
	// AutoPruneRegistryPolicy is DEFAULT_NAMESPACE_AUTOPRUNE_POLICY, run
	// over every namespace once per AutoPruneRegistryPeriod
	// (AUTO_PRUNING_DEFAULT_POLICY_POLL_PERIOD) by one replica, whose hold
	// lapses after AutoPruneRegistryTimeout (AUTOPRUNE_DEFAULT_POLICY_TIMEOUT),
	// AutoPruneNamespacePage namespaces at a time
	// (AUTO_PRUNING_DEFAULT_POLICY_FETCH_NAMESPACES_LIMIT); empty: none.
	AutoPruneRegistryPolicy  map[string]any
	AutoPruneRegistryPeriod  time.Duration
	AutoPruneRegistryTimeout time.Duration
	AutoPruneNamespacePage   int
	// QuotaManagement (FEATURE_QUOTA_MANAGEMENT) keeps namespace and
	// repository sizes, serves the quota API (EditQuota: FEATURE_EDIT_QUOTA)
	// and checks pushes (VerifyQuota: FEATURE_VERIFY_QUOTA) against limits
	// or DefaultRejectQuotaBytes (DEFAULT_SYSTEM_REJECT_QUOTA_BYTES); the
	// backfill worker starts after QuotaTotalDelay (QUOTA_TOTAL_DELAY_SECONDS).
	// See quotaworker.go.
	QuotaManagement         bool
	EditQuota               bool
	VerifyQuota             bool
	DefaultRejectQuotaBytes int64
	QuotaTotalDelay         time.Duration
	// StorageReplication (FEATURE_STORAGE_REPLICATION) copies every blob to
	// each DefaultLocations entry (DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS);
	// the worker polls every ReplicationInterval (10 s when 0) and retries
	// a failed copy after ReplicationBackoff, doubling (10 s when 0).
	StorageReplication  bool
	DefaultLocations    []string
	ReplicationInterval time.Duration
	ReplicationBackoff  time.Duration
	// Notifications runs the notification worker (Quay's
	// notificationworker, always on in Quay: FromConfig sets it).
	// PreferredURLScheme (PREFERRED_URL_SCHEME) builds the homepage links
	// of payloads; WebhookHostnameBlacklist (WEBHOOK_HOSTNAME_BLACKLIST)
	// adds to the refused webhook hosts (localhost and 127.0.0.1 always are);
	// Mail is the SMTP server of e-mail notifications, used with Mailing;
	// NotificationRetryAfter and NotificationPoll: zero takes Quay's 30s
	// and 10s.
	Notifications            bool
	PreferredURLScheme       string
	WebhookHostnameBlacklist []string
	Mail                     *notify.Mail
	NotificationRetryAfter   time.Duration
	NotificationPoll         time.Duration
}

// Server is a running registry's state.
type Server struct {
	Store    store.Store
	Auth     *auth.Authenticator
	Storage  map[string]storage.Driver
	Health   *health.Checker
	handler  http.Handler
	log      *slog.Logger
	audit    *auditQueue
	wg       sync.WaitGroup
	cancel   context.CancelFunc
	selfURL  string
	settings Settings
	// registryPolicy is the parsed AutoPruneRegistryPolicy (nil: none).
	registryPolicy *autoprune.Policy
	encKey         []byte   // DATABASE_SECRET_KEY derived (mirror credentials)
	only           []string // Options.OnlyWorkers
	// Notifier receives repository events (push, mirror sync, quota);
	// producers get it through their options.
	Notifier   notify.Emitter
	dispatcher *notify.Dispatcher // the real Notifier, and the notification worker
}

// Options are process-level choices, not config keys.
type Options struct {
	Logger     *slog.Logger
	Registerer prometheus.Registerer // nil: a private registry
	// OnlyWorkers (serve --only-workers) limits the background workers
	// to these names (Quay's worker names, e.g. "repomirror", "gcworker");
	// empty runs every worker whose feature is on.
	OnlyWorkers []string
}

// New opens the database (applying migrations), the storage locations
// (probing the preferred one), the signing key, and builds the handler.
// A registry that cannot honour its config refuses to start.
func New(ctx context.Context, s Settings, opts Options) (*Server, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(WithRequestID(slog.NewTextHandler(os.Stderr, nil)))
	}
	if err := checkReplication(s); err != nil {
		return nil, err
	}
	var registryPolicy *autoprune.Policy
	if len(s.AutoPruneRegistryPolicy) > 0 { // unset (or {}): none
		p, err := autoprune.FromConfig(s.AutoPruneRegistryPolicy)
		if err != nil {
			return nil, fmt.Errorf("DEFAULT_NAMESPACE_AUTOPRUNE_POLICY: %w; give a mapping such as {method: number_of_tags, value: 10} or {method: creation_date, value: 30d}, or remove the key", err)
		}
		registryPolicy = p
	}
	if len(s.Preference) == 0 {
		return nil, errors.New("DISTRIBUTED_STORAGE_PREFERENCE is empty: name the storage location that receives pushes")
	}
	st, err := store.Open(ctx, s.DBURI)
	if err != nil {
		return nil, err
	}
	st.SetLogger(log)
	srv := &Server{Store: st, log: log, Storage: map[string]storage.Driver{}, settings: s, Notifier: notify.Nop{}, only: opts.OnlyWorkers,
		registryPolicy: registryPolicy}
	ok := false
	defer func() {
		if !ok {
			_ = st.Close()
		}
	}()
	if err := st.Migrate(ctx); err != nil {
		return nil, fmt.Errorf("applying database migrations: %w", err)
	}
	for name, loc := range s.Locations {
		d, err := drivers.New(ctx, loc.Driver, loc.Params)
		if err != nil {
			return nil, fmt.Errorf("DISTRIBUTED_STORAGE_CONFIG.%s: %w", name, err)
		}
		srv.Storage[name] = d
	}
	preferred, found := srv.Storage[s.Preference[0]]
	if !found {
		return nil, fmt.Errorf("DISTRIBUTED_STORAGE_PREFERENCE names %q, which is not in DISTRIBUTED_STORAGE_CONFIG", s.Preference[0])
	}
	srv.wireGC(st)
	srv.wireQuota(st)
	srv.dispatcher = srv.newDispatcher(st)
	srv.Notifier = srv.dispatcher
	srv.Store = srv.placementStore(st)
	if res := storage.Probe(ctx, preferred); !res.OK {
		return nil, fmt.Errorf("storage location %q (%s) failed its start-up probe: %w — check that the storage path or bucket exists and is writable", s.Preference[0], preferred.Name(), res.Err)
	}
	reg := opts.Registerer
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	secret, err := SecretKey(s)
	if err != nil {
		return nil, err
	}
	if secret == "" {
		// Only a PostgreSQL database without DATABASE_SECRET_KEY gets here
		// (config validation refuses that for config files): robot tokens
		// stored now will not be readable after a restart.
		log.Warn("DATABASE_SECRET_KEY is not set: using a random key for this process only; robot tokens created now stop working at restart — set DATABASE_SECRET_KEY")
		if secret, err = randomSecret(); err != nil {
			return nil, err
		}
	}
	encKey, err := encfield.DeriveKey(secret)
	if err != nil {
		return nil, fmt.Errorf("DATABASE_SECRET_KEY: %w", err)
	}
	srv.encKey = encKey
	srv.Auth = auth.New(st, auth.Options{
		EncryptionKey:  encKey,
		ServerHostname: s.ServerHostname, SuperUsers: s.SuperUsers, AnonymousAccess: s.AnonymousAccess,
		SuperusersFullAccess:    s.SuperusersFullAccess,
		CreatePrivateRepoOnPush: s.CreatePrivateRepoOnPush, Logger: log,
		KeyExpiration: s.ServiceKeyExpiration, KeyRefresh: s.ServiceKeyRefresh,
	})
	if err := srv.Auth.LoadSuperusers(ctx); err != nil {
		return nil, fmt.Errorf("loading superusers: %w", err)
	}
	if err := srv.Auth.EnsureKey(ctx); err != nil {
		return nil, fmt.Errorf("registering the instance service key: %w", err)
	}
	srv.audit = newAuditQueue(st, log, 4096)
	v2h := v2.New(srv.Store, preferred, access{srv.Auth}, srv.audit, v2.Options{
		Location: s.Preference[0], MaxManifestBytes: s.MaxManifestBytes, UploadedBlobTTL: s.UploadedBlobTTL,
		TempTagTTL: s.TempTagTTL, PublicOnPush: !s.CreatePrivateRepoOnPush, SparseIndex: s.SparseIndex,
		SparseManifests: s.SparseManifests, SuperusersFullAccess: s.SuperusersFullAccess, Logger: log,
		ProxyStorage: s.ProxyStorage, Locations: srv.Storage, Preference: s.Preference,
		Notifier: srv.Notifier, Quota: v2.QuotaOptions{Enabled: s.QuotaManagement, Verify: s.VerifyQuota},
	})
	apih := api.New(st, users{srv.Auth, st}, api.Options{UserInitialize: s.UserInitialize, AuthType: s.AuthType, Mailing: s.Mailing, Logger: log,
		Access: apiAccess{srv.Auth}, IsSuperuser: srv.Auth.IsSuperuser, RepoMirror: s.RepoMirror, EncryptionKey: encKey,
		Notifications: srv.dispatcher,
		AutoPrune:     s.AutoPrune, Quota: api.QuotaOptions{Enabled: s.QuotaManagement, Edit: s.EditQuota, DefaultRejectBytes: s.DefaultRejectQuotaBytes}})
	srv.Health = srv.healthChecks()
	mux := http.NewServeMux()
	mux.Handle("/v2/auth", srv.Auth.TokenHandler())
	mux.Handle("/v2/", v2h)
	mux.Handle("/v2", v2h)
	mux.Handle("/api/v1/", apih)
	mux.Handle("/health", srv.Health.Handler())
	mux.Handle("/health/", srv.Health.Handler())
	mux.Handle("/status", srv.Health.Handler())
	mux.HandleFunc("/_internal_ping", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("true")) })
	mux.HandleFunc("/v1/_internal_ping", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("true")) })
	mux.Handle("/metrics", promhttp.HandlerFor(reg.(prometheus.Gatherer), promhttp.HandlerOpts{}))
	srv.handler = instrument(mux, log, newMetrics(reg))
	ok = true
	return srv, nil
}

// Handler is the root HTTP handler.
func (s *Server) Handler() http.Handler { return s.handler }

// SetSelfURL tells the health check where this process listens, so
// registry_gunicorn/web_gunicorn ping the real listener as Quay does.
func (s *Server) SetSelfURL(u string) { s.selfURL = u }

// Start runs the background loops (key refresh, audit writer).
func (s *Server) Start(ctx context.Context) {
	ctx, s.cancel = context.WithCancel(ctx)
	s.wg.Add(3)
	go func() {
		defer s.wg.Done()
		// Superusers made on another replica become visible here too.
		t := time.NewTicker(30 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := s.Auth.LoadSuperusers(ctx); err != nil && ctx.Err() == nil {
					s.log.Warn("cannot reload superusers", "error", err)
				}
			}
		}
	}()
	go func() {
		defer s.wg.Done()
		if err := s.Auth.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			s.log.Error("service key refresh stopped", "error", err)
		}
	}()
	go func() {
		defer s.wg.Done()
		s.audit.run(ctx)
	}()
	s.startGC(ctx)
	s.startMirror(ctx)
	s.startNotifications(ctx)
	s.startAutoPrune(ctx)
	s.startUploadCleanup(ctx)
	s.startQuota(ctx)
	s.startReplication(ctx)
}

// runs reports whether the named background worker may run in this
// process (its feature flag is checked by the caller).
func (s *Server) runs(worker string) bool {
	return len(s.only) == 0 || slices.Contains(s.only, worker)
}

// Close stops background work, flushes the audit queue and closes the store.
func (s *Server) Close() error {
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
	return s.Store.Close()
}

// users adapts auth to the API's account needs.
type users struct {
	a  *auth.Authenticator
	st store.Store
}

func (u users) HashPassword(pw string) (string, error) { return auth.HashPassword(pw) }
func (u users) ValidateUsername(name string) error     { return auth.ValidateUsername(name) }
func (u users) ValidatePassword(name, pw string) error { return auth.ValidatePassword(name, pw) }
func (u users) CreateAccessToken(ctx context.Context, usr *store.User) (string, error) {
	return u.a.CreateOAuthToken(ctx, usr, "automation", auth.AllScopes, auth.InitializeTokenLifetime)
}

func (u users) MakeSuperuser(username string) { u.a.AddSuperuser(username) }
