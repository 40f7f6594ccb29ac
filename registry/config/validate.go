package config

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// quayUsernameRE is Quay's rule for user, organization and robot-short names.
var quayUsernameRE = regexp.MustCompile(`^([a-z0-9]+(?:[._-][a-z0-9]+)*)$`)

// authTypes are Quay's AUTHENTICATION_TYPE values; quayctl implements Database.
var authTypes = []string{"Database", "LDAP", "JWT", "Keystone", "OIDC", "AppToken"}

// logsModels are Quay's LOGS_MODEL values; quayctl implements database.
var logsModels = []string{"database", "transition_reads_both_writes_es", "elasticsearch", "splunk"}

// healthCheckers are Quay's HEALTH_CHECKER names. quayctl runs the local
// checks for both; the RDS variant only adds an AWS status lookup.
var healthCheckers = []string{"LocalHealthCheck", "RDSAwareHealthCheck"}

// Validate checks the meaning of the values (Load has already checked keys
// and types) and returns every problem found, in a stable order.
func (c *Config) Validate() []Problem {
	var ps problems
	c.validateHost(&ps)
	c.validateDatabase(&ps)
	c.validateAuth(&ps)
	c.validateStorage(&ps)
	c.validateTags(&ps)
	c.validateMisc(&ps)
	c.validateQuota(&ps) // quota.go
	c.validateMail(&ps)  // mail.go
	c.validateNotYet(&ps)
	// A key with the wrong type was already reported; its zero value would
	// only add a second, misleading problem.
	return slices.DeleteFunc(ps, func(p Problem) bool { return c.badType[p.Key] })
}

// fromFile is false for the embedded default and for a Config built in code,
// which are exempt from the rules about what a deployment's file must set.
func (c *Config) fromFile() bool { return c.source.Path != "" }

func (c *Config) validateHost(ps *problems) {
	if c.ServerHostname == "" {
		ps.errorf("SERVER_HOSTNAME", "set it to the host[:port] clients use, such as quay.example.com", "is required")
	} else if msg := checkHostPort(c.ServerHostname); msg != "" {
		ps.errorf("SERVER_HOSTNAME", "write it like quay.example.com or quay.example.com:8443", "%q %s", c.ServerHostname, msg)
	}
	switch c.PreferredURLScheme {
	case "http", "https":
	default:
		ps.errorf("PREFERRED_URL_SCHEME", "use http or https", "%q is not a URL scheme Quay accepts", c.PreferredURLScheme)
	}
	if c.ExternalTLSTermination && c.PreferredURLScheme == "http" {
		ps.warnf("PREFERRED_URL_SCHEME", "set PREFERRED_URL_SCHEME: https", "is http although EXTERNAL_TLS_TERMINATION is true, so clients are sent http URLs")
	}
}

// checkHostPort explains why s is not a valid host[:port], or returns "".
func checkHostPort(s string) string {
	if strings.Contains(s, "://") {
		return "must not include a scheme (set PREFERRED_URL_SCHEME instead)"
	}
	if strings.ContainsAny(s, "/?#@ ") {
		return "must be a bare host[:port], without path, user or spaces"
	}
	host, port := s, ""
	switch {
	case strings.HasPrefix(s, "["):
		if h, p, err := net.SplitHostPort(s); err == nil {
			host, port = h, p
		} else if strings.HasSuffix(s, "]") {
			host = s[1 : len(s)-1]
		} else {
			return "is not a valid host[:port]"
		}
		if net.ParseIP(host) == nil {
			return "has brackets around something that is not an IPv6 address"
		}
	case strings.Count(s, ":") > 1:
		return "looks like an IPv6 address; put it in brackets, as in [2001:db8::1]:8443"
	case strings.Contains(s, ":"):
		host, port, _ = strings.Cut(s, ":")
	}
	if strings.Contains(s, ":") && !strings.HasSuffix(s, "]") {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return "has an invalid port (use 1–65535)"
		}
	}
	if net.ParseIP(host) != nil {
		return ""
	}
	if !validDNSName(host) {
		return "is not a valid host name"
	}
	return ""
}

