// Package gather turns a deployment into the named facts diag's checks
// read (diag.Fact* names): component states and logs, the redacted config,
// health answers, database diagnostics, storage probes. Facts are gathered
// on first request, once, each under its own timeout, so a diagnose run
// gathers only what its checks ask for and a support bundle gathers all of
// them. Every fact is redacted before it leaves this package.
package gather

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/quayctl/quayctl/collectors"
	"github.com/quayctl/quayctl/diag"
)

// Options tune gathering. Zero values take the defaults.
type Options struct {
	// URL overrides the registry's base URL (--url).
	URL string
	// DBURI overrides the database (--db); else the config's DB_URI.
	DBURI string
	// ConfigFrom is what `config get --from` takes on OpenShift ("" = pod,
	// falling back to the mounted secret).
	ConfigFrom string
	// HTTPClient makes the health and storage requests.
	HTTPClient *http.Client
	// Timeout bounds each fact (default 30s); logs get twice as long.
	Timeout time.Duration
	// LogSince and LogTail bound the logs read (default 24h, 5000 lines).
	LogSince time.Duration
	LogTail  int
	// Progress hears each fact start and end (a terminal progress line).
	Progress func(fact string, done bool)
	// Warn hears notes a user should see (where the config came from).
	Warn func(msg string)
}

// Gatherer is a lazy, memoizing diag.Facts over a deployment.
type Gatherer struct {
	d    collectors.Deployment
	opts Options
	base context.Context // facts outlive the request that first asked

	mu    sync.Mutex
	facts map[string]*entry

	// Private, never stored as facts: the unredacted config (DB_URI with
	// its password, storage keys) the probes need.
	rawOnce sync.Once
	raw     rawConfig

	db  dbConn
	url registryURL
}

type entry struct {
	done chan struct{}
	b    []byte
	err  error
}

// New returns a Gatherer for d. ctx bounds every fact gathered (cancel it
// to stop); Close releases connections.
func New(ctx context.Context, d collectors.Deployment, opts Options) *Gatherer {
	if opts.Timeout <= 0 {
		opts.Timeout = 30 * time.Second
	}
	if opts.LogSince <= 0 {
		opts.LogSince = 24 * time.Hour
	}
	if opts.LogTail <= 0 {
		opts.LogTail = 5000
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: opts.Timeout}
	}
	if opts.Warn == nil {
		opts.Warn = func(string) {}
	}
	return &Gatherer{d: d, opts: opts, base: ctx, facts: map[string]*entry{}}
}

// Deployment is what the facts describe.
func (g *Gatherer) Deployment() collectors.Deployment { return g.d }

// Close releases the database connection, if one was opened.
func (g *Gatherer) Close() error { return g.db.close() }

// Get implements diag.Facts.
func (g *Gatherer) Get(ctx context.Context, name string) ([]byte, error) {
	g.mu.Lock()
	e, ok := g.facts[name]
	if !ok {
		e = &entry{done: make(chan struct{})}
		g.facts[name] = e
		go g.fill(name, e)
	}
	g.mu.Unlock()
	select {
	case <-e.done:
		return e.b, e.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (g *Gatherer) fill(name string, e *entry) {
	defer close(e.done)
	if g.opts.Progress != nil {
		g.opts.Progress(name, false)
		defer g.opts.Progress(name, true)
	}
	timeout := g.opts.Timeout
	if strings.HasSuffix(name, ".txt") {
		timeout *= 2
	}
	ctx, cancel := context.WithTimeout(g.base, timeout)
	defer cancel()
	produce, err := g.producer(name)
	if err != nil {
		e.err = err
		return
	}
	var buf bytes.Buffer
	func() {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("gathering %s crashed: %v", name, r)
			}
		}()
		err = produce(ctx, &buf)
	}()
	if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) && !errors.Is(err, diag.ErrNotApplicable) {
		err = fmt.Errorf("timed out after %s: %w", timeout, err)
	}
	e.b, e.err = buf.Bytes(), redactError(err)
}

// producer writes one fact to w.
type producer func(ctx context.Context, w io.Writer) error

// producer finds how to gather name.
func (g *Gatherer) producer(name string) (producer, error) {
	switch name {
	case diag.FactTarget:
		return g.target, nil
	case diag.FactComponents:
		return g.components, nil
	case diag.FactConfig:
		return g.config, nil
	case diag.FactConfigSource:
		return g.configSource, nil
	case diag.FactClairConfig:
		return g.clairConfig, nil
	case diag.FactOpenShiftCR:
		return g.openShiftStatus, nil
	case diag.FactOpenShiftEvt:
		return g.openShiftEvents, nil
	case diag.FactDBDiskFree:
		return g.databaseDiskFree, nil
	case diag.FactDBFromQuay:
		return g.databaseFromQuay, nil
	case diag.FactStorageLocations:
		return g.storageLocations, nil
	}
	if p, ok := g.databaseProducer(name); ok {
		return p, nil
	}
	parts := strings.Split(name, "/")
	switch {
	case len(parts) == 2 && parts[0] == "health" && strings.HasSuffix(parts[1], ".json"):
		return g.health(strings.TrimSuffix(parts[1], ".json")), nil
	case len(parts) == 3 && parts[0] == "components":
		switch parts[2] {
		case "logs.txt":
			return g.logs(parts[1], false), nil
		case "logs-previous.txt":
			return g.logs(parts[1], true), nil
		case "stats.json":
			return g.stats(parts[1]), nil
		case "inspect.json":
			return g.inspect(parts[1]), nil
		}
	case len(parts) == 3 && parts[0] == "storage" && parts[2] == "probe.json":
		return g.storageProbe(parts[1]), nil
	case len(parts) == 3 && parts[0] == "storage" && parts[2] == "sample.json":
		return g.storageSample(parts[1]), nil
	}
	return nil, fmt.Errorf("quayctl does not know how to gather %q: %w", name, diag.ErrMissing)
}
