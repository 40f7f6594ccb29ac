// Package v2 implements the OCI Distribution API v1.1 (/v2/…) over Quay's
// data model: tags and manifests live in the database (registry/store),
// blob bytes in a storage driver (registry/storage).
package v2

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/quayctl/quayctl/registry/notify"
	"github.com/quayctl/quayctl/registry/storage"
	"github.com/quayctl/quayctl/registry/store"
)

// Action names as in Docker token scopes.
const (
	ActionPull = "pull"
	ActionPush = "push"
)

// Caller is who made a request.
type Caller struct {
	UserID    int64 // 0 for anonymous
	Username  string
	Superuser bool
	State     any // opaque to v2: what the Access implementation needs later
}

// Anonymous reports whether no credentials were presented.
func (c Caller) Anonymous() bool { return c.UserID == 0 }

// Grant is what a caller may do on one repository.
type Grant struct {
	Repo      *store.Repository // nil when the repository does not exist
	Pull      bool
	Push      bool
	CanCreate bool // push would create the repository
	// TokenLimited is true when the request carried a bearer token whose
	// scopes, not the caller's permissions, bound what it may do: a client
	// lacking a scope must be challenged (401) to fetch a wider token.
	TokenLimited bool
}

// Access is the seam to authentication and permissions (registry/auth).
type Access interface {
	// Authenticate identifies the caller; an error means the credentials
	// were presented but are invalid (answered with 401).
	Authenticate(r *http.Request) (Caller, error)
	// Authorize says what this request may do on namespace/repo: the
	// caller's permissions, narrowed to its bearer token's scopes if any.
	Authorize(ctx context.Context, r *http.Request, c Caller, namespace, repo string) (Grant, error)
	// Permissions are the caller's own permissions on namespace/repo,
	// whatever token the request carries (used for mount sources).
	Permissions(ctx context.Context, c Caller, namespace, repo string) (Grant, error)
	// Challenge is the WWW-Authenticate value for a 401, naming the scope
	// (e.g. "repository:ns/repo:pull,push") the client should ask for.
	Challenge(r *http.Request, scopes ...string) string
}

// Options are the registry settings the handlers need.
type Options struct {
	Location         string // storage location name where pushes land
	MaxManifestBytes int64
	UploadedBlobTTL  time.Duration // how long a pushed blob stays linked without a manifest
	TempTagTTL       time.Duration // PUSH_TEMP_TAG_EXPIRATION_SEC
	PublicOnPush     bool          // !CREATE_PRIVATE_REPO_ON_PUSH
	SparseIndex      bool          // FEATURE_SPARSE_INDEX: index children may be missing
	SparseManifests  bool          // QUAYCTL_SPARSE_MANIFESTS: image layers may be missing
	// SuperusersFullAccess (FEATURE_SUPERUSERS_FULL_ACCESS) lets superusers
	// see every repository in the catalog.
	SuperusersFullAccess bool
	// ProxyStorage (FEATURE_PROXY_STORAGE) streams blobs through the
	// registry; otherwise a driver that can sign URLs answers blob GETs with
	// a redirect to the storage, as Quay does.
	ProxyStorage bool
	// SignedURLTTL is how long a blob redirect stays valid (default 1 minute,
	// Quay's expires_in): long enough to start the download, short enough
	// that a leaked URL is soon useless.
	SignedURLTTL time.Duration
	// Quota is quota management (FEATURE_QUOTA_MANAGEMENT, quota.go).
	Quota  QuotaOptions
	Logger *slog.Logger
	// Locations are every configured storage location by name
	// (DISTRIBUTED_STORAGE_CONFIG) and Preference this instance's read
	// order (DISTRIBUTED_STORAGE_PREFERENCE): a pull is served by the first
	// location in that order that holds the blob, falling back to the
	// others when it fails (geo-replication). Empty: blobs is the only one.
	Locations  map[string]storage.Driver
	Preference []string
	// Notifier receives repo_push events for repository notifications
	// (registry/notify); nil: none.
	Notifier notify.Emitter
}

// Auditor records audit log entries; the server makes it asynchronous so
// pulls never wait on a database write.
type Auditor interface {
	Audit(ctx context.Context, e store.LogEntry)
}