func validDNSName(h string) bool {
	h = strings.TrimSuffix(h, ".")
	if h == "" || len(h) > 253 {
		return false
	}
	for label := range strings.SplitSeq(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_'
			if !ok {
				return false
			}
		}
	}
	return true
}

func (c *Config) validateDatabase(ps *problems) {
	var bad *dbURIError
	if c.DBURI == "" {
		ps.errorf("DB_URI", "set it to postgresql://user:password@host:5432/quay or sqlite:////path/to/quay.db", "is required")
	} else if _, err := ParseDBURI(c.DBURI); errors.As(err, &bad) {
		ps.errorf("DB_URI", bad.fix, "%s", bad.msg)
	}
	if c.fromFile() && c.DatabaseSecretKey == "" {
		ps.errorf("DATABASE_SECRET_KEY", "set it to a long random string (uuidgen makes one); use the same value as the Quay that shares this database",
			"is required: robot tokens and mirror credentials in the database are encrypted with it")
	}
	if c.fromFile() && c.SecretKey == "" {
		ps.warnf("SECRET_KEY", "set it to a long random string and keep it stable",
			"is not set, so a random one is used per start and per replica (Quay does the same): encrypted CLI passwords stop working after a restart")
	}
}

func (c *Config) validateAuth(ps *problems) {
	switch {
	case c.AuthenticationType == "Database":
	case slices.Contains(authTypes, c.AuthenticationType):
		ps.errorf("AUTHENTICATION_TYPE", "use Database", "%q is not supported yet by quayctl serve", c.AuthenticationType)
	default:
		fix := "use Database"
		if s := closestFold(c.AuthenticationType, authTypes); s != "" {
			fix = "did you mean " + s + "? (quayctl serve supports Database)"
		}
		ps.errorf("AUTHENTICATION_TYPE", fix, "%q is not a Quay authentication type (%s)", c.AuthenticationType, strings.Join(authTypes, ", "))
	}
	for _, u := range c.SuperUsers {
		if !validUsername(u) {
			ps.errorf("SUPER_USERS", "use 2–255 characters: lowercase letters and digits, with single . _ or - between them", "%q is not a valid Quay username", u)
		}
	}
}

func validUsername(u string) bool {
	return len(u) >= 2 && len(u) <= 255 && quayUsernameRE.MatchString(u)
}

func (c *Config) validateStorage(ps *problems) {
	const key = "DISTRIBUTED_STORAGE_CONFIG"
	if len(c.DistributedStorageConfig) == 0 {
		ps.errorf(key, "add one, such as default: [LocalStorage, {storage_path: /datastorage/registry}]", "must configure at least one storage location")
		return
	}
	names := sortedKeys(c.DistributedStorageConfig)
	hasLocal := false
	for _, name := range names {
		loc := c.DistributedStorageConfig[name]
		if _, known := storageDriverParams[loc.Driver]; !known {
			fix := "use one of: " + strings.Join(StorageDrivers(), ", ")
			if s := closestFold(loc.Driver, StorageDrivers()); s != "" {
				fix = "did you mean " + s + "?"
			}
			ps.errorf(key, fix, "location %q: unknown storage driver %q (Quay would silently store nothing)", name, loc.Driver)
			continue
		}
		hasLocal = hasLocal || loc.Driver == "LocalStorage"
		if missing := missingStorageParams(loc.Driver, loc.Params); len(missing) > 0 {
			fix := "add " + strings.Join(missing, ", ") + " to its parameters"
			if loc.Driver == "LocalStorage" {
				fix = "add storage_path: /datastorage/registry to its parameters"
			}
			ps.errorf(key, fix, "location %q: %s needs %s", name, loc.Driver, strings.Join(missing, ", "))
		}
		if !StorageDriverSupported(loc.Driver) {
			ps.errorf(key, "use "+strings.Join(SupportedStorageDrivers, " or ")+" for now",
				"location %q: %s is not supported yet by quayctl serve", name, loc.Driver)
		}
	}

	prefKey, pref := "DISTRIBUTED_STORAGE_PREFERENCE", c.DistributedStoragePreference
	if env := splitPreference(c.getenv(EnvStoragePreference)); len(env) > 0 {
		prefKey, pref = EnvStoragePreference, env
	}
	c.checkLocationList(ps, prefKey, pref, names)
	c.checkLocationList(ps, "DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS", c.DistributedStorageDefaultLocations, names)
	if len(pref) == 0 && c.fromFile() && !c.FeatureStorageReplication {
		ps.warnf("DISTRIBUTED_STORAGE_PREFERENCE", "list the locations in the order to use them",
			"is not set (Quay requires it); quayctl serve uses every location: %s", strings.Join(names, ", "))
	}
	if c.FeatureStorageReplication {
		if len(pref) == 0 {
			ps.errorf("FEATURE_STORAGE_REPLICATION", "list the storage locations in DISTRIBUTED_STORAGE_PREFERENCE",
				"needs DISTRIBUTED_STORAGE_PREFERENCE, which is empty (Quay refuses to start too)")
		}
		if len(names) < 2 {
			ps.errorf("FEATURE_STORAGE_REPLICATION", "add the other regions to DISTRIBUTED_STORAGE_CONFIG, or turn replication off",
				"needs at least two storage locations; DISTRIBUTED_STORAGE_CONFIG has %d", len(names))
		}
		if len(c.DistributedStorageDefaultLocations) == 0 {
			ps.warnf("DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS", "list the locations every blob must reach, such as ["+strings.Join(names, ", ")+"]",
				"is empty while FEATURE_STORAGE_REPLICATION is on: nothing is replicated")
		}
		if hasLocal {
			ps.warnf("FEATURE_STORAGE_REPLICATION", "use object storage in every location, or turn replication off",
				"a location uses LocalStorage: Quay's replication worker will not run (quayctl serve replicates anyway)")
		}
	}
}

