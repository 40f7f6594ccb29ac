package store

import (
	"bytes"
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"text/template"
)

// Migrations are SQL text/templates in migrations/NNNN_name.sql, one source
// for both dialects. Applied versions are recorded in our own table, so
// Quay's alembic_version is never touched.
//
//go:embed migrations/*.sql
var migrationFS embed.FS

const migrationsTable = "quayctl_schema_migrations"

type migration struct {
	version int
	name    string
	text    string
}

// templateVars are the dialect-specific spellings a migration may use.
type templateVars struct {
	SQLite, Postgres bool
	PK               string // auto-increment INTEGER primary key column type
	BigPK            string // auto-increment BIGINT primary key column type
	DateTime         string // naive UTC datetime
}

func (d *dialect) templateVars() templateVars {
	if d.pg {
		return templateVars{Postgres: true, PK: "SERIAL NOT NULL", BigPK: "BIGSERIAL NOT NULL", DateTime: "TIMESTAMP WITHOUT TIME ZONE"}
	}
	// SQLite: an INTEGER PRIMARY KEY column is the rowid, 64-bit either way.
	return templateVars{SQLite: true, PK: "INTEGER NOT NULL", BigPK: "INTEGER NOT NULL", DateTime: "DATETIME"}
}

func loadMigrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFS, "migrations")
	if err != nil {
		return nil, err
	}
	var ms []migration
	seen := map[int]string{}
	for _, e := range entries {
		prefix, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(prefix)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration file %s: name must start with a positive version number and '_'", e.Name())
		}
		if other, dup := seen[v]; dup {
			return nil, fmt.Errorf("migrations %s and %s share version %d", other, e.Name(), v)
		}
		seen[v] = e.Name()
		b, err := migrationFS.ReadFile(path.Join("migrations", e.Name()))
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: e.Name(), text: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	return ms, nil
}

// render expands a migration template for the dialect and splits it into
// statements (each ends with ";" at the end of a line; "--" lines are comments).
func (m migration) render(d *dialect) ([]string, error) {
	t, err := template.New(m.name).Option("missingkey=error").Parse(m.text)
	if err != nil {
		return nil, fmt.Errorf("migration %s: %w", m.name, err)
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, d.templateVars()); err != nil {
		return nil, fmt.Errorf("migration %s: %w", m.name, err)
	}
	return splitStatements(buf.String()), nil
}

func splitStatements(s string) []string {
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(s, "\n") {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "--") {
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
		if strings.HasSuffix(trimmed, ";") {
			stmt := strings.TrimSuffix(strings.TrimSpace(cur.String()), ";")
			out = append(out, stmt)
			cur.Reset()
		}
	}
	if rest := strings.TrimSpace(cur.String()); rest != "" {
		out = append(out, rest)
	}
	return out
}

// Migrate applies the embedded migrations not yet recorded, in one
// transaction, so a failure leaves the database as it was. Several processes
// may call it at once: PostgreSQL serialises them on an advisory lock, SQLite
// on BEGIN IMMEDIATE; the later ones find nothing left to do.
func (db *DB) Migrate(ctx context.Context) error {
	ms, err := loadMigrations()
	if err != nil {
		return err
	}
	vars := db.d.templateVars()
	err = db.inTx(ctx, func(tx *sql.Tx) error {
		if err := db.advisoryLock(ctx, tx, "quayctl_migrate"); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS `+migrationsTable+` (
			version INTEGER NOT NULL,
			applied_at `+vars.DateTime+` NOT NULL,
			CONSTRAINT pk_`+migrationsTable+` PRIMARY KEY (version))`); err != nil {
			return fmt.Errorf("create %s: %w", migrationsTable, err)
		}
		applied := map[int]bool{}
		rows, err := tx.QueryContext(ctx, "SELECT version FROM "+migrationsTable)
		if err != nil {
			return fmt.Errorf("read %s: %w", migrationsTable, err)
		}
		for rows.Next() {
			var v int
			if err := rows.Scan(&v); err != nil {
				rows.Close()
				return err
			}
			applied[v] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, m := range ms {
			if applied[m.version] {
				continue
			}
			stmts, err := m.render(&db.d)
			if err != nil {
				return err
			}
			for i, s := range stmts {
				if _, err := tx.ExecContext(ctx, s); err != nil {
					return fmt.Errorf("migration %s, statement %d (%s): %w", m.name, i+1, firstLine(s), err)
				}
			}
			if _, err := db.exec(ctx, tx, "INSERT INTO "+migrationsTable+" (version, applied_at) VALUES (?, ?)",
				m.version, db.d.ts(db.now())); err != nil {
				return fmt.Errorf("record migration %s: %w", m.name, err)
			}
			db.log.Info("applied database migration", "version", m.version, "name", m.name, "dialect", db.d.name())
		}
		if db.d.pg {
			return db.ensureTrigram(ctx, tx)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("migrate database %s: %w", db.where, err)
	}
	db.kindsMu.Lock()
	db.logKinds = nil // enum rows may have been added
	db.kindsMu.Unlock()
	return nil
}

// ensureTrigram installs pg_trgm when allowed and then Quay's GIN trigram
// indexes on repository name and description. It runs on every Migrate
// (everything is IF NOT EXISTS) so the indexes appear once an administrator
// installs the extension. Lacking the privilege is not an error: search is
// merely slower, as Quay itself is without the extension.
func (db *DB) ensureTrigram(ctx context.Context, tx *sql.Tx) error {
	if _, err := tx.ExecContext(ctx, "SAVEPOINT quayctl_trgm"); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, "CREATE EXTENSION IF NOT EXISTS pg_trgm"); err != nil {
		if _, rbErr := tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT quayctl_trgm"); rbErr != nil {
			return rbErr
		}
		db.log.Warn("PostgreSQL extension pg_trgm is not installed and could not be created; repository search indexes are skipped — ask a superuser to run CREATE EXTENSION pg_trgm",
			"error", err.Error())
	}
	if _, err := tx.ExecContext(ctx, "RELEASE SAVEPOINT quayctl_trgm"); err != nil {
		return err
	}
	var have bool
	if err := tx.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm')").Scan(&have); err != nil {
		return fmt.Errorf("check pg_trgm: %w", err)
	}
	if !have {
		return nil
	}
	for _, s := range []string{
		"CREATE INDEX IF NOT EXISTS repository_name__fulltext ON repository USING gin (name gin_trgm_ops)",
		"CREATE INDEX IF NOT EXISTS repository_description__fulltext ON repository USING gin (description gin_trgm_ops)",
	} {
		if _, err := tx.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	return nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	return s
}
