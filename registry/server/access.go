package server

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/quayctl/quayctl/registry/auth"
	v2 "github.com/quayctl/quayctl/registry/v2"
)

// access adapts the auth package to the v2 handlers' Access seam.
type access struct{ a *auth.Authenticator }

type callerState struct {
	principal *auth.Principal
	claims    *auth.Claims
}

func (x access) Authenticate(r *http.Request) (v2.Caller, error) {
	p, claims, err := x.a.AuthenticateRequest(r)
	if err != nil {
		var le *auth.LoginError
		var te *auth.TokenError
		if errors.As(err, &le) || errors.As(err, &te) {
			return v2.Caller{}, err
		}
		return v2.Caller{}, err
	}
	c := v2.Caller{UserID: p.UserID(), Username: p.Username(), Superuser: p.Superuser, State: callerState{p, claims}}
	return c, nil
}

func state(c v2.Caller) callerState {
	s, _ := c.State.(callerState)
	if s.principal == nil {
		s.principal = auth.Anonymous()
	}
	return s
}

func (x access) Permissions(ctx context.Context, c v2.Caller, namespace, repo string) (v2.Grant, error) {
	d, err := x.a.Decide(ctx, state(c).principal, namespace, repo)
	if err != nil {
		return v2.Grant{}, err
	}
	return v2.Grant{Repo: d.Repo, Pull: d.Pull, Push: d.Push, CanCreate: d.CanCreate}, nil
}

func (x access) Authorize(ctx context.Context, r *http.Request, c v2.Caller, namespace, repo string) (v2.Grant, error) {
	g, err := x.Permissions(ctx, c, namespace, repo)
	if err != nil {
		return g, err
	}
	claims := state(c).claims
	if claims == nil {
		return g, nil
	}
	// A bearer token bounds the request to the scopes it was issued for.
	name := namespace + "/" + repo
	g.TokenLimited = true
	g.Pull = g.Pull && claims.Allows("repository", name, auth.ActionPull)
	g.Push = g.Push && claims.Allows("repository", name, auth.ActionPush)
	return g, nil
}

func (x access) Challenge(r *http.Request, scopes ...string) string {
	return x.a.WWWAuthenticate(auth.RequestScheme(r), r.Host, strings.Join(scopes, " "))
}
