package diagnostics

import (
	"context"
	"fmt"
	"sort"
	"time"
)

// ServerInfo is the PostgreSQL server as the connection sees it
// (fact database/server.json).
type ServerInfo struct {
	// Version is version(): "PostgreSQL 15.8 (Debian 15.8-0+deb12u1) on x86_64…".
	Version string `json:"version"`
	// VersionNum is server_version_num: 150008 for 15.8.
	VersionNum int `json:"server_version_num"`
	// MaxConnections and SuperuserReservedConnections are the settings;
	// ordinary roles can use MaxConnections − SuperuserReservedConnections.
	MaxConnections               int `json:"max_connections"`
	SuperuserReservedConnections int `json:"superuser_reserved_connections"`
	// Connections counts client backends (this one included), the sessions
	// max_connections limits.
	Connections int `json:"connections"`
	// ConnectionsByState splits Connections by pg_stat_activity.state:
	// "active", "idle", "idle in transaction", "idle in transaction
	// (aborted)", "fastpath function call", "disabled", or "unknown" when
	// the role may not see another role's sessions.
	ConnectionsByState map[string]int `json:"connections_by_state"`
	// ConnectionsByDatabase and ConnectionsByUser split Connections by
	// database and by role (Quay and Clair often share a server).
	ConnectionsByDatabase map[string]int `json:"connections_by_database"`
	ConnectionsByUser     map[string]int `json:"connections_by_user"`
	// ConnectionsFree is what ordinary roles can still open:
	// MaxConnections − SuperuserReservedConnections − Connections.
	ConnectionsFree int `json:"connections_free"`
	// ConnectionsUsedRatio is Connections / (MaxConnections −
	// SuperuserReservedConnections), 0…1 (above 1 when superusers use the
	// reserved slots).
	ConnectionsUsedRatio float64 `json:"connections_used_ratio"`
	// Database is current_database(), and DatabaseSizeBytes its size.
	Database          string `json:"database"`
	DatabaseSizeBytes int64  `json:"database_size_bytes"`
	// StartedAt is pg_postmaster_start_time(); UptimeSeconds is the time
	// since then.
	StartedAt     time.Time `json:"started_at"`
	UptimeSeconds float64   `json:"uptime_seconds"`
	// CurrentUser is the role connected. Superuser and ReadAllStats say
	// whether it sees other roles' sessions in full (without either,
	// pg_stat_activity hides their state and query).
	CurrentUser  string `json:"current_user"`
	Superuser    bool   `json:"superuser"`
	ReadAllStats bool   `json:"read_all_stats"`
	// InRecovery is pg_is_in_recovery(): true on a standby (read-only).
	InRecovery bool `json:"in_recovery"`
}

// Server reads the server's version, connection limits and use, the
// current database's size and the uptime.
func Server(ctx context.Context, q Querier) (ServerInfo, error) {
	var s ServerInfo
	err := q.QueryRow(ctx, `SELECT version(),
		current_setting('server_version_num')::int,
		current_setting('max_connections')::int,
		current_setting('superuser_reserved_connections')::int,
		current_database(),
		pg_database_size(current_database()),
		pg_postmaster_start_time(),
		EXTRACT(EPOCH FROM clock_timestamp() - pg_postmaster_start_time())::float8,
		current_user,
		COALESCE((SELECT rolsuper FROM pg_roles WHERE rolname = current_user), false),
		pg_has_role(current_user, 'pg_read_all_stats', 'MEMBER'),
		pg_is_in_recovery()`).Scan(&s.Version, &s.VersionNum, &s.MaxConnections, &s.SuperuserReservedConnections,
		&s.Database, &s.DatabaseSizeBytes, &s.StartedAt, &s.UptimeSeconds, &s.CurrentUser, &s.Superuser, &s.ReadAllStats, &s.InRecovery)
	if err != nil {
		return s, fmt.Errorf("read the server's settings: %w", err)
	}
	s.StartedAt = s.StartedAt.UTC()
	rows, err := q.Query(ctx, `SELECT COALESCE(state, 'unknown'), COALESCE(datname, ''), COALESCE(usename, ''), count(*)::int
		FROM pg_stat_activity WHERE backend_type = 'client backend' GROUP BY 1, 2, 3`)
	if err != nil {
		return s, fmt.Errorf("count connections in pg_stat_activity: %w", err)
	}
	defer rows.Close()
	s.ConnectionsByState, s.ConnectionsByDatabase, s.ConnectionsByUser = map[string]int{}, map[string]int{}, map[string]int{}
	for rows.Next() {
		var state, db, user string
		var n int
		if err := rows.Scan(&state, &db, &user, &n); err != nil {
			return s, fmt.Errorf("count connections: %w", err)
		}
		s.Connections += n
		s.ConnectionsByState[state] += n
		s.ConnectionsByDatabase[db] += n
		s.ConnectionsByUser[user] += n
	}
	if err := rows.Err(); err != nil {
		return s, fmt.Errorf("count connections: %w", err)
	}
	usable := s.MaxConnections - s.SuperuserReservedConnections
	s.ConnectionsFree = usable - s.Connections
	if usable > 0 {
		s.ConnectionsUsedRatio = float64(s.Connections) / float64(usable)
	}
	return s, nil
}

