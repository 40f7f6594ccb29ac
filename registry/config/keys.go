package config

import (
	_ "embed"
	"reflect"
	"slices"
	"strings"
)

//go:embed quay_keys.txt
var quayKeysText string

// quayKeys is every top-level key Quay reads (see quay_keys.txt).
var quayKeys = parseKeyList(quayKeysText)

// aliasKeys are accepted spellings that Quay itself does not read.
var aliasKeys = map[string]string{
	"FEATURE_STORAGE_PROXY": "FEATURE_PROXY_STORAGE",
}

func parseKeyList(text string) map[string]bool {
	keys := map[string]bool{}
	for line := range strings.Lines(text) {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		if k := strings.TrimSpace(line); k != "" {
			keys[k] = true
		}
	}
	return keys
}

// fieldInfo ties a config key to its Config field.
type fieldInfo struct {
	key   string
	index int
	typ   reflect.Type
}

// configFields maps each key with a yaml tag on Config to its field.
var configFields = func() map[string]fieldInfo {
	fields := map[string]fieldInfo{}
	t := reflect.TypeFor[Config]()
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		key, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if key == "" || key == "-" {
			continue
		}
		fields[key] = fieldInfo{key: key, index: i, typ: f.Type}
	}
	return fields
}()

// KnownQuayKeys returns every top-level key Quay reads, sorted. Keys ending
// in _LOGIN_CONFIG (one per OIDC provider) are valid too but not listed.
func KnownQuayKeys() []string {
	keys := make([]string, 0, len(quayKeys))
	for k := range quayKeys {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// UsedKeys returns the keys quayctl serve reads, sorted: Quay's keys it
// implements, the FEATURE_STORAGE_PROXY alias and the QUAYCTL_ keys.
func UsedKeys() []string {
	keys := make([]string, 0, len(configFields))
	for k := range configFields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// keyKind says how quayctl treats a top-level key.
type keyKind int

const (
	keyUsed      keyKind = iota // read into Config
	keyIgnored                  // a Quay key quayctl does not use
	keyUnknown                  // neither: most likely a typo
	keyUnknownQC                // QUAYCTL_ prefix but not one of ours
)

func classifyKey(k string) keyKind {
	switch {
	case configFields[k].typ != nil:
		return keyUsed
	case isQuayKey(k):
		return keyIgnored
	case strings.HasPrefix(k, "QUAYCTL_"):
		return keyUnknownQC
	default:
		return keyUnknown
	}
}

func isQuayKey(k string) bool {
	if quayKeys[k] {
		return true
	}
	// Quay builds one OIDC provider per *_LOGIN_CONFIG key.
	name, ok := strings.CutSuffix(k, "_LOGIN_CONFIG")
	return ok && name != "" && k == strings.ToUpper(k)
}

// suggestKey proposes the known key closest to an unknown one, or "".
func suggestKey(k string) string {
	var candidates []string
	if strings.HasPrefix(strings.ToUpper(k), "QUAYCTL_") {
		for key := range configFields {
			if strings.HasPrefix(key, "QUAYCTL_") {
				candidates = append(candidates, key)
			}
		}
	} else {
		candidates = KnownQuayKeys()
		for key := range configFields {
			if _, alias := aliasKeys[key]; !alias {
				candidates = append(candidates, key)
			}
		}
	}
	norm := strings.NewReplacer("-", "_", " ", "_", ".", "_").Replace(strings.ToUpper(k))
	return closest(norm, candidates)
}

// closest returns the candidate nearest to s by edit distance when it is
// near enough to be a plausible typo, preferring an exact match.
func closest(s string, candidates []string) string {
	slices.Sort(candidates)
	best, bestDist := "", -1
	for _, c := range candidates {
		if c == s {
			return c
		}
		if d := editDistance(s, c); bestDist < 0 || d < bestDist {
			best, bestDist = c, d
		}
	}
	limit := max(2, min(4, len(s)/5))
	if bestDist < 0 || bestDist > limit {
		return ""
	}
	return best
}

// closestFold is closest, but a case-insensitive exact match wins first.
func closestFold(s string, candidates []string) string {
	for _, c := range candidates {
		if strings.EqualFold(c, s) {
			return c
		}
	}
	return closest(s, candidates)
}

// editDistance is the Levenshtein distance between two ASCII strings.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
