package api_test

import (
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quayctl/quayctl/internal/testpg"
	"github.com/quayctl/quayctl/internal/testregistry"
)

// apiRequest calls reg's API as user (basic auth with the tests' password
// scheme; "" for anonymous) with a raw JSON body, and returns the status
// and the raw answer.
func apiRequest(t *testing.T, reg *testregistry.Registry, user, method, path, body string) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, reg.URL+"/api/v1"+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if user != "" {
		req.SetBasicAuth(user, user+"-password1")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// dialects are the database URIs every API test runs against.
func dialects() map[string]func(t *testing.T) string {
	return map[string]func(t *testing.T) string{
		"sqlite":     func(t *testing.T) string { return "sqlite:///" + filepath.Join(t.TempDir(), "quay.db") },
		"postgresql": func(t *testing.T) string { return testpg.NewDatabase(t) },
	}
}
