package server

import (
	"path/filepath"

	"github.com/quayctl/quayctl/registry/config"
	"github.com/quayctl/quayctl/registry/notify"
)

// FromConfig maps Quay's config.yaml onto the server's settings.
func FromConfig(c *config.Config) Settings {
	s := Settings{
		DBURI:                   dbURI(c),
		Locations:               map[string]Location{},
		Preference:              c.StoragePreference(),
		ServerHostname:          c.ServerHostname,
		SuperUsers:              c.SuperUsers,
		AnonymousAccess:         c.FeatureAnonymousAccess,
		SuperusersFullAccess:    c.FeatureSuperusersFullAccess,
		CreatePrivateRepoOnPush: c.CreatePrivateRepoOnPush,
		UserInitialize:          c.FeatureUserInitialize,
		AuthType:                c.AuthenticationType,
		Mailing:                 c.FeatureMailing,
		MaxManifestBytes:        c.MaxManifestBytes,
		UploadedBlobTTL:         c.UploadedBlobExpiration(),
		TempTagTTL:              c.PushTempTagExpiration(),
		SparseIndex:             c.FeatureSparseIndex,
		SparseManifests:         c.SparseManifests,
		DiskThreshold:           c.DiskspaceHealthThreshold,
		DiskWarningThreshold:    c.DiskspaceHealthWarningThreshold,
		InstanceSkips:           c.HealthChecker.InstanceSkips(),
		ServiceKeyExpiration:    c.ServiceKeyExpiration(),
		ServiceKeyRefresh:       c.ServiceKeyRefresh(),
		ProxyStorage:            c.ProxyStorage(),
		DatabaseSecretKey:       c.DatabaseSecretKey,
		GarbageCollection:       c.FeatureGarbageCollection,
		GCFrequency:             c.GCFrequency(),
		RepoMirror:              c.FeatureRepoMirror,
		RepoMirrorInterval:      c.RepoMirrorIntervalDuration(),
		RepoMirrorRollback:      c.RepoMirrorRollback,
		QuotaManagement:         c.FeatureQuotaManagement,
		EditQuota:               c.FeatureEditQuota,
		VerifyQuota:             c.FeatureVerifyQuota,
		DefaultRejectQuotaBytes: c.DefaultSystemRejectQuotaBytes,
		QuotaTotalDelay:         c.QuotaTotalDelay(),
		// Quay's notificationworker always runs; nothing to switch it off.
		Notifications:            true,
		PreferredURLScheme:       c.PreferredURLScheme,
		StorageReplication:       c.FeatureStorageReplication,
		DefaultLocations:         c.DistributedStorageDefaultLocations,
		AutoPrune:                c.FeatureAutoPrune,
		AutoPrunePollPeriod:      c.AutoPrunePollPeriod(),
		AutoPruneBatchSize:       c.AutoPruningBatchSize,
		AutoPruneMinInterval:     c.AutoPruneMinInterval(),
		AutoPruneRegistryPolicy:  c.DefaultNamespaceAutoPrunePolicy,
		AutoPruneRegistryPeriod:  c.AutoPruneRegistryPeriod(),
		AutoPruneRegistryTimeout: c.AutoPruneRegistryTimeout(),
		AutoPruneNamespacePage:   c.AutoPruningDefaultPolicyFetchNamespacesLimit,
		UploadCleanup:            true,
		UploadCleanupInterval:    c.BlobUploadCleanupInterval(),
		UploadCleanupAge:         c.BlobUploadDeletionAge(),
		CleanUploadFolder:        c.CleansUploadFolder(),
	}
	if d, err := c.DefaultTagExpiration(); err == nil {
		s.DefaultTagExpiration = &d
	}
	for name, loc := range c.DistributedStorageConfig {
		s.Locations[name] = Location{Driver: loc.Driver, Params: loc.Params}
		if p := loc.Param("storage_path"); p != "" && loc.Driver == "LocalStorage" {
			s.DiskPaths = append(s.DiskPaths, filepath.Clean(p))
		}
	}
	// E-mail notifications: MAIL_* only when FEATURE_MAILING and
	// MAIL_SERVER are set; credentials only with MAIL_USE_AUTH.
	if c.MailEnabled() {
		s.Mail = &notify.Mail{Server: c.MailServer, Port: c.MailPort, UseTLS: c.MailUseTLS, Sender: c.MailDefaultSender}
		if c.MailUseAuth {
			s.Mail.Username, s.Mail.Password = c.MailUsername, c.MailPassword
		}
	}
	s.WebhookHostnameBlacklist = c.WebhookBlacklist()
	if c.IsSet("BUILDLOGS_REDIS") && c.BuildlogsRedis.Host != "" {
		port := c.BuildlogsRedis.Port
		if port == 0 {
			port = 6379
		}
		s.Redis = &Redis{Host: c.BuildlogsRedis.Host, Port: port, Password: c.BuildlogsRedis.Password}
	}
	return s
}

// dbURI applies DB_CONNECTION_ARGS (sslmode, client certificates,
// connect_timeout) to a PostgreSQL DB_URI, as Quay passes them to its driver.
func dbURI(c *config.Config) string {
	if db, err := c.Database(); err == nil && db.Driver == "postgres" {
		return db.DSN
	}
	return c.DBURI
}
