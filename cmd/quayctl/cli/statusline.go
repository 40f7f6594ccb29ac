package cli

import (
	"fmt"
	"io"
	"strings"
	"sync"
)

// statusLine is the one-line progress display of long commands (diagnose,
// support-bundle) on a terminal: each show replaces the line; a note
// prints on its own line either way; clear leaves the terminal clean.
type statusLine struct {
	mu    sync.Mutex
	w     io.Writer
	live  bool // a terminal: draw the line; otherwise only notes print
	shown bool
}

// show replaces the line with s (cut to 78 columns). Callers hold mu.
func (p *statusLine) show(s string) {
	if !p.live {
		return
	}
	if r := []rune(s); len(r) > 78 {
		s = string(r[:77]) + "…"
	}
	fmt.Fprintf(p.w, "\r\033[K%s", s)
	p.shown = true
}

func (p *statusLine) note(msg string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shown {
		fmt.Fprint(p.w, "\r\033[K")
	}
	fmt.Fprintln(p.w, strings.TrimSpace(msg))
}

func (p *statusLine) clear() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shown {
		fmt.Fprint(p.w, "\r\033[K")
		p.shown = false
	}
}
