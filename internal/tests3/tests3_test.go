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

// A test's own gateway is independent of the shared one and survives a
// halt and restart with its buckets.
func TestNewServerHaltRestart(t *testing.T) {
	s := NewServer(t)
	shared := Shared(t)
	if s.Endpoint == shared.Endpoint || s.Dir == shared.Dir {
		t.Fatalf("NewServer shares the shared gateway: %s", s.Endpoint)
	}
	b := s.NewBucket(t)
	get := func() error {
		resp, err := http.Get(s.Endpoint + "/" + b + "/x")
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	if err := get(); err != nil {
		t.Fatalf("running gateway: %v", err)
	}
	s.Halt(t)
	if err := get(); err == nil {
		t.Fatal("halted gateway still answers")
	}
	s.Restart(t)
	if err := get(); err != nil {
		t.Fatalf("restarted gateway: %v", err)
	}
	if _, err := os.Stat(filepath.Join(s.Dir, b)); err != nil {
		t.Errorf("bucket lost across restart: %v", err)
	}
}
