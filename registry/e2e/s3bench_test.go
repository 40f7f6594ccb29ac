//go:build linux

package e2e

// The 1 GiB benchmarks on S3 storage (docs/benchmarks.md): a registry whose
// storage is a bucket on the package's versitygw (internal/tests3, loopback),
// against the AWS SDK talking to the same gateway directly. The file sorts
// after bench_test.go so that `make bench` runs the local-storage 1 GiB
// benchmarks first, before these leave gigabytes of deleted bucket data and
// SDK connections behind in the process.
//
//	BenchmarkS3Push1GiB  a streamed upload (POST, one PATCH, PUT) vs the SDK's
//	                     upload manager putting the same file
//	BenchmarkS3Pull1GiB  blob GET in redirect mode (the client follows the 307
//	                     to S3) and in proxy mode (FEATURE_PROXY_STORAGE) vs
//	                     the SDK's GetObject of the same object

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/s3/manager"
	s3api "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/quayctl/quayctl/internal/tests3"
	"github.com/quayctl/quayctl/registry/server"
)

const (
	s3PushRounds = 3
	s3PullRounds = 3

	s3BenchRepo = "bench/big"
	// s3RefKey is where the SDK reference puts its copy, beside the
	// registry's objects in the same bucket.
	s3RefKey = "bench-reference/blob"
)

// s3Bench is a registry on a bucket of the shared gateway, and an SDK client
// of the same gateway.
type s3Bench struct {
	dbURI  string
	srv    *tests3.Server
	bucket string
	sdk    *s3api.Client
}

func newS3Bench(b *testing.B) *s3Bench {
	b.Helper()
	srv := tests3.Shared(b)
	sb := &s3Bench{
		dbURI:  "sqlite:///" + filepath.Join(b.TempDir(), "quay.db"),
		srv:    srv,
		bucket: srv.NewBucket(b),
	}
	// The same client options as the registry's S3 driver
	// (registry/storage/s3): path-style addressing and only the checksums the
	// API requires, so both sides do the same protocol work per byte.
	sb.sdk = s3api.New(s3api.Options{
		Region:                     tests3.Region,
		Credentials:                credentials.NewStaticCredentialsProvider(srv.AccessKey, srv.SecretKey, ""),
		BaseEndpoint:               aws.String(srv.Endpoint),
		UsePathStyle:               true,
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
	return sb
}

// start runs a registry on the bench's database and bucket. Two registries
// started from one s3Bench share both, so a blob pushed through one can be
// pulled through the other.
func (sb *s3Bench) start(b *testing.B, proxy bool) *registry {
	b.Helper()
	// "localhost" rather than the registry's 127.0.0.1: another host, as in
	// production, so a client following a redirect drops its registry
	// credentials.
	endpoint := strings.Replace(sb.srv.Endpoint, "127.0.0.1", "localhost", 1)
	return startRegistry(b, sb.dbURI, func(s *server.Settings) {
		s.Locations = map[string]server.Location{"default": {Driver: "S3Storage", Params: map[string]any{
			"storage_path": "/" + s3Root, "s3_bucket": sb.bucket, "s3_region": tests3.Region,
			"s3_access_key": sb.srv.AccessKey, "s3_secret_key": sb.srv.SecretKey, "endpoint_url": endpoint,
		}}}
		s.Preference = []string{"default"}
		s.ProxyStorage = proxy
	})
}

// uploadTime puts the blob file to s3RefKey with the SDK's upload manager
// (its defaults: 5 MiB parts, 5 in flight, read straight from the file).
func (sb *s3Bench) uploadTime(b *testing.B, bf *blobFile) time.Duration {
	b.Helper()
	f := bf.Open(b)
	defer f.Close()
	up := manager.NewUploader(sb.sdk)
	start := time.Now()
	if _, err := up.Upload(context.Background(), &s3api.PutObjectInput{
		Bucket: aws.String(sb.bucket), Key: aws.String(s3RefKey), Body: f,
		ContentType: aws.String("application/octet-stream"),
	}); err != nil {
		b.Fatalf("SDK upload of the reference object: %v", err)
	}
	return time.Since(start)
}

// getTime reads key with the SDK's GetObject into io.Discard through buf,
// the same client-side copy as pullTo.
func (sb *s3Bench) getTime(b *testing.B, key string, buf []byte) time.Duration {
	b.Helper()
	start := time.Now()
	out, err := sb.sdk.GetObject(context.Background(), &s3api.GetObjectInput{Bucket: aws.String(sb.bucket), Key: aws.String(key)})
	if err != nil {
		b.Fatalf("SDK GetObject %s: %v", key, err)
	}
	n, err := io.CopyBuffer(struct{ io.Writer }{io.Discard}, out.Body, buf)
	out.Body.Close()
	d := time.Since(start)
	if err != nil || n != blobSize {
		b.Fatalf("SDK GetObject %s: %d bytes, want %d: %v", key, n, blobSize, err)
	}
	return d
}

// pushStreamed uploads the blob as podman does: POST to open a session, the
// whole blob in one PATCH streamed from a reader (not an *os.File, so the
// transport copies it through user space, as it does a podman layer stream),
// then PUT ?digest= to finish.
func pushStreamed(c *http.Client, base, repo string, bf *blobFile, f *os.File) error {
	defer f.Close()
	send := func(method, u string, body io.Reader, length int64, want int) (*http.Response, error) {
		req, err := http.NewRequest(method, u, body)
		if err != nil {
			return nil, err
		}
		req.ContentLength = length
		if body != nil {
			req.Header.Set("Content-Type", "application/octet-stream")
		}
		req.SetBasicAuth(benchUser, benchPassword)
		resp, err := c.Do(req)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", method, u, err)
		}
		defer resp.Body.Close()
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		if resp.StatusCode != want {
			return nil, fmt.Errorf("%s %s: %s %s", method, u, resp.Status, msg)
		}
		return resp, nil
	}
	resolve := func(loc string) string {
		if strings.HasPrefix(loc, "/") {
			return base + loc
		}
		return loc
	}
	resp, err := send(http.MethodPost, base+"/v2/"+repo+"/blobs/uploads/", nil, 0, http.StatusAccepted)
	if err != nil {
		return err
	}
	loc := resolve(resp.Header.Get("Location"))
	resp, err = send(http.MethodPatch, loc, struct{ io.Reader }{f}, blobSize, http.StatusAccepted)
	if err != nil {
		return err
	}
	loc = resolve(resp.Header.Get("Location"))
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	resp, err = send(http.MethodPut, loc+sep+"digest="+bf.Digest.String(), nil, 0, http.StatusCreated)
	if err != nil {
		return err
	}
	if got := resp.Header.Get("Docker-Content-Digest"); got != bf.Digest.String() {
		return fmt.Errorf("push: Docker-Content-Digest %q, want %s", got, bf.Digest)
	}
	return nil
}

// redirectClient follows redirects (as podman and skopeo do) and has no
// transparent gzip.
func redirectClient(b *testing.B) *http.Client {
	c := benchClient(b)
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= 5 {
			return errors.New("more than 5 redirects")
		}
		return nil
	}
	return c
}

