package auth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/quayctl/quayctl/registry/store"
)

// Usernames that carry a token instead of a password (Quay's credential_consts).
const (
	AccessTokenUsername      = "$token"
	OAuthTokenUsername       = "$oauthtoken"
	AppSpecificTokenUsername = "$app"
)

func bcryptCompare(hash, pw []byte) error { return bcrypt.CompareHashAndPassword(hash, pw) }

// dummyHash is compared against when no account matches, so that the answer
// takes as long as for a real account and does not reveal which usernames
// exist.
var dummyHash = sync.OnceValue(func() []byte {
	h, err := bcrypt.GenerateFromPassword([]byte("quayctl timing equaliser"), BcryptCost)
	if err != nil {
		panic(fmt.Sprintf("bcrypt: %v", err)) // only on a broken crypto library
	}
	return h
})

// credentialChecker validates one kind of Basic credential.
type credentialChecker func(a *Authenticator, ctx context.Context, username, secret string) (*Principal, error)

// credentialCheckers dispatches on the credential kind. `$token` (Quay's
// deprecated repository build tokens) refuses cleanly with
// ErrUnsupportedCredentials.
var credentialCheckers = map[string]credentialChecker{
	CredUser:             (*Authenticator).checkUserPassword,
	CredRobot:            (*Authenticator).checkRobot,
	CredAccessToken:      unsupportedCredential(CredAccessToken),
	CredOAuthToken:       (*Authenticator).checkOAuthBasic,
	CredAppSpecificToken: (*Authenticator).checkAppTokenBasic,
}

// credentialKind classifies a Basic username as Quay's validate_credentials does.
func credentialKind(username string) string {
	switch username {
	case AccessTokenUsername:
		return CredAccessToken
	case OAuthTokenUsername:
		return CredOAuthToken
	case AppSpecificTokenUsername:
		return CredAppSpecificToken
	}
	if strings.Contains(username, "+") {
		return CredRobot
	}
	return CredUser
}

func unsupportedCredential(kind string) credentialChecker {
	return func(_ *Authenticator, _ context.Context, username, _ string) (*Principal, error) {
		return nil, &LoginError{Kind: kind, Username: username, Reason: ErrUnsupportedCredentials}
	}
}

// CheckBasic validates HTTP Basic credentials. Every refusal is a
// *LoginError (errors.Is(err, ErrInvalidCredentials)); other errors are
// infrastructure failures. Passwords are never logged.
func (a *Authenticator) CheckBasic(ctx context.Context, username, password string) (*Principal, error) {
	return credentialCheckers[credentialKind(username)](a, ctx, username, password)
}

// checkUserPassword logs a person in by username or e-mail and password.
// bcrypt costs a quarter of a second on purpose, so successful checks are
// remembered briefly; a hit is re-validated against the user row (one
// indexed query), so a password change or a disabled account takes effect at
// once.
func (a *Authenticator) checkUserPassword(ctx context.Context, username, password string) (*Principal, error) {
	if username == "" || password == "" {
		return nil, &LoginError{Kind: CredUser, Username: username, Reason: ErrInvalidCredentials}
	}
	key := a.basic.key(username, password)
	now := a.now()
	if e, ok := a.basic.get(key, now); ok {
		u, err := a.st.UserByID(ctx, e.userID)
		switch {
		case err == nil && u.PasswordHash == e.hash && loginAllowed(u) && (u.Username == username || u.Email == username):
			return a.principalFor(u), nil
		case err != nil && !errors.Is(err, store.ErrNotFound):
			return nil, fmt.Errorf("check credentials of %q: %w", username, err)
		}
		a.basic.delete(key) // stale: fall through to a full check
	}

	u, err := a.lookupLoginUser(ctx, username)
	if err != nil {
		return nil, fmt.Errorf("check credentials of %q: %w", username, err)
	}
	if u == nil || u.Organization || u.Robot || u.PasswordHash == "" {
		_ = a.compare(dummyHash(), []byte(password))
		return nil, &LoginError{Kind: CredUser, Username: username, Reason: ErrInvalidCredentials}
	}
	if a.compare([]byte(u.PasswordHash), []byte(password)) != nil {
		if err := a.st.RecordLoginAttempt(ctx, u.ID, false); err != nil {
			a.log.WarnContext(ctx, "cannot record failed login", "username", u.Username, "err", err)
		}
		return nil, &LoginError{Kind: CredUser, Username: username, UserID: u.ID, Reason: ErrInvalidCredentials}
	}
	if !u.Enabled {
		return nil, &LoginError{Kind: CredUser, Username: username, UserID: u.ID, Reason: ErrUserDisabled}
	}
	if u.InvalidLoginAttempts > 0 { // only write when there is something to reset
		if err := a.st.RecordLoginAttempt(ctx, u.ID, true); err != nil {
			a.log.WarnContext(ctx, "cannot reset failed login count", "username", u.Username, "err", err)
		}
	}
	a.basic.put(key, basicEntry{userID: u.ID, hash: u.PasswordHash}, now)
	return a.principalFor(u), nil
}

