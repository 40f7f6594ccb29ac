package diagnostics

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Quay's RepoMirrorStatus (data/database.py), by sync_status value.
var mirrorStatusNames = map[int]string{
	-2: "CANCEL",
	-1: "FAIL",
	0:  "NEVER_RUN",
	1:  "SUCCESS",
	2:  "SYNCING",
	3:  "SYNC_NOW",
}

// MirrorStatusName is Quay's name of a sync_status value
// ("UNKNOWN(7)" for one Quay does not define).
func MirrorStatusName(code int) string {
	if n, ok := mirrorStatusNames[code]; ok {
		return n
	}
	return fmt.Sprintf("UNKNOWN(%d)", code)
}

// Quay's RepositoryState, by repository.state value.
var repositoryStateNames = map[int]string{
	0: "NORMAL",
	1: "READ_ONLY",
	2: "MIRROR",
	3: "MARKED_FOR_DELETION",
	4: "ORG_MIRROR",
}

// RepositoryStateName is Quay's name of a repository.state value.
func RepositoryStateName(code int) string {
	if n, ok := repositoryStateNames[code]; ok {
		return n
	}
	return fmt.Sprintf("UNKNOWN(%d)", code)
}

// Mirror is one repository mirror configuration (fact
// database/mirrors.json holds []Mirror). The source registry's username,
// password and proxy settings are reduced to HasCredentials and
// ProxyConfigured.
type Mirror struct {
	// Repository is "namespace/name".
	Repository string `json:"repository"`
	// RepositoryState is Quay's name of the repository's state: a mirrored
	// repository must be "MIRROR" for the mirror worker to write to it.
	RepositoryState string `json:"repository_state"`
	Enabled         bool   `json:"enabled"`
	// ExternalReference is the source, host/namespace/repository.
	ExternalReference string `json:"external_reference"`
	// SyncStatus is Quay's name of sync_status: CANCEL, FAIL, NEVER_RUN,
	// SUCCESS, SYNCING or SYNC_NOW; SyncStatusCode the stored number.
	SyncStatus     string `json:"sync_status"`
	SyncStatusCode int    `json:"sync_status_code"`
	// SyncIntervalSeconds is how often it syncs; SyncStartDate when the
	// next (or running) sync starts; SyncExpirationDate when a running
	// sync's claim expires.
	SyncIntervalSeconds  int        `json:"sync_interval_seconds"`
	SyncStartDate        *time.Time `json:"sync_start_date,omitempty"`
	SyncExpirationDate   *time.Time `json:"sync_expiration_date,omitempty"`
	SyncRetriesRemaining int        `json:"sync_retries_remaining"`
	// SkopeoTimeoutSeconds bounds each skopeo call.
	SkopeoTimeoutSeconds int64 `json:"skopeo_timeout_seconds"`
	// TagPatterns are the root rule's tag globs.
	TagPatterns []string `json:"tag_patterns"`
	// HasCredentials says whether a source username or password is stored.
	HasCredentials bool `json:"has_credentials"`
	// VerifyTLS is external_registry_config's verify_tls (absent when not
	// set); ProxyConfigured whether it sets a proxy.
	VerifyTLS       *bool `json:"verify_tls,omitempty"`
	ProxyConfigured bool  `json:"proxy_configured"`
	// Robot is the robot account the mirror pushes as ("" when the row is
	// missing), RobotEnabled whether it is enabled, and RobotRole its
	// strongest role on the repository — "admin", "write", "read" or ""
	// (none) — directly, through a team's permission, or as a member of an
	// admin team of the organisation. It needs write.
	Robot        string `json:"robot"`
	RobotEnabled bool   `json:"robot_enabled"`
	RobotRole    string `json:"robot_role"`
	// LastError is why the last sync failed, from the newest
	// repo_mirror_sync_failed audit entry (its "error", else Quay's
	// "message"); set only while the status is FAIL.
	LastError string `json:"last_error,omitempty"`
}

