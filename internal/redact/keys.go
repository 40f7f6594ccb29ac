package redact

import (
	"strings"
	"unicode"
)

// quaySecretKeys are the secret-bearing keys of Quay's config.yaml, at any
// depth, normalised by NormalizeKey (reference: quay-facts §3.2, and the
// mask list of Quay's GET /api/v1/superuser/config). Most of them also match
// the generic name patterns; they are listed so that the list documents
// itself and a test checks every one.
var quaySecretKeys = map[string]bool{
	// Top level.
	"SECRET_KEY":                          true,
	"DATABASE_SECRET_KEY":                 true,
	"DB_URI":                              true, // also DB_READ_REPLICAS[].DB_URI
	"MAIL_PASSWORD":                       true,
	"LDAP_ADMIN_PASSWD":                   true,
	"KEYSTONE_ADMIN_PASSWORD":             true,
	"RECAPTCHA_SECRET_KEY":                true,
	"PAGE_TOKEN_KEY":                      true,
	"ENABLE_HEALTH_DEBUG_SECRET":          true,
	"SECURITY_SCANNER_V4_PSK":             true,
	"STRIPE_SECRET_KEY":                   true,
	"SENTRY_DSN":                          true,
	"IP_DATA_API_KEY":                     true,
	"CLOUDWATCH_AWS_ACCESS_KEY":           true,
	"CLOUDWATCH_AWS_SECRET_KEY":           true,
	"ENTITLEMENT_RECONCILIATION_PASSWORD": true,
	// Nested: redis, OAuth/OIDC, build triggers.
	"PASSWORD":        true,
	"CLIENT_SECRET":   true,
	"CONSUMER_KEY":    true,
	"CONSUMER_SECRET": true,
	// Storage parameters.
	"S3_ACCESS_KEY":        true,
	"S3_SECRET_KEY":        true,
	"AWS_SESSION_TOKEN":    true,
	"ACCESS_KEY":           true,
	"STS_USER_ACCESS_KEY":  true,
	"STS_USER_SECRET_KEY":  true,
	"AZURE_ACCOUNT_KEY":    true,
	"SAS_TOKEN":            true,
	"SWIFT_PASSWORD":       true,
	"TEMP_URL_KEY":         true,
	"OS_OPTIONS":           true, // Swift's keystone options carry credentials
	"CLOUDFRONT_KEY_ID":    true, // Quay masks it; kept secret although an id
	"AKAMAI_SHARED_SECRET": true,
	// LOGS_MODEL_CONFIG, OTEL_CONFIG, HEALTH_CHECKER params.
	"AWS_ACCESS_KEY": true,
	"AWS_SECRET_KEY": true,
	"BEARER_TOKEN":   true,
	"HEC_TOKEN":      true,
	"SEARCH_TOKEN":   true,
	"DT_API_TOKEN":   true,
	// BUILD_MANAGER executors and orchestrator.
	"QUAY_PASSWORD":         true,
	"K8S_API_TLS_KEY":       true,
	"SERVICE_ACCOUNT_TOKEN": true,
	"REDIS_PASSWORD":        true,
	// Environment and HTTP headers.
	"QUAY_OVERRIDE_CONFIG": true, // JSON: redacted as a config when it parses
	"CONFIG_APP_PASSWORD":  true,
	"X_REGISTRY_AUTH":      true, // podman/docker API: base64 JSON credentials
	"X_REGISTRY_CONFIG":    true,
	"COOKIE":               true,
	"SET_COOKIE":           true,
	"PROXY_AUTHORIZATION":  true,
	"AUTHORIZATION":        true,
}

// uriKeys hold URIs: only the password (and for a DSN the user, which is the
// project key) is replaced, so host, port and database stay readable.
var uriKeys = map[string]bool{"DB_URI": true, "SENTRY_DSN": true}

// jsonKeys hold a JSON object of config keys (QUAY_OVERRIDE_CONFIG): it is
// redacted key by key instead of whole, so the override stays readable.
var jsonKeys = map[string]bool{"QUAY_OVERRIDE_CONFIG": true}

