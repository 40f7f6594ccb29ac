package upload

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"path"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
)

// maxManifestJSON bounds the manifest.json read from a bundle.
const maxManifestJSON = 4 << 20

// inspectBundle reads file once: its sha256 digest and size, and — when it
// is a .tar.gz with a manifest.json at its root (or under one top
// directory) — the deployment and creation time that manifest names. A
// file that is not such an archive is still uploaded, described by its
// name alone.
func inspectBundle(file string) (bundleInfo, error) {
	f, err := os.Open(file)
	if err != nil {
		return bundleInfo{}, err
	}
	defer f.Close()
	dg := digest.SHA256.Digester()
	cr := &countReader{r: f}
	tee := io.TeeReader(cr, dg.Hash())
	var info bundleInfo
	if zr, err := gzip.NewReader(tee); err == nil {
		info.deployment, info.created = readManifest(tar.NewReader(zr))
	}
	// Hash the rest: the archive's tail, or all of a file that was not one.
	if _, err := io.Copy(io.Discard, tee); err != nil {
		return bundleInfo{}, err
	}
	info.digest, info.size = dg.Digest(), cr.n
	return info, nil
}

// readManifest finds manifest.json in tr and returns what it says about
// the deployment. The bundle's manifest schema belongs to the collector;
// this reads the few fields it needs tolerantly (a missing or differently
// shaped field is left empty, never an error).
func readManifest(tr *tar.Reader) (string, time.Time) {
	for {
		h, err := tr.Next()
		if err != nil {
			return "", time.Time{}
		}
		name := strings.TrimPrefix(path.Clean(strings.TrimPrefix(h.Name, "./")), "/")
		if h.Typeflag != tar.TypeReg || (name != "manifest.json" && !(path.Base(name) == "manifest.json" && strings.Count(name, "/") == 1)) {
			continue
		}
		b, err := io.ReadAll(io.LimitReader(tr, maxManifestJSON))
		if err != nil {
			return "", time.Time{}
		}
		var m map[string]any
		if json.Unmarshal(b, &m) != nil {
			return "", time.Time{}
		}
		return manifestDeployment(m), manifestCreated(m)
	}
}

// manifestDeployment looks for the deployment's name: the collector's
// {"target":{"kind":…,"name":…}}, or a "deployment" string or object.
func manifestDeployment(m map[string]any) string {
	for _, obj := range []any{m["target"], m["deployment"]} {
		switch v := obj.(type) {
		case string:
			if v != "" {
				return v
			}
		case map[string]any:
			for _, k := range []string{"deployment", "name"} {
				if s, ok := v[k].(string); ok && s != "" {
					return s
				}
			}
		}
	}
	return ""
}

func manifestCreated(m map[string]any) time.Time {
	for _, k := range []string{"created", "created_at"} {
		if s, ok := m[k].(string); ok {
			if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
				return t
			}
		}
	}
	return time.Time{}
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += int64(n)
	return n, err
}
