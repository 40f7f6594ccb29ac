package password_test

import (
	"context"
	"errors"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/quayctl/quayctl/dbtools/password"
	"github.com/quayctl/quayctl/dbtools/pg"
)

// passwordServer speaks just enough of PostgreSQL's protocol to ask for a
// password and refuse it, as a server with md5/scram pg_hba rules does for
// a wrong one. It returns its address and the passwords it received.
func passwordServer(t *testing.T) (string, <-chan string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	got := make(chan string, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func(c net.Conn) {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				be := pgproto3.NewBackend(c, c)
				msg, err := be.ReceiveStartupMessage()
				if err != nil {
					return
				}
				sm, ok := msg.(*pgproto3.StartupMessage)
				if !ok {
					return
				}
				be.Send(&pgproto3.AuthenticationCleartextPassword{})
				if be.Flush() != nil || be.SetAuthType(pgproto3.AuthTypeCleartextPassword) != nil {
					return
				}
				if m, err := be.Receive(); err == nil {
					if p, ok := m.(*pgproto3.PasswordMessage); ok {
						got <- p.Password
					}
				}
				be.Send(&pgproto3.ErrorResponse{Severity: "FATAL", Code: "28P01",
					Message: `password authentication failed for user "` + sm.Parameters["user"] + `"`})
				_ = be.Flush()
			}(c)
		}
	}()
	return ln.Addr().String(), got
}

func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestConnectionFailures: the direct way explains an unreachable server,
// refused credentials and a missing database, never shows the password,
// and touches nothing.
func TestConnectionFailures(t *testing.T) {
	f := quayPG(t)
	id := f.addUser(t, account{Username: "quayadmin", Password: "old-password-1"})
	before := f.snapshot(t)
	host, port := hostPort(t, f.pgURI)
	pwServer, received := passwordServer(t)
	const secret = "S3cret-DB-pass"

	for _, c := range []struct {
		name string
		uri  string
		kind pg.ConnErrorKind
		want []string
	}{
		{"unreachable", "postgresql://quayuser:" + secret + "@" + closedPort(t) + "/quay?sslmode=disable", pg.ConnUnreachable,
			[]string{"connection refused", "is the database running and reachable from here?", "--via exec"}},
		{"unknown host", "postgresql://quayuser:" + secret + "@quay-quay-database.invalid:5432/quay?sslmode=disable", pg.ConnUnreachable,
			[]string{"not found", "oc port-forward"}},
		{"wrong password", "postgresql://quayuser:" + secret + "@" + pwServer + "/quay?sslmode=disable", pg.ConnAuth,
			[]string{`password authentication failed for user "quayuser" (SQLSTATE 28P01)`, `the database refused user "quayuser"`}},
		{"unknown role", "postgresql://nobody:" + secret + "@" + net.JoinHostPort(host, port) + "/" + f.dbName + "?sslmode=disable", pg.ConnAuth,
			[]string{`role "nobody" does not exist`, "check the user name and password"}},
		{"no such database", "postgresql+psycopg2://postgres:" + secret + "@" + net.JoinHostPort(host, port) + "/nodb?sslmode=disable", pg.ConnNoDatabase,
			[]string{`database "nodb" does not exist`, "check the database name"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_, failed, err := password.Open(ctx, password.OpenOptions{DBURI: c.uri})
			var ce *pg.ConnError
			if !errors.As(err, &ce) || ce.Kind != c.kind {
				t.Fatalf("Open = %v (%T), want a %s ConnError", err, err, c.kind)
			}
			if len(failed) != 1 || failed[0].Via != password.ViaDirect {
				t.Errorf("attempts = %+v", failed)
			}
			msg := err.Error()
			if strings.Contains(msg, secret) || strings.Contains(msg, url.QueryEscape(secret)) {
				t.Errorf("the error shows the database password: %s", msg)
			}
			if !strings.Contains(msg, "xxxxx@") {
				t.Errorf("the error does not name the (redacted) database: %s", msg)
			}
			for _, s := range c.want {
				if !strings.Contains(msg, s) {
					t.Errorf("error %q lacks %q", msg, s)
				}
			}
		})
	}
	select {
	case p := <-received:
		if p != secret {
			t.Errorf("the password server received %q", p)
		}
	default:
		t.Error("the password server was never asked")
	}
	if after := f.snapshot(t); after != before {
		t.Errorf("a failed connection changed the database")
	}
	if r := f.user(t, id); !password.Matches(r.Hash.String, "old-password-1") {
		t.Error("the account's password changed")
	}
}