// Handler serves /v2/.
type Handler struct {
	store   store.Store
	blobs   storage.Driver
	access  Access
	audit   Auditor
	opts    Options
	log     *slog.Logger
	uploads keyedMutex
	failing failingLocations
}

// New builds the /v2/ handler.
func New(st store.Store, blobs storage.Driver, access Access, audit Auditor, opts Options) *Handler {
	if opts.MaxManifestBytes <= 0 {
		opts.MaxManifestBytes = 4 << 20
	}
	if opts.UploadedBlobTTL <= 0 {
		opts.UploadedBlobTTL = 24 * time.Hour
	}
	if opts.TempTagTTL <= 0 {
		opts.TempTagTTL = time.Hour
	}
	if opts.Location == "" {
		opts.Location = "default"
	}
	if opts.SignedURLTTL <= 0 {
		opts.SignedURLTTL = time.Minute
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Handler{store: st, blobs: blobs, access: access, audit: audit, opts: opts, log: log}
}

// request carries what every endpoint needs.
type request struct {
	w      http.ResponseWriter
	r      *http.Request
	route  route
	caller Caller
	grant  Grant
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	rt, perr := parseRoute(r.URL.Path)
	if perr != nil {
		writeError(w, perr)
		return
	}
	caller, err := h.access.Authenticate(r)
	if err != nil {
		h.unauthorized(w, r, rt, err.Error())
		return
	}
	req := &request{w: w, r: r, route: rt, caller: caller}
	switch rt.kind {
	case routeBase:
		if caller.Anonymous() {
			h.unauthorized(w, r, rt, "")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte("{}"))
		return
	case routeCatalog:
		h.catalog(req)
		return
	}
	handlers := map[routeKind]map[string]func(*request) *Error{
		routeTags:        {http.MethodGet: h.listTags},
		routeManifest:    {http.MethodGet: h.getManifest, http.MethodHead: h.getManifest, http.MethodPut: h.putManifest, http.MethodDelete: h.deleteManifest},
		routeBlob:        {http.MethodGet: h.getBlob, http.MethodHead: h.getBlob, http.MethodDelete: h.deleteBlob},
		routeUploadStart: {http.MethodPost: h.startUpload},
		routeUpload:      {http.MethodGet: h.uploadStatus, http.MethodPatch: h.patchUpload, http.MethodPut: h.putUpload, http.MethodDelete: h.cancelUpload},
		routeReferrers:   {http.MethodGet: h.referrers},
	}
	fn := handlers[rt.kind][r.Method]
	if fn == nil {
		writeError(w, newErr(ErrUnsupported, map[string]string{"method": r.Method}))
		return
	}
	if e := fn(req); e != nil && e != errHandled {
		if e.Code.Status >= 500 {
			h.log.ErrorContext(r.Context(), "registry request failed", "method", r.Method, "path", r.URL.Path, "error", e.Detail)
			e = newErr(e.Code, nil) // never leak internals to clients
		}
		writeError(w, e)
	}
}

// unauthorized answers 401 with a challenge for the route's scope.
func (h *Handler) unauthorized(w http.ResponseWriter, r *http.Request, rt route, detail string) {
	var scopes []string
	if rt.name != "" {
		actions := "pull"
		if (r.Method != http.MethodGet && r.Method != http.MethodHead) || rt.kind == routeUpload || rt.kind == routeUploadStart {
			actions = "pull,push" // upload sessions, even their status, need push
		}
		scopes = append(scopes, "repository:"+rt.name+":"+actions)
	} else if rt.kind == routeCatalog {
		scopes = append(scopes, "registry:catalog:*")
	}
	w.Header().Set("WWW-Authenticate", h.access.Challenge(r, scopes...))
	var d any
	if detail != "" {
		d = detail
	}
	writeError(w, newErr(ErrUnauthorized, d))
}

// authorize loads the grant for the route's repository and checks that the
// caller may perform action. It answers the request itself on refusal.
func (h *Handler) authorize(req *request, action string) *Error {
	g, err := h.access.Authorize(req.r.Context(), req.r, req.caller, req.route.namespace, req.route.repo)
	if err != nil {
		return internal(err)
	}
	req.grant = g
	ok := (action == ActionPull && g.Pull) || (action == ActionPush && g.Push)
	if ok {
		return nil
	}
	if req.caller.Anonymous() || g.TokenLimited {
		h.unauthorized(req.w, req.r, req.route, "")
		return errHandled
	}
	return newErr(ErrDenied, nil)
}

// errHandled signals that the response was already written.
var errHandled = &Error{Code: ErrorCode{ID: "handled"}}

// repository returns the existing repository or NAME_UNKNOWN.
func (req *request) repository() (*store.Repository, *Error) {
	if req.grant.Repo == nil {
		return nil, newErr(ErrNameUnknown, map[string]string{"name": req.route.name})
	}
	return req.grant.Repo, nil
}

// repositoryForPush returns the repository, creating it on first push as
// Quay does (private unless CREATE_PRIVATE_REPO_ON_PUSH is false).
func (h *Handler) repositoryForPush(req *request) (*store.Repository, *Error) {
	if req.grant.Repo != nil {
		return req.grant.Repo, nil
	}
	if !req.grant.CanCreate {
		return nil, newErr(ErrNameUnknown, map[string]string{"name": req.route.name})
	}
	ctx := req.r.Context()
	ns, err := h.store.UserByName(ctx, req.route.namespace)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, newErr(ErrNameUnknown, map[string]string{"namespace": req.route.namespace})
		}
		return nil, internal(err)
	}
	repo, err := h.store.CreateRepository(ctx, ns.ID, req.route.repo, h.opts.PublicOnPush, req.caller.UserID)
	if errors.Is(err, store.ErrExists) {
		repo, err = h.store.Repository(ctx, req.route.namespace, req.route.repo)
	} else if err == nil {
		h.auditRepo(req, "create_repo", repo, nil)
	}
	if err != nil {
		return nil, internal(err)
	}
	req.grant.Repo = repo
	return repo, nil
}

