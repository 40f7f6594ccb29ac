package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/spf13/cobra"

	"github.com/quayctl/quayctl/collectors"
	"github.com/quayctl/quayctl/collectors/gather"
	"github.com/quayctl/quayctl/dbtools/diagnostics"
	"github.com/quayctl/quayctl/dbtools/pg"
	"github.com/quayctl/quayctl/internal/redact"
)

// DBActivityOptions are the flags of `quayctl db activity`.
type DBActivityOptions struct {
	IO         *IOStreams
	Target     TargetOptions
	Deployment func(context.Context) (collectors.Deployment, error)
	All        bool
	Output     string
}

// dbActivityResult is the stable JSON/YAML schema of `quayctl db activity`
// (docs/db.md).
type dbActivityResult struct {
	// Database is the DB_URI used, password redacted.
	Database string                 `json:"database"`
	Server   diagnostics.ServerInfo `json:"server"`
	// All says whether idle sessions are included.
	All      bool                  `json:"all"`
	Sessions []diagnostics.Session `json:"sessions"`
}

// NewCmdDBActivity builds `quayctl db activity`.
func NewCmdDBActivity(f *Factory, runF func(*DBActivityOptions) error) *cobra.Command {
	opts := &DBActivityOptions{IO: f.IO}
	opts.Deployment = f.deploymentFunc(&opts.Target)
	cmd := &cobra.Command{
		Use:   "activity",
		Short: "Show the database's live sessions: state, waits, transaction ages, blocking locks",
		Long: `Show the sessions connected to the registry's PostgreSQL server
(pg_stat_activity), as chapter 4 of the troubleshooting guide does with psql:
who is connected, what each session runs, how long its transaction and its
query have been open, what it waits for, and which sessions block it
(pg_blocking_pids). Sessions in a transaction come first, the oldest
transaction first: an "idle in transaction" session with a large TX AGE
holds locks and keeps VACUUM from cleaning up.

By default idle sessions are left out; --all shows them too. Query texts are
redacted (passwords, hashes, tokens) and cut to 2000 characters; the table
shows their first line.

The database is --db URI, else DB_URI of --config, else DB_URI of the
config.yaml the deployment's quay component runs with (--podman,
--openshift, or detected). It must be reachable from where quayctl runs.

Exit codes: 0 shown, 1 the database cannot be reached or read, 2 bad flags.`,
		Example: `  quayctl db activity --podman
  quayctl db activity --openshift -n quay-enterprise --all
  quayctl db activity --db 'postgresql://quayuser:PASSWORD@127.0.0.1:5432/quay' -o json`,
		Args: targetArgs(exactArgs(0, "no arguments")),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := targetFromFlags(cmd.Flags())
			if err != nil {
				return err
			}
			opts.Target = t
			if err := checkOutput(opts.Output); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return dbActivityRun(cmd.Context(), opts)
		},
	}
	addTargetFlags(cmd)
	cmd.Flags().BoolVar(&opts.All, "all", false, "include idle sessions")
	addOutputFlag(cmd, &opts.Output)
	return cmd
}

func dbActivityRun(ctx context.Context, opts *DBActivityOptions) error {
	db, err := openQuayDB(ctx, opts.IO, opts.Target, opts.Deployment, "quayctl db activity reads PostgreSQL's statistics (pg_stat_activity, pg_settings)")
	if err != nil {
		return err
	}
	defer db.close()
	res := dbActivityResult{Database: db.uri.Redacted, All: opts.All, Sessions: []diagnostics.Session{}}
	if res.Server, err = diagnostics.Server(ctx, db.conn); err != nil {
		return dbReadError(err)
	}
	sessions, err := diagnostics.Activity(ctx, db.conn)
	if err != nil {
		return dbReadError(err)
	}
	for _, s := range sessions {
		if opts.All || s.State != "idle" {
			res.Sessions = append(res.Sessions, s)
		}
	}
	// Longest-running first: the open transaction's age, then the query's.
	sort.SliceStable(res.Sessions, func(i, j int) bool {
		a, b := res.Sessions[i], res.Sessions[j]
		if a.TransactionSeconds != b.TransactionSeconds {
			return a.TransactionSeconds > b.TransactionSeconds
		}
		return a.QuerySeconds > b.QuerySeconds
	})
	return render(opts.IO.Out, opts.Output, res, func(w io.Writer) error { return dbActivityHuman(w, opts.IO.OutTTY, &res) })
}

