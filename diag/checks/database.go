package checks

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/quayctl/quayctl/diag"
)

// Thresholds of the database area (documented in docs/diagnose.md).
const (
	dbConnWarnRatio   = 0.80 // connections in use / usable
	dbConnFailRatio   = 0.95
	dbLongQueryWarn   = 5 * time.Minute
	dbLongQueryFail   = 30 * time.Minute
	dbLongTxWarn      = 10 * time.Minute
	dbIdleInTxWarn    = time.Minute
	dbLockWaitWarn    = 5 * time.Second
	dbLockWaitFail    = time.Minute
	dbDiskWarnPercent = 85
	dbDiskFailPercent = 95
	dbBloatWarnRatio  = 0.2 // dead / (live + dead)
	dbBloatMinDead    = 10000
	dbEvidenceMax     = 8 // rows shown as evidence
)

var (
	dbConnection = diag.Check{ID: "database.connection", Area: AreaDatabase, Title: "the database accepts a connection from where quayctl runs", Doc: doc("database-connection")}
	dbFromQuay   = diag.Check{ID: "database.from-quay", Area: AreaDatabase, Title: "the quay component reaches the database's host and port (guide 6.1.1.3)", Doc: doc("database-from-quay")}
	dbServer     = diag.Check{ID: "database.connections", Area: AreaDatabase, Title: "server version, and connections in use against max_connections", Doc: doc("database-connections")}
	dbActivity   = diag.Check{ID: "database.activity", Area: AreaDatabase, Title: "long-running queries and transactions, sessions idle in transaction", Doc: doc("database-activity")}
	dbLocks      = diag.Check{ID: "database.locks", Area: AreaDatabase, Title: "sessions waiting on locks held by others", Doc: doc("database-locks")}
	dbDisk       = diag.Check{ID: "database.disk", Area: AreaDatabase, Title: "database size and free disk of the database component", Doc: doc("database-disk")}
	dbSchema     = diag.Check{ID: "database.schema", Area: AreaDatabase, Title: "Quay's tables, migration version (alembic_version) and the pg_trgm extension", Doc: doc("database-schema")}
	dbBloat      = diag.Check{ID: "database.bloat", Area: AreaDatabase, Title: "tables with many dead tuples (vacuum falling behind)", Doc: doc("database-bloat")}
)

var databaseChecks = []diag.Check{
	dbConnection.With(checkDBConnection),
	dbFromQuay.With(checkDBFromQuay),
	dbServer.With(checkDBServer),
	dbActivity.With(checkDBActivity),
	dbLocks.With(checkDBLocks),
	dbDisk.With(checkDBDisk),
	dbSchema.With(checkDBSchema),
	dbBloat.With(checkDBBloat),
}

// dbFact reads a database fact. When the database itself could not be
// reached, the connection check already says so: the other checks stay
// quiet instead of repeating it.
func dbFact[T any](ctx context.Context, f diag.Facts, c diag.Check, name string) (T, []diag.Finding, bool) {
	v, err := diag.GetJSON[T](ctx, f, name)
	if err == nil {
		return v, nil, true
	}
	if strings.Contains(err.Error(), "no database connection") {
		return v, nil, false
	}
	fe := c.FactError(name, err)
	if fe.Severity == diag.Info && strings.Contains(err.Error(), "SQLite") {
		return v, nil, false // one info from database.connection is enough
	}
	return v, []diag.Finding{fe}, false
}

func checkDBConnection(ctx context.Context, f diag.Facts) []diag.Finding {
	c := dbConnection
	conn, err := diag.GetJSON[diag.Connectivity](ctx, f, diag.FactDBConnection)
	if err != nil {
		fe := c.FactError(diag.FactDBConnection, err)
		if fe.Severity == diag.Warn {
			fe.Remedy = "pass the database with --db postgresql://USER:PASSWORD@HOST:5432/DB, or make the config (DB_URI) readable"
		}
		return []diag.Finding{fe}
	}
	if !conn.OK {
		fd := c.Finding(diag.Fail, "cannot connect to the database at "+conn.Target)
		fd.Evidence = []string{conn.Error}
		fd.Remedy = "is the database component running (quayctl status)? Are DB_URI's host, port, user and password right? See the error's advice, and chapter 6.1 of the troubleshooting guide"
		return []diag.Finding{fd}
	}
	fd := c.Finding(diag.OK, fmt.Sprintf("connected to %s in %.0f ms", conn.Target, conn.ElapsedMS))
	return []diag.Finding{fd}
}

