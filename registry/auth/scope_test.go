package auth

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseScope(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    Scope
		wantErr bool
	}{
		{in: "repository:alice/app:pull",
			want: Scope{Type: "repository", Name: "alice/app", Namespace: "alice", Repository: "app", Actions: []string{"pull"}}},
		{in: "repository:alice/app:pull,push",
			want: Scope{Type: "repository", Name: "alice/app", Namespace: "alice", Repository: "app", Actions: []string{"pull", "push"}}},
		{in: "repository:alice/app:push,pull,push,*",
			want: Scope{Type: "repository", Name: "alice/app", Namespace: "alice", Repository: "app", Actions: []string{"push", "pull", "*"}}},
		{in: "repository:registry.test:5443/alice/app:pull",
			want: Scope{Type: "repository", Name: "registry.test:5443/alice/app", Namespace: "alice", Repository: "app", Actions: []string{"pull"}}},
		{in: "repository:registry.test:5443/app:pull",
			want: Scope{Type: "repository", Name: "registry.test:5443/app", Namespace: "library", Repository: "app", Actions: []string{"pull"}}},
		{in: "repository:ubuntu:pull",
			want: Scope{Type: "repository", Name: "ubuntu", Namespace: "library", Repository: "ubuntu", Actions: []string{"pull"}}},
		{in: "repository:alice/a/b/c:*",
			want: Scope{Type: "repository", Name: "alice/a/b/c", Namespace: "alice", Repository: "a/b/c", Actions: []string{"*"}}},
		{in: "repository:my.org/app_1.x-y:pull",
			want: Scope{Type: "repository", Name: "my.org/app_1.x-y", Namespace: "my.org", Repository: "app_1.x-y", Actions: []string{"pull"}}},
		{in: "registry:catalog:*",
			want: Scope{Type: "registry", Name: "catalog", Actions: []string{"*"}}},

		{in: "repository:", wantErr: true},
		{in: "repository:a/b", wantErr: true},
		{in: "repository:a/b:", wantErr: true},
		{in: "repository::pull", wantErr: true},
		{in: "repository:a/b:delete", wantErr: true},
		{in: "repository:a/b:pull,", wantErr: true},
		{in: "repository:a/b:PULL", wantErr: true},
		{in: "foo:bar:pull", wantErr: true},
		{in: "repository", wantErr: true},
		{in: "", wantErr: true},
		{in: "repository:../x:pull", wantErr: true},
		{in: "repository:alice/../x:pull", wantErr: true},
		{in: "repository:alice/./x:pull", wantErr: true},
		{in: "repository:alice//x:pull", wantErr: true},
		{in: "repository:alice/x/:pull", wantErr: true},
		{in: "repository:/alice/x:pull", wantErr: true},
		{in: "repository:Alice/x:pull", wantErr: true},
		{in: "repository:alice/X:pull", wantErr: true},
		{in: "repository:other.host:5000/alice/x:pull", wantErr: true},
		{in: "repository:alice/x y:pull", wantErr: true},
		{in: "repository:alice/" + strings.Repeat("a", 256) + ":pull", wantErr: true},
		{in: "registry:catalog:pull", wantErr: true},
		{in: "registry:other:*", wantErr: true},
	} {
		got, err := ParseScope(testHost, tc.in)
		if tc.wantErr {
			if err == nil {
				t.Errorf("ParseScope(%q) = %+v, want error", tc.in, got)
			} else if !errors.Is(err, ErrInvalidScope) {
				t.Errorf("ParseScope(%q) error %v is not ErrInvalidScope", tc.in, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseScope(%q): %v", tc.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseScope(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

func TestParseScopeWithoutHostname(t *testing.T) {
	// Without a hostname, a dotted first component is a namespace.
	got, err := ParseScope("", "repository:registry.test/app:pull")
	if err != nil || got.Namespace != "registry.test" || got.Repository != "app" {
		t.Fatalf("got %+v, %v", got, err)
	}
}

func TestScopeString(t *testing.T) {
	sc, err := ParseScope(testHost, "repository:alice/app:pull,push")
	if err != nil {
		t.Fatal(err)
	}
	if got := sc.String(); got != "repository:alice/app:pull,push" {
		t.Errorf("String() = %q", got)
	}
	if got := RepositoryScope("alice/app", "pull", "push"); got != "repository:alice/app:pull,push" {
		t.Errorf("RepositoryScope = %q", got)
	}
}