// Session is one client connection in pg_stat_activity
// (fact database/activity.json holds []Session).
type Session struct {
	PID             int    `json:"pid"`
	User            string `json:"user"`
	Database        string `json:"database"`
	ApplicationName string `json:"application_name"`
	// ClientAddr is the client's IP address; "" for a Unix socket.
	ClientAddr string `json:"client_addr"`
	// State is "active", "idle", "idle in transaction", "idle in
	// transaction (aborted)", … or "" when the role may not see it.
	State string `json:"state"`
	// WaitEventType and WaitEvent say what an active session waits for
	// ("Lock"/"relation", "IO"/"DataFileRead", "Client"/"ClientRead" …).
	WaitEventType string     `json:"wait_event_type,omitempty"`
	WaitEvent     string     `json:"wait_event,omitempty"`
	BackendStart  time.Time  `json:"backend_start"`
	XactStart     *time.Time `json:"xact_start,omitempty"`
	QueryStart    *time.Time `json:"query_start,omitempty"`
	StateChange   *time.Time `json:"state_change,omitempty"`
	// QuerySeconds is the time since the current (or, when idle, the last)
	// query started; TransactionSeconds the time since the open
	// transaction began (0 without one); StateSeconds the time spent in
	// State. An "idle in transaction" session with a large
	// TransactionSeconds holds its locks and keeps VACUUM from cleaning up.
	QuerySeconds       float64 `json:"query_seconds"`
	TransactionSeconds float64 `json:"transaction_seconds"`
	StateSeconds       float64 `json:"state_seconds"`
	// BlockedBy lists the pids holding the lock this session waits for
	// (pg_blocking_pids); empty when it waits for none.
	BlockedBy []int `json:"blocked_by"`
	// Query is the current or last statement, redacted and cut to
	// MaxQueryLen characters (QueryTruncated then).
	Query          string `json:"query"`
	QueryTruncated bool   `json:"query_truncated,omitempty"`
}

// Activity lists the client sessions other than the caller's own: those
// in a transaction first, the oldest transaction first, then the others
// by the start of their last query.
func Activity(ctx context.Context, q Querier) ([]Session, error) {
	rows, err := q.Query(ctx, `SELECT pid, usename, datname, application_name, host(client_addr), state,
		wait_event_type, wait_event, backend_start, xact_start, query_start, state_change,
		EXTRACT(EPOCH FROM clock_timestamp() - query_start)::float8,
		EXTRACT(EPOCH FROM clock_timestamp() - xact_start)::float8,
		EXTRACT(EPOCH FROM clock_timestamp() - state_change)::float8,
		pg_blocking_pids(pid), query
		FROM pg_stat_activity
		WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
		ORDER BY xact_start IS NULL, COALESCE(xact_start, query_start, backend_start), pid`)
	if err != nil {
		return nil, fmt.Errorf("read pg_stat_activity: %w", err)
	}
	defer rows.Close()
	out := []Session{}
	for rows.Next() {
		var s Session
		var user, db, app, addr, state, wet, we, query *string
		var bstart *time.Time
		var qs, xs, ss *float64
		var blocked []int32
		if err := rows.Scan(&s.PID, &user, &db, &app, &addr, &state, &wet, &we, &bstart, &s.XactStart, &s.QueryStart, &s.StateChange,
			&qs, &xs, &ss, &blocked, &query); err != nil {
			return nil, fmt.Errorf("read pg_stat_activity: %w", err)
		}
		s.User, s.Database, s.ApplicationName, s.ClientAddr = orEmpty(user), orEmpty(db), orEmpty(app), orEmpty(addr)
		s.State, s.WaitEventType, s.WaitEvent = orEmpty(state), orEmpty(wet), orEmpty(we)
		if bstart != nil {
			s.BackendStart = bstart.UTC()
		}
		s.XactStart, s.QueryStart, s.StateChange = utc(s.XactStart), utc(s.QueryStart), utc(s.StateChange)
		s.QuerySeconds, s.TransactionSeconds, s.StateSeconds = orZero(qs), orZero(xs), orZero(ss)
		s.BlockedBy = ints(blocked)
		s.Query, s.QueryTruncated = CleanQuery(orEmpty(query))
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read pg_stat_activity: %w", err)
	}
	return out, nil
}

// BlockedLock is a session waiting for a lock (fact database/locks.json
// holds []BlockedLock).
type BlockedLock struct {
	PID             int    `json:"pid"`
	User            string `json:"user"`
	Database        string `json:"database"`
	ApplicationName string `json:"application_name"`
	// LockType is pg_locks.locktype: "relation", "transactionid",
	// "tuple", "advisory" …; Mode the mode asked for
	// ("AccessShareLock" …).
	LockType string `json:"lock_type"`
	Mode     string `json:"mode"`
	// Relation is the table or index waited for ("" when the lock is not
	// on a relation); an OID when it is in another database.
	Relation string `json:"relation,omitempty"`
	// WaitedSeconds is the time since the wait began (pg_locks.waitstart,
	// PostgreSQL 14 and later; before that, since the session's last
	// state change).
	WaitedSeconds float64 `json:"waited_seconds"`
	// BlockedBy lists the blocking pids (pg_blocking_pids), Blockers what
	// each of them is doing.
	BlockedBy []int     `json:"blocked_by"`
	Blockers  []Blocker `json:"blockers"`
	// Query is the waiting statement, redacted and cut to MaxQueryLen.
	Query          string `json:"query"`
	QueryTruncated bool   `json:"query_truncated,omitempty"`
}

