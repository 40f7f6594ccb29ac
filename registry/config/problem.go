package config

import (
	"fmt"
	"strings"
)

// Severity says whether a Problem stops quayctl serve from starting.
type Severity int

const (
	// SeverityError problems make Load fail.
	SeverityError Severity = iota
	// SeverityWarning problems are reported but the configuration is usable.
	SeverityWarning
)

func (s Severity) String() string {
	if s == SeverityWarning {
		return "warning"
	}
	return "error"
}

// MarshalText makes Severity render as "error"/"warning" in JSON and YAML.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Problem is one finding about a configuration. Key is the top-level config
// key (or environment variable) to change; Message never contains a secret.
type Problem struct {
	Key      string   `json:"key"`
	Message  string   `json:"message"`
	Fix      string   `json:"fix,omitempty"`
	Severity Severity `json:"severity"`
}

// String renders "KEY: message — fix".
func (p Problem) String() string {
	s := p.Key + ": " + p.Message
	if p.Fix != "" {
		s += " — " + p.Fix
	}
	return s
}

// ValidationError is returned by Load when the configuration has at least one
// SeverityError problem. Problems holds every finding, errors first.
type ValidationError struct {
	Source   Source
	Problems []Problem
}

// Errors returns only the problems that stop the server.
func (e *ValidationError) Errors() []Problem {
	var out []Problem
	for _, p := range e.Problems {
		if p.Severity == SeverityError {
			out = append(out, p)
		}
	}
	return out
}

func (e *ValidationError) Error() string {
	n := len(e.Errors())
	var b strings.Builder
	fmt.Fprintf(&b, "invalid configuration (%s): %d %s", e.Source, n, plural(n, "error", "errors"))
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		if p.Severity == SeverityWarning {
			b.WriteString("warning: ")
		}
		b.WriteString(p.String())
	}
	return b.String()
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// problems collects findings in the order rules run.
type problems []Problem

func (ps *problems) errorf(key, fix, format string, args ...any) {
	*ps = append(*ps, Problem{Key: key, Message: fmt.Sprintf(format, args...), Fix: fix, Severity: SeverityError})
}

func (ps *problems) warnf(key, fix, format string, args ...any) {
	*ps = append(*ps, Problem{Key: key, Message: fmt.Sprintf(format, args...), Fix: fix, Severity: SeverityWarning})
}

// split separates errors from warnings, keeping each group's order.
func (ps problems) split() (errs, warns []Problem) {
	for _, p := range ps {
		if p.Severity == SeverityError {
			errs = append(errs, p)
		} else {
			warns = append(warns, p)
		}
	}
	return errs, warns
}
