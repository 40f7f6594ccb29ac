// Package notify is the seam between what happens in the registry (a push,
// a mirror sync, a quota threshold) and Quay's repository notifications
// (repositorynotification rows, delivered by a worker). Producers only see
// Emitter; the delivery side lives behind it.
package notify

import "context"

// Quay's externalnotificationevent names.
const (
	RepoPush          = "repo_push"
	MirrorSyncStarted = "repo_mirror_sync_started"
	MirrorSyncSuccess = "repo_mirror_sync_success"
	MirrorSyncFailed  = "repo_mirror_sync_failed"
	RepoImageExpiry   = "repo_image_expiry"
	QuotaWarning      = "quota_warning"
	QuotaError        = "quota_error"
)

// Event is something that happened to one repository.
type Event struct {
	Kind         string // one of the constants above
	RepositoryID int64
	Namespace    string
	Repository   string
	// Data is the event's payload in Quay's shape (for example
	// "updated_tags" for repo_push, "message" for a failed sync); the
	// delivery side adds repository, namespace, name, docker_url, homepage.
	Data map[string]any
}

// Emitter accepts events. Emit must not block on delivery: it records the
// event (or drops it when no notification wants it) and returns. An error
// means the event could not be recorded; producers log it and carry on, a
// notification is never a reason to fail a push or a sync.
type Emitter interface {
	Emit(ctx context.Context, ev Event) error
}

// Nop discards events (notifications not wired, or tests that don't care).
type Nop struct{}

// Emit implements Emitter.
func (Nop) Emit(context.Context, Event) error { return nil }
