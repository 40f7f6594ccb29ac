// Package redact is quayctl's one redaction function. Everything that shows
// or stores what a deployment holds — config output, logs, environments,
// headers, support bundles, error messages — goes through it.
//
// It knows every secret-bearing key of Quay's config.yaml at any depth
// (DB_URI, SECRET_KEY, nested redis passwords, *_LOGIN_CONFIG.CLIENT_SECRET,
// storage credentials, LOGS_MODEL_CONFIG and BUILD_MANAGER tokens …), the
// generic name patterns (*PASSWORD*, *PASSWD*, *SECRET*, *TOKEN*, *_KEY,
// *ACCESS_KEY*, *CREDENTIAL*, *SIGNATURE* …) and, in free text, passwords in
// URIs, Authorization and Cookie headers, bearer tokens, JWTs, PEM private
// key blocks, AWS access key ids and key=value pairs with a secret name.
//
// A redacted value becomes Marker; structure stays readable
// (postgresql://quay:<redacted>@db:5432/quay). A Summary counts what was
// redacted per rule and never holds a value.
//
// What deliberately survives (each has a test): booleans and empty values
// under secret names (FEATURE_APP_SPECIFIC_TOKENS: true, SECRET_KEY: "");
// names that describe a secret without holding it (KEY_ID, *_EXPIRATION,
// *_FILENAME, *_LOCATION, configBundleSecret, TOKEN_TYPE); a bare `key`
// (DB_CONNECTION_ARGS.ssl.key is a file path); keys that are public by design
// (RECAPTCHA_SITE_KEY, STRIPE_PUBLISHABLE_KEY, MIXPANEL_KEY); certificates
// (BEGIN CERTIFICATE); image references with a port and a digest
// (docker://host:443/ns/repo@sha256:…); the words "bearer token" in prose.
package redact

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strings"
)

// Marker replaces every redacted value.
const Marker = "<redacted>"

// Rule names, as counted in a Summary.
const (
	RuleQuayKey      = "quay-config-key"      // a key from Quay's secret list
	RuleKeyName      = "secret-key-name"      // a key matching a generic name pattern
	RuleURIPassword  = "uri-password"         // scheme://user:PASSWORD@host
	RuleURIToken     = "uri-token"            // scheme://TOKEN@host
	RuleAuthHeader   = "authorization-header" // Authorization: Bearer …
	RuleCookie       = "cookie"               // Cookie: / Set-Cookie:
	RuleBearer       = "bearer-token"         // a bare "Bearer <token>"
	RuleJWT          = "jwt"                  // eyJ….eyJ….sig
	RulePEM          = "pem-private-key"      // -----BEGIN … PRIVATE KEY-----
	RuleAWSKeyID     = "aws-access-key-id"    // AKIA…/ASIA…
	RuleKeyValue     = "key-value"            // name=value, "name": "value" in text
	RuleCLIFlag      = "cli-flag"             // --password VALUE
	customRulePrefix = "rule:"                // rule:<pattern> for WithRules/WithTextRules
)

// Summary counts redactions per rule. It never holds a redacted value.
type Summary map[string]int

// Total is the number of values redacted.
func (s Summary) Total() int {
	n := 0
	for _, c := range s {
		n += c
	}
	return n
}

// Add returns the sum of s and o.
func (s Summary) Add(o Summary) Summary {
	out := Summary{}
	for k, v := range s {
		out[k] += v
	}
	for k, v := range o {
		out[k] += v
	}
	return out
}

// String renders "3 values redacted (quay-config-key: 2, uri-password: 1)".
func (s Summary) String() string {
	n := s.Total()
	if n == 0 {
		return "nothing redacted"
	}
	parts := make([]string, 0, len(s))
	for _, k := range slices.Sorted(maps.Keys(s)) {
		if s[k] > 0 {
			parts = append(parts, fmt.Sprintf("%s: %d", k, s[k]))
		}
	}
	noun := "values"
	if n == 1 {
		noun = "value"
	}
	return fmt.Sprintf("%d %s redacted (%s)", n, noun, strings.Join(parts, ", "))
}

func (s Summary) inc(rule string) { s[rule]++ }

type namedRE struct {
	name string
	re   *regexp.Regexp
}

// Redactor applies the default rules plus any extra ones. The zero value is
// not usable; use New or Default. A Redactor is safe for concurrent use.
type Redactor struct {
	keyRules  []namedRE // extra secret key names
	textRules []namedRE // extra free-text patterns
}

// Option adds rules to a Redactor.
type Option func(*Redactor) error

