// Package autoprune runs Quay's namespace auto-prune policies
// (FEATURE_AUTO_PRUNE): it parses and validates policies as the API
// receives them, and prunes tags as Quay's autopruneworker does, ending
// them the way a tag DELETE does so the time machine and garbage
// collection treat them as usual.
package autoprune

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"time"
)

// Policy methods, Quay's AutoPruneMethod.
const (
	MethodNumberOfTags = "number_of_tags"
	MethodCreationDate = "creation_date"
)

// Policy is one parsed auto-prune policy.
type Policy struct {
	Method string
	// Count is the number of tags number_of_tags keeps.
	Count int
	// Age and AgeText (as given, e.g. "7d") are creation_date's limit.
	Age     time.Duration
	AgeText string
	// TagPattern limits the policy to tags that match it (TagPatternMatches)
	// or to tags that do not; "" applies the policy to every tag.
	TagPattern        string
	TagPatternMatches bool
	re                *regexp.Regexp
}

// Input is the API's JSON body.
type Input struct {
	Method            string          `json:"method"`
	Value             json.RawMessage `json:"value"`
	TagPattern        *string         `json:"tagPattern"`
	TagPatternMatches *bool           `json:"tagPatternMatches"`
}

// InvalidPolicyError is input that is not a valid policy; its message is
// meant for the API's 400 answer.
type InvalidPolicyError struct{ Reason string }

func (e InvalidPolicyError) Error() string { return "invalid auto-prune policy: " + e.Reason }

func invalid(format string, args ...any) error {
	return InvalidPolicyError{Reason: fmt.Sprintf(format, args...)}
}

var durationRE = regexp.MustCompile(`^([1-9][0-9]*)([smhdwy])$`)

var unitDurations = map[string]time.Duration{
	"s": time.Second, "m": time.Minute, "h": time.Hour,
	"d": 24 * time.Hour, "w": 7 * 24 * time.Hour, "y": 365 * 24 * time.Hour,
}

