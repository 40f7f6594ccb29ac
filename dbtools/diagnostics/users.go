package diagnostics

import (
	"context"
	"fmt"
	"slices"
	"sort"
)

// Account kinds: Quay keeps people, robots and organisations in one table.
const (
	KindUser         = "user"
	KindRobot        = "robot"
	KindOrganization = "organization"
)

// Login methods an Account can have (besides the federated services'
// names: ldap, github, oidc …).
const (
	LoginPassword = "password" // a password hash in the database
	LoginToken    = "token"    // a robot's token
)

// robotService is the loginservice Quay links every robot to; its
// identities are not people's logins.
const robotService = "quayrobot"

// MaxListed bounds the lists of UsersReport (federated identities,
// accounts without a login): a directory-backed Quay has one identity per
// person. The counts stay exact.
const MaxListed = 5000

// UsersReport is what the database says about who can log in
// (fact database/users.json).
type UsersReport struct {
	// SuperUsers has one entry per name of SUPER_USERS, in its order.
	SuperUsers []SuperUser `json:"super_users"`
	Counts     UserCounts  `json:"counts"`
	// Federated are the links between Quay accounts and external identity
	// providers (federatedlogin ⋈ loginservice ⋈ user), robots' own
	// quayrobot links left out; at most MaxListed, by service then name
	// (FederatedTruncated then).
	Federated          []FederatedIdentity `json:"federated"`
	FederatedTruncated bool                `json:"federated_truncated,omitempty"`
	// NoLogin lists the people (not robots or organisations) with neither
	// a password nor a federated login: they cannot log in with what the
	// database holds. At most MaxListed (NoLoginTruncated then).
	NoLogin          []string `json:"no_login"`
	NoLoginTruncated bool     `json:"no_login_truncated,omitempty"`
}

// SuperUser is a name listed in SUPER_USERS, as the database knows it.
type SuperUser struct {
	Username string `json:"username"`
	// Exists is false when no account has the name (the other fields are
	// then false and empty).
	Exists       bool `json:"exists"`
	Enabled      bool `json:"enabled"`
	Robot        bool `json:"robot"`
	Organization bool `json:"organization"`
	Verified     bool `json:"verified"`
	// HasPassword says whether password_hash is set; the hash itself is
	// never read.
	HasPassword bool `json:"has_password"`
	// FederatedLogins are the services the account is linked to (ldap,
	// github …), sorted.
	FederatedLogins []string `json:"federated_logins"`
}

// Problems says why the superuser cannot act as one; empty when it can.
func (s SuperUser) Problems() []string {
	var p []string
	switch {
	case !s.Exists:
		return []string{"no account of that name"}
	case s.Robot:
		p = append(p, "a robot account, which cannot use the superuser panel")
	case s.Organization:
		p = append(p, "an organization, which cannot log in")
	}
	if !s.Enabled {
		p = append(p, "disabled")
	}
	if !s.Robot && !s.Organization && !s.HasPassword && len(s.FederatedLogins) == 0 {
		p = append(p, "no password and no federated login")
	}
	return p
}

// UserCounts counts the accounts of each kind.
type UserCounts struct {
	// Users are people (neither robots nor organisations); Disabled how
	// many of them are disabled, Federated how many have at least one
	// federated login, WithoutPassword how many have no password hash.
	Users           int64 `json:"users"`
	Disabled        int64 `json:"disabled"`
	Federated       int64 `json:"federated"`
	WithoutPassword int64 `json:"without_password"`
	Robots          int64 `json:"robots"`
	Organizations   int64 `json:"organizations"`
}

// FederatedIdentity is one federatedlogin row.
type FederatedIdentity struct {
	// Service is the loginservice name: ldap, github, google, oidc,
	// keystone, dex, jwtauthn, or an OIDC provider's name.
	Service string `json:"service"`
	// ServiceIdent is the identity at the provider (an LDAP uid, a GitHub
	// user id, an OIDC subject).
	ServiceIdent string `json:"service_ident"`
	UserID       int64  `json:"user_id"`
	// UserExists is false when the row points to no account (a damaged
	// database: the foreign key is missing); Username, Kind and Enabled
	// are then empty.
	UserExists bool   `json:"user_exists"`
	Username   string `json:"username"`
	Kind       string `json:"kind,omitempty"`
	Enabled    bool   `json:"enabled"`
}

