package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/quayctl/quayctl/registry/store"
)

// WWWAuthenticate is the Bearer challenge of /v2/ responses, as Quay's
// get_auth_headers builds it; scope is optional.
func (a *Authenticator) WWWAuthenticate(scheme, host, scope string) string {
	v := `Bearer realm="` + scheme + "://" + host + `/v2/auth",service="` + a.opts.ServerHostname + `"`
	if scope != "" {
		v += `,scope="` + scope + `"`
	}
	return v
}

// RequestScheme is the scheme the client used: TLS, or a proxy's
// X-Forwarded-Proto when it terminates TLS in front of us. It only shapes
// URLs sent back to the same client.
func RequestScheme(r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	if p := strings.ToLower(r.Header.Get("X-Forwarded-Proto")); p == "https" || p == "http" {
		return p
	}
	return "http"
}

// AuthenticateRequest identifies the caller of a registry request:
// Basic credentials (checked with CheckBasic, cached), a bearer token
// (verified, claims returned, principal loaded from its subject), or nobody
// (anonymous). Refusals are *LoginError or *TokenError; other errors are
// store failures.
func (a *Authenticator) AuthenticateRequest(r *http.Request) (*Principal, *Claims, error) {
	ctx := r.Context()
	h := strings.TrimSpace(r.Header.Get("Authorization"))
	if h == "" {
		return Anonymous(), nil, nil
	}
	scheme, cred, _ := strings.Cut(h, " ")
	switch strings.ToLower(scheme) {
	case "basic":
		p, err := a.checkRequestBasic(r, "v2auth") // Quay logs every Basic check as v2auth
		return p, nil, err
	case "bearer":
		claims, err := a.VerifyToken(ctx, strings.TrimSpace(cred))
		if err != nil {
			return nil, nil, err
		}
		p, err := a.principalFromClaims(ctx, claims)
		if err != nil {
			return nil, nil, err
		}
		return p, claims, nil
	}
	return nil, nil, &LoginError{Kind: CredUser, Reason: ErrInvalidCredentials}
}

// checkRequestBasic runs CheckBasic on the request's credentials and writes
// the login_failure audit entry on refusal.
func (a *Authenticator) checkRequestBasic(r *http.Request, authType string) (*Principal, error) {
	user, pass, ok := r.BasicAuth()
	var p *Principal
	var err error
	if ok {
		p, err = a.CheckBasic(r.Context(), user, pass)
	} else {
		err = &LoginError{Kind: CredUser, Reason: ErrInvalidCredentials}
	}
	var le *LoginError
	if errors.As(err, &le) {
		a.logLoginFailure(r.Context(), le, clientIP(r), r.UserAgent(), authType)
		a.log.InfoContext(r.Context(), "login refused", "kind", le.Kind, "username", le.Username, "reason", le.Reason)
	}
	return p, err
}

// principalFromClaims loads the account a token speaks for, so that a
// disabled or deleted account stops working before its tokens expire.
func (a *Authenticator) principalFromClaims(ctx context.Context, c *Claims) (*Principal, error) {
	if c.IsAnonymous() {
		return Anonymous(), nil
	}
	kind := c.Context.EntityKind
	if kind != "" && kind != KindUser && kind != KindRobot {
		return nil, fmt.Errorf("%w: entity kind %q not supported", ErrTokenSubject, kind)
	}
	u, err := a.st.UserByName(ctx, c.Subject)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: %q", ErrTokenSubject, c.Subject)
	}
	if err != nil {
		return nil, fmt.Errorf("load token subject %q: %w", c.Subject, err)
	}
	switch {
	case !u.Enabled || u.Organization:
		return nil, fmt.Errorf("%w: %q", ErrTokenSubject, c.Subject)
	case kind == KindRobot && !u.Robot, kind == KindUser && u.Robot:
		return nil, fmt.Errorf("%w: %q is not a %s", ErrTokenSubject, c.Subject, kind)
	case kind == KindUser && c.Context.EntityReference != "" && u.UUID != c.Context.EntityReference:
		// Renamed or re-created since the token was issued.
		return nil, fmt.Errorf("%w: %q is another account now", ErrTokenSubject, c.Subject)
	}
	return a.principalFor(u), nil
}

// TokenHandler serves GET /v2/auth, the Docker token endpoint: Basic
// credentials (or none), `service` (the audience) and repeated `scope`
// parameters in; {"token","access_token","expires_in","issued_at"} out.
// `account`, `client_id` and `offline_token` are accepted and ignored: no
// refresh tokens are issued, so clients never need the POST (OAuth2) form.
func (a *Authenticator) TokenHandler() http.Handler { return http.HandlerFunc(a.serveToken) }

