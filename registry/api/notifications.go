package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/quayctl/quayctl/registry/notify"
	"github.com/quayctl/quayctl/registry/store"
)

// Quay's repository notification API (endpoints/api/repositorynotification.py)
// for repository administrators, and the caller's in-app notifications
// (endpoints/api/user.py, /user/notifications).

// Notifications is the API's seam to registry/notify.
type Notifications interface {
	// Validate checks a new notification's event, method and config;
	// *notify.ValidationError for what the caller must fix.
	Validate(ctx context.Context, namespace, event, method string, config map[string]any) error
	// QueueTest queues a delivery of the event's sample data.
	QueueTest(ctx context.Context, n *store.RepoNotification) error
}

// repoNotificationView is Quay's RepositoryNotification.to_dict.
func repoNotificationView(n *store.RepoNotification) map[string]any {
	var config, eventConfig any = map[string]any{}, map[string]any{}
	_ = json.Unmarshal([]byte(n.ConfigJSON), &config)
	_ = json.Unmarshal([]byte(n.EventConfigJSON), &eventConfig)
	var title any
	if n.Title != "" {
		title = n.Title
	}
	return map[string]any{
		"uuid": n.UUID, "title": title, "event": n.Event, "method": n.Method,
		"config": config, "event_config": eventConfig, "number_of_failures": n.NumberOfFailures,
	}
}

// notificationRepo authenticates the caller as an administrator of the
// route's repository.
func (h *Handler) notificationRepo(w http.ResponseWriter, r *http.Request) (*Caller, *store.Repository, bool) {
	if h.opts.Notifications == nil {
		notFoundErr(w)
		return nil, nil, false
	}
	c, ok := h.caller(w, r)
	if !ok {
		return nil, nil, false
	}
	rt := repoRoute{ns: r.PathValue("ns"), repo: r.PathValue("repo")}
	repo, _, ok := h.repoFor(w, r, c, rt, needAdmin, scopeRepoAdmin)
	return c, repo, ok
}

