package password

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/quayctl/quayctl/collectors"
)

// ExecOptions say where psql runs and as whom.
type ExecOptions struct {
	// Component is the database component (default collectors.ComponentDatabase).
	Component string
	// Container within the component's pod ("" = the main one).
	Container string
	// User and Database override the component's POSTGRESQL_USER and
	// POSTGRESQL_DATABASE (then the DB_URI's, when the environment has none).
	User, Database string
	// FallbackUser and FallbackDatabase come from DB_URI and are used when
	// neither the options nor the component's environment name one.
	FallbackUser, FallbackDatabase string
	// PSQL is the psql binary inside the component (default "psql").
	PSQL string
}

// Exec is the Target that runs psql inside the database component through
// the deployment's exec (podman exec, the OpenShift pod's exec), as chapters
// 6.1.2 and 6.1.3 do by hand.
//
// No value is ever spliced into SQL: the username travels as a psql variable
// (-v username=…, expanded by psql as the quoted literal :'username'), and
// the hash, which CheckHash restricts to [$./A-Za-z0-9], is set by \set in
// the script read from standard input, so it does not appear in process
// listings or in the Kubernetes API server's audit log of the exec request.
// psql runs with -X (no psqlrc), -w (never prompt), -q -A -t (bare output)
// and ON_ERROR_STOP, so any failed statement ends the script before COMMIT
// and the transaction is rolled back. Scripts end with \q, so psql exits
// even if the exec channel never signals the end of standard input.
type Exec struct {
	dep  collectors.Deployment
	opts ExecOptions

	resolved       bool
	instance       string // container or pod, for messages
	user, database string
}

// NewExec returns the exec Target. Nothing runs until Lookup or Apply.
func NewExec(dep collectors.Deployment, opts ExecOptions) *Exec {
	if opts.Component == "" {
		opts.Component = collectors.ComponentDatabase
	}
	if opts.PSQL == "" {
		opts.PSQL = "psql"
	}
	return &Exec{dep: dep, opts: opts}
}

func (e *Exec) Via() string { return ViaExec }

func (e *Exec) String() string {
	who := e.opts.Component
	if e.instance != "" {
		who += " (" + e.instance + ")"
	}
	s := fmt.Sprintf("psql in the %s component of %s deployment %s", who, e.dep.Kind(), e.dep.Name())
	if e.user != "" {
		s += fmt.Sprintf(" as %s on database %s", e.user, e.database)
	}
	return s
}

func (e *Exec) Close() error { return nil }

// Resolve finds the component, checks that it runs, and settles the
// PostgreSQL user and database. Lookup and Apply call it.
func (e *Exec) Resolve(ctx context.Context) error {
	if e.resolved {
		return nil
	}
	comps, err := e.dep.Components(ctx)
	if err != nil {
		return fmt.Errorf("list the components of %s: %w", e.dep.Name(), err)
	}
	var comp *collectors.Component
	var names []string
	for i := range comps {
		names = append(names, comps[i].Name)
		// The first instance of the component, a running one if any.
		if comps[i].Name == e.opts.Component && (comp == nil || !comp.Running() && comps[i].Running()) {
			comp = &comps[i]
		}
	}
	if comp == nil {
		return &collectors.ComponentNotFoundError{Name: e.opts.Component, Available: names}
	}
	if !comp.Running() {
		return &collectors.NotRunningError{Component: comp.Name, Instance: comp.Instance, State: comp.State}
	}
	e.instance = comp.Instance
	e.user = firstNonEmpty(e.opts.User, envValue(comp.Env, "POSTGRESQL_USER"), e.opts.FallbackUser)
	e.database = firstNonEmpty(e.opts.Database, envValue(comp.Env, "POSTGRESQL_DATABASE"), e.opts.FallbackDatabase)
	if e.user == "" || e.database == "" {
		return fmt.Errorf("cannot tell which PostgreSQL user and database to use in %s: its environment has no POSTGRESQL_USER/POSTGRESQL_DATABASE and no DB_URI names them — pass --config with the registry's config.yaml, or --db postgresql://USER@HOST/DATABASE", e.instance)
	}
	e.resolved = true
	return nil
}

