package auth

import (
	"strings"

	"github.com/quayctl/quayctl/registry/store"
)

// Principal kinds. They match Quay's context entity kinds where one exists.
const (
	KindUser      = "user"
	KindRobot     = "robot"
	KindAnonymous = "anonymous"
)

// AnonymousSubject is the JWT "sub" of anonymous tokens, as Quay writes it.
const AnonymousSubject = "(anonymous)"

// Principal is who a request acts as.
type Principal struct {
	Kind      string      // KindUser, KindRobot or KindAnonymous
	User      *store.User // nil for anonymous; the robot's row for robots
	Superuser bool        // listed in SUPER_USERS (users only)
}

// Anonymous returns the principal of a request without credentials.
func Anonymous() *Principal { return &Principal{Kind: KindAnonymous} }

// IsAnonymous is true for nil and anonymous principals.
func (p *Principal) IsAnonymous() bool {
	return p == nil || p.Kind == KindAnonymous || p.User == nil
}

// IsUser is true for a person's account (not a robot, not anonymous).
func (p *Principal) IsUser() bool { return !p.IsAnonymous() && p.Kind == KindUser }

// IsRobot is true for robot accounts.
func (p *Principal) IsRobot() bool { return !p.IsAnonymous() && p.Kind == KindRobot }

// UserID is the account's id, 0 when anonymous.
func (p *Principal) UserID() int64 {
	if p.IsAnonymous() {
		return 0
	}
	return p.User.ID
}

// Username is the account name ("ns+short" for robots), "" when anonymous.
func (p *Principal) Username() string {
	if p.IsAnonymous() {
		return ""
	}
	return p.User.Username
}

// Subject is the JWT "sub" for this principal.
func (p *Principal) Subject() string {
	if p.IsAnonymous() {
		return AnonymousSubject
	}
	return p.User.Username
}

// Namespace is the namespace the principal owns: the username for a user,
// the owner's name for a robot, "" when anonymous.
func (p *Principal) Namespace() string {
	switch {
	case p.IsUser():
		return p.User.Username
	case p.IsRobot():
		ns, _, _ := strings.Cut(p.User.Username, "+")
		return ns
	}
	return ""
}

// String is for logs.
func (p *Principal) String() string {
	if p.IsAnonymous() {
		return KindAnonymous
	}
	return p.Kind + ":" + p.User.Username
}
