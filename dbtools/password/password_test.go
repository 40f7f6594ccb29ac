package password_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode"

	"github.com/quayctl/quayctl/dbtools/password"
)

func TestValidate(t *testing.T) {
	for _, c := range []struct {
		user, pw string
		want     string // "" = accepted
	}{
		{"quayadmin", "newpass1234", ""},
		{"quayadmin", `p@ss'w"o;rd\:'x'`, ""},
		{"quayadmin", "", "it is empty"},
		{"quayadmin", "short7!", "shorter than 8 characters"},
		{"quayadmin", "ñandúes", "shorter than 8 characters"}, // 7 characters, 9 bytes
		{"quayadmin", "has space inside", "whitespace"},
		{"quayadmin", "tab\tinside1", "whitespace"},
		{"quayadmin", "quayadmin", "it is the username"},
		{"quayadmin", "QuayAdmin", "it is the username"},
		{"quayadmin", strings.Repeat("x", 73), "longer than 72 bytes"},
		{"quayadmin", "bell\x07inside", "control characters"},
	} {
		err := password.Validate(c.user, c.pw)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("Validate(%q) = %v, want accepted", c.pw, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, password.ErrInvalidPassword)):
			t.Errorf("Validate(%q) = %v, want %q", c.pw, err, c.want)
		case err != nil && c.pw != "" && len(c.pw) > 3 && strings.Contains(err.Error(), c.pw) && c.pw != c.user:
			t.Errorf("the error repeats the password: %v", err)
		case err != nil && !strings.Contains(err.Error(), "--generate"):
			t.Errorf("the error does not say what to do: %v", err)
		}
	}
}

func TestHash(t *testing.T) {
	h, err := password.Hash("newpass1234")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$2b$12$") || len(h) != 60 || password.CheckHash(h) != nil {
		t.Errorf("Hash = %q", h)
	}
	if !password.Matches(h, "newpass1234") || password.Matches(h, "newpass12345") {
		t.Error("Matches disagrees with Hash")
	}
	// The guide's example hash (Python bcrypt) verifies too.
	if err := password.CheckHash("$2b$12$T8pkgtOoys3G5ut7FV1She6vXIYgU.6TeoGmbbAVQtN8X8ch4knKm"); err != nil {
		t.Error(err)
	}
	for _, bad := range []string{"", "newpass1234", "$2b$12$short", "$2b$12$T8pkgtOoys3G5ut7FV1She6vXIYgU.6TeoGmbbAVQtN8X8ch4knK'",
		"$2b$12$T8pkgtOoys3G5ut7FV1She6vXIYgU.6TeoGmbbAVQtN8X8ch4knKm\n", "$1$abc$def"} {
		if password.CheckHash(bad) == nil {
			t.Errorf("CheckHash(%q) accepted", bad)
		}
	}
}

func TestGenerate(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 50; i++ {
		pw, err := password.Generate()
		if err != nil {
			t.Fatal(err)
		}
		if len(pw) != password.GenerateLength || seen[pw] || password.Validate("quayadmin", pw) != nil {
			t.Fatalf("Generate = %q", pw)
		}
		if strings.IndexFunc(pw, unicode.IsUpper) < 0 || strings.IndexFunc(pw, unicode.IsLower) < 0 || strings.IndexFunc(pw, unicode.IsDigit) < 0 {
			t.Errorf("Generate = %q lacks a class", pw)
		}
		if strings.ContainsAny(pw, "0O1lI") {
			t.Errorf("Generate = %q has look-alike characters", pw)
		}
		seen[pw] = true
	}
}

func TestSuggest(t *testing.T) {
	names := []string{"quayadmin", "quayadmin2", "admin", "alice", "bob", "QuayAdmin-old", "Quayadmin"}
	for _, c := range []struct {
		name string
		want string
	}{
		{"quayadmn", "quayadmin,Quayadmin,quayadmin2"},
		{"QUAYADMIN", "Quayadmin,quayadmin,quayadmin2"},
		{"alcie", "alice"},
		{"zz", ""},
	} {
		if got := strings.Join(password.Suggest(c.name, names, 3), ","); got != c.want {
			t.Errorf("Suggest(%q) = %q, want %q", c.name, got, c.want)
		}
	}
}

// TestVerifyAnswers: the login check reports each registry answer exactly.
func TestVerifyAnswers(t *testing.T) {
	ctx := context.Background()
	basic := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); ok && u == "quayadmin" && p == "right-password" {
			return
		}
		w.Header().Set("WWW-Authenticate", `Basic realm="Registry"`)
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer basic.Close()
	open := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer open.Close()
	notRegistry := httptest.NewServer(http.NotFoundHandler())
	defer notRegistry.Close()
	var tokenURL string
	bearer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v2/":
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="http://quay.example.com/v2/auth",service="quay.example.com"`))
			w.WriteHeader(http.StatusUnauthorized)
		case "/v2/auth":
			tokenURL = r.URL.String()
			if u, p, ok := r.BasicAuth(); ok && u == "quayadmin" && p == "right-password" {
				fmt.Fprint(w, `{"token":"eyJ..."}`)
				return
			}
			if u, _, _ := r.BasicAuth(); u == "disabled" {
				w.WriteHeader(http.StatusForbidden)
				fmt.Fprint(w, `{"errors":[{"code":"DENIED","message":"user is disabled"}]}`)
				return
			}
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"errors":[{"code":"UNAUTHORIZED","message":"Invalid Username or Password"}]}`)
		}
	}))
	defer bearer.Close()

	for _, c := range []struct {
		name, url, user, pw string
		ok                  bool
		method              string
		detail              string
	}{
		{"token ok", bearer.URL, "quayadmin", "right-password", true, "token", "logged in with the new password"},
		{"token refused", bearer.URL, "quayadmin", "wrong-password", false, "token", "refused the new password (401: UNAUTHORIZED Invalid Username or Password)"},
		{"token forbidden", bearer.URL, "disabled", "right-password", false, "token", "403: DENIED user is disabled"},
		{"basic ok", basic.URL, "quayadmin", "right-password", true, "basic", "logged in"},
		{"basic refused", basic.URL, "quayadmin", "nope-nope", false, "basic", "refused the new password (401"},
		{"no auth", open.URL, "quayadmin", "x", false, "", "without authentication"},
		{"not a registry", notRegistry.URL, "quayadmin", "x", false, "", "404 Not Found instead of 401"},
	} {
		v, err := password.Verify(ctx, nil, c.url, c.user, c.pw)
		if err != nil || v.OK != c.ok || v.Method != c.method || !strings.Contains(v.Detail, c.detail) {
			t.Errorf("%s: %+v, %v", c.name, v, err)
		}
		if strings.Contains(v.Detail, c.pw) {
			t.Errorf("%s: the detail repeats the password", c.name)
		}
	}
	if tokenURL != "/v2/auth?service=quay.example.com" {
		t.Errorf("token request %q, want the challenge's service", tokenURL)
	}
	if _, err := password.Verify(ctx, nil, "http://"+closedPort(t), "u", "p"); err == nil || !strings.Contains(err.Error(), "cannot reach the registry") {
		t.Errorf("unreachable: %v", err)
	}
}