// envValue ignores values a collector redacted.
func envValue(env map[string]string, k string) string {
	v := env[k]
	if v == "" || strings.Contains(strings.ToLower(v), "redacted") || v == "xxxxx" {
		return ""
	}
	return v
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

// Argv is the command run in the component for a script about username.
func (e *Exec) Argv(username string) []string {
	return []string{e.opts.PSQL, "-X", "-w", "-q", "-A", "-t",
		"-v", "ON_ERROR_STOP=1",
		"-U", e.user, "-d", e.database,
		"-v", "username=" + username,
	}
}

// PSQLError is a psql run that failed: its exit code and what it said.
type PSQLError struct {
	Where  string
	Code   int
	Stderr string
}

func (e *PSQLError) Error() string {
	msg := strings.TrimSpace(e.Stderr)
	if msg == "" {
		msg = "no message"
	}
	hint := "run the same psql by hand in the component to see more (docs/reset-password.md, manual fallback)"
	switch {
	case e.Code == 126 || e.Code == 127 || strings.Contains(msg, "executable file not found") || strings.Contains(msg, "no such file"):
		hint = "the component has no psql: use --via direct (with a port-forward on OpenShift) or the manual fallback with --print-hash"
	case strings.Contains(msg, "password authentication failed") || strings.Contains(msg, "no password supplied") || strings.Contains(msg, "role") && strings.Contains(msg, "does not exist"):
		hint = "psql inside the component was refused: check POSTGRESQL_USER, or pass --db postgresql://USER:PASSWORD@127.0.0.1/DATABASE with --via direct"
	case strings.Contains(msg, "could not connect") || strings.Contains(msg, "connection to server"):
		hint = "PostgreSQL in the component does not answer: check it with quayctl logs database"
	case strings.Contains(msg, "relation \"user\" does not exist"):
		hint = "this is not Quay's database: check POSTGRESQL_DATABASE, or pass --db with the right database name"
	}
	return fmt.Sprintf("psql in %s failed (exit %d): %s — %s", e.Where, e.Code, msg, hint)
}

// run executes script with psql and returns its standard output.
func (e *Exec) run(ctx context.Context, username, script string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, scriptTimeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code, err := e.dep.Exec(ctx, e.opts.Component, e.Argv(username), collectors.ExecOptions{
		Container: e.opts.Container,
		Stdin:     strings.NewReader(script),
		Stdout:    &stdout,
		Stderr:    &stderr,
	})
	if err != nil {
		return "", fmt.Errorf("run psql in %s: %w", e.instance, err)
	}
	if code != 0 {
		return stdout.String(), &PSQLError{Where: e.instance, Code: code, Stderr: stderr.String()}
	}
	return stdout.String(), nil
}

// LookupScript reads the account, quayctl_superuser and, when there is no
// such account, the candidates for suggestions, one JSON object a line.
const LookupScript = `SELECT json_build_object('row', 'user', 'id', id, 'username', username, 'email', email,
  'organization', organization, 'robot', robot, 'enabled', enabled, 'verified', verified,
  'invalid_login_attempts', invalid_login_attempts, 'last_invalid_login', last_invalid_login,
  'has_password', password_hash IS NOT NULL)
  FROM "user" WHERE username = :'username' ORDER BY id;
SELECT (to_regclass('quayctl_superuser') IS NOT NULL)::int AS quayctl_has_su,
  (SELECT count(*) FROM "user" WHERE username = :'username') AS quayctl_n \gset
\if :quayctl_has_su
SELECT json_build_object('row', 'superuser', 'user_id', s.user_id)
  FROM quayctl_superuser s JOIN "user" u ON u.id = s.user_id WHERE u.username = :'username';
\endif
SELECT (:quayctl_n = 0)::int AS quayctl_none \gset
\if :quayctl_none
SELECT json_build_object('row', 'candidate', 'username', username)
  FROM "user" WHERE organization = false AND robot = false ORDER BY id LIMIT 200000;
\endif
\q
`

type execRow struct {
	Row                  string `json:"row"`
	ID                   int64  `json:"id"`
	UserID               int64  `json:"user_id"`
	Username             string `json:"username"`
	Email                string `json:"email"`
	Organization         bool   `json:"organization"`
	Robot                bool   `json:"robot"`
	Enabled              bool   `json:"enabled"`
	Verified             bool   `json:"verified"`
	InvalidLoginAttempts int    `json:"invalid_login_attempts"`
	LastInvalidLogin     string `json:"last_invalid_login"`
	HasPassword          bool   `json:"has_password"`
}

func parseRows(out string) ([]execRow, error) {
	var rows []execRow
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "{") {
			continue // a command tag or notice, should psql print one
		}
		var r execRow
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			return nil, fmt.Errorf("unexpected psql output line %q", truncate(line, 80))
		}
		rows = append(rows, r)
	}
	return rows, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func (e *Exec) Lookup(ctx context.Context, username string) (UserInfo, error) {
	if err := e.Resolve(ctx); err != nil {
		return UserInfo{}, err
	}
	out, err := e.run(ctx, username, LookupScript)
	if err != nil {
		return UserInfo{}, err
	}
	rows, err := parseRows(out)
	if err != nil {
		return UserInfo{}, fmt.Errorf("look up %q through %s: %w", username, e, err)
	}
	var users []UserInfo
	var candidates []string
	su := map[int64]bool{}
	for _, r := range rows {
		switch r.Row {
		case "user":
			u := UserInfo{ID: r.ID, Username: r.Username, Email: r.Email, Organization: r.Organization, Robot: r.Robot,
				Enabled: r.Enabled, Verified: r.Verified, InvalidLoginAttempts: r.InvalidLoginAttempts, HasPassword: r.HasPassword}
			if r.LastInvalidLogin != "" {
				u.LastInvalidLogin = parseTime(r.LastInvalidLogin)
			}
			users = append(users, u)
		case "superuser":
			su[r.UserID] = true
		case "candidate":
			candidates = append(candidates, r.Username)
		}
	}
	switch len(users) {
	case 0:
		return UserInfo{}, &NotFoundError{Username: username, Suggestions: Suggest(username, candidates, 3)}
	case 1:
	default:
		ids := make([]int64, len(users))
		for i, u := range users {
			ids[i] = u.ID
		}
		return UserInfo{}, &DuplicateError{Username: username, Rows: len(users), IDs: ids}
	}
	u := users[0]
	if su[u.ID] {
		u.MarkSuperuser("quayctl_superuser")
	}
	return u, nil
}

