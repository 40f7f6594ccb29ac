package checks

import (
	"context"
	"fmt"
	"time"

	"github.com/quayctl/quayctl/diag"
	"github.com/quayctl/quayctl/internal/redact"
)

var mirrorConfigs = diag.Check{ID: "mirroring.configs", Area: AreaMirroring,
	Title: "repository mirrors that failed, expired, or whose robot cannot write (guide 6.5)", Doc: doc("mirroring")}

var mirroringChecks = []diag.Check{mirrorConfigs.With(checkMirrors)}

type mirrorFact struct {
	Repository           string     `json:"repository"`
	Enabled              bool       `json:"enabled"`
	ExternalReference    string     `json:"external_reference"`
	SyncStatus           string     `json:"sync_status"`
	SyncStartDate        *time.Time `json:"sync_start_date"`
	SyncExpirationDate   *time.Time `json:"sync_expiration_date"`
	SyncRetriesRemaining int        `json:"sync_retries_remaining"`
	Robot                string     `json:"robot"`
	RobotEnabled         bool       `json:"robot_enabled"`
	RobotRole            string     `json:"robot_role"`
	// LastError is why the last sync failed (set while the status is
	// FAIL; redacted by the fact's producer, and again here since a
	// bundle may come from elsewhere).
	LastError string `json:"last_error"`
}

// mirrorNow is the clock of the expiry test (tests replace it).
var mirrorNow = time.Now

func checkMirrors(ctx context.Context, f diag.Facts) []diag.Finding {
	c := mirrorConfigs
	s, err := readSettings(ctx, f)
	if err != nil {
		return []diag.Finding{c.FactError(diag.FactConfig, err)}
	}
	ms, fs, ok := dbFact[[]mirrorFact](ctx, f, c, diag.FactDBMirrors)
	if !ok {
		return fs
	}
	if len(ms) == 0 {
		if !s.RepoMirror {
			return nil // not used: nothing to say
		}
		return []diag.Finding{c.Finding(diag.Info, "FEATURE_REPO_MIRROR is on, but no repository is mirrored")}
	}
	var out []diag.Finding
	if !s.RepoMirror {
		fd := c.Finding(diag.Warn, fmt.Sprintf("%d mirror configurations exist, but FEATURE_REPO_MIRROR is off: none will sync", len(ms)))
		fd.Remedy = "set FEATURE_REPO_MIRROR: true and run the mirror worker (the mirror component), or remove the configurations"
		out = append(out, fd)
	}
	healthy := 0
	for _, m := range ms {
		if !m.Enabled {
			continue
		}
		var problems []string
		sev := diag.Warn
		if m.SyncStatus == "FAIL" {
			sev = diag.Fail
			problems = append(problems, fmt.Sprintf("last sync FAILED (%d retries left)", m.SyncRetriesRemaining))
		}
		if m.SyncStatus == "SYNCING" && m.SyncExpirationDate != nil && m.SyncExpirationDate.Before(mirrorNow()) {
			problems = append(problems, "a sync has been running past its expiry ("+m.SyncExpirationDate.UTC().Format(time.RFC3339)+"): the worker probably died")
		}
		switch {
		case m.Robot == "":
			sev = diag.Fail
			problems = append(problems, "no robot account is set")
		case !m.RobotEnabled:
			sev = diag.Fail
			problems = append(problems, "robot "+m.Robot+" is disabled")
		case m.RobotRole != "write" && m.RobotRole != "admin":
			sev = diag.Fail
			role := m.RobotRole
			if role == "" {
				role = "no permission"
			}
			problems = append(problems, fmt.Sprintf("robot %s has %s on the repository, it needs write", m.Robot, role))
		}
		if len(problems) == 0 {
			healthy++
			continue
		}
		fd := c.Finding(sev, fmt.Sprintf("mirror of %s: %s", m.Repository, problems[0]))
		fd.Subject = m.Repository
		fd.Evidence = []string{fmt.Sprintf("from %s, status %s, robot %s (role %q)", m.ExternalReference, m.SyncStatus, m.Robot, m.RobotRole)}
		if m.SyncStatus == "FAIL" && m.LastError != "" {
			reason, _ := redact.String(m.LastError)
			fd.Evidence = append(fd.Evidence, "last sync error: "+reason)
		}
		fd.Evidence = append(fd.Evidence, problems[1:]...)
		fd.Remedy = "read the mirror worker's log (quayctl logs mirror); give the robot write permission on the repository; check the external registry's credentials and TLS; then Sync Now in the repository's Mirroring tab (guide 6.5)"
		out = append(out, fd)
	}
	if healthy > 0 {
		out = append(out, c.Finding(diag.OK, fmt.Sprintf("%d mirrored repositories without problems", healthy)))
	}
	return out
}
