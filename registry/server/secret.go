package server

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/google/uuid"

	"github.com/quayctl/quayctl/registry/encfield"
)

// SecretKey is the DATABASE_SECRET_KEY the registry encrypts fields with:
// the configured one, or, for a SQLite database (the embedded default),
// one generated at first start and kept in database_secret_key next to the
// database file (0600), so that the server and the offline commands
// (quayctl robot create) agree. "" when neither applies.
func SecretKey(s Settings) (string, error) {
	if s.DatabaseSecretKey != "" {
		if _, err := encfield.DeriveKey(s.DatabaseSecretKey); err != nil {
			return "", fmt.Errorf("DATABASE_SECRET_KEY: %w — set it to a long random string such as a UUID", err)
		}
		return s.DatabaseSecretKey, nil
	}
	dir, ok := sqliteDir(s.DBURI)
	if !ok {
		return "", nil
	}
	return encfield.LoadOrCreateSecretKey(filepath.Join(dir, encfield.SecretKeyFileName))
}

// sqliteDir is the directory of a sqlite:/// DB_URI's file.
func sqliteDir(dbURI string) (string, bool) {
	scheme, rest, ok := strings.Cut(dbURI, "://")
	if !ok || !strings.HasPrefix(strings.ToLower(scheme), "sqlite") || !strings.HasPrefix(rest, "/") {
		return "", false
	}
	path := rest[1:]
	if i := strings.IndexAny(path, "?#"); i >= 0 {
		path = path[:i]
	}
	if path == "" {
		return "", false
	}
	return filepath.Dir(path), true
}

func randomSecret() (string, error) {
	u, err := uuid.NewRandom()
	if err != nil {
		return "", fmt.Errorf("generate a DATABASE_SECRET_KEY: %w", err)
	}
	return u.String(), nil
}