// ApplyScript is the change as one psql script: one transaction, the row
// count checked before anything is written (0 or several rows: ROLLBACK and
// report), the audit row where logentry3 and the kind exist, then COMMIT and
// a result line. :hash is set by the \set line put in front of it.
const ApplyScript = `BEGIN;
SELECT count(*) AS quayctl_n,
  count(*) FILTER (WHERE organization = false AND robot = false) AS quayctl_people,
  (count(*) = 1 AND count(*) FILTER (WHERE organization = false AND robot = false) = 1)::int AS quayctl_one
  FROM "user" WHERE username = :'username' \gset
\if :quayctl_one
UPDATE "user" SET password_hash = :'hash', invalid_login_attempts = 0
  WHERE username = :'username' AND organization = false AND robot = false
  RETURNING id AS quayctl_id \gset
SELECT (to_regclass('logentry3') IS NOT NULL AND to_regclass('logentrykind') IS NOT NULL)::int AS quayctl_has_log \gset
\if :quayctl_has_log
WITH ins AS (
  INSERT INTO logentry3 (kind_id, account_id, performer_id, repository_id, datetime, ip, metadata_json)
  SELECT id, :quayctl_id, :quayctl_id, NULL, now() AT TIME ZONE 'UTC', NULL,
    json_build_object('username', :'username', 'source', 'quayctl reset-password')::text
  FROM logentrykind WHERE name = 'user_change_password'
  RETURNING 1)
SELECT count(*) AS quayctl_audit FROM ins \gset
\else
\set quayctl_audit -1
\endif
COMMIT;
SELECT json_build_object('row', 'result', 'user_id', :quayctl_id, 'rows', 1, 'audit', :quayctl_audit);
\else
ROLLBACK;
SELECT json_build_object('row', 'refused', 'rows', :quayctl_n, 'people', :quayctl_people);
\endif
\q
`

// ApplyStdin is the complete standard input Apply sends for hash.
func ApplyStdin(hash string) string {
	return `\set hash '` + hash + "'\n" + ApplyScript
}

type applyRow struct {
	Row    string `json:"row"`
	UserID int64  `json:"user_id"`
	Rows   int    `json:"rows"`
	People int    `json:"people"`
	Audit  int    `json:"audit"`
}

func (e *Exec) Apply(ctx context.Context, username, hash string) (Change, error) {
	if err := CheckHash(hash); err != nil {
		return Change{}, fmt.Errorf("refusing to store the password hash: %w", err)
	}
	if err := e.Resolve(ctx); err != nil {
		return Change{}, err
	}
	out, err := e.run(ctx, username, ApplyStdin(hash))
	if err != nil {
		return Change{}, fmt.Errorf("%w (the transaction was not committed)", err)
	}
	var res *applyRow
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		var r applyRow
		if json.Unmarshal([]byte(line), &r) == nil && (r.Row == "result" || r.Row == "refused") {
			res = &r
		}
	}
	if res == nil {
		return Change{}, fmt.Errorf("psql in %s gave no result line (output %q): check by hand whether the password changed", e.instance, truncate(out, 200))
	}
	if res.Row == "refused" {
		// Rolled back; explain with a fresh look-up (not found, duplicate
		// rows, organisation or robot).
		u, err := e.Lookup(ctx, username)
		if err != nil {
			return Change{}, err
		}
		if err := Check(u); err != nil {
			return Change{}, err
		}
		return Change{}, fmt.Errorf("the change was rolled back: %d row(s) matched %q when it ran — run quayctl again", res.Rows, username)
	}
	ch := Change{UserID: res.UserID, RowsUpdated: res.Rows}
	switch {
	case res.Audit > 0:
		ch.Audited = true
	case res.Audit == 0:
		ch.AuditSkipped = "logentrykind has no " + AuditKind
	default:
		ch.AuditSkipped = "the database has no logentry3 table"
	}
	return ch, nil
}

// scriptTimeout bounds one psql run; a stuck exec must not hang the command.
const scriptTimeout = 2 * time.Minute
