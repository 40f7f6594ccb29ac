// Package auth is the registry's identity and permission layer: bcrypt
// passwords, HTTP Basic credentials, the Docker token flow (/v2/auth issuing
// RS256 JWTs signed with a per-replica service key registered in the
// database) and the repository permission decisions behind it. It follows
// Quay's rules (endpoints/v2/v2auth.py, auth/credentials.py,
// util/security/registry_jwt.py) so clients cannot tell the two apart.
package auth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/quayctl/quayctl/registry/store"
)

// Defaults, Quay's INSTANCE_SERVICE_KEY_* values and token lifetime.
const (
	DefaultKeyExpiration = 120 * time.Minute
	DefaultKeyRefresh    = 55 * time.Minute
	// TokenLifetime is the lifetime of /v2/auth tokens (TOKEN_VALIDITY_LIFETIME_S).
	TokenLifetime = 3600 * time.Second
	// MaxTokenLifetime bounds exp−iat of accepted tokens (REGISTRY_JWT_AUTH_MAX_FRESH_S).
	MaxTokenLifetime = 3660 * time.Second
	// ClockSkew is the leeway on exp, nbf and iat (JWT_CLOCK_SKEW_SECONDS).
	ClockSkew = 30 * time.Second
	// KeyService is the servicekey.service of instance keys and the JWT issuer.
	KeyService = "quay"

	defaultBasicCacheTTL  = 60 * time.Second
	defaultBasicCacheSize = 10000
	keyCacheTTL           = 60 * time.Second
	keyNegativeCacheTTL   = 5 * time.Second
	keyCacheSize          = 1024
)

// Options configure an Authenticator. Names follow Quay's config keys.
type Options struct {
	ServerHostname  string   // SERVER_HOSTNAME: JWT audience, scope prefix
	SuperUsers      []string // SUPER_USERS
	AnonymousAccess bool     // FEATURE_ANONYMOUS_ACCESS
	// SuperusersFullAccess (FEATURE_SUPERUSERS_FULL_ACCESS): superusers
	// read and write every repository; without it they have no implicit
	// repository access, as in Quay.
	SuperusersFullAccess bool
	// CreatePrivateRepoOnPush (CREATE_PRIVATE_REPO_ON_PUSH): Quay's default is
	// true; the zero value here means public, so callers set it from config.
	CreatePrivateRepoOnPush bool
	// CreateNamespaceOnPush (CREATE_NAMESPACE_ON_PUSH) is accepted but not
	// acted on yet.
	CreateNamespaceOnPush bool
	// EncryptionKey is the key derived from DATABASE_SECRET_KEY
	// (encfield.DeriveKey): robot tokens and app-token secrets are stored
	// encrypted with it, as Quay stores them. Without it robots and app
	// tokens cannot log in.
	EncryptionKey []byte
	KeyExpiration time.Duration // INSTANCE_SERVICE_KEY_EXPIRATION, default 120 min
	KeyRefresh    time.Duration // INSTANCE_SERVICE_KEY_REFRESH, default 55 min
	Now           func() time.Time
	Logger        *slog.Logger
}

// Authenticator checks credentials, issues and verifies tokens and decides
// repository permissions. It is safe for concurrent use.
type Authenticator struct {
	st         store.Store
	opts       Options
	now        func() time.Time
	log        *slog.Logger
	suMu       sync.RWMutex
	superusers map[string]bool // SUPER_USERS plus those recorded in the database

	// compare is bcrypt's comparison; tests count calls through it.
	compare func(hash, pw []byte) error

	basic *basicCache

	registerMu sync.Mutex  // serialises key generation and registration
	keyMu      sync.Mutex  // guards signerKey
	signerKey  *signingKey // this replica's key, nil until EnsureKey

	keys *keyCache
}

