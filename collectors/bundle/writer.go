package bundle

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quayctl/quayctl/collectors/gather"
	"github.com/quayctl/quayctl/diag"
	"github.com/quayctl/quayctl/internal/redact"
	"github.com/quayctl/quayctl/internal/version"
)

// CollectOptions tune Collect.
type CollectOptions struct {
	// Path is the archive to write. It appears only when complete.
	Path string
	// Stream holds the caps and redaction (TempDir is Collect's own).
	Stream gather.StreamOptions
	// RedactRules are the --redact patterns, recorded in the manifest
	// (Stream.Redactor applies them).
	RedactRules []string
	// Checks are diagnose's checks, run over the collected facts.
	Checks []diag.Check
	// Parallel bounds the facts gathered at once (default 4).
	Parallel int
	// Now is the clock (tests fix it).
	Now func() time.Time
	// Progress hears what is being collected and the bytes written.
	Progress func(Progress)
}

// Phases of a collection, as Progress reports them.
const (
	PhaseCollect  = "collecting"
	PhaseDiagnose = "diagnosing"
	PhaseArchive  = "writing"
)

// Progress is one step of a collection.
type Progress struct {
	Phase       string
	Fact        string // the fact just finished (collecting)
	Done, Total int
	// Bytes is what has been spooled (collecting) or written to the
	// archive, compressed (writing).
	Bytes int64
}

// Result is a written bundle.
type Result struct {
	Path     string
	Size     int64
	SHA256   string
	Manifest Manifest
	Report   diag.Report
}

// Collect gathers every fact g plans into a bundle at opts.Path, runs
// opts.Checks over them, and returns what it wrote. A fact that cannot be
// gathered is recorded (NAME.error and the manifest) and the bundle still
// completes; only a cancelled context or a disk error stops it, and then
// nothing is left behind.
func Collect(ctx context.Context, g *gather.Gatherer, opts CollectOptions) (Result, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Parallel <= 0 {
		opts.Parallel = 4
	}
	if opts.Progress == nil {
		opts.Progress = func(Progress) {}
	}
	if opts.Stream.LogLimit <= 0 {
		opts.Stream.LogLimit = gather.DefaultLogLimit
	}
	dir := filepath.Dir(opts.Path)
	spool, err := os.MkdirTemp(dir, ".quayctl-bundle-*")
	if err != nil {
		return Result{}, fmt.Errorf("cannot create a work directory next to %s: %w", opts.Path, err)
	}
	defer os.RemoveAll(spool)
	opts.Stream.TempDir = spool

	d := g.Deployment()
	m := Manifest{Format: FormatVersion, QuayctlVersion: version.Version, Created: opts.Now().UTC(),
		Target: diag.Target{Kind: d.Kind(), Name: d.Name()},
		Options: Options{Since: opts.Stream.LogSince.String(), LogLimitBytes: opts.Stream.LogLimit,
			NoRedact: opts.Stream.NoRedact, RedactRules: opts.RedactRules},
		Redaction: redact.Summary{}}

	names, err := g.Plan(ctx)
	if err != nil {
		return Result{}, err
	}
	m.Files = make([]File, len(names))
	var spooled atomic.Int64
	var done atomic.Int32
	sem := make(chan struct{}, opts.Parallel)
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			m.Files[i] = spoolFact(ctx, g, spool, name, opts.Stream, &spooled)
			opts.Progress(Progress{Phase: PhaseCollect, Fact: name, Done: int(done.Add(1)), Total: len(names), Bytes: spooled.Load()})
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	for _, f := range m.Files {
		if f.Status == "" { // the spool itself failed
			return Result{}, errors.New(f.Error)
		}
		m.Redaction = m.Redaction.Add(f.Redactions)
	}

	opts.Progress(Progress{Phase: PhaseDiagnose, Total: len(opts.Checks)})
	rep := diag.Run(ctx, DirFacts(spool), m.Target, opts.Checks, diag.Options{Now: opts.Now})
	m.Summary = rep.Summary
	for _, out := range []struct {
		name  string
		write func(io.Writer) error
	}{
		{FindingsName, func(w io.Writer) error { return writeJSON(w, rep) }},
		{ReportName, func(w io.Writer) error { return diag.WriteText(w, rep, diag.TextOptions{Verbose: true}) }},
	} {
		f, err := spoolFile(spool, out.name, func(w io.Writer) (gather.StreamResult, error) { return gather.StreamResult{}, out.write(w) })
		if err != nil {
			return Result{}, err
		}
		m.Files = append(m.Files, f)
	}

	res, err := writeArchive(ctx, spool, opts.Path, m, opts.Progress)
	if err != nil {
		return Result{}, err
	}
	res.Manifest, res.Report = m, rep
	return res, nil
}

// spoolFact streams one fact into the spool directory; a failure becomes
// NAME.error. A File with no Status means the spool itself failed.
func spoolFact(ctx context.Context, g *gather.Gatherer, spool, name string, so gather.StreamOptions, spooled *atomic.Int64) File {
	start := time.Now()
	var gatherErr error
	f, err := spoolFile(spool, name, func(w io.Writer) (gather.StreamResult, error) {
		res, err := g.StreamWith(ctx, name, countWriter{w, spooled}, so)
		gatherErr = err
		return res, err
	})
	if gatherErr == nil && err != nil {
		return File{Fact: name, Error: err.Error()}
	}
	if gatherErr != nil {
		msg, _ := redact.String(gatherErr.Error())
		f, err = spoolFile(spool, name+ErrorSuffix, func(w io.Writer) (gather.StreamResult, error) {
			_, err := io.WriteString(w, msg+"\n")
			return gather.StreamResult{}, err
		})
		if err != nil {
			return File{Fact: name, Error: err.Error()}
		}
		f.Fact, f.Error, f.Status = name, msg, StatusFailed
		if errors.Is(gatherErr, diag.ErrNotApplicable) {
			f.Status = StatusNotApplicable
		}
	}
	f.ElapsedMS = float64(time.Since(start).Microseconds()) / 1000
	return f
}

