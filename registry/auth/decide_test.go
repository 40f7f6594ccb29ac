package auth

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/quayctl/quayctl/registry/store"
)

func TestDecide(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	// acme: root creates repositories through a creator team, bob is only a
	// member of another team.
	for _, tm := range []struct{ team, role, who string }{{"builders", store.TeamRoleCreator, "root"}, {"readers", store.TeamRoleMember, "bob"}} {
		team, err := f.st.CreateTeam(ctx, f.users["acme"].ID, tm.team, tm.role, "")
		if err != nil {
			t.Fatal(err)
		}
		if err := f.st.AddTeamMember(ctx, team.ID, f.users[tm.who].ID); err != nil {
			t.Fatal(err)
		}
	}
	type want struct{ pull, push, admin, create, exists bool }
	for _, tc := range []struct {
		name      string
		who       string // "" = anonymous
		repo      string
		anonymous bool // FEATURE_ANONYMOUS_ACCESS
		want      want
	}{
		{"owner private", "alice", "alice/private", true, want{true, true, true, false, true}},
		{"owner public", "alice", "alice/public", true, want{true, true, true, false, true}},
		{"owner nested", "alice", "alice/nested/deep", true, want{true, true, true, false, true}},
		{"reader", "bob", "alice/private", true, want{true, false, false, false, true}},
		{"other user public", "bob", "alice/public", true, want{pull: true, exists: true}},
		{"superuser without full access", "root", "acme/shared", false, want{exists: true}}, // Quay: no implicit access
		{"no permission", "carol", "alice/private", true, want{exists: true}},
		{"org writer", "bob", "acme/shared", true, want{true, true, false, false, true}},
		{"anonymous public", "", "alice/public", true, want{pull: true, exists: true}},
		{"anonymous public, anonymous access off", "", "alice/public", false, want{exists: true}},
		{"anonymous private", "", "alice/private", true, want{exists: true}},
		{"superuser private, no full access", "root", "alice/private", true, want{exists: true}},
		{"superuser private, full access", "root", "alice/private!full", true, want{true, true, true, false, true}},
		{"superuser read-only repo, full access", "root", "alice/readonly!full", true, want{pull: true, exists: true}},
		{"owner read-only", "alice", "alice/readonly", true, want{pull: true, exists: true}},
		{"writer read-only", "bob", "alice/readonly", true, want{pull: true, exists: true}},
		{"owner mirror", "alice", "alice/mirror", true, want{pull: true, exists: true}},
		{"owner missing", "alice", "alice/missing", true, want{pull: true, push: true, create: true}},
		{"owner missing nested", "alice", "alice/a/b", true, want{pull: true, push: true, create: true}},
		{"other user missing", "bob", "alice/missing", true, want{}},
		{"org member missing", "bob", "acme/missing", true, want{}},
		{"org creator missing", "root", "acme/missing", true, want{pull: true, push: true, create: true}},
		{"anonymous missing", "", "alice/missing", true, want{}},
		{"missing namespace", "alice", "nobody/x", true, want{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			repo, full := strings.CutSuffix(tc.repo, "!full")
			a := f.auth(func(o *Options) { o.AnonymousAccess, o.SuperusersFullAccess = tc.anonymous, full })
			p := f.principal(a, tc.who)
			sc, err := a.ParseScope("repository:" + repo + ":pull")
			if err != nil {
				t.Fatal(err)
			}
			d, err := a.Decide(ctx, p, sc.Namespace, sc.Repository)
			if err != nil {
				t.Fatal(err)
			}
			got := want{d.Pull, d.Push, d.Admin, d.CanCreate, d.Repo != nil}
			if got != tc.want {
				t.Fatalf("decision = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestGrantedActions(t *testing.T) {
	f := newFixture(t)
	a := f.auth()
	ctx := context.Background()
	for _, tc := range []struct {
		who, scope string
		want       []string
	}{
		{"alice", "repository:alice/private:pull,push,*", []string{"push", "pull", "*"}},
		{"alice", "repository:alice/private:*,pull", []string{"pull", "*"}},
		{"bob", "repository:alice/private:pull,push", []string{"pull"}},
		{"bob", "repository:alice/private:*", []string{}},
		{"bob", "repository:alice/readonly:push,pull", []string{"pull"}},
		{"", "repository:alice/public:pull,push", []string{"pull"}},
		{"", "repository:alice/private:pull", []string{}},
		{"alice", "repository:alice/missing:push", []string{"push"}},
		{"alice", "registry:catalog:*", []string{"*"}},
		{"", "registry:catalog:*", []string{}},
	} {
		p := f.principal(a, tc.who)
		sc, err := a.ParseScope(tc.scope)
		if err != nil {
			t.Fatal(err)
		}
		got, _, err := a.GrantedActions(ctx, p, sc)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s %s: granted %q, want %q", tc.who, tc.scope, got, tc.want)
		}
	}
}

func TestEnsureRepository(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for _, private := range []bool{true, false} {
		a := f.auth(func(o *Options) { o.CreatePrivateRepoOnPush = private })
		name := map[bool]string{true: "made/private", false: "made/public"}[private]
		r, err := a.EnsureRepository(ctx, f.principal(a, "alice"), "alice", name)
		if err != nil {
			t.Fatal(err)
		}
		if r.Public == private || r.FullName() != "alice/"+name {
			t.Fatalf("created %+v", r)
		}
		d, err := a.Decide(ctx, f.principal(a, "alice"), "alice", name)
		if err != nil || !d.Admin || d.Repo == nil {
			t.Fatalf("creator is not admin: %+v %v", d, err)
		}
		// Idempotent.
		r2, err := a.EnsureRepository(ctx, f.principal(a, "alice"), "alice", name)
		if err != nil || r2.ID != r.ID {
			t.Fatalf("second call: %+v %v", r2, err)
		}
	}
	a := f.auth()
	if _, err := a.EnsureRepository(ctx, f.principal(a, "bob"), "alice", "nope"); !errors.Is(err, ErrDenied) {
		t.Fatalf("bob created in alice's namespace: %v", err)
	}
	if _, err := f.st.Repository(ctx, "alice", "nope"); err == nil {
		t.Fatal("repository exists after a denied create")
	}
}
