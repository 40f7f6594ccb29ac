package auth

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestOAuthToken(t *testing.T) {
	f := newFixture(t)
	a := f.auth()
	ctx := context.Background()
	alice := f.users["alice"]
	tok, err := a.CreateOAuthToken(ctx, alice, "automation", AllScopes, InitializeTokenLifetime)
	if err != nil {
		t.Fatal(err)
	}
	if len(tok) != 40 || strings.Trim(tok, tokenAlphabet) != "" {
		t.Fatalf("token %q is not 40 characters of [A-Za-z0-9]", tok)
	}
	p, scopes, err := a.CheckOAuthToken(ctx, tok)
	if err != nil || p.Username() != "alice" || strings.Join(scopes, " ") != strings.Join(AllScopes, " ") {
		t.Fatalf("CheckOAuthToken = %v %v %v", p, scopes, err)
	}
	// As a Basic credential for the registry, as Quay's `$oauthtoken`.
	if p, err := a.CheckBasic(ctx, OAuthTokenUsername, tok); err != nil || p.Username() != "alice" {
		t.Fatalf("$oauthtoken login = %v, %v", p, err)
	}
	// The stored half is not the token: only its first 20 characters are in clear.
	var code string
	if err := f.raw.QueryRow(`SELECT token_code FROM oauthaccesstoken WHERE token_name = ?`, tok[:20]).Scan(&code); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(code, tok[20:]) || !strings.HasPrefix(code, "$2") {
		t.Fatalf("token_code is not a bcrypt hash of the secret half: %q", code)
	}
	wrong := tok[:20] + strings.Repeat("A", 20)
	for name, bad := range map[string]string{"wrong secret half": wrong, "short": tok[:39], "empty": ""} {
		if _, _, err := a.CheckOAuthToken(ctx, bad); !errors.Is(err, ErrInvalidCredentials) {
			t.Errorf("%s: err = %v, want ErrInvalidCredentials", name, err)
		}
	}
	// Expired tokens are refused.
	f.exec(`UPDATE oauthaccesstoken SET expires_at = ? WHERE token_name = ?`, time.Now().Add(-time.Hour).UTC().Format("2006-01-02 15:04:05.000000"), tok[:20])
	if _, _, err := a.CheckOAuthToken(ctx, tok); !errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("expired token: err = %v", err)
	}
}
