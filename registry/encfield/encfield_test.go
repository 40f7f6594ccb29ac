package encfield

import (
	"bytes"
	"crypto/aes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/pion/dtls/v3/pkg/crypto/ccm"
)

type quayVectors struct {
	Generator   string `json:"generator"`
	Derivations []struct {
		Secret string `json:"secret"`
		Key    string `json:"key"` // hex, or "ERROR"
	} `json:"derivations"`
	Samples []struct {
		Secret    string `json:"secret"`
		Plaintext string `json:"plaintext"`
		Stored    string `json:"stored"`
	} `json:"samples"`
}

func loadVectors(t *testing.T) quayVectors {
	t.Helper()
	raw, err := os.ReadFile("testdata/quay_vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v quayVectors
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Derivations) < 100 || len(v.Samples) < 10 {
		t.Fatalf("too few vectors: %d derivations, %d samples", len(v.Derivations), len(v.Samples))
	}
	return v
}

func mustKey(t *testing.T, secret string) []byte {
	t.Helper()
	k, err := DeriveKey(secret)
	if err != nil {
		t.Fatalf("DeriveKey: %v", err)
	}
	return k
}

func rep(b []byte) string { // cycle to 32 and hex
	out := make([]byte, 32)
	for i := range out {
		out[i] = b[i%len(b)]
	}
	return hex.EncodeToString(out)
}

func TestDeriveKeyTable(t *testing.T) {
	uuidBytes, _ := hex.DecodeString("123e4567e89b12d3a456426614174000")
	cases := []struct {
		name, secret, want string
	}{
		{"integer one byte", "255", rep([]byte{0xff})},
		{"integer zero", "0", rep([]byte{0})},
		{"integer two bytes", "4096", rep([]byte{0x10, 0x00})},
		{"integer padded to 2 hex digits", "5", rep([]byte{0x05})},
		{"integer whitespace and plus", " +255\n", rep([]byte{0xff})},
		{"integer underscores", "65_535", rep([]byte{0xff, 0xff})},
		{"integer unicode digits", "\u0662\u0665\u0665", rep([]byte{0xff})},
		{"odd hex integer falls through to chars", "256", rep([]byte("256"))},
		{"integer 15 is 0x0f", "15", rep([]byte{0x0f})},
		{"negative integer falls through", "-1", rep([]byte("-1"))},
		{"minus zero is zero", "-0", rep([]byte{0})},
		{"double underscore is not an int", "1__0", rep([]byte("1__0"))},
		{"over 4300 digits is not an int", strings.Repeat("1", 4301), rep([]byte(strings.Repeat("1", 32)))},
		{"uuid", "123e4567-e89b-12d3-a456-426614174000", rep(uuidBytes)},
		{"uuid braces urn upper", "urn:uuid:{123E4567-E89B-12D3-A456-426614174000}", rep(uuidBytes)},
		{"32 decimal digits with odd hex form parse as uuid hex", "99999999999999999999999999999999",
			strings.Repeat("99", 32)},
		{"plain string", "secret", rep([]byte("secret"))},
		{"latin-1 string uses code points", "caf\u00e9", rep([]byte{'c', 'a', 'f', 0xe9})},
		{"single char cycled", "a", strings.Repeat("61", 32)},
		{"exactly 32", strings.Repeat("x", 31) + "y", hex.EncodeToString([]byte(strings.Repeat("x", 31) + "y"))},
		{"longer than 32 truncated", strings.Repeat("k", 40) + "z", hex.EncodeToString([]byte(strings.Repeat("k", 32)))},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := DeriveKey(c.secret)
			if err != nil {
				t.Fatalf("DeriveKey: %v", err)
			}
			if len(got) != KeySize {
				t.Fatalf("len = %d", len(got))
			}
			if h := hex.EncodeToString(got); h != c.want {
				t.Fatalf("got %s want %s", h, c.want)
			}
		})
	}
}

func TestDeriveKeyErrors(t *testing.T) {
	for _, s := range []string{"", "snowman\u2603", "\U0001F600", "\xff\xfe"} {
		_, err := DeriveKey(s)
		if !errors.Is(err, ErrInvalidSecret) {
			t.Errorf("DeriveKey(%q) err = %v, want ErrInvalidSecret", s, err)
		}
		if err != nil && s != "" && strings.Contains(err.Error(), s) {
			t.Errorf("error leaks the secret: %v", err)
		}
	}
}

// TestDeriveKeyMatchesPython compares against convert_secret_key's algorithm
// run under CPython (testdata/gen_quay_vectors.py).
func TestDeriveKeyMatchesPython(t *testing.T) {
	v := loadVectors(t)
	for i, d := range v.Derivations {
		got, err := DeriveKey(d.Secret)
		if d.Key == "ERROR" {
			if err == nil {
				t.Errorf("#%d %q: Python fails, Go derived %x", i, d.Secret, got)
			}
			continue
		}
		if err != nil {
			t.Errorf("#%d %q: Go error %v, Python %s", i, d.Secret, err, d.Key)
			continue
		}
		if hex.EncodeToString(got) != d.Key {
			t.Errorf("#%d %q: Go %x, Python %s", i, d.Secret, got, d.Key)
		}
	}
}

