package checks

import (
	"context"
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/quayctl/quayctl/diag"
)

var (
	authType       = diag.Check{ID: "auth.type", Area: AreaAuth, Title: "the authentication type and what users need to log in under it", Doc: doc("auth-type")}
	authSuperusers = diag.Check{ID: "auth.superusers", Area: AreaAuth, Title: "SUPER_USERS exist, are enabled, and are people (not robots or organisations)", Doc: doc("auth-superusers")}
	authFederated  = diag.Check{ID: "auth.federated", Area: AreaAuth, Title: "federated logins without a user, and users with no way to log in", Doc: doc("auth-federated")}
)

var authChecks = []diag.Check{
	authType.With(checkAuthType),
	authSuperusers.With(checkAuthSuperusers),
	authFederated.With(checkAuthFederated),
}

// quaySettings is the part of config.yaml the auth and other checks read.
type quaySettings struct {
	AuthenticationType string   `yaml:"AUTHENTICATION_TYPE"`
	SuperUsers         []string `yaml:"SUPER_USERS"`
	SecurityScanner    bool     `yaml:"FEATURE_SECURITY_SCANNER"`
	RepoMirror         bool     `yaml:"FEATURE_REPO_MIRROR"`
	StorageReplication bool     `yaml:"FEATURE_STORAGE_REPLICATION"`
	UserCreation       *bool    `yaml:"FEATURE_USER_CREATION"`
}

// authService is the loginservice name users of an AUTHENTICATION_TYPE are
// linked to ("" for Database: passwords live in the user table).
var authService = map[string]string{"LDAP": "ldap", "Keystone": "keystone", "JWT": "jwtauthn", "OIDC": ""}

func readSettings(ctx context.Context, f diag.Facts) (quaySettings, error) {
	var s quaySettings
	b, err := f.Get(ctx, diag.FactConfig)
	if err != nil {
		return s, err
	}
	if err := yaml.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("config.yaml: %w", err)
	}
	if s.AuthenticationType == "" {
		s.AuthenticationType = "Database"
	}
	return s, nil
}

func checkAuthType(ctx context.Context, f diag.Facts) []diag.Finding {
	c := authType
	s, err := readSettings(ctx, f)
	if err != nil {
		return []diag.Finding{c.FactError(diag.FactConfig, err)}
	}
	fd := c.Finding(diag.Info, "authentication type: "+s.AuthenticationType)
	switch s.AuthenticationType {
	case "Database":
		fd.Evidence = []string{"users log in with the password stored in Quay's database"}
	case "LDAP", "Keystone", "JWT":
		fd.Evidence = []string{"users log in through " + s.AuthenticationType + "; Quay links each to a federatedlogin row of service " + authService[s.AuthenticationType]}
	case "OIDC":
		fd.Evidence = []string{"users log in through an OIDC provider (*_LOGIN_CONFIG)"}
	default:
		fd.Evidence = []string{"users log in with " + s.AuthenticationType}
	}
	return []diag.Finding{fd}
}

type usersFact struct {
	SuperUsers []struct {
		Username        string   `json:"username"`
		Exists          bool     `json:"exists"`
		Enabled         bool     `json:"enabled"`
		Robot           bool     `json:"robot"`
		Organization    bool     `json:"organization"`
		HasPassword     bool     `json:"has_password"`
		FederatedLogins []string `json:"federated_logins"`
	} `json:"super_users"`
	Counts struct {
		Users           int64 `json:"users"`
		Disabled        int64 `json:"disabled"`
		Federated       int64 `json:"federated"`
		WithoutPassword int64 `json:"without_password"`
	} `json:"counts"`
	Federated []struct {
		Service      string `json:"service"`
		ServiceIdent string `json:"service_ident"`
		UserID       int64  `json:"user_id"`
		UserExists   bool   `json:"user_exists"`
		Username     string `json:"username"`
		Enabled      bool   `json:"enabled"`
	} `json:"federated"`
	NoLogin          []string `json:"no_login"`
	NoLoginTruncated bool     `json:"no_login_truncated"`
}