// Users checks each name of SUPER_USERS, counts the accounts, lists the
// federated identities and the people who have no way to log in.
func Users(ctx context.Context, q Querier, superUsers []string) (UsersReport, error) {
	r := UsersReport{SuperUsers: []SuperUser{}, Federated: []FederatedIdentity{}, NoLogin: []string{}}
	for _, name := range superUsers {
		s := SuperUser{Username: name, FederatedLogins: []string{}}
		var id int64
		err := q.QueryRow(ctx, `SELECT id, enabled, robot, organization, verified, COALESCE(password_hash, '') <> ''
			FROM "user" WHERE username = $1`, name).Scan(&id, &s.Enabled, &s.Robot, &s.Organization, &s.Verified, &s.HasPassword)
		switch {
		case err == nil:
			s.Exists = true
			if s.FederatedLogins, err = servicesOf(ctx, q, id); err != nil {
				return r, err
			}
		case isNoRows(err):
		default:
			return r, fmt.Errorf("look up superuser %q: %w", name, err)
		}
		r.SuperUsers = append(r.SuperUsers, s)
	}

	c := &r.Counts
	err := q.QueryRow(ctx, `SELECT
		count(*) FILTER (WHERE NOT u.robot AND NOT u.organization),
		count(*) FILTER (WHERE NOT u.robot AND NOT u.organization AND NOT u.enabled),
		count(*) FILTER (WHERE NOT u.robot AND NOT u.organization AND EXISTS (
			SELECT 1 FROM federatedlogin f JOIN loginservice s ON s.id = f.service_id WHERE f.user_id = u.id AND s.name <> $1)),
		count(*) FILTER (WHERE NOT u.robot AND NOT u.organization AND COALESCE(u.password_hash, '') = ''),
		count(*) FILTER (WHERE u.robot),
		count(*) FILTER (WHERE u.organization AND NOT u.robot)
		FROM "user" u`, robotService).Scan(&c.Users, &c.Disabled, &c.Federated, &c.WithoutPassword, &c.Robots, &c.Organizations)
	if err != nil {
		return r, fmt.Errorf("count accounts: %w", err)
	}

	rows, err := q.Query(ctx, `SELECT s.name, f.service_ident, f.user_id, u.id IS NOT NULL, COALESCE(u.username, ''),
		COALESCE(u.robot, false), COALESCE(u.organization, false), COALESCE(u.enabled, false)
		FROM federatedlogin f
		JOIN loginservice s ON s.id = f.service_id
		LEFT JOIN "user" u ON u.id = f.user_id
		WHERE s.name <> $1
		ORDER BY s.name, u.username NULLS FIRST, f.service_ident
		LIMIT $2`, robotService, MaxListed+1)
	if err != nil {
		return r, fmt.Errorf("read federated logins: %w", err)
	}
	for rows.Next() {
		var f FederatedIdentity
		var robot, org bool
		if err := rows.Scan(&f.Service, &f.ServiceIdent, &f.UserID, &f.UserExists, &f.Username, &robot, &org, &f.Enabled); err != nil {
			rows.Close()
			return r, fmt.Errorf("read federated logins: %w", err)
		}
		if f.UserExists {
			f.Kind = kind(robot, org)
		}
		f.ServiceIdent = redactText(f.ServiceIdent)
		r.Federated = append(r.Federated, f)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return r, fmt.Errorf("read federated logins: %w", err)
	}
	if len(r.Federated) > MaxListed {
		r.Federated, r.FederatedTruncated = r.Federated[:MaxListed], true
	}

	rows, err = q.Query(ctx, `SELECT u.username FROM "user" u
		WHERE NOT u.robot AND NOT u.organization AND COALESCE(u.password_hash, '') = ''
		AND NOT EXISTS (SELECT 1 FROM federatedlogin f JOIN loginservice s ON s.id = f.service_id WHERE f.user_id = u.id AND s.name <> $1)
		ORDER BY u.username LIMIT $2`, robotService, MaxListed+1)
	if err != nil {
		return r, fmt.Errorf("find accounts without a login: %w", err)
	}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			rows.Close()
			return r, fmt.Errorf("find accounts without a login: %w", err)
		}
		r.NoLogin = append(r.NoLogin, name)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return r, fmt.Errorf("find accounts without a login: %w", err)
	}
	if len(r.NoLogin) > MaxListed {
		r.NoLogin, r.NoLoginTruncated = r.NoLogin[:MaxListed], true
	}
	return r, nil
}

