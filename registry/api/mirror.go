package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/quayctl/quayctl/registry/encfield"
	"github.com/quayctl/quayctl/registry/store"
)

// Quay's repository mirror API (endpoints/api/mirror.py), behind
// FEATURE_REPO_MIRROR, for repository administrators. The source
// password is stored encrypted and never returned.

// quayMirrorDate is the only input date format Quay accepts.
const quayMirrorDate = "2006-01-02T15:04:05Z"

// Column sizes of the encrypted fields (Quay's schema).
const (
	mirrorUsernameMax = 4096
	mirrorPasswordMax = 9000
)

// mirrorBody is the JSON of POST and PUT; pointers tell "absent" apart.
type mirrorBody struct {
	IsEnabled              *bool           `json:"is_enabled"`
	ExternalReference      *string         `json:"external_reference"`
	Username               *string         `json:"external_registry_username"`
	Password               *string         `json:"external_registry_password"`
	ExternalRegistryConfig json.RawMessage `json:"external_registry_config"`
	SyncInterval           *int            `json:"sync_interval"`
	SyncStartDate          *string         `json:"sync_start_date"`
	RootRule               *mirrorRule     `json:"root_rule"`
	RobotUsername          *string         `json:"robot_username"`
	SkopeoTimeout          *int64          `json:"skopeo_timeout_interval"`
	ArchitectureFilter     []string        `json:"architecture_filter"`
}

type mirrorRule struct {
	RuleKind  string   `json:"rule_kind"`
	RuleValue []string `json:"rule_value"`
}