// TestQuayKnownAnswers decrypts values produced by pyca/cryptography's AESCCM
// with Quay's encryption layout, and re-encrypts them with the same nonce to
// check Encrypt is byte-for-byte identical.
func TestQuayKnownAnswers(t *testing.T) {
	v := loadVectors(t)
	for i, s := range v.Samples {
		key := mustKey(t, s.Secret)
		got, err := Decrypt(key, s.Stored)
		if err != nil {
			t.Fatalf("#%d Decrypt: %v", i, err)
		}
		if got != s.Plaintext {
			t.Fatalf("#%d Decrypt = %q, want %q", i, got, s.Plaintext)
		}
		raw, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(s.Stored, "v0$$"))
		nonce := raw[:NonceSize]
		enc, err := encrypt(key, s.Plaintext, bytes.NewReader(nonce).Read)
		if err != nil {
			t.Fatal(err)
		}
		if enc != s.Stored {
			t.Fatalf("#%d Encrypt with Quay's nonce:\n got %s\nwant %s", i, enc, s.Stored)
		}
		if len(enc) != EncryptedLen(len(s.Plaintext)) {
			t.Fatalf("#%d EncryptedLen = %d, actual %d", i, EncryptedLen(len(s.Plaintext)), len(enc))
		}
	}
}

// A single hard-coded sample so the known answer is visible in code:
// AESCCM(convert_secret_key("DATABASE_SECRET_KEY_0123")).encrypt(nonce, b"a", None).
func TestQuayKnownAnswerInline(t *testing.T) {
	v := loadVectors(t)
	var stored string
	for _, s := range v.Samples {
		if s.Secret == "DATABASE_SECRET_KEY_0123" && s.Plaintext == "a" {
			stored = s.Stored
		}
	}
	if stored != inlineSample {
		t.Fatalf("inline sample out of date: %s", stored)
	}
	got, err := Decrypt(mustKey(t, "DATABASE_SECRET_KEY_0123"), inlineSample)
	if err != nil || got != "a" {
		t.Fatalf("Decrypt = %q, %v", got, err)
	}
}

func TestRoundTrip(t *testing.T) {
	key := mustKey(t, "some-database-secret")
	for _, p := range []string{"", "x", "robot token 0123456789", "h\u00e9llo \u2603 \U0001F600",
		strings.Repeat("z", MaxPlaintextLen)} {
		s, err := Encrypt(key, p)
		if err != nil {
			t.Fatalf("Encrypt(len %d): %v", len(p), err)
		}
		if !strings.HasPrefix(s, "v0$$") {
			t.Fatalf("missing prefix: %.10s", s)
		}
		if len(s) != EncryptedLen(len(p)) {
			t.Fatalf("len %d != EncryptedLen %d", len(s), EncryptedLen(len(p)))
		}
		if _, err := base64.StdEncoding.Strict().DecodeString(s[4:]); err != nil {
			t.Fatalf("not standard padded base64: %v", err)
		}
		got, err := Decrypt(key, s)
		if err != nil || got != p {
			t.Fatalf("Decrypt: %v (equal=%v)", err, got == p)
		}
	}
	a, _ := Encrypt(key, "same")
	b, _ := Encrypt(key, "same")
	if a == b {
		t.Fatal("two encryptions of the same value are identical (nonce reuse)")
	}
}

func TestEncryptErrors(t *testing.T) {
	key := mustKey(t, "k")
	if _, err := Encrypt(key, strings.Repeat("z", MaxPlaintextLen+1)); !errors.Is(err, ErrPlaintextTooLong) {
		t.Errorf("too long: %v", err)
	}
	if _, err := Encrypt(key, "bad\xffutf8"); !errors.Is(err, ErrInvalidPlaintext) {
		t.Errorf("invalid utf8: %v", err)
	}
	for _, k := range [][]byte{nil, make([]byte, 16), make([]byte, 33)} {
		if _, err := Encrypt(k, "x"); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("key len %d: %v", len(k), err)
		}
		if _, err := Decrypt(k, "v0$$AAAA"); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("key len %d: %v", len(k), err)
		}
	}
}

func TestEncryptForField(t *testing.T) {
	key := mustKey(t, "k")
	// Quay: len(base64) + 4 <= max_length. 255-char column: 13+n+16 bytes -> base64.
	max := 0
	for n := 0; EncryptedLen(n) <= 255; n++ {
		max = n
	}
	if _, err := EncryptForField(key, strings.Repeat("a", max), 255); err != nil {
		t.Fatalf("len %d should fit: %v", max, err)
	}
	if _, err := EncryptForField(key, strings.Repeat("a", max+1), 255); !errors.Is(err, ErrFieldTooLong) {
		t.Fatalf("len %d should not fit: %v", max+1, err)
	}
	if _, err := EncryptForField(key, strings.Repeat("a", 1000), 0); err != nil {
		t.Fatalf("no limit: %v", err)
	}
}

