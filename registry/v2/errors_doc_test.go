package v2

import (
	"bytes"
	"flag"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strings"
	"testing"
)

// update is shared by every golden-file test of package v2; define it once.
var update = flag.Bool("update", false, "rewrite generated files (docs/errors.md) from the code")

// errorsDocPath is docs/errors.md, relative to this package's directory.
const errorsDocPath = "../../docs/errors.md"

// errorsDocMarker separates the hand-written introduction of docs/errors.md
// (above, kept as it is) from the table generated here (below).
const errorsDocMarker = "<!-- Generated below this line by TestErrorsDoc (registry/v2/errors_doc_test.go) from v2.RegisteredErrors(). " +
	"Do not edit by hand: change registry/v2/errors.go, then run go test ./registry/v2/ -run TestErrorsDoc -update -->"

// TestErrorsDoc keeps docs/errors.md in sync with the registered error table:
// it renders the table and compares it with the file, or rewrites the part
// below the marker with -update.
func TestErrorsDoc(t *testing.T) {
	codes := RegisteredErrors()
	if len(codes) == 0 {
		t.Fatal("no registered errors")
	}
	for _, c := range codes {
		if c.Value == "" || c.Message == "" || c.Doc == "" || http.StatusText(c.Status) == "" {
			t.Errorf("error %s lacks a code value, message, doc text or valid HTTP status: %+v", c.ID, c)
		}
	}
	generated := errorsDocMarker + "\n\n" + renderErrorsDoc(codes)

	current, err := os.ReadFile(errorsDocPath)
	if err != nil && !(os.IsNotExist(err) && *update) {
		t.Fatalf("%v (run go test ./registry/v2/ -run TestErrorsDoc -update to create it)", err)
	}
	intro, _, found := strings.Cut(string(current), errorsDocMarker)
	switch {
	case current == nil:
		intro = "# OCI error reference\n\n"
	case !found:
		t.Fatalf("%s has no marker line; put this line below the hand-written introduction:\n%s", errorsDocPath, errorsDocMarker)
	}
	want := intro + generated

	if *update {
		if want != string(current) {
			if err := os.WriteFile(errorsDocPath, []byte(want), 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("rewrote %s", errorsDocPath)
		}
		return
	}
	if got := string(current); got != want {
		t.Errorf("%s is out of date with registry/v2/errors.go: run go test ./registry/v2/ -run TestErrorsDoc -update and review the diff\n%s",
			errorsDocPath, firstDifference(got, want))
	}
}

// renderErrorsDoc renders the generated part of docs/errors.md: every entry
// in ID order, then the wire codes with the entries that share each one.
func renderErrorsDoc(codes []ErrorCode) string {
	var b bytes.Buffer
	b.WriteString("## Error table\n\n")
	b.WriteString("| ID | `code` | HTTP status | `message` | when, and what to do |\n")
	b.WriteString("|---|---|---|---|---|\n")
	for _, c := range codes {
		fmt.Fprintf(&b, "| `%s` | `%s` | %d %s | `%s` | %s |\n",
			cell(c.ID), cell(c.Value), c.Status, http.StatusText(c.Status), cell(c.Message), cell(c.Doc))
	}

	b.WriteString("\n## By wire code\n\n")
	b.WriteString("Clients see `code` and the HTTP status, not the ID. Where entries share a code, the status tells them apart.\n\n")
	b.WriteString("| `code` | entries (HTTP status) |\n")
	b.WriteString("|---|---|\n")
	var values []string
	byValue := map[string][]string{}
	for _, c := range codes {
		if _, seen := byValue[c.Value]; !seen {
			values = append(values, c.Value)
		}
		byValue[c.Value] = append(byValue[c.Value], fmt.Sprintf("`%s` (%d)", cell(c.ID), c.Status))
	}
	sort.Strings(values)
	for _, v := range values {
		fmt.Fprintf(&b, "| `%s` | %s |\n", cell(v), strings.Join(byValue[v], ", "))
	}
	return b.String()
}

// cell makes text safe inside a Markdown table cell.
func cell(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	return strings.ReplaceAll(s, "|", `\|`)
}

// firstDifference shows the first line where got and want differ.
func firstDifference(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := 0; i < len(g) || i < len(w); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return fmt.Sprintf("line %d:\n  file:      %q\n  generated: %q", i+1, gl, wl)
		}
	}
	return ""
}
