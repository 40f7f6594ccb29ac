package auth

import (
	"net/http"
	"strings"
)

// AuthenticateAPI identifies the caller of an /api/v1 request. It accepts
//   - `Authorization: Bearer` with an OAuth access token (40 characters,
//     such as user/initialize's; its scopes are returned) or an app-specific
//     token (120 characters; every scope, as the user's own login);
//   - Basic credentials of a user, or `$app`/`$oauthtoken` with a token
//     (a quayctl convenience for curl and scripts; bcrypt results are
//     cached as on /v2/);
//   - nothing: anonymous.
//
// Robots are refused: as in Quay, they have no API access.
//
// scopes is nil when the credential carries every scope. Refusals are
// *LoginError values, written to the audit log as login_failure.
func (a *Authenticator) AuthenticateAPI(r *http.Request) (p *Principal, scopes []string, err error) {
	h := strings.TrimSpace(r.Header.Get("Authorization"))
	if h == "" {
		return Anonymous(), nil, nil
	}
	scheme, cred, _ := strings.Cut(h, " ")
	cred = strings.TrimSpace(cred)
	switch strings.ToLower(scheme) {
	case "basic":
		p, err = a.checkRequestBasic(r, "apiv1")
		if err == nil && p.IsRobot() {
			return nil, nil, &LoginError{Kind: CredRobot, Username: p.Username(), UserID: p.UserID(), Reason: ErrInvalidCredentials}
		}
		if err == nil {
			// An OAuth token sent as a password keeps its scopes.
			if u, pw, ok := r.BasicAuth(); ok && u == OAuthTokenUsername {
				_, scopes, err = a.CheckOAuthToken(r.Context(), pw)
			}
		}
		return p, scopes, err
	case "bearer":
		switch len(cred) {
		case oauthTokenLength:
			p, scopes, err = a.CheckOAuthToken(r.Context(), cred)
		case AppTokenLength:
			p, err = a.CheckAppToken(r.Context(), cred)
		default:
			err = &LoginError{Kind: CredOAuthToken, Username: OAuthTokenUsername, Reason: ErrInvalidCredentials}
		}
		if le, ok := err.(*LoginError); ok {
			a.logLoginFailure(r.Context(), le, clientIP(r), r.UserAgent(), "apiv1")
		}
		return p, scopes, err
	}
	return nil, nil, &LoginError{Kind: CredUser, Reason: ErrInvalidCredentials}
}
