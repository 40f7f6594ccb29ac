package checks

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"regexp"
	"regexp/syntax"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/quayctl/quayctl/collectors"
	"github.com/quayctl/quayctl/diag"
)

// Known error signatures in the components' recent logs. The signatures
// live in one data file, signatures.yaml, so adding one is a data change
// (with a sample log under testdata/logs/<id>.txt, which the tests
// require). Each signature is a check of its own ("logs.<id>"), so
// --only/--skip can name it; logs.scan reports what was scanned and the
// logs that could not be read.

//go:embed signatures.yaml
var logsSignaturesYAML []byte

// logsSignature is one entry of signatures.yaml.
type logsSignature struct {
	ID string `yaml:"id"`
	// Components it applies to; empty = every component.
	Components []string `yaml:"components"`
	// Regexp matches one log line (RE2 syntax).
	Regexp string `yaml:"regexp"`
	// Exclude, when set, drops lines it also matches: lines a more
	// specific signature reports.
	Exclude  string `yaml:"exclude"`
	Severity string `yaml:"severity"` // info, warn or fail
	Title    string `yaml:"title"`    // what the lines mean, lower case
	Remedy   string `yaml:"remedy"`   // what to do, naming a quayctl command
	Doc      string `yaml:"doc"`      // anchor in docs/diagnose.md

	re, exclude *regexp.Regexp
	sev         diag.Severity
	// required are literals one of which every matching line holds: a
	// cheap test that spares the regexp most lines (nil = none known).
	required [][]byte
}

var logsIDPattern = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)

// logsParseSignatures reads and validates a signatures file.
func logsParseSignatures(b []byte) ([]logsSignature, error) {
	var sigs []logsSignature
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&sigs); err != nil {
		return nil, fmt.Errorf("signatures.yaml: %w", err)
	}
	seen := map[string]bool{}
	for i := range sigs {
		s := &sigs[i]
		where := fmt.Sprintf("signatures.yaml entry %d (%s)", i+1, s.ID)
		switch {
		case !logsIDPattern.MatchString(s.ID):
			return nil, fmt.Errorf("%s: id must be lower-case words joined by dashes", where)
		case seen[s.ID]:
			return nil, fmt.Errorf("%s: duplicate id", where)
		case s.Title == "" || s.Remedy == "" || s.Doc == "" || s.Regexp == "":
			return nil, fmt.Errorf("%s: regexp, title, remedy and doc are required", where)
		case !strings.Contains(s.Remedy, "quayctl "):
			return nil, fmt.Errorf("%s: the remedy must name a quayctl command", where)
		}
		seen[s.ID] = true
		if err := s.sev.UnmarshalText([]byte(s.Severity)); err != nil || s.sev == diag.OK {
			return nil, fmt.Errorf("%s: severity %q: want info, warn or fail", where, s.Severity)
		}
		var err error
		if s.re, err = regexp.Compile(s.Regexp); err != nil {
			return nil, fmt.Errorf("%s: regexp: %w", where, err)
		}
		s.required = logsRequiredLiterals(s.Regexp)
		if s.Exclude != "" {
			if s.exclude, err = regexp.Compile(s.Exclude); err != nil {
				return nil, fmt.Errorf("%s: exclude: %w", where, err)
			}
		}
	}
	return sigs, nil
}

// logsSignatures are the embedded signatures; a broken file is a bug that
// every test of the package catches.
var logsSignatures = func() []logsSignature {
	sigs, err := logsParseSignatures(logsSignaturesYAML)
	if err != nil {
		panic(err)
	}
	return sigs
}()

// appliesTo reports whether the signature is looked for in component's log.
func (s *logsSignature) appliesTo(component string) bool {
	return len(s.Components) == 0 || slices.Contains(s.Components, component)
}

// matches reports whether one log line carries the signature.
func (s *logsSignature) matches(line []byte) bool {
	if s.required != nil && !slices.ContainsFunc(s.required, func(lit []byte) bool { return bytes.Contains(line, lit) }) {
		return false
	}
	return s.re.Match(line) && (s.exclude == nil || !s.exclude.Match(line))
}

// logsRequiredLiterals works out literals one of which any match of expr
// must contain, or nil when it cannot tell. Go's regexp has no DFA, so a
// few dozen signatures over thousands of lines cost seconds; a substring
// search first makes them cost milliseconds.
func logsRequiredLiterals(expr string) [][]byte {
	re, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return nil
	}
	var out [][]byte
	for _, l := range logsLiterals(re.Simplify()) {
		out = append(out, []byte(l))
	}
	return out
}

