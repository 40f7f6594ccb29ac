package configcheck

// The rules that judge a file as Red Hat Quay reads it rather than as
// quayctl serve does. registry/config validates for the server; this adapts
// its problems and adds what only Quay needs (Redis, TLS files,
// authentication backends, feature prerequisites).

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/quayctl/quayctl/registry/config"
)

// Field groups, in the order config validate shows them.
const (
	groupDatabase = "database"
	groupStorage  = "storage"
	groupRedis    = "redis"
	groupHost     = "host settings"
	groupTLS      = "TLS"
	groupAuth     = "auth"
	groupFeatures = "features"
	groupOther    = "other"
)

var groupOrder = []string{groupDatabase, groupStorage, groupRedis, groupHost, groupTLS, groupAuth, groupFeatures, groupOther}

// fieldGroup maps a config key to its field group, as Quay's config-tool
// (config-tool/pkg/lib/fieldgroups) groups them.
func fieldGroup(key string) string {
	switch key {
	case "DB_URI", "DB_CONNECTION_ARGS", "DB_CONNECTION_POOLING", "DATABASE_SECRET_KEY", "DB_READ_REPLICAS", "ALLOW_PULLS_WITHOUT_STRICT_LOGGING":
		return groupDatabase
	case "BUILDLOGS_REDIS", "USER_EVENTS_REDIS", "PULL_METRICS_REDIS", "DATA_MODEL_CACHE_CONFIG":
		return groupRedis
	case "SERVER_HOSTNAME", "PREFERRED_URL_SCHEME":
		return groupHost
	case "EXTERNAL_TLS_TERMINATION", "ssl.cert", "ssl.key", "SSL_CIPHERS", "SSL_PROTOCOLS":
		return groupTLS
	case "AUTHENTICATION_TYPE", "SUPER_USERS", "SECRET_KEY", "FEATURE_SUPERUSERS_FULL_ACCESS", "FEATURE_REQUIRE_ENCRYPTED_BASIC_AUTH",
		"FEATURE_USER_INITIALIZE", "FEATURE_ANONYMOUS_ACCESS", "FEATURE_APP_SPECIFIC_TOKENS", "FEATURE_GITHUB_LOGIN", "FEATURE_GOOGLE_LOGIN",
		"FEATURE_TEAM_SYNCING", "FEATURE_USER_CREATION", "FEATURE_INVITE_ONLY_USER_CREATION":
		return groupAuth
	case "FEATURE_STORAGE_REPLICATION", "FEATURE_PROXY_STORAGE", "FEATURE_STORAGE_PROXY", config.EnvStoragePreference:
		return groupStorage
	}
	switch {
	case strings.HasPrefix(key, "DISTRIBUTED_STORAGE_"), strings.HasPrefix(key, "USERFILES_"), strings.HasPrefix(key, "LOG_ARCHIVE_"),
		strings.HasPrefix(key, "ACTION_LOG_ARCHIVE_"):
		return groupStorage
	case strings.HasPrefix(key, "LDAP_"), strings.HasPrefix(key, "JWT_"), strings.HasPrefix(key, "KEYSTONE_"),
		strings.HasSuffix(key, "_LOGIN_CONFIG"):
		return groupAuth
	case strings.HasPrefix(key, "FEATURE_"):
		return groupFeatures
	}
	return groupOther
}

// groupProblems sorts problems by field group (errors before warnings
// within a group), keeping each group's order otherwise.
func groupProblems(ps []config.Problem) []GroupedProblem {
	out := make([]GroupedProblem, 0, len(ps))
	for _, p := range ps {
		out = append(out, GroupedProblem{Group: fieldGroup(p.Key), Problem: p})
	}
	sort.SliceStable(out, func(i, j int) bool {
		gi, gj := slices.Index(groupOrder, out[i].Group), slices.Index(groupOrder, out[j].Group)
		if gi != gj {
			return gi < gj
		}
		return out[i].Severity < out[j].Severity
	})
	return out
}

// FileProbe reports whether a file next to config.yaml exists; known is
// false when it cannot be told (the check is then skipped).
type FileProbe func(name string) (exists, known bool)

// LocalFiles probes a local directory (a config bundle on disk).
func LocalFiles(dir string) FileProbe {
	return func(name string) (bool, bool) {
		_, err := os.Stat(filepath.Join(dir, name))
		if err == nil {
			return true, true
		}
		return false, errors.Is(err, fs.ErrNotExist)
	}
}