func (a *Authenticator) serveToken(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		a.writeError(w, r, http.StatusMethodNotAllowed, "UNSUPPORTED", "The operation is unsupported.", nil)
		return
	}
	q := r.URL.Query()
	service := q.Get("service")
	if service == "" {
		service = a.opts.ServerHostname
	}

	p := Anonymous()
	if r.Header.Get("Authorization") != "" {
		var err error
		p, err = a.checkRequestBasic(r, "v2auth")
		var le *LoginError
		switch {
		case errors.As(err, &le):
			a.writeError(w, r, http.StatusUnauthorized, "UNAUTHORIZED", le.Message(), nil)
			return
		case err != nil:
			a.internalError(w, r, err)
			return
		}
	}

	// Several scopes may come as repeated parameters or space-separated in
	// one (RFC 6749 style, used by some clients).
	var raw []string
	for _, s := range q["scope"] {
		raw = append(raw, strings.Fields(s)...)
	}
	if p.IsAnonymous() {
		if len(raw) == 0 {
			// A login (no scope) needs credentials.
			a.writeError(w, r, http.StatusUnauthorized, "UNAUTHORIZED", "access to the requested resource is not authorized", nil)
			return
		}
		if !a.opts.AnonymousAccess {
			a.writeError(w, r, http.StatusUnauthorized, "UNAUTHORIZED", "Anonymous access is not allowed; please log in", nil)
			return
		}
	}
	// Parse everything before deciding, so a bad scope has no side effects.
	scopes := make([]Scope, 0, len(raw))
	for _, s := range raw {
		sc, err := a.ParseScope(s)
		if err != nil {
			a.writeError(w, r, http.StatusBadRequest, "INVALID_REQUEST", err.Error(), map[string]string{"scope": s})
			return
		}
		scopes = append(scopes, sc)
	}

	access := make([]Access, 0, len(scopes))
	for _, sc := range scopes {
		granted, err := a.grantForToken(ctx, p, sc)
		if err != nil {
			a.internalError(w, r, err)
			return
		}
		access = append(access, Access{Type: sc.Type, Name: sc.Name, Actions: granted})
	}

	token, expiresIn, issuedAt, err := a.IssueToken(ctx, p, service, access)
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	body, _ := json.Marshal(struct {
		Token       string `json:"token"`
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
		IssuedAt    string `json:"issued_at"`
	}{token, token, expiresIn, issuedAt.UTC().Format(time.RFC3339)})
	setNoCache(w)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// grantForToken is GrantedActions plus Quay's push-to-create: a push grant on
// a missing repository creates it now, and the grants are decided again on
// the new repository (its creator is its admin).
func (a *Authenticator) grantForToken(ctx context.Context, p *Principal, sc Scope) ([]string, error) {
	granted, d, err := a.GrantedActions(ctx, p, sc)
	if err != nil || sc.Type != TypeRepository || d.Repo != nil || !slices.Contains(granted, ActionPush) {
		return granted, err
	}
	if _, err := a.EnsureRepository(ctx, p, sc.Namespace, sc.Repository); err != nil {
		if errors.Is(err, ErrDenied) {
			return []string{}, nil
		}
		return nil, err
	}
	granted, _, err = a.GrantedActions(ctx, p, sc)
	return granted, err
}

func setNoCache(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-cache, no-store, must-revalidate")
	w.Header().Set("Pragma", "no-cache")
}

// writeError writes the OCI error shape {"errors":[{code,message,detail}]}.
// 401s carry the Bearer challenge, as Quay's do; clients treat a 401 from the
// token endpoint as bad credentials either way.
func (a *Authenticator) writeError(w http.ResponseWriter, r *http.Request, status int, code, message string, detail any) {
	if detail == nil {
		detail = map[string]any{}
	}
	type wireError struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Detail  any    `json:"detail"`
	}
	body, _ := json.Marshal(map[string][]wireError{"errors": {{Code: code, Message: message, Detail: detail}}})
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", a.WWWAuthenticate(RequestScheme(r), r.Host, ""))
	}
	setNoCache(w)
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

func (a *Authenticator) internalError(w http.ResponseWriter, r *http.Request, err error) {
	a.log.ErrorContext(r.Context(), "token request failed", "err", err)
	a.writeError(w, r, http.StatusInternalServerError, "UNKNOWN", "internal server error", nil)
}

// clientIP is the peer address without port, for audit logs.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