// mirrorRoutes dispatches …/mirror, …/mirror/sync-now, …/mirror/sync-cancel
// and …/mirror/rules.
func (h *Handler) mirrorRoute(w http.ResponseWriter, r *http.Request, c *Caller, rt repoRoute) {
	if !h.opts.RepoMirror {
		notFoundErr(w)
		return
	}
	repo, _, ok := h.repoFor(w, r, c, rt, needAdmin, scopeRepoAdmin)
	if !ok {
		return
	}
	ctx := r.Context()
	cfg, err := h.store.MirrorByRepository(ctx, repo.ID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		h.internal(w, r, err)
		return
	}
	if cfg == nil && !(rt.sub == "mirror" && r.Method == http.MethodPost) {
		fail(w, http.StatusNotFound, errNotFound, "No mirror configuration found for repository")
		return
	}
	switch rt.sub + " " + r.Method {
	case "mirror GET":
		writeJSON(w, http.StatusOK, h.mirrorView(r, cfg))
	case "mirror POST":
		h.createMirror(w, r, c, repo, cfg)
	case "mirror PUT", "mirror/rules PUT":
		h.updateMirror(w, r, c, repo, cfg, rt.sub == "mirror/rules")
	case "mirror/sync-now POST":
		if _, err := h.store.MirrorSyncNow(ctx, repo.ID); err != nil {
			h.internal(w, r, err)
			return
		}
		h.audit(r, c, "repo_mirror_sync_now_requested", repo.NamespaceID, &repo.ID, map[string]any{"namespace": repo.Namespace, "repo": repo.Name})
		w.WriteHeader(http.StatusNoContent)
	case "mirror/sync-cancel POST":
		if _, err := h.store.MirrorSyncCancel(ctx, repo.ID); err != nil {
			h.internal(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		fail(w, http.StatusMethodNotAllowed, errInvalidRequest, "Method not allowed")
	}
}

// quayISO is Python's isoformat() of a naive UTC datetime, plus "Z".
func quayISO(t *time.Time) any {
	if t == nil {
		return nil
	}
	u := t.UTC()
	if u.Nanosecond() != 0 {
		return u.Format("2006-01-02T15:04:05.000000") + "Z"
	}
	return u.Format("2006-01-02T15:04:05") + "Z"
}

func (h *Handler) mirrorView(r *http.Request, cfg *store.MirrorConfig) map[string]any {
	var username any
	if cfg.Username != "" {
		if u, err := encfield.Decrypt(h.opts.EncryptionKey, cfg.Username); err == nil {
			username = u
		} else {
			h.log.WarnContext(r.Context(), "cannot decrypt the mirror's external_registry_username", "repository", cfg.FullName(), "err", err)
		}
	}
	var regConfig any = map[string]any{}
	if cfg.RegistryConfig != "" {
		_ = json.Unmarshal([]byte(cfg.RegistryConfig), &regConfig)
	}
	arch := cfg.ArchitectureFilter
	if arch == nil {
		arch = []string{}
	}
	v := map[string]any{
		"is_enabled": cfg.Enabled, "mirror_type": "PULL", "external_reference": cfg.ExternalReference,
		"external_registry_username": username, "external_registry_config": regConfig,
		"sync_interval": cfg.SyncInterval, "sync_start_date": quayISO(cfg.SyncStartDate),
		"sync_expiration_date": quayISO(cfg.SyncExpirationDate), "sync_retries_remaining": cfg.SyncRetriesRemaining,
		"sync_status":    cfg.SyncStatus.String(),
		"root_rule":      map[string]any{"rule_kind": "tag_glob_csv", "rule_value": cfg.TagPatterns},
		"robot_username": cfg.RobotName, "skopeo_timeout_interval": cfg.SkopeoTimeout, "architecture_filter": arch,
	}
	// quayctl adds the reason of the last failed sync, from the audit log.
	if cfg.SyncStatus == store.MirrorFail {
		if logs, err := h.store.Logs(r.Context(), store.LogQuery{RepositoryID: cfg.RepositoryID, Kind: "repo_mirror_sync_failed", Limit: 1}); err == nil && len(logs) == 1 {
			v["last_error"] = logs[0].Metadata["error"]
		}
	}
	return v
}

func (h *Handler) createMirror(w http.ResponseWriter, r *http.Request, c *Caller, repo *store.Repository, existing *store.MirrorConfig) {
	if existing != nil {
		fail(w, http.StatusConflict, "conflict", "Mirror configuration already exists for repository")
		return
	}
	var body mirrorBody
	if !decodeBody(w, r, &body, false) {
		return
	}
	switch {
	case body.ExternalReference == nil || *body.ExternalReference == "":
		badRequest(w, "external_reference is required")
		return
	case body.SyncInterval == nil:
		badRequest(w, "sync_interval is required")
		return
	case body.SyncStartDate == nil:
		badRequest(w, "sync_start_date is required")
		return
	case body.RootRule == nil:
		badRequest(w, "root_rule is required")
		return
	case body.RobotUsername == nil:
		badRequest(w, "robot_username is required")
		return
	}
	cfg := &store.MirrorConfig{RepositoryID: repo.ID, Enabled: true, SkopeoTimeout: 300, SyncStatus: store.MirrorNeverRun}
	if !h.applyMirrorBody(w, r, repo, cfg, &body, false) {
		return
	}
	if err := h.store.CreateMirror(r.Context(), cfg); errors.Is(err, store.ErrExists) {
		fail(w, http.StatusConflict, "conflict", "Mirror configuration already exists for repository")
		return
	} else if err != nil {
		h.internal(w, r, err)
		return
	}
	h.audit(r, c, "repo_mirror_enabled", repo.NamespaceID, &repo.ID, map[string]any{"namespace": repo.Namespace, "repo": repo.Name,
		"external_reference": cfg.ExternalReference})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
}

func (h *Handler) updateMirror(w http.ResponseWriter, r *http.Request, c *Caller, repo *store.Repository, cfg *store.MirrorConfig, rulesOnly bool) {
	var raw json.RawMessage
	if !decodeBody(w, r, &raw, false) {
		return
	}
	var body mirrorBody
	if err := json.Unmarshal(raw, &body); err != nil {
		badRequest(w, "the request body is not a mirror configuration: "+err.Error())
		return
	}
	if rulesOnly {
		// …/mirror/rules takes {"root_rule": {...}} or the rule itself, and
		// nothing else.
		if body.RootRule == nil {
			var rule mirrorRule
			if json.Unmarshal(raw, &rule) != nil || rule.RuleKind == "" {
				badRequest(w, "root_rule is required")
				return
			}
			body.RootRule = &rule
		}
		body = mirrorBody{RootRule: body.RootRule}
	}
	if !h.applyMirrorBody(w, r, repo, cfg, &body, true) {
		return
	}
	if err := h.store.UpdateMirror(r.Context(), cfg); err != nil {
		h.internal(w, r, err)
		return
	}
	h.audit(r, c, "repo_mirror_config_changed", repo.NamespaceID, &repo.ID, map[string]any{"namespace": repo.Namespace, "repo": repo.Name})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
}

// applyMirrorBody validates the body and copies what it sets onto cfg,
// encrypting the credentials. It has answered 400 when it returns false.
func (h *Handler) applyMirrorBody(w http.ResponseWriter, r *http.Request, repo *store.Repository, cfg *store.MirrorConfig, b *mirrorBody, partial bool) bool {
	if b.IsEnabled != nil {
		cfg.Enabled = *b.IsEnabled
	}
	if b.ExternalReference != nil {
		ref := strings.TrimSpace(*b.ExternalReference)
		if ref == "" || strings.Contains(ref, "://") || !strings.Contains(ref, "/") {
			badRequest(w, "external_reference must be host/namespace/repository, without a scheme")
			return false
		}
		cfg.ExternalReference = ref
	}
	if b.Password != nil && *b.Password != "" && b.Username == nil {
		badRequest(w, "Username must be provided with password")
		return false
	}
	if b.Username != nil {
		enc, ok := h.encryptField(w, *b.Username, mirrorUsernameMax)
		if !ok {
			return false
		}
		cfg.Username = enc
		if b.Password == nil && partial {
			cfg.Password = "" // a new username without a password clears it, as Quay does
		}
	}
	if b.Password != nil {
		enc, ok := h.encryptField(w, *b.Password, mirrorPasswordMax)
		if !ok {
			return false
		}
		cfg.Password = enc
	}
	if len(b.ExternalRegistryConfig) > 0 && string(b.ExternalRegistryConfig) != "null" {
		var m map[string]any
		if err := json.Unmarshal(b.ExternalRegistryConfig, &m); err != nil {
			badRequest(w, "external_registry_config must be an object")
			return false
		}
		cfg.RegistryConfig = string(b.ExternalRegistryConfig)
	} else if cfg.RegistryConfig == "" {
		cfg.RegistryConfig = "{}"
	}
	if b.SyncInterval != nil {
		if *b.SyncInterval < 0 {
			badRequest(w, "sync_interval must be a positive number of seconds")
			return false
		}
		cfg.SyncInterval = *b.SyncInterval
	}
	if b.SyncStartDate != nil {
		t, err := time.Parse(quayMirrorDate, *b.SyncStartDate)
		if err != nil {
			badRequest(w, "sync_start_date must look like 2024-01-01T00:00:00Z")
			return false
		}
		cfg.SyncStartDate = &t
	}
	if b.RootRule != nil {
		if b.RootRule.RuleKind != "tag_glob_csv" {
			badRequest(w, "root_rule.rule_kind must be tag_glob_csv")
			return false
		}
		if len(b.RootRule.RuleValue) == 0 {
			badRequest(w, "root_rule.rule_value must list at least one tag or glob")
			return false
		}
		cfg.TagPatterns = b.RootRule.RuleValue
	}
	if b.SkopeoTimeout != nil {
		if *b.SkopeoTimeout < 300 {
			badRequest(w, "skopeo_timeout_interval must be at least 300 seconds")
			return false
		}
		cfg.SkopeoTimeout = *b.SkopeoTimeout
	}
	if b.ArchitectureFilter != nil {
		cfg.ArchitectureFilter = b.ArchitectureFilter
	}
	if b.RobotUsername != nil {
		robot, err := h.store.UserByName(r.Context(), *b.RobotUsername)
		ns, _, _ := strings.Cut(*b.RobotUsername, "+")
		if err != nil || !robot.Robot || ns != repo.Namespace {
			badRequest(w, "Invalid robot: "+*b.RobotUsername+" (a robot of namespace "+repo.Namespace+" is required)")
			return false
		}
		cfg.RobotID, cfg.RobotName = robot.ID, robot.Username
	}
	return true
}

func (h *Handler) encryptField(w http.ResponseWriter, v string, max int) (string, bool) {
	if v == "" {
		return "", true
	}
	enc, err := encfield.EncryptForField(h.opts.EncryptionKey, v, max)
	if err != nil {
		badRequest(w, "cannot store the credential: it is too long or not valid UTF-8")
		return "", false
	}
	return enc, true
}