// servicesOf lists the federated services of an account, robots' own
// quayrobot link left out.
func servicesOf(ctx context.Context, q Querier, userID int64) ([]string, error) {
	rows, err := q.Query(ctx, `SELECT s.name FROM federatedlogin f JOIN loginservice s ON s.id = f.service_id
		WHERE f.user_id = $1 AND s.name <> $2 ORDER BY s.name`, userID, robotService)
	if err != nil {
		return nil, fmt.Errorf("read federated logins: %w", err)
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, fmt.Errorf("read federated logins: %w", err)
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

func kind(robot, org bool) string {
	switch {
	case robot:
		return KindRobot
	case org:
		return KindOrganization
	}
	return KindUser
}

// Account is one row of the user table as an administrator lists it
// (quayctl db users).
type Account struct {
	Username string `json:"username"`
	// Kind is KindUser, KindRobot or KindOrganization.
	Kind     string `json:"kind"`
	Enabled  bool   `json:"enabled"`
	Verified bool   `json:"verified"`
	// Superuser: listed in SUPER_USERS, or in quayctl serve's own
	// quayctl_superuser table.
	Superuser bool `json:"superuser"`
	// LoginMethods are LoginPassword when a password hash is set,
	// LoginToken for robots, then the federated services (ldap, github …),
	// sorted. Empty: the account cannot log in (organisations never can).
	LoginMethods []string `json:"login_methods"`
}

// Accounts lists accounts by name, at most limit (0: all), with their
// login methods. superUsers is SUPER_USERS.
func Accounts(ctx context.Context, q Querier, superUsers []string, limit int) ([]Account, error) {
	// quayctl serve records superusers in its own table too; a database
	// Quay created has none.
	var hasOwn bool
	ownSQL := `SELECT to_regclass('quayctl_superuser') IS NOT NULL`
	if isSQLite(q) {
		ownSQL = `SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'quayctl_superuser')`
	}
	if err := q.QueryRow(ctx, ownSQL).Scan(&hasOwn); err != nil {
		return nil, fmt.Errorf("look for quayctl_superuser: %w", err)
	}
	own := "false"
	if hasOwn {
		own = `EXISTS (SELECT 1 FROM quayctl_superuser qs WHERE qs.user_id = u.id)`
	}
	sql := `SELECT u.username, u.robot, u.organization, u.enabled, u.verified, COALESCE(u.password_hash, '') <> '',
		u.username IN (` + textSet(q, 1) + `) OR ` + own + `,
		COALESCE((SELECT ` + sortedList(q, "s.name") + ` FROM federatedlogin f JOIN loginservice s ON s.id = f.service_id
			WHERE f.user_id = u.id AND s.name <> $2), ` + emptyList(q) + `)
		FROM "user" u ORDER BY u.username`
	args := []any{nonNil(superUsers), robotService}
	if limit > 0 {
		sql += ` LIMIT $3`
		args = append(args, limit)
	}
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("list accounts: %w", err)
	}
	defer rows.Close()
	out := []Account{}
	for rows.Next() {
		var a Account
		var robot, org, hasPW bool
		var services []string
		if err := rows.Scan(&a.Username, &robot, &org, &a.Enabled, &a.Verified, &hasPW, &a.Superuser, &services); err != nil {
			return nil, fmt.Errorf("list accounts: %w", err)
		}
		a.Kind = kind(robot, org)
		a.LoginMethods = []string{}
		switch {
		case robot:
			a.LoginMethods = append(a.LoginMethods, LoginToken)
		case org:
		case hasPW:
			a.LoginMethods = append(a.LoginMethods, LoginPassword)
		}
		if !org {
			a.LoginMethods = append(a.LoginMethods, services...)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list accounts: %w", err)
	}
	return out, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	s = slices.Clone(s)
	sort.Strings(s)
	return s
}
