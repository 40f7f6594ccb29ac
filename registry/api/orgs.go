package api

import (
	"context"
	"errors"
	"net/http"
	"net/mail"
	"strings"

	"github.com/quayctl/quayctl/registry/store"
)

// callerOrg is the preamble of the organisation endpoints: the caller,
// then the organisation of the path as orgFor allows it.
func (h *Handler) callerOrg(w http.ResponseWriter, r *http.Request, needAdmin bool, scope string) (*Caller, *store.User, bool) {
	c, ok := h.caller(w, r)
	if !ok {
		return nil, nil, false
	}
	org, ok := h.orgFor(w, r, c, needAdmin, scope)
	return c, org, ok
}

// orgFor loads the {orgname} of the path; on failure it has answered.
// Callers that are not allowed to know get the same answer whether the
// organisation exists or not.
func (h *Handler) orgFor(w http.ResponseWriter, r *http.Request, c *Caller, needAdmin bool, scope string) (*store.User, bool) {
	if !requireUser(w, c, scope) {
		return nil, false
	}
	org, err := h.store.UserByName(r.Context(), r.PathValue("org"))
	if errors.Is(err, store.ErrNotFound) || (err == nil && !org.Organization) {
		if c.FullAccess {
			notFoundErr(w)
		} else {
			unauthorized(w, c)
		}
		return nil, false
	} else if err != nil {
		h.internal(w, r, err)
		return nil, false
	}
	if needAdmin {
		admin, err := h.namespaceAdmin(r.Context(), c, org)
		if err != nil {
			h.internal(w, r, err)
			return nil, false
		}
		if !admin {
			unauthorized(w, c)
			return nil, false
		}
	}
	return org, true
}

// createOrganization is POST /api/v1/organization/ {"name", "email"}.
func (h *Handler) createOrganization(w http.ResponseWriter, r *http.Request) {
	c, ok := h.caller(w, r)
	if !ok || !requireUser(w, c, scopeUserAdmin) {
		return
	}
	var body struct {
		Name  string `json:"name"`
		Email string `json:"email"`
	}
	if !decodeBody(w, r, &body, false) {
		return
	}
	if !validNamespaceName(body.Name) {
		badRequest(w, "Invalid organization name: "+body.Name+" (2 to 255 characters of a-z, 0-9 and single . _ - between them)")
		return
	}
	if body.Email != "" {
		if a, err := mail.ParseAddress(body.Email); err != nil || a.Address != body.Email {
			badRequest(w, "Invalid email address: "+body.Email)
			return
		}
	}
	org, err := h.store.CreateOrganization(r.Context(), body.Name, body.Email, c.User.ID)
	if errors.Is(err, store.ErrExists) {
		badRequest(w, "A user or organization with this name already exists")
		return
	} else if err != nil {
		h.storeErr(w, r, err)
		return
	}
	h.audit(r, c, "org_create", org.ID, nil, map[string]any{"email": body.Email, "namespace": org.Username})
	writeJSON(w, http.StatusCreated, "Created")
}

// teamView is Quay's team_view.
func (h *Handler) teamView(ctx context.Context, t store.Team) (map[string]any, error) {
	members, err := h.store.TeamMembers(ctx, t.ID)
	if err != nil {
		return nil, err
	}
	return map[string]any{"name": t.Name, "description": t.Description, "role": t.Role,
		"avatar": avatar(t.Name, "", "team"), "can_view": true, "member_count": len(members), "is_synced": false}, nil
}

// getOrganization is GET /api/v1/organization/{org}: the public view for
// any logged-in user, teams for members, the e-mail for admins.
func (h *Handler) getOrganization(w http.ResponseWriter, r *http.Request) {
	c, org, ok := h.callerOrg(w, r, false, scopeUserAdmin)
	if !ok {
		return
	}
	ctx := r.Context()
	role, err := h.store.NamespaceRole(ctx, c.User.ID, org.ID)
	if err != nil {
		h.internal(w, r, err)
		return
	}
	admin := role == store.TeamRoleAdmin || c.FullAccess
	member := role != "" || c.FullAccess
	v := map[string]any{"name": org.Username, "avatar": avatar(org.Username, org.Email, "org"),
		"is_admin": admin, "is_member": member, "is_free_account": true}
	if member {
		teams, err := h.store.ListTeams(ctx, org.ID)
		if err != nil {
			h.internal(w, r, err)
			return
		}
		byName, ordered := map[string]any{}, []string{}
		for _, t := range teams {
			tv, err := h.teamView(ctx, t)
			if err != nil {
				h.internal(w, r, err)
				return
			}
			byName[t.Name], ordered = tv, append(ordered, t.Name)
		}
		v["teams"], v["ordered_teams"] = byName, ordered
		v["tag_expiration_s"] = org.RemovedTagExpirationS
		h.addQuotaReport(ctx, org.ID, v) // quota.go
	}
	if admin {
		v["email"], v["invoice_email"], v["invoice_email_address"] = org.Email, false, nil
	}
	writeJSON(w, http.StatusOK, v)
}