// serveOnly reports problems about what quayctl serve lacks, which say
// nothing about a Quay deployment.
func serveOnly(p config.Problem) bool {
	m := p.Message
	return m == "ignored by quayctl serve" ||
		strings.Contains(m, "not supported yet by quayctl serve") ||
		strings.Contains(m, "is not supported by quayctl serve") ||
		strings.Contains(m, "not acted on by quayctl serve")
}

// quayProblems adapts quayctl serve's problems to Quay and adds Quay's own
// rules. raw is the parsed file (nil when it is not YAML).
func quayProblems(raw map[string]any, ps []config.Problem, files FileProbe) []config.Problem {
	var out []config.Problem
	for _, p := range ps {
		if serveOnly(p) {
			continue
		}
		p.Fix = strings.TrimSuffix(p.Fix, " (quayctl serve supports Database)")
		if strings.HasPrefix(p.Message, "not a Quay configuration key") {
			// Quay ignores unknown keys: a typo is silent there, not fatal.
			p.Severity = config.SeverityWarning
			p.Message += " (Quay ignores it)"
		}
		out = append(out, p)
	}
	if raw == nil {
		return out
	}
	r := quayRules{raw: raw}
	r.redis()
	r.tls(files)
	r.auth()
	r.features()
	r.logsModel()
	return append(out, r.ps...)
}

type quayRules struct {
	raw map[string]any
	ps  []config.Problem
}

func (r *quayRules) errorf(key, fix, format string, args ...any) {
	r.ps = append(r.ps, config.Problem{Key: key, Message: fmt.Sprintf(format, args...), Fix: fix, Severity: config.SeverityError})
}

func (r *quayRules) warnf(key, fix, format string, args ...any) {
	r.ps = append(r.ps, config.Problem{Key: key, Message: fmt.Sprintf(format, args...), Fix: fix, Severity: config.SeverityWarning})
}

func (r *quayRules) str(key string) string {
	s, _ := r.raw[key].(string)
	return strings.TrimSpace(s)
}

func (r *quayRules) on(key string) bool {
	b, _ := r.raw[key].(bool)
	return b
}

// set reports whether key holds something other than null or "".
func (r *quayRules) set(key string) bool {
	v, ok := r.raw[key]
	if !ok || v == nil {
		return false
	}
	if s, isStr := v.(string); isStr {
		return strings.TrimSpace(s) != ""
	}
	return true
}

func mapOf(v any) (map[string]any, bool) {
	m, ok := v.(map[string]any)
	return m, ok
}

// redis: Quay requires both Redis configurations (build logs and user
// events, which also hold the GC and auto-prune locks).
func (r *quayRules) redis() {
	for _, key := range []string{"BUILDLOGS_REDIS", "USER_EVENTS_REDIS"} {
		v, ok := r.raw[key]
		if !ok || v == nil {
			r.errorf(key, "add "+key+": {host: REDIS_HOST, port: 6379} (and password if Redis has one)", "is required by Quay")
			continue
		}
		m, ok := mapOf(v)
		if !ok {
			continue // the type problem is reported already
		}
		if h, _ := m["host"].(string); strings.TrimSpace(h) == "" {
			r.errorf(key, "set host to the Redis server's name or address", "has no host")
		}
		if p, ok := m["port"]; ok && p != nil {
			n, isInt := p.(int)
			if !isInt || n < 1 || n > 65535 {
				r.errorf(key, "use a port number between 1 and 65535 (Redis listens on 6379)", "port is not a valid port number")
			}
		}
	}
}

// tls: Quay serves HTTPS itself exactly when ssl.key exists next to
// config.yaml; PREFERRED_URL_SCHEME says which URLs it hands out.
func (r *quayRules) tls(files FileProbe) {
	if files == nil {
		return
	}
	scheme := r.str("PREFERRED_URL_SCHEME")
	external := r.on("EXTERNAL_TLS_TERMINATION")
	cert, certKnown := files("ssl.cert")
	key, keyKnown := files("ssl.key")
	if !certKnown || !keyKnown {
		return
	}
	switch {
	case scheme == "https" && !external && (!cert || !key):
		missing := []string{}
		if !cert {
			missing = append(missing, "ssl.cert")
		}
		if !key {
			missing = append(missing, "ssl.key")
		}
		r.errorf("ssl.cert", "put the certificate and its key in /conf/stack as ssl.cert and ssl.key, or set EXTERNAL_TLS_TERMINATION: true when a load balancer or route terminates TLS",
			"PREFERRED_URL_SCHEME is https and TLS is not terminated elsewhere, but %s %s missing next to config.yaml", strings.Join(missing, " and "), plural(len(missing), "is", "are"))
	case cert != key:
		r.errorf("ssl.key", "provide both ssl.cert and ssl.key, or neither", "only one of ssl.cert and ssl.key is present")
	case key && scheme == "http":
		r.warnf("PREFERRED_URL_SCHEME", "set PREFERRED_URL_SCHEME: https", "is http but Quay serves HTTPS (ssl.key is present), so it hands out http URLs")
	case key && external:
		r.warnf("EXTERNAL_TLS_TERMINATION", "remove ssl.cert and ssl.key, or set EXTERNAL_TLS_TERMINATION: false", "is true, yet ssl.key is present, so Quay also terminates TLS itself")
	}
}

