package encfield

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/uuid"
)

// SecretKeyFileName is where the embedded default keeps the
// DATABASE_SECRET_KEY it generated, next to its SQLite database.
const SecretKeyFileName = "database_secret_key"

// LoadOrCreateSecretKey returns the DATABASE_SECRET_KEY stored in path,
// creating the file (mode 0600) with a new random key when it does not
// exist. A key must survive restarts: robot tokens encrypted with it are
// unreadable with any other. Two processes starting at once agree on one
// key, because the file is created exclusively and the loser reads the
// winner's.
func LoadOrCreateSecretKey(path string) (string, error) {
	key, err := readSecretKey(path)
	if err == nil {
		return key, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	// A random UUID, the form Quay's documentation suggests (uuidgen);
	// DeriveKey turns it into its 16 bytes.
	u, err := uuid.NewRandom()
	if err != nil {
		return "", fmt.Errorf("generate DATABASE_SECRET_KEY: %w", err)
	}
	key = u.String()
	// Write a temporary file, then link it into place: the link fails when
	// another process got there first, and nobody ever reads a half-written
	// key.
	tmp, err := os.CreateTemp(filepath.Dir(path), ".database_secret_key-*")
	if err != nil {
		return "", fmt.Errorf("cannot store the generated DATABASE_SECRET_KEY in %s: %w — make the directory writable, or set DATABASE_SECRET_KEY in config.yaml", filepath.Dir(path), err)
	}
	defer os.Remove(tmp.Name())
	_, werr := tmp.WriteString(key + "\n")
	if werr == nil {
		werr = tmp.Chmod(0o600)
	}
	if werr == nil {
		werr = tmp.Sync()
	}
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return "", fmt.Errorf("cannot write the generated DATABASE_SECRET_KEY: %w", werr)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return readSecretKey(path)
		}
		return "", fmt.Errorf("cannot store the generated DATABASE_SECRET_KEY in %s: %w", path, err)
	}
	return key, nil
}

func readSecretKey(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		return "", fmt.Errorf("cannot read the DATABASE_SECRET_KEY file %s: %w", path, err)
	}
	key := strings.TrimSpace(string(b))
	if key == "" {
		return "", fmt.Errorf("the DATABASE_SECRET_KEY file %s is empty — restore it from a backup (robot tokens need the original key), or delete it to generate a new key", path)
	}
	if _, err := DeriveKey(key); err != nil {
		return "", fmt.Errorf("the DATABASE_SECRET_KEY file %s: %w", path, err)
	}
	return key, nil
}
