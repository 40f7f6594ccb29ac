package gather

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/quayctl/quayctl/collectors"
	"github.com/quayctl/quayctl/collectors/direct"
	"github.com/quayctl/quayctl/dbtools/diagnostics"
	"github.com/quayctl/quayctl/diag"
	"github.com/quayctl/quayctl/internal/redact"
	"github.com/quayctl/quayctl/registry/storage"
	"github.com/quayctl/quayctl/registry/storage/drivers"
	"github.com/quayctl/quayctl/registry/storage/local"
)

// StorageSkipped starts the Error of a probe that did not run: the driver
// is one quayctl cannot probe yet, or the location cannot be reached from
// where quayctl runs. The storage check reads it (diag/checks keeps the
// same text) to say so instead of failing the location.
const StorageSkipped = "skipped: "

// Probe steps beyond storage.Probe's.
const (
	// StorageStepOpen builds the driver from its configuration (a missing
	// storage_path, an incomplete S3 configuration fail here).
	StorageStepOpen = "open"
	// StorageStepSignedURL fetches the probe object through a signed URL,
	// as a client redirected by the registry would.
	StorageStepSignedURL = "signed-url"
)

// signedURLExpiry is how long the probe's signed URL is valid.
const signedURLExpiry = 2 * time.Minute

func (g *Gatherer) storageLocations(ctx context.Context, w io.Writer) error {
	locs, err := g.storageConfig(ctx)
	if err != nil {
		return err
	}
	return writeJSON(w, storageNames(locs))
}

