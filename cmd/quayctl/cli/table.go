package cli

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/lipgloss/table"
	"github.com/charmbracelet/x/term"
)

// tone colours a cell on a terminal: good (green), bad (red), warn (yellow)
// or none.
type tone int

const (
	toneNone tone = iota
	toneGood
	toneBad
	toneWarn
	toneDim
)

// textTable is the one table renderer of the toolkit commands: a lipgloss
// table on a terminal (colours only where the terminal supports them, so
// none in tests and with NO_COLOR), tab-separated plain text when piped,
// one line per row with the header first, for cut and awk.
type textTable struct {
	headers []string
	rows    [][]string
	tones   [][]tone
	// toneOf, if set, colours cells by value (states, true/false).
	toneOf func(col int, value string) tone
	// width bounds the styled table (0: the terminal's width, if known);
	// a wider table wraps its cells.
	width int
}

func newTable(headers ...string) *textTable { return &textTable{headers: headers} }

// row adds a row; missing cells are empty, empty cells print as "-" on a
// terminal.
func (t *textTable) row(cells ...string) {
	r := make([]string, len(t.headers))
	copy(r, cells)
	t.rows = append(t.rows, r)
	t.tones = append(t.tones, make([]tone, len(t.headers)))
}

// tone sets the colour of the last row's cell col.
func (t *textTable) tone(col int, tn tone) {
	if len(t.tones) > 0 && col < len(t.headers) {
		t.tones[len(t.tones)-1][col] = tn
	}
}

func (t *textTable) render(w io.Writer, tty bool) error {
	if !tty {
		var b strings.Builder
		b.WriteString(strings.Join(t.headers, "\t"))
		b.WriteByte('\n')
		for _, r := range t.rows {
			for i, c := range r {
				if i > 0 {
					b.WriteByte('\t')
				}
				// Keep one row per line whatever the cell holds.
				b.WriteString(strings.NewReplacer("\t", " ", "\n", " ").Replace(c))
			}
			b.WriteByte('\n')
		}
		_, err := io.WriteString(w, b.String())
		return err
	}
	re := lipgloss.NewRenderer(w)
	base := re.NewStyle().Padding(0, 1)
	header := base.Bold(true)
	colours := map[tone]lipgloss.Style{
		toneGood: base.Foreground(lipgloss.Color("2")),
		toneBad:  base.Foreground(lipgloss.Color("1")).Bold(true),
		toneWarn: base.Foreground(lipgloss.Color("3")),
		toneDim:  base.Faint(true),
	}
	rows := make([][]string, len(t.rows))
	for i, r := range t.rows {
		rows[i] = make([]string, len(r))
		for j, c := range r {
			if c == "" {
				c = "-"
			}
			rows[i][j] = c
		}
	}
	tb := table.New().
		Border(lipgloss.RoundedBorder()).
		BorderStyle(re.NewStyle().Faint(true)).
		Headers(t.headers...).
		Rows(rows...).
		StyleFunc(func(row, col int) lipgloss.Style {
			if row == table.HeaderRow {
				return header
			}
			if row < 0 || row >= len(t.rows) || col >= len(t.headers) {
				return base
			}
			tn := t.tones[row][col]
			if tn == toneNone && t.toneOf != nil {
				tn = t.toneOf(col, t.rows[row][col])
			}
			if s, ok := colours[tn]; ok {
				return s
			}
			return base
		})
	out := tb.Render()
	limit := t.width
	if limit == 0 {
		limit = termWidth(w)
	}
	if limit > 20 && lipgloss.Width(out) > limit {
		out = tb.Width(limit).Wrap(true).Render()
	}
	_, err := fmt.Fprintln(w, out)
	return err
}

// termWidth is the width of the terminal w writes to, or 0.
func termWidth(w io.Writer) int {
	f, ok := w.(*os.File)
	if !ok {
		return 0
	}
	width, _, err := term.GetSize(f.Fd())
	if err != nil {
		return 0
	}
	return width
}

// stateTone colours component states and health values.
func stateTone(v string) tone {
	switch strings.ToLower(v) {
	case "running", "true", "healthy", "ok", "yes", "available":
		return toneGood
	case "external", "unknown", "":
		return toneDim
	case "exited", "dead", "false", "unhealthy", "crashloopbackoff", "oomkilled", "error", "failed",
		"imagepullbackoff", "errimagepull", "createcontainerconfigerror", "no":
		return toneBad
	case "created", "paused", "pending", "restarting", "stopping", "containercreating", "terminating", "warning":
		return toneWarn
	}
	return toneNone
}

// heading writes a section title: bold on a terminal, plain otherwise.
func heading(w io.Writer, tty bool, s string) error {
	if tty {
		s = lipgloss.NewRenderer(w).NewStyle().Bold(true).Render(s)
	}
	_, err := fmt.Fprintln(w, s)
	return err
}