// Mirrors lists the repository mirror configurations by repository.
func Mirrors(ctx context.Context, q Querier) ([]Mirror, error) {
	rows, err := q.Query(ctx, `SELECT COALESCE(ns.username, ''), r.name, r.state, m.is_enabled, m.external_reference,
		m.sync_status, m.sync_interval, m.sync_start_date, m.sync_expiration_date, m.sync_retries_remaining, m.skopeo_timeout,
		COALESCE(rule.rule_value, ''),
		COALESCE(m.external_registry_username, '') <> '' OR COALESCE(m.external_registry_password, '') <> '',
		m.external_registry_config,
		COALESCE(rb.username, ''), COALESCE(rb.enabled, false),
		CASE WHEN EXISTS (SELECT 1 FROM teammember tm JOIN team t ON t.id = tm.team_id JOIN teamrole tr ON tr.id = t.role_id
				WHERE tm.user_id = m.internal_robot_id AND t.organization_id = r.namespace_user_id AND tr.name = 'admin') THEN 'admin'
			ELSE COALESCE((SELECT ro.name FROM repositorypermission p JOIN role ro ON ro.id = p.role_id
				WHERE p.repository_id = r.id AND (p.user_id = m.internal_robot_id
					OR p.team_id IN (SELECT tm.team_id FROM teammember tm WHERE tm.user_id = m.internal_robot_id))
				ORDER BY CASE ro.name WHEN 'admin' THEN 0 WHEN 'write' THEN 1 WHEN 'read' THEN 2 ELSE 3 END
				LIMIT 1), '') END,
		CASE WHEN m.sync_status = -1 THEN (SELECT l.metadata_json FROM logentry3 l JOIN logentrykind k ON k.id = l.kind_id
			WHERE l.repository_id = r.id AND k.name = 'repo_mirror_sync_failed' ORDER BY l.datetime DESC, l.id DESC LIMIT 1) END
		FROM repomirrorconfig m
		JOIN repository r ON r.id = m.repository_id
		LEFT JOIN "user" ns ON ns.id = r.namespace_user_id
		LEFT JOIN "user" rb ON rb.id = m.internal_robot_id
		LEFT JOIN repomirrorrule rule ON rule.id = m.root_rule_id
		ORDER BY 1, 2`)
	if err != nil {
		return nil, fmt.Errorf("read repomirrorconfig: %w", err)
	}
	defer rows.Close()
	out := []Mirror{}
	for rows.Next() {
		var m Mirror
		var ns, name, rule string
		var config, failed *string
		var state int
		if err := rows.Scan(&ns, &name, &state, &m.Enabled, &m.ExternalReference, &m.SyncStatusCode, &m.SyncIntervalSeconds,
			&m.SyncStartDate, &m.SyncExpirationDate, &m.SyncRetriesRemaining, &m.SkopeoTimeoutSeconds, &rule,
			&m.HasCredentials, &config, &m.Robot, &m.RobotEnabled, &m.RobotRole, &failed); err != nil {
			return nil, fmt.Errorf("read repomirrorconfig: %w", err)
		}
		m.Repository = ns + "/" + name
		m.RepositoryState = RepositoryStateName(state)
		m.ExternalReference = redactText(m.ExternalReference)
		m.SyncStatus = MirrorStatusName(m.SyncStatusCode)
		m.SyncStartDate, m.SyncExpirationDate = utc(m.SyncStartDate), utc(m.SyncExpirationDate)
		m.TagPatterns = tagPatterns(rule)
		m.VerifyTLS, m.ProxyConfigured = mirrorConfig(orEmpty(config))
		m.LastError = failureReason(orEmpty(failed))
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read repomirrorconfig: %w", err)
	}
	return out, nil
}

// failureReason reads a repo_mirror_sync_failed entry's metadata: quayctl
// writes "error", Quay only "message".
func failureReason(metadata string) string {
	var md struct {
		Error   string `json:"error"`
		Message string `json:"message"`
	}
	if metadata == "" || json.Unmarshal([]byte(metadata), &md) != nil {
		return ""
	}
	if md.Error != "" {
		return redactText(md.Error)
	}
	return redactText(md.Message)
}

// tagPatterns reads a rule_value: a JSON list of globs (Quay's
// TAG_GLOB_CSV), else the text as one pattern.
func tagPatterns(v string) []string {
	var list []string
	if err := json.Unmarshal([]byte(v), &list); err == nil && list != nil {
		return list
	}
	if v = strings.TrimSpace(v); v == "" {
		return []string{}
	}
	return []string{redactText(v)}
}

// mirrorConfig reads the harmless parts of external_registry_config.
func mirrorConfig(v string) (verifyTLS *bool, proxy bool) {
	var c struct {
		VerifyTLS *bool           `json:"verify_tls"`
		Proxy     json.RawMessage `json:"proxy"`
	}
	if json.Unmarshal([]byte(v), &c) != nil {
		return nil, false
	}
	p := strings.TrimSpace(string(c.Proxy))
	return c.VerifyTLS, p != "" && p != "null" && p != "{}" && !allEmptyValues(c.Proxy)
}

// allEmptyValues is true for a JSON object whose values are all empty
// strings or null (Quay's UI stores {"http_proxy": "", …}).
func allEmptyValues(raw json.RawMessage) bool {
	var m map[string]any
	if json.Unmarshal(raw, &m) != nil {
		return false
	}
	for _, v := range m {
		if s, ok := v.(string); v != nil && (!ok || s != "") {
			return false
		}
	}
	return true
}
