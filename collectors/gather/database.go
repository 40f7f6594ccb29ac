package gather

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/quayctl/quayctl/collectors"
	"github.com/quayctl/quayctl/collectors/direct"
	"github.com/quayctl/quayctl/dbtools/diagnostics"
	"github.com/quayctl/quayctl/dbtools/pg"
	"github.com/quayctl/quayctl/diag"
	"github.com/quayctl/quayctl/internal/redact"
)

// dbConn is the one connection the database facts share, opened on first
// use. pgx connections are not safe for concurrent use, so queries take
// turns.
type dbConn struct {
	once   sync.Once
	mu     sync.Mutex
	uri    pg.URI
	conn   *pgx.Conn
	result diag.Connectivity
	err    error
	// lite is a SQLite database (quayctl serve's default), opened
	// read-only on first use by the facts that read only Quay's tables.
	liteOnce sync.Once
	lite     *diagnostics.SQLite
	liteErr  error
}

func (c *dbConn) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lite != nil {
		_ = c.lite.Close()
		c.lite = nil
	}
	if c.conn == nil {
		return nil
	}
	err := c.conn.Close(context.Background())
	c.conn = nil
	return err
}

// sqliteFacts are the database facts that read only Quay's tables, and so
// are produced from a SQLite database too; the others read PostgreSQL's
// statistics.
var sqliteFacts = map[string]bool{diag.FactDBUsers: true, diag.FactDBMirrors: true, diag.FactDBPlacement: true}

// openSQLite opens the SQLite database DB_URI names, once. The path is
// the registry's: from outside its container the file is usually not
// there, and the facts do not apply.
func (c *dbConn) openSQLite(ctx context.Context) (*diagnostics.SQLite, error) {
	c.liteOnce.Do(func() {
		if _, err := os.Stat(c.uri.Path); errors.Is(err, fs.ErrNotExist) {
			c.liteErr = fmt.Errorf("the database is SQLite (%s), whose file is not on this machine — run quayctl where the registry runs: %w", c.uri.Redacted, diag.ErrNotApplicable)
			return
		}
		c.lite, c.liteErr = diagnostics.OpenSQLite(ctx, c.uri.Path)
	})
	return c.lite, c.liteErr
}

// replicationFact is database/placement.json with the numbers of quayctl
// storage replication-status (diagnostics.Replication, for the config's
// DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS), which the geo-replication checks
// read, so that both show the same numbers.
func (g *Gatherer) replicationFact(ctx context.Context, q diagnostics.Querier) (any, error) {
	p, err := diagnostics.Placement(ctx, q, placementSample)
	if err != nil {
		return nil, err
	}
	st, err := diagnostics.Replication(ctx, q, g.defaultLocations(ctx), time.Now())
	if err != nil {
		return nil, err
	}
	p.Replication = &st
	p.ReplicationBacklog = &st.Backlog // one reading of the queue for both
	return p, nil
}

// defaultLocations is DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS (nil when
// unknown or empty).
func (g *Gatherer) defaultLocations(ctx context.Context) []string {
	var out []string
	switch v := g.rawConfig(ctx).values["DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS"].(type) {
	case []any:
		for _, e := range v {
			if s, ok := e.(string); ok && strings.TrimSpace(s) != "" {
				out = append(out, strings.TrimSpace(s))
			}
		}
	case string:
		out = strings.Fields(v)
	}
	return out
}

// Placement sample size and the dead-tuple floor of the bloat fact.
const (
	placementSample = 50
	bloatMinDead    = 10000
	topTables       = 15
)

// dbURI finds the database: --db, a direct target's DB_URI, else the
// deployment config's DB_URI with DB_CONNECTION_ARGS.
func (g *Gatherer) dbURI(ctx context.Context) (pg.URI, error) {
	uri, args := g.opts.DBURI, map[string]any(nil)
	if dd, ok := g.d.(*direct.Deployment); ok && uri == "" {
		uri = dd.DBURI()
	}
	if uri == "" {
		rc := g.rawConfig(ctx)
		if rc.err != nil {
			return pg.URI{}, fmt.Errorf("cannot find DB_URI: %w", rc.err)
		}
		s, _ := rc.values["DB_URI"].(string)
		if s == "" {
			return pg.URI{}, fmt.Errorf("%s has no DB_URI — pass the database with --db postgresql://…", rc.source)
		}
		uri = s
		args, _ = rc.values["DB_CONNECTION_ARGS"].(map[string]any)
	}
	u, err := pg.ParseDBURI(uri, args)
	if err != nil {
		return pg.URI{}, err
	}
	if u.Driver != pg.DriverPostgres {
		return u, fmt.Errorf("the database is SQLite (%s), so the PostgreSQL checks do not apply: %w", u.Redacted, diag.ErrNotApplicable)
	}
	return u, nil
}

