package auth

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func decodeSegment(t *testing.T, token string, i int) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[i])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestIssueTokenClaims(t *testing.T) {
	f := newFixture(t)
	a := f.auth()
	ctx := context.Background()
	now := f.clock.Now()
	alice := f.principal(a, "alice")

	tok, expiresIn, issuedAt, err := a.IssueToken(ctx, alice, testHost, []Access{
		{Type: "repository", Name: "alice/private", Actions: []string{"push", "pull"}},
		{Type: "repository", Name: testHost + "/ubuntu", Actions: nil},
	})
	if err != nil {
		t.Fatal(err)
	}
	if expiresIn != 3600 || !issuedAt.Equal(now) {
		t.Errorf("expiresIn=%d issuedAt=%v, want 3600 %v", expiresIn, issuedAt, now)
	}
	header := decodeSegment(t, tok, 0)
	if header["alg"] != "RS256" || header["kid"] != a.KeyID() || a.KeyID() == "" {
		t.Errorf("header = %v (kid %q)", header, a.KeyID())
	}
	ts := float64(now.Unix())
	want := map[string]any{
		"iss": "quay", "aud": testHost, "nbf": ts, "iat": ts, "exp": ts + 3600, "sub": "alice",
		"access": []any{
			map[string]any{"type": "repository", "name": "alice/private", "actions": []any{"push", "pull"}},
			map[string]any{"type": "repository", "name": testHost + "/ubuntu", "actions": []any{}},
		},
		"context": map[string]any{
			"version": float64(2), "entity_kind": "user", "entity_reference": f.users["alice"].UUID,
			"kind": "user", "user": "alice",
			"com.apostille.roots": map[string]any{"alice/private": "$disabled", "library/ubuntu": "$disabled"},
			"com.apostille.root":  "$disabled",
		},
	}
	if got := decodeSegment(t, tok, 1); !reflect.DeepEqual(got, want) {
		gb, _ := json.Marshal(got)
		wb, _ := json.Marshal(want)
		t.Errorf("claims\n got %s\nwant %s", gb, wb)
	}

	claims, err := a.VerifyToken(ctx, tok)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if claims.Subject != "alice" || claims.Context.EntityReference != f.users["alice"].UUID {
		t.Errorf("claims = %+v", claims)
	}
	for _, tc := range []struct {
		typ, name, action string
		want              bool
	}{
		{"repository", "alice/private", "pull", true},
		{"repository", "alice/private", "push", true},
		{"repository", "alice/private", "*", false},
		{"repository", "alice/public", "pull", false},
		{"repository", "library/ubuntu", "pull", false},
		{"registry", "catalog", "*", false},
	} {
		if got := claims.Allows(tc.typ, tc.name, tc.action); got != tc.want {
			t.Errorf("Allows(%s, %s, %s) = %v", tc.typ, tc.name, tc.action, got)
		}
	}
}