// logsLiterals returns strings one of which every match of re contains
// (nil = unknown).
func logsLiterals(re *syntax.Regexp) []string {
	switch re.Op {
	case syntax.OpLiteral:
		if re.Flags&syntax.FoldCase != 0 || len(re.Rune) == 0 {
			return nil
		}
		return []string{string(re.Rune)}
	case syntax.OpCapture, syntax.OpPlus:
		return logsLiterals(re.Sub[0])
	case syntax.OpRepeat:
		if re.Min >= 1 {
			return logsLiterals(re.Sub[0])
		}
	case syntax.OpConcat:
		// Any one part's literals will do: take the part whose shortest
		// literal is longest.
		var best []string
		bestLen := 0
		for _, sub := range re.Sub {
			lits := logsLiterals(sub)
			if lits == nil {
				continue
			}
			shortest := len(lits[0])
			for _, l := range lits {
				shortest = min(shortest, len(l))
			}
			if shortest > bestLen {
				best, bestLen = lits, shortest
			}
		}
		return best
	case syntax.OpAlternate:
		var out []string
		for _, sub := range re.Sub {
			lits := logsLiterals(sub)
			if lits == nil {
				return nil
			}
			out = append(out, lits...)
		}
		return out
	}
	return nil
}

var logsScan = diag.Check{ID: "logs.scan", Area: AreaLogs,
	Title: "every component's recent log (and the log before its last restart) scanned for known error signatures",
	Doc:   doc("logs-scan")}

var logChecks = logsBuildChecks(logsSignatures)

func logsBuildChecks(sigs []logsSignature) []diag.Check {
	out := []diag.Check{logsScan.With(checkLogsScan)}
	for i := range sigs {
		s := &sigs[i]
		c := diag.Check{ID: "logs." + s.ID, Area: AreaLogs, Title: "log lines: " + s.Title, Doc: doc(s.Doc)}
		out = append(out, c.With(func(ctx context.Context, f diag.Facts) []diag.Finding {
			return logsSignatureFindings(ctx, f, c, s)
		}))
	}
	return out
}

// logsFile is one log fact of a component.
type logsFile struct {
	name     string // the fact's name
	previous bool
	lines    [][]byte
}

// logsComponent is what was read of one component's logs.
type logsComponent struct {
	name  string
	files []logsFile
	// problems are the findings of logs that could not be read.
	problems []diag.Finding
}

// lineCount is the number of lines read, all files.
func (lc logsComponent) lineCount() int {
	n := 0
	for _, f := range lc.files {
		n += len(f.lines)
	}
	return n
}

// logsComponents reads the current and previous logs of every component in
// components.json (each name once). A log that does not apply (a direct
// target, no restart yet) is skipped; one that failed becomes a finding of
// c. ok is false when components.json itself could not be read
// (containers.running reports that).
func logsComponents(ctx context.Context, f diag.Facts, c diag.Check) ([]logsComponent, bool) {
	cs, err := diag.GetJSON[[]collectors.Component](ctx, f, diag.FactComponents)
	if err != nil {
		return nil, false
	}
	var out []logsComponent
	seen := map[string]bool{}
	for _, x := range cs {
		if seen[x.Name] || strings.EqualFold(x.State, containersStateExternal) {
			continue
		}
		seen[x.Name] = true
		lc := logsComponent{name: x.Name}
		for _, previous := range []bool{false, true} {
			name := diag.FactLogs(x.Name, previous)
			b, err := f.Get(ctx, name)
			if err != nil {
				if errors.Is(err, diag.ErrNotApplicable) || errors.Is(err, diag.ErrOffline) {
					continue
				}
				fe := c.FactError(name, err)
				fe.Subject = x.Name
				fe.Remedy = fmt.Sprintf("read it by hand with quayctl logs %s", x.Name)
				if previous {
					// The current log matters more; a missing previous one
					// only hides why the last instance stopped.
					fe.Severity = diag.Info
					fe.Remedy += " --previous"
				}
				lc.problems = append(lc.problems, fe)
				continue
			}
			lc.files = append(lc.files, logsFile{name: name, previous: previous, lines: logsLines(b)})
		}
		out = append(out, lc)
	}
	return out, true
}

// logsLines splits a log into lines, without the final empty one.
func logsLines(b []byte) [][]byte {
	b = bytes.TrimRight(b, "\n")
	if len(b) == 0 {
		return nil
	}
	lines := bytes.Split(b, []byte("\n"))
	for i, l := range lines {
		lines[i] = bytes.TrimSuffix(l, []byte("\r"))
	}
	return lines
}

// logsMaxEvidence bounds the lines a finding quotes; logsMaxLine the
// length of each.
const (
	logsMaxEvidence = 5
	logsMaxLine     = 400
)

