package auth

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TokenError is a refused bearer token. The specific errors below are its
// values; every one also matches ErrInvalidToken with errors.Is.
type TokenError struct{ msg string }

func (e *TokenError) Error() string { return e.msg }

// Is makes every token error match ErrInvalidToken.
func (e *TokenError) Is(target error) bool { return target == ErrInvalidToken }

// Token errors. Wrapped with detail; test with errors.Is.
var (
	ErrInvalidToken     = errors.New("invalid bearer token")
	ErrTokenMalformed   = &TokenError{"malformed bearer token"}
	ErrTokenSignature   = &TokenError{"bearer token signature is invalid"}
	ErrTokenUnknownKey  = &TokenError{"bearer token signed by an unknown or expired key"}
	ErrTokenExpired     = &TokenError{"bearer token has expired"}
	ErrTokenNotValidYet = &TokenError{"bearer token is not valid yet"}
	ErrTokenAudience    = &TokenError{"bearer token is for another audience"}
	ErrTokenIssuer      = &TokenError{"bearer token has the wrong issuer"}
	ErrTokenLifetime    = &TokenError{"bearer token lifetime is too long"}
	ErrTokenSubject     = &TokenError{"bearer token subject is unknown or disabled"}
)

// Access is one entry of the token's "access" claim.
type Access struct {
	Type    string   `json:"type"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`

	canonical string // resolved "namespace/repository", filled by VerifyToken
}

// TokenContext is Quay's "context" claim (ValidatedAuthContext.to_signed_dict
// plus the Apostille TUF fields, always "$disabled" here).
type TokenContext struct {
	Version         int               `json:"version"`
	EntityKind      string            `json:"entity_kind"`
	EntityReference string            `json:"entity_reference,omitempty"`
	Kind            string            `json:"kind"`
	User            string            `json:"user,omitempty"`
	ApostilleRoots  map[string]string `json:"com.apostille.roots"`
	ApostilleRoot   string            `json:"com.apostille.root"`
}

// disabledTUFRoot is Quay's DISABLED_TUF_ROOT: content trust is off.
const disabledTUFRoot = "$disabled"

// Claims are the claims of a registry bearer token, in Quay's layout.
type Claims struct {
	Issuer    string           `json:"iss"`
	Audience  string           `json:"aud"`
	NotBefore *jwt.NumericDate `json:"nbf"`
	IssuedAt  *jwt.NumericDate `json:"iat"`
	ExpiresAt *jwt.NumericDate `json:"exp"`
	Subject   string           `json:"sub"`
	Access    []Access         `json:"access"`
	Context   TokenContext     `json:"context"`
}

// jwt.Claims, so the library validates the registered claims.
func (c *Claims) GetExpirationTime() (*jwt.NumericDate, error) { return c.ExpiresAt, nil }
func (c *Claims) GetIssuedAt() (*jwt.NumericDate, error)       { return c.IssuedAt, nil }
func (c *Claims) GetNotBefore() (*jwt.NumericDate, error)      { return c.NotBefore, nil }
func (c *Claims) GetIssuer() (string, error)                   { return c.Issuer, nil }
func (c *Claims) GetSubject() (string, error)                  { return c.Subject, nil }
func (c *Claims) GetAudience() (jwt.ClaimStrings, error) {
	if c.Audience == "" {
		return nil, nil
	}
	return jwt.ClaimStrings{c.Audience}, nil
}

// IsAnonymous is true for tokens issued without credentials.
func (c *Claims) IsAnonymous() bool { return c.Subject == AnonymousSubject }

// Allows reports whether the token grants action on the resource. name is
// "namespace/repository" (or the name exactly as the client requested it).
// As in Quay, "*" implies push and pull, and push implies pull: a token
// grant becomes an admin, write or read permission, and the read check
// accepts all three.
func (c *Claims) Allows(resourceType, name, action string) bool {
	for _, ac := range c.Access {
		if ac.Type != resourceType || (ac.Name != name && (ac.canonical == "" || ac.canonical != name)) {
			continue
		}
		for _, have := range ac.Actions {
			if have == action || have == ActionAdmin ||
				(action == ActionPull && have == ActionPush) {
				return true
			}
		}
	}
	return false
}

// IssueToken signs a registry bearer token for p with the given access list
// (already decided: it is copied into the token as is). service becomes the
// audience. The lifetime is TokenLifetime.
func (a *Authenticator) IssueToken(ctx context.Context, p *Principal, service string, access []Access) (string, int, time.Time, error) {
	k := a.signer()
	if k == nil {
		if err := a.EnsureKey(ctx); err != nil {
			return "", 0, time.Time{}, fmt.Errorf("issue token: %w", err)
		}
		k = a.signer()
	}
	now := a.now().UTC().Truncate(time.Second)
	claims := &Claims{
		Issuer:    KeyService,
		Audience:  service,
		NotBefore: jwt.NewNumericDate(now),
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(TokenLifetime)),
		Subject:   p.Subject(),
		Access:    make([]Access, 0, len(access)),
		Context:   a.tokenContext(p),
	}
	for _, ac := range access {
		actions := ac.Actions
		if actions == nil {
			actions = []string{} // Quay writes "actions": [] for dropped grants
		}
		claims.Access = append(claims.Access, Access{Type: ac.Type, Name: ac.Name, Actions: actions})
		if ac.Type == TypeRepository {
			if full := canonicalRepoName(a.opts.ServerHostname, ac.Name); full != "" {
				claims.Context.ApostilleRoots[full] = disabledTUFRoot
			}
		}
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	tok.Header["kid"] = k.kid
	signed, err := tok.SignedString(k.priv)
	if err != nil {
		return "", 0, time.Time{}, fmt.Errorf("sign token: %w", err)
	}
	return signed, int(TokenLifetime / time.Second), now, nil
}

