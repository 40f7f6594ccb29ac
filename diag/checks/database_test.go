package checks

import (
	"strconv"
	"strings"
	"testing"

	"github.com/quayctl/quayctl/diag"
)

func TestDatabaseConnection(t *testing.T) {
	c := databaseChecks[0]
	runCheck(t, c, diag.MapFacts{diag.FactDBConnection: []byte(`{"from":"quayctl","target":"postgresql://quay:<redacted>@db:5432/quay","method":"pgx","ok":true,"elapsed_ms":12}`)},
		want{diag.OK, "database.connection", "connected to postgresql://quay:<redacted>@db:5432/quay in 12 ms"})
	fs := runCheck(t, c, diag.MapFacts{diag.FactDBConnection: []byte(`{"from":"quayctl","target":"postgresql://quay:<redacted>@db:5432/quay","method":"pgx","ok":false,"error":"cannot connect to db:5432: connection refused"}`)},
		want{diag.Fail, "", "cannot connect to the database"})
	if !strings.Contains(evidence(fs[0]), "connection refused") {
		t.Error(evidence(fs[0]))
	}
	runCheck(t, c, diag.MapFacts{diag.FactDBConnection + ".error": []byte("the database is SQLite (sqlite:////data/quay.db), so the PostgreSQL checks do not apply: " + diag.ErrNotApplicable.Error())},
		want{diag.Info, "", "skipped"})
	// Other database checks stay quiet when SQLite or unreachable.
	for _, c := range databaseChecks[2:] {
		if fs := c.Run(t.Context(), diag.MapFacts{diag.FactDBServer + ".error": []byte("no database connection: refused")}); c.ID == "database.connections" && len(fs) != 0 {
			t.Errorf("%s repeated the connection failure: %s", c.ID, describe(fs))
		}
	}
}

func TestDatabaseFromQuay(t *testing.T) {
	c := databaseChecks[1]
	runCheck(t, c, diag.MapFacts{diag.FactDBFromQuay: []byte(`{"from":"quay component (quay-app)","target":"db:5432","method":"bash /dev/tcp","ok":true,"elapsed_ms":3}`)},
		want{diag.OK, "database.from-quay", "reaches db:5432"})
	runCheck(t, c, diag.MapFacts{diag.FactDBFromQuay: []byte(`{"from":"quay component (quay-app)","target":"db:5432","method":"bash /dev/tcp","ok":false,"error":"bash /dev/tcp exited 1","detail":"bash: connect: Connection refused"}`)},
		want{diag.Fail, "", "cannot reach the database at db:5432"})
	runCheck(t, c, diag.MapFacts{diag.FactDBFromQuay: []byte(`{"from":"quay component (quay)","target":"db:5432","ok":false,"error":"the quay container has none of the tools"}`)},
		want{diag.Info, "", "could not test"})
	runCheck(t, c, diag.MapFacts{diag.FactDBFromQuay + ".error": []byte("exec: " + diag.ErrNotApplicable.Error())},
		want{diag.Info, "", "skipped"})
}

