package password

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// Ways to reach the database, in the order Open tries them.
const (
	ViaDirect = "direct"
	ViaSQLite = "sqlite"
	ViaExec   = "exec"
)

// Vias lists the ways, in Open's order.
var Vias = []string{ViaDirect, ViaSQLite, ViaExec}

// AuditKind is Quay's logentrykind for a password changed on a user's behalf.
const AuditKind = "user_change_password"

// AuditSource is the "source" recorded in the audit row's metadata.
const AuditSource = "quayctl reset-password"

// Target is a Quay database reached one way. Implementations: Direct
// (PostgreSQL over pgx), SQLite, Exec (psql inside the database component).
type Target interface {
	// Via is ViaDirect, ViaSQLite or ViaExec.
	Via() string
	// String describes the database for messages, without secrets.
	String() string
	// Lookup reads the account named username. It returns *NotFoundError
	// (with suggestions) when there is none and *DuplicateError when the
	// name matches several rows. It does not judge organisations and robots:
	// Check does. UserInfo.Superuser reflects quayctl_superuser only.
	Lookup(ctx context.Context, username string) (UserInfo, error)
	// Apply stores hash as the password of username and resets
	// invalid_login_attempts, in one transaction that changes exactly one
	// row (a person's, not an organisation's or robot's) or rolls back, and
	// adds the audit row. hash must pass CheckHash.
	Apply(ctx context.Context, username, hash string) (Change, error)
	// Close releases the connection.
	Close() error
}

// UserInfo is an account as the administrator sees it before the change.
type UserInfo struct {
	ID                   int64      `json:"id"`
	Username             string     `json:"username"`
	Email                string     `json:"email"`
	Organization         bool       `json:"organization"`
	Robot                bool       `json:"robot"`
	Enabled              bool       `json:"enabled"`
	Verified             bool       `json:"verified"`
	InvalidLoginAttempts int        `json:"invalid_login_attempts"`
	LastInvalidLogin     *time.Time `json:"last_invalid_login,omitempty"`
	HasPassword          bool       `json:"has_password"` // password_hash is set (false for accounts of external logins)
	Superuser            bool       `json:"superuser"`
	// SuperuserSources says where superuser comes from: "SUPER_USERS"
	// (config.yaml) and/or "quayctl_superuser" (quayctl serve's table).
	SuperuserSources []string `json:"superuser_sources,omitempty"`
}

// Kind is "user", "organization" or "robot".
func (u UserInfo) Kind() string {
	switch {
	case u.Robot:
		return "robot"
	case u.Organization:
		return "organization"
	}
	return "user"
}

// MarkSuperuser records a source of superuser rights.
func (u *UserInfo) MarkSuperuser(source string) {
	u.Superuser = true
	if !slices.Contains(u.SuperuserSources, source) {
		u.SuperuserSources = append(u.SuperuserSources, source)
		sort.Strings(u.SuperuserSources)
	}
}

// Change is what Apply did.
type Change struct {
	UserID       int64  `json:"user_id"`
	RowsUpdated  int    `json:"rows_updated"`
	Audited      bool   `json:"audited"`                 // a logentry3 row was written
	AuditSkipped string `json:"audit_skipped,omitempty"` // why not, when not
}

// NotFoundError says no account has the name, and which ones are close.
type NotFoundError struct {
	Username    string
	Suggestions []string
}

func (e *NotFoundError) Error() string {
	msg := fmt.Sprintf("no user %q in the database", e.Username)
	if len(e.Suggestions) > 0 {
		quoted := make([]string, len(e.Suggestions))
		for i, s := range e.Suggestions {
			quoted[i] = fmt.Sprintf("%q", s)
		}
		return msg + " — did you mean " + strings.Join(quoted, ", ") + "? Usernames are case-sensitive; check the spelling, or that --db/--config names the right database"
	}
	return msg + " — check the spelling, and that --db/--config names the registry's database (it has no users of that name at all)"
}

// DuplicateError says the name matches several rows: the unique index on
// user.username is missing or broken, and changing one row would be a guess.
type DuplicateError struct {
	Username string
	Rows     int
	IDs      []int64
}

func (e *DuplicateError) Error() string {
	ids := make([]string, len(e.IDs))
	for i, id := range e.IDs {
		ids[i] = fmt.Sprint(id)
	}
	return fmt.Sprintf("%d rows of the user table are named %q (ids %s): the database is damaged (the unique index user_username is missing), so quayctl will not guess which to change — repair the duplicates first (keep one row, then re-create the index: CREATE UNIQUE INDEX user_username ON \"user\" (username)), then run reset-password again",
		e.Rows, e.Username, strings.Join(ids, ", "))
}

// NotAPersonError refuses organisations and robots: they have no password
// (robots log in with tokens; organisations not at all).
type NotAPersonError struct {
	Username string
	Kind     string // "organization" or "robot"
}

func (e *NotAPersonError) Error() string {
	if e.Kind == "robot" {
		return fmt.Sprintf("%q is a robot account, which logs in with a token, not a password — regenerate its token in the UI or API (POST /api/v1/…/robots/<name>/regenerate) instead", e.Username)
	}
	return fmt.Sprintf("%q is an organization, which has no password and cannot log in — reset the password of one of its administrators instead", e.Username)
}

// Check refuses accounts whose password must not be set.
func Check(u UserInfo) error {
	if u.Organization || u.Robot {
		return &NotAPersonError{Username: u.Username, Kind: u.Kind()}
	}
	return nil
}

// Lookup finds username through t, marks it superuser when superUsers (the
// config's SUPER_USERS) lists it, and refuses organisations and robots.
func Lookup(ctx context.Context, t Target, username string, superUsers []string) (UserInfo, error) {
	u, err := t.Lookup(ctx, username)
	if err != nil {
		return u, err
	}
	if slices.Contains(superUsers, u.Username) {
		u.MarkSuperuser("SUPER_USERS")
	}
	return u, Check(u)
}

// auditMetadata is the audit row's metadata_json.
func auditMetadata(username string) string {
	b, _ := json.Marshal(struct {
		Username string `json:"username"`
		Source   string `json:"source"`
	}{username, AuditSource})
	return string(b)
}

// Suggest returns up to n names closest to name by edit distance (at most
// half the name's length, and at least 2 edits allowed), closest first,
// ties in alphabetical order.
func Suggest(name string, candidates []string, n int) []string {
	type scored struct {
		name  string
		d     int // case-insensitive distance
		exact int // case-sensitive distance, for ties
	}
	limit := max(2, len([]rune(name))/2)
	lower := strings.ToLower(name)
	var out []scored
	for _, c := range candidates {
		if c == name {
			continue
		}
		d := distance(lower, strings.ToLower(c))
		if strings.ToLower(c) == lower {
			d = 0 // differs only in case: the likeliest mistake
		}
		if d <= limit || strings.Contains(strings.ToLower(c), lower) && len(lower) >= 3 {
			out = append(out, scored{c, d, distance(name, c)})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].d != out[j].d {
			return out[i].d < out[j].d
		}
		if out[i].exact != out[j].exact {
			return out[i].exact < out[j].exact
		}
		return out[i].name < out[j].name
	})
	var names []string
	for i := 0; i < len(out) && i < n; i++ {
		names = append(names, out[i].name)
	}
	return names
}

// distance is the Levenshtein distance between a and b, by runes.
func distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

// maxCandidates bounds how many usernames are read for suggestions.
const maxCandidates = 200000
