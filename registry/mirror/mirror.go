// Package mirror keeps repositories in state MIRROR in sync with an external
// registry, as Quay's repomirrorworker does: a worker picks due
// configurations from the database, claims each with Quay's optimistic lock
// (a conditional UPDATE on sync_transaction_id, so several workers never
// sync one repository at once), lists the source's tags, applies the
// tag_glob_csv rule, copies manifests (indexes whole) and the blobs it lacks
// streaming into storage, and removes tags that no longer match.
//
// The external side is oras-go's registry client, with the configured
// credentials (stored encrypted with DATABASE_SECRET_KEY), TLS and proxy.
package mirror

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/net/http/httpproxy"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"

	"github.com/quayctl/quayctl/internal/redact"
	"github.com/quayctl/quayctl/registry/encfield"
	"github.com/quayctl/quayctl/registry/notify"
	"github.com/quayctl/quayctl/registry/storage"
	"github.com/quayctl/quayctl/registry/store"
)

// Options configure a Syncer.
type Options struct {
	// Location is the storage location name blobs are written to.
	Location string
	// EncryptionKey is encfield.DeriveKey(DATABASE_SECRET_KEY), to read the
	// stored source credentials.
	EncryptionKey []byte
	// Rollback (REPO_MIRROR_ROLLBACK): a sync in which any tag fails changes
	// no tag; otherwise what succeeded stays (best effort).
	Rollback bool
	// MaxManifestBytes bounds a fetched manifest (default 4 MiB).
	MaxManifestBytes int64
	// Transport is the base HTTP transport (tests); nil: a clone of
	// http.DefaultTransport.
	Transport *http.Transport
	Logger    *slog.Logger
	// CancelPoll is how often a running sync re-reads its row to notice a
	// sync-cancel (or a lost claim) and stop mid-copy (default 2s).
	CancelPoll time.Duration
	// Notifier receives repo_mirror_sync_started, _success and _failed
	// (Quay's notification events, payload {"message": ...}); nil: none.
	// A notification that cannot be recorded never fails a sync.
	Notifier notify.Emitter
}

// Syncer runs mirror syncs against one store and storage location.
type Syncer struct {
	st    store.Store
	blobs storage.Driver
	opts  Options
	log   *slog.Logger
}

// New returns a Syncer.
func New(st store.Store, blobs storage.Driver, opts Options) *Syncer {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.MaxManifestBytes <= 0 {
		opts.MaxManifestBytes = 4 << 20
	}
	if opts.Notifier == nil {
		opts.Notifier = notify.Nop{}
	}
	if opts.CancelPoll <= 0 {
		opts.CancelPoll = 2 * time.Second
	}
	return &Syncer{st: st, blobs: blobs, opts: opts, log: opts.Logger}
}