// New returns an Authenticator over st. Call EnsureKey (or let IssueToken do
// it lazily) and run Run in the background to keep the signing key alive.
func New(st store.Store, opts Options) *Authenticator {
	if opts.KeyExpiration <= 0 {
		opts.KeyExpiration = DefaultKeyExpiration
	}
	if opts.KeyRefresh <= 0 {
		opts.KeyRefresh = DefaultKeyRefresh
	}
	if opts.ServerHostname == "" {
		opts.ServerHostname = "localhost:5000" // Quay's default SERVER_HOSTNAME
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	su := make(map[string]bool, len(opts.SuperUsers))
	for _, u := range opts.SuperUsers {
		su[u] = true
	}
	return &Authenticator{
		st:         st,
		opts:       opts,
		now:        now,
		log:        log,
		superusers: su,
		compare:    bcryptCompare,
		basic:      newBasicCache(defaultBasicCacheSize, defaultBasicCacheTTL),
		keys:       newKeyCache(keyCacheSize),
	}
}

// Options returns the effective options (defaults applied).
func (a *Authenticator) Options() Options { return a.opts }

// IsSuperuser reports whether username is listed in SUPER_USERS.
func (a *Authenticator) IsSuperuser(username string) bool {
	a.suMu.RLock()
	defer a.suMu.RUnlock()
	return a.superusers[username]
}

// AddSuperuser makes username a superuser in this process (the caller
// records it in the database so other replicas and restarts see it too).
func (a *Authenticator) AddSuperuser(username string) {
	a.suMu.Lock()
	defer a.suMu.Unlock()
	a.superusers[username] = true
}

// LoadSuperusers adds the superusers recorded in the database (users made
// superuser by user/initialize or quayctl user create --superuser) to
// SUPER_USERS; Run calls it periodically so replicas converge.
func (a *Authenticator) LoadSuperusers(ctx context.Context) error {
	names, err := a.st.Superusers(ctx)
	if err != nil {
		return err
	}
	a.suMu.Lock()
	defer a.suMu.Unlock()
	for _, n := range names {
		a.superusers[n] = true
	}
	return nil
}

// principalFor wraps a loaded account row.
func (a *Authenticator) principalFor(u *store.User) *Principal {
	if u.Robot {
		return &Principal{Kind: KindRobot, User: u}
	}
	return &Principal{Kind: KindUser, User: u, Superuser: a.IsSuperuser(u.Username)}
}

// Credential errors. Every failure of CheckBasic is a *LoginError, which
// matches ErrInvalidCredentials with errors.Is and unwraps to the reason.
var (
	ErrInvalidCredentials = errors.New("invalid username or password")
	ErrUserDisabled       = errors.New("this user has been disabled; please contact your administrator")
	// ErrUnsupportedCredentials: a credential kind quayctl does not accept yet
	// (robot tokens, $token, $oauthtoken, $app).
	ErrUnsupportedCredentials = errors.New("credential kind not supported")
	// ErrRobotOwnerDisabled: the robot's namespace (user) is disabled.
	ErrRobotOwnerDisabled = errors.New("the robot's owner has been disabled")
	// ErrTokenExpiredCredential: an app-specific token past its expiration.
	ErrTokenExpiredCredential = errors.New("the token has expired")
)

// Credential kinds, the "kind" of login_failure metadata (Quay's CredentialKind).
const (
	CredUser             = "user"
	CredRobot            = "robot"
	CredAccessToken      = "token"
	CredOAuthToken       = "oauth_token"
	CredAppSpecificToken = "app_specific_token"
)

// LoginError is a refused login.
type LoginError struct {
	Kind     string // CredUser, CredRobot, ...
	Username string // as sent by the client
	UserID   int64  // the account, when one was found (0 otherwise)
	Reason   error  // ErrInvalidCredentials, ErrUserDisabled or ErrUnsupportedCredentials
}

func (e *LoginError) Error() string {
	return fmt.Sprintf("login as %s %q refused: %v", e.Kind, e.Username, e.Reason)
}

// Unwrap exposes the reason.
func (e *LoginError) Unwrap() error { return e.Reason }

// Is makes every login failure match ErrInvalidCredentials.
func (e *LoginError) Is(target error) bool { return target == ErrInvalidCredentials }

// Message is the client-facing text, Quay's wording where it has one.
func (e *LoginError) Message() string {
	switch {
	case errors.Is(e.Reason, ErrUserDisabled):
		return "This user has been disabled. Please contact your administrator."
	case errors.Is(e.Reason, ErrRobotOwnerDisabled):
		return "This user has been disabled. Please contact your administrator."
	case errors.Is(e.Reason, ErrTokenExpiredCredential):
		return "Invalid token"
	case errors.Is(e.Reason, ErrUnsupportedCredentials):
		switch e.Kind {
		case CredRobot:
			return "Robot account credentials are not supported yet"
		default:
			return "Token credentials are not supported yet"
		}
	}
	return "Invalid Username or Password"
}

// logLoginFailure writes Quay's login_failure audit entry. Failing to log is
// reported but does not change the answer to the client.
func (a *Authenticator) logLoginFailure(ctx context.Context, le *LoginError, ip, userAgent, authType string) {
	md := map[string]any{
		"type":      authType,
		"kind":      le.Kind,
		"username":  le.Username,
		"useragent": userAgent,
		"message":   le.Message(),
	}
	// The account is the user the client named, when it exists; 0 leaves
	// the fallback (SERVICE_LOG_ACCOUNT_ID or the lowest user id) to the
	// store. No performer: whoever failed is not known to be that user.
	e := store.LogEntry{Kind: "login_failure", AccountID: le.UserID, IP: ip, Metadata: md}
	if err := a.st.Log(ctx, e); err != nil {
		a.log.WarnContext(ctx, "cannot write login_failure audit log", "username", le.Username, "err", err)
	}
}
