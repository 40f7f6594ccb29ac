package auth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/quayctl/quayctl/registry/encfield"
	"github.com/quayctl/quayctl/registry/store"
)

// Quay's token shapes (data/model/user.py, data/model/appspecifictoken.py):
// random strings of upper-case letters and digits.
const (
	robotTokenLength = 64
	// AppTokenLength is an app-specific token: the first 60 characters are
	// stored in clear to find the row, the last 60 encrypted.
	AppTokenLength        = 120
	appTokenNameLength    = 60
	tokenColumnMaxLength  = 255 // robotaccounttoken.token, appspecificauthtoken.token_secret
	quayTokenAlphabet     = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	appTokenTouchInterval = time.Minute
)

// ErrNoEncryptionKey: robots and app tokens need DATABASE_SECRET_KEY.
var ErrNoEncryptionKey = errors.New("no DATABASE_SECRET_KEY: robot and app tokens cannot be encrypted or read")

func quayRandomString(n int) (string, error) {
	var b strings.Builder
	max := big.NewInt(int64(len(quayTokenAlphabet)))
	for i := 0; i < n; i++ {
		v, err := rand.Int(rand.Reader, max)
		if err != nil {
			return "", fmt.Errorf("generate token: %w", err)
		}
		b.WriteByte(quayTokenAlphabet[v.Int64()])
	}
	return b.String(), nil
}

// NewRobotToken returns a fresh robot token and its encrypted form for
// robotaccounttoken.token. key is encfield.DeriveKey(DATABASE_SECRET_KEY).
func NewRobotToken(key []byte) (token, encrypted string, err error) {
	if len(key) == 0 {
		return "", "", ErrNoEncryptionKey
	}
	if token, err = quayRandomString(robotTokenLength); err != nil {
		return "", "", err
	}
	if encrypted, err = encfield.EncryptForField(key, token, tokenColumnMaxLength); err != nil {
		return "", "", fmt.Errorf("encrypt robot token: %w", err)
	}
	return token, encrypted, nil
}

// DecryptRobotToken reads a stored robot token.
func DecryptRobotToken(key []byte, stored string) (string, error) {
	if len(key) == 0 {
		return "", ErrNoEncryptionKey
	}
	tok, err := encfield.Decrypt(key, stored)
	if err != nil {
		return "", fmt.Errorf("decrypt robot token (is DATABASE_SECRET_KEY the one it was stored with?): %w", err)
	}
	return tok, nil
}

// EncryptionKey is the derived DATABASE_SECRET_KEY (nil when none).
func (a *Authenticator) EncryptionKey() []byte { return a.opts.EncryptionKey }

// CreateRobot creates robot "<namespace>+<short>" with a new token and
// returns the robot and its token (shown once to the caller).
func (a *Authenticator) CreateRobot(ctx context.Context, namespaceID int64, short, description string) (*store.User, string, error) {
	tok, enc, err := NewRobotToken(a.opts.EncryptionKey)
	if err != nil {
		return nil, "", err
	}
	u, err := a.st.CreateRobot(ctx, namespaceID, short, description, enc)
	if err != nil {
		return nil, "", err
	}
	return u, tok, nil
}

// RobotToken returns a robot's token in clear.
func (a *Authenticator) RobotToken(ctx context.Context, robotID int64) (string, error) {
	stored, err := a.st.RobotToken(ctx, robotID)
	if err != nil {
		return "", err
	}
	return DecryptRobotToken(a.opts.EncryptionKey, stored)
}

// RegenerateRobotToken replaces a robot's token and returns the new one.
func (a *Authenticator) RegenerateRobotToken(ctx context.Context, robotID int64) (string, error) {
	tok, enc, err := NewRobotToken(a.opts.EncryptionKey)
	if err != nil {
		return "", err
	}
	if err := a.st.SetRobotToken(ctx, robotID, enc); err != nil {
		return "", err
	}
	return tok, nil
}

