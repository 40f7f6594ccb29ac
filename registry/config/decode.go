package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"

	"github.com/go-viper/mapstructure/v2"
	"go.yaml.in/yaml/v3"
)

// yaml11Bools are the plain scalars PyYAML (YAML 1.1, what Quay uses) reads
// as booleans but YAML 1.2 reads as strings. Treating them as booleans keeps
// "FEATURE_X: yes" meaning what it means to Quay.
var yaml11Bools = map[string]bool{
	"yes": true, "Yes": true, "YES": true, "on": true, "On": true, "ON": true,
	"no": false, "No": false, "NO": false, "off": false, "Off": false, "OFF": false,
}

// parseYAML reads a config.yaml document into top-level raw values, keeping
// the case of every key and the line each top-level key is on.
func parseYAML(data []byte) (values map[string]any, lines map[string]int, ps problems, err error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, nil, nil, err
	}
	values, lines = map[string]any{}, map[string]int{}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return values, lines, nil, nil // empty file
	}
	top := doc.Content[0]
	if top.Kind == yaml.ScalarNode && top.ShortTag() == "!!null" {
		return values, lines, nil, nil
	}
	if top.Kind != yaml.MappingNode {
		return nil, nil, nil, errors.New("the top level must be a mapping of KEY: value lines")
	}
	if hasMergeKey(top) {
		// Rare enough that losing line numbers is fine.
		v, err := nodeValue(top)
		if err != nil {
			return nil, nil, nil, err
		}
		return v.(map[string]any), lines, nil, nil
	}
	for i := 0; i+1 < len(top.Content); i += 2 {
		k, v := top.Content[i], top.Content[i+1]
		key, err := keyString(k)
		if err != nil {
			return nil, nil, nil, err
		}
		val, err := nodeValue(v)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("%s (line %d): %w", key, k.Line, err)
		}
		if first, dup := lines[key]; dup {
			ps.warnf(key, "delete one of them", "is set twice, on lines %d and %d; the last one wins, as in Quay", first, k.Line)
		}
		values[key], lines[key] = val, k.Line
	}
	return values, lines, ps, nil
}

func hasMergeKey(n *yaml.Node) bool {
	for i := 0; i < len(n.Content); i += 2 {
		if n.Content[i].Kind == yaml.ScalarNode && n.Content[i].Tag == "!!merge" {
			return true
		}
	}
	return false
}

func keyString(k *yaml.Node) (string, error) {
	if k.Kind == yaml.AliasNode && k.Alias != nil {
		k = k.Alias
	}
	if k.Kind != yaml.ScalarNode {
		return "", fmt.Errorf("line %d: mapping keys must be plain names", k.Line)
	}
	return k.Value, nil
}

// nodeValue converts a YAML node to plain Go values: map[string]any, []any,
// string, bool, int, float64 or nil.
func nodeValue(n *yaml.Node) (any, error) {
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return nodeValue(n.Content[0])
	case yaml.AliasNode:
		return nodeValue(n.Alias)
	case yaml.ScalarNode:
		if n.Style == 0 && n.ShortTag() == "!!str" {
			if b, ok := yaml11Bools[n.Value]; ok {
				return b, nil
			}
		}
		var v any
		if err := n.Decode(&v); err != nil {
			return nil, err
		}
		return v, nil
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			v, err := nodeValue(c)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case yaml.MappingNode:
		if hasMergeKey(n) {
			var m map[string]any
			if err := n.Decode(&m); err != nil {
				return nil, err
			}
			return m, nil
		}
		out := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			key, err := keyString(n.Content[i])
			if err != nil {
				return nil, err
			}
			v, err := nodeValue(n.Content[i+1])
			if err != nil {
				return nil, err
			}
			out[key] = v
		}
		return out, nil
	}
	return nil, fmt.Errorf("line %d: unsupported YAML node", n.Line)
}