// Worker runs RunOnce every interval until ctx ends.
func (s *Syncer) Worker(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = 30 * time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := s.RunOnce(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("repository mirror pass failed", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// RunOnce syncs every due repository, one after the other, and returns how
// many it claimed. Repositories claimed by another worker are skipped.
func (s *Syncer) RunOnce(ctx context.Context) (int, error) {
	due, err := s.st.DueMirrors(ctx, 100)
	if err != nil {
		return 0, err
	}
	n := 0
	for i := range due {
		if ctx.Err() != nil {
			return n, ctx.Err()
		}
		ok, err := s.Sync(ctx, &due[i])
		if err != nil {
			s.log.Warn("repository mirror sync failed", "repository", due[i].FullName(), "error", err)
		}
		if ok {
			n++
		}
	}
	return n, nil
}

// Result is what one sync did.
type Result struct {
	Synced  []string          // tags created or moved
	Deleted []string          // tags removed
	Failed  map[string]string // tag -> reason
}

var errCancelled = errors.New("the sync was cancelled")

// Audit kinds of one tag's copy (Quay's logentrykind names; no
// notification event exists for them).
const (
	tagSuccess = "repo_mirror_sync_tag_success"
	tagFailed  = "repo_mirror_sync_tag_failed"
)

// Sync claims c and syncs it. claimed is false when another worker holds
// the claim. The error is the reason the sync failed (also recorded).
func (s *Syncer) Sync(ctx context.Context, c *store.MirrorConfig) (claimed bool, err error) {
	if ok, err := s.st.ClaimMirror(ctx, c); err != nil || !ok {
		return false, err
	}
	tagsText := strings.Join(c.TagPatterns, ",")
	// Quay's message: "'<external_reference>' with tag pattern '<globs>'",
	// followed by ": <reason>" when the sync failed.
	message := fmt.Sprintf("'%s' with tag pattern '%s'", c.ExternalReference, tagsText)
	s.audit(ctx, c, notify.MirrorSyncStarted, map[string]any{"verb": "start", "message": message, "tags": tagsText})
	s.notify(ctx, c, notify.MirrorSyncStarted, message)
	res, syncErr := s.watched(ctx, c)
	if errors.Is(syncErr, errCancelled) {
		s.ended(ctx, c, message, tagsText)
		return true, syncErr
	}
	status := store.MirrorSuccess
	if syncErr != nil {
		status = store.MirrorFail
	}
	// The release must happen even when ctx ended, or the row stays
	// SYNCING until its claim expires.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if ok, err := s.st.ReleaseMirror(rctx, c, status); err != nil {
		return true, errors.Join(syncErr, err)
	} else if !ok {
		return true, errors.Join(syncErr, errCancelled)
	}
	md := map[string]any{"verb": "end", "message": message, "tags": tagsText}
	if res != nil {
		md["synced"], md["deleted"] = strings.Join(res.Synced, ","), strings.Join(res.Deleted, ",")
	}
	if syncErr != nil {
		reason, _ := redact.String(syncErr.Error())
		md["error"], md["message"] = reason, message+": "+reason
		s.audit(rctx, c, notify.MirrorSyncFailed, md)
		s.notify(rctx, c, notify.MirrorSyncFailed, message+": "+reason)
		s.log.Warn("repository mirror sync failed", "repository", c.FullName(), "source", c.ExternalReference, "error", syncErr)
		return true, syncErr
	}
	s.audit(rctx, c, notify.MirrorSyncSuccess, md)
	s.notify(rctx, c, notify.MirrorSyncSuccess, message)
	return true, nil
}

// ended records a sync that stopped because its claim was gone, as Quay
// does: repo_mirror_sync_failed with the verb "Cancelled" after a
// sync-cancel, or "lost" with "'<reference>' job lost" when another worker
// took the claim over after it expired.
func (s *Syncer) ended(ctx context.Context, c *store.MirrorConfig, message, tagsText string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	md := map[string]any{"verb": "Cancelled", "message": message, "tags": tagsText, "stdout": "Not applicable", "stderr": "Not applicable"}
	if cur, err := s.st.MirrorByRepository(ctx, c.RepositoryID); err == nil && cur.SyncStatus != store.MirrorCancel {
		message = fmt.Sprintf("'%s' job lost", c.ExternalReference)
		md["verb"], md["message"] = "lost", message
		s.log.Warn("repository mirror sync lost its claim to another worker", "repository", c.FullName())
	} else {
		s.log.Info("repository mirror sync cancelled", "repository", c.FullName())
	}
	s.audit(ctx, c, notify.MirrorSyncFailed, md)
	s.notify(ctx, c, notify.MirrorSyncFailed, message)
}

// watched runs sync while a watcher re-reads the row every CancelPoll:
// when the claim is gone (sync-cancel gives the row a new transaction id)
// the sync's context ends with errCancelled, so a long blob copy stops at
// once instead of at the next tag. Tags move only after every copy, so a
// cancelled sync leaves no tag changed.
func (s *Syncer) watched(ctx context.Context, c *store.MirrorConfig) (*Result, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	done := make(chan struct{})
	defer close(done)
	go func() {
		t := time.NewTicker(s.opts.CancelPoll)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				if err := s.stillClaimed(ctx, c); errors.Is(err, errCancelled) {
					cancel(errCancelled)
					return
				}
			}
		}
	}()
	res, err := s.sync(ctx, c)
	if cause := context.Cause(ctx); errors.Is(cause, errCancelled) {
		return res, errCancelled
	}
	return res, err
}

