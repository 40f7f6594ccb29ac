// Package encfield reads and writes Quay's encrypted database fields
// (robotaccounttoken.token, repomirrorconfig.external_registry_username and
// external_registry_password, ...) byte-for-byte compatibly with Project
// Quay's data/encryption.py and util/security/secret.py.
//
// Stored format (version "v0"):
//
//	"v0" + "$$" + base64.StdEncoding(nonce[13] || AES-CCM ciphertext || tag[16])
//
// AES-CCM uses a 13-byte nonce (so L = 2 and the plaintext is limited to
// 65535 bytes), a 16-byte tag and no associated data. The AES key is the
// 32-byte key derived from DATABASE_SECRET_KEY by DeriveKey.
//
// Errors never contain the plaintext, the key or any part of the stored value.
package encfield

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/pion/dtls/v3/pkg/crypto/ccm"
)

const (
	// Version is the only encryption version Quay defines.
	Version = "v0"
	// Separator separates the version prefix from the encoded payload.
	Separator = "$$"
	// KeySize is the size of a derived key in bytes (AES-256).
	KeySize = 32
	// NonceSize is the AES-CCM nonce length used by Quay.
	NonceSize = 13
	// TagSize is the AES-CCM tag length used by Quay (cryptography's default).
	TagSize = 16
	// MaxPlaintextLen is the CCM limit for L = 15-NonceSize = 2: 2^16-1 bytes.
	MaxPlaintextLen = 1<<16 - 1
	// reservedFieldSpace mirrors Quay's _RESERVED_FIELD_SPACE:
	// len(separator) + len(longest version prefix).
	reservedFieldSpace = len(Separator) + len(Version)
)

// Sentinel errors; test with errors.Is.
var (
	// ErrInvalidKey: the key is not KeySize bytes long.
	ErrInvalidKey = errors.New("encfield: key must be 32 bytes")
	// ErrInvalidSecret: DATABASE_SECRET_KEY cannot be converted (Quay itself
	// fails to start with such a value).
	ErrInvalidSecret = errors.New("encfield: unusable DATABASE_SECRET_KEY")
	// ErrPlaintextTooLong: plaintext exceeds MaxPlaintextLen bytes.
	ErrPlaintextTooLong = errors.New("encfield: plaintext too long for AES-CCM with a 13-byte nonce")
	// ErrInvalidPlaintext: plaintext is not valid UTF-8 (Quay could not decode it).
	ErrInvalidPlaintext = errors.New("encfield: plaintext is not valid UTF-8")
	// ErrFieldTooLong: the encrypted value does not fit the column (EncryptForField).
	ErrFieldTooLong = errors.New("encfield: encrypted value too large for this field")
	// ErrMissingSeparator: the stored value has no "$$" separator.
	ErrMissingSeparator = errors.New("encfield: stored value has no version separator")
	// ErrUnknownVersion: the stored value's version prefix is not "v0".
	ErrUnknownVersion = errors.New("encfield: unknown encryption version")
	// ErrBadEncoding: the payload is not valid standard base64 or is too short
	// to hold a nonce and a tag.
	ErrBadEncoding = errors.New("encfield: malformed encrypted payload")
	// ErrAuthFailed: the tag does not verify — wrong key or tampered value.
	ErrAuthFailed = errors.New("encfield: decryption failed (wrong key or tampered value)")
	// ErrInvalidUTF8: the value decrypted but is not valid UTF-8.
	ErrInvalidUTF8 = errors.New("encfield: decrypted value is not valid UTF-8")
)

func newAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != KeySize {
		return nil, ErrInvalidKey
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, ErrInvalidKey
	}
	aead, err := ccm.NewCCM(block, TagSize, NonceSize)
	if err != nil {
		return nil, fmt.Errorf("encfield: %w", err)
	}
	return aead, nil
}

// Encrypt encrypts plaintext with a fresh random nonce and returns the value
// to store: "v0$$" + base64(nonce || ciphertext || tag).
func Encrypt(key []byte, plaintext string) (string, error) {
	return encrypt(key, plaintext, rand.Reader.Read)
}

// EncryptForField is Encrypt plus Quay's column-length check for
// EncryptedCharField columns: the whole stored value must be at most
// maxLength characters (Quay asserts len(base64)+4 <= max_length). A
// maxLength <= 0 disables the check (EncryptedTextField).
func EncryptForField(key []byte, plaintext string, maxLength int) (string, error) {
	s, err := Encrypt(key, plaintext)
	if err != nil {
		return "", err
	}
	if maxLength > 0 && len(s) > maxLength {
		return "", ErrFieldTooLong
	}
	return s, nil
}

// EncryptedLen returns the length of the stored value for a plaintext of n bytes.
func EncryptedLen(n int) int {
	return len(Version) + len(Separator) + base64.StdEncoding.EncodedLen(NonceSize+n+TagSize)
}

func encrypt(key []byte, plaintext string, readRand func([]byte) (int, error)) (string, error) {
	aead, err := newAEAD(key)
	if err != nil {
		return "", err
	}
	if len(plaintext) > MaxPlaintextLen {
		return "", ErrPlaintextTooLong
	}
	if !utf8.ValidString(plaintext) {
		return "", ErrInvalidPlaintext
	}
	buf := make([]byte, NonceSize, NonceSize+len(plaintext)+TagSize)
	if _, err := readFull(readRand, buf); err != nil {
		return "", fmt.Errorf("encfield: reading random nonce: %w", err)
	}
	sealed := aead.Seal(buf, buf[:NonceSize], []byte(plaintext), nil)
	return Version + Separator + base64.StdEncoding.EncodeToString(sealed), nil
}

func readFull(read func([]byte) (int, error), b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// Decrypt decrypts a value stored by Quay (or by Encrypt).
func Decrypt(key []byte, stored string) (string, error) {
	aead, err := newAEAD(key)
	if err != nil {
		return "", err
	}
	version, payload, ok := strings.Cut(stored, Separator)
	if !ok {
		return "", ErrMissingSeparator
	}
	if version != Version {
		return "", ErrUnknownVersion
	}
	raw, err := base64.StdEncoding.DecodeString(payload)
	if err != nil {
		return "", ErrBadEncoding
	}
	if len(raw) < NonceSize+TagSize || len(raw)-NonceSize-TagSize > MaxPlaintextLen {
		return "", ErrBadEncoding
	}
	pt, err := aead.Open(nil, raw[:NonceSize], raw[NonceSize:], nil)
	if err != nil {
		return "", ErrAuthFailed
	}
	if !utf8.Valid(pt) {
		return "", ErrInvalidUTF8
	}
	return string(pt), nil
}