// notSecretKeys match a generic pattern but hold no secret: public keys by
// design, durations, file locations, names of Kubernetes secrets.
var notSecretKeys = map[string]bool{
	"RECAPTCHA_SITE_KEY":     true, // public by design
	"STRIPE_PUBLISHABLE_KEY": true, // public by design
	"MIXPANEL_KEY":           true, // analytics project id, shipped to browsers
	"CONFIG_BUNDLE_SECRET":   true, // QuayRegistry spec: a secret's name
	"SECRET_NAME":            true,
	"SECRET_REF":             true,
	"TOKEN_TYPE":             true, // "Bearer"
	"TOKEN_ENDPOINT":         true, // OIDC URL
	"TOKEN_URL":              true,
	"PWD":                    true, // the working directory
	"SSH_AUTH_SOCK":          true,
	"SECRET_KEY_SIZE":        true,
}

// notSecretSuffixes mark keys that describe a secret rather than hold it.
var notSecretSuffixes = []string{
	"_EXPIRATION", "_LIFETIME", "_GC", "_TTL", "_TTL_SEC", "_LOCATION",
	"_FILENAME", "_FILE", "_PATH", "_SECRET_NAME", "_SECRET_REF", "_TYPE",
	"_ENDPOINT", "_URL", "_PREFIXES", "_ENABLED", "_LENGTH",
}

// namePatterns are the generic secret-name rules (on the normalised name).
func genericSecretName(n string) bool {
	for _, s := range []string{"PASSWORD", "PASSWD", "PASSPHRASE", "SECRET", "TOKEN", "CREDENTIAL", "ACCESS_KEY", "PRIVATE_KEY", "APIKEY", "API_KEY", "SIGNATURE"} {
		if strings.Contains(n, s) {
			return true
		}
	}
	if strings.HasSuffix(n, "_KEY") || strings.HasSuffix(n, "_PWD") || strings.HasSuffix(n, "PSK") || n == "SIG" {
		return true
	}
	return false
}

// NormalizeKey turns a key as written (db_uri, clientSecret, X-Api-Key,
// spring.datasource.password) into the form the rules match: upper case,
// words joined by underscores.
func NormalizeKey(k string) string {
	rs := []rune(strings.TrimSpace(k))
	out := make([]rune, 0, len(rs)+4)
	sep := func() {
		if len(out) > 0 && out[len(out)-1] != '_' {
			out = append(out, '_')
		}
	}
	for i, r := range rs {
		switch {
		case r == '-' || r == '.' || r == ' ' || r == '_' || r == '/':
			sep()
			continue
		case unicode.IsUpper(r) && i > 0:
			// fooBar → FOO_BAR, HTTPServer → HTTP_SERVER; digits are not
			// boundaries (K8S, V4).
			prev := rs[i-1]
			if unicode.IsLower(prev) || unicode.IsUpper(prev) && i+1 < len(rs) && unicode.IsLower(rs[i+1]) {
				sep()
			}
		}
		out = append(out, unicode.ToUpper(r))
	}
	return strings.Trim(string(out), "_")
}

// keyClass says why a key is secret: "" (not secret), RuleQuayKey or
// RuleKeyName, or the name of a custom rule.
func (r *Redactor) keyClass(key string) string {
	n := NormalizeKey(key)
	if n == "" {
		return ""
	}
	if quaySecretKeys[n] {
		return RuleQuayKey
	}
	for _, c := range r.keyRules {
		if c.re.MatchString(key) || c.re.MatchString(n) {
			return c.name
		}
	}
	if notSecretKeys[n] || strings.HasPrefix(n, "FEATURE_") {
		return ""
	}
	for _, s := range notSecretSuffixes {
		if strings.HasSuffix(n, s) {
			return ""
		}
	}
	if genericSecretName(n) {
		return RuleKeyName
	}
	return ""
}

// IsSecretKey reports whether values under key (a config key at any depth,
// an environment variable, a header or a key=value name) are redacted by
// the default rules.
func IsSecretKey(key string) bool { return Default().keyClass(key) != "" }
