package mirror_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/errdef"

	"github.com/quayctl/quayctl/internal/testpg"
	"github.com/quayctl/quayctl/registry/mirror"
)

// TestMirrorArchitectureFilter mirrors a four-entry index (amd64, arm64,
// an unknown/unknown attestation and an entry without a platform) with
// architecture_filter ["amd64"],
// as Quay's worker does: only the amd64 child and its blobs are copied, the
// index is stored unchanged (same digest, all three entries: a sparse
// index), a pull of a filtered-out child answers 404, a single-platform
// image is copied whatever its architecture, and an index without any of
// the architectures fails its tag.
func TestMirrorArchitectureFilter(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two registries")
	}
	for name, uri := range map[string]func() string{
		"sqlite":     func() string { return "sqlite:///" + filepath.Join(t.TempDir(), "quay.db") },
		"postgresql": func() string { return testpg.NewDatabase(t) },
	} {
		t.Run(name, func(t *testing.T) { testArchitectureFilter(t, uri()) })
	}
}

func testArchitectureFilter(t *testing.T, dstURI string) {
	ctx := context.Background()
	e := newMirrorEnv(t, dstURI)
	child := func(arch, layer string) ocispec.Descriptor {
		t.Helper()
		d, err := e.sp.image(arch, layer, "")
		if err != nil {
			t.Fatal(err)
		}
		os := "linux"
		if arch == "unknown" {
			os = "unknown"
		}
		d.Platform = &ocispec.Platform{Architecture: arch, OS: os}
		return d
	}
	index := func(tag string, children ...ocispec.Descriptor) ocispec.Descriptor {
		t.Helper()
		idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: children}
		idx.SchemaVersion = 2
		d, err := e.sp.manifest(idx, ocispec.MediaTypeImageIndex, tag)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	amd, arm, att := child("amd64", "amd64 layer"), child("arm64", "arm64 layer"), child("unknown", "attestation layer")
	// An entry without a platform is dropped too (Quay's filter reads
	// platform.architecture, which it does not have).
	bare, err := e.sp.image("amd64", "unplatformed layer", "")
	if err != nil {
		t.Fatal(err)
	}
	multi := index("multi", amd, arm, att, bare)
	single, err := e.sp.image("arm64", "single arm64 layer", "single")
	if err != nil {
		t.Fatal(err)
	}
	e.create(e.src.Addr+"/"+srcRepo, []string{"multi,single"}, map[string]any{"architecture_filter": []string{"amd64"}})
	if _, v := apiCall(t, e.dst, owner, ownerPass, "GET", e.path, nil); !slices.Equal(toStrings(v["architecture_filter"]), []string{"amd64"}) {
		t.Fatalf("GET mirror architecture_filter = %v", v["architecture_filter"])
	}
	syncer := e.syncer(mirror.Options{})
	if v := e.runOnce(syncer); v["sync_status"] != "SUCCESS" {
		t.Fatalf("sync: %v", v)
	}
	if got := e.snapshot(); got["multi"] != multi.Digest.String() || got["single"] != single.Digest.String() || len(got) != 2 {
		t.Fatalf("mirror tags %v, want multi=%s single=%s", got, multi.Digest, single.Digest)
	}

	// What the mirror's database holds.
	for _, tc := range []struct {
		what   string
		digest string
		want   bool
	}{
		{"amd64 manifest", amd.Digest.String(), true},
		{"arm64 manifest", arm.Digest.String(), false},
		{"attestation manifest", att.Digest.String(), false},
		{"manifest without a platform", bare.Digest.String(), false},
		{"single-platform arm64 manifest", single.Digest.String(), true},
	} {
		_, err := e.st.ManifestByDigest(ctx, e.repo.ID, tc.digest)
		if got := err == nil; got != tc.want {
			t.Errorf("%s in the mirror: %v, want %v (%v)", tc.what, got, tc.want, err)
		}
	}
	for _, tc := range []struct {
		layer string
		want  bool
	}{
		{"amd64 layer", true}, {"arm64 layer", false}, {"attestation layer", false}, {"unplatformed layer", false}, {"single arm64 layer", true},
	} {
		_, err := e.st.RepositoryBlob(ctx, e.repo.ID, blobDigest(tc.layer))
		if got := err == nil; got != tc.want {
			t.Errorf("blob %q linked to the mirror: %v, want %v", tc.layer, got, tc.want)
		}
	}

	// What a client pulling from the mirror gets.
	pull := newPusher(t, e.dst, owner+"/mirror", owner, ownerPass).repo
	desc, rc, err := pull.FetchReference(ctx, "multi")
	if err != nil {
		t.Fatalf("pull multi: %v", err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	_, src, _ := e.sp.repo.FetchReference(ctx, "multi")
	want, _ := io.ReadAll(src)
	src.Close()
	if desc.Digest != multi.Digest || !bytes.Equal(got, want) || desc.MediaType != ocispec.MediaTypeImageIndex {
		t.Errorf("pull multi: %s %s, %d bytes; want the source's index %s unchanged", desc.MediaType, desc.Digest, len(got), multi.Digest)
	}
	for _, tc := range []struct {
		what     string
		d        ocispec.Descriptor
		notFound bool
	}{
		{"amd64", amd, false}, {"arm64", arm, true}, {"attestation", att, true},
	} {
		rc, err := pull.Fetch(ctx, tc.d)
		if err == nil {
			rc.Close()
		}
		if tc.notFound != errors.Is(err, errdef.ErrNotFound) || (!tc.notFound && err != nil) {
			t.Errorf("pull %s child %s: %v, want not found %v", tc.what, tc.d.Digest, err, tc.notFound)
		}
	}
	if ok, err := pull.Blobs().Exists(ctx, ocispec.Descriptor{Digest: digest.FromString("arm64 layer"), Size: int64(len("arm64 layer"))}); ok || err != nil {
		t.Errorf("the arm64 layer is pullable from the mirror: %v %v", ok, err)
	}

	// An index offering none of the filter's architectures fails its tag.
	index("armonly", child("arm64", "arm-only layer"))
	if code, m := apiCall(t, e.dst, owner, ownerPass, "PUT", e.path+"/rules", map[string]any{"root_rule": map[string]any{"rule_kind": "tag_glob_csv", "rule_value": []string{"multi,armonly"}}}); code != 201 {
		t.Fatalf("PUT rules: %d %v", code, m)
	}
	e.syncNow()
	v := e.runOnce(syncer)
	reason := toString(v["last_error"])
	if v["sync_status"] != "FAIL" || !strings.Contains(reason, "armonly: no matching architectures") || !strings.Contains(reason, "[arm64]") {
		t.Errorf("sync of an arm64-only index with filter amd64: %v", v)
	}
	if got := tagsOf(t, e.st, e.repo.ID); !slices.Equal(got, []string{"multi"}) {
		t.Errorf("tags after the failed sync = %v, want [multi]", got)
	}
}

func toStrings(v any) []string {
	l, _ := v.([]any)
	var out []string
	for _, x := range l {
		out = append(out, toString(x))
	}
	return out
}

func toString(v any) string {
	s, _ := v.(string)
	return s
}