// Blocker is a session holding a lock others wait for.
type Blocker struct {
	PID             int    `json:"pid"`
	User            string `json:"user"`
	ApplicationName string `json:"application_name"`
	// BackendType is "client backend", "autovacuum worker" …
	BackendType string `json:"backend_type"`
	State       string `json:"state"`
	// TransactionSeconds is the age of its open transaction.
	TransactionSeconds float64 `json:"transaction_seconds"`
	// Query is its current or last statement, redacted and cut.
	Query          string `json:"query"`
	QueryTruncated bool   `json:"query_truncated,omitempty"`
}

// Locks lists every session waiting for a lock, the longest wait first,
// with the sessions that block it.
func Locks(ctx context.Context, q Querier) ([]BlockedLock, error) {
	var vnum int
	if err := q.QueryRow(ctx, `SELECT current_setting('server_version_num')::int`).Scan(&vnum); err != nil {
		return nil, fmt.Errorf("read the server version: %w", err)
	}
	waitStart := "a.state_change"
	if vnum >= 140000 {
		waitStart = "COALESCE(l.waitstart, a.state_change)"
	}
	rows, err := q.Query(ctx, `SELECT DISTINCT ON (a.pid) a.pid, a.usename, a.datname, a.application_name, l.locktype, l.mode,
		CASE WHEN l.relation IS NULL THEN NULL
			WHEN l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) THEN l.relation::regclass::text
			ELSE l.relation::text END,
		EXTRACT(EPOCH FROM clock_timestamp() - `+waitStart+`)::float8,
		pg_blocking_pids(a.pid), a.query
		FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
		WHERE NOT l.granted AND a.pid <> pg_backend_pid()
		ORDER BY a.pid`)
	if err != nil {
		return nil, fmt.Errorf("read pg_locks: %w", err)
	}
	defer rows.Close()
	out := []BlockedLock{}
	blockerPIDs := []int32{}
	for rows.Next() {
		var b BlockedLock
		var user, db, app, rel, query *string
		var waited *float64
		var blocked []int32
		if err := rows.Scan(&b.PID, &user, &db, &app, &b.LockType, &b.Mode, &rel, &waited, &blocked, &query); err != nil {
			return nil, fmt.Errorf("read pg_locks: %w", err)
		}
		b.User, b.Database, b.ApplicationName, b.Relation = orEmpty(user), orEmpty(db), orEmpty(app), orEmpty(rel)
		b.WaitedSeconds = orZero(waited)
		b.BlockedBy = ints(blocked)
		b.Blockers = []Blocker{}
		b.Query, b.QueryTruncated = CleanQuery(orEmpty(query))
		blockerPIDs = append(blockerPIDs, blocked...)
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read pg_locks: %w", err)
	}
	rows.Close()
	if len(blockerPIDs) > 0 {
		blockers, err := blockerSessions(ctx, q, blockerPIDs)
		if err != nil {
			return nil, err
		}
		for i := range out {
			for _, pid := range out[i].BlockedBy {
				if bl, ok := blockers[pid]; ok {
					out[i].Blockers = append(out[i].Blockers, bl)
				} else {
					// Gone between the two queries, or not visible.
					out[i].Blockers = append(out[i].Blockers, Blocker{PID: pid})
				}
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].WaitedSeconds > out[j].WaitedSeconds })
	return out, nil
}

// blockerSessions reads the sessions of pids, of any backend type.
func blockerSessions(ctx context.Context, q Querier, pids []int32) (map[int]Blocker, error) {
	rows, err := q.Query(ctx, `SELECT pid, usename, application_name, backend_type, state,
		EXTRACT(EPOCH FROM clock_timestamp() - xact_start)::float8, query
		FROM pg_stat_activity WHERE pid = ANY($1)`, pids)
	if err != nil {
		return nil, fmt.Errorf("read the blocking sessions: %w", err)
	}
	defer rows.Close()
	out := map[int]Blocker{}
	for rows.Next() {
		var b Blocker
		var user, app, bt, state, query *string
		var xs *float64
		if err := rows.Scan(&b.PID, &user, &app, &bt, &state, &xs, &query); err != nil {
			return nil, fmt.Errorf("read the blocking sessions: %w", err)
		}
		b.User, b.ApplicationName, b.BackendType, b.State = orEmpty(user), orEmpty(app), orEmpty(bt), orEmpty(state)
		b.TransactionSeconds = orZero(xs)
		b.Query, b.QueryTruncated = CleanQuery(orEmpty(query))
		out[b.PID] = b
	}
	return out, rows.Err()
}