func TestTamperingDetected(t *testing.T) {
	key := mustKey(t, "tamper-key")
	const secret = "TOPSECRETPLAINTEXT"
	s, err := Encrypt(key, secret)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.StdEncoding.DecodeString(s[4:])
	for i := range raw { // flip one bit in every byte: nonce, ciphertext, tag
		mod := append([]byte(nil), raw...)
		mod[i] ^= 0x01
		_, err := Decrypt(key, "v0$$"+base64.StdEncoding.EncodeToString(mod))
		if !errors.Is(err, ErrAuthFailed) {
			t.Fatalf("byte %d flipped: err = %v", i, err)
		}
		if strings.Contains(err.Error(), secret) {
			t.Fatal("error leaks plaintext")
		}
	}
	// truncated tag / appended byte
	for _, mod := range [][]byte{raw[:len(raw)-1], append(append([]byte(nil), raw...), 0)} {
		if _, err := Decrypt(key, "v0$$"+base64.StdEncoding.EncodeToString(mod)); !errors.Is(err, ErrAuthFailed) {
			t.Fatalf("length change: %v", err)
		}
	}
}

func TestWrongKeyRefused(t *testing.T) {
	s, err := Encrypt(mustKey(t, "right-key"), "robot-token")
	if err != nil {
		t.Fatal(err)
	}
	for _, other := range []string{"wrong-key", "right-kez", "12345"} {
		got, err := Decrypt(mustKey(t, other), s)
		if !errors.Is(err, ErrAuthFailed) || got != "" {
			t.Fatalf("key %q: got %q, %v", other, got, err)
		}
	}
}

func TestDecryptMalformed(t *testing.T) {
	key := mustKey(t, "k")
	good, _ := Encrypt(key, "plain")
	cases := []struct {
		stored string
		want   error
	}{
		{"plaintext-password", ErrMissingSeparator},
		{"", ErrMissingSeparator},
		{"v1$$" + good[4:], ErrUnknownVersion},
		{"V0$$" + good[4:], ErrUnknownVersion},
		{"$$" + good[4:], ErrUnknownVersion},
		{"v0$" + good[4:], ErrMissingSeparator},
		{"v0$$" + strings.TrimRight(good[4:], "="), ErrBadEncoding}, // Python: Incorrect padding
		{"v0$$not*base64!", ErrBadEncoding},
		{"v0$$" + strings.NewReplacer("+", "-", "/", "_").Replace(good[4:]) + "-_", ErrBadEncoding}, // urlsafe alphabet
		{"v0$$", ErrBadEncoding},
		{"v0$$" + base64.StdEncoding.EncodeToString(make([]byte, NonceSize+TagSize-1)), ErrBadEncoding},
		{"v0$$" + base64.StdEncoding.EncodeToString(make([]byte, NonceSize+TagSize)), ErrAuthFailed},
	}
	for _, c := range cases {
		_, err := Decrypt(key, c.stored)
		if !errors.Is(err, c.want) {
			t.Errorf("Decrypt(%.20q) err = %v, want %v", c.stored, err, c.want)
		}
	}
	// A value whose plaintext is not valid UTF-8 (Quay would fail to decode it).
	aead, _ := newAEAD(key)
	nonce := make([]byte, NonceSize)
	bad := "v0$$" + base64.StdEncoding.EncodeToString(aead.Seal(nonce, nonce, []byte{0xff, 0xfe}, nil))
	if _, err := Decrypt(key, bad); !errors.Is(err, ErrInvalidUTF8) {
		t.Errorf("invalid utf8 plaintext: %v", err)
	}
}

// RFC 3610 packet vector #1 (AES-128, M=8, 13-byte nonce, 8-byte AAD)
// checks the CCM implementation itself; Quay's parameters (M=16, L=2, no
// AAD, AES-256) are checked by TestQuayKnownAnswers against OpenSSL via
// pyca/cryptography.
func TestCCMRFC3610Vector1(t *testing.T) {
	key, _ := hex.DecodeString("C0C1C2C3C4C5C6C7C8C9CACBCCCDCECF")
	nonce, _ := hex.DecodeString("00000003020100A0A1A2A3A4A5")
	want, _ := hex.DecodeString("588C979A61C663D2F066D0C2C0F989806D5F6B61DAC38417E8D12CFDF926E0")
	pkt := make([]byte, 31)
	for i := range pkt {
		pkt[i] = byte(i)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	aead, err := ccm.NewCCM(block, 8, 13)
	if err != nil {
		t.Fatal(err)
	}
	got := aead.Seal(nil, nonce, pkt[8:], pkt[:8])
	if !bytes.Equal(got, want) {
		t.Fatalf("Seal = %X", got)
	}
	pt, err := aead.Open(nil, nonce, got, pkt[:8])
	if err != nil || !bytes.Equal(pt, pkt[8:]) {
		t.Fatalf("Open: %v", err)
	}
}

const inlineSample = "v0$$/YUx7pKQ7m3FnRlajRsLbhDI8mF1KbX0pbvM3YTT"
