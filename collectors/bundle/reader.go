package bundle

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Bundle is an opened support bundle, extracted to a temporary directory
// until Close.
type Bundle struct {
	path     string
	dir      string
	manifest Manifest
}

// Open extracts the bundle at path and checks every file against the
// manifest's size and sha256. The error says what is wrong with the file.
func Open(ctx context.Context, path string) (*Bundle, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot open the bundle: %w", err)
	}
	defer f.Close()
	dir, err := os.MkdirTemp("", "quayctl-bundle-*")
	if err != nil {
		return nil, fmt.Errorf("cannot create a directory to extract %s into: %w", path, err)
	}
	b := &Bundle{path: path, dir: dir}
	if err := b.extract(ctx, f); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

type entryInfo struct {
	size int64
	sum  string
}

func (b *Bundle) extract(ctx context.Context, r io.Reader) error {
	notBundle := func(why string, err error) error {
		if err != nil {
			why += ": " + err.Error()
		}
		return fmt.Errorf("%s is not a quayctl support bundle (%s) — give the .tar.gz that quayctl support-bundle wrote", b.path, why)
	}
	gz, err := gzip.NewReader(bufio.NewReaderSize(r, 64<<10))
	if err != nil {
		return notBundle("not gzip", err)
	}
	tr := tar.NewReader(gz)
	seen := map[string]entryInfo{}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return notBundle("damaged tar", err)
		}
		if hdr.Typeflag == tar.TypeDir {
			continue
		}
		if hdr.Typeflag != tar.TypeReg {
			return notBundle(fmt.Sprintf("entry %q is not a regular file", hdr.Name), nil)
		}
		p, err := localPath(b.dir, hdr.Name)
		if err != nil {
			return notBundle("unsafe entry name", err)
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return err
		}
		out, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o600)
		if err != nil {
			return fmt.Errorf("cannot extract %s: %w", hdr.Name, err)
		}
		h := sha256.New()
		n, err := io.Copy(io.MultiWriter(out, h), tr)
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("cannot extract %s (is the disk full, or the file truncated?): %w", hdr.Name, err)
		}
		seen[hdr.Name] = entryInfo{n, hex.EncodeToString(h.Sum(nil))}
	}
	raw, err := os.ReadFile(filepath.Join(b.dir, ManifestName))
	if err != nil {
		return notBundle("no "+ManifestName, nil)
	}
	if err := json.Unmarshal(raw, &b.manifest); err != nil {
		return notBundle(ManifestName+" is not valid JSON", err)
	}
	if b.manifest.Format < 1 {
		return notBundle(ManifestName+" has no format version", nil)
	}
	if b.manifest.Format > FormatVersion {
		return fmt.Errorf("%s is a bundle of format %d, newer than this quayctl reads (%d) — use quayctl %s or later", b.path, b.manifest.Format, FormatVersion, b.manifest.QuayctlVersion)
	}
	var bad []string
	for _, f := range b.manifest.Files {
		got, ok := seen[f.Path]
		switch {
		case !ok:
			bad = append(bad, f.Path+" is missing")
		case got.size != f.Size || got.sum != f.SHA256:
			bad = append(bad, f.Path+" does not match its sha256")
		}
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		return fmt.Errorf("%s is damaged: %s — collect it again, or copy it again from its source", b.path, strings.Join(bad, "; "))
	}
	return nil
}

// Manifest is the bundle's manifest.json.
func (b *Bundle) Manifest() Manifest { return b.manifest }

// Path is the archive's file name.
func (b *Bundle) Path() string { return b.path }

// Dir is where the bundle is extracted.
func (b *Bundle) Dir() string { return b.dir }

// Facts reads the bundle's facts.
func (b *Bundle) Facts() *Facts { return DirFacts(b.dir) }

// Deployment is the collectors.Deployment the bundle describes.
func (b *Bundle) Deployment() *Deployment {
	return &Deployment{dir: b.dir, manifest: b.manifest, file: filepath.Base(b.path)}
}

// Name describes the bundle in reports: the deployment it was collected
// from, and the file.
func (b *Bundle) Name() string {
	t := b.manifest.Target
	return fmt.Sprintf("%s %s (%s, collected %s)", t.Kind, t.Name, filepath.Base(b.path), b.manifest.Created.Format("2006-01-02 15:04 UTC"))
}

// Close removes the extracted files.
func (b *Bundle) Close() error {
	if b.dir == "" {
		return nil
	}
	err := os.RemoveAll(b.dir)
	b.dir = ""
	return err
}
