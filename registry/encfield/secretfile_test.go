package encfield

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestLoadOrCreateSecretKey(t *testing.T) {
	tests := []struct {
		name    string
		content *string // nil: no file
		want    string  // "" : a generated key
		wantErr string
	}{
		{name: "generated when missing"},
		{name: "existing key reused", content: ptr("my-secret\n"), want: "my-secret"},
		{name: "empty file refused", content: ptr("  \n"), wantErr: "is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), SecretKeyFileName)
			if tt.content != nil {
				if err := os.WriteFile(path, []byte(*tt.content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			got, err := LoadOrCreateSecretKey(path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.want != "" && got != tt.want {
				t.Fatalf("key = %q, want %q", got, tt.want)
			}
			if _, err := DeriveKey(got); err != nil {
				t.Fatalf("generated key unusable: %v", err)
			}
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if tt.content == nil && fi.Mode().Perm() != 0o600 {
				t.Fatalf("mode = %v, want 0600", fi.Mode().Perm())
			}
			again, err := LoadOrCreateSecretKey(path)
			if err != nil || again != got {
				t.Fatalf("second load = %q, %v; want %q", again, err, got)
			}
		})
	}
}

// TestLoadOrCreateSecretKeyConcurrent: processes starting together agree.
func TestLoadOrCreateSecretKeyConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), SecretKeyFileName)
	keys := make([]string, 8)
	var wg sync.WaitGroup
	for i := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k, err := LoadOrCreateSecretKey(path)
			if err != nil {
				t.Error(err)
			}
			keys[i] = k
		}()
	}
	wg.Wait()
	for _, k := range keys {
		if k != keys[0] || k == "" {
			t.Fatalf("keys differ: %q", keys)
		}
	}
}

func ptr(s string) *string { return &s }
