package checks

import (
	"bytes"
	"context"
	"fmt"

	"github.com/quayctl/quayctl/diag"
	"github.com/quayctl/quayctl/diag/configcheck"
	"github.com/quayctl/quayctl/internal/redact"
	"github.com/quayctl/quayctl/registry/config"
)

var configValidation = diag.Check{ID: "config.validation", Area: AreaConfig,
	Title: "config.yaml against Quay's rules: required keys, storage, database, Redis, auth, feature prerequisites", Doc: doc("config")}

var configChecks = []diag.Check{configValidation.With(checkConfig)}

// checkConfig validates the deployment's config.yaml as Quay reads it. The
// fact is redacted, which keeps every key and the shape of URIs, so the
// rules see what they need.
func checkConfig(ctx context.Context, f diag.Facts) []diag.Finding {
	c := configValidation
	raw, err := f.Get(ctx, diag.FactConfig)
	if err != nil {
		fe := c.FactError(diag.FactConfig, err)
		if fe.Severity == diag.Warn {
			fe.Remedy = "read it by hand with quayctl config get, or give the file with --config"
		}
		return []diag.Finding{fe}
	}
	src := "config.yaml"
	if s, err := diag.GetJSON[diag.ConfigSource](ctx, f, diag.FactConfigSource); err == nil && s.Source != "" {
		src = s.Source
	}
	// The redaction marker is not valid inside a URI (DB_URI's password):
	// validate a stand-in the parsers accept. TLS files next to config.yaml
	// are not facts: those rules are skipped.
	raw = bytes.ReplaceAll(raw, []byte(redact.Marker), []byte("redacted"))
	res, err := configcheck.Validate(raw, src, configcheck.ForQuay, nil)
	if err != nil {
		fd := c.Finding(diag.Warn, "could not validate config.yaml: "+err.Error())
		return []diag.Finding{fd}
	}
	if len(res.Problems) == 0 {
		fd := c.Finding(diag.OK, "config.yaml passes Quay's rules")
		fd.Evidence = []string{"source: " + src}
		return []diag.Finding{fd}
	}
	out := make([]diag.Finding, 0, len(res.Problems))
	for _, p := range res.Problems {
		sev := diag.Warn
		if p.Severity == config.SeverityError {
			sev = diag.Fail
		}
		fd := c.Finding(sev, fmt.Sprintf("%s %s", p.Key, p.Message))
		fd.Subject = p.Key
		fd.Evidence = []string{fmt.Sprintf("%s (%s group) in %s", p.Key, p.Group, src)}
		fd.Remedy = p.Fix
		if fd.Remedy != "" {
			fd.Remedy += "; then check again with quayctl config validate"
		}
		out = append(out, fd)
	}
	return out
}