func storageNames(locs map[string]storageLocation) []string {
	names := make([]string, 0, len(locs))
	for n := range locs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// storageLocationNamed is one location of DISTRIBUTED_STORAGE_CONFIG.
func (g *Gatherer) storageLocationNamed(ctx context.Context, name string) (storageLocation, error) {
	locs, err := g.storageConfig(ctx)
	if err != nil {
		return storageLocation{}, err
	}
	loc, ok := locs[name]
	if !ok {
		return storageLocation{}, fmt.Errorf("DISTRIBUTED_STORAGE_CONFIG has no location %q (it has: %s)", name, strings.Join(storageNames(locs), ", "))
	}
	return loc, nil
}

// storageProbe writes, stats, reads back, compares and deletes a probe
// object in one location, timing each step (storage.Probe, the probe the
// server runs at start), and fetches it through a signed URL when the
// driver can sign one.
func (g *Gatherer) storageProbe(location string) producer {
	return func(ctx context.Context, w io.Writer) error {
		loc, err := g.storageLocationNamed(ctx, location)
		if err != nil {
			return err
		}
		p := diag.StorageProbe{Location: location, Driver: loc.Driver, Steps: []diag.StorageProbeStep{}}
		acc := g.storageAccess(ctx, loc)
		p.Where = acc.where
		switch {
		case acc.skip != "":
			p.Error = StorageSkipped + acc.skip
		case acc.fail != nil:
			p.Error = redactText(acc.fail.Error())
			p.Steps = append(p.Steps, diag.StorageProbeStep{Step: acc.failStep, Error: p.Error})
		case acc.execRoot != "":
			g.probeExec(ctx, &p, acc.execRoot)
		default:
			g.probeDriver(ctx, &p, acc.driver)
		}
		return writeJSON(w, p)
	}
}

// storageAccess is how quayctl reaches one location from where it runs.
// Exactly one of driver, execRoot, skip and fail is set.
type storageAccess struct {
	where    string         // path or endpoint/bucket, no secrets
	driver   storage.Driver // a driver built here (host path, object storage)
	execRoot string         // storage_path inside the quay component, reached with sh
	skip     string         // why the location cannot be probed from here
	fail     error          // the location is broken before any object is written
	failStep string         // the probe step fail belongs to
}

func (g *Gatherer) storageAccess(ctx context.Context, loc storageLocation) storageAccess {
	if !drivers.Known(loc.Driver) {
		_, err := drivers.New(ctx, loc.Driver, loc.Params)
		return storageAccess{where: storageWhere(loc), fail: err, failStep: StorageStepOpen}
	}
	if !drivers.Supported(loc.Driver) {
		return storageAccess{where: storageWhere(loc), skip: fmt.Sprintf("quayctl cannot probe %s yet (it supports %s)", loc.Driver, strings.Join(drivers.SupportedNames(), ", "))}
	}
	if loc.Driver == local.DriverName {
		return g.localAccess(ctx, loc)
	}
	acc := storageAccess{where: storageWhere(loc)}
	d, err := drivers.New(ctx, loc.Driver, loc.Params)
	if err != nil {
		acc.fail, acc.failStep = err, StorageStepOpen
		return acc
	}
	acc.driver = d
	return acc
}

// localAccess finds LocalStorage's storage_path: on this host for a direct
// target; through the host path of the quay container's mount that holds
// it on a local podman; else inside the quay component with sh.
func (g *Gatherer) localAccess(ctx context.Context, loc storageLocation) storageAccess {
	root, _ := loc.Params[local.ParamStoragePath].(string)
	if strings.TrimSpace(root) == "" {
		return storageAccess{fail: fmt.Errorf("%s: parameter %s is missing or not a string — set it to the directory that holds the blobs, such as /datastorage/registry", local.DriverName, local.ParamStoragePath), failStep: StorageStepOpen}
	}
	if _, ok := g.d.(*direct.Deployment); ok {
		return hostAccess(root, root+" (on this host)")
	}
	var notes []string
	if m, ok := g.d.(collectors.Mounter); ok {
		mounts, err := m.Mounts(ctx, collectors.ComponentQuay)
		switch {
		case err != nil:
			notes = append(notes, err.Error())
		default:
			if mnt, host, ok := storageHostPath(mounts, root); ok {
				where := fmt.Sprintf("%s (host path of %s in the quay container)", host, root)
				if _, err := os.Stat(mnt.Source); err != nil {
					notes = append(notes, fmt.Sprintf("the host path %s of %s is not reachable from here: %v", mnt.Source, mnt.Destination, err))
					break
				}
				if !mnt.RW {
					return storageAccess{where: where, failStep: storage.ProbeWrite,
						fail: fmt.Errorf("%s is mounted read-only into the quay container (%s %s → %s): Quay cannot write blobs", root, mnt.Type, mnt.Source, mnt.Destination)}
				}
				// quayctl probes as root, which ignores modes; the
				// registry runs as the container's user.
				if pu, ok := g.d.(collectors.ProcessUser); ok {
					if user, err := pu.User(ctx, collectors.ComponentQuay); err == nil {
						if err := writableBy(host, user); err != nil {
							return storageAccess{where: where, failStep: storage.ProbeWrite, fail: err}
						}
					}
				}
				return hostAccess(host, where)
			}
			notes = append(notes, root+" is not on a volume or bind mount of the quay container")
		}
	}
	qc, err := g.component(ctx, collectors.ComponentQuay)
	if err != nil {
		return storageAccess{where: root, skip: fmt.Sprintf("%s is inside the quay container and there is no quay component to look into (%v)", root, err)}
	}
	return storageAccess{where: fmt.Sprintf("%s in the quay component (%s), through sh", root, qc.Instance), execRoot: root}.withNotes(notes)
}

// withNotes keeps why the host path was not used, for a later skip.
func (a storageAccess) withNotes(notes []string) storageAccess {
	if len(notes) > 0 {
		a.where += " [" + strings.Join(notes, "; ") + "]"
	}
	return a
}

// hostAccess opens a LocalStorage root on this machine without creating
// it: a probe must not make a missing storage_path look healthy.
func hostAccess(root, where string) storageAccess {
	acc := storageAccess{where: where}
	fi, err := os.Stat(root)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		acc.fail = fmt.Errorf("storage_path %s does not exist", root)
	case err != nil:
		acc.fail = fmt.Errorf("storage_path %s: %w", root, err)
	case !fi.IsDir():
		acc.fail = fmt.Errorf("storage_path %s is not a directory", root)
	}
	if acc.fail != nil {
		acc.failStep = StorageStepOpen
		return acc
	}
	d, err := local.New(map[string]any{local.ParamStoragePath: root})
	if err != nil {
		acc.fail, acc.failStep = err, StorageStepOpen
		return acc
	}
	acc.driver = d
	return acc
}