// WithRules adds secret key-name patterns (Go regular expressions, matched
// case-insensitively against the key as written and against its normalised
// form, such as MY_APP_CREDENTIALS). They apply wherever names do: config
// keys at any depth, environment variables, headers, and key=value pairs in
// free text. They win over the built-in "not a secret" list.
func WithRules(patterns ...string) Option {
	return func(r *Redactor) error {
		for _, p := range patterns {
			re, err := regexp.Compile("(?i)" + p)
			if err != nil {
				return fmt.Errorf("redact: key rule %q: %w", p, err)
			}
			r.keyRules = append(r.keyRules, namedRE{customRulePrefix + p, re})
		}
		return nil
	}
}

// WithTextRules adds free-text patterns (Go regular expressions). A match is
// replaced by Marker; when the pattern has capture groups, only the first
// group is replaced (`sessionid=(\w+)` keeps "sessionid=").
func WithTextRules(patterns ...string) Option {
	return func(r *Redactor) error {
		for _, p := range patterns {
			re, err := regexp.Compile(p)
			if err != nil {
				return fmt.Errorf("redact: text rule %q: %w", p, err)
			}
			r.textRules = append(r.textRules, namedRE{customRulePrefix + p, re})
		}
		return nil
	}
}

// New returns a Redactor with the default rules and opts.
func New(opts ...Option) (*Redactor, error) {
	r := &Redactor{}
	for _, o := range opts {
		if err := o(r); err != nil {
			return nil, err
		}
	}
	return r, nil
}

var defaultRedactor = &Redactor{}

// Default is the Redactor with the built-in rules only.
func Default() *Redactor { return defaultRedactor }

// Config redacts a parsed config.yaml (or any nested map) with the default
// rules. See Redactor.Config.
func Config(m map[string]any) (map[string]any, Summary) { return defaultRedactor.Config(m) }

// String redacts free text with the default rules. See Redactor.String.
func String(s string) (string, Summary) { return defaultRedactor.String(s) }

// Env redacts an environment with the default rules. See Redactor.Env.
func Env(env map[string]string) (map[string]string, Summary) { return defaultRedactor.Env(env) }

// Header redacts HTTP headers with the default rules.
func Header(h http.Header) (http.Header, Summary) { return defaultRedactor.Header(h) }

// Config returns a deep copy of m with every secret value replaced: values
// under secret keys at any depth (a map or list under one has every leaf
// replaced, keeping its shape), and secrets found in any other string (a
// password in an endpoint URL, a PEM key, an AWS key id). DB_URI-like values
// keep their structure: only the password is replaced. Booleans, nulls and
// empty strings are kept, since they reveal nothing and tell whether a
// secret is set. m is not modified.
func (r *Redactor) Config(m map[string]any) (map[string]any, Summary) {
	sum := Summary{}
	if m == nil {
		return nil, sum
	}
	out, _ := r.walk(m, sum).(map[string]any)
	return out, sum
}

func (r *Redactor) walk(v any, sum Summary) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			out[k] = r.member(k, e, sum)
		}
		return out
	case map[any]any:
		out := make(map[any]any, len(t))
		for k, e := range t {
			out[k] = r.member(fmt.Sprint(k), e, sum)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = r.walk(e, sum)
		}
		return out
	case []string:
		out := make([]string, len(t))
		for i, e := range t {
			out[i] = r.text(e, sum)
		}
		return out
	case map[string]string:
		out := make(map[string]string, len(t))
		for k, e := range t {
			out[k] = r.envValue(k, e, sum)
		}
		return out
	case string:
		return r.text(t, sum)
	}
	return v
}

func (r *Redactor) member(key string, v any, sum Summary) any {
	class := r.keyClass(key)
	if class == "" {
		return r.walk(v, sum)
	}
	switch t := v.(type) {
	case nil, bool:
		return v
	case string:
		return r.secretString(key, class, t, sum)
	case map[string]any, map[any]any, []any, []string, map[string]string:
		out, n := wipe(v)
		if n > 0 {
			sum.inc(class)
		}
		return out
	}
	sum.inc(class)
	return Marker
}