// parseOverride reads QUAY_OVERRIDE_CONFIG. Its text is a secret-bearing
// value, so errors only say where it is broken.
func parseOverride(s string) (map[string]any, error) {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		var syn *json.SyntaxError
		if errors.As(err, &syn) {
			return nil, fmt.Errorf("is not valid JSON (error at byte %d)", syn.Offset)
		}
		return nil, errors.New("is not valid JSON")
	}
	if dec.More() {
		return nil, errors.New("has text after the JSON object")
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("must be a JSON object, got %s", describe(v, false))
	}
	return normalizeJSON(m).(map[string]any), nil
}

// normalizeJSON turns json.Number into int or float64, like YAML decoding.
func normalizeJSON(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return int(i)
		}
		f, _ := x.Float64()
		return f
	case map[string]any:
		for k, e := range x {
			x[k] = normalizeJSON(e)
		}
	case []any:
		for i, e := range x {
			x[i] = normalizeJSON(e)
		}
	}
	return v
}

var (
	storageLocationType = reflect.TypeFor[StorageLocation]()
	healthCheckerType   = reflect.TypeFor[HealthChecker]()
)

// mismatch says where a raw value does not fit a field's type.
type mismatch struct {
	path []string // below the top-level key
	want string
	got  any
	msg  string // set instead of want/got for shape errors of [Name, {params}]
}

// checkType reports the first place raw value v does not fit t. A null fits
// everything: Quay reads it as None, quayctl as the zero value.
func checkType(v any, t reflect.Type) *mismatch {
	if v == nil {
		return nil
	}
	switch t {
	case storageLocationType:
		if _, _, msg := pairFromRaw(v, "driver"); msg != "" {
			return &mismatch{msg: msg}
		}
		return nil
	case healthCheckerType:
		if _, _, msg := pairFromRaw(v, "checker"); msg != "" {
			return &mismatch{msg: msg}
		}
		return nil
	}
	switch t.Kind() {
	case reflect.Pointer:
		return checkType(v, t.Elem())
	case reflect.Interface:
		return nil
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			return &mismatch{want: "true or false", got: v}
		}
	case reflect.String:
		if _, ok := v.(string); !ok {
			return &mismatch{want: "a string", got: v}
		}
	case reflect.Int, reflect.Int64:
		if !isWholeNumber(v) {
			return &mismatch{want: "a whole number", got: v}
		}
	case reflect.Float64:
		switch v.(type) {
		case int, int64, uint64, float64:
		default:
			return &mismatch{want: "a number", got: v}
		}
	case reflect.Slice:
		list, ok := v.([]any)
		if !ok {
			return &mismatch{want: "a list", got: v}
		}
		for i, e := range list {
			if m := checkType(e, t.Elem()); m != nil {
				m.path = append([]string{fmt.Sprintf("[%d]", i)}, m.path...)
				return m
			}
		}
	case reflect.Map:
		obj, ok := v.(map[string]any)
		if !ok {
			return &mismatch{want: "a mapping", got: v}
		}
		for _, k := range sortedKeys(obj) {
			if m := checkType(obj[k], t.Elem()); m != nil {
				seg := k
				if t.Elem() == storageLocationType {
					seg = fmt.Sprintf("location %q", k)
				}
				m.path = append([]string{seg}, m.path...)
				return m
			}
		}
	case reflect.Struct:
		obj, ok := v.(map[string]any)
		if !ok {
			return &mismatch{want: "a mapping", got: v}
		}
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "" {
				continue
			}
			if m := checkType(obj[name], f.Type); m != nil {
				m.path = append([]string{name}, m.path...)
				return m
			}
		}
	}
	return nil
}

func isWholeNumber(v any) bool {
	switch x := v.(type) {
	case int, int64:
		return true
	case uint64:
		return x <= math.MaxInt64
	case float64:
		return x == math.Trunc(x) && math.Abs(x) < 1<<53
	}
	return false
}