// storageHostPath finds the mount holding root (the deepest destination
// that contains it) and root's path on the host.
func storageHostPath(mounts []collectors.Mount, root string) (collectors.Mount, string, bool) {
	root = path.Clean(root)
	var best collectors.Mount
	found := false
	for _, m := range mounts {
		dst := path.Clean(m.Destination)
		if m.Source == "" || (m.Type != "bind" && m.Type != "volume") {
			continue
		}
		if root != dst && !strings.HasPrefix(root, strings.TrimSuffix(dst, "/")+"/") {
			continue
		}
		if !found || len(dst) > len(path.Clean(best.Destination)) {
			best, found = m, true
		}
	}
	if !found {
		return best, "", false
	}
	rel := strings.TrimPrefix(strings.TrimPrefix(root, path.Clean(best.Destination)), "/")
	return best, filepath.Join(best.Source, filepath.FromSlash(rel)), true
}

// probeDriver runs storage.Probe; a driver that signs URLs has its probe
// object fetched through one just before the probe deletes it.
func (g *Gatherer) probeDriver(ctx context.Context, p *diag.StorageProbe, d storage.Driver) {
	var run storage.Driver = d
	sd := &signingDriver{Driver: d}
	if signer, ok := d.(storage.URLSigner); ok {
		sd.fetch = func(ctx context.Context, objectPath string) diag.StorageProbeStep {
			return fetchSigned(ctx, g.opts.HTTPClient, signer, objectPath)
		}
		run = sd
	}
	res := storage.Probe(ctx, run)
	for _, s := range res.Steps {
		dur := s.Duration
		if s.Name == storage.ProbeDelete {
			dur -= sd.fetchTime // the fetch ran inside the delete call
		}
		st := diag.StorageProbeStep{Step: s.Name, OK: s.Err == nil, ElapsedMS: ms(dur)}
		if s.Err != nil {
			st.Error = redactText(s.Err.Error())
		}
		p.Steps = append(p.Steps, st)
	}
	p.OK = res.OK
	if res.Err != nil {
		p.Error = redactText(res.Err.Error())
	}
	if sd.step != nil && res.OK {
		p.Download = sd.step
	}
}

// signingDriver fetches the probe object through a signed URL when the
// probe deletes it, the last moment it exists.
type signingDriver struct {
	storage.Driver
	fetch     func(ctx context.Context, path string) diag.StorageProbeStep
	step      *diag.StorageProbeStep
	fetchTime time.Duration
}

func (d *signingDriver) Delete(ctx context.Context, p string) error {
	if d.fetch != nil && d.step == nil && strings.HasPrefix(p, storage.ProbePathPrefix) {
		start := time.Now()
		st := d.fetch(ctx, p)
		d.fetchTime = time.Since(start)
		d.step = &st
	}
	return d.Driver.Delete(ctx, p)
}