// connect opens the shared connection once and records how it went.
func (g *Gatherer) connect(ctx context.Context) (*dbConn, error) {
	c := &g.db
	c.once.Do(func() {
		c.uri, c.err = g.dbURI(ctx)
		if c.err != nil {
			return
		}
		c.result = diag.Connectivity{From: "quayctl", Target: c.uri.Redacted, Method: "pgx"}
		cctx, cancel := context.WithTimeout(g.base, min(g.opts.Timeout, pg.DefaultConnectTimeout))
		defer cancel()
		start := time.Now()
		conn, err := pg.Connect(cctx, c.uri)
		c.result.ElapsedMS = ms(time.Since(start))
		if err != nil {
			c.result.Error, _ = redact.String(err.Error())
			c.err = err
			return
		}
		c.conn, c.result.OK = conn, true
	})
	return c, nil
}

// databaseProducer maps the database/*.json facts to their queries.
func (g *Gatherer) databaseProducer(name string) (producer, bool) {
	if name == diag.FactDBConnection {
		return func(ctx context.Context, w io.Writer) error {
			c, _ := g.connect(ctx)
			if c.result.Method == "" { // never tried: no URI
				return c.err
			}
			return writeJSON(w, c.result)
		}, true
	}
	queries := map[string]func(ctx context.Context, q diagnostics.Querier) (any, error){
		diag.FactDBServer:   func(ctx context.Context, q diagnostics.Querier) (any, error) { return diagnostics.Server(ctx, q) },
		diag.FactDBActivity: func(ctx context.Context, q diagnostics.Querier) (any, error) { return diagnostics.Activity(ctx, q) },
		diag.FactDBLocks:    func(ctx context.Context, q diagnostics.Querier) (any, error) { return diagnostics.Locks(ctx, q) },
		diag.FactDBSizes: func(ctx context.Context, q diagnostics.Querier) (any, error) {
			return diagnostics.Sizes(ctx, q, topTables)
		},
		diag.FactDBSchema: func(ctx context.Context, q diagnostics.Querier) (any, error) { return diagnostics.Schema(ctx, q) },
		diag.FactDBBloat: func(ctx context.Context, q diagnostics.Querier) (any, error) {
			return diagnostics.Bloat(ctx, q, bloatMinDead)
		},
		diag.FactDBUsers: func(ctx context.Context, q diagnostics.Querier) (any, error) {
			return diagnostics.Users(ctx, q, g.superUsers(ctx))
		},
		diag.FactDBMirrors:   func(ctx context.Context, q diagnostics.Querier) (any, error) { return diagnostics.Mirrors(ctx, q) },
		diag.FactDBPlacement: g.replicationFact,
	}
	query, ok := queries[name]
	if !ok {
		return nil, false
	}
	return func(ctx context.Context, w io.Writer) error {
		c, _ := g.connect(ctx)
		if c.err != nil && sqliteFacts[name] && c.uri.Driver == pg.DriverSQLite {
			lite, err := c.openSQLite(ctx)
			if err != nil {
				return err
			}
			c.mu.Lock()
			defer c.mu.Unlock()
			v, err := query(ctx, lite)
			if err != nil {
				return err
			}
			return writeJSON(w, v)
		}
		if c.err != nil {
			if errors.Is(c.err, diag.ErrNotApplicable) {
				return c.err
			}
			return fmt.Errorf("no database connection: %w", c.err)
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.conn == nil {
			return errors.New("the database connection was closed")
		}
		v, err := query(ctx, c.conn)
		if err != nil {
			return err
		}
		return writeJSON(w, v)
	}, true
}

// superUsers is SUPER_USERS of the deployment's config (nil when unknown).
func (g *Gatherer) superUsers(ctx context.Context) []string {
	rc := g.rawConfig(ctx)
	var out []string
	if l, ok := rc.values["SUPER_USERS"].([]any); ok {
		for _, v := range l {
			if s, ok := v.(string); ok {
				out = append(out, s)
			}
		}
	}
	return out
}

// execTool is one way to test a TCP connection from inside a container.
type execTool struct {
	method string
	argv   func(host, port string) []string
}

var tcpTools = []execTool{
	{"bash /dev/tcp", func(h, p string) []string {
		return []string{"bash", "-c", `timeout 5 bash -c "</dev/tcp/$0/$1"`, h, p}
	}},
	{"python3 socket", func(h, p string) []string {
		return []string{"python3", "-c", "import socket,sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), 5).close()", h, p}
	}},
	{"pg_isready", func(h, p string) []string { return []string{"pg_isready", "-t", "5", "-h", h, "-p", p} }},
}

// databaseFromQuay is chapter 6.1.1.3's connectivity test: can the quay
// component reach the database's host and port? It uses whatever the
// container has (Quay's image has bash and python3).
func (g *Gatherer) databaseFromQuay(ctx context.Context, w io.Writer) error {
	u, err := g.dbURI(ctx)
	if err != nil {
		return err
	}
	qc, err := g.component(ctx, collectors.ComponentQuay)
	if err != nil {
		return err
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil {
		host, port = strings.Trim(u.Host, "[]"), "5432"
	}
	res := diag.Connectivity{From: "quay component (" + qc.Instance + ")", Target: net.JoinHostPort(host, port)}
	var tried []string
	for _, t := range tcpTools {
		var out bytes.Buffer
		start := time.Now()
		code, err := g.d.Exec(ctx, collectors.ComponentQuay, t.argv(host, port), collectors.ExecOptions{Stdout: &out, Stderr: &out})
		elapsed := time.Since(start)
		if err != nil && errors.Is(err, collectors.ErrNotSupported) {
			return notApplicable(err)
		}
		if missingTool(code, err, out.String()) {
			tried = append(tried, t.method)
			continue
		}
		if err != nil {
			return fmt.Errorf("exec in the quay component: %w", err)
		}
		res.Method, res.ElapsedMS, res.OK = t.method, ms(elapsed), code == 0
		detail, _ := redact.String(strings.TrimSpace(out.String()))
		res.Detail = detail
		if !res.OK {
			res.Error = fmt.Sprintf("%s exited %d", t.method, code)
		}
		return writeJSON(w, res)
	}
	res.Error = "the quay container has none of the tools to test with (" + strings.Join(tried, ", ") + ")"
	return writeJSON(w, res)
}

// missingTool says an exec failed because the program does not exist.
func missingTool(code int, err error, out string) bool {
	if code == 126 || code == 127 {
		return true
	}
	s := strings.ToLower(out)
	if err != nil {
		s += " " + strings.ToLower(err.Error())
	}
	return strings.Contains(s, "executable file not found") || strings.Contains(s, "no such file or directory") && code != 0
}

// databaseDiskFree is `df -P` of PGDATA inside the database component.
func (g *Gatherer) databaseDiskFree(ctx context.Context, w io.Writer) error {
	if _, err := g.component(ctx, collectors.ComponentDatabase); err != nil {
		return err
	}
	var out, errOut bytes.Buffer
	argv := []string{"sh", "-c", `df -P "${PGDATA:-/var/lib/pgsql/data}" 2>/dev/null || df -P /var/lib/postgresql/data`}
	code, err := g.d.Exec(ctx, collectors.ComponentDatabase, argv, collectors.ExecOptions{Stdout: &out, Stderr: &errOut})
	if err != nil {
		return notApplicable(err)
	}
	if code != 0 {
		return fmt.Errorf("df in the database component exited %d: %s", code, strings.TrimSpace(errOut.String()))
	}
	_, err = w.Write(out.Bytes())
	return err
}

// storageConfig is DISTRIBUTED_STORAGE_CONFIG: location → [driver, params].
func (g *Gatherer) storageConfig(ctx context.Context) (map[string]storageLocation, error) {
	rc := g.rawConfig(ctx)
	if rc.err != nil {
		return nil, rc.err
	}
	raw, ok := rc.values["DISTRIBUTED_STORAGE_CONFIG"].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s has no DISTRIBUTED_STORAGE_CONFIG", rc.source)
	}
	out := map[string]storageLocation{}
	for name, v := range raw {
		pair, ok := v.([]any)
		if !ok || len(pair) != 2 {
			return nil, fmt.Errorf("DISTRIBUTED_STORAGE_CONFIG.%s is not [DriverName, {parameters}]", name)
		}
		driver, _ := pair[0].(string)
		params, _ := pair[1].(map[string]any)
		out[name] = storageLocation{Driver: driver, Params: params}
	}
	return out, nil
}

type storageLocation struct {
	Driver string
	Params map[string]any
}