func TestIssueTokenAnonymous(t *testing.T) {
	f := newFixture(t)
	a := f.auth()
	tok, _, _, err := a.IssueToken(context.Background(), Anonymous(), testHost, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := decodeSegment(t, tok, 1)
	wantCtx := map[string]any{
		"version": float64(2), "entity_kind": "anonymous", "kind": "anonymous",
		"com.apostille.roots": map[string]any{}, "com.apostille.root": "$disabled",
	}
	if got["sub"] != "(anonymous)" || !reflect.DeepEqual(got["context"], wantCtx) || !reflect.DeepEqual(got["access"], []any{}) {
		t.Errorf("claims = %v", got)
	}
	claims, err := a.VerifyToken(context.Background(), tok)
	if err != nil || !claims.IsAnonymous() {
		t.Fatalf("verify: %+v, %v", claims, err)
	}
}

func TestClaimsAllows(t *testing.T) {
	c := &Claims{Access: []Access{
		{Type: "repository", Name: "ns/reader", Actions: []string{"pull"}, canonical: "ns/reader"},
		{Type: "repository", Name: "ns/writer", Actions: []string{"push"}, canonical: "ns/writer"},
		{Type: "repository", Name: "ns/admin", Actions: []string{"*"}, canonical: "ns/admin"},
		{Type: "repository", Name: "ns/none", Actions: []string{}, canonical: "ns/none"},
		{Type: "repository", Name: testHost + "/busybox", Actions: []string{"pull"}, canonical: "library/busybox"},
		{Type: "registry", Name: "catalog", Actions: []string{"*"}},
	}}
	for _, tc := range []struct {
		typ, name, action string
		want              bool
	}{
		{"repository", "ns/reader", "pull", true},
		{"repository", "ns/reader", "push", false},
		{"repository", "ns/reader", "*", false},
		{"repository", "ns/writer", "push", true},
		{"repository", "ns/writer", "pull", true}, // Quay: write implies read
		{"repository", "ns/writer", "*", false},
		{"repository", "ns/admin", "pull", true},
		{"repository", "ns/admin", "push", true},
		{"repository", "ns/admin", "*", true},
		{"repository", "ns/none", "pull", false},
		{"repository", "library/busybox", "pull", true},
		{"repository", testHost + "/busybox", "pull", true},
		{"repository", "ns/other", "pull", false},
		{"registry", "catalog", "*", true},
		{"repository", "catalog", "*", false},
	} {
		if got := c.Allows(tc.typ, tc.name, tc.action); got != tc.want {
			t.Errorf("Allows(%s, %s, %s) = %v, want %v", tc.typ, tc.name, tc.action, got, tc.want)
		}
	}
}

// claimsAt are valid Quay claims issued at t, as a map to tamper with.
func claimsAt(t time.Time) jwt.MapClaims {
	return jwt.MapClaims{
		"iss": "quay", "aud": testHost, "sub": "alice",
		"nbf": t.Unix(), "iat": t.Unix(), "exp": t.Add(time.Hour).Unix(),
		"access":  []any{},
		"context": map[string]any{"version": 2, "entity_kind": "user", "kind": "user", "user": "alice"},
	}
}

func sign(t *testing.T, method jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestVerifyTokenRefusals(t *testing.T) {
	f := newFixture(t)
	a := f.auth()
	ctx := context.Background()
	if err := a.EnsureKey(ctx); err != nil {
		t.Fatal(err)
	}
	now := f.clock.Now()
	kid, priv := a.KeyID(), a.signer().priv

	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, _ := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})

	with := func(edit func(jwt.MapClaims)) jwt.MapClaims {
		c := claimsAt(now)
		edit(c)
		return c
	}
	for _, tc := range []struct {
		name  string
		token string
		want  error
	}{
		{"valid", sign(t, jwt.SigningMethodRS256, priv, kid, claimsAt(now)), nil},
		{"forged with another key under our kid", sign(t, jwt.SigningMethodRS256, other, kid, claimsAt(now)), ErrTokenSignature},
		{"alg none", sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, kid, claimsAt(now)), ErrTokenSignature},
		{"HS256 keyed with the public key", sign(t, jwt.SigningMethodHS256, pubPEM, kid, claimsAt(now)), ErrTokenSignature},
		{"HS256 keyed with the public key DER", sign(t, jwt.SigningMethodHS256, pubDER, kid, claimsAt(now)), ErrTokenSignature},
		{"RS512", sign(t, jwt.SigningMethodRS512, priv, kid, claimsAt(now)), ErrTokenSignature},
		{"unknown kid", sign(t, jwt.SigningMethodRS256, priv, "no-such-kid", claimsAt(now)), ErrTokenUnknownKey},
		{"missing kid", sign(t, jwt.SigningMethodRS256, priv, "", claimsAt(now)), ErrTokenUnknownKey},
		{"expired", sign(t, jwt.SigningMethodRS256, priv, kid, claimsAt(now.Add(-time.Hour-31*time.Second))), ErrTokenExpired},
		{"expired within leeway", sign(t, jwt.SigningMethodRS256, priv, kid, claimsAt(now.Add(-time.Hour-29*time.Second))), nil},
		{"not yet valid", sign(t, jwt.SigningMethodRS256, priv, kid, claimsAt(now.Add(2*time.Minute))), ErrTokenNotValidYet},
		{"nbf ahead within leeway", sign(t, jwt.SigningMethodRS256, priv, kid, claimsAt(now.Add(20*time.Second))), nil},
		{"nbf ahead only", sign(t, jwt.SigningMethodRS256, priv, kid, with(func(c jwt.MapClaims) { c["nbf"] = now.Add(time.Minute).Unix() })), ErrTokenNotValidYet},
		{"wrong audience", sign(t, jwt.SigningMethodRS256, priv, kid, with(func(c jwt.MapClaims) { c["aud"] = "elsewhere.test" })), ErrTokenAudience},
		{"missing audience", sign(t, jwt.SigningMethodRS256, priv, kid, with(func(c jwt.MapClaims) { delete(c, "aud") })), ErrTokenMalformed},
		{"wrong issuer", sign(t, jwt.SigningMethodRS256, priv, kid, with(func(c jwt.MapClaims) { c["iss"] = "evil" })), ErrTokenIssuer},
		{"lifetime too long", sign(t, jwt.SigningMethodRS256, priv, kid, with(func(c jwt.MapClaims) { c["exp"] = now.Add(3661 * time.Second).Unix() })), ErrTokenLifetime},
		{"lifetime at the limit", sign(t, jwt.SigningMethodRS256, priv, kid, with(func(c jwt.MapClaims) { c["exp"] = now.Add(3660 * time.Second).Unix() })), nil},
		{"missing exp", sign(t, jwt.SigningMethodRS256, priv, kid, with(func(c jwt.MapClaims) { delete(c, "exp") })), ErrTokenMalformed},
		{"missing iat", sign(t, jwt.SigningMethodRS256, priv, kid, with(func(c jwt.MapClaims) { delete(c, "iat") })), ErrTokenMalformed},
		{"missing sub", sign(t, jwt.SigningMethodRS256, priv, kid, with(func(c jwt.MapClaims) { delete(c, "sub") })), ErrTokenMalformed},
		{"bad access type", sign(t, jwt.SigningMethodRS256, priv, kid, with(func(c jwt.MapClaims) {
			c["access"] = []any{map[string]any{"type": "namespace", "name": "x", "actions": []any{"pull"}}}
		})), ErrTokenMalformed},
		{"bad access action", sign(t, jwt.SigningMethodRS256, priv, kid, with(func(c jwt.MapClaims) {
			c["access"] = []any{map[string]any{"type": "repository", "name": "a/b", "actions": []any{"delete"}}}
		})), ErrTokenMalformed},
		{"garbage", "not.a.token", ErrTokenMalformed},
		{"empty", "", ErrTokenMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := a.VerifyToken(ctx, tc.token)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, tc.want) || !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("error = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestVerifyTokenClock(t *testing.T) {
	f := newFixture(t)
	a := f.auth()
	ctx := context.Background()
	tok, _, _, err := a.IssueToken(ctx, f.principal(a, "alice"), testHost, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Hour + 29*time.Second)
	if _, err := a.VerifyToken(ctx, tok); err != nil {
		t.Fatalf("within leeway: %v", err)
	}
	f.clock.Advance(2 * time.Second)
	if _, err := a.VerifyToken(ctx, tok); !errors.Is(err, ErrTokenExpired) {
		t.Fatalf("after expiry: %v", err)
	}
}

func TestVerifyTokenWrongAudienceIssued(t *testing.T) {
	f := newFixture(t)
	a := f.auth()
	ctx := context.Background()
	tok, _, _, err := a.IssueToken(ctx, f.principal(a, "alice"), "other.example.com", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.VerifyToken(ctx, tok); !errors.Is(err, ErrTokenAudience) {
		t.Fatalf("err = %v, want ErrTokenAudience", err)
	}
}

// Every replica has its own key; the kid is looked up in the shared store.
func TestTokenAcrossReplicas(t *testing.T) {
	f := newFixture(t)
	ra, rb := f.auth(), f.auth()
	ctx := context.Background()
	for _, r := range []*Authenticator{ra, rb} {
		if err := r.EnsureKey(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if ra.KeyID() == rb.KeyID() {
		t.Fatal("replicas share a key")
	}
	tokA, _, _, err := ra.IssueToken(ctx, f.principal(ra, "alice"), testHost,
		[]Access{{Type: "repository", Name: "alice/private", Actions: []string{"pull"}}})
	if err != nil {
		t.Fatal(err)
	}
	tokB, _, _, err := rb.IssueToken(ctx, f.principal(rb, "bob"), testHost, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := rb.VerifyToken(ctx, tokA)
	if err != nil {
		t.Fatalf("B refuses A's token: %v", err)
	}
	if !c.Allows("repository", "alice/private", "pull") {
		t.Fatal("claims lost on the way")
	}
	if _, err := ra.VerifyToken(ctx, tokB); err != nil {
		t.Fatalf("A refuses B's token: %v", err)
	}
	// A third replica that has never issued anything verifies both.
	rc := f.auth()
	for _, tok := range []string{tokA, tokB} {
		if _, err := rc.VerifyToken(ctx, tok); err != nil {
			t.Fatalf("C refuses: %v", err)
		}
	}
}

func TestEnsureKeyRegisters(t *testing.T) {
	f := newFixture(t)
	a := f.auth(func(o *Options) { o.KeyExpiration = 2 * time.Hour })
	ctx := context.Background()
	if err := a.EnsureKey(ctx); err != nil {
		t.Fatal(err)
	}
	sk, err := f.st.ServiceKey(ctx, a.KeyID())
	if err != nil {
		t.Fatalf("key not in store: %v", err)
	}
	if sk.Service != "quay" || sk.ExpirationDate == nil {
		t.Fatalf("service key = %+v", sk)
	}
	if d := sk.ExpirationDate.Sub(f.clock.Now()); d < 2*time.Hour-time.Second || d > 2*time.Hour+time.Second {
		t.Fatalf("expires in %v, want 2h", d)
	}
	pub, err := parseRSAJWK(sk.JWK)
	if err != nil || !pub.Equal(&a.signer().priv.PublicKey) {
		t.Fatalf("stored JWK does not hold our public key: %v", err)
	}
	kid := a.KeyID()

	// Refreshing keeps the key and extends the registration.
	f.clock.Advance(30 * time.Minute)
	if err := a.EnsureKey(ctx); err != nil {
		t.Fatal(err)
	}
	if a.KeyID() != kid {
		t.Fatal("refresh changed the key")
	}
	sk, err = f.st.ServiceKey(ctx, kid)
	if err != nil {
		t.Fatal(err)
	}
	if d := sk.ExpirationDate.Sub(f.clock.Now()); d < 2*time.Hour-time.Second || d > 2*time.Hour+time.Second {
		t.Fatalf("after refresh expires in %v, want 2h from the new now", d)
	}
}

func TestRunRefreshesKey(t *testing.T) {
	f := newFixture(t)
	a := f.auth(func(o *Options) { o.KeyRefresh = 10 * time.Millisecond })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()

	deadline := time.Now().Add(10 * time.Second)
	for a.KeyID() == "" && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if a.KeyID() == "" {
		t.Fatal("Run did not register a key")
	}
	first, err := f.st.ServiceKey(context.Background(), a.KeyID())
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Hour)
	for time.Now().Before(deadline) {
		sk, err := f.st.ServiceKey(context.Background(), a.KeyID())
		if err == nil && sk.ExpirationDate.After(first.ExpirationDate.Add(30*time.Minute)) {
			cancel()
			if err := <-done; err != nil {
				t.Fatalf("Run: %v", err)
			}
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	t.Fatal("Run did not extend the key's expiration")
}

func TestJWKThumbprint(t *testing.T) {
	// RFC 7638 §3.1 example.
	n := "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
	e := "AQAB"
	if got := jwkThumbprint(n, e); got != "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs" {
		t.Fatalf("thumbprint = %s", got)
	}
}