// fetchSigned GETs a signed URL of objectPath as a client would and
// compares the bytes. Errors never quote the URL's query (its signature).
func fetchSigned(ctx context.Context, client *http.Client, signer storage.URLSigner, objectPath string) diag.StorageProbeStep {
	st := diag.StorageProbeStep{Step: StorageStepSignedURL}
	start := time.Now()
	defer func() { st.ElapsedMS = ms(time.Since(start)) }()
	fail := func(format string, args ...any) diag.StorageProbeStep {
		st.Error = redactText(fmt.Sprintf(format, args...))
		st.ElapsedMS = ms(time.Since(start))
		return st
	}
	raw, err := signer.SignedURL(ctx, objectPath, signedURLExpiry)
	if err != nil {
		return fail("signing a URL for %s: %v", objectPath, err)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fail("the driver signed an invalid URL: %v", err)
	}
	bare := *u
	bare.RawQuery, bare.Fragment, bare.User = "", "", nil
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, raw, nil)
	if err != nil {
		return fail("GET %s: %v", bare.String(), err)
	}
	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fail("GET %s (signed): %v", bare.String(), err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	switch {
	case err != nil:
		return fail("GET %s (signed): reading the answer: %v", bare.String(), err)
	case resp.StatusCode != http.StatusOK:
		return fail("GET %s (signed): HTTP %d: %s", bare.String(), resp.StatusCode, strings.TrimSpace(truncateText(string(body), 300)))
	case !bytes.Equal(body, []byte(storage.ProbeContent)):
		return fail("GET %s (signed) answered %d bytes that differ from the probe object's %d", bare.String(), len(body), len(storage.ProbeContent))
	}
	st.OK = true
	st.ElapsedMS = ms(time.Since(start))
	return st
}

// probeExec probes a directory inside the quay component with sh: the
// same steps as storage.Probe, each one exec (so each timing includes the
// exec's own cost).
func (g *Gatherer) probeExec(ctx context.Context, p *diag.StorageProbe, root string) {
	obj := strings.TrimSuffix(root, "/") + "/" + storage.ProbePathPrefix + randomHex()
	sh := func(script string, args ...string) (string, string, int, error) {
		var out, errOut bytes.Buffer
		argv := append([]string{"sh", "-c", script, "sh"}, args...)
		code, err := g.d.Exec(ctx, collectors.ComponentQuay, argv, collectors.ExecOptions{Stdout: &out, Stderr: &errOut})
		return out.String(), errOut.String(), code, err
	}
	// Can we look at all? No shell, no exec, not running: skip, not fail.
	_, errOut, code, err := sh(`test -d "$1" || { echo "storage_path $1 does not exist or is not a directory in the quay container" >&2; exit 3; }`, root)
	switch {
	case err != nil && (errors.Is(err, collectors.ErrNotSupported) || missingTool(code, err, errOut)):
		p.Error = StorageSkipped + fmt.Sprintf("%s is inside the quay container, and quayctl cannot run sh there (%s)", root, redactText(firstLine(err.Error())))
		return
	case missingTool(code, nil, errOut):
		p.Error = StorageSkipped + fmt.Sprintf("%s is inside the quay container, which has no shell to probe it with", root)
		return
	case err != nil:
		var nr *collectors.NotRunningError
		if errors.As(err, &nr) {
			p.Error = StorageSkipped + redactText(err.Error())
			return
		}
		p.Error = redactText(fmt.Sprintf("exec in the quay component: %v", err))
		return
	case code != 0:
		p.Error = redactText(strings.TrimSpace(errOut))
		p.Steps = append(p.Steps, diag.StorageProbeStep{Step: StorageStepOpen, Error: p.Error})
		return
	}

	step := func(name string, fn func() error) bool {
		start := time.Now()
		err := fn()
		st := diag.StorageProbeStep{Step: name, OK: err == nil, ElapsedMS: ms(time.Since(start))}
		if err != nil {
			st.Error = redactText(err.Error())
			if p.Error == "" {
				p.Error = fmt.Sprintf("storage probe in the quay container failed at %s of %s: %s", name, obj, st.Error)
			}
		}
		p.Steps = append(p.Steps, st)
		return err == nil
	}
	run := func(script string, args ...string) (string, error) {
		out, errOut, code, err := sh(script, args...)
		if err != nil {
			return out, err
		}
		if code != 0 {
			msg := strings.TrimSpace(errOut)
			if msg == "" {
				msg = "no message"
			}
			return out, fmt.Errorf("sh exited %d: %s", code, msg)
		}
		return out, nil
	}
	var got string
	written := false
	if step(storage.ProbeWrite, func() error {
		written = true
		_, err := run(`printf '%s' "$2" > "$1"`, obj, storage.ProbeContent)
		return err
	}) {
		_ = step(storage.ProbeStat, func() error {
			out, err := run(`test -f "$1" && wc -c < "$1"`, obj)
			if err != nil {
				return err
			}
			n, err := strconv.Atoi(strings.TrimSpace(out))
			if err != nil || n != len(storage.ProbeContent) {
				return fmt.Errorf("the probe object has size %q, want %d bytes", strings.TrimSpace(out), len(storage.ProbeContent))
			}
			return nil
		}) && step(storage.ProbeRead, func() error {
			var err error
			got, err = run(`cat "$1"`, obj)
			return err
		}) && step(storage.ProbeCompare, func() error {
			if got != storage.ProbeContent {
				return fmt.Errorf("read back %q, wrote %q", truncateText(got, 40), storage.ProbeContent)
			}
			return nil
		})
	}
	if written {
		// Always delete, even after a failure; with a context of its own
		// so a timed-out probe still tidies up.
		step(storage.ProbeDelete, func() error {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			var out, errOut bytes.Buffer
			code, err := g.d.Exec(cctx, collectors.ComponentQuay, []string{"sh", "-c", `rm -f "$1"`, "sh", obj}, collectors.ExecOptions{Stdout: &out, Stderr: &errOut})
			if err == nil && code != 0 {
				err = fmt.Errorf("sh exited %d: %s", code, strings.TrimSpace(errOut.String()))
			}
			return err
		})
	}
	p.OK = p.Error == ""
}