// secretString redacts the string value of a secret key.
func (r *Redactor) secretString(key, class, v string, sum Summary) string {
	if v == "" || v == Marker {
		return v
	}
	n := NormalizeKey(key)
	if uriKeys[n] && strings.Contains(v, "://") {
		// Keep the structure: only credentials inside are replaced.
		return r.text(v, sum)
	}
	if jsonKeys[n] {
		var obj map[string]any
		if json.Unmarshal([]byte(v), &obj) == nil && obj != nil {
			red, s := r.Config(obj)
			for k, c := range s {
				sum[k] += c
			}
			var b strings.Builder
			enc := json.NewEncoder(&b)
			enc.SetEscapeHTML(false) // keep <redacted> readable
			if enc.Encode(red) == nil {
				return strings.TrimSuffix(b.String(), "\n")
			}
		}
	}
	sum.inc(class)
	return Marker
}

// wipe replaces every non-empty scalar leaf of v, keeping maps and lists.
func wipe(v any) (any, int) {
	n := 0
	var rec func(any) any
	rec = func(v any) any {
		switch t := v.(type) {
		case map[string]any:
			out := make(map[string]any, len(t))
			for k, e := range t {
				out[k] = rec(e)
			}
			return out
		case map[any]any:
			out := make(map[any]any, len(t))
			for k, e := range t {
				out[k] = rec(e)
			}
			return out
		case []any:
			out := make([]any, len(t))
			for i, e := range t {
				out[i] = rec(e)
			}
			return out
		case []string:
			out := make([]string, len(t))
			for i, e := range t {
				out[i] = rec(e).(string)
			}
			return out
		case map[string]string:
			out := make(map[string]string, len(t))
			for k, e := range t {
				out[k] = rec(e).(string)
			}
			return out
		case nil, bool:
			return v
		case string:
			if t == "" {
				return t
			}
		}
		n++
		return Marker
	}
	return rec(v), n
}

// Env returns a copy of env with secret values replaced: variables with a
// secret name (POSTGRESQL_PASSWORD, AWS_SECRET_ACCESS_KEY …) whole, except
// "true"/"false" and empty values; QUAY_OVERRIDE_CONFIG key by key as a
// config; and secrets inside any other value (a URI with a password).
func (r *Redactor) Env(env map[string]string) (map[string]string, Summary) {
	sum := Summary{}
	if env == nil {
		return nil, sum
	}
	out := make(map[string]string, len(env))
	for k, v := range env {
		out[k] = r.envValue(k, v, sum)
	}
	return out, sum
}

func (r *Redactor) envValue(k, v string, sum Summary) string {
	class := r.keyClass(k)
	if class == "" {
		return r.text(v, sum)
	}
	switch strings.ToLower(v) {
	case "true", "false", "":
		return v
	}
	return r.secretString(k, class, v, sum)
}

// Header returns a copy of h with secret header values replaced:
// Authorization and Proxy-Authorization keep their scheme ("Bearer
// <redacted>"), Cookie, Set-Cookie, X-Registry-Auth and any header with a
// secret name are replaced whole, other values have free-text secrets
// replaced.
func (r *Redactor) Header(h http.Header) (http.Header, Summary) {
	sum := Summary{}
	if h == nil {
		return nil, sum
	}
	out := make(http.Header, len(h))
	for k, vs := range h {
		n := NormalizeKey(k)
		red := make([]string, len(vs))
		for i, v := range vs {
			switch {
			case n == "AUTHORIZATION" || n == "PROXY_AUTHORIZATION":
				red[i] = r.text(k+": "+v, sum)[len(k)+2:]
			default:
				red[i] = r.envValue(k, v, sum)
			}
		}
		out[k] = red
	}
	return out, sum
}

// String redacts free text: each line goes through the same rules as
// Writer, so String(s) equals what Writer writes for s. A PEM private key
// block spanning lines becomes its BEGIN line, Marker and its END line.
func (r *Redactor) String(s string) (string, Summary) {
	sum := Summary{}
	if s == "" {
		return s, sum
	}
	var st lineState
	var b strings.Builder
	b.Grow(len(s))
	for len(s) > 0 {
		line, rest, nl := strings.Cut(s, "\n")
		out, keep := r.line(&st, line, sum)
		if keep {
			b.WriteString(out)
			if nl {
				b.WriteByte('\n')
			}
		}
		s = rest
	}
	if st.inPEM {
		// A block without its END line.
		if st.pemBody {
			sum.inc(RulePEM)
		}
		if b.Len() > 0 && !strings.HasSuffix(b.String(), "\n") {
			b.WriteByte('\n')
		}
		b.WriteString(Marker + "\n")
	}
	return b.String(), sum
}

// text redacts a single value (which may hold several lines).
func (r *Redactor) text(s string, sum Summary) string {
	out, s2 := r.String(s)
	for k, c := range s2 {
		sum[k] += c
	}
	return out
}
