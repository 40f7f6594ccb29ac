// Package configcheck judges a Quay config.yaml: quayctl serve's own
// validation (registry/config) adapted to Red Hat Quay, plus the rules only
// Quay needs. `quayctl config validate` and diagnose's config area share it.
package configcheck

import (
	"errors"
	"os"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/quayctl/quayctl/internal/redact"
	"github.com/quayctl/quayctl/registry/config"
)

// Flavours: whose rules to apply.
const (
	ForQuay    = "quay"    // Red Hat Quay reads the file
	ForQuayctl = "quayctl" // quayctl serve reads the file
)

// Result is the stable JSON/YAML schema of `quayctl config validate`.
type Result struct {
	Source   string           `json:"source"`
	For      string           `json:"for"`
	Valid    bool             `json:"valid"`
	Errors   int              `json:"errors"`
	Warnings int              `json:"warnings"`
	Problems []GroupedProblem `json:"problems"`
}

// GroupedProblem is a problem with its field group (database, storage …).
type GroupedProblem struct {
	Group string `json:"group"`
	config.Problem
}

// Validate runs config.Load over raw (through a temporary file, as Load
// reads files) and adapts the problems to flavour. files may be nil (TLS
// file checks are then skipped). Messages never hold secret values.
func Validate(raw []byte, source, flavour string, files FileProbe) (Result, error) {
	res := Result{Source: source, For: flavour}
	dir, err := os.MkdirTemp("", "quayctl-validate-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		return res, err
	}
	var ps []config.Problem
	cfg, _, err := config.Load(config.LoadOptions{Path: path, DataDir: dir, Env: func(string) string { return "" }})
	var ve *config.ValidationError
	switch {
	case errors.As(err, &ve):
		ps = ve.Problems
	case err != nil:
		msg, _ := redact.String(err.Error())
		msg = strings.ReplaceAll(msg, path, "config.yaml")
		ps = []config.Problem{{Key: "config.yaml", Message: msg, Fix: "fix the YAML syntax at the line named", Severity: config.SeverityError}}
	default:
		ps = cfg.Warnings()
	}
	var rawMap map[string]any
	_ = yaml.Unmarshal(raw, &rawMap)
	if flavour == ForQuay {
		ps = quayProblems(rawMap, ps, files)
	}
	res.Problems = groupProblems(ps)
	for _, p := range res.Problems {
		if p.Severity == config.SeverityError {
			res.Errors++
		} else {
			res.Warnings++
		}
	}
	res.Valid = res.Errors == 0
	return res, nil
}