func internal(err error) *Error {
	var ue *Error
	if errors.As(err, &ue) {
		return ue
	}
	if errors.Is(err, context.Canceled) {
		return newErr(ErrUnavailable, err.Error())
	}
	return newErr(ErrInternal, err.Error())
}

// auditRepo writes a logentry3 row with Quay's metadata shape.
func (h *Handler) auditRepo(req *request, kind string, repo *store.Repository, extra map[string]any) {
	if h.audit == nil || repo == nil {
		return
	}
	meta := map[string]any{"repo": repo.Name, "namespace": repo.Namespace, "user-agent": req.r.UserAgent()}
	for k, v := range extra {
		meta[k] = v
	}
	if req.caller.Username != "" {
		meta["username"] = req.caller.Username
	}
	e := store.LogEntry{Kind: kind, AccountID: repo.NamespaceID, RepositoryID: &repo.ID, IP: clientIP(req.r), Metadata: meta}
	if !req.caller.Anonymous() {
		id := req.caller.UserID
		e.PerformerID = &id
	}
	h.audit.Audit(req.r.Context(), e)
}

func clientIP(r *http.Request) string {
	host := r.RemoteAddr
	for i := len(host) - 1; i >= 0; i-- {
		if host[i] == ':' {
			return host[:i]
		}
	}
	return host
}

// keyedMutex serialises work on one upload session within this process.
type keyedMutex struct {
	mu    sync.Mutex
	locks map[string]*keyedEntry
}

type keyedEntry struct {
	mu   sync.Mutex
	refs int
}

func (k *keyedMutex) Lock(key string) func() {
	k.mu.Lock()
	if k.locks == nil {
		k.locks = map[string]*keyedEntry{}
	}
	e := k.locks[key]
	if e == nil {
		e = &keyedEntry{}
		k.locks[key] = e
	}
	e.refs++
	k.mu.Unlock()
	e.mu.Lock()
	return func() {
		e.mu.Unlock()
		k.mu.Lock()
		e.refs--
		if e.refs == 0 {
			delete(k.locks, key)
		}
		k.mu.Unlock()
	}
}
