// Package password resets a Quay user's password in the database, the way the
// troubleshooting guide's chapters 6.1.2 (standalone) and 6.1.3 (Operator)
// do by hand, with the checks a careful administrator makes:
//
//   - the new password follows Quay's rules (at least 8 characters, no
//     whitespace) and differs from the username;
//   - it is hashed with bcrypt at cost 12, as Quay does ("$2b$12$…");
//   - the account is looked up first and shown; organisations, robots,
//     unknown names (with the nearest usernames suggested) and duplicate
//     rows of a damaged database are refused;
//   - the change is one transaction: password_hash, invalid_login_attempts
//     reset to 0 (so a locked-out administrator can log in), exactly one row
//     or a rollback, and an audit row in logentry3 of kind
//     user_change_password where that table exists.
//
// The database is reached one of three ways (a Target): direct (pgx to a
// PostgreSQL DB_URI), sqlite (the embedded default of quayctl serve and
// mirror-registry's database file) and exec (psql run inside the database
// component of a podman or OpenShift deployment, with every value passed as a
// psql variable, never spliced into SQL text). Open tries them in that order.
//
// The plain password never leaves this process's memory except as the bcrypt
// hash: nothing here logs, prints or stores it.
package password

import (
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"regexp"
	"strings"
	"unicode"

	"golang.org/x/crypto/bcrypt"
)

// Cost is Quay's bcrypt cost (Python bcrypt.gensalt() default).
const Cost = 12

// MinLength is Quay's minimum password length (util/validation.py).
const MinLength = 8

// MaxBytes is bcrypt's limit: it ignores (Go's refuses) anything longer.
const MaxBytes = 72

// ErrInvalidPassword is wrapped by every refusal of Validate.
var ErrInvalidPassword = errors.New("the new password is not acceptable")

// InvalidPasswordError says why a password is refused and what to do.
type InvalidPasswordError struct{ Reason string }

func (e *InvalidPasswordError) Error() string {
	return fmt.Sprintf("%v: %s — choose another (at least %d characters, no whitespace, not the username), or let quayctl make one with --generate", ErrInvalidPassword, e.Reason, MinLength)
}

func (e *InvalidPasswordError) Unwrap() error { return ErrInvalidPassword }

// Validate applies Quay's password rules and refuses a password equal to the
// username. The password itself never appears in the error.
func Validate(username, pw string) error {
	switch {
	case pw == "":
		return &InvalidPasswordError{"it is empty"}
	case len([]rune(pw)) < MinLength:
		return &InvalidPasswordError{fmt.Sprintf("it is shorter than %d characters", MinLength)}
	case strings.IndexFunc(pw, unicode.IsSpace) >= 0:
		return &InvalidPasswordError{"it contains whitespace"}
	case strings.EqualFold(pw, username):
		return &InvalidPasswordError{"it is the username"}
	case len(pw) > MaxBytes:
		return &InvalidPasswordError{fmt.Sprintf("it is longer than %d bytes, bcrypt's limit", MaxBytes)}
	case strings.ContainsRune(pw, 0) || !isPrintable(pw):
		return &InvalidPasswordError{"it contains control characters"}
	}
	return nil
}

func isPrintable(s string) bool {
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// Hash returns the bcrypt hash of pw at cost 12 in the "$2b$" form Python's
// bcrypt (and so Quay) writes. Go's bcrypt writes "$2a$"; the algorithm is
// the same (Go never had the wrap-around bug "$2b$" marks as fixed), and both
// Go and Python accept either prefix.
func Hash(pw string) (string, error) {
	h, err := bcrypt.GenerateFromPassword([]byte(pw), Cost)
	if err != nil {
		return "", fmt.Errorf("hash the password: %w", err)
	}
	s := string(h)
	if strings.HasPrefix(s, "$2a$") {
		s = "$2b$" + s[len("$2a$"):]
	}
	return s, nil
}

// hashRE is the shape of a bcrypt hash: version, two-digit cost, 53
// characters of bcrypt's base64 (22 salt + 31 digest).
var hashRE = regexp.MustCompile(`^\$2[aby]\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}$`)

// CheckHash reports whether h looks like a bcrypt hash. Apply refuses
// anything else, so that a hash can never carry SQL or psql syntax.
func CheckHash(h string) error {
	if !hashRE.MatchString(h) {
		return errors.New("not a bcrypt hash ($2b$NN$ followed by 53 characters of [./A-Za-z0-9])")
	}
	return nil
}

// Matches reports whether pw matches the bcrypt hash h.
func Matches(h, pw string) bool {
	return bcrypt.CompareHashAndPassword([]byte(h), []byte(pw)) == nil
}

// HashCost returns the cost of a bcrypt hash.
func HashCost(h string) (int, error) { return bcrypt.Cost([]byte(h)) }

// generateAlphabet avoids characters that look alike (0/O, 1/l/I) and
// characters shells or URLs treat specially, so a generated password can be
// read aloud, typed and pasted anywhere.
const generateAlphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"

// GenerateLength gives about 140 bits of entropy over generateAlphabet.
const GenerateLength = 24

// Generate returns a strong random password of GenerateLength characters
// from crypto/rand, with at least one lowercase letter, one uppercase letter
// and one digit (password policies elsewhere may ask for them).
func Generate() (string, error) {
	for {
		b := make([]byte, GenerateLength)
		max := big.NewInt(int64(len(generateAlphabet)))
		for i := range b {
			n, err := rand.Int(rand.Reader, max)
			if err != nil {
				return "", fmt.Errorf("generate a password: %w", err)
			}
			b[i] = generateAlphabet[n.Int64()]
		}
		s := string(b)
		if strings.IndexFunc(s, unicode.IsLower) >= 0 && strings.IndexFunc(s, unicode.IsUpper) >= 0 && strings.IndexFunc(s, unicode.IsDigit) >= 0 {
			return s, nil
		}
	}
}
