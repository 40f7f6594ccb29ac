package auth

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/quayctl/quayctl/registry/store"
)

// ErrDenied is returned when a principal may not do what it asked.
var ErrDenied = errors.New("permission denied")

// Decision is what a principal may do with one repository.
type Decision struct {
	Repo      *store.Repository // nil when the repository does not exist
	Pull      bool
	Push      bool
	Admin     bool // the "*" action
	CanCreate bool // the repository is missing and a push would create it
	// AdminRole: an admin role (or full superuser access) whatever the
	// repository's state; the API administers mirrored repositories with it.
	AdminRole bool
}

// Decide applies Quay's v2auth rules to namespace/repo:
//   - pull: a read (or better) role, a public repository (for anonymous
//     callers only with FEATURE_ANONYMOUS_ACCESS), or a superuser (SUPER_USERS
//     read everything, like Quay's global read-only superusers);
//   - push: a write role on a NORMAL repository. READ_ONLY never allows it;
//     MIRROR allows only the mirror's robot (with write);
//   - admin ("*"): an admin role on a NORMAL repository;
//   - a missing repository can be created (and so pushed and pulled) by a user
//     in their own namespace, or by an admin or creator of the organisation;
//   - superusers act on every repository with FEATURE_SUPERUSERS_FULL_ACCESS.
//
// Robots get exactly their repository permissions (direct or through
// teams); they own no namespace.
func (a *Authenticator) Decide(ctx context.Context, p *Principal, namespace, repo string) (Decision, error) {
	r, err := a.st.Repository(ctx, namespace, repo)
	if errors.Is(err, store.ErrNotFound) {
		return a.decideMissing(ctx, p, namespace)
	}
	if err != nil {
		return Decision{}, fmt.Errorf("look up repository %s/%s: %w", namespace, repo, err)
	}
	d := Decision{Repo: r}
	if r.State == store.RepoStateMarkedForDeletion {
		return d, nil // being deleted: as good as gone, but not re-creatable yet
	}
	role := store.RoleNone
	if !p.IsAnonymous() {
		if role, err = a.st.RepositoryRole(ctx, p.UserID(), r.ID); err != nil {
			return Decision{}, fmt.Errorf("permissions of %s on %s: %w", p, r.FullName(), err)
		}
	}
	normal := r.State == store.RepoStateNormal
	// Superusers act on every repository only with
	// FEATURE_SUPERUSERS_FULL_ACCESS, as in Quay.
	full := p.IsUser() && p.Superuser && a.opts.SuperusersFullAccess
	d.Pull = role.Rank() >= store.RoleRead.Rank() ||
		(r.Public && (!p.IsAnonymous() || a.opts.AnonymousAccess)) || full
	d.Push = normal && (role.Rank() >= store.RoleWrite.Rank() || full)
	d.Admin = normal && (role == store.RoleAdmin || full)
	d.AdminRole = role == store.RoleAdmin || full
	if r.State == store.RepoStateMirror && p.IsRobot() && role.Rank() >= store.RoleWrite.Rank() {
		// A mirrored repository takes pushes from its mirror's robot only.
		robotID, err := a.st.MirrorRobotID(ctx, r.ID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return Decision{}, fmt.Errorf("mirror robot of %s: %w", r.FullName(), err)
		}
		d.Push = err == nil && robotID == p.UserID()
	}
	return d, nil
}

