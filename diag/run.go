package diag

import (
	"context"
	"fmt"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// SchemaVersion is the version of the report's JSON schema
// (docs/diagnose.md). Bump it when a field changes meaning or goes away.
const SchemaVersion = 1

// Target says what was diagnosed.
type Target struct {
	Kind string `json:"kind"` // podman, openshift, direct, bundle
	Name string `json:"name"`
}

// Summary counts findings by severity.
type Summary struct {
	OK    int    `json:"ok"`
	Info  int    `json:"info"`
	Warn  int    `json:"warn"`
	Fail  int    `json:"fail"`
	Worst string `json:"worst"`
}

// Report is the result of a diagnose run; its JSON form is the documented,
// stable schema of `quayctl diagnose -o json`.
type Report struct {
	Version  int       `json:"version"`
	Target   Target    `json:"target"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	Areas    []string  `json:"areas"`
	Summary  Summary   `json:"summary"`
	Findings []Finding `json:"findings"`
}

// Worst is the highest severity among the findings (OK when none).
func (r Report) Worst() Severity {
	w := OK
	for _, f := range r.Findings {
		w = max(w, f.Severity)
	}
	return w
}

// ExitCode maps the worst finding to diagnose's exit code: 0 nothing worse
// than info, 1 warnings, 2 failures.
func (r Report) ExitCode() int {
	switch r.Worst() {
	case Fail:
		return 2
	case Warn:
		return 1
	}
	return 0
}

// Options select checks and observe progress.
type Options struct {
	Only []string // areas (or check ids) to run; empty = all
	Skip []string // areas (or check ids) to leave out
	// Parallel bounds how many checks run at once (default 8): facts are
	// gathered as checks ask for them, so this bounds gathering too.
	Parallel int
	// Progress, when set, hears each check start and end.
	Progress func(check string, done bool)
	// Now is the clock (tests fix it).
	Now func() time.Time
}

// Select returns the checks Options keep, in their given order, or an error
// naming an unknown area or id and the known ones.
func Select(checks []Check, only, skip []string) ([]Check, error) {
	known := map[string]bool{}
	for _, c := range checks {
		known[c.Area], known[c.ID] = true, true
	}
	for _, n := range append(slices.Clone(only), skip...) {
		if !known[n] {
			return nil, fmt.Errorf("unknown area or check %q (areas: %s)", n, strings.Join(Areas(checks), ", "))
		}
	}
	var out []Check
	for _, c := range checks {
		if len(only) > 0 && !slices.Contains(only, c.Area) && !slices.Contains(only, c.ID) {
			continue
		}
		if slices.Contains(skip, c.Area) || slices.Contains(skip, c.ID) {
			continue
		}
		out = append(out, c)
	}
	return out, nil
}

// Areas lists the checks' areas in first-seen order.
func Areas(checks []Check) []string {
	var out []string
	for _, c := range checks {
		if !slices.Contains(out, c.Area) {
			out = append(out, c.Area)
		}
	}
	return out
}

// Run runs the checks over facts concurrently and returns the report,
// findings sorted worst first, then by area and id. A check that panics
// becomes a failing finding; Run itself never fails.
func Run(ctx context.Context, facts Facts, target Target, checks []Check, opts Options) Report {
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	par := opts.Parallel
	if par <= 0 {
		par = 8
	}
	rep := Report{Version: SchemaVersion, Target: target, Started: now().UTC(), Areas: Areas(checks)}
	results := make([][]Finding, len(checks))
	sem := make(chan struct{}, par)
	var wg sync.WaitGroup
	for i, c := range checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			if opts.Progress != nil {
				opts.Progress(c.ID, false)
				defer opts.Progress(c.ID, true)
			}
			results[i] = runOne(ctx, facts, c)
		}()
	}
	wg.Wait()
	for _, fs := range results {
		rep.Findings = append(rep.Findings, fs...)
	}
	Sort(rep.Findings)
	rep.Summary = Summarize(rep.Findings)
	rep.Finished = now().UTC()
	if rep.Findings == nil {
		rep.Findings = []Finding{}
	}
	return rep
}

func runOne(ctx context.Context, facts Facts, c Check) (out []Finding) {
	defer func() {
		if r := recover(); r != nil {
			f := c.Finding(Fail, fmt.Sprintf("check %s crashed: %v", c.ID, r))
			f.Evidence = []string{firstLines(string(debug.Stack()), 12)}
			f.Remedy = "this is a bug in quayctl: please report it with this finding"
			out = []Finding{f}
		}
	}()
	out = c.Run(ctx, facts)
	for i := range out {
		// A check may build findings by hand; keep its identity on them.
		if out[i].ID == "" {
			out[i].ID = c.ID
		}
		if out[i].Area == "" {
			out[i].Area = c.Area
		}
		if out[i].Doc == "" {
			out[i].Doc = c.Doc
		}
	}
	return out
}

// Sort orders findings worst first, then by area, id and subject.
func Sort(fs []Finding) {
	sort.SliceStable(fs, func(i, j int) bool {
		a, b := fs[i], fs[j]
		if a.Severity != b.Severity {
			return a.Severity > b.Severity
		}
		if a.Area != b.Area {
			return a.Area < b.Area
		}
		if a.ID != b.ID {
			return a.ID < b.ID
		}
		return a.Subject < b.Subject
	})
}

// Summarize counts findings by severity.
func Summarize(fs []Finding) Summary {
	var s Summary
	w := OK
	for _, f := range fs {
		switch f.Severity {
		case OK:
			s.OK++
		case Info:
			s.Info++
		case Warn:
			s.Warn++
		case Fail:
			s.Fail++
		}
		w = max(w, f.Severity)
	}
	s.Worst = w.String()
	return s
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "\n")
}
