// Package diag turns facts about a Quay deployment into findings.
//
// Facts are named byte blobs ("health/instance.json", "components.json",
// "components/quay/logs.txt" …): the very files a support bundle stores.
// Checks read facts by name only, so the same checks run on a live podman
// or OpenShift deployment, a direct connection, or an offline bundle. A
// check returns findings with a severity, evidence and a remedy; a check
// that fails to read a fact reports that as a finding of its own.
package diag

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Severity orders findings: OK < Info < Warn < Fail.
type Severity int

// Severities, in increasing order of concern.
const (
	OK Severity = iota
	Info
	Warn
	Fail
)

var severityNames = [...]string{"ok", "info", "warn", "fail"}

func (s Severity) String() string {
	if s < OK || s > Fail {
		return fmt.Sprintf("severity(%d)", int(s))
	}
	return severityNames[s]
}

// MarshalText writes the severity's name ("warn"), the JSON schema's form.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a severity's name.
func (s *Severity) UnmarshalText(b []byte) error {
	for i, n := range severityNames {
		if strings.EqualFold(string(b), n) {
			*s = Severity(i)
			return nil
		}
	}
	return fmt.Errorf("unknown severity %q (want ok, info, warn or fail)", b)
}

// Finding is one conclusion of a check.
type Finding struct {
	ID       string   `json:"id"`   // stable: "database.connections"
	Area     string   `json:"area"` // "database"
	Severity Severity `json:"severity"`
	Title    string   `json:"title"`              // one line, says what is wrong (or right)
	Evidence []string `json:"evidence,omitempty"` // the lines, numbers or rows that prove it
	Remedy   string   `json:"remedy,omitempty"`   // what to do, with the quayctl command or guide section
	Doc      string   `json:"doc,omitempty"`      // docs/diagnose.md#anchor or a guide section
	// Subject names what the finding is about when a check reports on
	// many things (a component, a storage location, a user).
	Subject string `json:"subject,omitempty"`
}

// Facts is what checks read. Get returns the fact's bytes, gathering it on
// first use; the error says why a fact could not be gathered.
type Facts interface {
	Get(ctx context.Context, name string) ([]byte, error)
}

// ErrNotApplicable says a fact does not exist for this deployment (no Clair
// component, a SQLite database): checks skip quietly or say so as info.
var ErrNotApplicable = errors.New("not applicable to this deployment")

// ErrOffline says a fact needs a live probe and the facts come from a
// bundle.
var ErrOffline = errors.New("not available offline")

// Check is one named test over facts.
type Check struct {
	ID    string // "database.connections"
	Area  string // "database"
	Title string // what it looks at, for docs and --list
	Doc   string // anchor in docs/diagnose.md
	// Run returns the check's findings. It may return none when there is
	// nothing to say (a check that does not apply).
	Run func(ctx context.Context, f Facts) []Finding
}

// With returns the check with run as its Run. Checks are declared as
// values first and given their function here, so a function can name its
// own check (diag.Check.Finding) without an initialization cycle.
func (c Check) With(run func(ctx context.Context, f Facts) []Finding) Check {
	c.Run = run
	return c
}

// Finding builds a finding of this check (ID, area and doc filled in).
func (c Check) Finding(sev Severity, title string) Finding {
	return Finding{ID: c.ID, Area: c.Area, Severity: sev, Title: title, Doc: c.Doc}
}

// FactError turns a fact that could not be gathered into a finding:
// info when the fact does not apply or needs a live probe, warn otherwise
// (the check could not look, so the operator should).
func (c Check) FactError(name string, err error) Finding {
	f := c.Finding(Warn, fmt.Sprintf("could not gather %s: %v", name, err))
	switch {
	case errors.Is(err, ErrNotApplicable):
		f.Severity = Info
		f.Title = fmt.Sprintf("skipped: %s is %v", name, err)
	case errors.Is(err, ErrOffline):
		f.Severity = Info
		f.Title = fmt.Sprintf("skipped: %s is %v", name, err)
	default:
		f.Remedy = "gather it by hand (see the doc link) or re-run with a longer --timeout; " +
			"the error says what was missing"
	}
	return f
}

// GetJSON reads the fact name and decodes it into a T.
func GetJSON[T any](ctx context.Context, f Facts, name string) (T, error) {
	var v T
	b, err := f.Get(ctx, name)
	if err != nil {
		return v, err
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return v, fmt.Errorf("%s is not valid JSON of the expected shape: %w", name, err)
	}
	return v, nil
}

// MapFacts is a fixed set of facts (tests, and a bundle read whole). A
// name that is missing is reported as not gathered.
type MapFacts map[string][]byte

// Get implements Facts.
func (m MapFacts) Get(_ context.Context, name string) ([]byte, error) {
	if b, ok := m[name]; ok {
		return b, nil
	}
	if err, ok := m[name+".error"]; ok {
		return nil, factError(string(err))
	}
	return nil, fmt.Errorf("%s: %w", name, ErrMissing)
}

// ErrMissing says a fact was not gathered at all.
var ErrMissing = errors.New("fact was not gathered")

// factError is a recorded gathering error (a bundle's "NAME.error" file).
// Its text keeps the sentinel's meaning for errors.Is.
type factError string

func (e factError) Error() string { return string(e) }

func (e factError) Is(target error) bool {
	return (target == ErrNotApplicable && strings.Contains(string(e), ErrNotApplicable.Error())) ||
		(target == ErrOffline && strings.Contains(string(e), ErrOffline.Error()))
}
