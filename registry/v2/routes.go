package v2

import (
	_ "crypto/sha256" // register digest algorithms with go-digest
	_ "crypto/sha512"
	"regexp"
	"strconv"
	"strings"

	"github.com/opencontainers/go-digest"
)

// The OCI repository name grammar; Quay adds a namespace as the first
// component and a 255-character limit.
var (
	nameComponent = `[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*`
	nameRE        = regexp.MustCompile(`^` + nameComponent + `(?:/` + nameComponent + `)*$`)
	tagRE         = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
)

type routeKind int

const (
	routeUnknown routeKind = iota
	routeBase
	routeCatalog
	routeTags
	routeManifest
	routeBlob
	routeUploadStart
	routeUpload
	routeReferrers
)

// route is a parsed /v2/ path.
type route struct {
	kind      routeKind
	name      string // full repository name as in the URL
	namespace string
	repo      string
	ref       string // tag, digest or upload uuid
}

// parseRoute splits a /v2/ path. Repository names may themselves contain
// slashes, so the endpoint suffix is located from the right.
func parseRoute(path string) (route, *Error) {
	if path == "/v2" || path == "/v2/" {
		return route{kind: routeBase}, nil
	}
	rest, ok := strings.CutPrefix(path, "/v2/")
	if !ok {
		return route{}, newErr(ErrNameUnknown, "not a /v2/ path")
	}
	if rest == "_catalog" {
		return route{kind: routeCatalog}, nil
	}
	var r route
	switch {
	case strings.HasSuffix(rest, "/tags/list"):
		r = route{kind: routeTags, name: strings.TrimSuffix(rest, "/tags/list")}
	case strings.HasSuffix(rest, "/blobs/uploads/") || strings.HasSuffix(rest, "/blobs/uploads"):
		r = route{kind: routeUploadStart, name: rest[:strings.LastIndex(rest, "/blobs/uploads")]}
	default:
		i, kind := lastSegment(rest)
		if i.start < 0 {
			return route{}, newErr(ErrNameUnknown, "unknown endpoint")
		}
		r.kind = kind
		r.name = rest[:i.start]
		r.ref = rest[i.end:]
		if r.ref == "" || strings.Contains(r.ref, "/") {
			return route{}, newErr(ErrNameUnknown, "unknown endpoint")
		}
	}
	if len(r.name) > 255 || !nameRE.MatchString(r.name) {
		return route{}, newErr(ErrNameInvalid, map[string]string{"name": r.name})
	}
	ns, repo, found := strings.Cut(r.name, "/")
	if !found {
		// As in Quay, a name without a namespace lives in "library".
		ns, repo = "library", ns
	}
	r.namespace, r.repo = ns, repo
	return r, nil
}

type span struct{ start, end int }

var separators = []struct {
	sep  string
	kind routeKind
}{{"/blobs/uploads/", routeUpload}, {"/manifests/", routeManifest}, {"/referrers/", routeReferrers}, {"/blobs/", routeBlob}}

// lastSegment finds the right-most endpoint separator; on a tie (the
// "/blobs/" inside "/blobs/uploads/") the longer, earlier-listed one wins.
func lastSegment(rest string) (span, routeKind) {
	best, kind := span{-1, -1}, routeUnknown
	for _, s := range separators {
		if i := strings.LastIndex(rest, s.sep); i > best.start {
			best, kind = span{i, i + len(s.sep)}, s.kind
		}
	}
	if best.start <= 0 {
		return span{-1, -1}, routeUnknown
	}
	return best, kind
}

// parseDigest accepts only digests of available algorithms with exact hex,
// which also makes them safe to use inside storage paths.
func parseDigest(s string) (digest.Digest, *Error) {
	d, err := digest.Parse(s)
	if err != nil || !d.Algorithm().Available() {
		return "", newErr(ErrDigestInvalid, map[string]string{"digest": s})
	}
	return d, nil
}

func isDigest(ref string) bool { return strings.Contains(ref, ":") }

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
