package upload

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/content/memory"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/credentials"
	"oras.land/oras-go/v2/registry/remote/errcode"
	"oras.land/oras-go/v2/registry/remote/retry"

	"github.com/quayctl/quayctl/internal/version"
)

// The OCI artifact a bundle becomes: an OCI 1.1 image manifest with this
// artifactType, the empty config, and the bundle as its one layer.
const (
	ArtifactType = "application/vnd.quayctl.support-bundle.v1+tar+gzip"
	// LayerMediaType is the bundle layer's media type: the archive as it
	// is on disk, a gzip-compressed tar.
	LayerMediaType = "application/vnd.quayctl.support-bundle.layer.v1.tar+gzip"

	// AnnotationDeployment names the deployment the bundle was collected
	// from (its manifest.json's, else the file name).
	AnnotationDeployment = "io.quayctl.support-bundle.deployment"
	// AnnotationVersion is the version of quayctl that uploaded it.
	AnnotationVersion = "io.quayctl.version"
)

// OCI pushes file to dest, oci://HOST[:PORT]/NAMESPACE/REPO[:TAG], as an
// OCI artifact. Without a tag, one is made from the file name. Plain HTTP
// is used only for a registry on the loopback interface (or with
// Insecure) that does not speak TLS.
func OCI(ctx context.Context, file, dest string, opts Options) (*Result, error) {
	ref, err := ParseOCI(dest, file)
	if err != nil {
		return nil, err
	}
	host := ref.Registry
	fi, err := os.Stat(file)
	if err != nil {
		return nil, &Error{Msg: "cannot read the bundle", Err: err, Remedy: "check the FILE argument"}
	}
	if !fi.Mode().IsRegular() {
		return nil, &Error{Msg: file + " is not a regular file", Remedy: "pass the bundle's .tar.gz"}
	}
	credFn, err := registryCredential(host, opts)
	if err != nil {
		return nil, err
	}
	base := http.DefaultTransport
	if opts.Client != nil && opts.Client.Transport != nil {
		base = opts.Client.Transport
	}
	plain := false
	if opts.Insecure || IsLoopback(hostname(host)) {
		plain = speaksPlainHTTP(ctx, base, host)
	}

	// One read for the digest (needed before the upload starts) and the
	// bundle's own description of itself.
	info, err := inspectBundle(file)
	if err != nil {
		return nil, &Error{Msg: "cannot read the bundle", Err: err}
	}
	created := info.created
	if created.IsZero() {
		created = opts.now()
	}
	deployment := info.deployment
	if deployment == "" {
		deployment = bundleName(file)
	}
	ann := map[string]string{
		ocispec.AnnotationCreated: created.UTC().Format(time.RFC3339),
		ocispec.AnnotationTitle:   filepath.Base(file),
		AnnotationDeployment:      deployment,
		AnnotationVersion:         version.Version,
	}

	retries := opts.retries()
	backoff := opts.Backoff
	if backoff <= 0 {
		backoff = time.Second
	}
	policy := &retry.GenericPolicy{
		Retryable: retryable,
		Backoff:   retry.ExponentialBackoff(backoff, 2, 0.1),
		MinWait:   backoff,
		MaxWait:   MaxBackoff,
		MaxRetry:  retries,
	}
	repo := &remote.Repository{
		Reference: ref,
		PlainHTTP: plain,
		Client: &auth.Client{
			Client:     &http.Client{Transport: &retry.Transport{Base: base, Policy: func() retry.Policy { return policy }}},
			Header:     http.Header{"User-Agent": {"quayctl/" + version.Version}},
			Cache:      auth.NewCache(),
			Credential: credFn,
		},
	}
	res := &Result{Kind: KindOCI, Destination: "oci://" + ref.String(), File: file, Bytes: fi.Size(),
		SHA256: info.digest.Encoded(), ArtifactType: ArtifactType, Tag: ref.Reference, LayerDigest: info.digest.String(),
		Annotations: ann, PlainHTTP: plain}
	fail := func(what string, err error) (*Result, error) {
		return nil, &Error{Msg: fmt.Sprintf("cannot push the bundle to %s: %s", res.Destination, what),
			Err: cleanErr(err, opts.Password), Remedy: ociRemedy(err, host)}
	}

	layer := ocispec.Descriptor{MediaType: LayerMediaType, Digest: info.digest, Size: info.size,
		Annotations: map[string]string{ocispec.AnnotationTitle: filepath.Base(file)}}
	attempts, err := pushLayer(ctx, repo, file, layer, retries, opts)
	res.Attempts = attempts
	if err != nil {
		return fail("uploading the layer", err)
	}
	// Pack in memory (small: the empty config and the manifest), then send
	// the config and the manifest under its tag.
	mem := memory.New()
	mdesc, err := oras.PackManifest(ctx, mem, oras.PackManifestVersion1_1, ArtifactType,
		oras.PackManifestOptions{Layers: []ocispec.Descriptor{layer}, ManifestAnnotations: ann})
	if err != nil {
		return fail("packing the manifest", err)
	}
	cfg := ocispec.DescriptorEmptyJSON
	if ok, err := repo.Exists(ctx, cfg); err != nil {
		return fail("checking the config blob", err)
	} else if !ok {
		if err := repo.Push(ctx, cfg, bytes.NewReader(cfg.Data)); err != nil && !errors.Is(err, errdef.ErrAlreadyExists) {
			return fail("uploading the config blob", err)
		}
	}
	mbytes, err := content.FetchAll(ctx, mem, mdesc)
	if err != nil {
		return fail("packing the manifest", err)
	}
	if err := repo.PushReference(ctx, mdesc, bytes.NewReader(mbytes), ref.Reference); err != nil {
		return fail("pushing the manifest", err)
	}
	res.ManifestDigest = mdesc.Digest.String()
	res.Reference = ref.Registry + "/" + ref.Repository + "@" + mdesc.Digest.String()
	return res, nil
}