func (a *Authenticator) tokenContext(p *Principal) TokenContext {
	c := TokenContext{
		Version:        2,
		ApostilleRoots: map[string]string{},
		ApostilleRoot:  disabledTUFRoot,
	}
	switch {
	case p.IsRobot():
		c.EntityKind, c.EntityReference = KindRobot, p.User.Username
		c.Kind, c.User = KindUser, p.User.Username // Quay's legacy fields say "user" for robots too
	case p.IsUser():
		c.EntityKind, c.EntityReference = KindUser, p.User.UUID
		c.Kind, c.User = KindUser, p.User.Username
	default:
		c.EntityKind, c.Kind = KindAnonymous, KindAnonymous
	}
	return c
}

// VerifyToken checks a bearer token as Quay's registry endpoints do: RS256
// only, signed by an approved unexpired "quay" service key (any replica's),
// issuer "quay", audience SERVER_HOSTNAME, exp−iat ≤ MaxTokenLifetime, a
// subject, and ClockSkew leeway on times. Refusals are *TokenError values
// (errors.Is(err, ErrInvalidToken)); other errors are store failures.
func (a *Authenticator) VerifyToken(ctx context.Context, token string) (*Claims, error) {
	claims := &Claims{}
	parser := jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodRS256.Alg()}),
		jwt.WithIssuer(KeyService),
		jwt.WithAudience(a.opts.ServerHostname),
		jwt.WithLeeway(ClockSkew),
		jwt.WithTimeFunc(a.now),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
	)
	_, err := parser.ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		return a.verificationKey(ctx, kid)
	})
	if err != nil {
		return nil, classifyJWTError(err)
	}
	if claims.IssuedAt == nil {
		return nil, fmt.Errorf("%w: missing iat", ErrTokenMalformed)
	}
	if claims.ExpiresAt.Sub(claims.IssuedAt.Time) > MaxTokenLifetime {
		return nil, fmt.Errorf("%w: valid for %s, at most %s accepted", ErrTokenLifetime,
			claims.ExpiresAt.Sub(claims.IssuedAt.Time), MaxTokenLifetime)
	}
	if claims.Subject == "" {
		return nil, fmt.Errorf("%w: missing sub", ErrTokenMalformed)
	}
	for i := range claims.Access {
		ac := &claims.Access[i]
		switch ac.Type {
		case TypeRepository:
			ac.canonical = canonicalRepoName(a.opts.ServerHostname, ac.Name)
		case TypeRegistry:
		default:
			return nil, fmt.Errorf("%w: access type %q", ErrTokenMalformed, ac.Type)
		}
		for _, act := range ac.Actions {
			if !slices.Contains([]string{ActionPull, ActionPush, ActionAdmin}, act) {
				return nil, fmt.Errorf("%w: access action %q", ErrTokenMalformed, act)
			}
		}
	}
	return claims, nil
}

// classifyJWTError maps the JWT library's errors onto ours. The order matters
// when several claims fail at once: the most specific reason wins.
func classifyJWTError(err error) error {
	var lookup *errKeyLookup
	if errors.As(err, &lookup) {
		return fmt.Errorf("verify token: %w", lookup)
	}
	table := []struct {
		lib  error
		ours *TokenError
	}{
		{ErrTokenUnknownKey, ErrTokenUnknownKey},
		{jwt.ErrTokenMalformed, ErrTokenMalformed},
		{jwt.ErrTokenSignatureInvalid, ErrTokenSignature},
		{jwt.ErrTokenUnverifiable, ErrTokenSignature},
		{jwt.ErrTokenExpired, ErrTokenExpired},
		{jwt.ErrTokenNotValidYet, ErrTokenNotValidYet},
		{jwt.ErrTokenUsedBeforeIssued, ErrTokenNotValidYet},
		{jwt.ErrTokenInvalidAudience, ErrTokenAudience},
		{jwt.ErrTokenInvalidIssuer, ErrTokenIssuer},
	}
	for _, m := range table {
		if errors.Is(err, m.lib) {
			if m.lib == error(m.ours) {
				return err // already ours, with its detail
			}
			return fmt.Errorf("%w: %v", m.ours, err)
		}
	}
	return fmt.Errorf("%w: %v", ErrTokenMalformed, err)
}