// auth: the keys each AUTHENTICATION_TYPE needs (config-tool's LDAP, JWT,
// Keystone, OIDC and AppToken field groups).
func (r *quayRules) auth() {
	need := func(typ string, keys ...string) {
		var missing []string
		for _, k := range keys {
			if !r.set(k) {
				missing = append(missing, k)
			}
		}
		if len(missing) > 0 {
			r.errorf(missing[0], "set "+strings.Join(missing, ", "), "is required with AUTHENTICATION_TYPE %s", typ)
		}
	}
	switch typ := r.str("AUTHENTICATION_TYPE"); typ {
	case "LDAP":
		need(typ, "LDAP_URI", "LDAP_BASE_DN", "LDAP_ADMIN_DN", "LDAP_ADMIN_PASSWD")
		if u := r.str("LDAP_URI"); u != "" && !strings.HasPrefix(u, "ldap://") && !strings.HasPrefix(u, "ldaps://") {
			r.errorf("LDAP_URI", "write it as ldap://host:389 or ldaps://host:636", "is not an ldap:// or ldaps:// URI")
		}
		if !r.set("LDAP_USER_RDN") {
			r.warnf("LDAP_USER_RDN", "set it to the RDNs under LDAP_BASE_DN where users live, such as [ou=users]", "is not set, so users are searched from LDAP_BASE_DN down")
		}
	case "JWT":
		need(typ, "JWT_VERIFY_ENDPOINT", "JWT_AUTH_ISSUER")
	case "Keystone":
		need(typ, "KEYSTONE_AUTH_URL", "KEYSTONE_ADMIN_USERNAME", "KEYSTONE_ADMIN_PASSWORD", "KEYSTONE_ADMIN_TENANT")
	case "OIDC":
		if len(r.loginConfigs(false)) == 0 {
			r.errorf("AUTHENTICATION_TYPE", "add a PROVIDER_LOGIN_CONFIG with CLIENT_ID, CLIENT_SECRET and OIDC_SERVER", "is OIDC but no *_LOGIN_CONFIG names an OIDC provider")
		}
	case "AppToken":
		if !r.on("FEATURE_APP_SPECIFIC_TOKENS") {
			r.errorf("FEATURE_APP_SPECIFIC_TOKENS", "set FEATURE_APP_SPECIFIC_TOKENS: true", "must be true with AUTHENTICATION_TYPE AppToken")
		}
	}
	for _, key := range r.loginConfigs(true) {
		m, _ := mapOf(r.raw[key])
		for _, k := range []string{"CLIENT_ID", "CLIENT_SECRET"} {
			if s, _ := m[k].(string); strings.TrimSpace(s) == "" {
				r.errorf(key, "set "+k+" from the provider's application registration", "has no %s", k)
			}
		}
		if !slices.Contains([]string{"GITHUB_LOGIN_CONFIG", "GOOGLE_LOGIN_CONFIG"}, key) {
			if s, _ := m["OIDC_SERVER"].(string); !strings.HasPrefix(s, "https://") && !strings.HasPrefix(s, "http://") {
				r.errorf(key, "set OIDC_SERVER to the provider's issuer URL, ending in /", "has no OIDC_SERVER URL")
			}
		}
	}
}