// pushLayer uploads the bundle as a blob unless the registry has it,
// opening the file again for each attempt: the transport cannot replay a
// streamed body, so retries of the large upload are made here.
func pushLayer(ctx context.Context, repo *remote.Repository, file string, desc ocispec.Descriptor, retries int, opts Options) (int, error) {
	for attempt := 1; ; attempt++ {
		err := func() error {
			ok, err := repo.Exists(ctx, desc)
			if err != nil || ok {
				return err
			}
			f, err := os.Open(file)
			if err != nil {
				return err
			}
			defer f.Close()
			pr := &progressReader{r: io.LimitReader(f, desc.Size), total: desc.Size, fn: opts.Progress}
			return repo.Push(ctx, desc, pr)
		}()
		if err == nil {
			return attempt, nil
		}
		if attempt > retries || ctx.Err() != nil || !transient(err) {
			return attempt, err
		}
		if err := sleep(ctx, opts.wait(attempt)); err != nil {
			return attempt, err
		}
	}
}

// retryable is the retry policy's predicate: 5xx, 408, 429 and connection
// errors (the transport only replays requests it can rewind).
func retryable(resp *http.Response, err error) (bool, error) {
	if err != nil {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return false, err
		}
		return true, nil
	}
	return resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500, nil
}

// transient says whether a failed push is worth another attempt.
func transient(err error) bool {
	var er *errcode.ErrorResponse
	if errors.As(err, &er) {
		return er.StatusCode >= 500 || er.StatusCode == http.StatusTooManyRequests || er.StatusCode == http.StatusRequestTimeout
	}
	var pe *os.PathError
	return !plainHTTPAnswer(err) && !errors.As(err, &pe) && !strings.Contains(err.Error(), "certificate")
}

func ociRemedy(err error, host string) string {
	var er *errcode.ErrorResponse
	if errors.As(err, &er) {
		switch er.StatusCode {
		case http.StatusUnauthorized:
			return "log in: --username NAME --password-stdin, or podman login " + host
		case http.StatusForbidden:
			return "the account may not push to this repository; ask the registry's administrator, or pick a namespace you own"
		case http.StatusNotFound, http.StatusMethodNotAllowed:
			return "check the registry host and repository path"
		case http.StatusBadRequest, http.StatusUnsupportedMediaType:
			return "the registry refused the artifact; it must support OCI 1.1 artifacts (on Quay: FEATURE_GENERAL_OCI_SUPPORT, and " + LayerMediaType + " allowed in ALLOWED_OCI_ARTIFACT_TYPES)"
		}
	}
	if plainHTTPAnswer(err) {
		return "the registry speaks plain HTTP; pass --insecure if this network is trusted"
	}
	if strings.Contains(err.Error(), "certificate") {
		return "the registry's TLS certificate is not trusted; add its CA with SSL_CERT_FILE=/path/ca.pem"
	}
	return "check that the registry is reachable and try again, or raise --retries"
}

// speaksPlainHTTP probes https://host/v2/: a registry that answers a TLS
// hello with plain HTTP gets plain HTTP; any other outcome keeps TLS, so
// that a certificate problem is reported as such.
func speaksPlainHTTP(ctx context.Context, rt http.RoundTripper, host string) bool {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+host+"/v2/", nil)
	if err != nil {
		return false
	}
	resp, err := (&http.Client{Transport: rt}).Do(req)
	if err == nil {
		resp.Body.Close()
		return false
	}
	return plainHTTPAnswer(err)
}

// plainHTTPAnswer says whether err is a plain-HTTP answer to a TLS hello.
func plainHTTPAnswer(err error) bool {
	var rh tls.RecordHeaderError
	return errors.Is(err, http.ErrSchemeMismatch) || errors.As(err, &rh)
}

