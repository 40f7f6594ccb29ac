//go:build linux

package e2e

// Benchmarks of the registry's data path (docs/benchmarks.md). Each 1 GiB
// figure is printed beside its physical reference, measured in the same run
// on the same file:
//
//	BenchmarkPush1GiB          monolithic upload vs Go's sha256 over the
//	                           file (and the disk's write+fsync rate)
//	BenchmarkPull1GiB          blob download vs a bare net/http file server
//	BenchmarkManifestGetByTag  manifest GET by tag from concurrent clients,
//	                           bearer token and cached basic auth, on SQLite
//	                           and PostgreSQL
//	BenchmarkServeProcessRSS   the real `quayctl serve` binary in its own
//	                           process: idle resident memory, and its peak
//	                           while it receives and serves 1 GiB
//
// The in-process benchmarks (Push, Pull) also report the test process's
// resident memory; the client there streams from and to files and sockets
// without buffering, so that figure is the server's plus a small constant.

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"

	"github.com/quayctl/quayctl/registry/storage/local"
)

const (
	blobSize = 1 << 30

	// The targets.
	pushTarget        = 0.6 // × sha256 over the same file
	pullTarget        = 0.9 // × a bare file server on loopback
	transferRSSTarget = 128 * mib
	idleRSSTarget     = 64 * mib

	rssInterval = 50 * time.Millisecond

	// manifestClients is the number of concurrent clients of
	// BenchmarkManifestGetByTag.
	manifestClients = 32

	benchUser     = "bench"
	benchPassword = "bench-password"

	// benchBuildTags are the Makefile's GO_TAGS, for BenchmarkServeProcessRSS.
	benchBuildTags = "remote,exclude_graphdriver_btrfs,btrfs_noversion,exclude_graphdriver_devicemapper,containers_image_openpgp"
)

// ---------------------------------------------------------------------------
// The 1 GiB blob.

// blobFile is 1 GiB of pseudo-random bytes (ChaCha8, fixed seed), generated
// once per test binary into a file under os.TempDir() that is unlinked as
// soon as it is created: the kernel frees the space when the process exits,
// however it exits. Readers open it again through /proc/self/fd, each with
// its own offset, and get a real *os.File (so sendfile applies).
type blobFile struct {
	f      *os.File
	Digest digest.Digest
}

var (
	bigBlobOnce sync.Once
	bigBlob     *blobFile
	bigBlobErr  error
)

func benchBlob(b *testing.B) *blobFile {
	b.Helper()
	bigBlobOnce.Do(func() {
		start := time.Now()
		bigBlob, bigBlobErr = generateBlob()
		if bigBlobErr == nil {
			b.Logf("generated the 1 GiB blob %s in %v", bigBlob.Digest, time.Since(start).Round(time.Millisecond))
		}
	})
	if bigBlobErr != nil {
		b.Fatalf("generating the 1 GiB blob: %v", bigBlobErr)
	}
	return bigBlob
}

func generateBlob() (*blobFile, error) {
	dir, err := os.MkdirTemp("", "quayctl-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	name := filepath.Join(dir, "blob")
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	if err := os.Remove(name); err != nil {
		f.Close()
		return nil, err
	}
	rng := rand.NewChaCha8([32]byte{'q', 'u', 'a', 'y', 'c', 't', 'l', '-', 'b', 'e', 'n', 'c', 'h'})
	h := sha256.New()
	buf := make([]byte, 4<<20)
	for n := 0; n < blobSize; n += len(buf) {
		_, _ = rng.Read(buf)
		h.Write(buf)
		if _, err := f.Write(buf); err != nil {
			f.Close()
			return nil, err
		}
	}
	// Written back now, so that background writeback of these pages does not
	// compete with the measurements.
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, err
	}
	bf := &blobFile{f: f, Digest: digest.NewDigest(digest.SHA256, h)}
	// Check that the /proc/self/fd reopening works here.
	r, err := bf.open()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("reopening the unlinked blob through /proc/self/fd: %w", err)
	}
	r.Close()
	return bf, nil
}

func (bf *blobFile) open() (*os.File, error) {
	return os.Open("/proc/self/fd/" + strconv.Itoa(int(bf.f.Fd())))
}

