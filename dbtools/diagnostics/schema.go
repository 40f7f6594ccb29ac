package diagnostics

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// SizesReport is the database's size and its largest tables
// (fact database/sizes.json).
type SizesReport struct {
	Database          string `json:"database"`
	DatabaseSizeBytes int64  `json:"database_size_bytes"`
	// Tables are the largest tables by TotalBytes, at most the number
	// asked for.
	Tables []TableSize `json:"tables"`
}

// TableSize is one table's disk use.
type TableSize struct {
	// Name is the table's name, schema-qualified outside "public".
	Name string `json:"name"`
	// TotalBytes = TableBytes (heap, TOAST, free-space and visibility
	// maps) + IndexBytes.
	TotalBytes int64 `json:"total_bytes"`
	TableBytes int64 `json:"table_bytes"`
	IndexBytes int64 `json:"index_bytes"`
	// RowEstimate is the planner's row count (pg_class.reltuples), or the
	// statistics' live row count when the table was never analysed.
	RowEstimate int64 `json:"row_estimate"`
}

// Sizes reads the database size and the top tables by total size.
func Sizes(ctx context.Context, q Querier, top int) (SizesReport, error) {
	var s SizesReport
	if err := q.QueryRow(ctx, `SELECT current_database(), pg_database_size(current_database())`).Scan(&s.Database, &s.DatabaseSizeBytes); err != nil {
		return s, fmt.Errorf("read the database size: %w", err)
	}
	s.Tables = []TableSize{}
	if top <= 0 {
		return s, nil
	}
	rows, err := q.Query(ctx, `SELECT CASE WHEN n.nspname = 'public' THEN c.relname ELSE n.nspname || '.' || c.relname END,
		pg_total_relation_size(c.oid), pg_table_size(c.oid), pg_indexes_size(c.oid),
		CASE WHEN c.reltuples >= 0 THEN c.reltuples::bigint ELSE COALESCE(st.n_live_tup, 0) END
		FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace
		LEFT JOIN pg_stat_user_tables st ON st.relid = c.oid
		WHERE c.relkind IN ('r', 'p', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
		ORDER BY 2 DESC, 1
		LIMIT $1`, top)
	if err != nil {
		return s, fmt.Errorf("read table sizes: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var t TableSize
		if err := rows.Scan(&t.Name, &t.TotalBytes, &t.TableBytes, &t.IndexBytes, &t.RowEstimate); err != nil {
			return s, fmt.Errorf("read table sizes: %w", err)
		}
		s.Tables = append(s.Tables, t)
	}
	if err := rows.Err(); err != nil {
		return s, fmt.Errorf("read table sizes: %w", err)
	}
	return s, nil
}

// CoreTables are tables every Quay database has (Quay's Alembic
// migrations create them); one missing means the database is not Quay's,
// or its migrations did not finish.
var CoreTables = []string{
	"user", "federatedlogin", "loginservice", "team", "teamrole", "teammember",
	"repository", "repositorypermission", "role", "visibility",
	"manifest", "manifestblob", "manifestchild", "mediatype", "tag", "tagkind",
	"imagestorage", "imagestorageplacement", "imagestoragelocation", "uploadedblob", "blobupload",
	"logentry3", "logentrykind",
	"robotaccounttoken", "oauthapplication", "oauthaccesstoken", "servicekey", "servicekeyapproval",
	"repomirrorconfig", "repomirrorrule", "queueitem",
}

// SchemaReport says whether the database holds Quay's schema, at which Alembic
// revision, and whether the extensions Quay needs are there
// (fact database/schema.json).
type SchemaReport struct {
	// AlembicTable says whether alembic_version exists; AlembicVersion is
	// its version_num ("" when the table is missing or empty).
	AlembicTable   bool   `json:"alembic_table"`
	AlembicVersion string `json:"alembic_version"`
	// QuayctlMigration is the latest migration quayctl serve applied
	// (quayctl_schema_migrations), 0 when quayctl never managed the schema.
	QuayctlMigration int `json:"quayctl_migration"`
	// ExpectedTables is CoreTables; MissingTables those not found in the
	// connection's search_path.
	ExpectedTables []string `json:"expected_tables"`
	MissingTables  []string `json:"missing_tables"`
	// Extensions are those installed in the database.
	Extensions []Extension `json:"extensions"`
	// PgTrgmInstalled says whether pg_trgm is installed in the database
	// (Quay's migrations need it: CREATE EXTENSION pg_trgm), and
	// PgTrgmAvailable whether the server could install it
	// (pg_available_extensions: the contrib package is there).
	PgTrgmInstalled bool `json:"pg_trgm_installed"`
	PgTrgmAvailable bool `json:"pg_trgm_available"`
}

// Extension is an installed extension.
type Extension struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// Schema reads the Alembic revision, checks CoreTables and lists the
// installed extensions.
func Schema(ctx context.Context, q Querier) (SchemaReport, error) {
	s := SchemaReport{ExpectedTables: slices.Clone(CoreTables), MissingTables: []string{}, Extensions: []Extension{}}
	if err := q.QueryRow(ctx, `SELECT to_regclass('alembic_version') IS NOT NULL`).Scan(&s.AlembicTable); err != nil {
		return s, fmt.Errorf("look for alembic_version: %w", err)
	}
	if s.AlembicTable {
		var v *string
		err := q.QueryRow(ctx, `SELECT max(version_num) FROM alembic_version`).Scan(&v)
		if err != nil {
			return s, fmt.Errorf("read alembic_version: %w", err)
		}
		s.AlembicVersion = orEmpty(v)
	}
	// quayctl serve records its migrations in its own table and leaves
	// alembic_version alone; its schema is as complete without it.
	var own bool
	if err := q.QueryRow(ctx, `SELECT to_regclass('quayctl_schema_migrations') IS NOT NULL`).Scan(&own); err != nil {
		return s, fmt.Errorf("look for quayctl_schema_migrations: %w", err)
	}
	if own {
		var v *int
		if err := q.QueryRow(ctx, `SELECT max(version) FROM quayctl_schema_migrations`).Scan(&v); err != nil {
			return s, fmt.Errorf("read quayctl_schema_migrations: %w", err)
		}
		if v != nil {
			s.QuayctlMigration = *v
		}
	}
	rows, err := q.Query(ctx, `SELECT t FROM unnest($1::text[]) AS t WHERE to_regclass(quote_ident(t)) IS NULL ORDER BY array_position($1::text[], t)`, CoreTables)
	if err != nil {
		return s, fmt.Errorf("look for Quay's tables: %w", err)
	}
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			rows.Close()
			return s, fmt.Errorf("look for Quay's tables: %w", err)
		}
		s.MissingTables = append(s.MissingTables, t)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return s, fmt.Errorf("look for Quay's tables: %w", err)
	}
	rows, err = q.Query(ctx, `SELECT extname, extversion FROM pg_extension ORDER BY extname`)
	if err != nil {
		return s, fmt.Errorf("list extensions: %w", err)
	}
	for rows.Next() {
		var e Extension
		if err := rows.Scan(&e.Name, &e.Version); err != nil {
			rows.Close()
			return s, fmt.Errorf("list extensions: %w", err)
		}
		s.Extensions = append(s.Extensions, e)
		if e.Name == "pg_trgm" {
			s.PgTrgmInstalled = true
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return s, fmt.Errorf("list extensions: %w", err)
	}
	if err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm')`).Scan(&s.PgTrgmAvailable); err != nil {
		return s, fmt.Errorf("read pg_available_extensions: %w", err)
	}
	return s, nil
}

