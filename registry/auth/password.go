package auth

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode"

	"golang.org/x/crypto/bcrypt"
)

// BcryptCost is Quay's cost: Python's bcrypt.gensalt() default.
const BcryptCost = 12

// Validation errors, for callers that map them to API messages.
var (
	ErrInvalidUsername = errors.New("invalid username")
	ErrInvalidPassword = errors.New("invalid password")
)

// usernameRE is Quay's util/validation.py username rule.
var usernameRE = regexp.MustCompile(`^([a-z0-9]+(?:[._-][a-z0-9]+)*)$`)

// HashPassword returns a bcrypt hash at Quay's cost. Go writes the "$2a$"
// prefix where Python writes "$2b$"; the algorithm is the same and both sides
// accept either, so the hash is interchangeable with a real Quay's.
func HashPassword(pw string) (string, error) {
	h, err := bcrypt.GenerateFromPassword([]byte(pw), BcryptCost)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return string(h), nil
}

// ComparePassword reports whether pw matches a "$2a$", "$2b$" or "$2y$"
// bcrypt hash.
func ComparePassword(hash, pw string) bool {
	return bcrypt.CompareHashAndPassword([]byte(hash), []byte(pw)) == nil
}

// ValidateUsername applies Quay's username rule: lowercase letters and digits
// separated by single '.', '_' or '-', 2 to 255 characters.
func ValidateUsername(name string) error {
	if len(name) < 2 || len(name) > 255 {
		return fmt.Errorf("%w: %q must be 2 to 255 characters long", ErrInvalidUsername, name)
	}
	if !usernameRE.MatchString(name) {
		return fmt.Errorf("%w: %q may contain only lowercase letters, digits and single '.', '_' or '-' between them", ErrInvalidUsername, name)
	}
	return nil
}

// ValidatePassword applies Quay's password rule (at least 8 characters, no
// whitespace) and also refuses a password equal to the username.
func ValidatePassword(username, pw string) error {
	if len([]rune(pw)) < 8 {
		return fmt.Errorf("%w: must be at least 8 characters long", ErrInvalidPassword)
	}
	if strings.IndexFunc(pw, unicode.IsSpace) >= 0 {
		return fmt.Errorf("%w: must not contain whitespace", ErrInvalidPassword)
	}
	if username != "" && pw == username {
		return fmt.Errorf("%w: must differ from the username", ErrInvalidPassword)
	}
	return nil
}