func dbActivityHuman(w io.Writer, tty bool, res *dbActivityResult) error {
	if tty {
		s := res.Server
		states := make([]string, 0, len(s.ConnectionsByState))
		for st, n := range s.ConnectionsByState {
			states = append(states, fmt.Sprintf("%s %d", st, n))
		}
		sort.Strings(states)
		if err := heading(w, tty, fmt.Sprintf("%s: %d of %d connections in use (%s)", res.Database, s.Connections,
			s.MaxConnections-s.SuperuserReservedConnections, strings.Join(states, ", "))); err != nil {
			return err
		}
	}
	tb := newTable("PID", "USER", "STATE", "WAIT", "TX AGE", "QUERY AGE", "BLOCKED BY", "QUERY")
	tb.toneOf = func(col int, v string) tone {
		switch {
		case col == 2 && strings.HasPrefix(v, "idle in transaction"):
			return toneWarn
		case col == 6 && v != "":
			return toneBad
		}
		return toneNone
	}
	for _, s := range res.Sessions {
		wait := ""
		if s.State == "active" && s.WaitEventType != "" {
			wait = s.WaitEventType + ":" + s.WaitEvent
		}
		txAge := ""
		if s.XactStart != nil {
			txAge = formatSeconds(s.TransactionSeconds)
		}
		queryAge := ""
		if s.QueryStart != nil {
			queryAge = formatSeconds(s.QuerySeconds)
		}
		blocked := make([]string, len(s.BlockedBy))
		for i, p := range s.BlockedBy {
			blocked[i] = strconv.Itoa(p)
		}
		tb.row(strconv.Itoa(s.PID), s.User, s.State, wait, txAge, queryAge, strings.Join(blocked, ","), firstLine(s.Query, 80))
	}
	if len(res.Sessions) == 0 {
		what := "no active sessions"
		if res.All {
			what = "no other sessions"
		}
		_, err := fmt.Fprintf(w, "%s (%d connections in use, this one included)\n", what, res.Server.Connections)
		return err
	}
	return tb.render(w, tty)
}

// formatSeconds writes a duration the way ps and kubectl do: 850ms, 42s,
// 3m05s, 2h07m, 3d04h.
func formatSeconds(s float64) string {
	d := time.Duration(s * float64(time.Second))
	switch {
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%02dh", int(d.Hours())/24, int(d.Hours())%24)
}

// firstLine is the first non-empty line of s, cut to max characters.
func firstLine(s string, max int) string {
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			s = l
			break
		}
	}
	s = strings.TrimSpace(s)
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	r := []rune(s)
	return string(r[:max-1]) + "…"
}

// quayDB is a connection to the registry's database, with what the
// configuration said about it.
type quayDB struct {
	// q reads the database: conn on PostgreSQL, lite on SQLite (only
	// when the command reads just Quay's tables).
	q    diagnostics.Querier
	conn *pgx.Conn
	lite *diagnostics.SQLite
	uri  pg.URI
	// config is where DB_URI and SUPER_USERS came from ("" when only
	// --db was given); superUsers is SUPER_USERS (nil when unknown).
	config          string
	superUsers      []string
	superUsersKnown bool
}

func (d *quayDB) close() {
	if d.lite != nil {
		_ = d.lite.Close()
		return
	}
	_ = d.conn.Close(context.Background())
}

// dbSessionSetup names the session and keeps it from hanging behind the
// very locks it is meant to show, or from running away on a huge table.
const dbSessionSetup = `SET application_name = 'quayctl'; SET lock_timeout = '10s'; SET statement_timeout = '60s'`

