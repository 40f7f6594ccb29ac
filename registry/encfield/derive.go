package encfield

import (
	"encoding/hex"
	"fmt"
	"math/big"
	"strings"
	"unicode"
	"unicode/utf8"
)

// pyIntMaxStrDigits is CPython's default sys.int_info.str_digits_check_threshold
// limit (3.11+): int() of a decimal string with more digits raises ValueError.
const pyIntMaxStrDigits = 4300

// DeriveKey converts DATABASE_SECRET_KEY into the 32-byte AES key exactly as
// Quay's util/security/secret.py convert_secret_key does:
//
//  1. if Python's int(s) accepts it and "{:02x}".format(n) has even length
//     (negative numbers never do: the '-' is not hex), the key bytes are that hex;
//  2. else if uuid.UUID(s) accepts it, its 16 bytes;
//  3. else the code points of s, each of which must be < 256;
//
// and the bytes are repeated cyclically (or truncated) to 32 bytes.
func DeriveKey(databaseSecretKey string) ([]byte, error) {
	seed, err := secretSeed(databaseSecretKey)
	if err != nil {
		return nil, err
	}
	key := make([]byte, KeySize)
	for i := range key {
		key[i] = seed[i%len(seed)]
	}
	return key, nil
}

func secretSeed(s string) ([]byte, error) {
	if !utf8.ValidString(s) {
		return nil, fmt.Errorf("%w: not valid UTF-8", ErrInvalidSecret)
	}
	if n, ok := pyInt(s, 10); ok && n.Sign() >= 0 {
		h := n.Text(16)
		if len(h) < 2 {
			h = "0" + h
		}
		if len(h)%2 == 0 {
			b, err := hex.DecodeString(h)
			if err == nil {
				return b, nil
			}
		}
	}
	if b, ok := pyUUID(s); ok {
		return b, nil
	}
	if s == "" {
		return nil, fmt.Errorf("%w: empty", ErrInvalidSecret)
	}
	out := make([]byte, 0, len(s))
	for _, r := range s {
		if r > 0xff {
			// Python: bytearray([ord(c) ...]) raises ValueError.
			return nil, fmt.Errorf("%w: contains a character above U+00FF", ErrInvalidSecret)
		}
		out = append(out, byte(r))
	}
	return out, nil
}

// pyUUID mirrors uuid.UUID(hex=s).bytes.
func pyUUID(s string) ([]byte, bool) {
	s = strings.ReplaceAll(s, "urn:", "")
	s = strings.ReplaceAll(s, "uuid:", "")
	s = strings.Trim(s, "{}")
	s = strings.ReplaceAll(s, "-", "")
	if utf8.RuneCountInString(s) != 32 {
		return nil, false
	}
	n, ok := pyInt(s, 16)
	if !ok || n.Sign() < 0 || n.BitLen() > 128 {
		return nil, false
	}
	b := make([]byte, 16)
	n.FillBytes(b)
	return b, true
}

// pyIsSpace mirrors Python's str.isspace for one code point: Unicode
// White_Space plus the ASCII separators U+001C..U+001F.
func pyIsSpace(r rune) bool {
	return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f)
}

// pyDecimal returns the value of a Unicode decimal digit (category Nd), as
// Python's int() accepts them. Nd digits come in contiguous runs of 10.
func pyDecimal(r rune) (int, bool) {
	if r >= '0' && r <= '9' {
		return int(r - '0'), true
	}
	if r < 0x80 || !unicode.Is(unicode.Nd, r) {
		return 0, false
	}
	start := r
	for unicode.Is(unicode.Nd, start-1) {
		start--
	}
	return int(r-start) % 10, true
}

// pyInt mirrors Python 3's int(s, base) for base 10 and 16 on a str:
// non-ASCII whitespace and decimal digits are first mapped to ASCII, then
// surrounding ASCII whitespace, one optional sign, an optional "0x" prefix
// (base 16; may be followed by one underscore) and single underscores between
// digits are accepted. Base 10 strings with more than 4300 digits are refused
// (CPython's default integer string conversion limit).
func pyInt(s string, base int) (*big.Int, bool) {
	// _PyUnicode_TransformDecimalAndSpaceToASCII
	var b strings.Builder
	for _, r := range s {
		switch {
		case r < 0x80:
			b.WriteRune(r)
		case pyIsSpace(r):
			b.WriteByte(' ')
		default:
			if d, ok := pyDecimal(r); ok {
				b.WriteByte(byte('0' + d))
			} else {
				return nil, false
			}
		}
	}
	t := strings.TrimLeft(b.String(), " \t\n\v\f\r")
	t = strings.TrimRight(t, " \t\n\v\f\r")
	neg := false
	if t != "" && (t[0] == '+' || t[0] == '-') {
		neg = t[0] == '-'
		t = t[1:]
	}
	if base == 16 && len(t) >= 2 && t[0] == '0' && (t[1] == 'x' || t[1] == 'X') {
		t = t[2:]
		if t != "" && t[0] == '_' {
			t = t[1:]
		}
	}
	if t == "" || t[0] == '_' || t[len(t)-1] == '_' {
		return nil, false
	}
	digits := make([]byte, 0, len(t))
	prevUnderscore := false
	for i := 0; i < len(t); i++ {
		c := t[i]
		if c == '_' {
			if prevUnderscore {
				return nil, false
			}
			prevUnderscore = true
			continue
		}
		prevUnderscore = false
		if !isDigitIn(c, base) {
			return nil, false
		}
		digits = append(digits, c)
	}
	if base == 10 && len(digits) > pyIntMaxStrDigits {
		return nil, false
	}
	n, ok := new(big.Int).SetString(string(digits), base)
	if !ok {
		return nil, false
	}
	if neg {
		n.Neg(n)
	}
	return n, true
}

func isDigitIn(c byte, base int) bool {
	switch {
	case c >= '0' && c <= '9':
		return true
	case base == 16 && ((c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')):
		return true
	}
	return false
}