func checkDBFromQuay(ctx context.Context, f diag.Facts) []diag.Finding {
	c := dbFromQuay
	conn, fs, ok := dbFact[diag.Connectivity](ctx, f, c, diag.FactDBFromQuay)
	if !ok {
		return fs
	}
	switch {
	case conn.OK:
		return []diag.Finding{c.Finding(diag.OK, fmt.Sprintf("%s reaches %s (%s, %.0f ms)", conn.From, conn.Target, conn.Method, conn.ElapsedMS))}
	case conn.Method == "":
		fd := c.Finding(diag.Info, "could not test the database connection from inside the quay component")
		fd.Evidence = []string{conn.Error}
		fd.Remedy = "test by hand from a debug container on the same network: nc -zv HOST PORT"
		return []diag.Finding{fd}
	}
	fd := c.Finding(diag.Fail, fmt.Sprintf("%s cannot reach the database at %s", conn.From, conn.Target))
	fd.Evidence = []string{fmt.Sprintf("%s: %s", conn.Method, conn.Error)}
	if conn.Detail != "" {
		fd.Evidence = append(fd.Evidence, conn.Detail)
	}
	fd.Remedy = "DB_URI's host must resolve and be reachable from the quay container: check the container network (podman network inspect), DNS, firewalls and NetworkPolicies (guide 6.1.1.3)"
	return []diag.Finding{fd}
}

type dbServerFact struct {
	Version              string         `json:"version"`
	MaxConnections       int            `json:"max_connections"`
	Reserved             int            `json:"superuser_reserved_connections"`
	Connections          int            `json:"connections"`
	ByState              map[string]int `json:"connections_by_state"`
	ByUser               map[string]int `json:"connections_by_user"`
	ConnectionsUsedRatio float64        `json:"connections_used_ratio"`
	UptimeSeconds        float64        `json:"uptime_seconds"`
	CurrentUser          string         `json:"current_user"`
	Superuser            bool           `json:"superuser"`
	ReadAllStats         bool           `json:"read_all_stats"`
	InRecovery           bool           `json:"in_recovery"`
}

func checkDBServer(ctx context.Context, f diag.Facts) []diag.Finding {
	c := dbServer
	s, fs, ok := dbFact[dbServerFact](ctx, f, c, diag.FactDBServer)
	if !ok {
		return fs
	}
	usable := s.MaxConnections - s.Reserved
	fd := c.Finding(diag.OK, fmt.Sprintf("%d of %d usable connections in use (%.0f%%)", s.Connections, usable, 100*s.ConnectionsUsedRatio))
	fd.Evidence = []string{
		firstLine(s.Version),
		fmt.Sprintf("max_connections %d, superuser_reserved_connections %d", s.MaxConnections, s.Reserved),
		"by state: " + countsLine(s.ByState),
		"by user: " + countsLine(s.ByUser),
		"up " + (time.Duration(s.UptimeSeconds) * time.Second).String(),
	}
	switch {
	case s.ConnectionsUsedRatio >= dbConnFailRatio:
		fd.Severity = diag.Fail
	case s.ConnectionsUsedRatio >= dbConnWarnRatio:
		fd.Severity = diag.Warn
	}
	if fd.Severity != diag.OK {
		fd.Title = "connections near max_connections: " + fd.Title
		fd.Remedy = "new connections will be refused (FATAL: sorry, too many clients already): raise max_connections on the database, " +
			"lower the pools (DB_CONNECTION_ARGS max_connections, fewer quay replicas or workers), or end idle sessions (quayctl db activity)"
	}
	out := []diag.Finding{fd}
	if s.InRecovery {
		r := c.Finding(diag.Fail, "the database is a read-only standby (pg_is_in_recovery)")
		r.Remedy = "point DB_URI at the primary"
		out = append(out, r)
	}
	if !s.Superuser && !s.ReadAllStats {
		n := c.Finding(diag.Info, "role "+s.CurrentUser+" cannot see other roles' sessions in full")
		n.Remedy = "for complete activity and lock checks connect as a role with pg_read_all_stats: GRANT pg_read_all_stats TO " + s.CurrentUser
		out = append(out, n)
	}
	return out
}

type dbSessionFact struct {
	PID                int     `json:"pid"`
	User               string  `json:"user"`
	ApplicationName    string  `json:"application_name"`
	ClientAddr         string  `json:"client_addr"`
	State              string  `json:"state"`
	WaitEventType      string  `json:"wait_event_type"`
	WaitEvent          string  `json:"wait_event"`
	QuerySeconds       float64 `json:"query_seconds"`
	TransactionSeconds float64 `json:"transaction_seconds"`
	StateSeconds       float64 `json:"state_seconds"`
	BlockedBy          []int   `json:"blocked_by"`
	Query              string  `json:"query"`
}