// TestOpenOrder: direct first; when it fails and a deployment is there,
// exec; SQLite URIs go to sqlite; forcing a way that cannot work says why.
func TestOpenOrder(t *testing.T) {
	ctx := context.Background()
	f := quayPG(t)
	f.addUser(t, account{Username: "quayadmin", Password: "old-password-1"})
	// Direct is preferred when it works.
	tg, failed, err := password.Open(ctx, password.OpenOptions{DBURI: f.uri, Deployment: &fakeOpenShift{comps: operatorDatabase("postgres", f.dbName)}})
	if err != nil || tg.Via() != password.ViaDirect || len(failed) != 0 {
		t.Fatalf("Open = %v, %v, %v", tg, failed, err)
	}
	tg.Close()

	// The DB_URI of an Operator deployment names a service this host cannot
	// resolve: exec is used, with the DB_URI's user and database when the
	// pod's environment lacks them.
	dep := &fakeOpenShift{comps: operatorDatabase("", "")}
	dep.canned = func(argv []string, _ string) (string, int) { return "", 0 }
	tg, failed, err = password.Open(ctx, password.OpenOptions{
		DBURI:      "postgresql://quayuser:pw@registry-quay-database.invalid:5432/quaydb",
		Deployment: dep,
	})
	if err != nil || tg.Via() != password.ViaExec || len(failed) != 1 || failed[0].Via != password.ViaDirect {
		t.Fatalf("Open = %v, %+v, %v", tg, failed, err)
	}
	if _, err := tg.Lookup(ctx, "quayadmin"); err == nil {
		t.Error("a look-up through an exec that answers nothing found a user")
	}
	if got := strings.Join(dep.calls[0].Argv, " "); !strings.Contains(got, "-U quayuser -d quaydb") {
		t.Errorf("exec argv %q does not use the DB_URI's user and database", got)
	}
	if !strings.Contains(tg.String(), "registry-quay-database-669c8998f-v9qsl") || !strings.Contains(tg.String(), "as quayuser on database quaydb") {
		t.Errorf("String() = %q", tg.String())
	}

	// SQLite.
	s := quaySQLite(t)
	tg, failed, err = password.Open(ctx, password.OpenOptions{DBURI: s.uri})
	if err != nil || tg.Via() != password.ViaSQLite || len(failed) != 0 {
		t.Fatalf("Open(sqlite) = %v, %v, %v", tg, failed, err)
	}
	tg.Close()

	for _, c := range []struct {
		name string
		o    password.OpenOptions
		want string
	}{
		{"nothing", password.OpenOptions{}, "no database to reach"},
		{"exec without deployment", password.OpenOptions{Via: password.ViaExec, DBURI: f.uri}, "exec needs a deployment"},
		{"direct on sqlite", password.OpenOptions{Via: password.ViaDirect, DBURI: s.uri}, "is a SQLite database: use --via sqlite"},
		{"sqlite on postgres", password.OpenOptions{Via: password.ViaSQLite, DBURI: f.uri}, "no SQLite DB_URI"},
		{"missing sqlite file", password.OpenOptions{DBURI: "sqlite:////sqlite/quay_sqlite.db"}, "the file does not exist on this host"},
		{"mysql", password.OpenOptions{DBURI: "mysql+pymysql://quay:pw@db/quay"}, "uses MySQL"},
		{"bad way", password.OpenOptions{Via: "ssh"}, `unknown way "ssh"`},
		{"both fail", password.OpenOptions{DBURI: "postgresql://u:pw@" + closedPort(t) + "/quay?sslmode=disable",
			Deployment: &fakeOpenShift{comps: operatorDatabase("u", "quay")[1:]}},
			"cannot reach the registry's database:\n  direct: cannot connect"},
	} {
		_, _, err := password.Open(ctx, c.o)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
	// A mistyped SQLite path is never created.
	missing := filepath.Join(t.TempDir(), "typo.db")
	if _, _, err := password.Open(ctx, password.OpenOptions{DBURI: "sqlite:///" + missing}); err == nil {
		t.Error("Open of a missing SQLite file succeeded")
	}
	if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open created %s (%v)", missing, err)
	}
}
