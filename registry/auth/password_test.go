package auth

import (
	"errors"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func TestHashPassword(t *testing.T) {
	h, err := HashPassword("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if cost, err := bcrypt.Cost([]byte(h)); err != nil || cost != 12 {
		t.Fatalf("cost = %d, %v; want 12", cost, err)
	}
	if !ComparePassword(h, "correct horse") {
		t.Fatal("hash does not match its password")
	}
	if ComparePassword(h, "correct horse!") {
		t.Fatal("hash matches another password")
	}
	// Quay writes $2b$ (Python) and PHP-era tools $2y$: the same algorithm
	// under another prefix, which Go must accept.
	if !strings.HasPrefix(h, "$2a$12$") {
		t.Fatalf("hash %q", h[:7])
	}
	for _, prefix := range []string{"$2b$", "$2y$"} {
		if alt := prefix + h[4:]; !ComparePassword(alt, "correct horse") {
			t.Errorf("%s hash refused", prefix)
		}
	}
}

// A fixed Quay-style hash: a cost-12 Go hash of "quayquay12" with its "$2a$"
// prefix changed to Python's "$2b$" (the algorithms are identical).
func TestCompareFixedQuayHash(t *testing.T) {
	const quayHash = "$2b$12$ixv5Wb918Txd6uKhpgDoJOhyjwD0oijVkakeeJk.JbxR16mIIgqUW"
	if !ComparePassword(quayHash, "quayquay12") {
		t.Fatal("$2b$ hash refused")
	}
	if ComparePassword(quayHash, "quayquay13") {
		t.Fatal("$2b$ hash accepts a wrong password")
	}
}

func TestValidatePassword(t *testing.T) {
	for _, tc := range []struct {
		user, pw string
		ok       bool
	}{
		{"alice", "12345678", true},
		{"alice", "p@ssw0rd-ünïcode", true},
		{"alice", "1234567", false},
		{"alice", "", false},
		{"alice", "has space1", false},
		{"alice", "tab\there1", false},
		{"alice", "newline\n1", false},
		{"alicealice", "alicealice", false},
		{"", "whatever1", true},
	} {
		err := ValidatePassword(tc.user, tc.pw)
		if (err == nil) != tc.ok {
			t.Errorf("ValidatePassword(%q, %q) = %v, want ok=%v", tc.user, tc.pw, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalidPassword) {
			t.Errorf("error %v is not ErrInvalidPassword", err)
		}
	}
}

func TestValidateUsername(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"ab", true},
		{"alice", true},
		{"a.b-c_d", true},
		{"user1", true},
		{"a", false},
		{strings.Repeat("a", 255), true},
		{strings.Repeat("a", 256), false},
		{"Alice", false},
		{"a..b", false},
		{".ab", false},
		{"ab-", false},
		{"a+b", false},
		{"a b", false},
		{"", false},
	} {
		err := ValidateUsername(tc.name)
		if (err == nil) != tc.ok {
			t.Errorf("ValidateUsername(%q) = %v, want ok=%v", tc.name, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalidUsername) {
			t.Errorf("error %v is not ErrInvalidUsername", err)
		}
	}
}