func (s dbSessionFact) line() string {
	q := firstLine(s.Query)
	if len(q) > 120 {
		q = q[:120] + "…"
	}
	return fmt.Sprintf("pid %d %s@%s %s, query %s, transaction %s: %s", s.PID, s.User, s.ClientAddr, s.State,
		secs(s.QuerySeconds), secs(s.TransactionSeconds), q)
}

func checkDBActivity(ctx context.Context, f diag.Facts) []diag.Finding {
	c := dbActivity
	ss, fs, ok := dbFact[[]dbSessionFact](ctx, f, c, diag.FactDBActivity)
	if !ok {
		return fs
	}
	var longQ, longTx, idleTx []dbSessionFact
	worstQ := diag.OK
	for _, s := range ss {
		switch {
		case s.State == "active" && s.QuerySeconds >= dbLongQueryWarn.Seconds():
			longQ = append(longQ, s)
			if s.QuerySeconds >= dbLongQueryFail.Seconds() {
				worstQ = diag.Fail
			} else {
				worstQ = max(worstQ, diag.Warn)
			}
		case strings.HasPrefix(s.State, "idle in transaction") && s.StateSeconds >= dbIdleInTxWarn.Seconds():
			idleTx = append(idleTx, s)
		case s.TransactionSeconds >= dbLongTxWarn.Seconds():
			longTx = append(longTx, s)
		}
	}
	var out []diag.Finding
	add := func(sev diag.Severity, list []dbSessionFact, title, remedy string) {
		if len(list) == 0 {
			return
		}
		fd := c.Finding(sev, fmt.Sprintf(title, len(list)))
		fd.Evidence = sessionLines(list)
		fd.Remedy = remedy
		out = append(out, fd)
	}
	add(worstQ, longQ, "%d queries running longer than "+dbLongQueryWarn.String(),
		"see them with quayctl db activity; a query stuck for long may hold locks others wait on; end one with SELECT pg_cancel_backend(PID) (or pg_terminate_backend)")
	add(diag.Warn, idleTx, "%d sessions idle in transaction for more than "+dbIdleInTxWarn.String(),
		"an open transaction holds its locks and stops vacuum: find the client (application_name, client address) and fix it; end it with SELECT pg_terminate_backend(PID); set idle_in_transaction_session_timeout")
	add(diag.Warn, longTx, "%d transactions open longer than "+dbLongTxWarn.String(),
		"long transactions hold locks and stop vacuum from cleaning up: quayctl db activity shows them")
	if len(out) == 0 {
		active := 0
		for _, s := range ss {
			if s.State == "active" {
				active++
			}
		}
		out = append(out, c.Finding(diag.OK, fmt.Sprintf("%d sessions, %d active, none long-running or idle in transaction", len(ss), active)))
	}
	return out
}

func sessionLines(list []dbSessionFact) []string {
	sort.Slice(list, func(i, j int) bool { return list[i].TransactionSeconds > list[j].TransactionSeconds })
	var out []string
	for i, s := range list {
		if i == dbEvidenceMax {
			out = append(out, fmt.Sprintf("… and %d more", len(list)-i))
			break
		}
		out = append(out, s.line())
	}
	return out
}

type dbLockFact struct {
	PID           int     `json:"pid"`
	User          string  `json:"user"`
	LockType      string  `json:"lock_type"`
	Mode          string  `json:"mode"`
	Relation      string  `json:"relation"`
	WaitedSeconds float64 `json:"waited_seconds"`
	BlockedBy     []int   `json:"blocked_by"`
	Query         string  `json:"query"`
	Blockers      []struct {
		PID                int     `json:"pid"`
		User               string  `json:"user"`
		State              string  `json:"state"`
		TransactionSeconds float64 `json:"transaction_seconds"`
		Query              string  `json:"query"`
	} `json:"blockers"`
}