// notify hands a sync event to the notifications; a failure to record it
// is logged, never the sync's failure.
func (s *Syncer) notify(ctx context.Context, c *store.MirrorConfig, kind, message string) {
	ev := notify.Event{Kind: kind, RepositoryID: c.RepositoryID, Namespace: c.Namespace, Repository: c.Repository,
		Data: map[string]any{"message": message}}
	if err := s.opts.Notifier.Emit(ctx, ev); err != nil {
		s.log.WarnContext(ctx, "cannot record the mirror notification event", "kind", kind, "repository", c.FullName(), "error", err)
	}
}

func (s *Syncer) audit(ctx context.Context, c *store.MirrorConfig, kind string, md map[string]any) {
	md["namespace"], md["repo"] = c.Namespace, c.Repository
	e := store.LogEntry{Kind: kind, AccountID: c.NamespaceID, RepositoryID: &c.RepositoryID, Metadata: md}
	if c.RobotID != 0 {
		e.PerformerID = &c.RobotID
	}
	if err := s.st.Log(ctx, e); err != nil {
		s.log.WarnContext(ctx, "cannot write audit entry", "kind", kind, "err", err)
	}
}

// sync does the work of one claimed sync: fetch everything first, then
// move tags, so that with Rollback a failed tag leaves the mirror as it was.
func (s *Syncer) sync(ctx context.Context, c *store.MirrorConfig) (*Result, error) {
	src, err := s.source(ctx, c)
	if err != nil {
		return nil, err
	}
	var all []string
	if err := src.Tags(ctx, "", func(tags []string) error { all = append(all, tags...); return nil }); err != nil {
		var cv *tls.CertificateVerificationError
		if errors.As(err, &cv) {
			return nil, fmt.Errorf("cannot list the tags of %s: %w — trust the source's CA on this host (the system trust store, SSL_CERT_FILE or SSL_CERT_DIR) or set external_registry_config.verify_tls to false", c.ExternalReference, err)
		}
		return nil, fmt.Errorf("cannot list the tags of %s: %w", c.ExternalReference, err)
	}
	matched := MatchTags(all, c.TagPatterns)
	res := &Result{Failed: map[string]string{}}
	want := map[string]string{}
	for _, tag := range matched {
		if err := s.stillClaimed(ctx, c); err != nil {
			return res, err
		}
		d, err := s.copyTag(ctx, src, c, tag)
		// Quay's per-tag audit entries (verb "finish"); a copied tag is
		// "successful" even when a rollback later leaves it unmoved.
		srcImage := "docker://" + c.ExternalReference + ":" + tag
		if err != nil {
			if ctx.Err() != nil {
				return res, ctx.Err()
			}
			res.Failed[tag] = err.Error()
			reason, _ := redact.String(err.Error())
			s.audit(ctx, c, tagFailed, map[string]any{"verb": "finish", "tag": tag,
				"message": fmt.Sprintf("Source '%s' failed to sync", srcImage), "error": reason})
			s.log.Warn("cannot mirror tag", "repository", c.FullName(), "tag", tag, "error", err)
			continue
		}
		s.audit(ctx, c, tagSuccess, map[string]any{"verb": "finish", "tag": tag,
			"message": fmt.Sprintf("Source '%s' successful sync", srcImage)})
		want[tag] = d
	}
	if err := s.stillClaimed(ctx, c); err != nil {
		return res, err
	}
	if len(res.Failed) > 0 && s.opts.Rollback {
		return res, fmt.Errorf("%d of %d tags failed, nothing changed (REPO_MIRROR_ROLLBACK): %s", len(res.Failed), len(matched), failures(res.Failed))
	}
	current, err := s.st.ListTags(ctx, c.RepositoryID, "", 0)
	if err != nil {
		return res, err
	}
	for _, tag := range matched {
		d, ok := want[tag]
		if !ok {
			continue
		}
		if m, _, err := s.st.ManifestByTag(ctx, c.RepositoryID, tag); err == nil && m.Digest == d {
			continue
		}
		if _, err := s.st.RetargetTag(ctx, c.RepositoryID, tag, d); err != nil {
			return res, fmt.Errorf("point tag %s at %s: %w", tag, d, err)
		}
		res.Synced = append(res.Synced, tag)
	}
	for _, tag := range current {
		if slices.Contains(matched, tag) {
			continue
		}
		if err := s.st.DeleteTag(ctx, c.RepositoryID, tag); err != nil && !errors.Is(err, store.ErrNotFound) {
			return res, fmt.Errorf("remove tag %s: %w", tag, err)
		}
		res.Deleted = append(res.Deleted, tag)
	}
	if len(res.Failed) == len(matched) {
		return res, fmt.Errorf("%d of %d tags failed: %s", len(res.Failed), len(matched), failures(res.Failed))
	}
	if len(res.Failed) > 0 {
		// Quay calls this a PARTIAL SYNC.
		return res, fmt.Errorf("%d of %d tags failed, the others were synced (PARTIAL SYNC; REPO_MIRROR_ROLLBACK is off): %s", len(res.Failed), len(matched), failures(res.Failed))
	}
	return res, nil
}