func checkAuthSuperusers(ctx context.Context, f diag.Facts) []diag.Finding {
	c := authSuperusers
	s, err := readSettings(ctx, f)
	if err != nil {
		return []diag.Finding{c.FactError(diag.FactConfig, err)}
	}
	if len(s.SuperUsers) == 0 {
		fd := c.Finding(diag.Info, "SUPER_USERS is empty: no one can use the superuser panel or API")
		fd.Remedy = "list an administrator in SUPER_USERS if you need one (quayctl reset-password can then recover its access)"
		return []diag.Finding{fd}
	}
	u, fs, ok := dbFact[usersFact](ctx, f, c, diag.FactDBUsers)
	if !ok {
		return fs
	}
	var out []diag.Finding
	service := authService[s.AuthenticationType]
	for _, su := range u.SuperUsers {
		var problems []string
		sev := diag.Fail
		switch {
		case !su.Exists:
			problems = append(problems, "no account of that name exists")
		case su.Robot:
			problems = append(problems, "it is a robot account")
		case su.Organization:
			problems = append(problems, "it is an organisation, which cannot log in")
		}
		if su.Exists && !su.Enabled {
			problems = append(problems, "the account is disabled")
		}
		if su.Exists && !su.Robot && !su.Organization {
			switch {
			case s.AuthenticationType == "Database" && !su.HasPassword:
				problems = append(problems, "it has no password, and AUTHENTICATION_TYPE is Database")
			case service != "" && !contains(su.FederatedLogins, service) && len(problems) == 0:
				// Quay links the account at first login: a warning, not a failure.
				sev = diag.Warn
				problems = append(problems, fmt.Sprintf("it is not linked to %s yet (it has never logged in through %s, or its name differs there)", service, s.AuthenticationType))
			}
		}
		fd := c.Finding(diag.OK, "superuser "+su.Username+" can log in")
		fd.Subject = su.Username
		if len(problems) > 0 {
			fd.Severity = sev
			fd.Title = "superuser " + su.Username + ": " + strings.Join(problems, "; ")
			fd.Evidence = []string{fmt.Sprintf("SUPER_USERS: %s; exists %t, enabled %t, robot %t, organization %t, password set %t, federated logins: %s",
				strings.Join(s.SuperUsers, ", "), su.Exists, su.Enabled, su.Robot, su.Organization, su.HasPassword, orNone(su.FederatedLogins))}
			switch {
			case !su.Exists:
				fd.Remedy = "create the user (quayctl user create " + su.Username + " --superuser, or the web UI), or correct the name in SUPER_USERS and restart quay"
			case su.Robot || su.Organization:
				fd.Remedy = "SUPER_USERS must name a person's account: replace " + su.Username + " with one and restart quay"
			case !su.Enabled:
				fd.Remedy = "enable the account: UPDATE public.user SET enabled = true WHERE username = '" + su.Username + "' (guide 6.2)"
			case !su.HasPassword && s.AuthenticationType == "Database":
				fd.Remedy = "set a password: quayctl reset-password " + su.Username
			default:
				fd.Remedy = "log in once as " + su.Username + " through " + s.AuthenticationType + ", or check the name matches the directory's"
			}
		}
		out = append(out, fd)
	}
	return out
}

func checkAuthFederated(ctx context.Context, f diag.Facts) []diag.Finding {
	c := authFederated
	s, err := readSettings(ctx, f)
	if err != nil {
		return []diag.Finding{c.FactError(diag.FactConfig, err)}
	}
	u, fs, ok := dbFact[usersFact](ctx, f, c, diag.FactDBUsers)
	if !ok {
		return fs
	}
	var out []diag.Finding
	var orphans []string
	for _, fl := range u.Federated {
		if !fl.UserExists {
			orphans = append(orphans, fmt.Sprintf("%s identity %q points at user id %d, which does not exist", fl.Service, fl.ServiceIdent, fl.UserID))
		}
	}
	if len(orphans) > 0 {
		fd := c.Finding(diag.Warn, fmt.Sprintf("%d federated logins have no user", len(orphans)))
		fd.Evidence = capList(orphans, dbEvidenceMax)
		fd.Remedy = "these users cannot log in through their provider: remove the rows from federatedlogin so Quay links them afresh at next login (back up first); list them with quayctl db users --federated"
		out = append(out, fd)
	}
	if len(u.NoLogin) > 0 && s.AuthenticationType == "Database" {
		fd := c.Finding(diag.Info, fmt.Sprintf("%d users have neither a password nor a federated login", len(u.NoLogin)))
		fd.Evidence = capList(u.NoLogin, dbEvidenceMax)
		fd.Remedy = "they cannot log in under Database authentication: set a password with quayctl reset-password USER if they should"
		out = append(out, fd)
	}
	if len(out) == 0 {
		fd := c.Finding(diag.OK, fmt.Sprintf("%d users, %d with federated logins, none orphaned", u.Counts.Users, u.Counts.Federated))
		out = append(out, fd)
	}
	return out
}

func capList(l []string, n int) []string {
	if len(l) <= n {
		return l
	}
	return append(append([]string(nil), l[:n]...), fmt.Sprintf("… and %d more", len(l)-n))
}

func orNone(l []string) string {
	if len(l) == 0 {
		return "none"
	}
	return strings.Join(l, ", ")
}

func contains(l []string, s string) bool {
	for _, v := range l {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}