// Open returns a new reader of the blob, positioned at 0; the caller closes
// it (or hands it to an http.Request, which does).
func (bf *blobFile) Open(tb testing.TB) *os.File {
	tb.Helper()
	f, err := bf.open()
	if err != nil {
		tb.Fatal(err)
	}
	return f
}

// ---------------------------------------------------------------------------
// Clients.

// benchClient is an HTTP/1.1 client with enough idle connections for the
// concurrent benchmarks and no transparent gzip.
func benchClient(tb testing.TB) *http.Client {
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
		MaxIdleConns:        4 * manifestClients,
		MaxIdleConnsPerHost: 4 * manifestClients,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	tb.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// do sends one request with basic auth and returns the status and body.
func do(tb testing.TB, c *http.Client, method, u string, body []byte, hdr map[string]string) (int, http.Header, []byte) {
	tb.Helper()
	req, err := http.NewRequest(method, u, bytes.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	req.SetBasicAuth(benchUser, benchPassword)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

// pushFile uploads the blob monolithically (POST …/blobs/uploads/?digest=),
// the body streamed from the file: the transport hands an *os.File body to
// the socket without a user-space buffer.
func pushFile(c *http.Client, base, repo string, bf *blobFile, f *os.File) error {
	req, err := http.NewRequest(http.MethodPost, base+"/v2/"+repo+"/blobs/uploads/?digest="+bf.Digest.String(), f)
	if err != nil {
		f.Close()
		return err
	}
	req.ContentLength = blobSize
	req.Header.Set("Content-Type", "application/octet-stream")
	req.SetBasicAuth(benchUser, benchPassword)
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("push: %s %s", resp.Status, b)
	}
	if got := resp.Header.Get("Docker-Content-Digest"); got != bf.Digest.String() {
		return fmt.Errorf("push: Docker-Content-Digest %q, want %s", got, bf.Digest)
	}
	return nil
}

// pullTo downloads u into io.Discard through a 256 KiB buffer (the same
// client code for the registry and the reference file server).
func pullTo(c *http.Client, u string, basicAuth bool, buf []byte) error {
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	if basicAuth {
		req.SetBasicAuth(benchUser, benchPassword)
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("GET %s: %s %s", u, resp.Status, b)
	}
	// struct{io.Writer} hides io.Discard's ReaderFrom so buf is used.
	n, err := io.CopyBuffer(struct{ io.Writer }{io.Discard}, resp.Body, buf)
	if err != nil {
		return fmt.Errorf("GET %s: after %d bytes: %w", u, n, err)
	}
	if n != blobSize {
		return fmt.Errorf("GET %s: %d bytes, want %d", u, n, blobSize)
	}
	return nil
}

// ---------------------------------------------------------------------------
// References.

// sha256Time is Go's sha256 over the blob file: the cost of reading the
// bytes and hashing them, which every push pays at least.
func sha256Time(b *testing.B, bf *blobFile) time.Duration {
	b.Helper()
	f := bf.Open(b)
	defer f.Close()
	start := time.Now()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		b.Fatal(err)
	}
	d := time.Since(start)
	if got := digest.NewDigest(digest.SHA256, h); got != bf.Digest {
		b.Fatalf("sha256 reference: %s, want %s", got, bf.Digest)
	}
	return d
}

// diskTime writes the blob through the LocalStorage driver's own writer
// (under dir) with a 1 MiB user-space buffer, as the upload handler does,
// and commits it (fsync, rename): the durable write rate of the storage
// file system with the driver's write pattern, without network or hashing.
func diskTime(b *testing.B, bf *blobFile, dir string) time.Duration {
	b.Helper()
	src := bf.Open(b)
	defer src.Close()
	d, err := local.New(map[string]any{"storage_path": filepath.Join(dir, "disk-reference")})
	if err != nil {
		b.Fatal(err)
	}
	ctx := b.Context()
	const name = "reference"
	w, err := d.Writer(ctx, name, false)
	if err != nil {
		b.Fatal(err)
	}
	defer settleDisk(b, dir)
	defer func() { _ = d.Delete(ctx, name) }()
	start := time.Now()
	// The struct wrappers keep io.CopyBuffer from using ReadFrom/WriteTo.
	if _, err := io.CopyBuffer(struct{ io.Writer }{w}, struct{ io.Reader }{src}, make([]byte, 1<<20)); err != nil {
		b.Fatal(err)
	}
	if err := w.Commit(ctx); err != nil {
		b.Fatal(err)
	}
	return time.Since(start)
}

// timedRound runs op with the benchmark timer and a resident-memory watch
// around it (after a GC, so earlier garbage does not count), adds the
// watch's peak to peak and returns how long op took.
func timedRound(b *testing.B, peak *peakRSS, op func() error) (time.Duration, error) {
	runtime.GC()
	w := watchRSS("self", rssInterval)
	b.StartTimer()
	start := time.Now()
	err := op()
	d := time.Since(start)
	b.StopTimer()
	peak.add(w.Stop())
	return d, err
}

// settleDisk waits, untimed, until no upload's bytes are left under dir
// (the registry deletes a duplicate upload after answering) and then
// syncs the file system. On a file system mounted with discard, the next
// fsync would otherwise also pay for trimming the blocks that earlier
// deletions freed — the reference's scratch file, the previous round's
// duplicate — and the measured push would include work that is not its own.
func settleDisk(b *testing.B, dir string) {
	b.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		left := 0
		_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() && filepath.Base(filepath.Dir(p)) == "uploads" {
				left++
			}
			return nil
		})
		if left == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	f, err := os.Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := unix.Syncfs(int(f.Fd())); err != nil {
		b.Fatal(err)
	}
}

