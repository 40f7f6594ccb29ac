package api

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/quayctl/quayctl/registry/store"
)

// Caller is who an API request acts as.
type Caller struct {
	User      *store.User // nil: anonymous
	Superuser bool        // SUPER_USERS, or made superuser by user/initialize
	// FullAccess: a superuser with FEATURE_SUPERUSERS_FULL_ACCESS, who may
	// administer every namespace and repository, as in Quay.
	FullAccess bool
	// Scopes of an OAuth token; nil when the credential carries every
	// scope (a password or an app-specific token).
	Scopes []string
}

// Anonymous reports whether no credentials were presented.
func (c *Caller) Anonymous() bool { return c == nil || c.User == nil }

// HasScope reports whether the credential allows scope (Quay's
// require_scope).
func (c *Caller) HasScope(scope string) bool {
	return c.Scopes == nil || slices.Contains(c.Scopes, scope)
}

func (c *Caller) userID() int64 {
	if c.Anonymous() {
		return 0
	}
	return c.User.ID
}

// RepoGrant is what a caller may do with one repository.
type RepoGrant struct {
	Repo               *store.Repository // nil when it does not exist
	Read, Write, Admin bool
	CanCreate          bool // missing, and the caller may create it
}

// Access is the API's seam to registry/auth (the server adapts it).
type Access interface {
	// Authenticate identifies the caller; an error means credentials were
	// presented and refused (answered with 401).
	Authenticate(r *http.Request) (*Caller, error)
	// Repository decides the caller's permissions on namespace/repo with
	// the same rules as the registry's token flow.
	Repository(ctx context.Context, c *Caller, namespace, repo string) (RepoGrant, error)
	// Robot tokens live encrypted in the database; these encrypt and
	// decrypt them with DATABASE_SECRET_KEY.
	CreateRobot(ctx context.Context, namespaceID int64, short, description string) (*store.User, string, error)
	RobotToken(ctx context.Context, robotID int64) (string, error)
	RegenerateRobotToken(ctx context.Context, robotID int64) (string, error)
	// CreateAppToken issues an app-specific token; the token is returned once.
	CreateAppToken(ctx context.Context, u *store.User, title string) (*store.AppToken, string, error)
}

// Quay's OAuth scopes.
const (
	scopeRepoRead   = "repo:read"
	scopeRepoWrite  = "repo:write"
	scopeRepoAdmin  = "repo:admin"
	scopeRepoCreate = "repo:create"
	scopeUserAdmin  = "user:admin"
	scopeOrgAdmin   = "org:admin"
	scopeSuperUser  = "super:user"
)

// Quay's error types (endpoints/api/__init__.py ApiErrorType).
const (
	errInvalidRequest    = "invalid_request"
	errInvalidToken      = "invalid_token"
	errInsufficientScope = "insufficient_scope"
	errNotFound          = "not_found"
	errInternal          = "internal_error"
)

// fail writes Quay's API error body: status, error_message, title,
// detail, error_type (and type, a URL naming the error type).
func fail(w http.ResponseWriter, status int, errorType, detail string) {
	writeJSON(w, status, map[string]any{
		"status": status, "error_message": detail, "detail": detail,
		"error_type": errorType, "title": errorType, "type": "/api/v1/error/" + errorType,
	})
}

func badRequest(w http.ResponseWriter, detail string) {
	fail(w, http.StatusBadRequest, errInvalidRequest, detail)
}

func notFoundErr(w http.ResponseWriter) { fail(w, http.StatusNotFound, errNotFound, "Not Found") }

// unauthorized answers a caller who may not do something: 401 when
// nobody is logged in, 403 otherwise, as Quay's Unauthorized and
// NotLoggedIn.
func unauthorized(w http.ResponseWriter, c *Caller) {
	if c.Anonymous() {
		fail(w, http.StatusUnauthorized, errInvalidToken, "Requires authentication")
		return
	}
	fail(w, http.StatusForbidden, errInsufficientScope, "Unauthorized")
}

// internal logs err and answers 500 without detail.
func (h *Handler) internal(w http.ResponseWriter, r *http.Request, err error) {
	h.log.ErrorContext(r.Context(), "api request failed", "path", r.URL.Path, "err", err)
	fail(w, http.StatusInternalServerError, errInternal, "Internal server error")
}

// storeErr answers a store error: invalid input 400, missing 404,
// existing 400, the rest 500.
func (h *Handler) storeErr(w http.ResponseWriter, r *http.Request, err error) {
	var inv store.InvalidInputError
	switch {
	case errors.As(err, &inv):
		badRequest(w, inv.Error())
	case errors.Is(err, store.ErrOwnersTeam):
		badRequest(w, store.ErrOwnersTeam.Error())
	case errors.Is(err, store.ErrNotFound):
		notFoundErr(w)
	case errors.Is(err, store.ErrExists):
		badRequest(w, "already exists")
	default:
		h.internal(w, r, err)
	}
}

