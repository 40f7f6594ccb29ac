package diag

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/charmbracelet/lipgloss"
)

// TextOptions shape the human report.
type TextOptions struct {
	TTY     bool // colours and bold (lipgloss decides what the terminal supports)
	Verbose bool // evidence of ok and info findings too
}

// WriteText renders the report for people: areas ordered worst first, each
// with its findings worst first; failures and warnings with their evidence,
// remedy and doc link; then a one-line summary.
func WriteText(w io.Writer, r Report, o TextOptions) error {
	st := newStyles(w, o.TTY)
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n", st.bold.Render(fmt.Sprintf("quayctl diagnose: %s %s", r.Target.Kind, r.Target.Name)))
	for _, area := range orderedAreas(r) {
		fs := findingsOf(r, area)
		if len(fs) == 0 {
			continue
		}
		fmt.Fprintf(&b, "\n%s\n", st.bold.Render(strings.ToUpper(area)))
		for _, f := range fs {
			label := st.severity(f.Severity)
			fmt.Fprintf(&b, "  %s %s\n", label, f.Title)
			if f.Severity < Warn && !o.Verbose {
				continue
			}
			for _, e := range f.Evidence {
				for i, line := range strings.Split(e, "\n") {
					lead := "│ "
					if i > 0 {
						lead = "│   "
					}
					fmt.Fprintf(&b, "       %s%s\n", st.dim.Render(lead), line)
				}
			}
			if f.Remedy != "" {
				fmt.Fprintf(&b, "       %s %s\n", st.bold.Render("fix:"), f.Remedy)
			}
			if f.Doc != "" && f.Severity >= Warn {
				fmt.Fprintf(&b, "       %s %s (%s)\n", st.dim.Render("doc:"), f.Doc, f.ID)
			}
		}
	}
	fmt.Fprintf(&b, "\n%s\n", SummaryLine(r))
	_, err := io.WriteString(w, b.String())
	return err
}

// SummaryLine is the report in one line: "2 failures, 1 warning, 3 info,
// 14 ok in 1.2s — exit 2".
func SummaryLine(r Report) string {
	s := r.Summary
	d := r.Finished.Sub(r.Started).Round(100 * time.Millisecond)
	return fmt.Sprintf("%d %s, %d %s, %d info, %d ok in %s — exit %d",
		s.Fail, plural(s.Fail, "failure", "failures"), s.Warn, plural(s.Warn, "warning", "warnings"),
		s.Info, s.OK, d, r.ExitCode())
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// orderedAreas sorts the report's areas by their worst finding, keeping the
// check order among equals.
func orderedAreas(r Report) []string {
	areas := slices.Clone(r.Areas)
	for _, f := range r.Findings {
		if !slices.Contains(areas, f.Area) {
			areas = append(areas, f.Area)
		}
	}
	worst := map[string]Severity{}
	for _, f := range r.Findings {
		worst[f.Area] = max(worst[f.Area], f.Severity)
	}
	slices.SortStableFunc(areas, func(a, b string) int { return int(worst[b]) - int(worst[a]) })
	return areas
}

func findingsOf(r Report, area string) []Finding {
	var out []Finding
	for _, f := range r.Findings {
		if f.Area == area {
			out = append(out, f)
		}
	}
	return out // already worst first (Run sorts)
}

type styles struct {
	bold, dim              lipgloss.Style
	ok, info, warn, failed lipgloss.Style
}

func newStyles(w io.Writer, tty bool) styles {
	if !tty {
		plain := lipgloss.NewStyle()
		return styles{plain, plain, plain, plain, plain, plain}
	}
	re := lipgloss.NewRenderer(w)
	return styles{
		bold:   re.NewStyle().Bold(true),
		dim:    re.NewStyle().Faint(true),
		ok:     re.NewStyle().Foreground(lipgloss.Color("2")),
		info:   re.NewStyle().Foreground(lipgloss.Color("6")),
		warn:   re.NewStyle().Foreground(lipgloss.Color("3")).Bold(true),
		failed: re.NewStyle().Foreground(lipgloss.Color("1")).Bold(true),
	}
}

// severity is the fixed-width label of a finding: "FAIL", "WARN", "info", " ok ".
func (s styles) severity(sev Severity) string {
	switch sev {
	case Fail:
		return s.failed.Render("FAIL")
	case Warn:
		return s.warn.Render("WARN")
	case Info:
		return s.info.Render("info")
	}
	return s.ok.Render(" ok ")
}
