package auth

import (
	"context"
	"errors"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

func TestCheckBasic(t *testing.T) {
	f := newFixture(t)
	a := f.auth()
	ctx := context.Background()
	for _, tc := range []struct {
		name, user, pw string
		wantUser       string // on success
		wantReason     error  // on failure
		wantKind       string
		wantUserID     bool // the failure names the account
		wantSuperuser  bool
	}{
		{name: "username", user: "alice", pw: "alice-secret-1", wantUser: "alice"},
		{name: "email", user: "alice@example.com", pw: "alice-secret-1", wantUser: "alice"},
		{name: "superuser", user: "root", pw: "root-secret-1", wantUser: "root", wantSuperuser: true},
		{name: "wrong password", user: "alice", pw: "nope-nope-1", wantReason: ErrInvalidCredentials, wantKind: CredUser, wantUserID: true},
		{name: "wrong password by email", user: "alice@example.com", pw: "nope-nope-1", wantReason: ErrInvalidCredentials, wantKind: CredUser, wantUserID: true},
		{name: "unknown user", user: "mallory", pw: "whatever-1", wantReason: ErrInvalidCredentials, wantKind: CredUser},
		{name: "unknown email", user: "mallory@example.com", pw: "whatever-1", wantReason: ErrInvalidCredentials, wantKind: CredUser},
		{name: "empty password", user: "alice", pw: "", wantReason: ErrInvalidCredentials, wantKind: CredUser},
		{name: "empty username", user: "", pw: "x", wantReason: ErrInvalidCredentials, wantKind: CredUser},
		{name: "disabled user", user: "carol", pw: "carol-secret-1", wantReason: ErrUserDisabled, wantKind: CredUser, wantUserID: true},
		{name: "organisation", user: "acme", pw: "acme-secret-1", wantReason: ErrInvalidCredentials, wantKind: CredUser},
		{name: "robot without a token row", user: "alice+bot", pw: "TOKEN", wantReason: ErrInvalidCredentials, wantKind: CredRobot, wantUserID: true},
		{name: "unknown robot", user: "alice+nobody", pw: "TOKEN", wantReason: ErrInvalidCredentials, wantKind: CredRobot},
		{name: "access token", user: "$token", pw: "abc", wantReason: ErrUnsupportedCredentials, wantKind: CredAccessToken},
		{name: "oauth token malformed", user: "$oauthtoken", pw: "abc", wantReason: ErrInvalidCredentials, wantKind: CredOAuthToken},
		{name: "oauth token unknown", user: "$oauthtoken", pw: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmn", wantReason: ErrInvalidCredentials, wantKind: CredOAuthToken},
		{name: "app token malformed", user: "$app", pw: "abc", wantReason: ErrInvalidCredentials, wantKind: CredAppSpecificToken},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := a.CheckBasic(ctx, tc.user, tc.pw)
			if tc.wantReason == nil {
				if err != nil {
					t.Fatalf("CheckBasic: %v", err)
				}
				if p.Kind != KindUser || p.Username() != tc.wantUser || p.Superuser != tc.wantSuperuser {
					t.Fatalf("principal = %+v, want user %s superuser=%v", p, tc.wantUser, tc.wantSuperuser)
				}
				return
			}
			if p != nil {
				t.Fatalf("principal %v returned with error", p)
			}
			if !errors.Is(err, ErrInvalidCredentials) || !errors.Is(err, tc.wantReason) {
				t.Fatalf("error %v, want ErrInvalidCredentials and %v", err, tc.wantReason)
			}
			var le *LoginError
			if !errors.As(err, &le) {
				t.Fatalf("error %T is not a *LoginError", err)
			}
			if le.Kind != tc.wantKind || (le.UserID != 0) != tc.wantUserID {
				t.Fatalf("LoginError = %+v, want kind %s, userID known=%v", le, tc.wantKind, tc.wantUserID)
			}
		})
	}
}

