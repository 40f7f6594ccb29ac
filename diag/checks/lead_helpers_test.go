package checks

import (
	"context"
	"strings"
	"testing"

	"github.com/quayctl/quayctl/diag"
)

// want is one expected finding: severity, id and a title substring.
type want struct {
	sev   diag.Severity
	id    string
	title string
}

// runCheck runs one check over facts and compares its findings with ws
// (in order: checks return them in a stable order).
func runCheck(t *testing.T, c diag.Check, facts diag.MapFacts, ws ...want) []diag.Finding {
	t.Helper()
	got := c.Run(context.Background(), facts)
	if len(got) != len(ws) {
		t.Fatalf("%d findings, want %d:\n%s", len(got), len(ws), describe(got))
	}
	for i, w := range ws {
		g := got[i]
		if g.Severity != w.sev || (w.id != "" && g.ID != w.id) || !strings.Contains(g.Title, w.title) {
			t.Errorf("finding %d = %s %s %q, want %s %s ~%q", i, g.Severity, g.ID, g.Title, w.sev, w.id, w.title)
		}
		if g.Severity >= diag.Warn && g.Remedy == "" {
			t.Errorf("finding %d (%s) has no remedy", i, g.Title)
		}
	}
	return got
}

func describe(fs []diag.Finding) string {
	var b strings.Builder
	for _, f := range fs {
		b.WriteString(f.Severity.String() + " " + f.ID + " " + f.Title + "\n")
	}
	return b.String()
}

func evidence(f diag.Finding) string { return strings.Join(f.Evidence, "\n") }