func (c *Config) checkLocationList(ps *problems, key string, list, names []string) {
	seen := map[string]bool{}
	for _, loc := range list {
		if !slices.Contains(names, loc) {
			ps.errorf(key, "use one of: "+strings.Join(names, ", "), "%q is not a location in DISTRIBUTED_STORAGE_CONFIG", loc)
		} else if seen[loc] {
			ps.warnf(key, "list it once", "lists %q twice", loc)
		}
		seen[loc] = true
	}
}

func (c *Config) validateTags(ps *problems) {
	const fix = "use a whole number followed by w, d, h, m or s, such as 2w"
	var options []string
	for _, o := range c.TagExpirationOptions {
		if _, err := ParseDuration(o); err != nil {
			ps.errorf("TAG_EXPIRATION_OPTIONS", fix, "%v", err)
			continue
		}
		options = append(options, o)
	}
	if _, err := ParseDuration(c.DefaultTagExpirationRaw); err != nil {
		ps.errorf("DEFAULT_TAG_EXPIRATION", fix, "%v", err)
	} else if len(options) > 0 && !slices.Contains(options, c.DefaultTagExpirationRaw) {
		ps.errorf("DEFAULT_TAG_EXPIRATION", fmt.Sprintf("add %s to TAG_EXPIRATION_OPTIONS, or choose one of them", c.DefaultTagExpirationRaw),
			"%q is not one of TAG_EXPIRATION_OPTIONS (%s)", c.DefaultTagExpirationRaw, strings.Join(options, ", "))
	}
	if c.PushTempTagExpirationSec < 0 {
		ps.errorf("PUSH_TEMP_TAG_EXPIRATION_SEC", "use 0 or more seconds", "must not be negative")
	}
	for _, ns := range c.PublicNamespaces {
		if !validUsername(ns) {
			ps.warnf("PUBLIC_NAMESPACES", "check the spelling", "%q is not a valid Quay namespace name, so it can never match", ns)
		}
	}
}