// caller authenticates the request; on refusal it has answered 401.
func (h *Handler) caller(w http.ResponseWriter, r *http.Request) (*Caller, bool) {
	if h.opts.Access == nil {
		return &Caller{}, true
	}
	c, err := h.opts.Access.Authenticate(r)
	if err != nil {
		var le interface{ Message() string }
		if errors.As(err, &le) {
			fail(w, http.StatusUnauthorized, errInvalidToken, le.Message())
			return nil, false
		}
		h.internal(w, r, err)
		return nil, false
	}
	return c, true
}

// require answers 401/403 unless the caller is a user whose credential
// has scope.
func requireUser(w http.ResponseWriter, c *Caller, scope string) bool {
	if c.Anonymous() || !c.HasScope(scope) {
		unauthorized(w, c)
		return false
	}
	return true
}

// decodeBody reads a JSON body (at most 64 KiB) into v; an empty body
// leaves v alone when optional.
func decodeBody(w http.ResponseWriter, r *http.Request, v any, optional bool) bool {
	b, err := io.ReadAll(io.LimitReader(r.Body, 64<<10+1))
	if err != nil {
		badRequest(w, "cannot read the request body")
		return false
	}
	if len(b) > 64<<10 {
		badRequest(w, "the request body is too large")
		return false
	}
	if len(strings.TrimSpace(string(b))) == 0 && optional {
		return true
	}
	if err := json.Unmarshal(b, v); err != nil {
		badRequest(w, "the request body is not valid JSON: "+err.Error())
		return false
	}
	return true
}

// namespaceAdmin reports whether c administers the namespace: its owner,
// a member of an admin team of the organisation, or a full-access
// superuser.
func (h *Handler) namespaceAdmin(ctx context.Context, c *Caller, ns *store.User) (bool, error) {
	if c.Anonymous() {
		return false, nil
	}
	if c.FullAccess || c.User.ID == ns.ID {
		return true, nil
	}
	role, err := h.store.NamespaceRole(ctx, c.User.ID, ns.ID)
	return role == store.TeamRoleAdmin, err
}

// lookupNamespace finds a user or organisation (never a robot).
func (h *Handler) lookupNamespace(ctx context.Context, name string) (*store.User, error) {
	u, err := h.store.UserByName(ctx, name)
	if err != nil {
		return nil, err
	}
	if u.Robot {
		return nil, store.ErrNotFound
	}
	return u, nil
}

// audit writes a logentry3 row; a failure is logged, not returned: the
// change has been made.
func (h *Handler) audit(r *http.Request, c *Caller, kind string, accountID int64, repoID *int64, md map[string]any) {
	e := store.LogEntry{Kind: kind, AccountID: accountID, RepositoryID: repoID, IP: clientIP(r), Metadata: md}
	if id := c.userID(); id != 0 {
		e.PerformerID = &id
	}
	if err := h.store.Log(r.Context(), e); err != nil {
		h.log.WarnContext(r.Context(), "cannot write audit entry", "kind", kind, "err", err)
	}
}

// formatDate is Quay's format_date (RFC 2822 with "-0000").
func formatDate(t time.Time) string {
	return t.UTC().Format("Mon, 02 Jan 2006 15:04:05 -0000")
}

func formatDatePtr(t *time.Time) any {
	if t == nil || t.IsZero() {
		return nil
	}
	return formatDate(*t)
}

// avatar is Quay's avatar dict; the hash is of the e-mail (or name) as
// Quay's gravatar-style avatars, the colour from a fixed palette.
func avatar(name, email, kind string) map[string]any {
	src := email
	if src == "" {
		src = name
	}
	sum := md5.Sum([]byte(strings.ToLower(strings.TrimSpace(src))))
	h := hex.EncodeToString(sum[:])
	palette := []string{"#969696", "#aec7e8", "#ff7f0e", "#ffbb78", "#2ca02c", "#98df8a", "#d62728", "#ff9896",
		"#9467bd", "#c5b0d5", "#8c564b", "#c49c94", "#e377c2", "#f7b6d2", "#7f7f7f", "#c7c7c7"}
	return map[string]any{"name": name, "hash": h, "color": palette[int(sum[0])%len(palette)], "kind": kind}
}

func userKind(u *store.User) string {
	switch {
	case u.Organization:
		return "org"
	case u.Robot:
		return "robot"
	}
	return "user"
}

// Quay's naming rules (util/validation.py, util/names.py).
var (
	namespaceNameRE = regexp.MustCompile(`^([a-z0-9]+(?:[._-][a-z0-9]+)*)$`)
	repoComponentRE = regexp.MustCompile(`^[a-z0-9][.a-z0-9_-]{0,254}$`)
)

func validNamespaceName(s string) bool {
	return len(s) >= 2 && len(s) <= 255 && namespaceNameRE.MatchString(s)
}

func validRepoName(s string) bool {
	if s == "" || len(s) > 255 {
		return false
	}
	for _, c := range strings.Split(s, "/") {
		if !repoComponentRE.MatchString(c) {
			return false
		}
	}
	return true
}
