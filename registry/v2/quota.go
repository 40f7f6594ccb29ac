package v2

import (
	"errors"

	"github.com/opencontainers/go-digest"

	"github.com/quayctl/quayctl/registry/notify"
	"github.com/quayctl/quayctl/registry/store"
)

// QuotaOptions turn on quota checks on push (FEATURE_QUOTA_MANAGEMENT).
// The store keeps the sizes and refuses, inside the manifest's own
// transaction, a manifest that would exceed a Reject limit; here blob
// uploads are checked before the blob becomes visible, and warnings are
// reported.
type QuotaOptions struct {
	Enabled bool
	// Verify (FEATURE_VERIFY_QUOTA) refuses uploads over a Reject limit.
	Verify bool
}

// quotaDenied is the DENIED answer, with what the client needs to act.
func quotaDenied(namespace string, size, limit int64) *Error {
	return newErr(ErrQuotaExceeded, map[string]any{"namespace": namespace, "size_bytes": size, "limit_bytes": limit})
}

// emitQuota sends a quota event (quota_warning, quota_error) through the
// handler's Notifier; a notification never fails a push.
func (h *Handler) emitQuota(req *request, repo *store.Repository, kind string, v *store.QuotaVerdict) {
	if h.opts.Notifier == nil {
		return
	}
	ctx := req.r.Context()
	ev := notify.Event{Kind: kind, RepositoryID: repo.ID, Namespace: repo.Namespace, Repository: repo.Name,
		Data: map[string]any{"namespace_size_bytes": v.SizeBytes, "limit_bytes": v.LimitBytes, "threshold_bytes": v.ThresholdB}}
	if err := h.opts.Notifier.Emit(ctx, ev); err != nil {
		h.log.WarnContext(ctx, "cannot record quota notification", "kind", kind, "namespace", repo.Namespace, "error", err)
	}
}

// refuseQuota audits and notifies a push refused for quota, and answers it.
func (h *Handler) refuseQuota(req *request, repo *store.Repository, v *store.QuotaVerdict, what string) *Error {
	h.auditRepo(req, "push_repo_failed", repo, map[string]any{"message": ErrQuotaExceeded.Message, "quota": what,
		"namespace_size_bytes": v.SizeBytes, "limit_bytes": v.ThresholdB})
	h.emitQuota(req, repo, notify.QuotaError, v)
	return quotaDenied(repo.Namespace, v.SizeBytes, v.ThresholdB)
}

// checkBlobQuota refuses an upload that would take the namespace over its
// Reject limit, before the blob is moved to its content address. A blob
// the namespace already holds adds nothing.
func (h *Handler) checkBlobQuota(req *request, repo *store.Repository, d digest.Digest, size int64) *Error {
	if !h.opts.Quota.Enabled || !h.opts.Quota.Verify {
		return nil
	}
	ctx := req.r.Context()
	has, err := h.store.NamespaceHasBlob(ctx, repo.NamespaceID, d.String())
	if err != nil {
		return internal(err)
	}
	if has {
		return nil
	}
	v, err := h.store.CheckQuota(ctx, repo.NamespaceID, size)
	if err != nil {
		return internal(err)
	}
	if v.Severity == store.QuotaReject {
		return h.refuseQuota(req, repo, v, "blob "+d.String())
	}
	return nil
}

// manifestQuotaErr answers a manifest the store refused for quota, or
// passes other errors on.
func (h *Handler) manifestQuotaErr(req *request, repo *store.Repository, err error) *Error {
	var qe store.QuotaExceededError
	if errors.As(err, &qe) {
		v := &store.QuotaVerdict{SizeBytes: qe.SizeBytes, LimitBytes: qe.LimitBytes, ThresholdB: qe.LimitBytes, Severity: store.QuotaReject}
		return h.refuseQuota(req, repo, v, "manifest")
	}
	return manifestStoreErr(err)
}

// warnQuota runs after a stored manifest: over a Warning limit it adds the
// numbers to the push's audit metadata ("quota_warning": true) and emits
// quota_warning.
func (h *Handler) warnQuota(req *request, repo *store.Repository, meta map[string]any) {
	if !h.opts.Quota.Enabled {
		return
	}
	ctx := req.r.Context()
	v, err := h.store.CheckQuota(ctx, repo.NamespaceID, 0)
	if err != nil {
		h.log.WarnContext(ctx, "cannot check quota after push", "namespace", repo.Namespace, "error", err)
		return
	}
	if v.Severity == "" {
		return
	}
	// Reject is reached here only when FEATURE_VERIFY_QUOTA is off.
	kind := map[bool]string{true: notify.QuotaError, false: notify.QuotaWarning}[v.Severity == store.QuotaReject]
	meta[kind] = true
	meta["namespace_size_bytes"], meta["quota_threshold_bytes"], meta["quota_limit_bytes"] = v.SizeBytes, v.ThresholdB, v.LimitBytes
	h.emitQuota(req, repo, kind, v)
}
