package auth

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/quayctl/quayctl/registry/store"
)

// signingKey is this replica's instance key. Like Quay's boot.py, every
// process generates its own at start and registers the public half in
// `servicekey`; peers verify our tokens by looking the kid up there.
type signingKey struct {
	kid  string
	priv *rsa.PrivateKey
	jwk  []byte
}

type rsaJWK struct {
	Kty string `json:"kty"`
	Alg string `json:"alg,omitempty"`
	Use string `json:"use,omitempty"`
	Kid string `json:"kid,omitempty"`
	N   string `json:"n"`
	E   string `json:"e"`
}

func newSigningKey() (*signingKey, error) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("generate RSA-2048 instance key: %w", err)
	}
	n := base64.RawURLEncoding.EncodeToString(priv.N.Bytes())
	e := base64.RawURLEncoding.EncodeToString(big.NewInt(int64(priv.E)).Bytes())
	kid := jwkThumbprint(n, e)
	jwk, err := json.Marshal(rsaJWK{Kty: "RSA", Alg: "RS256", Use: "sig", Kid: kid, N: n, E: e})
	if err != nil {
		return nil, fmt.Errorf("encode instance key: %w", err)
	}
	return &signingKey{kid: kid, priv: priv, jwk: jwk}, nil
}

// jwkThumbprint is the RFC 7638 thumbprint of an RSA public key: derived from
// the key alone, so the kid names the key wherever it is seen.
func jwkThumbprint(n, e string) string {
	canonical := `{"e":"` + e + `","kty":"RSA","n":"` + n + `"}`
	sum := sha256.Sum256([]byte(canonical))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// parseRSAJWK reads the public key of a servicekey row (ours or a Quay's).
func parseRSAJWK(data []byte) (*rsa.PublicKey, error) {
	var k rsaJWK
	if err := json.Unmarshal(data, &k); err != nil {
		return nil, fmt.Errorf("decode JWK: %w", err)
	}
	if k.Kty != "RSA" {
		return nil, fmt.Errorf("JWK type %q is not RSA", k.Kty)
	}
	nb, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(k.N, "="))
	if err != nil {
		return nil, fmt.Errorf("decode JWK modulus: %w", err)
	}
	eb, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(k.E, "="))
	if err != nil {
		return nil, fmt.Errorf("decode JWK exponent: %w", err)
	}
	e := new(big.Int).SetBytes(eb)
	if len(nb) < 256 || !e.IsInt64() || e.Int64() < 3 || e.Int64() > 1<<31-1 {
		return nil, errors.New("JWK is not a usable RSA-2048+ public key")
	}
	return &rsa.PublicKey{N: new(big.Int).SetBytes(nb), E: int(e.Int64())}, nil
}

// KeyID is the kid of this replica's signing key, "" before EnsureKey.
func (a *Authenticator) KeyID() string {
	if k := a.signer(); k != nil {
		return k.kid
	}
	return ""
}

func (a *Authenticator) signer() *signingKey {
	a.keyMu.Lock()
	defer a.keyMu.Unlock()
	return a.signerKey
}

// EnsureKey generates the instance key on first use and (re-)registers it in
// the store with expiration now+KeyExpiration. Calling it again extends the
// registration; Run does so every KeyRefresh.
func (a *Authenticator) EnsureKey(ctx context.Context) error {
	a.registerMu.Lock()
	defer a.registerMu.Unlock()
	k := a.signer()
	if k == nil {
		var err error
		if k, err = newSigningKey(); err != nil {
			return err
		}
	}
	now := a.now().UTC()
	exp := now.Add(a.opts.KeyExpiration)
	host, _ := os.Hostname()
	err := a.st.PutServiceKey(ctx, store.ServiceKey{
		Kid:            k.kid,
		Service:        KeyService,
		Name:           "quayctl instance key " + host,
		JWK:            k.jwk,
		CreatedDate:    now,
		ExpirationDate: &exp,
	})
	if err != nil {
		return fmt.Errorf("register instance service key %s: %w", k.kid, err)
	}
	a.keyMu.Lock()
	a.signerKey = k
	a.keyMu.Unlock()
	a.keys.put(k.kid, &k.priv.PublicKey, minTime(now.Add(keyCacheTTL), exp))
	return nil
}

