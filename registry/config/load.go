package config

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

const (
	// DefaultStackConfigPath is where Quay's container reads its config, and
	// where quayctl serve looks when no --config is given.
	DefaultStackConfigPath = "/conf/stack/config.yaml"
	// EnvOverrideConfig holds a JSON object merged over the file, as in Quay.
	EnvOverrideConfig = "QUAY_OVERRIDE_CONFIG"
	// EnvStoragePreference overrides DISTRIBUTED_STORAGE_PREFERENCE
	// (space-separated location names), as in Quay.
	EnvStoragePreference = "QUAY_DISTRIBUTED_STORAGE_PREFERENCE"
	// EmbeddedDefault names the built-in configuration in Source strings.
	EmbeddedDefault = "embedded default"
	// DefaultListenAddr is used for SERVER_HOSTNAME when ListenAddr is empty.
	DefaultListenAddr = ":8080"
	// DefaultMaxManifestBytes is QUAYCTL_MAX_MANIFEST_BYTES when unset.
	DefaultMaxManifestBytes = 4 << 20
)

// LoadOptions say where to look for the configuration.
type LoadOptions struct {
	// Path is the --config flag: a config.yaml, or a directory holding one
	// (such as a Quay config bundle). Empty means: StackConfigPath if it
	// exists, else the embedded default.
	Path string
	// DataDir holds the embedded default's SQLite database and blobs.
	DataDir string
	// ListenAddr is the server's listen address; the embedded default derives
	// SERVER_HOSTNAME from it (":8080" → "localhost:8080").
	ListenAddr string
	// Env looks up environment variables; nil means os.Getenv.
	Env func(string) string
	// StackConfigPath replaces DefaultStackConfigPath (for tests).
	StackConfigPath string
}

// Source says where a configuration came from.
type Source struct {
	// Path is the file read; empty for the embedded default.
	Path string
	// Embedded is set when the built-in default was used.
	Embedded bool
	// Override is set when QUAY_OVERRIDE_CONFIG was merged on top.
	Override bool
}

func (s Source) String() string {
	name := s.Path
	if s.Embedded || name == "" {
		name = EmbeddedDefault
	}
	if s.Override {
		name += " + " + EnvOverrideConfig
	}
	return name
}

// Load finds the configuration (opts.Path, then /conf/stack/config.yaml,
// then the embedded default), merges QUAY_OVERRIDE_CONFIG over it, applies
// Quay's defaults and validates it. When any problem is an error, it returns
// a *ValidationError listing every problem; warnings alone are available from
// Config.Warnings.
func Load(opts LoadOptions) (*Config, Source, error) {
	env := opts.Env
	if env == nil {
		env = os.Getenv
	}
	raw, lines, src, ps, err := readSource(opts)
	if err != nil {
		return nil, src, err
	}
	set, overridden := map[string]bool{}, map[string]bool{}
	for k := range raw {
		set[k] = true
	}
	if text := env(EnvOverrideConfig); strings.TrimSpace(text) != "" {
		over, err := parseOverride(text)
		if err != nil {
			ps.errorf(EnvOverrideConfig, "set it to a JSON object such as {\"FEATURE_QUOTA_MANAGEMENT\": true}, or unset it", "%v", err)
		} else {
			src.Override = true
			// Quay replaces whole top-level values; it does not deep-merge.
			for k, v := range over {
				raw[k], set[k], overridden[k] = v, true, true
				delete(lines, k)
			}
		}
	}
	cfg, more := build(raw, lines, set, src, env)
	ps = append(ps, more...)
	ps = append(ps, cfg.Validate()...)
	for i := range ps {
		if overridden[ps[i].Key] {
			// The file is not where to look for this one.
			ps[i].Message += " (set by " + EnvOverrideConfig + ")"
		}
	}
	errs, warns := ps.split()
	if len(errs) > 0 {
		return nil, src, &ValidationError{Source: src, Problems: append(errs, warns...)}
	}
	cfg.warnings = warns
	return cfg, src, nil
}

// readSource returns the raw top-level values of the file or embedded default.
func readSource(opts LoadOptions) (map[string]any, map[string]int, Source, problems, error) {
	path := opts.Path
	if path == "" {
		stack := opts.StackConfigPath
		if stack == "" {
			stack = DefaultStackConfigPath
		}
		if _, err := os.Stat(stack); err == nil {
			path = stack
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, nil, Source{Path: stack}, nil, fmt.Errorf("cannot read %s: %w", stack, err)
		}
	}
	if path == "" {
		raw, err := embeddedDefault(opts.DataDir, opts.ListenAddr)
		return raw, map[string]int{}, Source{Embedded: true}, nil, err
	}
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		path = filepath.Join(path, "config.yaml")
	}
	src := Source{Path: path}
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil, src, nil, fmt.Errorf("config file %s does not exist — check --config, or omit it to use %s or the embedded default: %w", path, DefaultStackConfigPath, err)
		}
		return nil, nil, src, nil, fmt.Errorf("cannot read config file %s: %w", path, err)
	}
	raw, lines, ps, err := parseYAML(data)
	if err != nil {
		return nil, nil, src, nil, fmt.Errorf("config file %s is not valid YAML: %w", path, err)
	}
	return raw, lines, src, ps, nil
}