// startFileServer serves the blob with nothing but net/http on a loopback
// port: http.ServeContent over an *os.File, which is what http.FileServer
// does and what the registry's blob GET does.
func startFileServer(b *testing.B, bf *blobFile) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	modTime := time.Unix(0, 0)
	hs := &http.Server{ReadHeaderTimeout: 30 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, err := bf.open()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		defer f.Close()
		w.Header().Set("Content-Type", "application/octet-stream")
		http.ServeContent(w, r, "", modTime, f)
	})}
	go func() { _ = hs.Serve(ln) }()
	b.Cleanup(func() { _ = hs.Close() })
	return "http://" + ln.Addr().String() + "/blob"
}

func mbps(bytes int64, d time.Duration) float64 { return float64(bytes) / 1e6 / d.Seconds() }

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}

// ---------------------------------------------------------------------------
// Push and pull of 1 GiB.

// Rounds of the 1 GiB benchmarks per op. Each round measures the subject and
// its reference back to back (alternating which goes first). Rates are the
// medians over all rounds, and a ratio is the median of the rounds' ratios:
// a busy neighbour on a shared machine moves those less than any single
// measurement, and it slows a subject and the reference measured next to
// it alike.
const (
	pushRounds = 7
	pullRounds = 9
)

// samples are durations of 1 GiB transfers.
type samples []time.Duration

func (s samples) median() time.Duration {
	c := slices.Clone(s)
	slices.Sort(c)
	if len(c)%2 == 1 {
		return c[len(c)/2]
	}
	return (c[len(c)/2-1] + c[len(c)/2]) / 2
}

// rate is the median rate in MB/s (10^6 bytes, as go test's MB/s column).
func (s samples) rate() float64 { return float64(blobSize) / 1e6 / s.median().Seconds() }

// ratio is the median over rounds of ref[i]/s[i], the subject's rate as a
// fraction of the reference's rate in the same round.
func (s samples) ratio(ref samples) float64 {
	r := make([]float64, len(s))
	for i := range s {
		r[i] = ref[i].Seconds() / s[i].Seconds()
	}
	slices.Sort(r)
	if len(r)%2 == 1 {
		return r[len(r)/2]
	}
	return (r[len(r)/2-1] + r[len(r)/2]) / 2
}

func (s samples) ratios(ref samples) string {
	parts := make([]string, len(s))
	for i := range s {
		parts[i] = fmt.Sprintf("%.2f", ref[i].Seconds()/s[i].Seconds())
	}
	return strings.Join(parts, " ")
}

func (s samples) String() string {
	parts := make([]string, len(s))
	for i, d := range s {
		parts[i] = fmt.Sprintf("%.0f", float64(blobSize)/1e6/d.Seconds())
	}
	return strings.Join(parts, " ")
}

