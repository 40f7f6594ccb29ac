package gather

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/quayctl/quayctl/collectors"
	"github.com/quayctl/quayctl/diag"
	"github.com/quayctl/quayctl/internal/redact"
)

// FactPostgresConf is the database component's postgresql.conf, redacted.
// No check reads it (database/server.json holds the settings that matter);
// support bundles store it because support engineers ask for it.
const FactPostgresConf = "database/postgresql.conf"

// PostgresConfPaths are where postgresql.conf lives: Red Hat's image
// (Quay's documented setup), then the upstream image.
var PostgresConfPaths = []string{
	"/var/lib/pgsql/data/userdata/postgresql.conf",
	"/var/lib/postgresql/data/postgresql.conf",
}

// DefaultLogLimit is the per-log size a bundle keeps (the newest bytes).
const DefaultLogLimit = 50 << 20

// RuleCollector counts values that arrived already redacted: the
// collectors redact environments (and the gatherer its facts) before the
// bundle sees them, so a bundle can only count their markers.
const RuleCollector = "redacted-at-source"

const jsonMarker = `\u003credacted\u003e`

// dbFacts are the database facts, in the order docs/diagnose.md lists them.
var dbFacts = []string{
	diag.FactDBConnection, diag.FactDBFromQuay, diag.FactDBServer, diag.FactDBActivity,
	diag.FactDBLocks, diag.FactDBSizes, diag.FactDBSchema, diag.FactDBBloat, diag.FactDBUsers,
	diag.FactDBMirrors, diag.FactDBPlacement, diag.FactDBDiskFree, FactPostgresConf,
}

// Plan lists every fact of this deployment: the fixed ones, each
// component's logs, previous logs and stats (from components.json), and
// each storage location's probe and sample (from storage/locations.json).
// Facts that will turn out not to apply (no Clair, not OpenShift) are
// listed too, so a bundle records why they are absent. When components or
// locations cannot be gathered, their per-item facts are left out (the
// failure is the fact's own); the error is only the context's.
func (g *Gatherer) Plan(ctx context.Context) ([]string, error) {
	names := []string{diag.FactTarget, diag.FactComponents, diag.FactConfig, diag.FactConfigSource,
		diag.FactClairConfig, diag.FactOpenShiftCR, diag.FactOpenShiftEvt}
	for _, ep := range diag.HealthEndpoints {
		names = append(names, diag.FactHealth(ep))
	}
	names = append(names, dbFacts...)
	names = append(names, diag.FactStorageLocations)
	if cs, err := diag.GetJSON[[]collectors.Component](ctx, g, diag.FactComponents); err == nil {
		var seen []string
		for _, c := range cs {
			if slices.Contains(seen, c.Name) {
				continue
			}
			seen = append(seen, c.Name)
			names = append(names, diag.FactLogs(c.Name, false), diag.FactLogs(c.Name, true), diag.FactStats(c.Name), diag.FactInspect(c.Name))
		}
	}
	if locs, err := diag.GetJSON[[]string](ctx, g, diag.FactStorageLocations); err == nil {
		for _, l := range locs {
			names = append(names, diag.FactStorageProbe(l), diag.FactStorageSample(l))
		}
	}
	return names, ctx.Err()
}

// StreamOptions are a bundle's caps and redaction.
type StreamOptions struct {
	// Redactor redacts logs and config (nil = the default rules); the
	// bundle's --redact patterns live here.
	Redactor *redact.Redactor
	// NoRedact writes logs and config.yaml as the deployment holds them
	// (--no-redact). Facts the collectors redact themselves (environments,
	// connection errors) stay redacted.
	NoRedact bool
	// LogLimit keeps the newest LogLimit bytes of each log (default
	// DefaultLogLimit).
	LogLimit int64
	// LogSince bounds how far back logs go (default the Gatherer's).
	LogSince time.Duration
	// TempDir holds the logs' spool files ("" = the system's).
	TempDir string
}

// StreamResult says what Stream did to a fact.
type StreamResult struct {
	// Redactions counts what was redacted, per rule (never values).
	Redactions redact.Summary
	// DroppedBytes is how much of an older log LogLimit dropped.
	DroppedBytes int64
}

// Stream writes the fact name to w with the bundle's default caps.
func (g *Gatherer) Stream(ctx context.Context, name string, w io.Writer) error {
	_, err := g.StreamWith(ctx, name, w, StreamOptions{})
	return err
}

