package v2

import (
	"encoding/json"
	"net/http"
	"sort"
)

// ErrorCode is one entry of the OCI error table: the code value clients see,
// the default message and the HTTP status. Every handler reports errors
// through this table so that the documentation (docs/errors.md) and the wire
// format cannot drift apart.
type ErrorCode struct {
	ID      string // unique key of the entry (several may share a Value)
	Value   string // the OCI/Docker error code, e.g. BLOB_UNKNOWN
	Message string
	Status  int
	Doc     string // when a client sees it
}

var registered = map[string]ErrorCode{}

func register(id, value, message string, status int, doc string) ErrorCode {
	c := ErrorCode{ID: id, Value: value, Message: message, Status: status, Doc: doc}
	if _, dup := registered[id]; dup {
		panic("duplicate error code " + id)
	}
	registered[id] = c
	return c
}

// The table. Values and statuses follow the OCI Distribution Spec v1.1.
var (
	ErrBlobUnknown         = register("BLOB_UNKNOWN", "BLOB_UNKNOWN", "blob unknown to registry", http.StatusNotFound, "The blob is not in this repository.")
	ErrBlobUploadInvalid   = register("BLOB_UPLOAD_INVALID", "BLOB_UPLOAD_INVALID", "blob upload invalid", http.StatusBadRequest, "The upload request was malformed (for example a bad Content-Range or Content-Length).")
	ErrBlobUploadUnknown   = register("BLOB_UPLOAD_UNKNOWN", "BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry", http.StatusNotFound, "The upload session does not exist, was cancelled or has completed.")
	ErrRangeInvalid        = register("RANGE_INVALID", "BLOB_UPLOAD_INVALID", "range not satisfiable", http.StatusRequestedRangeNotSatisfiable, "A chunk was sent out of order; GET the upload to learn the current offset.")
	ErrDigestInvalid       = register("DIGEST_INVALID", "DIGEST_INVALID", "provided digest did not match uploaded content", http.StatusBadRequest, "The digest is malformed, uses an unsupported algorithm, or does not match the content; nothing was stored.")
	ErrManifestBlobUnknown = register("MANIFEST_BLOB_UNKNOWN", "MANIFEST_BLOB_UNKNOWN", "manifest references a manifest or blob unknown to registry", http.StatusBadRequest, "Push every layer, config and child manifest before the manifest that references them.")
	ErrManifestInvalid     = register("MANIFEST_INVALID", "MANIFEST_INVALID", "manifest invalid", http.StatusBadRequest, "The manifest is not valid JSON of a supported type, or its media type disagrees with Content-Type.")
	ErrManifestTooLarge    = register("MANIFEST_TOO_LARGE", "MANIFEST_INVALID", "manifest too large", http.StatusRequestEntityTooLarge, "The manifest exceeds QUAYCTL_MAX_MANIFEST_BYTES.")
	ErrManifestUnknown     = register("MANIFEST_UNKNOWN", "MANIFEST_UNKNOWN", "manifest unknown to registry", http.StatusNotFound, "No manifest with this tag or digest in this repository.")
	ErrPaginationInvalid   = register("PAGINATION_NUMBER_INVALID", "PAGINATION_NUMBER_INVALID", "invalid number of results requested", http.StatusBadRequest, "The n parameter of a list must be a non-negative integer.")
	ErrNameInvalid         = register("NAME_INVALID", "NAME_INVALID", "invalid repository name", http.StatusBadRequest, "Repository names are lowercase letters, digits and separators (. _ -), with a namespace: NAMESPACE/REPO.")
	ErrNameUnknown         = register("NAME_UNKNOWN", "NAME_UNKNOWN", "repository name not known to registry", http.StatusNotFound, "The repository does not exist (a push creates it).")
	ErrSizeInvalid         = register("SIZE_INVALID", "SIZE_INVALID", "provided length did not match content length", http.StatusBadRequest, "The body was shorter or longer than Content-Length.")
	ErrTagInvalid          = register("TAG_INVALID", "TAG_INVALID", "manifest tag did not match URI", http.StatusBadRequest, "Tags match [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}.")
	ErrUnauthorized        = register("UNAUTHORIZED", "UNAUTHORIZED", "authentication required", http.StatusUnauthorized, "Log in (podman login) or request a token with the scope named in WWW-Authenticate.")
	ErrDenied              = register("DENIED", "DENIED", "requested access to the resource is denied", http.StatusForbidden, "You are logged in but lack the permission; ask a repository admin.")
	ErrQuotaExceeded       = register("QUOTA_EXCEEDED", "DENIED", "Quota has been exceeded on namespace", http.StatusForbidden, "The push would take the namespace over its Reject quota limit; delete tags and let garbage collection run, or ask a superuser to raise the quota. See docs/quota.md.")
	ErrUnsupported         = register("UNSUPPORTED", "UNSUPPORTED", "the operation is unsupported", http.StatusMethodNotAllowed, "The method is not supported on this endpoint.")
	ErrUnsupportedType     = register("UNSUPPORTED_MEDIA_TYPE", "MANIFEST_INVALID", "manifest media type not supported", http.StatusUnsupportedMediaType, "Docker schema 1 manifests are refused; push Docker schema 2 or OCI.")
	ErrInternal            = register("INTERNAL", "UNKNOWN", "internal server error", http.StatusInternalServerError, "The registry failed; its log has the request id.")
	ErrUnavailable         = register("UNAVAILABLE", "UNAVAILABLE", "service unavailable", http.StatusServiceUnavailable, "A dependency (database or storage) is unreachable; see /health/instance.")
)

// RegisteredErrors returns the table sorted by ID, for documentation.
func RegisteredErrors() []ErrorCode {
	out := make([]ErrorCode, 0, len(registered))
	for _, c := range registered {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Error is one reported error: a table entry plus request-specific detail.
type Error struct {
	Code   ErrorCode
	Detail any
}

func (e *Error) Error() string { return e.Code.Value + ": " + e.Code.Message }

func newErr(c ErrorCode, detail any) *Error { return &Error{Code: c, Detail: detail} }

type wireError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Detail  any    `json:"detail,omitempty"`
}

// writeError is the one serializer of OCI errors.
func writeError(w http.ResponseWriter, e *Error) {
	body, _ := json.Marshal(map[string][]wireError{"errors": {{Code: e.Code.Value, Message: e.Code.Message, Detail: e.Detail}}})
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", itoa(int64(len(body))))
	w.WriteHeader(e.Code.Status)
	_, _ = w.Write(body)
}
