package api

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/mail"

	"github.com/quayctl/quayctl/registry/store"
)

type initializeRequest struct {
	Username    string `json:"username"`
	Password    string `json:"password"`
	Email       string `json:"email"`
	AccessToken bool   `json:"access_token"`
}

// initialize is Quay's POST /api/v1/user/initialize: the first user of an
// empty registry, created verified, and (here) a superuser.
func (h *Handler) initialize(w http.ResponseWriter, r *http.Request) {
	if !h.opts.UserInitialize {
		http.NotFound(w, r)
		return
	}
	if h.opts.AuthType != "" && h.opts.AuthType != "Database" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"message": "Cannot initialize user in a non-database auth system"})
		return
	}
	var req initializeRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&req); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"message": "Failed to initialize user: request body must be JSON with username, password and email"})
		return
	}
	ctx := r.Context()
	n, err := h.store.CountUsers(ctx)
	if err != nil {
		h.log.ErrorContext(ctx, "count users", "error", err)
		apiError(w, http.StatusInternalServerError, "internal_error", "database unavailable")
		return
	}
	if n > 0 {
		writeJSON(w, http.StatusBadRequest, map[string]string{"message": "Cannot initialize user in a non-empty database"})
		return
	}
	fail := func(msg string) {
		writeJSON(w, http.StatusBadRequest, map[string]string{"message": "Failed to initialize user: " + msg})
	}
	if err := h.users.ValidateUsername(req.Username); err != nil {
		fail(err.Error())
		return
	}
	if err := h.users.ValidatePassword(req.Username, req.Password); err != nil {
		fail(err.Error())
		return
	}
	if req.Email != "" || h.opts.Mailing {
		if _, err := mail.ParseAddress(req.Email); err != nil {
			fail("a valid email is required")
			return
		}
	}
	hash, err := h.users.HashPassword(req.Password)
	if err != nil {
		fail(err.Error())
		return
	}
	u, err := h.store.CreateInitialUser(ctx, store.NewUser{Username: req.Username, Email: req.Email, PasswordHash: hash, Verified: true})
	if errors.Is(err, store.ErrNotEmpty) || errors.Is(err, store.ErrExists) {
		writeJSON(w, http.StatusBadRequest, map[string]string{"message": "Cannot initialize user in a non-empty database"})
		return
	} else if err != nil {
		h.log.ErrorContext(ctx, "create initial user", "error", err)
		fail("could not create the user")
		return
	}
	h.users.MakeSuperuser(u.Username)
	_ = h.store.Log(ctx, store.LogEntry{Kind: "user_create", AccountID: u.ID, PerformerID: &u.ID, IP: clientIP(r), Metadata: map[string]any{"username": u.Username, "source": "user/initialize"}})
	resp := map[string]any{"username": u.Username, "email": u.Email}
	if req.AccessToken {
		// Quay: an "automation" application with a token holding every
		// scope, valid for 9000 s.
		tok, err := h.users.CreateAccessToken(ctx, u)
		if err != nil {
			h.log.ErrorContext(ctx, "create initial access token", "error", err)
			fail("the user was created but its access token could not be")
			return
		}
		resp["access_token"] = tok
	}
	writeJSON(w, http.StatusOK, resp)
}