// loginConfigs lists the *_LOGIN_CONFIG keys that are maps (all, or only
// the OIDC ones: not GitHub or Google).
func (r *quayRules) loginConfigs(all bool) []string {
	var out []string
	for k, v := range r.raw {
		if !strings.HasSuffix(k, "_LOGIN_CONFIG") || k != strings.ToUpper(k) {
			continue
		}
		if _, ok := mapOf(v); !ok {
			continue
		}
		if !all && (k == "GITHUB_LOGIN_CONFIG" || k == "GOOGLE_LOGIN_CONFIG") {
			continue
		}
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// features: switched-on features whose prerequisites are missing.
func (r *quayRules) features() {
	prereq := []struct {
		feature string
		needs   []string
		fix     string
	}{
		{"FEATURE_MAILING", []string{"MAIL_SERVER"}, "set MAIL_SERVER (and MAIL_PORT, MAIL_USE_TLS, MAIL_USERNAME, MAIL_PASSWORD, MAIL_DEFAULT_SENDER), or FEATURE_MAILING: false"},
		{"FEATURE_SECURITY_SCANNER", []string{"SECURITY_SCANNER_V4_ENDPOINT"}, "set SECURITY_SCANNER_V4_ENDPOINT to Clair's URL, such as http://clairv4:8080"},
		{"FEATURE_GITHUB_LOGIN", []string{"GITHUB_LOGIN_CONFIG"}, "add GITHUB_LOGIN_CONFIG with CLIENT_ID and CLIENT_SECRET"},
		{"FEATURE_GOOGLE_LOGIN", []string{"GOOGLE_LOGIN_CONFIG"}, "add GOOGLE_LOGIN_CONFIG with CLIENT_ID and CLIENT_SECRET"},
		{"FEATURE_GITHUB_BUILD", []string{"GITHUB_TRIGGER_CONFIG"}, "add GITHUB_TRIGGER_CONFIG with CLIENT_ID and CLIENT_SECRET"},
		{"FEATURE_GITLAB_BUILD", []string{"GITLAB_TRIGGER_CONFIG"}, "add GITLAB_TRIGGER_CONFIG with CLIENT_ID and CLIENT_SECRET"},
		{"FEATURE_BITBUCKET_BUILD", []string{"BITBUCKET_TRIGGER_CONFIG"}, "add BITBUCKET_TRIGGER_CONFIG with CONSUMER_KEY and CONSUMER_SECRET"},
		{"FEATURE_BUILD_SUPPORT", []string{"BUILD_MANAGER"}, "add BUILD_MANAGER with the builders' executors, or FEATURE_BUILD_SUPPORT: false"},
		{"FEATURE_ACTION_LOG_ROTATION", []string{"ACTION_LOG_ARCHIVE_LOCATION", "ACTION_LOG_ARCHIVE_PATH"}, "set ACTION_LOG_ARCHIVE_LOCATION (a storage location) and ACTION_LOG_ARCHIVE_PATH"},
	}
	for _, p := range prereq {
		if !r.on(p.feature) {
			continue
		}
		var missing []string
		for _, k := range p.needs {
			if !r.set(k) {
				missing = append(missing, k)
			}
		}
		if len(missing) > 0 {
			r.errorf(p.feature, p.fix, "is true but %s %s not set", strings.Join(missing, " and "), plural(len(missing), "is", "are"))
		}
	}
	if r.on("FEATURE_SECURITY_SCANNER") && r.set("SECURITY_SCANNER_V4_ENDPOINT") && !r.set("SECURITY_SCANNER_V4_PSK") {
		r.warnf("SECURITY_SCANNER_V4_PSK", "set it to the PSK Clair's config uses (auth.psk.key)", "is not set: Clair must then accept unauthenticated requests")
	}
	if r.on("FEATURE_ACTION_LOG_ROTATION") {
		loc := r.str("ACTION_LOG_ARCHIVE_LOCATION")
		if storage, ok := mapOf(r.raw["DISTRIBUTED_STORAGE_CONFIG"]); ok && loc != "" {
			if _, found := storage[loc]; !found {
				r.errorf("ACTION_LOG_ARCHIVE_LOCATION", "use a location of DISTRIBUTED_STORAGE_CONFIG", "%q is not a storage location", loc)
			}
		}
	}
}

// logsModel: a LOGS_MODEL other than database needs its LOGS_MODEL_CONFIG.
func (r *quayRules) logsModel() {
	model := r.str("LOGS_MODEL")
	need := map[string][]string{
		"elasticsearch":                   {"elasticsearch_config"},
		"transition_reads_both_writes_es": {"elasticsearch_config"},
		"splunk":                          {"splunk_config", "splunk_hec_config"},
	}[model]
	if need == nil {
		return
	}
	cfg, _ := mapOf(r.raw["LOGS_MODEL_CONFIG"])
	for _, k := range need {
		if _, ok := cfg[k]; ok {
			return
		}
	}
	r.errorf("LOGS_MODEL_CONFIG", "add LOGS_MODEL_CONFIG with "+strings.Join(need, " or "), "is required with LOGS_MODEL %s", model)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