// decideMissing: Quay creates a repository on push when the caller holds
// CreateRepositoryPermission on the namespace — its owner, or an admin or
// creator of the organisation (a member of a team with that role; robots
// too, as Quay allows). Such callers may also pull (and get NAME_UNKNOWN
// rather than DENIED), as in Quay.
func (a *Authenticator) decideMissing(ctx context.Context, p *Principal, namespace string) (Decision, error) {
	if p.IsAnonymous() {
		return Decision{}, nil
	}
	if p.IsUser() && p.User.Username == namespace {
		return Decision{Pull: true, Push: true, CanCreate: true}, nil
	}
	ns, err := a.st.UserByName(ctx, namespace)
	if errors.Is(err, store.ErrNotFound) {
		return Decision{}, nil
	} else if err != nil {
		return Decision{}, fmt.Errorf("look up namespace %s: %w", namespace, err)
	}
	if !ns.Organization {
		return Decision{}, nil
	}
	role, err := a.st.NamespaceRole(ctx, p.UserID(), ns.ID)
	if err != nil {
		return Decision{}, fmt.Errorf("role of %s in %s: %w", p, namespace, err)
	}
	if role == store.TeamRoleAdmin || role == store.TeamRoleCreator {
		return Decision{Pull: true, Push: true, CanCreate: true}, nil
	}
	return Decision{}, nil
}

// GrantedActions maps the requested actions of a scope to the granted ones,
// silently dropping the rest (Quay keeps the access entry, possibly with no
// actions). Granted actions are in Quay's order: push, pull, *. It never
// creates anything; see EnsureRepository.
func (a *Authenticator) GrantedActions(ctx context.Context, p *Principal, sc Scope) ([]string, Decision, error) {
	granted := []string{}
	if sc.Type == TypeRegistry {
		// registry:catalog:* for any authenticated caller (see ParseScope).
		if sc.Name == "catalog" && !p.IsAnonymous() && slices.Contains(sc.Actions, ActionAdmin) {
			granted = append(granted, ActionAdmin)
		}
		return granted, Decision{}, nil
	}
	d, err := a.Decide(ctx, p, sc.Namespace, sc.Repository)
	if err != nil {
		return nil, Decision{}, err
	}
	if slices.Contains(sc.Actions, ActionPush) && d.Push {
		granted = append(granted, ActionPush)
	}
	if slices.Contains(sc.Actions, ActionPull) && d.Pull {
		granted = append(granted, ActionPull)
	}
	if slices.Contains(sc.Actions, ActionAdmin) && d.Admin {
		granted = append(granted, ActionAdmin)
	}
	return granted, d, nil
}

// EnsureRepository returns namespace/repo, creating it when p may (push to
// create): private unless CREATE_PRIVATE_REPO_ON_PUSH is off, with p as its
// creator. ErrDenied when it is missing and p may not create it.
func (a *Authenticator) EnsureRepository(ctx context.Context, p *Principal, namespace, repo string) (*store.Repository, error) {
	d, err := a.Decide(ctx, p, namespace, repo)
	if err != nil {
		return nil, err
	}
	if d.Repo != nil {
		return d.Repo, nil
	}
	if !d.CanCreate {
		return nil, fmt.Errorf("create repository %s/%s as %s: %w", namespace, repo, p, ErrDenied)
	}
	ns, err := a.st.UserByName(ctx, namespace)
	if err != nil {
		return nil, fmt.Errorf("create repository %s/%s: namespace: %w", namespace, repo, err)
	}
	r, err := a.st.CreateRepository(ctx, ns.ID, repo, !a.opts.CreatePrivateRepoOnPush, p.UserID())
	if errors.Is(err, store.ErrExists) { // a concurrent push created it first
		r, err = a.st.Repository(ctx, namespace, repo)
	}
	if err != nil {
		return nil, fmt.Errorf("create repository %s/%s: %w", namespace, repo, err)
	}
	a.log.InfoContext(ctx, "repository created on push", "repository", r.FullName(), "by", p.String(), "public", r.Public)
	e := store.LogEntry{Kind: "create_repo", AccountID: ns.ID, RepositoryID: &r.ID,
		Metadata: map[string]any{"repo": r.Name, "namespace": r.Namespace, "username": p.Username()}}
	if id := p.UserID(); id != 0 {
		e.PerformerID = &id
	}
	if err := a.st.Log(ctx, e); err != nil {
		a.log.WarnContext(ctx, "cannot write create_repo audit entry", "repository", r.FullName(), "err", err)
	}
	return r, nil
}