// embeddedDefault is the configuration used when there is no file: SQLite and
// local storage in one data directory, and a first user created through
// /api/v1/user/initialize.
func embeddedDefault(dataDir, listenAddr string) (map[string]any, error) {
	if dataDir == "" {
		return nil, errors.New("no config file was found and no data directory was given for the embedded default — pass --data-dir, or --config with a Quay config.yaml")
	}
	abs, err := filepath.Abs(dataDir)
	if err != nil {
		return nil, fmt.Errorf("data directory %s: %w", dataDir, err)
	}
	host, err := hostnameFromListen(listenAddr)
	if err != nil {
		return nil, err
	}
	return map[string]any{
		"SERVER_HOSTNAME":      host,
		"PREFERRED_URL_SCHEME": "http",
		// Four slashes: Quay's (SQLAlchemy's) form for an absolute path.
		"DB_URI": "sqlite:///" + filepath.ToSlash(filepath.Join(abs, "quay.db")),
		"DISTRIBUTED_STORAGE_CONFIG": map[string]any{
			"default": []any{"LocalStorage", map[string]any{"storage_path": filepath.Join(abs, "storage")}},
		},
		"DISTRIBUTED_STORAGE_PREFERENCE": []any{"default"},
		"AUTHENTICATION_TYPE":            "Database",
		"FEATURE_USER_INITIALIZE":        true,
		"SETUP_COMPLETE":                 true,
		"TESTING":                        false,
	}, nil
}

// EmbeddedDefaultYAML renders the embedded default for dataDir and listenAddr
// as config.yaml text, a starting point for a real configuration.
func EmbeddedDefaultYAML(dataDir, listenAddr string) ([]byte, error) {
	raw, err := embeddedDefault(dataDir, listenAddr)
	if err != nil {
		return nil, err
	}
	return encodeYAML(raw)
}

// hostnameFromListen turns a listen address into the host[:port] clients
// would use on this machine.
func hostnameFromListen(addr string) (string, error) {
	if addr == "" {
		addr = DefaultListenAddr
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("listen address %q: %w", addr, err)
	}
	switch host {
	case "", "0.0.0.0", "::":
		host = "localhost"
	}
	return net.JoinHostPort(host, port), nil
}

// build classifies and type-checks the raw keys, then decodes the usable ones
// over Quay's defaults.
func build(raw map[string]any, lines map[string]int, set map[string]bool, src Source, env func(string) string) (*Config, problems) {
	var ps problems
	ignored := ignoredKeyList(raw)
	input, bad := map[string]any{}, map[string]bool{}
	for _, key := range orderedKeys(raw, lines) {
		v := raw[key]
		switch classifyKey(key) {
		case keyUsed:
			if m := checkType(v, configFields[key].typ); m != nil {
				ps = append(ps, typeProblem(key, m))
				bad[key] = true
				continue
			}
			input[key] = v
		case keyIgnored:
			if slices.Contains(ignored, key) {
				continue
			}
			if msg, fix, refused := refusedValue(key, v); refused {
				ps.errorf(key, fix, "%s", msg)
				continue
			}
			if on, isBool := v.(bool); isBool && !on && strings.HasPrefix(key, "FEATURE_") {
				// A feature quayctl lacks, switched off: nothing differs.
				continue
			}
			ps.warnf(key, "nothing to do if Quay shares this file; remove it otherwise", "ignored by quayctl serve")
		case keyUnknown, keyUnknownQC:
			if slices.Contains(ignored, key) {
				continue
			}
			ps = append(ps, unknownKeyProblem(key))
		}
	}
	if alias, ok := input["FEATURE_STORAGE_PROXY"]; ok {
		primary, both := input["FEATURE_PROXY_STORAGE"]
		switch {
		case both && alias != nil && primary != nil && alias != primary:
			ps.errorf("FEATURE_STORAGE_PROXY", "delete FEATURE_STORAGE_PROXY and keep FEATURE_PROXY_STORAGE", "contradicts FEATURE_PROXY_STORAGE")
		case both:
			ps.warnf("FEATURE_STORAGE_PROXY", "delete it", "is a misspelling of FEATURE_PROXY_STORAGE, which is also set")
		default:
			ps.warnf("FEATURE_STORAGE_PROXY", "rename it to FEATURE_PROXY_STORAGE", "read as FEATURE_PROXY_STORAGE by quayctl serve, but Quay itself ignores this spelling")
		}
	}
	for key, v := range quayDefaults() {
		// A mistyped key falls back to the default so that values derived
		// from it do not produce follow-on problems.
		if !set[key] || bad[key] {
			input[key] = v
		}
	}
	cfg := &Config{source: src, set: set, badType: bad, env: env}
	if err := decodeInto(cfg, input); err != nil {
		// checkType should have caught this; report it without the value.
		ps.errorf("config", "report this as a quayctl bug", "%v", err)
	}
	if !set["QUAYCTL_UPLOADED_BLOB_EXPIRATION_SEC"] {
		cfg.UploadedBlobExpirationSec = cfg.PushTempTagExpirationSec
	}
	return cfg, ps
}