// storageSample stats, in one location, the sampled blobs the database
// says are placed there (geo-replication's check of placements against
// what storage holds).
func (g *Gatherer) storageSample(location string) producer {
	return func(ctx context.Context, w io.Writer) error {
		loc, err := g.storageLocationNamed(ctx, location)
		if err != nil {
			return err
		}
		pl, err := diag.GetJSON[diagnostics.PlacementReport](ctx, g, diag.FactDBPlacement)
		if err != nil {
			return fmt.Errorf("cannot read which blobs the database places in %s: %w", location, err)
		}
		var paths, sums []string
		for _, b := range pl.Sample {
			// Only content-addressed blobs whose push has finished: the
			// legacy layout (cas_path false) is not sampled.
			if b.Uploading || !b.CASPath || !slices.Contains(b.Locations, location) {
				continue
			}
			p, ok := blobPath(b.Digest)
			if !ok {
				continue
			}
			paths, sums = append(paths, p), append(sums, b.Digest)
		}
		s := diag.StorageSample{Location: location, Checked: len(paths), When: time.Now().UTC()}
		if len(paths) > 0 {
			acc := g.storageAccess(ctx, loc)
			var missing []int
			switch {
			case acc.skip != "":
				return fmt.Errorf("cannot look into %s: %s: %w", location, acc.skip, diag.ErrNotApplicable)
			case acc.fail != nil:
				return fmt.Errorf("cannot look into %s: %w", location, acc.fail)
			case acc.execRoot != "":
				missing, err = g.missingExec(ctx, acc.execRoot, paths)
			default:
				missing, err = missingDriver(ctx, acc.driver, paths)
			}
			if err != nil {
				return fmt.Errorf("checking sampled blobs in %s (%s): %w", location, acc.where, err)
			}
			for _, i := range missing {
				s.Missing = append(s.Missing, sums[i])
			}
		}
		return writeJSON(w, s)
	}
}