// putTeam is PUT /api/v1/organization/{org}/team/{team} {"role",
// "description"}: create, or change role and description.
func (h *Handler) putTeam(w http.ResponseWriter, r *http.Request) {
	c, org, ok := h.callerOrg(w, r, true, scopeOrgAdmin)
	if !ok {
		return
	}
	var body struct {
		Role        string  `json:"role"`
		Description *string `json:"description"`
	}
	if !decodeBody(w, r, &body, false) {
		return
	}
	if body.Role != store.TeamRoleAdmin && body.Role != store.TeamRoleCreator && body.Role != store.TeamRoleMember {
		badRequest(w, "Invalid team role: "+body.Role+" (use member, creator or admin)")
		return
	}
	ctx, name := r.Context(), r.PathValue("team")
	t, err := h.store.TeamByName(ctx, org.ID, name)
	switch {
	case errors.Is(err, store.ErrNotFound):
		desc := ""
		if body.Description != nil {
			desc = *body.Description
		}
		if t, err = h.store.CreateTeam(ctx, org.ID, name, body.Role, desc); err != nil {
			h.storeErr(w, r, err)
			return
		}
		h.audit(r, c, "org_create_team", org.ID, nil, map[string]any{"team": name})
	case err != nil:
		h.internal(w, r, err)
		return
	default:
		desc := t.Description
		if body.Description != nil {
			desc = *body.Description
		}
		if err := h.store.UpdateTeam(ctx, t.ID, body.Role, desc); err != nil {
			h.storeErr(w, r, err)
			return
		}
		if body.Role != t.Role {
			h.audit(r, c, "org_set_team_role", org.ID, nil, map[string]any{"team": name, "role": body.Role})
		}
		if desc != t.Description {
			h.audit(r, c, "org_set_team_description", org.ID, nil, map[string]any{"team": name, "description": desc})
		}
		t.Role, t.Description = body.Role, desc
	}
	v, err := h.teamView(ctx, *t)
	if err != nil {
		h.internal(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// deleteTeam is DELETE /api/v1/organization/{org}/team/{team}.
func (h *Handler) deleteTeam(w http.ResponseWriter, r *http.Request) {
	c, org, ok := h.callerOrg(w, r, true, scopeOrgAdmin)
	if !ok {
		return
	}
	ctx, name := r.Context(), r.PathValue("team")
	t, err := h.store.TeamByName(ctx, org.ID, name)
	if err != nil {
		h.storeErr(w, r, err)
		return
	}
	if err := h.store.DeleteTeam(ctx, t.ID); err != nil {
		h.storeErr(w, r, err)
		return
	}
	h.audit(r, c, "org_delete_team", org.ID, nil, map[string]any{"team": name})
	w.WriteHeader(http.StatusNoContent)
}

func memberView(u store.User) map[string]any {
	return map[string]any{"name": u.Username, "kind": "user", "is_robot": u.Robot,
		"avatar": avatar(u.Username, "", userKind(&u)), "invited": false}
}

// teamMembers is GET /api/v1/organization/{org}/team/{team}/members
// (members of the organisation may look; admins may edit).
func (h *Handler) teamMembers(w http.ResponseWriter, r *http.Request) {
	c, org, ok := h.callerOrg(w, r, false, scopeOrgAdmin)
	if !ok {
		return
	}
	ctx := r.Context()
	role, err := h.store.NamespaceRole(ctx, c.User.ID, org.ID)
	if err != nil {
		h.internal(w, r, err)
		return
	}
	if role == "" && !c.FullAccess {
		unauthorized(w, c)
		return
	}
	t, err := h.store.TeamByName(ctx, org.ID, r.PathValue("team"))
	if err != nil {
		h.storeErr(w, r, err)
		return
	}
	members, err := h.store.TeamMembers(ctx, t.ID)
	if err != nil {
		h.internal(w, r, err)
		return
	}
	views := make([]map[string]any, 0, len(members))
	for _, m := range members {
		views = append(views, memberView(m))
	}
	writeJSON(w, http.StatusOK, map[string]any{"name": t.Name, "members": views,
		"can_edit": role == store.TeamRoleAdmin || c.FullAccess})
}

// teamMember is PUT or DELETE /api/v1/organization/{org}/team/{team}/members/{member}.
func (h *Handler) teamMember(w http.ResponseWriter, r *http.Request) {
	c, org, ok := h.callerOrg(w, r, true, scopeOrgAdmin)
	if !ok {
		return
	}
	ctx, teamName, memberName := r.Context(), r.PathValue("team"), r.PathValue("member")
	t, err := h.store.TeamByName(ctx, org.ID, teamName)
	if err != nil {
		h.storeErr(w, r, err)
		return
	}
	u, err := h.store.UserByName(ctx, memberName)
	if errors.Is(err, store.ErrNotFound) || (err == nil && u.Organization) {
		badRequest(w, "Unknown user: "+memberName)
		return
	} else if err != nil {
		h.internal(w, r, err)
		return
	}
	md := map[string]any{"member": memberName, "team": teamName}
	if r.Method == http.MethodDelete {
		if err := h.store.RemoveTeamMember(ctx, t.ID, u.ID); err != nil {
			h.storeErr(w, r, err)
			return
		}
		h.audit(r, c, "org_remove_team_member", org.ID, nil, md)
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if err := h.store.AddTeamMember(ctx, t.ID, u.ID); err != nil {
		h.storeErr(w, r, err)
		return
	}
	h.audit(r, c, "org_add_team_member", org.ID, nil, md)
	writeJSON(w, http.StatusOK, memberView(*u))
}

// orgLogs is GET /api/v1/organization/{org}/logs (admins and superusers).
func (h *Handler) orgLogs(w http.ResponseWriter, r *http.Request) {
	c, ok := h.caller(w, r)
	if !ok {
		return
	}
	if c.Superuser && !c.Anonymous() && c.HasScope(scopeSuperUser) {
		c = &Caller{User: c.User, Superuser: true, FullAccess: true, Scopes: c.Scopes}
	}
	org, ok := h.orgFor(w, r, c, true, scopeOrgAdmin)
	if !ok {
		return
	}
	h.writeLogs(w, r, store.LogQuery{AccountID: org.ID}, false)
}

// Robots -----------------------------------------------------------------------

// robotView is Quay's Robot.to_dict.
func robotView(name string, rb *store.Robot, token string, metadata bool) map[string]any {
	v := map[string]any{"name": name, "created": nil, "last_accessed": nil, "description": ""}
	if rb != nil {
		v["created"] = formatDatePtr(&rb.Created)
		v["description"] = rb.Description
	}
	if token != "" {
		v["token"] = token
	}
	if metadata {
		v["unstructured_metadata"] = map[string]any{}
	}
	return v
}

// robotOwner resolves the namespace of a robot route: the organisation
// (admins only) or, under /api/v1/user/robots, the caller.
func (h *Handler) robotOwner(w http.ResponseWriter, r *http.Request) (*Caller, *store.User, bool) {
	c, ok := h.caller(w, r)
	if !ok {
		return nil, nil, false
	}
	if r.PathValue("org") == "" {
		if !requireUser(w, c, scopeUserAdmin) {
			return nil, nil, false
		}
		return c, c.User, true
	}
	org, ok := h.orgFor(w, r, c, true, scopeOrgAdmin)
	return c, org, ok
}

func (h *Handler) findRobot(ctx context.Context, ns *store.User, short string) (*store.Robot, error) {
	robots, err := h.store.ListRobots(ctx, ns.ID)
	if err != nil {
		return nil, err
	}
	for i := range robots {
		if robots[i].Name == ns.Username+"+"+short {
			return &robots[i], nil
		}
	}
	return nil, store.ErrNotFound
}

// listRobots is GET …/robots (?token=false leaves tokens out).
func (h *Handler) listRobots(w http.ResponseWriter, r *http.Request) {
	_, ns, ok := h.robotOwner(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	robots, err := h.store.ListRobots(ctx, ns.ID)
	if err != nil {
		h.internal(w, r, err)
		return
	}
	withToken := r.URL.Query().Get("token") != "false"
	views := make([]map[string]any, 0, len(robots))
	for i := range robots {
		tok := ""
		if withToken {
			if tok, err = h.opts.Access.RobotToken(ctx, robots[i].ID); err != nil {
				h.internal(w, r, err)
				return
			}
		}
		views = append(views, robotView(robots[i].Name, &robots[i], tok, false))
	}
	writeJSON(w, http.StatusOK, map[string]any{"robots": views})
}

// robot serves GET, PUT (create) and DELETE on …/robots/{robot}.
func (h *Handler) robot(w http.ResponseWriter, r *http.Request) {
	c, ns, ok := h.robotOwner(w, r)
	if !ok {
		return
	}
	ctx, short := r.Context(), r.PathValue("robot")
	full := ns.Username + "+" + short
	switch r.Method {
	case http.MethodPut:
		var body struct {
			Description          string         `json:"description"`
			UnstructuredMetadata map[string]any `json:"unstructured_metadata"`
		}
		if !decodeBody(w, r, &body, true) {
			return
		}
		u, tok, err := h.opts.Access.CreateRobot(ctx, ns.ID, short, body.Description)
		if errors.Is(err, store.ErrExists) {
			badRequest(w, "Existing robot with name: "+full)
			return
		} else if err != nil {
			h.storeErr(w, r, err)
			return
		}
		h.audit(r, c, "create_robot", ns.ID, nil, map[string]any{"robot": short, "description": body.Description,
			"unstructured_metadata": body.UnstructuredMetadata})
		rb := &store.Robot{ID: u.ID, Name: full, Description: body.Description, Created: u.CreationDate}
		writeJSON(w, http.StatusCreated, robotView(full, rb, tok, true))
	case http.MethodGet:
		rb, err := h.findRobot(ctx, ns, short)
		if err != nil {
			h.storeErr(w, r, err)
			return
		}
		tok, err := h.opts.Access.RobotToken(ctx, rb.ID)
		if err != nil {
			h.internal(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, robotView(full, rb, tok, true))
	case http.MethodDelete:
		rb, err := h.findRobot(ctx, ns, short)
		if err != nil {
			h.storeErr(w, r, err)
			return
		}
		if err := h.store.DeleteRobot(ctx, rb.ID); err != nil {
			h.storeErr(w, r, err)
			return
		}
		h.audit(r, c, "delete_robot", ns.ID, nil, map[string]any{"robot": short})
		w.WriteHeader(http.StatusNoContent)
	}
}

// regenerateRobot is POST …/robots/{robot}/regenerate.
func (h *Handler) regenerateRobot(w http.ResponseWriter, r *http.Request) {
	c, ns, ok := h.robotOwner(w, r)
	if !ok {
		return
	}
	ctx, short := r.Context(), r.PathValue("robot")
	rb, err := h.findRobot(ctx, ns, short)
	if err != nil {
		h.storeErr(w, r, err)
		return
	}
	tok, err := h.opts.Access.RegenerateRobotToken(ctx, rb.ID)
	if err != nil {
		h.internal(w, r, err)
		return
	}
	h.audit(r, c, "regenerate_robot_token", ns.ID, nil, map[string]any{"robot": short})
	writeJSON(w, http.StatusOK, robotView(rb.Name, rb, tok, false))
}

// Superuser and the caller's own account ---------------------------------------

// superuserUsers is GET /api/v1/superuser/users/.
func (h *Handler) superuserUsers(w http.ResponseWriter, r *http.Request) {
	c, ok := h.caller(w, r)
	if !ok {
		return
	}
	if c.Anonymous() || !c.Superuser || !c.HasScope(scopeSuperUser) {
		unauthorized(w, c)
		return
	}
	users, err := h.store.ListUsers(r.Context())
	if err != nil {
		h.internal(w, r, err)
		return
	}
	supers, err := h.store.Superusers(r.Context())
	if err != nil {
		h.internal(w, r, err)
		return
	}
	views := make([]map[string]any, 0, len(users))
	for _, u := range users {
		su := h.opts.IsSuperuser != nil && h.opts.IsSuperuser(u.Username)
		for _, s := range supers {
			su = su || s == u.Username
		}
		views = append(views, map[string]any{"kind": "user", "name": u.Username, "username": u.Username,
			"email": u.Email, "verified": u.Verified, "avatar": avatar(u.Username, u.Email, "user"),
			"super_user": su, "enabled": u.Enabled})
	}
	writeJSON(w, http.StatusOK, map[string]any{"users": views})
}

func appTokenView(t *store.AppToken, code string) map[string]any {
	v := map[string]any{"uuid": t.UUID, "title": t.Title, "last_accessed": formatDatePtr(t.LastAccessed),
		"created": formatDatePtr(&t.Created), "expiration": formatDatePtr(t.Expiration)}
	if code != "" {
		v["token_code"] = code
	}
	return v
}

// appTokens serves GET (list) and POST (create) /api/v1/user/apptoken.
func (h *Handler) appTokens(w http.ResponseWriter, r *http.Request) {
	c, ok := h.caller(w, r)
	if !ok || !requireUser(w, c, scopeUserAdmin) {
		return
	}
	ctx := r.Context()
	if r.Method == http.MethodPost {
		var body struct {
			Title string `json:"title"`
		}
		if !decodeBody(w, r, &body, false) {
			return
		}
		body.Title = strings.TrimSpace(body.Title)
		if body.Title == "" || len(body.Title) > 255 {
			badRequest(w, "title is required (at most 255 characters)")
			return
		}
		t, code, err := h.opts.Access.CreateAppToken(ctx, c.User, body.Title)
		if err != nil {
			h.internal(w, r, err)
			return
		}
		h.audit(r, c, "create_app_specific_token", c.User.ID, nil,
			map[string]any{"app_specific_token_title": t.Title, "app_specific_token": t.UUID})
		writeJSON(w, http.StatusOK, map[string]any{"token": appTokenView(t, code)})
		return
	}
	tokens, err := h.store.ListAppTokens(ctx, c.User.ID)
	if err != nil {
		h.internal(w, r, err)
		return
	}
	views := make([]map[string]any, 0, len(tokens))
	for i := range tokens {
		views = append(views, appTokenView(&tokens[i], ""))
	}
	writeJSON(w, http.StatusOK, map[string]any{"tokens": views, "only_expiring": nil})
}

// appToken serves GET and DELETE /api/v1/user/apptoken/{uuid}.
func (h *Handler) appToken(w http.ResponseWriter, r *http.Request) {
	c, ok := h.caller(w, r)
	if !ok || !requireUser(w, c, scopeUserAdmin) {
		return
	}
	ctx, id := r.Context(), r.PathValue("uuid")
	t, err := h.store.AppTokenByUUID(ctx, c.User.ID, id)
	if err != nil {
		h.storeErr(w, r, err)
		return
	}
	if r.Method == http.MethodDelete {
		if err := h.store.DeleteAppToken(ctx, c.User.ID, id); err != nil {
			h.storeErr(w, r, err)
			return
		}
		h.audit(r, c, "revoke_app_specific_token", c.User.ID, nil,
			map[string]any{"app_specific_token_title": t.Title, "app_specific_token": t.UUID})
		w.WriteHeader(http.StatusNoContent)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"token": appTokenView(t, "")})
}

// currentUser is GET /api/v1/user/: the caller's own account.
func (h *Handler) currentUser(w http.ResponseWriter, r *http.Request) {
	c, ok := h.caller(w, r)
	if !ok {
		return
	}
	if c.Anonymous() || !c.HasScope("user:read") && !c.HasScope(scopeUserAdmin) {
		unauthorized(w, c)
		return
	}
	u := c.User
	writeJSON(w, http.StatusOK, map[string]any{"anonymous": false, "username": u.Username, "email": u.Email,
		"verified": u.Verified, "avatar": avatar(u.Username, u.Email, "user"), "super_user": c.Superuser,
		"enabled": u.Enabled, "tag_expiration_s": u.RemovedTagExpirationS})
}