// StreamWith writes the fact name to w. Logs are streamed from the
// deployment through the redaction into a spool file of at most LogLimit
// bytes, which keeps the newest ones, so memory stays flat however long
// they are; config.yaml is redacted with so's rules; every other fact is
// Get's bytes (memoised, so a later diagnose reuses it). Errors are
// redacted and keep diag's sentinels (ErrNotApplicable …).
func (g *Gatherer) StreamWith(ctx context.Context, name string, w io.Writer, so StreamOptions) (StreamResult, error) {
	if so.Redactor == nil {
		so.Redactor = redact.Default()
	}
	if so.LogLimit <= 0 {
		so.LogLimit = DefaultLogLimit
	}
	if so.LogSince <= 0 {
		so.LogSince = g.opts.LogSince
	}
	parts := strings.Split(name, "/")
	if len(parts) == 3 && parts[0] == "components" && (parts[2] == "logs.txt" || parts[2] == "logs-previous.txt") {
		return g.streamLogs(ctx, parts[1], parts[2] == "logs-previous.txt", w, so)
	}
	switch name {
	case diag.FactConfig:
		return g.streamConfig(ctx, w, so)
	case FactPostgresConf:
		return g.streamPostgresConf(ctx, w, so)
	}
	b, err := g.Get(ctx, name)
	if err != nil {
		return StreamResult{}, err
	}
	res := StreamResult{Redactions: redact.Summary{}}
	// encoding/json writes the marker HTML-escaped; the plain form is the
	// same JSON string and what the redaction recognises.
	b = bytes.ReplaceAll(b, []byte(jsonMarker), []byte(redact.Marker))
	if n := bytes.Count(b, []byte(redact.Marker)); n > 0 {
		res.Redactions[RuleCollector] = n
	}
	if so.Redactor != redact.Default() && !so.NoRedact {
		// Extra rules: the facts already went through the default ones.
		var sum redact.Summary
		b, sum = redactFact(so.Redactor, name, b)
		res.Redactions = res.Redactions.Add(sum)
	}
	_, err = w.Write(b)
	return res, err
}

// redactFact redacts a gathered fact with r: a JSON fact value by value
// (free-text rules would turn a number or boolean into a bare marker and
// break the JSON), anything else as text.
func redactFact(r *redact.Redactor, name string, b []byte) ([]byte, redact.Summary) {
	if strings.HasSuffix(name, ".json") {
		var v any
		if err := json.Unmarshal(b, &v); err == nil {
			red, sum := r.Config(map[string]any{"fact": v})
			var out bytes.Buffer
			if err := writeJSON(&out, red["fact"]); err == nil {
				return bytes.ReplaceAll(out.Bytes(), []byte(jsonMarker), []byte(redact.Marker)), sum
			}
		}
	}
	s, sum := r.String(string(b))
	return []byte(s), sum
}

// logTimeoutFactor: a log for a bundle may be far longer than the tail
// diagnose reads, so it gets more time than other facts.
const logTimeoutFactor = 10

func (g *Gatherer) streamLogs(ctx context.Context, component string, previous bool, w io.Writer, so StreamOptions) (res StreamResult, err error) {
	name := diag.FactLogs(component, previous)
	if g.opts.Progress != nil {
		g.opts.Progress(name, false)
		defer g.opts.Progress(name, true)
	}
	defer func() { err = redactError(err) }()
	ctx, cancel := context.WithTimeout(ctx, g.opts.Timeout*logTimeoutFactor)
	defer cancel()
	c, err := g.component(ctx, component)
	if err != nil {
		return res, err
	}
	if previous && c.Restarts == 0 {
		return res, fmt.Errorf("%s has not restarted, so it has no previous log: %w", component, diag.ErrNotApplicable)
	}
	ring, err := newRingFile(so.TempDir, so.LogLimit)
	if err != nil {
		return res, err
	}
	defer ring.close()
	bw := bufio.NewWriterSize(ring, 64<<10)
	var sink io.Writer = bw
	var rw *redact.LineWriter
	if !so.NoRedact {
		rw = so.Redactor.Writer(bw)
		sink = rw
	}
	opts := collectors.LogOptions{Previous: previous}
	if !previous {
		opts.Since = so.LogSince
	}
	err = notApplicable(g.d.Logs(ctx, component, opts, sink))
	if rw != nil {
		if cerr := rw.Close(); err == nil {
			err = cerr
		}
		res.Redactions = rw.Summary()
	}
	if ferr := bw.Flush(); err == nil {
		err = ferr
	}
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			err = fmt.Errorf("timed out after %s: %w", g.opts.Timeout*logTimeoutFactor, err)
		}
		return res, err
	}
	res.DroppedBytes, err = ring.writeTo(w)
	return res, err
}