// BenchmarkS3Push1GiB pushes the 1 GiB blob to a registry on S3 storage and
// uploads the same file to the same gateway with the SDK's upload manager.
func BenchmarkS3Push1GiB(b *testing.B) {
	if testing.Short() {
		b.Skip("1 GiB benchmark")
	}
	bf := benchBlob(b)
	sb := newS3Bench(b)
	reg := sb.start(b, false)
	reg.createUser(b, benchUser, benchPassword)
	c := benchClient(b)
	if code, _, body := do(b, c, http.MethodGet, reg.URL+"/v2/", nil, nil); code != http.StatusOK {
		b.Fatalf("GET /v2/: %d %s", code, body)
	}

	var push, ref samples
	var peak peakRSS
	b.SetBytes(s3PushRounds * blobSize)
	b.ResetTimer()
	b.StopTimer()
	for i := 0; i < b.N; i++ {
		for r := 0; r < s3PushRounds; r++ {
			refs := func() { ref = append(ref, sb.uploadTime(b, bf)) }
			if r%2 == 0 {
				refs()
			}
			f := bf.Open(b)
			d, err := timedRound(b, &peak, func() error { return pushStreamed(c, reg.URL, s3BenchRepo, bf, f) })
			push = append(push, d)
			if err != nil {
				b.Fatal(err)
			}
			if r%2 == 1 {
				refs()
			}
		}
	}
	pushR, refR, ratio := push.rate(), ref.rate(), push.ratio(ref)
	b.ReportMetric(pushR, "push_MB/s")
	b.ReportMetric(refR, "sdk_upload_MB/s")
	b.ReportMetric(ratio, "push/sdk_upload")
	b.ReportMetric(float64(peak.bytes)/mib, "peak_RSS_MiB")
	b.Logf("S3 push 1 GiB: %.0f MB/s vs the SDK's upload manager %.0f MB/s = %.2f×", pushR, refR, ratio)
	b.Logf("S3 push 1 GiB: rounds (MB/s): push %v; SDK upload %v; push/sdk_upload %s", push, ref, push.ratios(ref))
	b.Logf("S3 push 1 GiB: test process peak RSS %.1f MiB (%s; target < %d MiB: %s)",
		float64(peak.bytes)/mib, peak.detail, transferRSSTarget/mib, verdict(peak.bytes < transferRSSTarget))
}