func checkDBLocks(ctx context.Context, f diag.Facts) []diag.Finding {
	c := dbLocks
	ls, fs, ok := dbFact[[]dbLockFact](ctx, f, c, diag.FactDBLocks)
	if !ok {
		return fs
	}
	sev := diag.OK
	var ev []string
	for _, l := range ls {
		if l.WaitedSeconds < dbLockWaitWarn.Seconds() {
			continue
		}
		s := diag.Warn
		if l.WaitedSeconds >= dbLockWaitFail.Seconds() {
			s = diag.Fail
		}
		sev = max(sev, s)
		rel := l.Relation
		if rel == "" {
			rel = l.LockType
		}
		ev = append(ev, fmt.Sprintf("pid %d (%s) waits %s for %s on %s, blocked by %s: %s", l.PID, l.User, secs(l.WaitedSeconds), l.Mode, rel, pidList(l.BlockedBy), firstLine(l.Query)))
		for _, b := range l.Blockers {
			ev = append(ev, fmt.Sprintf("  blocker pid %d (%s) %s, transaction open %s: %s", b.PID, b.User, b.State, secs(b.TransactionSeconds), firstLine(b.Query)))
		}
	}
	if sev == diag.OK {
		return []diag.Finding{c.Finding(diag.OK, fmt.Sprintf("no session waits on a lock for more than %s", dbLockWaitWarn))}
	}
	if len(ev) > 2*dbEvidenceMax {
		ev = append(ev[:2*dbEvidenceMax], fmt.Sprintf("… %d more lines", len(ev)-2*dbEvidenceMax))
	}
	fd := c.Finding(sev, "sessions are blocked waiting on locks")
	fd.Evidence = ev
	fd.Remedy = "find what the blocker is doing (quayctl db activity); if it is stuck or idle in transaction, end it with SELECT pg_terminate_backend(BLOCKER_PID)"
	return []diag.Finding{fd}
}

type dbSizesFact struct {
	Database          string `json:"database"`
	DatabaseSizeBytes int64  `json:"database_size_bytes"`
	Tables            []struct {
		Name       string `json:"name"`
		TotalBytes int64  `json:"total_bytes"`
	} `json:"tables"`
}

func checkDBDisk(ctx context.Context, f diag.Facts) []diag.Finding {
	c := dbDisk
	var out []diag.Finding
	sizes, fs, ok := dbFact[dbSizesFact](ctx, f, c, diag.FactDBSizes)
	out = append(out, fs...)
	if ok {
		fd := c.Finding(diag.Info, fmt.Sprintf("database %s is %s", sizes.Database, humanize.IBytes(uint64(sizes.DatabaseSizeBytes))))
		for i, t := range sizes.Tables {
			if i == 5 {
				break
			}
			fd.Evidence = append(fd.Evidence, fmt.Sprintf("%s: %s", t.Name, humanize.IBytes(uint64(t.TotalBytes))))
		}
		out = append(out, fd)
	}
	b, err := f.Get(ctx, diag.FactDBDiskFree)
	if err != nil {
		fe := c.FactError(diag.FactDBDiskFree, err)
		if fe.Severity == diag.Info {
			return out // no database component to look into (external database)
		}
		return append(out, fe)
	}
	for _, line := range dfLines(string(b)) {
		fd := c.Finding(diag.OK, fmt.Sprintf("database volume %s is %d%% full (%s free)", line.mount, line.usedPercent, humanize.IBytes(uint64(line.availBytes))))
		fd.Evidence = []string{line.raw}
		switch {
		case line.usedPercent >= dbDiskFailPercent:
			fd.Severity = diag.Fail
		case line.usedPercent >= dbDiskWarnPercent:
			fd.Severity = diag.Warn
		}
		if fd.Severity != diag.OK {
			fd.Remedy = "PostgreSQL stops accepting writes when its disk fills: grow the volume (podman volume / PVC size), or free space (VACUUM FULL of bloated tables, old WAL, logs); guide 6.1.1.4"
		}
		out = append(out, fd)
	}
	return out
}

type dfLine struct {
	raw         string
	mount       string
	usedPercent int
	availBytes  int64
}

// dfLines parses `df -P` (1024-byte blocks): Filesystem, blocks, used,
// available, capacity%, mounted on.
func dfLines(s string) []dfLine {
	var out []dfLine
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		fs := strings.Fields(l)
		if len(fs) < 6 || !strings.HasSuffix(fs[4], "%") {
			continue
		}
		pct, err := strconv.Atoi(strings.TrimSuffix(fs[4], "%"))
		if err != nil {
			continue
		}
		avail, _ := strconv.ParseInt(fs[3], 10, 64)
		out = append(out, dfLine{raw: l, mount: fs[5], usedPercent: pct, availBytes: avail * 1024})
	}
	return out
}