// checkRobot logs a robot in with its token, as Quay's verify_robot: the
// robot and its owning namespace must exist and be enabled, and the token
// must match the decrypted robotaccounttoken. No bcrypt is involved, so
// nothing is cached.
func (a *Authenticator) checkRobot(ctx context.Context, username, token string) (*Principal, error) {
	fail := func(id int64, reason error) error {
		return &LoginError{Kind: CredRobot, Username: username, UserID: id, Reason: reason}
	}
	owner, _, _ := strings.Cut(username, "+")
	u, err := a.st.UserByName(ctx, username)
	if errors.Is(err, store.ErrNotFound) || (err == nil && !u.Robot) {
		return nil, fail(0, ErrInvalidCredentials)
	} else if err != nil {
		return nil, fmt.Errorf("check robot %q: %w", username, err)
	}
	stored, err := a.st.RobotToken(ctx, u.ID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fail(u.ID, ErrInvalidCredentials)
	} else if err != nil {
		return nil, fmt.Errorf("check robot %q: %w", username, err)
	}
	want, err := DecryptRobotToken(a.opts.EncryptionKey, stored)
	if err != nil {
		a.log.WarnContext(ctx, "cannot read a robot token", "robot", username, "err", err)
		return nil, fail(u.ID, ErrInvalidCredentials)
	}
	if token == "" || subtle.ConstantTimeCompare([]byte(want), []byte(token)) != 1 {
		return nil, fail(u.ID, ErrInvalidCredentials)
	}
	if !u.Enabled {
		return nil, fail(u.ID, ErrUserDisabled)
	}
	ns, err := a.st.UserByName(ctx, owner)
	if err != nil || !ns.Enabled {
		return nil, fail(u.ID, ErrRobotOwnerDisabled)
	}
	return a.principalFor(u), nil
}

// AppToken is a created application token: the row and the token itself,
// which is shown only once.
type AppToken struct {
	store.AppToken
	Token string
}

// CreateAppToken issues an app-specific token for u, as Quay's
// create_token: 120 random characters, the first 60 stored in clear, the
// rest encrypted. expiration nil means it never expires.
func (a *Authenticator) CreateAppToken(ctx context.Context, u *store.User, title string, expiration *time.Time) (*AppToken, error) {
	if len(a.opts.EncryptionKey) == 0 {
		return nil, ErrNoEncryptionKey
	}
	tok, err := quayRandomString(AppTokenLength)
	if err != nil {
		return nil, err
	}
	secret, err := encfield.EncryptForField(a.opts.EncryptionKey, tok[appTokenNameLength:], tokenColumnMaxLength)
	if err != nil {
		return nil, fmt.Errorf("encrypt app token: %w", err)
	}
	row, err := a.st.CreateAppToken(ctx, store.AppToken{UserID: u.ID, Title: title, TokenName: tok[:appTokenNameLength],
		TokenSecret: secret, Expiration: expiration})
	if err != nil {
		return nil, err
	}
	return &AppToken{AppToken: *row, Token: tok}, nil
}

// CheckAppToken validates an app-specific token and returns its user.
func (a *Authenticator) CheckAppToken(ctx context.Context, token string) (*Principal, error) {
	fail := func(id int64, reason error) error {
		return &LoginError{Kind: CredAppSpecificToken, Username: AppSpecificTokenUsername, UserID: id, Reason: reason}
	}
	if len(token) != AppTokenLength {
		return nil, fail(0, ErrInvalidCredentials)
	}
	t, err := a.st.AppTokenByName(ctx, token[:appTokenNameLength])
	if errors.Is(err, store.ErrNotFound) {
		return nil, fail(0, ErrInvalidCredentials)
	} else if err != nil {
		return nil, fmt.Errorf("check app token: %w", err)
	}
	if len(a.opts.EncryptionKey) == 0 {
		return nil, fail(t.UserID, ErrInvalidCredentials)
	}
	want, err := encfield.Decrypt(a.opts.EncryptionKey, t.TokenSecret)
	if err != nil || subtle.ConstantTimeCompare([]byte(want), []byte(token[appTokenNameLength:])) != 1 {
		return nil, fail(t.UserID, ErrInvalidCredentials)
	}
	now := a.now()
	if t.Expiration != nil && !now.Before(*t.Expiration) {
		return nil, fail(t.UserID, ErrTokenExpiredCredential)
	}
	u, err := a.st.UserByID(ctx, t.UserID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fail(t.UserID, ErrInvalidCredentials)
	} else if err != nil {
		return nil, err
	}
	if !loginAllowed(u) {
		return nil, fail(u.ID, ErrUserDisabled)
	}
	// last_accessed at most once a minute: a write per pull would be waste.
	if t.LastAccessed == nil || now.Sub(*t.LastAccessed) > appTokenTouchInterval {
		if err := a.st.TouchAppToken(ctx, t.ID); err != nil {
			a.log.WarnContext(ctx, "cannot record app token use", "err", err)
		}
	}
	return a.principalFor(u), nil
}

// checkAppTokenBasic is the `$app` Basic credential.
func (a *Authenticator) checkAppTokenBasic(ctx context.Context, _, secret string) (*Principal, error) {
	return a.CheckAppToken(ctx, secret)
}
