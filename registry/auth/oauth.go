package auth

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/quayctl/quayctl/registry/store"
)

// Quay's OAuth token layout: 40 characters, the first 20 stored in clear
// (token_name) to find the row, the last 20 stored as a bcrypt hash.
const (
	oauthTokenLength = 40
	oauthNameLength  = 20
	// InitializeTokenLifetime is how long user/initialize's token lives, as in Quay.
	InitializeTokenLifetime = 9000 * time.Second
)

// AllScopes are Quay's eight OAuth scopes; user/initialize grants them all.
var AllScopes = []string{"repo:read", "repo:write", "repo:admin", "repo:create", "user:read", "user:admin", "org:admin", "super:user"}

const tokenAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

func randomToken(n int) (string, error) {
	var b strings.Builder
	max := big.NewInt(int64(len(tokenAlphabet)))
	for i := 0; i < n; i++ {
		v, err := rand.Int(rand.Reader, max)
		if err != nil {
			return "", err
		}
		b.WriteByte(tokenAlphabet[v.Int64()])
	}
	return b.String(), nil
}

// CreateOAuthToken issues an OAuth access token for u under the named
// application. The token is returned once; only its hash is stored.
func (a *Authenticator) CreateOAuthToken(ctx context.Context, u *store.User, application string, scopes []string, lifetime time.Duration) (string, error) {
	tok, err := randomToken(oauthTokenLength)
	if err != nil {
		return "", fmt.Errorf("generate access token: %w", err)
	}
	hash, err := HashPassword(tok[oauthNameLength:])
	if err != nil {
		return "", err
	}
	err = a.st.CreateOAuthToken(ctx, store.NewOAuthToken{
		UserID: u.ID, ApplicationName: application, Scope: strings.Join(scopes, " "),
		TokenName: tok[:oauthNameLength], TokenCodeHash: hash, ExpiresAt: a.now().Add(lifetime),
	})
	if err != nil {
		return "", err
	}
	return tok, nil
}

// CheckOAuthToken validates an OAuth access token and returns its user and
// scopes. Successful checks are cached like passwords, so bcrypt runs once
// per token per cache lifetime, not per request.
func (a *Authenticator) CheckOAuthToken(ctx context.Context, token string) (*Principal, []string, error) {
	fail := &LoginError{Kind: CredOAuthToken, Username: OAuthTokenUsername, Reason: ErrInvalidCredentials}
	if len(token) != oauthTokenLength {
		return nil, nil, fail
	}
	t, err := a.st.OAuthToken(ctx, token[:oauthNameLength])
	if errors.Is(err, store.ErrNotFound) {
		_ = a.compare(dummyHash(), []byte(token))
		return nil, nil, fail
	} else if err != nil {
		return nil, nil, fmt.Errorf("check access token: %w", err)
	}
	key := a.basic.key(OAuthTokenUsername, token)
	now := a.now()
	if e, ok := a.basic.get(key, now); !ok || e.hash != t.TokenCodeHash || e.userID != t.UserID {
		if a.compare([]byte(t.TokenCodeHash), []byte(token[oauthNameLength:])) != nil {
			return nil, nil, fail
		}
		a.basic.put(key, basicEntry{userID: t.UserID, hash: t.TokenCodeHash}, now)
	}
	u, err := a.st.UserByID(ctx, t.UserID)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, nil, fail
		}
		return nil, nil, err
	}
	if !loginAllowed(u) {
		return nil, nil, &LoginError{Kind: CredOAuthToken, Username: u.Username, UserID: u.ID, Reason: ErrUserDisabled}
	}
	return a.principalFor(u), strings.Fields(t.Scope), nil
}

// checkOAuthBasic is the `$oauthtoken` Basic credential: the password is an
// OAuth access token, as Quay's validate_credentials accepts.
func (a *Authenticator) checkOAuthBasic(ctx context.Context, _, secret string) (*Principal, error) {
	p, _, err := a.CheckOAuthToken(ctx, secret)
	return p, err
}