// BenchmarkS3Pull1GiB pulls the 1 GiB blob from registries on S3 storage in
// both modes, and reads the same object from the gateway with the SDK.
func BenchmarkS3Pull1GiB(b *testing.B) {
	if testing.Short() {
		b.Skip("1 GiB benchmark")
	}
	bf := benchBlob(b)
	sb := newS3Bench(b)
	redirectReg := sb.start(b, false)
	redirectReg.createUser(b, benchUser, benchPassword)
	c := redirectClient(b)
	if err := pushStreamed(c, redirectReg.URL, s3BenchRepo, bf, bf.Open(b)); err != nil {
		b.Fatal(err)
	}
	proxyReg := sb.start(b, true) // same database and bucket: the blob is there
	blobPath := "/v2/" + s3BenchRepo + "/blobs/" + bf.Digest.String()
	// The redirect really goes to S3 (a 307 to the gateway), or the
	// redirect-mode figure would measure something else.
	req, _ := http.NewRequest(http.MethodGet, redirectReg.URL+blobPath, nil)
	req.SetBasicAuth(benchUser, benchPassword)
	resp, err := noRedirects.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusTemporaryRedirect || !strings.Contains(loc, "X-Amz-Signature=") {
		b.Fatalf("GET %s in redirect mode: %s to %q, want a 307 to a presigned S3 URL", blobPath, resp.Status, loc)
	}
	key := s3Storage{bucket: sb.bucket}.blobKey(bf.Digest)
	buf := make([]byte, 256<<10)

	var redirect, proxy, ref samples
	var peak peakRSS
	b.SetBytes(2 * s3PullRounds * blobSize)
	b.ResetTimer()
	b.StopTimer()
	for i := 0; i < b.N; i++ {
		for r := 0; r < s3PullRounds; r++ {
			// Rotate the order of the three transfers from round to round.
			steps := []func(){
				func() { ref = append(ref, sb.getTime(b, key, buf)) },
				func() {
					runtime.GC()
					b.StartTimer()
					start := time.Now()
					err := pullTo(c, redirectReg.URL+blobPath, true, buf)
					redirect = append(redirect, time.Since(start))
					b.StopTimer()
					if err != nil {
						b.Fatalf("redirect mode: %v", err)
					}
				},
				func() {
					d, err := timedRound(b, &peak, func() error { return pullTo(c, proxyReg.URL+blobPath, true, buf) })
					proxy = append(proxy, d)
					if err != nil {
						b.Fatalf("proxy mode: %v", err)
					}
				},
			}
			for k := range steps {
				steps[(k+r)%len(steps)]()
			}
		}
	}
	redirectR, proxyR, refR := redirect.rate(), proxy.rate(), ref.rate()
	redirectRatio, proxyRatio := redirect.ratio(ref), proxy.ratio(ref)
	b.ReportMetric(redirectR, "redirect_MB/s")
	b.ReportMetric(proxyR, "proxy_MB/s")
	b.ReportMetric(refR, "sdk_get_MB/s")
	b.ReportMetric(redirectRatio, "redirect/sdk_get")
	b.ReportMetric(proxyRatio, "proxy/sdk_get")
	b.ReportMetric(float64(peak.bytes)/mib, "proxy_peak_RSS_MiB")
	b.Logf("S3 pull 1 GiB: redirect mode %.0f MB/s, proxy mode %.0f MB/s vs the SDK's GetObject %.0f MB/s = %.2f× and %.2f×",
		redirectR, proxyR, refR, redirectRatio, proxyRatio)
	b.Logf("S3 pull 1 GiB: rounds (MB/s): redirect %v; proxy %v; SDK GetObject %v; redirect/sdk_get %s; proxy/sdk_get %s",
		redirect, proxy, ref, redirect.ratios(ref), proxy.ratios(ref))
	b.Logf("S3 pull 1 GiB: test process peak RSS in proxy mode %.1f MiB (%s; target < %d MiB: %s)",
		float64(peak.bytes)/mib, peak.detail, transferRSSTarget/mib, verdict(peak.bytes < transferRSSTarget))
}
