package tests3

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMain(m *testing.M) { Main(m) }

func TestNewBucket(t *testing.T) {
	var dirs []string
	t.Run("buckets", func(t *testing.T) {
		endpoint, b1, ak, sk := NewBucket(t)
		_, b2, _, _ := NewBucket(t)
		if b1 == b2 {
			t.Fatalf("two buckets share the name %s", b1)
		}
		if !strings.HasPrefix(endpoint, "http://127.0.0.1:") || ak == "" || len(sk) < 32 {
			t.Errorf("endpoint %q, access key %q, secret of %d characters", endpoint, ak, len(sk))
		}
		s := Shared(t)
		for _, b := range []string{b1, b2} {
			dirs = append(dirs, filepath.Join(s.Dir, b))
			if fi, err := os.Stat(filepath.Join(s.Dir, b)); err != nil || !fi.IsDir() {
				t.Errorf("bucket %s has no directory: %v", b, err)
			}
		}
		// Unsigned requests are refused: the gateway checks credentials.
		resp, err := http.Get(endpoint + "/" + b1 + "/anything")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("anonymous GET = %d, want 403", resp.StatusCode)
		}
	})
	for _, d := range dirs {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("bucket directory %s outlived its test: %v", d, err)
		}
	}
}