// openQuayDB finds the registry's database from the target flags — --db,
// DB_URI of --config, or of the deployment's own config.yaml — and
// connects to it. A SQLite database (quayctl serve's default) is opened
// read-only, for the commands that read only Quay's tables; postgresOnly
// is set by those that read PostgreSQL's statistics: it names the command
// and what it reads, for the error that refuses SQLite.
func openQuayDB(ctx context.Context, ios *IOStreams, t TargetOptions, deployment func(context.Context) (collectors.Deployment, error), postgresOnly string) (*quayDB, error) {
	db := &quayDB{}
	var cfg pg.QuayConfig
	if t.Kind != TargetDirect || t.ConfigPath != "" {
		d, err := deployment(ctx)
		if err != nil {
			return nil, err
		}
		raw, src, err := gather.ReadConfig(ctx, d, gather.ConfigFromAuto, func(note string) { fmt.Fprintln(ios.ErrOut, "quayctl: "+note) })
		if err != nil {
			return nil, deploymentError("cannot find the registry's database", err)
		}
		if cfg, err = pg.ParseQuayConfig(raw); err != nil {
			return nil, &UserError{Msg: "cannot read " + src, Err: err, Remedy: "pass the database with --db URI"}
		}
		db.config, db.superUsers, db.superUsersKnown = src, cfg.SuperUsers, true
	}
	dbURI := t.DBURI
	if dbURI == "" {
		dbURI = cfg.DBURI
	}
	if dbURI == "" {
		if db.config != "" {
			return nil, &UserError{Msg: db.config + " has no DB_URI", Remedy: "pass the database with --db URI"}
		}
		return nil, &UserError{Msg: "no database given", Remedy: "pass --db URI or --config config.yaml, or name the deployment with --podman or --openshift"}
	}
	u, err := pg.ParseDBURI(dbURI, cfg.DBConnectionArgs)
	if err != nil {
		return nil, &UserError{Msg: "cannot use the database URI", Err: err}
	}
	db.uri = u
	if u.Driver != pg.DriverPostgres {
		if postgresOnly != "" {
			return nil, &UserError{Msg: fmt.Sprintf("the registry's database is SQLite (%s): %s, which SQLite does not have", u.Redacted, postgresOnly),
				Remedy: "point --db at the PostgreSQL database (postgresql://user:password@host:5432/quay)"}
		}
		lite, err := diagnostics.OpenSQLite(ctx, u.Path)
		if err != nil {
			return nil, &UserError{Msg: "cannot open the registry's SQLite database " + u.Redacted, Err: err,
				Remedy: "run quayctl where the database file is (DB_URI names it as the registry sees it), or pass --db sqlite:////path/to/quay.db"}
		}
		db.lite, db.q = lite, lite
		return db, nil
	}
	conn, err := pg.Connect(ctx, u)
	if err != nil {
		return nil, dbConnectError(err)
	}
	if _, err := conn.Exec(ctx, dbSessionSetup); err != nil {
		conn.Close(context.Background())
		return nil, dbReadError(err)
	}
	db.conn, db.q = conn, conn
	return db, nil
}

// dbConnectError turns a failed connection into a UserError whose remedy
// fits these commands (they have no --via exec to fall back on).
func dbConnectError(err error) error {
	var ce *pg.ConnError
	if !errors.As(err, &ce) {
		return &UserError{Msg: "cannot connect to the registry's database", Err: redactedError{err}}
	}
	msg := strings.TrimSuffix(ce.Error(), " — "+ce.Remedy())
	remedy := ce.Remedy()
	switch ce.Kind {
	case pg.ConnUnreachable:
		remedy = "is the database running and reachable from here? DB_URI names the host as the registry sees it; from outside the container network or cluster, forward the port (oc port-forward svc/<registry>-quay-database 5432) and pass --db with 127.0.0.1"
	case pg.ConnAuth:
		remedy = fmt.Sprintf("the database refused user %q: check the user name and password in DB_URI (the database component's POSTGRESQL_USER / POSTGRESQL_PASSWORD)", ce.User)
	case pg.ConnOther:
		remedy = "check DB_URI, or pass the database with --db URI"
	}
	return &UserError{Msg: msg, Remedy: remedy}
}

// dbReadError reports a query that failed on a reachable database.
func dbReadError(err error) error {
	msg, _ := redact.String(err.Error())
	return &UserError{Msg: "cannot read the database", Err: errors.New(msg),
		Remedy: "check that DB_URI names Quay's database and that its user may read it"}
}