// TableBloat is a table with many dead rows (fact database/bloat.json
// holds []TableBloat).
type TableBloat struct {
	// Table is the name, schema-qualified outside "public".
	Table string `json:"table"`
	// LiveTuples and DeadTuples are pg_stat_user_tables' n_live_tup and
	// n_dead_tup; DeadRatio is dead / (live + dead).
	LiveTuples int64   `json:"live_tuples"`
	DeadTuples int64   `json:"dead_tuples"`
	DeadRatio  float64 `json:"dead_ratio"`
	// LastAutovacuum and LastVacuum are absent when never.
	LastAutovacuum *time.Time `json:"last_autovacuum,omitempty"`
	LastVacuum     *time.Time `json:"last_vacuum,omitempty"`
	// AutovacuumEnabled is false when the table's storage parameters
	// turn autovacuum off (autovacuum_enabled=false).
	AutovacuumEnabled bool `json:"autovacuum_enabled"`
}

// Bloat lists the tables with at least min dead rows, the most first.
func Bloat(ctx context.Context, q Querier, min int64) ([]TableBloat, error) {
	rows, err := q.Query(ctx, `SELECT CASE WHEN st.schemaname = 'public' THEN st.relname ELSE st.schemaname || '.' || st.relname END,
		st.n_live_tup, st.n_dead_tup, st.last_autovacuum, st.last_vacuum,
		NOT COALESCE('autovacuum_enabled=false' = ANY(c.reloptions), false)
		FROM pg_stat_user_tables st JOIN pg_class c ON c.oid = st.relid
		WHERE st.n_dead_tup >= $1
		ORDER BY st.n_dead_tup DESC, 1`, min)
	if err != nil {
		return nil, fmt.Errorf("read pg_stat_user_tables: %w", err)
	}
	defer rows.Close()
	out := []TableBloat{}
	for rows.Next() {
		var b TableBloat
		if err := rows.Scan(&b.Table, &b.LiveTuples, &b.DeadTuples, &b.LastAutovacuum, &b.LastVacuum, &b.AutovacuumEnabled); err != nil {
			return nil, fmt.Errorf("read pg_stat_user_tables: %w", err)
		}
		if total := b.LiveTuples + b.DeadTuples; total > 0 {
			b.DeadRatio = float64(b.DeadTuples) / float64(total)
		}
		b.LastAutovacuum, b.LastVacuum = utc(b.LastAutovacuum), utc(b.LastVacuum)
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read pg_stat_user_tables: %w", err)
	}
	return out, nil
}
