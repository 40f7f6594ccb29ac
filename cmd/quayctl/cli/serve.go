package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/quayctl/quayctl/internal/memtrim"
	"github.com/quayctl/quayctl/registry/config"
	"github.com/quayctl/quayctl/registry/server"
	v2 "github.com/quayctl/quayctl/registry/v2"
)

// ServeOptions are the flags of `quayctl serve`.
type ServeOptions struct {
	IO         *IOStreams
	Getenv     func(string) string
	ConfigPath string
	Listen     string
	DataDir    string
	// OnlyWorkers (--only-workers) runs only these background workers
	// (Quay's names) and serves no registry API, only health and metrics.
	OnlyWorkers []string
	// Ready, if set, receives the bound address once the server listens (tests).
	Ready func(addr string)
}

// NewCmdServe builds `quayctl serve`.
func NewCmdServe(f *Factory, runF func(*ServeOptions) error) *cobra.Command {
	opts := &ServeOptions{IO: f.IO, Getenv: f.Getenv}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run a Quay-compatible registry",
		Long: `Run a Quay-compatible OCI registry (/v2/), Quay's /api/v1 and health endpoints.

Configuration is Quay's config.yaml: --config FILE, else /conf/stack/config.yaml
when it exists, else the embedded default (SQLite and local storage under
--data-dir, FEATURE_USER_INITIALIZE on). DEBUGLOG=true turns on debug logs.

--only-workers NAME[,NAME] runs only the named background workers, as Quay
runs its repomirrorworker alone. Quay's worker names:
` + indentedList(WorkerNames, 4) + `
Such a process serves no /v2/ or /api/v1; on --listen it answers only
/health/*, /status, /_internal_ping and /metrics, so an orchestrator can
probe it. A named worker still needs its feature on in config.yaml (for
example FEATURE_REPO_MIRROR for repomirror).

Exit codes: 0 after a clean shutdown (SIGINT/SIGTERM), 1 when the config is
invalid or a dependency (database, storage) cannot be reached, 2 bad flags.`,
		Example: `  quayctl serve
  quayctl serve --config /conf/stack/config.yaml --listen :8080
  quayctl serve --config /conf/stack/config.yaml --only-workers repomirror`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			only, err := checkWorkers(opts.OnlyWorkers)
			if err != nil {
				return err
			}
			opts.OnlyWorkers = only
			if runF != nil {
				return runF(opts)
			}
			return serveRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.ConfigPath, "config", "", "path to Quay's config.yaml")
	cmd.Flags().StringVar(&opts.Listen, "listen", ":8080", "address to listen on")
	cmd.Flags().StringVar(&opts.DataDir, "data-dir", "./quay-data", "data directory of the embedded default (database and blobs)")
	cmd.Flags().StringSliceVar(&opts.OnlyWorkers, "only-workers", nil, "run only these background workers (comma-separated or repeated) and serve no registry API")
	return cmd
}

// WorkerNames are the background workers --only-workers accepts: Quay's
// worker names, the ones each start function passes to the server's gate.
var WorkerNames = []string{"autopruneworker", "blobuploadcleanupworker", "gcworker", "notificationworker",
	"quotaregistrysizeworker", "quotatotalworker", "repomirror", "storagereplication"}

// workerFeatures are the config keys that switch workers on, for the
// warning when --only-workers names a worker whose feature is off (a
// process that would run nothing). Each worker adds its row.
var workerFeatures = map[string]struct {
	key string
	on  func(server.Settings) bool
}{
	"gcworker":   {"FEATURE_GARBAGE_COLLECTION", func(s server.Settings) bool { return s.GarbageCollection }},
	"repomirror": {"FEATURE_REPO_MIRROR", func(s server.Settings) bool { return s.RepoMirror }},
}

// indentedList lays names out perLine to a line, indented, for help text.
func indentedList(names []string, perLine int) string {
	var lines []string
	for i := 0; i < len(names); i += perLine {
		lines = append(lines, "  "+strings.Join(names[i:min(i+perLine, len(names))], ", "))
	}
	return strings.Join(lines, ",\n")
}

// checkWorkers refuses unknown worker names and drops repeats; the order
// of first mention is kept.
func checkWorkers(names []string) ([]string, error) {
	var out []string
	for _, n := range names {
		n = strings.TrimSpace(n)
		if n == "" {
			return nil, flagError{errors.New("--only-workers has an empty name; valid workers: " + strings.Join(WorkerNames, ", "))}
		}
		if !slices.Contains(WorkerNames, n) {
			return nil, flagError{fmt.Errorf("--only-workers: %q is not a worker; valid workers: %s", n, strings.Join(WorkerNames, ", "))}
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out, nil
}

// workersOnly lets through only what an orchestrator probes on a
// worker-only process: health (with the internal pings its checks call
// back) and metrics; the registry and Quay APIs answer 404.
func workersOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		switch {
		case p == "/health" || strings.HasPrefix(p, "/health/"), p == "/status", p == "/metrics",
			p == "/_internal_ping", p == "/v1/_internal_ping":
			h.ServeHTTP(w, r)
		default:
			http.Error(w, "this quayctl serve process runs only background workers (--only-workers); it does not serve "+p, http.StatusNotFound)
		}
	})
}

// newLogger writes to errOut (never the process's stderr directly): text,
// or JSON with JSONLOG=true; debug level with DEBUGLOG=true.
func newLogger(errOut io.Writer, getenv func(string) string) *slog.Logger {
	level := slog.LevelInfo
	if strings.EqualFold(getenv("DEBUGLOG"), "true") {
		level = slog.LevelDebug
	}
	var h slog.Handler = slog.NewTextHandler(errOut, &slog.HandlerOptions{Level: level})
	if strings.EqualFold(getenv("JSONLOG"), "true") {
		h = slog.NewJSONHandler(errOut, &slog.HandlerOptions{Level: level})
	}
	return slog.New(server.WithRequestID(h))
}