// hostname is host without its port.
func hostname(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		return h
	}
	return host
}

// tagRE is the OCI distribution spec's tag grammar.
var tagRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$`)

// ParseOCI parses oci://HOST/NAMESPACE/REPO[:TAG]; without a tag, the tag
// is made from file's name.
func ParseOCI(dest, file string) (registry.Reference, error) {
	rest, ok := strings.CutPrefix(dest, "oci://")
	if !ok {
		return registry.Reference{}, &Error{Msg: fmt.Sprintf("%q is not an oci:// destination", DisplayURL(dest))}
	}
	bad := func(err error) (registry.Reference, error) {
		return registry.Reference{}, &Error{Msg: fmt.Sprintf("invalid registry destination %q", dest), Err: err,
			Remedy: "use oci://HOST[:PORT]/NAMESPACE/REPO:TAG, for example oci://quay.example.com/support/bundles:case-01234"}
	}
	if strings.Contains(rest, "@") {
		return bad(errors.New("a digest cannot be pushed to; give a tag"))
	}
	ref, err := registry.ParseReference(rest)
	if err != nil {
		return bad(err)
	}
	if !strings.Contains(ref.Repository, "/") {
		return bad(errors.New("the repository needs a namespace: NAMESPACE/REPO"))
	}
	if ref.Reference == "" {
		ref.Reference = DefaultTag(file)
	}
	if !tagRE.MatchString(ref.Reference) {
		return bad(fmt.Errorf("tag %q is not valid", ref.Reference))
	}
	return ref, nil
}

// DefaultTag is the tag for a bundle pushed without one: its file name
// without .tar.gz, made a valid tag.
func DefaultTag(file string) string {
	name := bundleName(file)
	b := []byte(name)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			b[i] = '_'
		}
	}
	name = strings.TrimLeft(string(b), ".-")
	if len(name) > 128 {
		name = name[len(name)-128:]
	}
	if name == "" {
		return "bundle"
	}
	return name
}

// bundleName is file's base name without its archive extension.
func bundleName(file string) string {
	name := filepath.Base(file)
	for _, ext := range []string{".tar.gz", ".tgz", ".gz", ".tar"} {
		if n, ok := strings.CutSuffix(name, ext); ok && n != "" {
			return n
		}
	}
	return name
}

// AuthFiles lists the registry auth files podman and docker read, in
// podman's order: $REGISTRY_AUTH_FILE, ${XDG_RUNTIME_DIR}/containers/auth.json,
// ${XDG_CONFIG_HOME:-~/.config}/containers/auth.json, then docker's
// ${DOCKER_CONFIG:-~/.docker}/config.json.
func AuthFiles(getenv func(string) string) []string {
	var out []string
	add := func(parts ...string) {
		if parts[0] != "" {
			out = append(out, filepath.Join(parts...))
		}
	}
	add(getenv("REGISTRY_AUTH_FILE"))
	add(getenv("XDG_RUNTIME_DIR"), "containers", "auth.json")
	home := getenv("HOME")
	if x := getenv("XDG_CONFIG_HOME"); x != "" {
		add(x, "containers", "auth.json")
	} else {
		add(home, ".config", "containers", "auth.json")
	}
	if d := getenv("DOCKER_CONFIG"); d != "" {
		add(d, "config.json")
	} else {
		add(home, ".docker", "config.json")
	}
	return out
}

// registryCredential is --username/--password if given, else the first
// auth file that has a login for host.
func registryCredential(host string, opts Options) (auth.CredentialFunc, error) {
	if opts.Username != "" {
		return auth.StaticCredential(host, auth.Credential{Username: opts.Username, Password: opts.Password}), nil
	}
	if explicit := opts.getenv("REGISTRY_AUTH_FILE"); explicit != "" {
		if _, err := os.Stat(explicit); err != nil {
			return nil, &Error{Msg: "cannot read REGISTRY_AUTH_FILE", Err: err, Remedy: "point it at an existing auth.json, or unset it"}
		}
	}
	var stores []credentials.Store
	for _, p := range AuthFiles(opts.getenv) {
		if _, err := os.Stat(p); err != nil {
			continue
		}
		s, err := credentials.NewStore(p, credentials.StoreOptions{})
		if err != nil {
			return nil, &Error{Msg: "cannot read the registry auth file " + p, Err: cleanErr(err), Remedy: "fix or remove it, or pass --username and --password-stdin"}
		}
		stores = append(stores, s)
	}
	if len(stores) == 0 {
		return auth.StaticCredential(host, auth.EmptyCredential), nil
	}
	return credentials.Credential(credentials.NewStoreWithFallbacks(stores[0], stores[1:]...)), nil
}

// bundleInfo is what the upload learns from reading the bundle once.
type bundleInfo struct {
	digest     digest.Digest
	size       int64
	deployment string
	created    time.Time
}