// peakRSS keeps the largest peak seen by watchRSS.
type peakRSS struct {
	bytes  int64
	detail string
}

func (p *peakRSS) add(n int64, detail string) {
	if n > p.bytes {
		p.bytes, p.detail = n, detail
	}
}

// BenchmarkPush1GiB uploads the 1 GiB blob monolithically to a registry on
// SQLite with local storage, against Go's sha256 over the same file; the
// durable write rate of the storage file system is reported for context.
func BenchmarkPush1GiB(b *testing.B) {
	if testing.Short() {
		b.Skip("1 GiB benchmark")
	}
	bf := benchBlob(b)
	reg := startRegistry(b, dialects(b)["sqlite"](b), nil)
	reg.createUser(b, benchUser, benchPassword)
	c := benchClient(b)
	if code, _, body := do(b, c, http.MethodGet, reg.URL+"/v2/", nil, nil); code != http.StatusOK {
		b.Fatalf("GET /v2/: %d %s", code, body)
	}
	idle, err := idleRSS()
	if err != nil {
		b.Fatal(err)
	}

	var sha, disk, push samples
	var peak peakRSS
	settleDisk(b, reg.Dir) // what earlier benchmarks deleted is trimmed now, not in round 1
	b.SetBytes(pushRounds * blobSize)
	b.ResetTimer()
	b.StopTimer()
	for i := 0; i < b.N; i++ {
		for r := 0; r < pushRounds; r++ {
			refs := func() {
				sha = append(sha, sha256Time(b, bf))
				disk = append(disk, diskTime(b, bf, reg.Dir))
			}
			if r%2 == 0 {
				refs()
			}
			f := bf.Open(b)
			d, err := timedRound(b, &peak, func() error { return pushFile(c, reg.URL, "bench/big", bf, f) })
			push = append(push, d)
			settleDisk(b, reg.Dir)
			if err != nil {
				b.Fatal(err)
			}
			if r%2 == 1 {
				refs()
			}
		}
	}
	pushR, shaR, diskR := push.rate(), sha.rate(), disk.rate()
	ratio, diskRatio := push.ratio(sha), push.ratio(disk)
	b.ReportMetric(pushR, "push_MB/s")
	b.ReportMetric(shaR, "sha256_MB/s")
	b.ReportMetric(ratio, "push/sha256")
	b.ReportMetric(diskR, "disk_fsync_MB/s")
	b.ReportMetric(diskRatio, "push/disk_fsync")
	b.ReportMetric(float64(peak.bytes)/mib, "peak_RSS_MiB")
	b.ReportMetric(float64(idle)/mib, "idle_RSS_MiB")
	b.Logf("push 1 GiB: %.0f MB/s vs sha256 %.0f MB/s = %.2f× (target ≥ %.1f×: %s); disk write+fsync of the same file %.0f MB/s (push = %.2f× of it)",
		pushR, shaR, ratio, pushTarget, verdict(ratio >= pushTarget), diskR, diskRatio)
	b.Logf("push 1 GiB: rounds (MB/s): push %v; sha256 %v; disk write+fsync %v; push/sha256 %s; push/disk %s",
		push, sha, disk, push.ratios(sha), push.ratios(disk))
	b.Logf("push 1 GiB: test process peak RSS %.1f MiB (%s; target < %d MiB: %s); idle with a fresh server %.1f MiB (target < %d MiB: %s)",
		float64(peak.bytes)/mib, peak.detail, transferRSSTarget/mib, verdict(peak.bytes < transferRSSTarget), float64(idle)/mib, idleRSSTarget/mib, verdict(idle < idleRSSTarget))
}