type dbSchemaFact struct {
	AlembicTable     bool     `json:"alembic_table"`
	AlembicVersion   string   `json:"alembic_version"`
	QuayctlMigration int      `json:"quayctl_migration"`
	MissingTables    []string `json:"missing_tables"`
	ExpectedTables   []string `json:"expected_tables"`
	PgTrgmInstalled  bool     `json:"pg_trgm_installed"`
	PgTrgmAvailable  bool     `json:"pg_trgm_available"`
}

func checkDBSchema(ctx context.Context, f diag.Facts) []diag.Finding {
	c := dbSchema
	s, fs, ok := dbFact[dbSchemaFact](ctx, f, c, diag.FactDBSchema)
	if !ok {
		return fs
	}
	var out []diag.Finding
	switch {
	case len(s.MissingTables) == len(s.ExpectedTables) && len(s.ExpectedTables) > 0:
		fd := c.Finding(diag.Fail, "the database has none of Quay's tables")
		fd.Remedy = "DB_URI points at the wrong database, or Quay's migrations never ran: check the database name, then the quay component's start-up log (quayctl logs quay)"
		out = append(out, fd)
	case len(s.MissingTables) > 0:
		fd := c.Finding(diag.Fail, fmt.Sprintf("%d of Quay's tables are missing", len(s.MissingTables)))
		fd.Evidence = []string{"missing: " + strings.Join(s.MissingTables, ", ")}
		fd.Remedy = "the schema is incomplete: a migration failed half-way; read the quay component's start-up log (quayctl logs quay) and restore from backup if needed"
		out = append(out, fd)
	}
	switch {
	case s.AlembicVersion != "":
		out = append(out, c.Finding(diag.OK, "Quay schema at Alembic revision "+s.AlembicVersion))
	case s.QuayctlMigration > 0:
		out = append(out, c.Finding(diag.OK, fmt.Sprintf("schema managed by quayctl serve (migration %d)", s.QuayctlMigration)))
	case len(s.MissingTables) < len(s.ExpectedTables):
		fd := c.Finding(diag.Warn, "Quay's tables exist but alembic_version is empty or missing")
		fd.Remedy = "Quay cannot tell its schema version and will try to migrate again: restore alembic_version from a backup, or ask support"
		out = append(out, fd)
	}
	switch {
	case s.PgTrgmInstalled:
	case s.PgTrgmAvailable:
		fd := c.Finding(diag.Warn, "the pg_trgm extension Quay requires is not installed (but available)")
		fd.Remedy = "as a database superuser: CREATE EXTENSION IF NOT EXISTS pg_trgm;"
		out = append(out, fd)
	default:
		fd := c.Finding(diag.Fail, "the pg_trgm extension Quay requires is not available on the server")
		fd.Remedy = "install PostgreSQL's contrib package on the database server (postgresql-contrib), then CREATE EXTENSION pg_trgm;"
		out = append(out, fd)
	}
	return out
}

type dbBloatFact struct {
	Table      string  `json:"table"`
	LiveTuples int64   `json:"live_tuples"`
	DeadTuples int64   `json:"dead_tuples"`
	DeadRatio  float64 `json:"dead_ratio"`
	Autovacuum bool    `json:"autovacuum_enabled"`
}

func checkDBBloat(ctx context.Context, f diag.Facts) []diag.Finding {
	c := dbBloat
	bs, fs, ok := dbFact[[]dbBloatFact](ctx, f, c, diag.FactDBBloat)
	if !ok {
		return fs
	}
	var ev []string
	for _, b := range bs {
		if b.DeadTuples < dbBloatMinDead || b.DeadRatio < dbBloatWarnRatio {
			continue
		}
		av := ""
		if !b.Autovacuum {
			av = ", autovacuum OFF for this table"
		}
		ev = append(ev, fmt.Sprintf("%s: %d dead of %d rows (%.0f%%)%s", b.Table, b.DeadTuples, b.LiveTuples+b.DeadTuples, 100*b.DeadRatio, av))
	}
	if len(ev) == 0 {
		return []diag.Finding{c.Finding(diag.OK, "no table has heavy dead-tuple bloat")}
	}
	fd := c.Finding(diag.Warn, fmt.Sprintf("%d tables have heavy dead-tuple bloat", len(ev)))
	fd.Evidence = ev
	fd.Remedy = "vacuum is falling behind (long transactions stop it: see database.activity): run VACUUM (ANALYZE) on them, and check autovacuum settings"
	return []diag.Finding{fd}
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " …"
	}
	return s
}

func countsLine(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func pidList(ps []int) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = strconv.Itoa(p)
	}
	return strings.Join(s, ", ")
}

func secs(s float64) string {
	return (time.Duration(s) * time.Second).String()
}