// spoolFile writes one entry of the spool through fill, hashing it. On a
// fill error the entry is removed and the error returned.
func spoolFile(spool, name string, fill func(io.Writer) (gather.StreamResult, error)) (File, error) {
	p, err := localPath(spool, name)
	if err != nil {
		return File{}, err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return File{}, fmt.Errorf("cannot write %s to the work directory: %w", name, err)
	}
	out, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return File{}, fmt.Errorf("cannot write %s to the work directory: %w", name, err)
	}
	h := sha256.New()
	bw := bufio.NewWriterSize(out, 64<<10)
	cw := &hashWriter{w: bw, h: h}
	res, err := fill(cw)
	if ferr := bw.Flush(); err == nil && ferr != nil {
		err = fmt.Errorf("cannot write %s to the work directory: %w", name, ferr)
	}
	if cerr := out.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("cannot write %s to the work directory: %w", name, cerr)
	}
	if err != nil {
		os.Remove(p)
		return File{}, err
	}
	f := File{Fact: name, Path: name, Status: StatusOK, Size: cw.n, SHA256: hex.EncodeToString(h.Sum(nil)),
		DroppedBytes: res.DroppedBytes}
	if res.Redactions.Total() > 0 {
		f.Redactions = res.Redactions
	}
	return f, nil
}

// writeArchive writes manifest.json, then every file in m, as a tar.gz to
// a temporary file next to path, and renames it to path when complete.
func writeArchive(ctx context.Context, spool, path string, m Manifest, progress func(Progress)) (Result, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.part")
	if err != nil {
		return Result{}, fmt.Errorf("cannot create %s: %w", path, err)
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	h := sha256.New()
	var written atomic.Int64
	hw := &hashWriter{w: countWriter{tmp, &written}, h: h}
	gz := gzip.NewWriter(hw)
	tw := tar.NewWriter(gz)
	manifest, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return Result{}, err
	}
	manifest = append(manifest, '\n')
	entry := func(name string, size int64, r io.Reader) error {
		hdr := &tar.Header{Name: name, Mode: 0o644, Size: size, ModTime: m.Created, Typeflag: tar.TypeReg, Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		_, err := io.Copy(tw, r)
		return err
	}
	if err := entry(ManifestName, int64(len(manifest)), strings.NewReader(string(manifest))); err != nil {
		return Result{}, fmt.Errorf("cannot write %s: %w", path, err)
	}
	for i, f := range m.Files {
		if err := ctx.Err(); err != nil {
			return Result{}, err
		}
		p, err := localPath(spool, f.Path)
		if err != nil {
			return Result{}, err
		}
		in, err := os.Open(p)
		if err != nil {
			return Result{}, fmt.Errorf("cannot read back %s: %w", f.Path, err)
		}
		err = entry(f.Path, f.Size, in)
		in.Close()
		if err != nil {
			return Result{}, fmt.Errorf("cannot write %s to %s: %w", f.Path, path, err)
		}
		progress(Progress{Phase: PhaseArchive, Fact: f.Path, Done: i + 1, Total: len(m.Files), Bytes: written.Load()})
	}
	if err := tw.Close(); err != nil {
		return Result{}, fmt.Errorf("cannot write %s: %w", path, err)
	}
	if err := gz.Close(); err != nil {
		return Result{}, fmt.Errorf("cannot write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		return Result{}, fmt.Errorf("cannot write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return Result{}, fmt.Errorf("cannot write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return Result{}, fmt.Errorf("cannot move the bundle into place at %s: %w", path, err)
	}
	ok = true
	return Result{Path: path, Size: hw.n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// localPath joins a slash-separated entry name under dir, refusing names
// that would leave it.
func localPath(dir, name string) (string, error) {
	if !filepath.IsLocal(filepath.FromSlash(name)) || strings.Contains(name, "\\") {
		return "", fmt.Errorf("%q is not a valid bundle entry name", name)
	}
	return filepath.Join(dir, filepath.FromSlash(name)), nil
}

type hashWriter struct {
	w io.Writer
	h hash.Hash
	n int64
}

func (w *hashWriter) Write(p []byte) (int, error) {
	n, err := w.w.Write(p)
	w.h.Write(p[:n])
	w.n += int64(n)
	return n, err
}

type countWriter struct {
	w io.Writer
	n *atomic.Int64
}

func (w countWriter) Write(p []byte) (int, error) {
	n, err := w.w.Write(p)
	w.n.Add(int64(n))
	return n, err
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// DefaultName is quayctl-bundle-<deployment>-<UTC timestamp>.tar.gz, the
// deployment's name reduced to characters safe in a file name.
func DefaultName(kind, name string, now time.Time) string {
	s := strings.Trim(unsafeName.ReplaceAllString(name, "-"), "-.")
	for _, p := range []string{"unix-", "tcp-", "ssh-", "https-", "http-"} {
		s = strings.TrimPrefix(s, p)
	}
	if len(s) > 48 {
		s = strings.Trim(s[len(s)-48:], "-.")
	}
	if s == "" {
		s = kind
	} else if kind != "" && !strings.HasPrefix(s, kind) {
		s = kind + "-" + s
	}
	return fmt.Sprintf("quayctl-bundle-%s-%s.tar.gz", s, now.UTC().Format("20060102T150405Z"))
}