// BenchmarkPull1GiB downloads the 1 GiB blob from a registry on SQLite with
// local storage, against a bare net/http file server of the same bytes.
func BenchmarkPull1GiB(b *testing.B) {
	if testing.Short() {
		b.Skip("1 GiB benchmark")
	}
	bf := benchBlob(b)
	reg := startRegistry(b, dialects(b)["sqlite"](b), nil)
	reg.createUser(b, benchUser, benchPassword)
	c := benchClient(b)
	if err := pushFile(c, reg.URL, "bench/big", bf, bf.Open(b)); err != nil {
		b.Fatal(err)
	}
	refURL := startFileServer(b, bf)
	blobURL := reg.URL + "/v2/bench/big/blobs/" + bf.Digest.String()
	buf := make([]byte, 256<<10)

	var ref, pull samples
	var peak, refPeak peakRSS
	b.SetBytes(pullRounds * blobSize)
	b.ResetTimer()
	b.StopTimer()
	for i := 0; i < b.N; i++ {
		for r := 0; r < pullRounds; r++ {
			// Both sides run under the same conditions: a collected heap
			// and the resident-memory watch.
			refs := func() {
				runtime.GC()
				w := watchRSS("self", rssInterval)
				start := time.Now()
				err := pullTo(c, refURL, false, buf)
				ref = append(ref, time.Since(start))
				refPeak.add(w.Stop())
				if err != nil {
					b.Fatal(err)
				}
			}
			if r%2 == 0 {
				refs()
			}
			d, err := timedRound(b, &peak, func() error { return pullTo(c, blobURL, true, buf) })
			pull = append(pull, d)
			if err != nil {
				b.Fatal(err)
			}
			if r%2 == 1 {
				refs()
			}
		}
	}
	pullR, refR, ratio := pull.rate(), ref.rate(), pull.ratio(ref)
	b.ReportMetric(pullR, "pull_MB/s")
	b.ReportMetric(refR, "fileserver_MB/s")
	b.ReportMetric(ratio, "pull/fileserver")
	b.ReportMetric(float64(peak.bytes)/mib, "peak_RSS_MiB")
	b.Logf("pull 1 GiB: %.0f MB/s vs file server %.0f MB/s = %.2f× (target ≥ %.1f×: %s)",
		pullR, refR, ratio, pullTarget, verdict(ratio >= pullTarget))
	b.Logf("pull 1 GiB: rounds (MB/s): pull %v; file server %v; pull/fileserver %s", pull, ref, pull.ratios(ref))
	b.Logf("pull 1 GiB: test process peak RSS %.1f MiB (%s; target < %d MiB: %s); %.1f MiB while the file server sent it",
		float64(peak.bytes)/mib, peak.detail, transferRSSTarget/mib, verdict(peak.bytes < transferRSSTarget), float64(refPeak.bytes)/mib)
}

// ---------------------------------------------------------------------------
// Manifest GET by tag under concurrency.

// BenchmarkManifestGetByTag GETs /v2/<repo>/manifests/v1 from manifestClients
// concurrent clients over keep-alive connections, with a bearer token from
// the token endpoint and with basic auth (bcrypt once, then the credential
// cache), on SQLite and PostgreSQL.
func BenchmarkManifestGetByTag(b *testing.B) {
	if testing.Short() {
		b.Skip("end-to-end benchmark")
	}
	dbs := dialects(b)
	names := make([]string, 0, len(dbs))
	for name := range dbs {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		b.Run(name, func(b *testing.B) {
			reg := startRegistry(b, dbs[name](b), nil)
			reg.createUser(b, benchUser, benchPassword)
			c := benchClient(b)
			const repo = "bench/app"
			manifest := pushSmallImage(b, c, reg, repo, "v1")
			token := benchToken(b, c, reg, "repository:"+repo+":pull")
			u := reg.URL + "/v2/" + repo + "/manifests/v1"
			b.Run("bearer", func(b *testing.B) {
				getManifests(b, c, u, len(manifest), func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) })
			})
			b.Run("basic", func(b *testing.B) {
				getManifests(b, c, u, len(manifest), func(r *http.Request) { r.SetBasicAuth(benchUser, benchPassword) })
			})
		})
	}
}

