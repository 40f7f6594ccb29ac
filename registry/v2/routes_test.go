package v2

import "testing"

func TestParseRoute(t *testing.T) {
	tests := []struct {
		path      string
		kind      routeKind
		ns, repo  string
		ref       string
		wantError string
	}{
		{path: "/v2/", kind: routeBase},
		{path: "/v2", kind: routeBase},
		{path: "/v2/_catalog", kind: routeCatalog},
		{path: "/v2/alice/app/tags/list", kind: routeTags, ns: "alice", repo: "app"},
		{path: "/v2/alice/a/b/manifests/latest", kind: routeManifest, ns: "alice", repo: "a/b", ref: "latest"},
		{path: "/v2/alice/blobs/manifests/v1", kind: routeManifest, ns: "alice", repo: "blobs", ref: "v1"},
		{path: "/v2/alice/app/blobs/sha256:abc", kind: routeBlob, ns: "alice", repo: "app", ref: "sha256:abc"},
		{path: "/v2/alice/app/blobs/uploads/", kind: routeUploadStart, ns: "alice", repo: "app"},
		{path: "/v2/alice/app/blobs/uploads/1234-5678", kind: routeUpload, ns: "alice", repo: "app", ref: "1234-5678"},
		{path: "/v2/alice/uploads/blobs/uploads/u1", kind: routeUpload, ns: "alice", repo: "uploads", ref: "u1"},
		{path: "/v2/alice/app/referrers/sha256:abc", kind: routeReferrers, ns: "alice", repo: "app", ref: "sha256:abc"},
		{path: "/v2/app/manifests/latest", kind: routeManifest, ns: "library", repo: "app", ref: "latest"},
		{path: "/v2/Alice/app/manifests/latest", wantError: "NAME_INVALID"},
		{path: "/v2/../etc/manifests/latest", wantError: "NAME_INVALID"},
		{path: "/v2/alice/../x/manifests/latest", wantError: "NAME_INVALID"},
		{path: "/v2/alice//x/manifests/latest", wantError: "NAME_INVALID"},
		{path: "/v2/alice/app/manifests/", wantError: "NAME_UNKNOWN"},
		{path: "/v2/alice/app/nothing", wantError: "NAME_UNKNOWN"},
		{path: "/v2/manifests/latest", wantError: "NAME_UNKNOWN"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			r, err := parseRoute(tt.path)
			if tt.wantError != "" {
				if err == nil || err.Code.Value != tt.wantError {
					t.Fatalf("got %+v, %v; want error %s", r, err, tt.wantError)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error %v", err)
			}
			if r.kind != tt.kind || r.namespace != tt.ns || r.repo != tt.repo || r.ref != tt.ref {
				t.Fatalf("got %+v", r)
			}
		})
	}
}

func TestParseDigest(t *testing.T) {
	good := []string{
		"sha256:" + repeat("a", 64),
		"sha512:" + repeat("b", 128),
	}
	bad := []string{"", "sha256:", "sha256:" + repeat("a", 63), "sha256:" + repeat("A", 64), "md5:" + repeat("a", 32),
		"sha256:../../" + repeat("a", 58), "sha256:" + repeat("a", 64) + "/x"}
	for _, s := range good {
		if _, err := parseDigest(s); err != nil {
			t.Errorf("parseDigest(%q) = %v", s, err)
		}
	}
	for _, s := range bad {
		if _, err := parseDigest(s); err == nil {
			t.Errorf("parseDigest(%q) accepted", s)
		}
	}
}

func repeat(s string, n int) string {
	out := ""
	for i := 0; i < n; i++ {
		out += s
	}
	return out
}
