package auth

import (
	"context"
	"testing"
)

func BenchmarkVerifyToken(b *testing.B) {
	f := newFixture(b)
	a := f.auth()
	ctx := context.Background()
	tok, _, _, err := a.IssueToken(ctx, f.principal(a, "alice"), testHost,
		[]Access{{Type: "repository", Name: "alice/private", Actions: []string{"push", "pull"}}})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.VerifyToken(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCheckBasicCached(b *testing.B) {
	f := newFixture(b)
	a := f.auth()
	n := countCompares(a)
	ctx := context.Background()
	if _, err := a.CheckBasic(ctx, "alice", testPasswords["alice"]); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.CheckBasic(ctx, "alice", testPasswords["alice"]); err != nil {
			b.Fatal(err)
		}
	}
	if n.Load() != 1 {
		b.Fatalf("bcrypt ran %d times", n.Load())
	}
}
