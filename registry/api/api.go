// Package api serves Quay's REST API under /api/v1 with Quay's JSON shapes.
// This file has the plumbing; each resource lives in its own file.
package api

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"strings"

	"github.com/quayctl/quayctl/registry/store"
)

// Options are the features the API honours.
type Options struct {
	UserInitialize bool   // FEATURE_USER_INITIALIZE
	AuthType       string // AUTHENTICATION_TYPE
	Mailing        bool   // FEATURE_MAILING: e-mail required on initialize
	Logger         *slog.Logger
	// Access authenticates API callers and decides repository
	// permissions; without it only user/initialize and discovery work.
	Access Access
	// IsSuperuser reports SUPER_USERS membership (for listings).
	IsSuperuser func(username string) bool
	// RepoMirror (FEATURE_REPO_MIRROR) serves …/mirror; EncryptionKey
	// (encfield.DeriveKey of DATABASE_SECRET_KEY) encrypts its credentials.
	RepoMirror    bool
	EncryptionKey []byte
	// Notifications serves the repository notification API
	// (notifications.go); nil: those routes answer 404.
	Notifications Notifications
	// AutoPrune (FEATURE_AUTO_PRUNE) serves …/autoprunepolicy.
	AutoPrune bool
	// Quota (FEATURE_QUOTA_MANAGEMENT and friends) serves …/quota (quota.go).
	Quota QuotaOptions
}

// Users is what the API needs to create accounts.
type Users interface {
	HashPassword(pw string) (string, error)
	ValidateUsername(name string) error
	ValidatePassword(username, pw string) error
	// MakeSuperuser tells this process that a user (already recorded as a
	// superuser in the database) is one, without waiting for the reload.
	MakeSuperuser(username string)
	// CreateAccessToken issues the OAuth token user/initialize returns.
	CreateAccessToken(ctx context.Context, u *store.User) (string, error)
}

// Handler serves /api/v1/.
type Handler struct {
	store store.Store
	users Users
	opts  Options
	log   *slog.Logger
	mux   *http.ServeMux
}

// New builds the API handler.
func New(st store.Store, users Users, opts Options) *Handler {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	h := &Handler{store: st, users: users, opts: opts, log: log, mux: http.NewServeMux()}
	h.mux.HandleFunc("POST /api/v1/user/initialize", h.initialize)
	h.mux.HandleFunc("GET /api/v1/discovery", h.discovery)
	if opts.Access == nil {
		return h
	}
	for pattern, fn := range map[string]http.HandlerFunc{
		"GET /api/v1/user":                                               h.currentUser,
		"POST /api/v1/organization":                                      h.createOrganization,
		"GET /api/v1/organization/{org}":                                 h.getOrganization,
		"GET /api/v1/organization/{org}/logs":                            h.orgLogs,
		"PUT /api/v1/organization/{org}/team/{team}":                     h.putTeam,
		"DELETE /api/v1/organization/{org}/team/{team}":                  h.deleteTeam,
		"GET /api/v1/organization/{org}/team/{team}/members":             h.teamMembers,
		"PUT /api/v1/organization/{org}/team/{team}/members/{member}":    h.teamMember,
		"DELETE /api/v1/organization/{org}/team/{team}/members/{member}": h.teamMember,
		"GET /api/v1/organization/{org}/robots":                          h.listRobots,
		"GET /api/v1/organization/{org}/robots/{robot}":                  h.robot,
		"PUT /api/v1/organization/{org}/robots/{robot}":                  h.robot,
		"DELETE /api/v1/organization/{org}/robots/{robot}":               h.robot,
		"POST /api/v1/organization/{org}/robots/{robot}/regenerate":      h.regenerateRobot,
		"GET /api/v1/user/robots":                                        h.listRobots,
		"GET /api/v1/user/robots/{robot}":                                h.robot,
		"PUT /api/v1/user/robots/{robot}":                                h.robot,
		"DELETE /api/v1/user/robots/{robot}":                             h.robot,
		"POST /api/v1/user/robots/{robot}/regenerate":                    h.regenerateRobot,
		"GET /api/v1/user/apptoken":                                      h.appTokens,
		"GET /api/v1/user/notifications":                                 h.userNotifications,
		"GET /api/v1/user/notifications/{uuid}":                          h.userNotification,
		"PUT /api/v1/user/notifications/{uuid}":                          h.userNotification,
		"POST /api/v1/user/apptoken":                                     h.appTokens,
		"GET /api/v1/user/apptoken/{uuid}":                               h.appToken,
		"DELETE /api/v1/user/apptoken/{uuid}":                            h.appToken,
		"GET /api/v1/superuser/users":                                    h.superuserUsers,
		"POST /api/v1/repository":                                        h.createRepository,
		"GET /api/v1/repository":                                         h.listRepositories,
		"GET /api/v1/organization/{org}/autoprunepolicy":                 h.autoPrunePolicies,
		"POST /api/v1/organization/{org}/autoprunepolicy":                h.autoPrunePolicies,
		"GET /api/v1/organization/{org}/autoprunepolicy/{uuid}":          h.autoPrunePolicy,
		"PUT /api/v1/organization/{org}/autoprunepolicy/{uuid}":          h.autoPrunePolicy,
		"DELETE /api/v1/organization/{org}/autoprunepolicy/{uuid}":       h.autoPrunePolicy,
		"GET /api/v1/user/autoprunepolicy":                               h.autoPrunePolicies,
		"POST /api/v1/user/autoprunepolicy":                              h.autoPrunePolicies,
		"GET /api/v1/user/autoprunepolicy/{uuid}":                        h.autoPrunePolicy,
		"PUT /api/v1/user/autoprunepolicy/{uuid}":                        h.autoPrunePolicy,
		"DELETE /api/v1/user/autoprunepolicy/{uuid}":                     h.autoPrunePolicy,
		"/api/v1/repository/":                                            h.repositoryRoutes,
	} {
		h.mux.HandleFunc(pattern, fn)
	}
	for pattern, fn := range h.quotaRoutes() {
		h.mux.HandleFunc(pattern, fn)
	}
	return h
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Quay's routes accept a trailing slash or not.
	if len(r.URL.Path) > len("/api/v1/") && strings.HasSuffix(r.URL.Path, "/") {
		r.URL.Path = strings.TrimSuffix(r.URL.Path, "/")
	}
	h.mux.ServeHTTP(w, r)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// apiError writes Quay's API error body.
func apiError(w http.ResponseWriter, status int, errorType, detail string) {
	titles := map[int]string{400: "invalid_request", 401: "invalid_token", 403: "insufficient_scope", 404: "not_found", 409: "conflict"}
	writeJSON(w, status, map[string]any{
		"detail": detail, "error_message": detail, "error_type": errorType,
		"title": titles[status], "type": "/api/v1/error/" + titles[status], "status": status,
	})
}

func (h *Handler) discovery(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"swagger": "2.0",
		"info":    map[string]string{"title": "Quay Frontend (quayctl)", "version": "v1"},
		"paths":   map[string]any{"/api/v1/user/initialize": map[string]any{"post": map[string]string{"operationId": "createInitialUser"}}},
	})
}

// clientIP is the request's peer address without its port, as audit rows
// store it.
func clientIP(r *http.Request) string {
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}
