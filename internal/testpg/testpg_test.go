package testpg

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { Main(m) }

func TestNewDatabaseIsFreshAndDropped(t *testing.T) {
	ctx := context.Background()
	var name, admin string
	t.Run("use", func(t *testing.T) {
		uri := NewDatabase(t)
		if !strings.Contains(uri, "/t_") {
			t.Fatalf("URI %q does not name a test database", uri)
		}
		conn, err := pgx.Connect(ctx, uri)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		if err := conn.QueryRow(ctx, "SELECT current_database()").Scan(&name); err != nil {
			t.Fatal(err)
		}
		var tables int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").Scan(&tables); err != nil {
			t.Fatal(err)
		}
		if tables != 0 {
			t.Fatalf("fresh database has %d tables", tables)
		}
		// Leave the connection open: cleanup must still drop the database.
		if _, err := conn.Exec(ctx, "CREATE TABLE x (id int)"); err != nil {
			t.Fatal(err)
		}
		admin, err = adminURI(t)
		if err != nil {
			t.Fatal(err)
		}
	})
	if t.Failed() || t.Skipped() || admin == "" {
		return
	}
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if exists {
		t.Fatalf("database %s still exists after the test ended", name)
	}
}

func TestDatabasesAreSeparate(t *testing.T) {
	a, b := NewDatabase(t), NewDatabase(t)
	if a == b {
		t.Fatalf("two calls returned the same database %s", a)
	}
}

func TestAvailable(t *testing.T) {
	if !Available() {
		t.Skip("PostgreSQL not available")
	}
}

func TestWithDatabase(t *testing.T) {
	got := withDatabase("postgres://u:p@127.0.0.1:5432/postgres", "t_1")
	if got != "postgres://u:p@127.0.0.1:5432/t_1?sslmode=disable" {
		t.Fatalf("got %s", got)
	}
	got = withDatabase("postgres://u@db.example:5432/postgres?sslmode=require", "t_2")
	if got != "postgres://u@db.example:5432/t_2?sslmode=require" {
		t.Fatalf("got %s", got)
	}
}
