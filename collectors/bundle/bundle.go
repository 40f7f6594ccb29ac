// Package bundle writes and reads quayctl support bundles: a .tar.gz of a
// deployment's facts (the files diag's checks read, under their fact
// names), the diagnose findings and report gathered with them, and a
// manifest.json that says what each collector gathered, what failed and
// why, and what was redacted (counts per file and rule, never values).
//
// Collect streams every fact to a spool directory (logs through the
// redaction into capped spool files, so memory stays flat), runs diagnose
// over the spooled facts, then writes the archive to a temporary file next
// to the target and renames it, so no half-written bundle is ever left.
// Open extracts a bundle and offers its facts (Facts, for diagnose) and a
// collectors.Deployment over it (Deployment, kind "bundle").
package bundle

import (
	"time"

	"github.com/quayctl/quayctl/diag"
	"github.com/quayctl/quayctl/internal/redact"
)

// FormatVersion is the bundle layout's version (docs/support-bundle.md).
// Readers refuse a newer one.
const FormatVersion = 1

// Archive entries besides the facts.
const (
	ManifestName = "manifest.json"
	FindingsName = "diagnose/findings.json" // diag.Report, as diagnose -o json
	ReportName   = "diagnose/report.txt"    // the text report
	// ErrorSuffix marks a fact that could not be gathered: NAME.error
	// holds why (diag.MapFacts reads the same convention).
	ErrorSuffix = ".error"
)

// Statuses of a manifest file.
const (
	StatusOK            = "ok"
	StatusFailed        = "failed"         // the collector failed; Error says why
	StatusNotApplicable = "not-applicable" // the deployment has no such thing (no Clair, no restart)
)

// Manifest is manifest.json, the bundle's table of contents.
type Manifest struct {
	Format         int         `json:"format"`
	QuayctlVersion string      `json:"quayctl_version"`
	Created        time.Time   `json:"created"`
	Target         diag.Target `json:"target"` // what was collected (podman, openshift, direct)
	Options        Options     `json:"options"`
	// Files lists every fact and file, in collection order.
	Files []File `json:"files"`
	// Redaction totals Files' redactions per rule.
	Redaction redact.Summary `json:"redaction"`
	// Summary is the diagnose findings' counts.
	Summary diag.Summary `json:"diagnose_summary"`
}

// Options are the collection's settings, recorded for whoever reads it.
type Options struct {
	Since         string   `json:"since"`           // how far back logs go ("24h0m0s")
	LogLimitBytes int64    `json:"log_limit_bytes"` // the per-log cap
	NoRedact      bool     `json:"no_redact"`       // --no-redact was given: logs and config.yaml are NOT redacted
	RedactRules   []string `json:"redact_rules,omitempty"`
}

// File is one collected fact or file.
type File struct {
	// Fact is the fact's name ("components/quay/logs.txt").
	Fact string `json:"fact"`
	// Path is the archive entry written: Fact, or Fact + ".error".
	Path   string `json:"path"`
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	// DroppedBytes is how much of an older log --log-limit dropped.
	DroppedBytes int64          `json:"dropped_bytes,omitempty"`
	Redactions   redact.Summary `json:"redactions,omitempty"`
	ElapsedMS    float64        `json:"elapsed_ms"`
}

// Counts of a manifest's files by status.
func (m Manifest) Counts() (ok, failed, notApplicable int) {
	for _, f := range m.Files {
		switch f.Status {
		case StatusOK:
			ok++
		case StatusFailed:
			failed++
		case StatusNotApplicable:
			notApplicable++
		}
	}
	return ok, failed, notApplicable
}
