package password

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// Verification is the outcome of logging in with the new password.
type Verification struct {
	URL     string `json:"url"`
	OK      bool   `json:"ok"`
	Method  string `json:"method,omitempty"`  // "token" (/v2/auth) or "basic" (/v2/ with basic auth)
	Service string `json:"service,omitempty"` // from the 401 challenge
	Status  int    `json:"status,omitempty"`  // HTTP status of the login request
	Detail  string `json:"detail"`            // what happened, in words
}

// Verify logs in to the registry at base with username and pw the way docker
// and podman login do: GET /v2/ for the challenge, then GET /v2/auth with the
// challenge's service and basic auth. It never returns the password or the
// token. A non-nil error means the check could not run (registry
// unreachable); a refused login is a Verification with OK false.
func Verify(ctx context.Context, client *http.Client, base, username, pw string) (Verification, error) {
	if client == nil {
		client = http.DefaultClient
	}
	base = strings.TrimRight(base, "/")
	if !strings.Contains(base, "://") {
		base = "https://" + base
	}
	v := Verification{URL: base}
	bu, err := url.Parse(base)
	if err != nil || bu.Host == "" {
		return v, fmt.Errorf("--verify %q is not a registry URL: use https://quay.example.com", base)
	}

	resp, err := get(ctx, client, base+"/v2/", "", "")
	if err != nil {
		return v, fmt.Errorf("cannot reach the registry at %s: %w — check the URL (and --verify-insecure for a self-signed certificate)", base, err)
	}
	drain(resp)
	switch resp.StatusCode {
	case http.StatusOK:
		v.Detail = "the registry answers /v2/ without authentication, so a login proves nothing — check the registry's authentication settings"
		v.Status = resp.StatusCode
		return v, nil
	case http.StatusUnauthorized:
	default:
		v.Status = resp.StatusCode
		v.Detail = fmt.Sprintf("GET /v2/ answered %s instead of 401 with a challenge — is %s a container registry?", resp.Status, base)
		return v, nil
	}
	scheme, params := parseChallenge(resp.Header.Get("WWW-Authenticate"))
	switch strings.ToLower(scheme) {
	case "basic":
		v.Method = "basic"
		r2, err := get(ctx, client, base+"/v2/", username, pw)
		if err != nil {
			return v, fmt.Errorf("cannot reach the registry at %s: %w", base, err)
		}
		v.Status = r2.StatusCode
		body := readBody(r2)
		v.OK = r2.StatusCode == http.StatusOK
		v.Detail = loginDetail(v.OK, r2, body)
		return v, nil
	case "bearer":
	default:
		v.Detail = fmt.Sprintf("GET /v2/ answered 401 without a Bearer or Basic challenge (WWW-Authenticate: %q)", resp.Header.Get("WWW-Authenticate"))
		return v, nil
	}
	v.Method = "token"
	v.Service = params["service"]
	// Quay's realm is <SERVER_HOSTNAME>/v2/auth; ask the URL given (which
	// may be a port-forward where SERVER_HOSTNAME does not resolve).
	authURL := base + "/v2/auth"
	if v.Service != "" {
		authURL += "?" + url.Values{"service": {v.Service}}.Encode()
	}
	r2, err := get(ctx, client, authURL, username, pw)
	if err != nil {
		return v, fmt.Errorf("cannot reach %s/v2/auth: %w", base, err)
	}
	v.Status = r2.StatusCode
	body := readBody(r2)
	if r2.StatusCode == http.StatusOK {
		var tok struct {
			Token       string `json:"token"`
			AccessToken string `json:"access_token"`
		}
		if json.Unmarshal(body, &tok) != nil || (tok.Token == "" && tok.AccessToken == "") {
			v.Detail = "/v2/auth answered 200 without a token"
			return v, nil
		}
		v.OK = true
	}
	v.Detail = loginDetail(v.OK, r2, body)
	return v, nil
}

func get(ctx context.Context, client *http.Client, u, user, pw string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	if user != "" {
		req.SetBasicAuth(user, pw)
	}
	req.Header.Set("User-Agent", "quayctl reset-password --verify")
	return client.Do(req)
}

func drain(r *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 1<<16))
	r.Body.Close()
}

func readBody(r *http.Response) []byte {
	defer r.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(r.Body, 1<<16))
	return b
}

// loginDetail explains a login answer in the registry's own words.
func loginDetail(ok bool, r *http.Response, body []byte) string {
	if ok {
		return "logged in with the new password"
	}
	msg := registryMessage(body)
	switch r.StatusCode {
	case http.StatusUnauthorized:
		return fmt.Sprintf("the registry refused the new password (401%s) — if Quay authenticates against LDAP, OIDC or Keystone (AUTHENTICATION_TYPE), passwords in its database are not used; if the account is disabled, enable it; otherwise check that --db/--config named the database this registry uses", msg)
	case http.StatusForbidden:
		return fmt.Sprintf("the registry answered 403%s — the account may be disabled, or FEATURE_REQUIRE_ENCRYPTED_BASIC_AUTH may require an encrypted password for the CLI", msg)
	}
	return fmt.Sprintf("the login answered %s%s", r.Status, msg)
}

// registryMessage is ": CODE message" from an OCI/Quay error body.
func registryMessage(body []byte) string {
	var e struct {
		Errors []struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"errors"`
		Error  string `json:"error"`
		Detail string `json:"detail"`
	}
	if json.Unmarshal(body, &e) == nil {
		if len(e.Errors) > 0 {
			return fmt.Sprintf(": %s %s", e.Errors[0].Code, e.Errors[0].Message)
		}
		if e.Error != "" {
			return ": " + e.Error
		}
		if e.Detail != "" {
			return ": " + e.Detail
		}
	}
	s := strings.TrimSpace(string(body))
	if s != "" && len(s) < 200 && !strings.Contains(s, "<") {
		return ": " + s
	}
	return ""
}

// parseChallenge reads `Bearer realm="…",service="…"`.
func parseChallenge(h string) (string, map[string]string) {
	scheme, rest, _ := strings.Cut(strings.TrimSpace(h), " ")
	params := map[string]string{}
	for rest != "" {
		rest = strings.TrimLeft(rest, " ,")
		k, after, ok := strings.Cut(rest, "=")
		if !ok {
			break
		}
		k = strings.ToLower(strings.TrimSpace(k))
		var v string
		if strings.HasPrefix(after, `"`) {
			after = after[1:]
			var b strings.Builder
			i := 0
			for ; i < len(after); i++ {
				c := after[i]
				if c == '\\' && i+1 < len(after) {
					i++
					b.WriteByte(after[i])
					continue
				}
				if c == '"' {
					break
				}
				b.WriteByte(c)
			}
			v = b.String()
			if i < len(after) {
				after = after[i+1:]
			} else {
				after = ""
			}
		} else {
			v, after, _ = strings.Cut(after, ",")
			v = strings.TrimSpace(v)
		}
		params[k] = v
		rest = after
	}
	return scheme, params
}
