package auth

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Resource types of scopes and token access entries.
const (
	TypeRepository = "repository"
	TypeRegistry   = "registry"
)

// Actions of repository scopes (Quay knows no others).
const (
	ActionPull  = "pull"
	ActionPush  = "push"
	ActionAdmin = "*"
)

// LibraryNamespace is where names without a namespace live (LIBRARY_NAMESPACE).
const LibraryNamespace = "library"

// ErrInvalidScope matches every *ScopeError; the token endpoint answers it
// with 400 INVALID_REQUEST.
var ErrInvalidScope = errors.New("invalid scope")

// ScopeError is a scope the token endpoint cannot decode.
type ScopeError struct {
	Scope  string
	Reason string
}

func (e *ScopeError) Error() string {
	return fmt.Sprintf("Unable to decode repository and actions: %s (%s)", e.Scope, e.Reason)
}

// Is makes ScopeError match ErrInvalidScope.
func (e *ScopeError) Is(target error) bool { return target == ErrInvalidScope }

// Scope is one parsed `scope` parameter of /v2/auth.
type Scope struct {
	Type string // TypeRepository or TypeRegistry
	// Name is the name as the client sent it (hostname prefix kept): it
	// becomes access.name in the token, as in Quay.
	Name string
	// Namespace and Repository are the resolved repository (Repository may
	// contain '/'); empty for registry scopes.
	Namespace  string
	Repository string
	Actions    []string // requested, deduplicated, in request order
}

// FullName is "namespace/repository".
func (s Scope) FullName() string { return s.Namespace + "/" + s.Repository }

// String formats the scope as clients send it.
func (s Scope) String() string {
	return s.Type + ":" + s.Name + ":" + strings.Join(s.Actions, ",")
}

// RepositoryScope formats a repository scope for WWW-Authenticate challenges.
func RepositoryScope(name string, actions ...string) string {
	return TypeRepository + ":" + name + ":" + strings.Join(actions, ",")
}

var (
	// namespaceRE: namespaces are user and organisation names.
	namespaceRE = usernameRE
	// repoComponentRE is Quay's REPOSITORY_NAME_REGEX, applied to each
	// '/'-separated component of an (extended, nested) repository name.
	repoComponentRE = regexp.MustCompile(`^[a-z0-9][.a-z0-9_-]{0,254}$`)
)

// ParseScope parses a scope against this registry's SERVER_HOSTNAME.
func (a *Authenticator) ParseScope(s string) (Scope, error) {
	return ParseScope(a.opts.ServerHostname, s)
}

// ParseScope parses `repository:[<serverHostname>/]<ns>/<repo>:<actions>`
// (actions: push, pull, * separated by commas) as Quay's v2auth does; a name
// without namespace resolves to library/<name>. The hostname is needed to tell
// a "host/name" prefix from a namespace, so it is a parameter.
//
// Deviation from Quay: `registry:catalog:*` is accepted. Quay answers it with
// 400, but the OCI conformance suite and other clients ask for it before
// listing /v2/_catalog; the catalog filters by permission itself, so granting
// it to any authenticated caller discloses nothing.
func ParseScope(serverHostname, s string) (Scope, error) {
	bad := func(reason string) (Scope, error) { return Scope{}, &ScopeError{Scope: s, Reason: reason} }
	typ, rest, ok := strings.Cut(s, ":")
	if !ok {
		return bad("expected <type>:<name>:<actions>")
	}
	switch typ {
	case TypeRegistry:
		if rest != "catalog:*" {
			return bad("only registry:catalog:* is supported")
		}
		return Scope{Type: TypeRegistry, Name: "catalog", Actions: []string{ActionAdmin}}, nil
	case TypeRepository:
	default:
		return bad(fmt.Sprintf("unknown resource type %q", typ))
	}

	// The name may carry "host:port/", so the actions follow the last colon.
	i := strings.LastIndexByte(rest, ':')
	if i < 0 {
		return bad("missing actions")
	}
	name, actionList := rest[:i], rest[i+1:]
	actions, err := parseActions(actionList)
	if err != nil {
		return bad(err.Error())
	}
	path := name
	if serverHostname != "" {
		path = strings.TrimPrefix(name, serverHostname+"/")
	}
	if path == "" {
		return bad("missing repository name")
	}
	if strings.Contains(path, ":") {
		return bad("only this registry's hostname may prefix a repository name")
	}
	ns, repo, nested := strings.Cut(path, "/")
	if !nested {
		ns, repo = LibraryNamespace, path
	}
	if !namespaceRE.MatchString(ns) {
		return bad(fmt.Sprintf("invalid namespace %q", ns))
	}
	if len(repo) > 255 {
		return bad("repository name longer than 255 characters")
	}
	for _, c := range strings.Split(repo, "/") {
		if !repoComponentRE.MatchString(c) {
			return bad(fmt.Sprintf("invalid repository name %q", repo))
		}
	}
	return Scope{Type: TypeRepository, Name: name, Namespace: ns, Repository: repo, Actions: actions}, nil
}

func parseActions(list string) ([]string, error) {
	if list == "" {
		return nil, errors.New("missing actions")
	}
	var out []string
	for _, act := range strings.Split(list, ",") {
		switch act {
		case ActionPull, ActionPush, ActionAdmin:
		default:
			return nil, fmt.Errorf("unknown action %q (allowed: pull, push, *)", act)
		}
		if !slices.Contains(out, act) {
			out = append(out, act)
		}
	}
	return out, nil
}

// canonicalRepoName resolves an access.name to "namespace/repository", or
// returns "" when it is not a valid repository name.
func canonicalRepoName(serverHostname, name string) string {
	sc, err := ParseScope(serverHostname, TypeRepository+":"+name+":"+ActionPull)
	if err != nil {
		return ""
	}
	return sc.FullName()
}
