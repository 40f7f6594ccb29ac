package password_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/quayctl/quayctl/dbtools/password"
	"github.com/quayctl/quayctl/internal/testpg"
	"github.com/quayctl/quayctl/internal/testregistry"
	"github.com/quayctl/quayctl/registry/auth"
	"github.com/quayctl/quayctl/registry/server"
	"github.com/quayctl/quayctl/registry/store"
)

// startServe runs quayctl serve's core in-process (internal/testregistry)
// with quayadmin in SUPER_USERS, and returns its address.
func startServe(t *testing.T, dbURI string) (string, *server.Server) {
	t.Helper()
	r := testregistry.Start(t, dbURI, func(s *server.Settings) { s.SuperUsers = []string{"quayadmin"} })
	return r.Addr, r.Srv
}

// TestResetThenPodmanLogin: an administrator locked out of a running
// quayctl serve on PostgreSQL gets back in: reset via direct, then podman
// login works with the new password and not with the old one, and --verify's
// token-flow check agrees.
func TestResetThenPodmanLogin(t *testing.T) {
	pm := packagePodman(t)
	dbURI := testpg.NewDatabase(t)
	addr, srv := startServe(t, dbURI)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	const oldPW, newPW = "forgotten-password", "Fresh-passw0rd;'\\"
	oldHash, err := auth.HashPassword(oldPW)
	if err != nil {
		t.Fatal(err)
	}
	u, err := srv.Store.CreateUser(ctx, store.NewUser{Username: "quayadmin", Email: "admin@example.com", PasswordHash: oldHash, Verified: true})
	if err != nil {
		t.Fatal(err)
	}
	login := func(pw string) (string, error) {
		out, err := pm.Command(ctx, "login", "--tls-verify=false", "-u", "quayadmin", "-p", pw, addr).CombinedOutput()
		return string(out), err
	}
	// The administrator has been guessing.
	for i := 0; i < 2; i++ {
		if out, err := login("guess-" + string(rune('a'+i)) + "-password"); err == nil {
			t.Fatalf("podman login with a wrong password succeeded: %s", out)
		}
	}

	tg, _, err := password.Open(ctx, password.OpenOptions{DBURI: dbURI})
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	if tg.Via() != password.ViaDirect {
		t.Fatalf("Open chose %s, want direct", tg.Via())
	}
	info, err := password.Lookup(ctx, tg, "quayadmin", []string{"quayadmin"})
	if err != nil {
		t.Fatal(err)
	}
	if info.ID != u.ID || info.InvalidLoginAttempts < 2 || !info.Superuser {
		t.Errorf("before the reset: %+v (want the failed logins counted)", info)
	}
	hash, err := password.Hash(newPW)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tg.Apply(ctx, "quayadmin", hash); err != nil {
		t.Fatal(err)
	}
	if after, _ := password.Lookup(ctx, tg, "quayadmin", nil); after.InvalidLoginAttempts != 0 {
		t.Errorf("invalid_login_attempts after the reset = %d", after.InvalidLoginAttempts)
	}

	// --verify's check: the Docker token flow.
	v, err := password.Verify(ctx, nil, "http://"+addr, "quayadmin", newPW)
	if err != nil || !v.OK || v.Method != "token" || v.Service != addr || v.Status != 200 {
		t.Errorf("Verify(new) = %+v, %v", v, err)
	}
	v, err = password.Verify(ctx, nil, "http://"+addr, "quayadmin", oldPW)
	if err != nil || v.OK || v.Status != 401 || !strings.Contains(v.Detail, "refused the new password (401: UNAUTHORIZED") {
		t.Errorf("Verify(old) = %+v, %v", v, err)
	}

	if out, err := login(oldPW); err == nil {
		t.Errorf("podman login with the old password succeeded: %s", out)
	}
	if out, err := login(newPW); err != nil || !strings.Contains(out, "Login Succeeded") {
		t.Errorf("podman login with the new password: %v\n%s", err, out)
	}
}