func loginAllowed(u *store.User) bool { return u.Enabled && !u.Organization && !u.Robot }

// lookupLoginUser finds the account by username, then by e-mail (non-org
// accounts only, as Quay). It returns nil, nil when neither matches.
func (a *Authenticator) lookupLoginUser(ctx context.Context, username string) (*store.User, error) {
	u, err := a.st.UserByName(ctx, username)
	if err == nil {
		return u, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	if !strings.Contains(username, "@") { // usernames never hold '@', e-mails always do
		return nil, nil
	}
	u, err = a.st.UserByEmail(ctx, username)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	return u, err
}

// basicEntry remembers a successful check: the account and its password hash
// at that time.
type basicEntry struct {
	userID  int64
	hash    string
	expires time.Time
}

// basicCache is a small bounded TTL map keyed by an HMAC-SHA256 of
// username NUL password. The HMAC key is random per process so the keys in
// memory cannot be brute-forced offline like a plain hash could.
type basicCache struct {
	mu     sync.Mutex
	secret []byte
	max    int
	ttl    time.Duration
	m      map[[32]byte]basicEntry
}

func newBasicCache(max int, ttl time.Duration) *basicCache {
	secret := make([]byte, 32)
	_, _ = rand.Read(secret) // crypto/rand.Read never fails on supported platforms
	return &basicCache{secret: secret, max: max, ttl: ttl, m: make(map[[32]byte]basicEntry)}
}

func (c *basicCache) key(username, password string) [32]byte {
	h := hmac.New(sha256.New, c.secret)
	h.Write([]byte(username))
	h.Write([]byte{0})
	h.Write([]byte(password))
	var k [32]byte
	copy(k[:], h.Sum(nil))
	return k
}

func (c *basicCache) get(k [32]byte, now time.Time) (basicEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[k]
	if !ok {
		return basicEntry{}, false
	}
	if !now.Before(e.expires) {
		delete(c.m, k)
		return basicEntry{}, false
	}
	return e, true
}

func (c *basicCache) put(k [32]byte, e basicEntry, now time.Time) {
	if c.max <= 0 || c.ttl <= 0 {
		return
	}
	e.expires = now.Add(c.ttl)
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, exists := c.m[k]; !exists && len(c.m) >= c.max {
		for kk, ee := range c.m {
			if !now.Before(ee.expires) {
				delete(c.m, kk)
			}
		}
		for kk := range c.m { // still full: drop arbitrary entries (map order is random)
			if len(c.m) < c.max {
				break
			}
			delete(c.m, kk)
		}
	}
	c.m[k] = e
}

func (c *basicCache) delete(k [32]byte) {
	c.mu.Lock()
	delete(c.m, k)
	c.mu.Unlock()
}

func (c *basicCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