// quayDefaults are Quay's DefaultConfig values for the keys quayctl uses,
// plus the quayctl-only defaults. Zero values are not listed. Test-only
// defaults of Quay (the DB_URI and storage locations under test/data) are
// deliberately absent: those keys are required instead.
func quayDefaults() map[string]any {
	return map[string]any{
		"PREFERRED_URL_SCHEME":                        "http",
		"DB_CONNECTION_ARGS":                          map[string]any{"threadlocals": true, "autorollback": true},
		"AUTHENTICATION_TYPE":                         "Database",
		"FEATURE_ANONYMOUS_ACCESS":                    true,
		"FEATURE_GARBAGE_COLLECTION":                  true,
		"GARBAGE_COLLECTION_FREQUENCY":                30,
		"REPO_MIRROR_INTERVAL":                        30,
		"AUTO_PRUNING_POLL_PERIOD":                    30,
		"AUTO_PRUNING_BATCH_SIZE":                     10,
		"AUTOPRUNE_TASK_RUN_MINIMUM_INTERVAL_MINUTES": 60,
		"FEATURE_EDIT_QUOTA":                          true,
		"FEATURE_VERIFY_QUOTA":                        true,
		"QUOTA_TOTAL_DELAY_SECONDS":                   1800,
		"FEATURE_MAILING":                             true,
		"MAIL_USE_TLS":                                true,
		"MAIL_PORT":                                   587,
		"CREATE_PRIVATE_REPO_ON_PUSH":                 true,
		"DEFAULT_TAG_EXPIRATION":                      "2w",
		"TAG_EXPIRATION_OPTIONS":                      []any{"0s", "1d", "1w", "2w", "4w"},
		"PUSH_TEMP_TAG_EXPIRATION_SEC":                3600,
		"BUILDLOGS_REDIS":                             map[string]any{"host": "localhost"},
		"USER_EVENTS_REDIS":                           map[string]any{"host": "localhost"},
		"DISKSPACE_HEALTH_THRESHOLD":                  0.01,
		"DISKSPACE_HEALTH_WARNING_THRESHOLD":          0.1,
		"HEALTH_CHECKER":                              []any{"LocalHealthCheck", map[string]any{}},
		"INSTANCE_SERVICE_KEY_EXPIRATION":             120,
		"INSTANCE_SERVICE_KEY_REFRESH":                55,
		"TESTING":                                     true,
		"LOGS_MODEL":                                  "database",
		"QUAYCTL_MAX_MANIFEST_BYTES":                  DefaultMaxManifestBytes,
	}
}

// ignoredKeyList reads QUAYCTL_IGNORED_KEYS early, since it decides how the
// other keys are reported. A malformed value is reported by the type check.
func ignoredKeyList(raw map[string]any) []string {
	list, _ := raw["QUAYCTL_IGNORED_KEYS"].([]any)
	var out []string
	for _, e := range list {
		if s, ok := e.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// orderedKeys lists keys in file order, then keys without a line (from
// QUAY_OVERRIDE_CONFIG or the embedded default) by name.
func orderedKeys(raw map[string]any, lines map[string]int) []string {
	keys := sortedKeys(raw)
	slices.SortStableFunc(keys, func(a, b string) int {
		la, lb := lines[a], lines[b]
		switch {
		case la == 0 && lb == 0:
			return 0
		case la == 0:
			return 1
		case lb == 0:
			return -1
		}
		return la - lb
	})
	return keys
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// refusedValue rejects Quay keys quayctl ignores when ignoring them would
// silently change behaviour the operator relies on.
func refusedValue(key string, v any) (msg, fix string, refused bool) {
	switch key {
	case "REGISTRY_STATE":
		if s, _ := v.(string); s != "" && s != "normal" {
			return fmt.Sprintf("%q is not supported yet by quayctl serve, which would accept writes", s), "remove REGISTRY_STATE or set it to normal", true
		}
	case "DISABLE_PUSHES":
		if b, _ := v.(bool); b {
			return "true is not supported yet by quayctl serve, which would accept pushes", "remove DISABLE_PUSHES or set it to false", true
		}
	}
	return "", "", false
}

func unknownKeyProblem(key string) Problem {
	p := Problem{Key: key, Severity: SeverityError, Message: "not a Quay configuration key"}
	if strings.HasPrefix(strings.ToUpper(key), "QUAYCTL_") {
		p.Message = "not a quayctl configuration key"
	}
	s := suggestKey(key)
	switch {
	case s != "" && strings.EqualFold(s, key):
		p.Message += " (keys are case-sensitive)"
		p.Fix = "did you mean " + s + "?"
	case s != "":
		p.Fix = "did you mean " + s + "?"
	default:
		p.Fix = "remove it, or list it under QUAYCTL_IGNORED_KEYS if it is a newer Quay key"
	}
	return p
}
