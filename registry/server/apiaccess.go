package server

import (
	"context"
	"net/http"

	"github.com/quayctl/quayctl/registry/api"
	"github.com/quayctl/quayctl/registry/auth"
	"github.com/quayctl/quayctl/registry/store"
)

// apiAccess adapts the auth package to the API's Access seam.
type apiAccess struct{ a *auth.Authenticator }

func (x apiAccess) Authenticate(r *http.Request) (*api.Caller, error) {
	p, scopes, err := x.a.AuthenticateAPI(r)
	if err != nil {
		return nil, err
	}
	if p.IsAnonymous() {
		return &api.Caller{}, nil
	}
	return &api.Caller{User: p.User, Superuser: p.Superuser,
		FullAccess: p.Superuser && x.a.Options().SuperusersFullAccess, Scopes: scopes}, nil
}

func (x apiAccess) principal(c *api.Caller) *auth.Principal {
	if c.Anonymous() {
		return auth.Anonymous()
	}
	return &auth.Principal{Kind: auth.KindUser, User: c.User, Superuser: c.Superuser}
}

func (x apiAccess) Repository(ctx context.Context, c *api.Caller, namespace, repo string) (api.RepoGrant, error) {
	d, err := x.a.Decide(ctx, x.principal(c), namespace, repo)
	if err != nil {
		return api.RepoGrant{}, err
	}
	return api.RepoGrant{Repo: d.Repo, Read: d.Pull, Write: d.Push, Admin: d.Admin || (d.AdminRole && d.Repo.State == store.RepoStateMirror), CanCreate: d.CanCreate}, nil
}

func (x apiAccess) CreateRobot(ctx context.Context, namespaceID int64, short, description string) (*store.User, string, error) {
	return x.a.CreateRobot(ctx, namespaceID, short, description)
}

func (x apiAccess) RobotToken(ctx context.Context, robotID int64) (string, error) {
	return x.a.RobotToken(ctx, robotID)
}

func (x apiAccess) RegenerateRobotToken(ctx context.Context, robotID int64) (string, error) {
	return x.a.RegenerateRobotToken(ctx, robotID)
}

func (x apiAccess) CreateAppToken(ctx context.Context, u *store.User, title string) (*store.AppToken, string, error) {
	t, err := x.a.CreateAppToken(ctx, u, title, nil)
	if err != nil {
		return nil, "", err
	}
	return &t.AppToken, t.Token, nil
}