// ParseAge reads Quay's duration strings (util/timedeltastring): a
// positive whole number and one unit of s, m (minutes), h, d, w or y.
func ParseAge(s string) (time.Duration, error) {
	m := durationRE.FindStringSubmatch(s)
	if m == nil {
		return 0, invalid("%q is not a duration: use a whole number and a unit of s, m, h, d, w or y, such as \"7d\"", s)
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	unit := unitDurations[m[2]]
	if err != nil || n > int64(200*365*24*time.Hour/unit) {
		return 0, invalid("duration %q is too long", s)
	}
	return time.Duration(n) * unit, nil
}

// Parse validates an API body into a policy.
func Parse(in Input) (*Policy, error) {
	p := &Policy{Method: in.Method, TagPatternMatches: true}
	value := bytes.TrimSpace(in.Value)
	if len(value) == 0 || bytes.Equal(value, []byte("null")) {
		if in.Method != MethodNumberOfTags && in.Method != MethodCreationDate {
			return nil, invalid("unknown method %q: use %q or %q", in.Method, MethodNumberOfTags, MethodCreationDate)
		}
		return nil, invalid("missing value: give a number of tags for %s or a duration such as \"7d\" for %s", MethodNumberOfTags, MethodCreationDate)
	}
	switch in.Method {
	case MethodNumberOfTags:
		var n json.Number
		dec := json.NewDecoder(bytes.NewReader(value))
		dec.UseNumber()
		if err := dec.Decode(&n); err != nil || value[0] == '"' {
			return nil, invalid("value of %s must be a whole number of tags to keep, such as 10", MethodNumberOfTags)
		}
		v, err := n.Int64()
		if err != nil || v < 1 || v > 1<<31-1 {
			return nil, invalid("value of %s must be a whole number of at least 1, not %s", MethodNumberOfTags, n)
		}
		p.Count = int(v)
	case MethodCreationDate:
		var s string
		if err := json.Unmarshal(value, &s); err != nil {
			return nil, invalid("value of %s must be a duration string such as \"7d\"", MethodCreationDate)
		}
		d, err := ParseAge(s)
		if err != nil {
			return nil, err
		}
		p.Age, p.AgeText = d, s
	default:
		return nil, invalid("unknown method %q: use %q or %q", in.Method, MethodNumberOfTags, MethodCreationDate)
	}
	if in.TagPattern != nil {
		if *in.TagPattern == "" {
			return nil, invalid("tagPattern is empty: leave it out to apply the policy to every tag")
		}
		re, err := regexp.Compile(*in.TagPattern)
		if err != nil {
			return nil, invalid("tagPattern %q is not a valid regular expression: %v", *in.TagPattern, err)
		}
		p.TagPattern, p.re = *in.TagPattern, re
	}
	if in.TagPatternMatches != nil {
		p.TagPatternMatches = *in.TagPatternMatches
	}
	return p, nil
}

// FromConfig reads DEFAULT_NAMESPACE_AUTOPRUNE_POLICY: method and value as
// in the API, and the tag filter under either the API's names (tagPattern,
// tagPatternMatches) or the stored ones (tag_pattern, tag_pattern_matches).
func FromConfig(m map[string]any) (*Policy, error) {
	var in Input
	for k, v := range m {
		var err error
		switch k {
		case "method":
			s, ok := v.(string)
			if !ok {
				return nil, invalid("method must be %q or %q", MethodNumberOfTags, MethodCreationDate)
			}
			in.Method = s
		case "value":
			in.Value, err = json.Marshal(v)
		case "tagPattern", "tag_pattern":
			s, ok := v.(string)
			if !ok {
				return nil, invalid("%s must be a regular expression in a string", k)
			}
			in.TagPattern = &s
		case "tagPatternMatches", "tag_pattern_matches":
			b, ok := v.(bool)
			if !ok {
				return nil, invalid("%s must be true or false", k)
			}
			in.TagPatternMatches = &b
		default:
			return nil, invalid("unknown field %q: use method, value, tagPattern and tagPatternMatches", k)
		}
		if err != nil {
			return nil, invalid("%s: %v", k, err)
		}
	}
	return Parse(in)
}

// stored is Quay's JSON form in the policy column.
type stored struct {
	Method            string  `json:"method"`
	Value             any     `json:"value"`
	TagPattern        *string `json:"tag_pattern"`
	TagPatternMatches bool    `json:"tag_pattern_matches"`
}

// Stored is the JSON written to the database; equal policies give equal
// text, which is how duplicates are found.
func (p *Policy) Stored() string {
	s := stored{Method: p.Method, TagPatternMatches: p.TagPatternMatches}
	if p.Method == MethodNumberOfTags {
		s.Value = p.Count
	} else {
		s.Value = p.AgeText
	}
	if p.TagPattern != "" {
		pat := p.TagPattern
		s.TagPattern = &pat
	}
	b, _ := json.Marshal(s)
	return string(b)
}

// Load parses a stored policy (also ones Quay wrote).
func Load(text string) (*Policy, error) {
	var s struct {
		Method            string          `json:"method"`
		Value             json.RawMessage `json:"value"`
		TagPattern        *string         `json:"tag_pattern"`
		TagPatternMatches *bool           `json:"tag_pattern_matches"`
	}
	if err := json.Unmarshal([]byte(text), &s); err != nil {
		return nil, invalid("stored policy is not JSON: %v", err)
	}
	in := Input{Method: s.Method, Value: s.Value, TagPatternMatches: s.TagPatternMatches}
	if s.TagPattern != nil && *s.TagPattern != "" {
		in.TagPattern = s.TagPattern
	}
	return Parse(in)
}

// View is Quay's JSON view of a policy.
func (p *Policy) View(uuid string) map[string]any {
	v := map[string]any{"uuid": uuid, "method": p.Method, "tagPatternMatches": p.TagPatternMatches}
	if p.Method == MethodNumberOfTags {
		v["value"] = p.Count
	} else {
		v["value"] = p.AgeText
	}
	if p.TagPattern != "" {
		v["tagPattern"] = p.TagPattern
	} else {
		v["tagPattern"] = nil
	}
	return v
}

// Applies reports whether the policy covers a tag name.
func (p *Policy) Applies(tag string) bool {
	if p.re == nil {
		return true
	}
	return p.re.MatchString(tag) == p.TagPatternMatches
}

// value is the policy's value for logs and audit entries.
func (p *Policy) value() any {
	if p.Method == MethodNumberOfTags {
		return p.Count
	}
	return p.AgeText
}