func TestCheckBasicRecordsFailures(t *testing.T) {
	f := newFixture(t)
	a := f.auth()
	ctx := context.Background()
	for range 2 {
		if _, err := a.CheckBasic(ctx, "bob", "wrong-wrong"); !errors.Is(err, ErrInvalidCredentials) {
			t.Fatalf("err = %v", err)
		}
	}
	u, _ := f.st.UserByID(ctx, f.users["bob"].ID)
	if u.InvalidLoginAttempts != 2 {
		t.Fatalf("invalid_login_attempts = %d, want 2", u.InvalidLoginAttempts)
	}
	if _, err := a.CheckBasic(ctx, "bob", "bob-secret-1"); err != nil {
		t.Fatal(err)
	}
	u, _ = f.st.UserByID(ctx, f.users["bob"].ID)
	if u.InvalidLoginAttempts != 0 {
		t.Fatalf("invalid_login_attempts after success = %d, want 0", u.InvalidLoginAttempts)
	}
}

func TestCheckBasicCache(t *testing.T) {
	f := newFixture(t)
	a := f.auth()
	n := countCompares(a)
	ctx := context.Background()
	login := func(pw string) error { _, err := a.CheckBasic(ctx, "alice", pw); return err }

	if err := login("alice-secret-1"); err != nil {
		t.Fatal(err)
	}
	if n.Load() != 1 {
		t.Fatalf("bcrypt calls = %d, want 1", n.Load())
	}
	for range 5 {
		if err := login("alice-secret-1"); err != nil {
			t.Fatal(err)
		}
	}
	if n.Load() != 1 {
		t.Fatalf("cached logins ran bcrypt: %d calls", n.Load())
	}
	// A wrong password is never served from the cache.
	if err := login("alice-secret-2"); !errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("wrong password: %v", err)
	}
	if n.Load() != 2 {
		t.Fatalf("bcrypt calls = %d, want 2", n.Load())
	}
	// The e-mail form is its own cache entry.
	if _, err := a.CheckBasic(ctx, "alice@example.com", "alice-secret-1"); err != nil {
		t.Fatal(err)
	}
	if n.Load() != 3 {
		t.Fatalf("bcrypt calls = %d, want 3", n.Load())
	}

	// After the TTL, bcrypt runs again.
	f.clock.Advance(61 * time.Second)
	if err := login("alice-secret-1"); err != nil {
		t.Fatal(err)
	}
	if n.Load() != 4 {
		t.Fatalf("bcrypt calls after TTL = %d, want 4", n.Load())
	}

	// A password change invalidates the cached entry at once.
	h, _ := bcrypt.GenerateFromPassword([]byte("alice-new-secret"), bcrypt.MinCost)
	if err := f.st.SetPasswordHash(ctx, f.users["alice"].ID, string(h)); err != nil {
		t.Fatal(err)
	}
	if err := login("alice-secret-1"); !errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("old password after change: %v", err)
	}
	if err := login("alice-new-secret"); err != nil {
		t.Fatalf("new password: %v", err)
	}
	before := n.Load()
	if err := login("alice-new-secret"); err != nil {
		t.Fatal(err)
	}
	if n.Load() != before {
		t.Fatal("new password not cached")
	}

	// Disabling the account takes effect at once too.
	f.exec(`UPDATE "user" SET enabled = ? WHERE id = ?`, false, f.users["alice"].ID)
	if err := login("alice-new-secret"); !errors.Is(err, ErrUserDisabled) {
		t.Fatalf("disabled user served from cache: %v", err)
	}
}

func TestBasicCacheBounded(t *testing.T) {
	c := newBasicCache(3, time.Minute)
	now := time.Now()
	for i := range 10 {
		c.put(c.key("u", string(rune('a'+i))), basicEntry{userID: int64(i)}, now)
		if c.len() > 3 {
			t.Fatalf("cache grew to %d entries", c.len())
		}
	}
	k := c.key("u", "j")
	if _, ok := c.get(k, now); !ok {
		t.Fatal("latest entry missing")
	}
	if _, ok := c.get(k, now.Add(time.Minute)); ok {
		t.Fatal("entry served after its TTL")
	}
}
