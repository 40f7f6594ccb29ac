package checks

import (
	"strings"
	"testing"
	"time"

	"github.com/quayctl/quayctl/diag"
)

func authFacts(config, users string) diag.MapFacts {
	m := diag.MapFacts{diag.FactConfig: []byte(config)}
	if users != "" {
		m[diag.FactDBUsers] = []byte(users)
	}
	return m
}

func TestAuthType(t *testing.T) {
	runCheck(t, authChecks[0], authFacts("SERVER_HOSTNAME: q\n", ""), want{diag.Info, "auth.type", "authentication type: Database"})
	runCheck(t, authChecks[0], authFacts("AUTHENTICATION_TYPE: LDAP\n", ""), want{diag.Info, "", "LDAP"})
}

func TestAuthSuperusers(t *testing.T) {
	c := authChecks[1]
	runCheck(t, c, authFacts("SERVER_HOSTNAME: q\n", ""), want{diag.Info, "auth.superusers", "SUPER_USERS is empty"})
	users := `{"super_users":[
		{"username":"admin","exists":true,"enabled":true,"has_password":true,"federated_logins":[]},
		{"username":"ghost","exists":false},
		{"username":"org+bot","exists":true,"enabled":true,"robot":true},
		{"username":"acme","exists":true,"enabled":true,"organization":true},
		{"username":"bob","exists":true,"enabled":false,"has_password":true},
		{"username":"nopw","exists":true,"enabled":true,"has_password":false}]}`
	fs := runCheck(t, c, authFacts("SUPER_USERS: [admin, ghost, org+bot, acme, bob, nopw]\n", users),
		want{diag.OK, "", "superuser admin can log in"},
		want{diag.Fail, "", "superuser ghost: no account of that name exists"},
		want{diag.Fail, "", "superuser org+bot: it is a robot account"},
		want{diag.Fail, "", "superuser acme: it is an organisation"},
		want{diag.Fail, "", "superuser bob: the account is disabled"},
		want{diag.Fail, "", "superuser nopw: it has no password"})
	if !strings.Contains(fs[1].Remedy, "quayctl user create ghost --superuser") || !strings.Contains(fs[5].Remedy, "quayctl reset-password nopw") {
		t.Errorf("remedies: %q / %q", fs[1].Remedy, fs[5].Remedy)
	}
	// Under LDAP a superuser not linked yet is a warning (linked at first login).
	runCheck(t, c, authFacts("AUTHENTICATION_TYPE: LDAP\nSUPER_USERS: [admin, ldapadmin]\n", `{"super_users":[
		{"username":"admin","exists":true,"enabled":true,"has_password":true,"federated_logins":[]},
		{"username":"ldapadmin","exists":true,"enabled":true,"federated_logins":["ldap"]}]}`),
		want{diag.Warn, "", "superuser admin: it is not linked to ldap yet"},
		want{diag.OK, "", "superuser ldapadmin can log in"})
	// No database: the connection check says so; this one stays quiet.
	runCheck(t, c, diag.MapFacts{diag.FactConfig: []byte("SUPER_USERS: [admin]\n"), diag.FactDBUsers + ".error": []byte("no database connection: refused")})
}

func TestAuthFederated(t *testing.T) {
	c := authChecks[2]
	runCheck(t, c, authFacts("SERVER_HOSTNAME: q\n", `{"counts":{"users":3,"federated":1},"federated":[{"service":"ldap","service_ident":"alice","user_id":2,"user_exists":true,"username":"alice"}],"no_login":[]}`),
		want{diag.OK, "auth.federated", "3 users, 1 with federated logins, none orphaned"})
	fs := runCheck(t, c, authFacts("SERVER_HOSTNAME: q\n", `{"counts":{"users":3},"federated":[{"service":"github","service_ident":"1234","user_id":99,"user_exists":false}],"no_login":["carol"]}`),
		want{diag.Warn, "", "1 federated logins have no user"},
		want{diag.Info, "", "1 users have neither a password nor a federated login"})
	if !strings.Contains(evidence(fs[0]), `github identity "1234" points at user id 99`) || evidence(fs[1]) != "carol" {
		t.Errorf("evidence: %s / %s", evidence(fs[0]), evidence(fs[1]))
	}
}

func TestMirroring(t *testing.T) {
	c := mirroringChecks[0]
	defer func(f func() time.Time) { mirrorNow = f }(mirrorNow)
	mirrorNow = func() time.Time { return time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC) }
	runCheck(t, c, diag.MapFacts{diag.FactConfig: []byte("SERVER_HOSTNAME: q\n"), diag.FactDBMirrors: []byte(`[]`)}) // not used: silent
	runCheck(t, c, diag.MapFacts{diag.FactConfig: []byte("FEATURE_REPO_MIRROR: true\n"), diag.FactDBMirrors: []byte(`[]`)},
		want{diag.Info, "mirroring.configs", "no repository is mirrored"})
	mirrors := `[
		{"repository":"acme/ok","enabled":true,"external_reference":"quay.io/a/b","sync_status":"SUCCESS","robot":"acme+m","robot_enabled":true,"robot_role":"write"},
		{"repository":"acme/failed","enabled":true,"external_reference":"quay.io/a/c","sync_status":"FAIL","sync_retries_remaining":0,"robot":"acme+m","robot_enabled":true,"robot_role":"write"},
		{"repository":"acme/stuck","enabled":true,"external_reference":"quay.io/a/d","sync_status":"SYNCING","sync_expiration_date":"2026-11-23T09:00:00Z","robot":"acme+m","robot_enabled":true,"robot_role":"admin"},
		{"repository":"acme/readonly","enabled":true,"external_reference":"quay.io/a/e","sync_status":"NEVER_RUN","robot":"acme+r","robot_enabled":true,"robot_role":"read"},
		{"repository":"acme/off","enabled":false,"sync_status":"FAIL"}]`
	fs := runCheck(t, c, diag.MapFacts{diag.FactConfig: []byte("FEATURE_REPO_MIRROR: true\n"), diag.FactDBMirrors: []byte(mirrors)},
		want{diag.Fail, "", "mirror of acme/failed: last sync FAILED (0 retries left)"},
		want{diag.Warn, "", "mirror of acme/stuck: a sync has been running past its expiry"},
		want{diag.Fail, "", "mirror of acme/readonly: robot acme+r has read on the repository, it needs write"},
		want{diag.OK, "", "1 mirrored repositories without problems"})
	if fs[0].Subject != "acme/failed" || !strings.Contains(fs[0].Remedy, "quayctl logs mirror") {
		t.Errorf("%+v", fs[0])
	}
	runCheck(t, c, diag.MapFacts{diag.FactConfig: []byte("SERVER_HOSTNAME: q\n"), diag.FactDBMirrors: []byte(`[{"repository":"a/b","enabled":true,"sync_status":"SUCCESS","robot":"a+m","robot_enabled":true,"robot_role":"write"}]`)},
		want{diag.Warn, "", "FEATURE_REPO_MIRROR is off"}, want{diag.OK, "", ""})
}
