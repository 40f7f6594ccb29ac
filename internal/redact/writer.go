package redact

import (
	"bytes"
	"errors"
	"io"
	"sync"
)

// MaxLineBytes bounds a Writer's buffer. A longer line is redacted in
// pieces, cut at a space, tab, comma or semicolon near the limit when there
// is one: a secret that straddles a cut (possible only in a line longer than
// this with no separator near the cut) may survive in part.
const MaxLineBytes = 256 << 10

// LineWriter redacts a stream line by line (see Writer).
type LineWriter struct {
	r      *Redactor
	w      io.Writer
	mu     sync.Mutex
	buf    []byte
	st     lineState
	sum    Summary
	max    int
	err    error
	closed bool
	// midLine: the last write did not end a line.
	midLine bool
}

// Writer returns a WriteCloser that redacts what is written to it with the
// default rules, line by line, and writes the result to w. Memory is bounded
// by MaxLineBytes whatever the stream's length. Close writes a final line
// that has no newline; it does not close w. It is safe for concurrent
// writers (whole lines stay whole only if each Write holds whole lines).
func Writer(w io.Writer) *LineWriter { return defaultRedactor.Writer(w) }

// Writer is the package-level Writer with r's rules.
func (r *Redactor) Writer(w io.Writer) *LineWriter {
	return &LineWriter{r: r, w: w, sum: Summary{}, max: MaxLineBytes}
}

var errClosed = errors.New("redact: write after Close")

// Write buffers p and writes every complete line, redacted.
func (lw *LineWriter) Write(p []byte) (int, error) {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	if lw.closed {
		return 0, errClosed
	}
	if lw.err != nil {
		return 0, lw.err
	}
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		seg := p
		if i >= 0 {
			seg = p[:i]
		}
		if room := lw.max - len(lw.buf); len(seg) > room {
			// Too long for one line: fill the buffer and cut it.
			lw.buf = append(lw.buf, seg[:room]...)
			p = p[room:]
			cut := cutPoint(lw.buf)
			if err := lw.emit(string(lw.buf[:cut]), false); err != nil {
				return 0, err
			}
			lw.buf = lw.buf[:copy(lw.buf, lw.buf[cut:])]
			continue
		}
		lw.buf = append(lw.buf, seg...)
		if i < 0 {
			break
		}
		p = p[i+1:]
		if err := lw.emit(string(lw.buf), true); err != nil {
			return 0, err
		}
		lw.buf = lw.buf[:0]
	}
	return n, nil
}

// cutPoint is where to split an over-long line: after the last separator in
// its final 4 KiB, else at the limit.
func cutPoint(b []byte) int {
	from := max(0, len(b)-4096)
	if i := bytes.LastIndexAny(b[from:], " \t,;"); i >= 0 {
		return from + i + 1
	}
	return len(b)
}

func (lw *LineWriter) emit(line string, nl bool) error {
	out, keep := lw.r.line(&lw.st, line, lw.sum)
	if !keep {
		return nil
	}
	if nl {
		out += "\n"
	}
	if _, err := io.WriteString(lw.w, out); err != nil {
		lw.err = err
		return err
	}
	if out != "" {
		lw.midLine = !nl
	}
	return nil
}

// Close writes the last line if it had no newline. An unterminated PEM
// block stays redacted.
func (lw *LineWriter) Close() error {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	if lw.closed {
		return lw.err
	}
	lw.closed = true
	if lw.err == nil && len(lw.buf) > 0 {
		_ = lw.emit(string(lw.buf), false)
		lw.buf = nil
	}
	if lw.err == nil && lw.st.inPEM {
		if lw.st.pemBody {
			lw.sum.inc(RulePEM)
		}
		tail := Marker + "\n"
		if lw.midLine {
			tail = "\n" + tail
		}
		_, lw.err = io.WriteString(lw.w, tail)
	}
	return lw.err
}

// Summary is what was redacted so far.
func (lw *LineWriter) Summary() Summary {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	return Summary{}.Add(lw.sum)
}