// typeProblem turns a mismatch into a Problem for key.
func typeProblem(key string, m *mismatch) Problem {
	where := ""
	if len(m.path) > 0 {
		where = joinPath(m.path) + ": "
	}
	if m.msg != "" {
		return Problem{Key: key, Message: where + m.msg, Fix: "write it as [Name, {param: value}]", Severity: SeverityError}
	}
	reveal := !isSecretName(key)
	for _, p := range m.path {
		reveal = reveal && !isSecretName(p)
	}
	p := Problem{Key: key, Severity: SeverityError,
		Message: fmt.Sprintf("%sexpected %s, got %s", where, m.want, describe(m.got, reveal))}
	switch m.want {
	case "true or false":
		p.Fix = "write true or false, without quotes"
	case "a string":
		p.Fix = "put the value in quotes"
	case "a whole number":
		p.Fix = "write a whole number, without quotes"
	case "a number":
		p.Fix = "write a number, without quotes"
	case "a list":
		p.Fix = "write a YAML list, such as [a, b] or one '- item' line per entry"
	case "a mapping":
		p.Fix = "write a YAML mapping: 'name: value' lines indented below the key"
	}
	return p
}

func joinPath(path []string) string {
	var b strings.Builder
	for i, p := range path {
		if i > 0 && !strings.HasPrefix(p, "[") {
			b.WriteByte('.')
		}
		b.WriteString(p)
	}
	return b.String()
}

// describe names the kind of a raw value, and shows short scalar values when
// reveal is set (never for secret-bearing keys).
func describe(v any, reveal bool) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case bool:
		if reveal {
			return fmt.Sprintf("%t", x)
		}
		return "a boolean"
	case string:
		if reveal && len(x) <= 60 {
			return fmt.Sprintf("the string %q", x)
		}
		return "a string"
	case int, int64, uint64, float64:
		if reveal {
			return fmt.Sprintf("the number %v", x)
		}
		return "a number"
	case []any:
		return "a list"
	case map[string]any:
		return "a mapping"
	}
	return fmt.Sprintf("a %T", v)
}

// isSecretName guesses whether a key name carries a secret, so that its value
// never appears in a message.
func isSecretName(name string) bool {
	n := strings.ToLower(name)
	for _, s := range []string{"password", "passwd", "secret", "token", "key", "psk", "dsn", "db_uri", "credential", "private"} {
		if strings.Contains(n, s) {
			return true
		}
	}
	return false
}

// pairFromRaw reads Quay's [Name, {params}] form; msg explains a bad shape.
func pairFromRaw(v any, what string) (name string, params map[string]any, msg string) {
	list, ok := v.([]any)
	if !ok {
		return "", nil, fmt.Sprintf("expected a list [%sName, {parameters}], got %s", titleCase(what), describe(v, false))
	}
	if len(list) != 2 {
		return "", nil, fmt.Sprintf("expected a list of 2 entries [%sName, {parameters}], got %d %s", titleCase(what), len(list), plural(len(list), "entry", "entries"))
	}
	name, ok = list[0].(string)
	if !ok {
		return "", nil, fmt.Sprintf("the first entry must be the %s name, got %s", what, describe(list[0], true))
	}
	params, ok = list[1].(map[string]any)
	if !ok {
		return "", nil, fmt.Sprintf("the second entry must be a mapping of parameters ({} for none), got %s", describe(list[1], false))
	}
	return name, params, ""
}

func titleCase(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// decodeInto assigns already type-checked raw values to cfg's fields.
func decodeInto(cfg *Config, raw map[string]any) error {
	dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		TagName:    "yaml",
		Result:     cfg,
		DecodeHook: pairHook,
	})
	if err != nil {
		return fmt.Errorf("config decoder: %w", err)
	}
	if err := dec.Decode(raw); err != nil {
		return fmt.Errorf("decode config: %w", err)
	}
	return nil
}

// pairHook lets mapstructure build StorageLocation and HealthChecker from
// Quay's [Name, {params}] lists.
func pairHook(_ reflect.Type, to reflect.Type, data any) (any, error) {
	if to != storageLocationType && to != healthCheckerType {
		return data, nil
	}
	name, params, msg := pairFromRaw(data, "")
	if msg != "" {
		return nil, errors.New(msg)
	}
	if to == storageLocationType {
		return StorageLocation{Driver: name, Params: params}, nil
	}
	return HealthChecker{Name: name, Params: params}, nil
}

// encodeYAML renders raw values back to YAML (used for the embedded default
// in documentation and tests).
func encodeYAML(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encode yaml: %w", err)
	}
	return buf.Bytes(), nil
}