func (c *Config) validateMisc(ps *problems) {
	switch {
	case c.LogsModel == "database":
	case slices.Contains(logsModels, c.LogsModel):
		ps.errorf("LOGS_MODEL", "use database", "%q is not supported yet by quayctl serve", c.LogsModel)
	default:
		ps.errorf("LOGS_MODEL", "use database", "%q is not a Quay logs model (%s)", c.LogsModel, strings.Join(logsModels, ", "))
	}
	if !slices.Contains(healthCheckers, c.HealthChecker.Name) {
		fix := "use LocalHealthCheck"
		if s := closestFold(c.HealthChecker.Name, healthCheckers); s != "" {
			fix = "did you mean " + s + "?"
		}
		ps.errorf("HEALTH_CHECKER", fix, "%q is not a Quay health checker (%s)", c.HealthChecker.Name, strings.Join(healthCheckers, ", "))
	}
	if raw, ok := c.HealthChecker.Params["instance_skips"]; ok {
		if skips, ok := stringList(raw); !ok {
			ps.errorf("HEALTH_CHECKER", "write a list of service names, such as [redis, storage]", "instance_skips: expected a list of strings, got %s", describe(raw, true))
		} else {
			for _, s := range skips {
				if !slices.Contains(healthServices, s) {
					ps.warnf("HEALTH_CHECKER", "use some of: "+strings.Join(healthServices, ", "), "instance_skips: %q is not a health service, so it skips nothing", s)
				}
			}
		}
	}
	for _, t := range []struct {
		key string
		v   float64
	}{
		{"DISKSPACE_HEALTH_THRESHOLD", c.DiskspaceHealthThreshold},
		{"DISKSPACE_HEALTH_WARNING_THRESHOLD", c.DiskspaceHealthWarningThreshold},
	} {
		if t.v < 0 || t.v > 1 {
			ps.errorf(t.key, "use a fraction of free space between 0 and 1, such as 0.1", "%v is not between 0 and 1", t.v)
		}
	}
	if c.InstanceServiceKeyExpiration <= 0 {
		ps.errorf("INSTANCE_SERVICE_KEY_EXPIRATION", "use a number of minutes, such as 120", "must be more than 0 minutes")
	} else if c.InstanceServiceKeyRefresh <= 0 || c.InstanceServiceKeyRefresh >= c.InstanceServiceKeyExpiration {
		ps.errorf("INSTANCE_SERVICE_KEY_REFRESH", "use fewer minutes than INSTANCE_SERVICE_KEY_EXPIRATION, such as half of it minus a margin (Quay: 55 of 120)",
			"is %d minutes, which must be more than 0 and less than INSTANCE_SERVICE_KEY_EXPIRATION (%d)", c.InstanceServiceKeyRefresh, c.InstanceServiceKeyExpiration)
	}
	if c.MaxManifestBytes <= 0 {
		ps.errorf("QUAYCTL_MAX_MANIFEST_BYTES", fmt.Sprintf("use a size in bytes, such as %d (4 MiB)", DefaultMaxManifestBytes), "must be more than 0")
	}
	if c.UploadedBlobExpirationSec <= 0 {
		ps.errorf("QUAYCTL_UPLOADED_BLOB_EXPIRATION_SEC", "use a number of seconds, such as 3600", "must be more than 0")
	}
	if c.fromFile() && !c.SetupComplete {
		ps.warnf("SETUP_COMPLETE", "set SETUP_COMPLETE: true", "is not true; Quay refuses to start without it (quayctl serve starts anyway)")
	}
	if c.fromFile() && c.Testing {
		ps.warnf("TESTING", "set TESTING: false", "is true (Quay's default when unset), which puts Quay in test mode")
	}
}

// notYetImplemented are keys quayctl serve reads but does not act on yet:
// turning them on must not pass silently. Each names the missing piece.
var notYetImplemented = []struct {
	key  string
	on   func(*Config) bool
	what string
}{
	{"FEATURE_REQUIRE_ENCRYPTED_BASIC_AUTH", func(c *Config) bool { return c.FeatureRequireEncryptedBasicAuth }, "encrypted CLI passwords are not implemented; plain passwords are still accepted"},
	{"CREATE_NAMESPACE_ON_PUSH", func(c *Config) bool { return c.CreateNamespaceOnPush }, "pushes do not create organisations yet"},
	{"PUBLIC_NAMESPACES", func(c *Config) bool { return len(c.PublicNamespaces) > 0 }, "public namespaces are not listed specially yet"},
}

func (c *Config) validateNotYet(ps *problems) {
	for _, n := range notYetImplemented {
		if c.IsSet(n.key) && n.on(c) {
			ps.warnf(n.key, "expect Quay's behaviour only from a later quayctl release", "is accepted but not acted on by quayctl serve: %s", n.what)
		}
	}
}