func failures(m map[string]string) string {
	var out []string
	for t, e := range m {
		out = append(out, t+": "+e)
	}
	slices.Sort(out)
	return strings.Join(out, "; ")
}

// stillClaimed re-reads the row: a different transaction id means the sync
// was cancelled (or taken over after the claim expired).
func (s *Syncer) stillClaimed(ctx context.Context, c *store.MirrorConfig) error {
	cur, err := s.st.MirrorByRepository(ctx, c.RepositoryID)
	if err != nil {
		return err
	}
	if cur.SyncTransactionID != c.SyncTransactionID {
		return errCancelled
	}
	return nil
}

// MatchTags keeps the tags matching any of the comma-separated globs
// (Unix shell-style, as Python's fnmatch), sorted.
func MatchTags(tags, patterns []string) []string {
	var globs []string
	for _, p := range patterns {
		for _, g := range strings.Split(p, ",") {
			if g = strings.TrimSpace(g); g != "" {
				globs = append(globs, g)
			}
		}
	}
	var out []string
	for _, t := range tags {
		for _, g := range globs {
			if ok, err := path.Match(g, t); err == nil && ok {
				out = append(out, t)
				break
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// registryConfig is Quay's external_registry_config.
type registryConfig struct {
	VerifyTLS      *bool `json:"verify_tls"`
	UnsignedImages bool  `json:"unsigned_images"`
	Proxy          struct {
		HTTPProxy  *string `json:"http_proxy"`
		HTTPSProxy *string `json:"https_proxy"`
		NoProxy    *string `json:"no_proxy"`
	} `json:"proxy"`
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// source opens the external repository with the mirror's credentials,
// TLS and proxy settings.
func (s *Syncer) source(ctx context.Context, c *store.MirrorConfig) (*remote.Repository, error) {
	repo, err := remote.NewRepository(c.ExternalReference)
	if err != nil {
		return nil, fmt.Errorf("external_reference %q is not host/namespace/repository: %w", c.ExternalReference, err)
	}
	var rc registryConfig
	if c.RegistryConfig != "" {
		if err := json.Unmarshal([]byte(c.RegistryConfig), &rc); err != nil {
			return nil, fmt.Errorf("external_registry_config is not valid JSON: %w", err)
		}
	}
	verify := rc.VerifyTLS == nil || *rc.VerifyTLS
	var tr *http.Transport
	if s.opts.Transport != nil {
		tr = s.opts.Transport.Clone()
	} else {
		tr = http.DefaultTransport.(*http.Transport).Clone()
	}
	if tr.TLSClientConfig == nil {
		tr.TLSClientConfig = &tls.Config{}
	}
	tr.TLSClientConfig.InsecureSkipVerify = !verify
	if pc := (httpproxy.Config{HTTPProxy: deref(rc.Proxy.HTTPProxy), HTTPSProxy: deref(rc.Proxy.HTTPSProxy), NoProxy: deref(rc.Proxy.NoProxy)}); pc.HTTPProxy != "" || pc.HTTPSProxy != "" {
		f := pc.ProxyFunc()
		tr.Proxy = func(r *http.Request) (*url.URL, error) { return f(r.URL) }
	}
	cred := auth.EmptyCredential
	if c.Username != "" || c.Password != "" {
		if cred.Username, err = s.decrypt(c.Username); err != nil {
			return nil, fmt.Errorf("cannot read the stored external_registry_username: %w — is DATABASE_SECRET_KEY the one it was saved with?", err)
		}
		if cred.Password, err = s.decrypt(c.Password); err != nil {
			return nil, fmt.Errorf("cannot read the stored external_registry_password: %w — is DATABASE_SECRET_KEY the one it was saved with?", err)
		}
	}
	hc := &http.Client{Transport: tr}
	repo.Client = &auth.Client{Client: hc, Cache: auth.NewCache(), Credential: auth.StaticCredential(repo.Reference.Registry, cred)}
	if !verify {
		// Like skopeo --tls-verify=false: a registry that only speaks
		// plain HTTP is used over HTTP.
		if repo.PlainHTTP, err = speaksPlainHTTP(ctx, hc, repo.Reference.Registry); err != nil {
			return nil, err
		}
	}
	return repo, nil
}

func (s *Syncer) decrypt(v string) (string, error) {
	if v == "" {
		return "", nil
	}
	return encfield.Decrypt(s.opts.EncryptionKey, v)
}

// speaksPlainHTTP is true when HTTPS to host fails and HTTP answers /v2/.
// When neither answers, both reasons are returned: otherwise a plain-HTTP
// source behind a broken http_proxy would be reported as "server gave HTTP
// response to HTTPS client", hiding the proxy.
func speaksPlainHTTP(ctx context.Context, hc *http.Client, host string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	try := func(scheme string) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+host+"/v2/", nil)
		if err != nil {
			return err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	}
	httpsErr := try("https")
	if httpsErr == nil {
		return false, nil
	}
	httpErr := try("http")
	if httpErr == nil {
		return true, nil
	}
	return false, fmt.Errorf("cannot reach the source %s over HTTPS (%v) nor over plain HTTP (%w) — is it up, and is external_registry_config.proxy right?", host, httpsErr, httpErr)
}

// copyTag copies what tag points at into the repository (untagged, kept
// alive by a temporary tag until the tag moves) and returns its digest.
func (s *Syncer) copyTag(ctx context.Context, src *remote.Repository, c *store.MirrorConfig, tag string) (string, error) {
	timeout := time.Duration(max(c.SkopeoTimeout, 300)) * time.Second
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	desc, rc, err := src.FetchReference(ctx, tag)
	if err != nil {
		return "", fmt.Errorf("fetch manifest: %w", err)
	}
	body, err := s.readManifest(rc, desc)
	if err != nil {
		return "", err
	}
	if err := s.putManifest(ctx, src, c, desc, body, true); err != nil {
		return "", err
	}
	return desc.Digest.String(), nil
}

func (s *Syncer) readManifest(rc io.ReadCloser, desc ocispec.Descriptor) ([]byte, error) {
	defer rc.Close()
	body, err := io.ReadAll(io.LimitReader(rc, s.opts.MaxManifestBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read manifest: %w", err)
	}
	if int64(len(body)) > s.opts.MaxManifestBytes {
		return nil, fmt.Errorf("manifest %s is larger than %d bytes", desc.Digest, s.opts.MaxManifestBytes)
	}
	if err := desc.Digest.Validate(); err != nil {
		return nil, fmt.Errorf("source gave an invalid digest: %w", err)
	}
	if got := desc.Digest.Algorithm().FromBytes(body); got != desc.Digest {
		return nil, fmt.Errorf("manifest digest mismatch: source says %s, content is %s", desc.Digest, got)
	}
	return body, nil
}

type manifestDoc struct {
	MediaType    string               `json:"mediaType"`
	ArtifactType string               `json:"artifactType"`
	Config       *ocispec.Descriptor  `json:"config"`
	Layers       []ocispec.Descriptor `json:"layers"`
	Manifests    []ocispec.Descriptor `json:"manifests"`
	Subject      *ocispec.Descriptor  `json:"subject"`
}

const (
	mtDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	mtDockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"
)

// putManifest stores a manifest with everything it references. Index
// children are copied whole, unless an architecture filter names the
// platforms to keep (top is the tagged manifest).
func (s *Syncer) putManifest(ctx context.Context, src *remote.Repository, c *store.MirrorConfig, desc ocispec.Descriptor, body []byte, top bool) error {
	var doc manifestDoc
	var err error
	if err := json.Unmarshal(body, &doc); err != nil {
		return fmt.Errorf("manifest %s is not JSON: %w", desc.Digest, err)
	}
	mt := desc.MediaType
	if mt == "" || mt == "application/json" {
		mt = doc.MediaType
	}
	if mt == "" {
		if doc.Manifests != nil {
			mt = ocispec.MediaTypeImageIndex
		} else {
			mt = ocispec.MediaTypeImageManifest
		}
	}
	m := store.Manifest{Digest: desc.Digest.String(), MediaType: mt, Bytes: body, ArtifactType: doc.ArtifactType}
	if doc.Subject != nil {
		m.Subject = doc.Subject.Digest.String()
	}
	var blobs, children []string
	switch mt {
	case ocispec.MediaTypeImageIndex, mtDockerList:
		keep := doc.Manifests
		if top && len(c.ArchitectureFilter) > 0 {
			if keep, err = filterArchitectures(doc.Manifests, c.ArchitectureFilter); err != nil {
				return err
			}
		}
		for _, child := range keep {
			if _, err := s.st.ManifestByDigest(ctx, c.RepositoryID, child.Digest.String()); err != nil {
				rc, err := src.Fetch(ctx, child)
				if err != nil {
					return fmt.Errorf("fetch child manifest %s: %w", child.Digest, err)
				}
				cb, err := s.readManifest(rc, child)
				if err != nil {
					return err
				}
				if err := s.putManifest(ctx, src, c, child, cb, false); err != nil {
					return err
				}
			}
			children = append(children, child.Digest.String())
		}
	case ocispec.MediaTypeImageManifest, mtDockerManifest:
		if doc.Config == nil {
			return fmt.Errorf("manifest %s has no config", desc.Digest)
		}
		m.ConfigMediaType = doc.Config.MediaType
		if m.ArtifactType == "" {
			m.ArtifactType = doc.Config.MediaType
		}
		for i, d := range append([]ocispec.Descriptor{*doc.Config}, doc.Layers...) {
			if i > 0 {
				m.LayersSize += d.Size
				if strings.Contains(d.MediaType, "nondistributable") || strings.Contains(d.MediaType, "foreign") || len(d.URLs) > 0 {
					continue
				}
			}
			if err := s.ensureBlob(ctx, src, c.RepositoryID, d); err != nil {
				return err
			}
			blobs = append(blobs, d.Digest.String())
		}
	default:
		return fmt.Errorf("manifest %s has unsupported media type %q", desc.Digest, mt)
	}
	_, err = s.st.PutManifest(ctx, store.PutManifestParams{RepositoryID: c.RepositoryID, Manifest: m,
		BlobDigests: blobs, ChildDigests: children, TempTagTTL: time.Hour})
	if err != nil {
		return fmt.Errorf("store manifest %s: %w", desc.Digest, err)
	}
	return nil
}

// ensureBlob links the blob to the repository, fetching it from the
// source only when this registry does not hold its bytes already.
func (s *Syncer) ensureBlob(ctx context.Context, src *remote.Repository, repoID int64, d ocispec.Descriptor) error {
	if err := d.Digest.Validate(); err != nil {
		return fmt.Errorf("invalid blob digest: %w", err)
	}
	if _, err := s.st.RepositoryBlob(ctx, repoID, d.Digest.String()); err == nil {
		return nil
	}
	dst := storage.BlobPath(d.Digest.Algorithm().String(), d.Digest.Encoded())
	if b, err := s.st.BlobByDigest(ctx, d.Digest.String()); err == nil && !b.Uploading {
		if _, err := s.blobs.Stat(ctx, dst); err == nil {
			_, err := s.st.LinkBlob(ctx, repoID, d.Digest.String(), b.Size, s.opts.Location, time.Hour)
			return err
		}
	}
	rc, err := src.Blobs().Fetch(ctx, d)
	if errors.Is(err, errdef.ErrNotFound) {
		// oras-go's message repeats the digest; say what it means.
		return fmt.Errorf("fetch blob %s: the source answers 404 (%w): its manifest names a blob it does not serve", d.Digest, errdef.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("fetch blob %s: %w", d.Digest, err)
	}
	defer rc.Close()
	tmp := storage.UploadPath("mirror-" + uuid.NewString())
	fw, err := s.blobs.Writer(ctx, tmp, false)
	if err != nil {
		return fmt.Errorf("store blob %s: %w", d.Digest, err)
	}
	v := d.Digest.Verifier()
	n, err := io.Copy(fw, io.TeeReader(rc, v))
	if err == nil && n != d.Size {
		err = fmt.Errorf("got %d bytes, the descriptor says %d", n, d.Size)
	}
	if err == nil && !v.Verified() {
		err = errors.New("content does not match its digest (the source served corrupt data)")
	}
	if err != nil {
		_ = fw.Cancel(ctx)
		_ = fw.Close()
		return fmt.Errorf("copy blob %s: %w", d.Digest, err)
	}
	if err := fw.Commit(ctx); err != nil {
		_ = fw.Close()
		return fmt.Errorf("store blob %s: %w", d.Digest, err)
	}
	_ = fw.Close()
	if _, err := s.blobs.Stat(ctx, dst); err == nil {
		_ = s.blobs.Delete(ctx, tmp)
	} else if err := s.blobs.Move(ctx, tmp, dst); err != nil {
		return fmt.Errorf("store blob %s: %w", d.Digest, err)
	}
	_, err = s.st.LinkBlob(ctx, repoID, d.Digest.String(), n, s.opts.Location, time.Hour)
	return err
}

// filterArchitectures keeps the index entries whose platform architecture
// is in the filter, as Quay's worker does: entries without a platform
// (attestations, for instance) are dropped too, and an index offering none
// of the architectures fails the tag. The index itself is stored unchanged
// (same digest), so it names platforms this registry does not hold.
func filterArchitectures(children []ocispec.Descriptor, filter []string) ([]ocispec.Descriptor, error) {
	var keep []ocispec.Descriptor
	var available []string
	for _, ch := range children {
		if ch.Platform == nil || ch.Platform.Architecture == "" {
			continue
		}
		available = append(available, ch.Platform.Architecture)
		if slices.Contains(filter, ch.Platform.Architecture) {
			keep = append(keep, ch)
		}
	}
	if len(keep) == 0 {
		return nil, fmt.Errorf("no matching architectures: architecture_filter asks for %v, the index has %v", filter, available)
	}
	return keep, nil
}