// loadConfig finds, loads and validates Quay's config.yaml.
func loadConfig(path, dataDir, listen string, getenv func(string) string) (*config.Config, error) {
	cfg, _, err := config.Load(config.LoadOptions{Path: path, DataDir: dataDir, ListenAddr: listen, Env: getenv})
	if err != nil {
		var ve *config.ValidationError
		if errors.As(err, &ve) {
			return nil, &UserError{Msg: "the configuration is invalid", Err: err, Remedy: "fix the keys above (see docs/configuration.md), or check it with: quayctl config validate FILE"}
		}
		return nil, &UserError{Msg: "cannot load the configuration", Err: err, Remedy: "check the --config path and that the file is YAML"}
	}
	return cfg, nil
}

func serveRun(ctx context.Context, opts *ServeOptions) error {
	log := newLogger(opts.IO.ErrOut, opts.Getenv)
	start := time.Now()
	// Listen first: with port 0 the embedded default's SERVER_HOSTNAME (and
	// so token realms and health self-checks) needs the port actually bound.
	ln, err := net.Listen("tcp", opts.Listen)
	if err != nil {
		return &UserError{Msg: "cannot listen on " + opts.Listen, Err: err, Remedy: "choose another --listen address or stop what uses it"}
	}
	defer ln.Close() // on early returns; harmless after Shutdown
	cfg, err := loadConfig(opts.ConfigPath, opts.DataDir, boundListen(opts.Listen, ln.Addr()), opts.Getenv)
	if err != nil {
		return err
	}
	for _, w := range cfg.Warnings() {
		log.Warn("config", "key", w.Key, "message", w.Message)
	}
	if cfg.Source().Embedded {
		if err := os.MkdirAll(opts.DataDir, 0o750); err != nil {
			return &UserError{Msg: "cannot create the data directory " + opts.DataDir, Err: err, Remedy: "choose a writable --data-dir"}
		}
	}
	settings := server.FromConfig(cfg)
	for _, w := range opts.OnlyWorkers {
		if f, ok := workerFeatures[w]; ok && !f.on(settings) {
			log.Warn("--only-workers names "+w+" but "+f.key+" is off, so it will not run", "worker", w, "key", f.key)
		}
	}
	srv, err := server.New(ctx, settings, server.Options{Logger: log, OnlyWorkers: opts.OnlyWorkers})
	if err != nil {
		return &UserError{Msg: "the registry cannot start", Err: err}
	}
	defer srv.Close()
	addr := ln.Addr().String()
	srv.SetSelfURL("http://" + loopback(addr))
	srv.Start(ctx)
	handler := srv.Handler()
	if len(opts.OnlyWorkers) > 0 {
		handler = workersOnly(handler)
	}
	hs := &http.Server{Handler: handler, ReadHeaderTimeout: 30 * time.Second, IdleTimeout: 120 * time.Second, ConnContext: v2.ConnContext}
	// Announce before serving: the listener is bound, so clients already
	// queue, and whoever sees a first answer also finds the line in the log.
	log.Info("quayctl serve ready", "listen", addr, "config", cfg.Source().String(), "database", srv.Store.Dialect(),
		"storage", strings.Join(cfg.StoragePreference(), ","), "startup", time.Since(start).Round(time.Millisecond))
	if len(opts.OnlyWorkers) > 0 {
		log.Info("only background workers run; the registry API is not served", "workers", strings.Join(opts.OnlyWorkers, ","))
	} else if cfg.Source().Embedded {
		fmt.Fprintf(opts.IO.ErrOut, "\nquayctl serve is running on http://%s (embedded default, data in %s).\n", loopback(addr), opts.DataDir)
		fmt.Fprintf(opts.IO.ErrOut, "Create the first user:\n  curl -X POST http://%s/api/v1/user/initialize -H 'Content-Type: application/json' \\\n    -d '{\"username\":\"quayadmin\",\"password\":\"CHANGE-ME-please\",\"email\":\"admin@example.com\"}'\n", loopback(addr))
		fmt.Fprintf(opts.IO.ErrOut, "Then log in:\n  podman login --tls-verify=false %s\n\n", loopback(addr))
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	// The toolkit's package inits paged in much of the executable; the
	// server never runs them again (internal/memtrim).
	if n, err := memtrim.AfterStartup(); err != nil {
		log.Debug("could not release start-up memory", "error", err)
	} else {
		log.Debug("released start-up pages of the executable", "bytes", n)
	}
	if opts.Ready != nil {
		opts.Ready(addr)
	}
	select {
	case err := <-errc:
		return &UserError{Msg: "the HTTP server stopped", Err: err}
	case <-ctx.Done():
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = hs.Shutdown(sctx)
	return nil
}

// boundListen is the --listen address with port 0 replaced by the port the
// listener got; other addresses are returned unchanged.
func boundListen(listen string, bound net.Addr) string {
	host, port, err := net.SplitHostPort(listen)
	tcp, ok := bound.(*net.TCPAddr)
	if err != nil || port != "0" || !ok {
		return listen
	}
	return net.JoinHostPort(host, strconv.Itoa(tcp.Port))
}

// loopback turns ":8080" or "[::]:8080" into a dialable "localhost:8080".
func loopback(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if host == "" || host == "::" || host == "0.0.0.0" {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}