// repoNotifications serves GET and POST …/repository/{ns}/{repo}/notification/.
func (h *Handler) repoNotifications(w http.ResponseWriter, r *http.Request) {
	c, repo, ok := h.notificationRepo(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	if r.Method == http.MethodGet {
		ns, err := h.store.RepoNotifications(ctx, repo.ID, "")
		if err != nil {
			h.internal(w, r, err)
			return
		}
		out := make([]map[string]any, 0, len(ns))
		for i := range ns {
			out = append(out, repoNotificationView(&ns[i]))
		}
		writeJSON(w, http.StatusOK, map[string]any{"notifications": out})
		return
	}
	var body struct {
		Event       *string         `json:"event"`
		Method      *string         `json:"method"`
		Config      json.RawMessage `json:"config"`
		EventConfig json.RawMessage `json:"eventConfig"`
		Title       string          `json:"title"`
	}
	if !decodeBody(w, r, &body, false) {
		return
	}
	if body.Event == nil || body.Method == nil || len(body.Config) == 0 {
		badRequest(w, `missing required fields: a notification needs "event", "method" and "config" (and optionally "eventConfig" and "title")`)
		return
	}
	var config map[string]any
	if err := json.Unmarshal(body.Config, &config); err != nil || config == nil {
		badRequest(w, `"config" must be a JSON object with the method's settings (for example {"url": "https://…"} for a webhook)`)
		return
	}
	eventConfig := "{}"
	if len(body.EventConfig) > 0 && string(body.EventConfig) != "null" {
		var ec map[string]any
		if err := json.Unmarshal(body.EventConfig, &ec); err != nil || ec == nil {
			badRequest(w, `"eventConfig" must be a JSON object ({} for events without settings)`)
			return
		}
		eventConfig = string(body.EventConfig)
	}
	if len(body.Title) > 255 {
		badRequest(w, `"title" is longer than 255 characters`)
		return
	}
	if err := h.opts.Notifications.Validate(ctx, repo.Namespace, *body.Event, *body.Method, config); err != nil {
		var ve *notify.ValidationError
		if errors.As(err, &ve) {
			badRequest(w, ve.Msg)
			return
		}
		h.internal(w, r, err)
		return
	}
	n, err := h.store.CreateRepoNotification(ctx, store.NewRepoNotification{RepositoryID: repo.ID, Event: *body.Event,
		Method: *body.Method, Title: body.Title, ConfigJSON: string(body.Config), EventConfigJSON: eventConfig})
	if err != nil {
		h.storeErr(w, r, err)
		return
	}
	h.auditNotification(r, c, "add_repo_notification", repo, n)
	writeJSON(w, http.StatusCreated, repoNotificationView(n))
}

func (h *Handler) auditNotification(r *http.Request, c *Caller, kind string, repo *store.Repository, n *store.RepoNotification) {
	h.audit(r, c, kind, repo.NamespaceID, &repo.ID, map[string]any{"repo": repo.Name, "namespace": repo.Namespace,
		"notification_id": n.UUID, "event": n.Event, "method": n.Method})
}

// repoNotificationFor finds the route's notification in repo (404
// otherwise, including a notification of another repository).
func (h *Handler) repoNotificationFor(w http.ResponseWriter, r *http.Request, repo *store.Repository) (*store.RepoNotification, bool) {
	n, err := h.store.RepoNotificationByUUID(r.Context(), r.PathValue("uuid"))
	if errors.Is(err, store.ErrNotFound) || (err == nil && n.RepositoryID != repo.ID) {
		fail(w, http.StatusNotFound, errNotFound, "No repository notification found with uuid "+r.PathValue("uuid")+" in "+repo.FullName())
		return nil, false
	}
	if err != nil {
		h.internal(w, r, err)
		return nil, false
	}
	return n, true
}

// repoNotification serves GET, DELETE and POST (reset the failure count)
// …/notification/{uuid}.
func (h *Handler) repoNotification(w http.ResponseWriter, r *http.Request) {
	c, repo, ok := h.notificationRepo(w, r)
	if !ok {
		return
	}
	n, ok := h.repoNotificationFor(w, r, repo)
	if !ok {
		return
	}
	ctx := r.Context()
	switch r.Method {
	case http.MethodDelete:
		if err := h.store.DeleteRepoNotification(ctx, n.UUID); err != nil {
			h.storeErr(w, r, err)
			return
		}
		h.auditNotification(r, c, "delete_repo_notification", repo, n)
		w.WriteHeader(http.StatusNoContent)
	case http.MethodPost:
		if err := h.store.ResetRepoNotificationFailures(ctx, n.UUID); err != nil {
			h.storeErr(w, r, err)
			return
		}
		h.auditNotification(r, c, "reset_repo_notification", repo, n)
		w.WriteHeader(http.StatusNoContent)
	default:
		writeJSON(w, http.StatusOK, repoNotificationView(n))
	}
}

// testRepoNotification serves POST …/notification/{uuid}/test.
func (h *Handler) testRepoNotification(w http.ResponseWriter, r *http.Request) {
	_, repo, ok := h.notificationRepo(w, r)
	if !ok {
		return
	}
	n, ok := h.repoNotificationFor(w, r, repo)
	if !ok {
		return
	}
	if err := h.opts.Notifications.QueueTest(r.Context(), n); err != nil {
		h.internal(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{})
}

// userNotificationView is Quay's notification_view.
func userNotificationView(n store.UserNotification) map[string]any {
	var md any = map[string]any{}
	_ = json.Unmarshal([]byte(n.MetadataJSON), &md)
	var org any
	if n.TargetIsOrg {
		org = n.TargetName
	}
	return map[string]any{"id": n.UUID, "organization": org, "kind": n.Kind, "created": formatDate(n.Created),
		"metadata": md, "dismissed": n.Dismissed}
}

// userNotificationsPage is how many notifications one page lists.
const userNotificationsPage = 50

// userNotifications serves GET /api/v1/user/notifications[?page=N]: the
// caller's undismissed notifications, newest first.
func (h *Handler) userNotifications(w http.ResponseWriter, r *http.Request) {
	c, ok := h.caller(w, r)
	if !ok || !requireUser(w, c, scopeUserAdmin) {
		return
	}
	page := 1
	if p := r.URL.Query().Get("page"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 {
			badRequest(w, "page must be a positive integer")
			return
		}
		page = n
	}
	all, err := h.store.UserNotifications(r.Context(), c.User.ID, "", false)
	if err != nil {
		h.internal(w, r, err)
		return
	}
	start := min((page-1)*userNotificationsPage, len(all))
	end := min(start+userNotificationsPage, len(all))
	out := make([]map[string]any, 0, end-start)
	for _, n := range all[start:end] {
		out = append(out, userNotificationView(n))
	}
	writeJSON(w, http.StatusOK, map[string]any{"notifications": out, "additional": end < len(all)})
}

// userNotification serves GET and PUT /api/v1/user/notifications/{uuid};
// PUT {"dismissed": true|false} dismisses or restores it.
func (h *Handler) userNotification(w http.ResponseWriter, r *http.Request) {
	c, ok := h.caller(w, r)
	if !ok || !requireUser(w, c, scopeUserAdmin) {
		return
	}
	ctx := r.Context()
	found, err := h.store.UserNotifications(ctx, c.User.ID, r.PathValue("uuid"), true)
	if err != nil {
		h.internal(w, r, err)
		return
	}
	if len(found) == 0 {
		notFoundErr(w)
		return
	}
	n := found[0]
	if r.Method == http.MethodPut {
		var body struct {
			Dismissed *bool `json:"dismissed"`
		}
		if !decodeBody(w, r, &body, false) {
			return
		}
		if body.Dismissed == nil {
			badRequest(w, `missing "dismissed": send {"dismissed": true} to dismiss the notification`)
			return
		}
		if err := h.store.SetNotificationDismissed(ctx, n.ID, *body.Dismissed); err != nil {
			h.storeErr(w, r, err)
			return
		}
		n.Dismissed = *body.Dismissed
	}
	writeJSON(w, http.StatusOK, userNotificationView(n))
}