func (g *Gatherer) streamConfig(ctx context.Context, w io.Writer, so StreamOptions) (StreamResult, error) {
	if g.opts.Progress != nil {
		g.opts.Progress(diag.FactConfig, false)
		defer g.opts.Progress(diag.FactConfig, true)
	}
	rc := g.rawConfig(ctx)
	if rc.err != nil {
		return StreamResult{}, redactError(rc.err)
	}
	if so.NoRedact {
		_, err := w.Write(rc.bytes)
		return StreamResult{}, err
	}
	red, sum := so.Redactor.Config(rc.values)
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(red); err != nil {
		return StreamResult{}, err
	}
	return StreamResult{Redactions: sum}, enc.Close()
}

func (g *Gatherer) streamPostgresConf(ctx context.Context, w io.Writer, so StreamOptions) (res StreamResult, err error) {
	defer func() { err = redactError(err) }()
	ctx, cancel := context.WithTimeout(ctx, g.opts.Timeout)
	defer cancel()
	if _, err := g.component(ctx, collectors.ComponentDatabase); err != nil {
		return res, err
	}
	var errs []string
	for _, p := range PostgresConfPaths {
		b, err := ReadComponentFile(ctx, g.d, collectors.ComponentDatabase, p, MaxConfigBytes)
		if err != nil {
			if errors.Is(err, collectors.ErrNotSupported) {
				return res, notApplicable(err)
			}
			errs = append(errs, err.Error())
			continue
		}
		if !so.NoRedact {
			s, sum := so.Redactor.String(string(b))
			b, res.Redactions = []byte(s), sum
		}
		_, err = w.Write(b)
		return res, err
	}
	return res, fmt.Errorf("no postgresql.conf at %s (%s) — read it with quayctl db conf --path PATH", strings.Join(PostgresConfPaths, ", "), strings.Join(errs, "; "))
}

// ringFile is a spool file of at most limit bytes that keeps the newest
// ones: writes past the limit wrap around to its start.
type ringFile struct {
	f       *os.File
	limit   int64
	written int64
}

func newRingFile(dir string, limit int64) (*ringFile, error) {
	f, err := os.CreateTemp(dir, "quayctl-log-*.spool")
	if err != nil {
		return nil, fmt.Errorf("cannot create a spool file for the log: %w", err)
	}
	return &ringFile{f: f, limit: limit}, nil
}

func (r *ringFile) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		off := r.written % r.limit
		k := min(int64(len(p)), r.limit-off)
		if _, err := r.f.WriteAt(p[:k], off); err != nil {
			return n - len(p), err
		}
		r.written += k
		p = p[k:]
	}
	return n, nil
}

// writeTo copies the kept bytes, oldest first, to w. When older bytes were
// dropped, the cut-off first line is dropped too and a note says how much
// is missing. It returns the bytes dropped.
func (r *ringFile) writeTo(w io.Writer) (int64, error) {
	if r.written <= r.limit {
		_, err := io.Copy(w, io.NewSectionReader(r.f, 0, r.written))
		return 0, err
	}
	start := r.written % r.limit
	br := bufio.NewReaderSize(io.MultiReader(
		io.NewSectionReader(r.f, start, r.limit-start),
		io.NewSectionReader(r.f, 0, start)), 64<<10)
	dropped := r.written - r.limit
	for {
		line, err := br.ReadSlice('\n')
		dropped += int64(len(line))
		if err == nil || err == io.EOF {
			break
		}
		if err != bufio.ErrBufferFull {
			return dropped, err
		}
	}
	if _, err := fmt.Fprintf(w, "[quayctl: %d older bytes of this log were dropped to keep it under %d bytes; raise --log-limit to keep more]\n", dropped, r.limit); err != nil {
		return dropped, err
	}
	_, err := br.WriteTo(w)
	return dropped, err
}

func (r *ringFile) close() {
	r.f.Close()
	os.Remove(r.f.Name())
}

// IsLogFact reports whether name is a component's log.
func IsLogFact(name string) bool {
	dir, file := path.Split(name)
	return strings.HasPrefix(dir, "components/") && (file == "logs.txt" || file == "logs-previous.txt")
}