// Run keeps the instance key registered until ctx ends: it re-registers every
// KeyRefresh, and retries sooner after a failure so that a database blip does
// not let the key expire under tokens already issued.
func (a *Authenticator) Run(ctx context.Context) error {
	next := a.opts.KeyRefresh
	if a.signer() == nil {
		next = 0
	}
	t := time.NewTimer(next)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		next = a.opts.KeyRefresh
		if err := a.EnsureKey(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			a.log.ErrorContext(ctx, "cannot refresh instance service key; tokens will fail once it expires", "err", err)
			next = min(a.opts.KeyRefresh, 30*time.Second)
		} else {
			a.log.DebugContext(ctx, "instance service key registered", "kid", a.KeyID())
		}
		t.Reset(next)
	}
}

// errKeyLookup marks a store failure during kid lookup: not the client's fault.
type errKeyLookup struct{ err error }

func (e *errKeyLookup) Error() string { return "look up service key: " + e.err.Error() }
func (e *errKeyLookup) Unwrap() error { return e.err }

// verificationKey returns the public key for kid if it is an approved,
// unexpired "quay" service key. Answers are cached briefly: a token is
// checked on every registry request, the key row rarely changes.
func (a *Authenticator) verificationKey(ctx context.Context, kid string) (*rsa.PublicKey, error) {
	now := a.now()
	if len(kid) == 0 || len(kid) > 255 {
		return nil, fmt.Errorf("%w: kid %q", ErrTokenUnknownKey, kid)
	}
	if pub, ok := a.keys.get(kid, now); ok {
		if pub == nil {
			return nil, fmt.Errorf("%w: kid %q", ErrTokenUnknownKey, kid)
		}
		return pub, nil
	}
	sk, err := a.st.ServiceKey(ctx, kid)
	if errors.Is(err, store.ErrNotFound) {
		a.keys.put(kid, nil, now.Add(keyNegativeCacheTTL))
		return nil, fmt.Errorf("%w: kid %q", ErrTokenUnknownKey, kid)
	}
	if err != nil {
		return nil, &errKeyLookup{err}
	}
	if sk.Service != KeyService {
		return nil, fmt.Errorf("%w: kid %q belongs to service %q", ErrTokenUnknownKey, kid, sk.Service)
	}
	pub, err := parseRSAJWK(sk.JWK)
	if err != nil {
		return nil, fmt.Errorf("%w: kid %q: %v", ErrTokenUnknownKey, kid, err)
	}
	until := now.Add(keyCacheTTL)
	if sk.ExpirationDate != nil {
		until = minTime(until, *sk.ExpirationDate)
	}
	a.keys.put(kid, pub, until)
	return pub, nil
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// keyCache maps kid to public key (nil: known to be absent) until a time.
type keyCache struct {
	mu  sync.RWMutex
	max int
	m   map[string]keyCacheEntry
}

type keyCacheEntry struct {
	pub   *rsa.PublicKey
	until time.Time
}

func newKeyCache(max int) *keyCache {
	return &keyCache{max: max, m: make(map[string]keyCacheEntry)}
}

func (c *keyCache) get(kid string, now time.Time) (*rsa.PublicKey, bool) {
	c.mu.RLock()
	e, ok := c.m[kid]
	c.mu.RUnlock()
	if !ok || !now.Before(e.until) {
		return nil, false
	}
	return e.pub, true
}

func (c *keyCache) put(kid string, pub *rsa.PublicKey, until time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, exists := c.m[kid]; !exists && len(c.m) >= c.max {
		for k := range c.m { // drop arbitrary entries; they are re-read on demand
			if len(c.m) < c.max {
				break
			}
			delete(c.m, k)
		}
	}
	c.m[kid] = keyCacheEntry{pub: pub, until: until}
}