// logsMatches are a signature's matches in one component's logs.
type logsMatches struct {
	perFile map[string]int // fact name → lines
	total   int
	last    []string // the last logsMaxEvidence lines, oldest first
}

// logsFind looks for s in lc's logs. The previous log is older, so its
// lines come first. podman's previous log is the container's log up to its
// last start, which the current log may repeat: a line of the previous log
// that the current log also holds is counted once.
func logsFind(s *logsSignature, lc logsComponent) logsMatches {
	m := logsMatches{perFile: map[string]int{}}
	if !s.appliesTo(lc.name) {
		return m
	}
	type hit struct {
		file string
		line []byte
	}
	var cur, prev []hit
	inCurrent := map[string]bool{}
	for _, file := range lc.files {
		if file.previous {
			continue
		}
		for _, l := range file.lines {
			if s.matches(l) {
				cur = append(cur, hit{file.name, l})
				inCurrent[string(l)] = true
			}
		}
	}
	for _, file := range lc.files {
		if !file.previous {
			continue
		}
		for _, l := range file.lines {
			if s.matches(l) && !inCurrent[string(l)] {
				prev = append(prev, hit{file.name, l})
			}
		}
	}
	all := append(prev, cur...)
	for i, h := range all {
		m.perFile[h.file]++
		m.total++
		if i < len(all)-logsMaxEvidence {
			continue
		}
		line := logsShorten(string(h.line))
		if i < len(prev) {
			line = "[previous] " + line
		}
		m.last = append(m.last, line)
	}
	return m
}

func logsShorten(s string) string {
	s = strings.TrimSpace(s)
	if len(s) <= logsMaxLine {
		return s
	}
	cut := logsMaxLine
	for cut > 0 && !utf8RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// utf8RuneStart reports whether b starts a UTF-8 sequence (so a cut there
// keeps the text valid).
func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }

// logsSignatureFindings reports signature s in every component's logs:
// one finding per component with matches. Logs that cannot be read are
// logs.scan's to report.
func logsSignatureFindings(ctx context.Context, f diag.Facts, c diag.Check, s *logsSignature) []diag.Finding {
	lcs, ok := logsComponents(ctx, f, c)
	if !ok {
		return nil
	}
	var out []diag.Finding
	for _, lc := range lcs {
		m := logsFind(s, lc)
		if m.total == 0 {
			continue
		}
		fd := c.Finding(s.sev, fmt.Sprintf("%s: %s (%d log %s)", lc.name, s.Title, m.total, logsPlural(m.total, "line")))
		fd.Subject = lc.name
		var where []string
		for _, file := range lc.files {
			if n := m.perFile[file.name]; n > 0 {
				where = append(where, fmt.Sprintf("%d in %s", n, file.name))
			}
		}
		head := fmt.Sprintf("%d matching %s (%s) of %d scanned", m.total, logsPlural(m.total, "line"), strings.Join(where, ", "), lc.lineCount())
		if m.total > len(m.last) {
			head += fmt.Sprintf("; the last %d:", len(m.last))
		}
		fd.Evidence = append([]string{head}, m.last...)
		fd.Remedy = strings.ReplaceAll(strings.TrimSpace(s.Remedy), "COMPONENT", lc.name)
		out = append(out, fd)
	}
	return out
}

// logsPlural is word, or its plural for n other than 1 (word+"s" unless
// given).
func logsPlural(n int, word string, plural ...string) string {
	switch {
	case n == 1:
		return word
	case len(plural) > 0:
		return plural[0]
	}
	return word + "s"
}

// checkLogsScan says, per component, how much was scanned and that no
// signature matched, or why a log could not be read.
func checkLogsScan(ctx context.Context, f diag.Facts) []diag.Finding {
	c := logsScan
	lcs, ok := logsComponents(ctx, f, c)
	if !ok {
		return nil
	}
	var out []diag.Finding
	for _, lc := range lcs {
		out = append(out, lc.problems...)
		if len(lc.files) == 0 {
			continue
		}
		var hits []string
		for i := range logsSignatures {
			if logsFind(&logsSignatures[i], lc).total > 0 {
				hits = append(hits, logsSignatures[i].ID)
			}
		}
		if len(hits) > 0 {
			continue // the signatures' own findings say it
		}
		n := lc.lineCount()
		fd := c.Finding(diag.OK, fmt.Sprintf("%s: no known error signatures in %d log %s", lc.name, n, logsPlural(n, "line")))
		fd.Subject = lc.name
		for _, file := range lc.files {
			fd.Evidence = append(fd.Evidence, fmt.Sprintf("%s: %d %s", file.name, len(file.lines), logsPlural(len(file.lines), "line")))
		}
		out = append(out, fd)
	}
	return out
}