func getManifests(b *testing.B, c *http.Client, u string, size int, auth func(*http.Request)) {
	// Connections and the credential cache are warm before timing.
	for range 4 {
		if err := getManifest(c, u, size, auth); err != nil {
			b.Fatal(err)
		}
	}
	var failed atomic.Bool
	b.SetParallelism(max(1, manifestClients/runtime.GOMAXPROCS(0)))
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := getManifest(c, u, size, auth); err != nil {
				if failed.CompareAndSwap(false, true) {
					b.Error(err)
				}
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}

func getManifest(c *http.Client, u string, size int, auth func(*http.Request)) error {
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", ocispec.MediaTypeImageManifest)
	auth(req)
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || n != int64(size) {
		return fmt.Errorf("GET %s: %s, %d bytes (want 200, %d bytes)", u, resp.Status, n, size)
	}
	return nil
}

// pushSmallImage pushes a config blob, one layer and an image manifest
// tagged tag, and returns the manifest.
func pushSmallImage(tb testing.TB, c *http.Client, reg *registry, repo, tag string) []byte {
	tb.Helper()
	blob := func(content []byte) ocispec.Descriptor {
		d := digest.FromBytes(content)
		code, _, body := do(tb, c, http.MethodPost, reg.URL+"/v2/"+repo+"/blobs/uploads/?digest="+d.String(), content,
			map[string]string{"Content-Type": "application/octet-stream"})
		if code != http.StatusCreated {
			tb.Fatalf("push blob: %d %s", code, body)
		}
		return ocispec.Descriptor{Digest: d, Size: int64(len(content))}
	}
	config := blob([]byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:0000000000000000000000000000000000000000000000000000000000000000"]}}`))
	config.MediaType = ocispec.MediaTypeImageConfig
	layer := blob(bytes.Repeat([]byte("quayctl layer "), 1000))
	layer.MediaType = ocispec.MediaTypeImageLayerGzip
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: config, Layers: []ocispec.Descriptor{layer}}
	m.SchemaVersion = 2
	manifest, err := json.Marshal(m)
	if err != nil {
		tb.Fatal(err)
	}
	code, _, body := do(tb, c, http.MethodPut, reg.URL+"/v2/"+repo+"/manifests/"+tag, manifest,
		map[string]string{"Content-Type": ocispec.MediaTypeImageManifest})
	if code != http.StatusCreated {
		tb.Fatalf("push manifest: %d %s", code, body)
	}
	return manifest
}

// benchToken runs the Docker token flow with basic auth.
func benchToken(tb testing.TB, c *http.Client, reg *registry, scope string) string {
	tb.Helper()
	q := url.Values{"service": {reg.Addr}, "scope": {scope}}
	code, _, body := do(tb, c, http.MethodGet, reg.URL+"/v2/auth?"+q.Encode(), nil, nil)
	if code != http.StatusOK {
		tb.Fatalf("token: %d %s", code, body)
	}
	var tr struct{ Token string }
	if err := json.Unmarshal(body, &tr); err != nil || tr.Token == "" {
		tb.Fatalf("token response %q: %v", body, err)
	}
	return tr.Token
}

// ---------------------------------------------------------------------------
// The real binary in its own process.

// BenchmarkServeProcessRSS builds cmd/quayctl (or takes QUAYCTL_BENCH_BIN),
// runs `quayctl serve` on the embedded default (SQLite, local storage) in a
// data directory of its own, and measures that process alone: resident
// memory idle after start-up, and its peak while it receives (monolithic
// push) and then serves the 1 GiB blob. One op is one push plus one pull.
func BenchmarkServeProcessRSS(b *testing.B) {
	if testing.Short() {
		b.Skip("1 GiB benchmark")
	}
	bf := benchBlob(b)
	bin := quayctlBinary(b)
	srv := startServeProcess(b, bin)
	c := benchClient(b)

	time.Sleep(2 * time.Second) // let start-up garbage be collected and scavenged
	idle, err := rssBytes(srv.pid)
	if err != nil {
		b.Fatal(err)
	}
	startHWM, _ := procStatusKiB(srv.pid, "VmHWM")

	code, _, body := do(b, c, http.MethodPost, srv.url+"/api/v1/user/initialize",
		[]byte(`{"username":"`+benchUser+`","password":"`+benchPassword+`","email":"b@example.com"}`),
		map[string]string{"Content-Type": "application/json"})
	if code != http.StatusOK {
		b.Fatalf("POST /api/v1/user/initialize: %d %s", code, body)
	}
	buf := make([]byte, 256<<10)
	blobURL := srv.url + "/v2/bench/big/blobs/" + bf.Digest.String()

	var pushD, pullD time.Duration
	var pushPeak, pullPeak peakRSS
	b.SetBytes(2 * blobSize)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		w := watchRSS(srv.pid, rssInterval)
		start := time.Now()
		err := pushFile(c, srv.url, "bench/big", bf, bf.Open(b))
		pushD += time.Since(start)
		pushPeak.add(w.Stop())
		if err != nil {
			b.Fatal(err)
		}

		w = watchRSS(srv.pid, rssInterval)
		start = time.Now()
		err = pullTo(c, blobURL, true, buf)
		pullD += time.Since(start)
		pullPeak.add(w.Stop())
		if err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	c.CloseIdleConnections()
	time.Sleep(2 * time.Second)
	after, _ := rssBytes(srv.pid)

	n := int64(b.N) * blobSize
	b.ReportMetric(float64(idle)/mib, "idle_RSS_MiB")
	b.ReportMetric(float64(pushPeak.bytes)/mib, "push_peak_RSS_MiB")
	b.ReportMetric(float64(pullPeak.bytes)/mib, "pull_peak_RSS_MiB")
	b.ReportMetric(mbps(n, pushD), "push_MB/s")
	b.ReportMetric(mbps(n, pullD), "pull_MB/s")
	b.Logf("quayctl serve (pid %s): idle RSS %.1f MiB (target < %d MiB: %s; start-up high-water mark %.1f MiB)",
		srv.pid, float64(idle)/mib, idleRSSTarget/mib, verdict(idle < idleRSSTarget), float64(startHWM<<10)/mib)
	b.Logf("quayctl serve: peak RSS pushing 1 GiB %.1f MiB (%s), pulling %.1f MiB (%s); target < %d MiB: %s; %.1f MiB 2 s after",
		float64(pushPeak.bytes)/mib, pushPeak.detail, float64(pullPeak.bytes)/mib, pullPeak.detail, transferRSSTarget/mib,
		verdict(pushPeak.bytes < transferRSSTarget && pullPeak.bytes < transferRSSTarget), float64(after)/mib)
	b.Logf("quayctl serve: push %.0f MB/s, pull %.0f MB/s", mbps(n, pushD), mbps(n, pullD))
}

// quayctlBinary returns $QUAYCTL_BENCH_BIN or builds cmd/quayctl as
// `make build` does.
func quayctlBinary(b *testing.B) string {
	b.Helper()
	if p := os.Getenv("QUAYCTL_BENCH_BIN"); p != "" {
		return p
	}
	root, err := moduleRoot()
	if err != nil {
		b.Fatal(err)
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		b.Fatalf("building quayctl: %v (or set QUAYCTL_BENCH_BIN)", err)
	}
	out := filepath.Join(b.TempDir(), "quayctl")
	cmd := exec.Command(goBin, "build", "-tags", benchBuildTags, "-o", out, "./cmd/quayctl")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	start := time.Now()
	if msg, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("go build ./cmd/quayctl: %v\n%s", err, msg)
	}
	b.Logf("built %s in %v", out, time.Since(start).Round(time.Millisecond))
	return out
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working directory")
		}
		dir = parent
	}
}

type serveProcess struct {
	pid string
	url string
}

// startServeProcess runs `bin serve` on a free loopback port with a data
// directory of its own and waits until it answers. The process is stopped
// (SIGTERM, then SIGKILL) when the benchmark ends, and dies with the test
// binary if that is killed.
func startServeProcess(b *testing.B, bin string) *serveProcess {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	dir := b.TempDir()
	logPath := filepath.Join(dir, "serve.log")
	logf, err := os.Create(logPath)
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", "--listen", addr, "--data-dir", filepath.Join(dir, "data"))
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "DEBUGLOG=") || strings.HasPrefix(kv, "QUAY")
	})
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		b.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	b.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		logf.Close()
	})
	serveLog := func() string {
		s, _ := os.ReadFile(logPath)
		if len(s) > 4000 {
			s = s[len(s)-4000:]
		}
		return string(s)
	}
	u := "http://" + addr
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-exited:
			b.Fatalf("quayctl serve exited during start-up:\n%s", serveLog())
		default:
		}
		resp, err := http.Get(u + "/_internal_ping")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("quayctl serve not ready after 60s:\n%s", serveLog())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return &serveProcess{pid: strconv.Itoa(cmd.Process.Pid), url: u}
}