func TestDatabaseConnections(t *testing.T) {
	c := databaseChecks[2]
	server := func(conns int, ratio string, extra string) diag.MapFacts {
		return diag.MapFacts{diag.FactDBServer: []byte(`{"version":"PostgreSQL 15.8 on x86_64","max_connections":100,"superuser_reserved_connections":3,
			"connections":` + itoa(conns) + `,"connections_by_state":{"active":2,"idle":` + itoa(conns-2) + `},"connections_used_ratio":` + ratio +
			`,"uptime_seconds":3600,"current_user":"quay","superuser":true` + extra + `}`)}
	}
	runCheck(t, c, server(10, "0.103", ""), want{diag.OK, "database.connections", "10 of 97 usable connections in use (10%)"})
	runCheck(t, c, server(80, "0.825", ""), want{diag.Warn, "", "connections near max_connections: 80 of 97"})
	fs := runCheck(t, c, server(96, "0.99", `,"in_recovery":true`), want{diag.Fail, "", "near max_connections"}, want{diag.Fail, "", "read-only standby"})
	if !strings.Contains(evidence(fs[0]), "max_connections 100, superuser_reserved_connections 3") {
		t.Error(evidence(fs[0]))
	}
	runCheck(t, c, diag.MapFacts{diag.FactDBServer: []byte(`{"max_connections":100,"connections":1,"connections_used_ratio":0.01,"current_user":"quay"}`)},
		want{diag.OK, "", ""}, want{diag.Info, "", "cannot see other roles' sessions"})
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestDatabaseActivity(t *testing.T) {
	c := databaseChecks[3]
	runCheck(t, c, diag.MapFacts{diag.FactDBActivity: []byte(`[{"pid":1,"state":"active","query_seconds":0.1},{"pid":2,"state":"idle"}]`)},
		want{diag.OK, "database.activity", "2 sessions, 1 active"})
	fs := runCheck(t, c, diag.MapFacts{diag.FactDBActivity: []byte(`[
		{"pid":11,"user":"quay","client_addr":"10.0.0.9","state":"active","query_seconds":2000,"transaction_seconds":2000,"query":"SELECT * FROM manifestblob\nWHERE x"},
		{"pid":12,"user":"quay","state":"idle in transaction","state_seconds":120,"transaction_seconds":130,"query":"UPDATE tag SET x=1"},
		{"pid":13,"user":"clair","state":"idle","transaction_seconds":900,"query":"BEGIN"}]`)},
		want{diag.Fail, "", "1 queries running longer than 5m0s"},
		want{diag.Warn, "", "1 sessions idle in transaction"},
		want{diag.Warn, "", "1 transactions open longer than 10m0s"})
	if !strings.Contains(evidence(fs[0]), "pid 11 quay@10.0.0.9 active, query 33m20s") || !strings.Contains(evidence(fs[0]), "SELECT * FROM manifestblob …") {
		t.Error(evidence(fs[0]))
	}
	if !strings.Contains(fs[1].Remedy, "pg_terminate_backend") {
		t.Error(fs[1].Remedy)
	}
}

func TestDatabaseLocks(t *testing.T) {
	c := databaseChecks[4]
	runCheck(t, c, diag.MapFacts{diag.FactDBLocks: []byte(`[]`)}, want{diag.OK, "database.locks", "no session waits"})
	runCheck(t, c, diag.MapFacts{diag.FactDBLocks: []byte(`[{"pid":5,"waited_seconds":1,"blocked_by":[4]}]`)}, want{diag.OK, "", ""})
	fs := runCheck(t, c, diag.MapFacts{diag.FactDBLocks: []byte(`[{"pid":21,"user":"quay","lock_type":"relation","mode":"AccessShareLock","relation":"public.tag",
		"waited_seconds":75,"blocked_by":[20],"query":"SELECT 1 FROM tag",
		"blockers":[{"pid":20,"user":"admin","state":"idle in transaction","transaction_seconds":80,"query":"LOCK TABLE tag"}]}]`)},
		want{diag.Fail, "", "sessions are blocked waiting on locks"})
	ev := evidence(fs[0])
	if !strings.Contains(ev, "pid 21 (quay) waits 1m15s for AccessShareLock on public.tag, blocked by 20") || !strings.Contains(ev, "blocker pid 20 (admin) idle in transaction") {
		t.Error(ev)
	}
	runCheck(t, c, diag.MapFacts{diag.FactDBLocks: []byte(`[{"pid":21,"waited_seconds":10,"blocked_by":[20]}]`)}, want{diag.Warn, "", "blocked"})
}

func TestDatabaseDisk(t *testing.T) {
	c := databaseChecks[5]
	sizes := []byte(`{"database":"quay","database_size_bytes":52428800,"tables":[{"name":"public.logentry3","total_bytes":20971520}]}`)
	df := func(pct string) []byte {
		return []byte("Filesystem     1024-blocks    Used Available Capacity Mounted on\n/dev/vdb          10255636 9000000   1255636      " + pct + " /var/lib/pgsql/data\n")
	}
	runCheck(t, c, diag.MapFacts{diag.FactDBSizes: sizes, diag.FactDBDiskFree: df("40%")},
		want{diag.Info, "database.disk", "database quay is 50 MiB"}, want{diag.OK, "", "database volume /var/lib/pgsql/data is 40% full (1.2 GiB free)"})
	runCheck(t, c, diag.MapFacts{diag.FactDBSizes: sizes, diag.FactDBDiskFree: df("88%")}, want{diag.Info, "", ""}, want{diag.Warn, "", "88% full"})
	runCheck(t, c, diag.MapFacts{diag.FactDBSizes: sizes, diag.FactDBDiskFree: df("99%")}, want{diag.Info, "", ""}, want{diag.Fail, "", "99% full"})
	// An external database: no component to run df in.
	runCheck(t, c, diag.MapFacts{diag.FactDBSizes: sizes, diag.FactDBDiskFree + ".error": []byte("no database component: " + diag.ErrNotApplicable.Error())},
		want{diag.Info, "", "database quay"})
}

func TestDatabaseSchema(t *testing.T) {
	c := databaseChecks[6]
	expected := `"expected_tables":["user","repository","tag"]`
	runCheck(t, c, diag.MapFacts{diag.FactDBSchema: []byte(`{"alembic_table":true,"alembic_version":"3f8e3657bb67",` + expected + `,"missing_tables":[],"pg_trgm_installed":true}`)},
		want{diag.OK, "database.schema", "Alembic revision 3f8e3657bb67"})
	runCheck(t, c, diag.MapFacts{diag.FactDBSchema: []byte(`{"quayctl_migration":3,` + expected + `,"missing_tables":[],"pg_trgm_installed":true}`)},
		want{diag.OK, "", "managed by quayctl serve (migration 3)"})
	runCheck(t, c, diag.MapFacts{diag.FactDBSchema: []byte(`{` + expected + `,"missing_tables":["user","repository","tag"],"pg_trgm_available":true}`)},
		want{diag.Fail, "", "none of Quay's tables"}, want{diag.Warn, "", "pg_trgm extension Quay requires is not installed"})
	fs := runCheck(t, c, diag.MapFacts{diag.FactDBSchema: []byte(`{"alembic_table":true,` + expected + `,"missing_tables":["tag"]}`)},
		want{diag.Fail, "", "1 of Quay's tables are missing"}, want{diag.Warn, "", "alembic_version is empty"}, want{diag.Fail, "", "not available"})
	if evidence(fs[0]) != "missing: tag" {
		t.Error(evidence(fs[0]))
	}
}

func TestDatabaseBloat(t *testing.T) {
	c := databaseChecks[7]
	runCheck(t, c, diag.MapFacts{diag.FactDBBloat: []byte(`[{"table":"public.tag","live_tuples":1000000,"dead_tuples":20000,"dead_ratio":0.02,"autovacuum_enabled":true}]`)},
		want{diag.OK, "database.bloat", "no table"})
	fs := runCheck(t, c, diag.MapFacts{diag.FactDBBloat: []byte(`[{"table":"public.logentry3","live_tuples":50000,"dead_tuples":150000,"dead_ratio":0.75,"autovacuum_enabled":false}]`)},
		want{diag.Warn, "", "1 tables have heavy dead-tuple bloat"})
	if evidence(fs[0]) != "public.logentry3: 150000 dead of 200000 rows (75%), autovacuum OFF for this table" {
		t.Error(evidence(fs[0]))
	}
}