// blobPath is where Quay keeps a blob: sha256/<2 hex>/<hex>.
func blobPath(checksum string) (string, bool) {
	algo, sum, ok := strings.Cut(checksum, ":")
	if !ok || len(sum) < 2 || algo == "" {
		return "", false
	}
	p := storage.BlobPath(algo, sum)
	return p, storage.ValidatePath("", p) == nil
}

func missingDriver(ctx context.Context, d storage.Driver, paths []string) ([]int, error) {
	var missing []int
	for i, p := range paths {
		_, err := d.Stat(ctx, p)
		switch {
		case errors.Is(err, storage.ErrNotFound):
			missing = append(missing, i)
		case err != nil:
			return nil, err
		}
	}
	return missing, nil
}

// missingExec tests every path in one sh call inside the quay component.
func (g *Gatherer) missingExec(ctx context.Context, root string, paths []string) ([]int, error) {
	argv := []string{"sh", "-c", `root="$1"; shift; i=0; for p; do test -f "$root/$p" || echo "$i"; i=$((i+1)); done`, "sh", root}
	argv = append(argv, paths...)
	var out, errOut bytes.Buffer
	code, err := g.d.Exec(ctx, collectors.ComponentQuay, argv, collectors.ExecOptions{Stdout: &out, Stderr: &errOut})
	if err != nil {
		return nil, err
	}
	if code != 0 {
		return nil, fmt.Errorf("sh exited %d: %s", code, strings.TrimSpace(errOut.String()))
	}
	var missing []int
	for _, f := range strings.Fields(out.String()) {
		i, err := strconv.Atoi(f)
		if err != nil || i < 0 || i >= len(paths) {
			return nil, fmt.Errorf("unexpected output from sh: %q", truncateText(out.String(), 100))
		}
		missing = append(missing, i)
	}
	return missing, nil
}

// storageWhere describes a location without its secrets: the directory,
// or the endpoint, bucket and path of object storage.
func storageWhere(loc storageLocation) string {
	str := func(k string) string {
		switch v := loc.Params[k].(type) {
		case string:
			return strings.TrimSpace(v)
		case nil:
			return ""
		default:
			return fmt.Sprint(v)
		}
	}
	if loc.Driver == local.DriverName {
		return str(local.ParamStoragePath)
	}
	bucket := str("s3_bucket")
	for _, k := range []string{"bucket_name", "azure_container", "swift_container"} {
		if bucket == "" {
			bucket = str(k)
		}
	}
	endpoint := str("endpoint_url")
	if endpoint == "" {
		host := str("host")
		if host == "" {
			host = str("hostname")
		}
		if host != "" {
			if !strings.Contains(host, "://") {
				scheme := "https"
				if s := str("is_secure"); s == "false" || s == "False" {
					scheme = "http"
				}
				host = scheme + "://" + host
			}
			if port := str("port"); port != "" && !strings.Contains(strings.TrimPrefix(strings.TrimPrefix(host, "http://"), "https://"), ":") {
				host += ":" + port
			}
			endpoint = host
		}
	}
	if endpoint == "" && loc.Driver == "S3Storage" {
		endpoint = "s3"
		if r := str("s3_region"); r != "" {
			endpoint += " (" + r + ")"
		}
	}
	if u, err := url.Parse(endpoint); err == nil && u.User != nil {
		u.User = nil
		endpoint = u.String()
	}
	where := strings.TrimRight(endpoint, "/")
	if bucket != "" {
		if where != "" {
			where += " "
		}
		where += "bucket " + bucket
	}
	if sp := strings.Trim(str("storage_path"), "/"); sp != "" {
		where += " path /" + sp
	}
	red, _ := redact.String(strings.TrimSpace(where))
	return red
}

func redactText(s string) string {
	r, _ := redact.String(s)
	return r
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

func truncateText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// randomHex names a probe object as storage.Probe does: _verify-<16 hex>.
func randomHex() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
