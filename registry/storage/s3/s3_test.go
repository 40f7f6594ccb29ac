package s3

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	s3api "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/quayctl/quayctl/internal/tests3"
	"github.com/quayctl/quayctl/registry/storage"
	"github.com/quayctl/quayctl/registry/storage/testsuite"
)

func TestMain(m *testing.M) { tests3.Main(m) }

// styles are the three drivers' parameter spellings, each pointed at a
// bucket on the test server.
var styles = []struct {
	driver string
	params func(endpoint, bucket, ak, sk string) map[string]any
}{
	{NameS3, func(endpoint, bucket, ak, sk string) map[string]any {
		return map[string]any{
			"storage_path": "/datastorage/registry", "s3_bucket": bucket,
			"s3_access_key": ak, "s3_secret_key": sk, "endpoint_url": endpoint, "s3_region": tests3.Region,
		}
	}},
	{NameRadosGW, func(endpoint, bucket, ak, sk string) map[string]any {
		u, _ := url.Parse(endpoint)
		port, _ := strconv.Atoi(u.Port())
		return map[string]any{
			"hostname": u.Hostname(), "port": port, "is_secure": false, "storage_path": "/registry",
			"access_key": ak, "secret_key": sk, "bucket_name": bucket,
		}
	}},
	{NameRHOCS, func(endpoint, bucket, ak, sk string) map[string]any {
		u, _ := url.Parse(endpoint)
		// NooBaa configs often carry the scheme in hostname and is_secure as text.
		return map[string]any{
			"hostname": "http://" + u.Hostname(), "port": u.Port(), "is_secure": "false", "storage_path": "/",
			"access_key": ak, "secret_key": sk, "bucket_name": bucket, "minimum_chunk_size_mb": 5,
		}
	}},
}

func newDriver(t testing.TB, driver string, params map[string]any) *Driver {
	t.Helper()
	d, err := New(t.Context(), driver, params)
	if err != nil {
		t.Fatalf("New(%s): %v", driver, err)
	}
	return d
}

// newStyleDriver returns a driver on a fresh bucket and, when the test
// passes, checks that the bucket holds no object and no multipart upload:
// the suite only sees committed objects, this also catches tails and parts.
func newStyleDriver(t *testing.T, i int) *Driver {
	t.Helper()
	endpoint, bucket, ak, sk := tests3.NewBucket(t)
	d := newDriver(t, styles[i].driver, styles[i].params(endpoint, bucket, ak, sk))
	t.Cleanup(func() {
		if t.Failed() || t.Skipped() {
			return
		}
		if left := leftovers(t, d); len(left) > 0 {
			t.Errorf("left behind in bucket %s: %v", bucket, left)
		}
	})
	return d
}

// leftovers lists every object and multipart upload in the driver's bucket.
func leftovers(t testing.TB, d *Driver) []string {
	t.Helper()
	ctx := context.Background()
	keys, err := d.listKeys(ctx, "")
	if err != nil {
		t.Fatalf("listing bucket: %v", err)
	}
	ups, err := d.listUploads(ctx, "")
	if err != nil {
		t.Fatalf("listing multipart uploads: %v", err)
	}
	for _, u := range ups {
		keys = append(keys, "upload:"+aws.ToString(u.Key))
	}
	return keys
}

func TestDriver(t *testing.T) {
	for i, st := range styles {
		t.Run(st.driver, func(t *testing.T) {
			testsuite.Run(t, func(t *testing.T) storage.Driver { return newStyleDriver(t, i) })
		})
	}
}

func TestParseConfig(t *testing.T) {
	for _, tc := range []struct {
		name    string
		driver  string
		params  map[string]any
		want    Config
		wantErr string
	}{
		{
			name:   "S3 on AWS with the credential chain",
			driver: NameS3,
			params: map[string]any{"storage_path": "/datastorage/registry", "s3_bucket": "quay", "s3_region": "eu-west-1"},
			want:   Config{Driver: NameS3, Bucket: "quay", Root: "datastorage/registry", Region: "eu-west-1", PartSize: minPartSize, MaxCopyPart: maxPartSize},
		},
		{
			name:   "S3 with endpoint_url is path-style",
			driver: NameS3,
			params: map[string]any{"storage_path": "registry/", "s3_bucket": "quay", "s3_access_key": "AK", "s3_secret_key": "SK", "endpoint_url": "http://minio:9000/"},
			want: Config{Driver: NameS3, Bucket: "quay", Root: "registry", Region: defaultRegion, Endpoint: "http://minio:9000",
				PathStyle: true, AccessKey: "AK", SecretKey: "SK", PartSize: minPartSize, MaxCopyPart: maxPartSize},
		},
		{
			name:   "S3 host and port become an https endpoint, chunk sizes apply",
			driver: NameS3,
			params: map[string]any{"storage_path": "/r", "s3_bucket": "quay", "host": "s3.example.com", "port": 8443,
				"minimum_chunk_size_mb": 16, "maximum_chunk_size_gb": 1, "signature_version": "s3v4", "aws_session_token": "tok",
				"s3_access_key": "AK", "s3_secret_key": "SK"},
			want: Config{Driver: NameS3, Bucket: "quay", Root: "r", Region: defaultRegion, Endpoint: "https://s3.example.com:8443",
				PathStyle: true, AccessKey: "AK", SecretKey: "SK", SessionToken: "tok", PartSize: 16 * mib, MaxCopyPart: gib},
		},
		{
			name:   "RadosGW builds http endpoint from is_secure false",
			driver: NameRadosGW,
			params: map[string]any{"hostname": "rgw.local", "port": "7480", "is_secure": false, "storage_path": "/datastorage/registry",
				"access_key": "AK", "secret_key": "SK", "bucket_name": "quay", "maximum_chunk_size_mb": 100, "server_side_assembly": false},
			want: Config{Driver: NameRadosGW, Bucket: "quay", Root: "datastorage/registry", Region: defaultRegion, Endpoint: "http://rgw.local:7480",
				PathStyle: true, AccessKey: "AK", SecretKey: "SK", PartSize: minPartSize, MaxCopyPart: 100 * mib},
		},
		{
			name:   "RHOCS keeps the port already in hostname, minimum part is 5 MiB",
			driver: NameRHOCS,
			params: map[string]any{"hostname": "https://s3.openshift-storage.svc:443", "port": 443, "is_secure": true, "storage_path": "/",
				"access_key": "AK", "secret_key": "SK", "bucket_name": "quay", "minimum_chunk_size_mb": 1, "region_name": "noobaa"},
			want: Config{Driver: NameRHOCS, Bucket: "quay", Root: "", Region: "noobaa", Endpoint: "https://s3.openshift-storage.svc:443",
				PathStyle: true, AccessKey: "AK", SecretKey: "SK", PartSize: minPartSize, MaxCopyPart: maxPartSize},
		},
		{name: "S3 without bucket", driver: NameS3, params: map[string]any{"storage_path": "/r"}, wantErr: "parameter s3_bucket is required"},
		{name: "S3 without storage_path", driver: NameS3, params: map[string]any{"s3_bucket": "b"}, wantErr: "parameter storage_path is required"},
		{name: "S3 half a key pair", driver: NameS3, params: map[string]any{"storage_path": "/r", "s3_bucket": "b", "s3_access_key": "AK"}, wantErr: "set both s3_access_key and s3_secret_key"},
		{name: "S3 host with scheme", driver: NameS3, params: map[string]any{"storage_path": "/r", "s3_bucket": "b", "host": "https://x"}, wantErr: "without http:// or https://"},
		{name: "S3 bad endpoint_url", driver: NameS3, params: map[string]any{"storage_path": "/r", "s3_bucket": "b", "endpoint_url": "minio:9000"}, wantErr: "not an http:// or https:// URL"},
		{name: "signature v2", driver: NameS3, params: map[string]any{"storage_path": "/r", "s3_bucket": "b", "signature_version": "v2"}, wantErr: "signature_version \"v2\" is not supported"},
		{name: "bad chunk size", driver: NameS3, params: map[string]any{"storage_path": "/r", "s3_bucket": "b", "minimum_chunk_size_mb": "lots"}, wantErr: "minimum_chunk_size_mb must be a number"},
		{name: "RadosGW without is_secure", driver: NameRadosGW, params: map[string]any{"hostname": "h", "storage_path": "/r", "access_key": "a", "secret_key": "s", "bucket_name": "b"}, wantErr: "parameter is_secure is required"},
		{name: "RadosGW bad is_secure", driver: NameRadosGW, params: map[string]any{"hostname": "h", "is_secure": "maybe", "storage_path": "/r", "access_key": "a", "secret_key": "s", "bucket_name": "b"}, wantErr: "is_secure must be true or false"},
		{name: "RHOCS without keys", driver: NameRHOCS, params: map[string]any{"hostname": "h", "is_secure": true, "storage_path": "/r", "bucket_name": "b"}, wantErr: "parameter access_key is required"},
		{name: "not an S3 driver", driver: "AzureStorage", params: map[string]any{"storage_path": "/r"}, wantErr: "not an S3-compatible driver"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseConfig(tc.driver, tc.params)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseConfig error = %v, want it to contain %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "SK") {
					t.Errorf("error shows a secret: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("ParseConfig =\n %+v\nwant\n %+v", got, tc.want)
			}
		})
	}
}

// writeAll writes b in pieces of at most 1 MiB, as request bodies arrive.
func writeAll(t *testing.T, w storage.FileWriter, b []byte) {
	t.Helper()
	for off := 0; off < len(b); off += 1 << 20 {
		if _, err := w.Write(b[off:min(off+1<<20, len(b))]); err != nil {
			t.Fatalf("Write: %v", err)
		}
	}
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

func readAll(t *testing.T, d storage.Driver, p string) []byte {
	t.Helper()
	r, err := d.Reader(t.Context(), p, 0)
	if err != nil {
		t.Fatalf("Reader(%s): %v", p, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestResumeInAnotherInstance: an upload closed by one driver instance is
// continued by a new one (a restart, or another replica behind the load
// balancer), chunk after chunk, and only the tail after the last full part
// is kept as an object between chunks.
func TestResumeInAnotherInstance(t *testing.T) {
	ctx := t.Context()
	endpoint, bucket, ak, sk := tests3.NewBucket(t)
	params := styles[0].params(endpoint, bucket, ak, sk)
	p := storage.UploadPath("6f0c6a3e-resume")
	chunks := [][]byte{
		randomBytes(t, 3*mib),         // tail only, no part yet
		randomBytes(t, 4*mib),         // crosses the first part
		randomBytes(t, 11*mib+12345),  // two more parts and a tail
		randomBytes(t, minPartSize-7), // ends just short of a part
		randomBytes(t, 2*minPartSize), // exact parts
	}
	var want []byte
	for i, c := range chunks {
		d := newDriver(t, NameS3, params) // a fresh instance for every chunk
		w, err := d.Writer(ctx, p, i > 0)
		if err != nil {
			t.Fatalf("chunk %d: Writer: %v", i, err)
		}
		if w.Size() != int64(len(want)) {
			t.Fatalf("chunk %d: resumed at %d, want %d", i, w.Size(), len(want))
		}
		writeAll(t, w, c)
		want = append(want, c...)
		if err := w.Close(); err != nil {
			t.Fatalf("chunk %d: Close: %v", i, err)
		}
		tail, err := d.client.HeadObject(ctx, &s3api.HeadObjectInput{Bucket: &bucket, Key: aws.String(d.tailKey(p))})
		if err != nil {
			t.Fatalf("chunk %d: the closed upload left no tail: %v", i, err)
		}
		if wantTail := int64(len(want) % minPartSize); aws.ToInt64(tail.ContentLength) != wantTail {
			t.Errorf("chunk %d: tail holds %d bytes, want %d (only what follows the last full part)", i, aws.ToInt64(tail.ContentLength), wantTail)
		}
		if _, err := d.Stat(ctx, p); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("chunk %d: upload visible before Commit: %v", i, err)
		}
	}
	d := newDriver(t, NameS3, params)
	w, err := d.Writer(ctx, p, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, d, p); !bytes.Equal(got, want) {
		t.Fatalf("committed %d bytes differ from the %d written", len(got), len(want))
	}
	if err := d.Move(ctx, p, "sha256/ab/abcdef"); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, d, "sha256/ab/abcdef"); !bytes.Equal(got, want) {
		t.Fatal("moved object differs")
	}
	if err := d.Delete(ctx, "sha256"); err != nil {
		t.Fatal(err)
	}
	if left := leftovers(t, d); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
}

// TestCrashBetweenClose: a writer that sends parts and dies without Close
// leaves the last stored state intact: the next writer resumes from the
// previous Close and re-sends what was lost.
func TestCrashBetweenClose(t *testing.T) {
	ctx := t.Context()
	endpoint, bucket, ak, sk := tests3.NewBucket(t)
	params := styles[1].params(endpoint, bucket, ak, sk)
	p := "uploads/crash"
	first := randomBytes(t, 6*mib)
	d := newDriver(t, NameRadosGW, params)
	w, err := d.Writer(ctx, p, false)
	if err != nil {
		t.Fatal(err)
	}
	writeAll(t, w, first)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	// A writer that sends two more parts and is never closed.
	w, err = newDriver(t, NameRadosGW, params).Writer(ctx, p, true)
	if err != nil {
		t.Fatal(err)
	}
	writeAll(t, w, randomBytes(t, 12*mib))

	rest := randomBytes(t, 7*mib)
	w, err = newDriver(t, NameRadosGW, params).Writer(ctx, p, true)
	if err != nil {
		t.Fatal(err)
	}
	if w.Size() != int64(len(first)) {
		t.Fatalf("after a lost chunk the upload resumes at %d, want %d", w.Size(), len(first))
	}
	writeAll(t, w, rest)
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, d, p); !bytes.Equal(got, append(first, rest...)) {
		t.Fatal("committed content differs")
	}
	if err := d.Delete(ctx, p); err != nil {
		t.Fatal(err)
	}
	if left := leftovers(t, d); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
}

func uploadKeys(t *testing.T, d *Driver) []string {
	t.Helper()
	ups, err := d.listUploads(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, u := range ups {
		keys = append(keys, d.rel(aws.ToString(u.Key)))
	}
	slices.Sort(keys)
	return keys
}

// TestCancelAndCleanup: Cancel aborts the multipart upload; the cleanup
// aborts uploads nobody closed or resumed, and keeps those in use.
func TestCancelAndCleanup(t *testing.T) {
	ctx := t.Context()
	endpoint, bucket, ak, sk := tests3.NewBucket(t)
	d := newDriver(t, NameS3, styles[0].params(endpoint, bucket, ak, sk))

	w, err := d.Writer(ctx, "uploads/cancelled", false)
	if err != nil {
		t.Fatal(err)
	}
	writeAll(t, w, randomBytes(t, 6*mib))
	if got := uploadKeys(t, d); !slices.Equal(got, []string{"uploads/cancelled"}) {
		t.Fatalf("multipart uploads while writing = %v", got)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w, err = d.Writer(ctx, "uploads/cancelled", true)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Cancel(ctx); err != nil {
		t.Fatal(err)
	}
	if left := leftovers(t, d); len(left) > 0 {
		t.Fatalf("Cancel left %v", left)
	}

	// abandoned: parts sent, never closed (the process died).
	w, err = d.Writer(ctx, "uploads/abandoned", false)
	if err != nil {
		t.Fatal(err)
	}
	writeAll(t, w, randomBytes(t, 6*mib))
	// closed: a small closed upload, only a tail.
	w, err = d.Writer(ctx, "uploads/closed", false)
	if err != nil {
		t.Fatal(err)
	}
	writeAll(t, w, []byte("tail"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	// active: an old upload whose writer closed again recently.
	w, err = d.Writer(ctx, "uploads/active", false)
	if err != nil {
		t.Fatal(err)
	}
	writeAll(t, w, randomBytes(t, 6*mib))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	if n, err := d.CleanupAbandoned(ctx, time.Hour); err != nil || n != 0 {
		t.Fatalf("CleanupAbandoned(1h) = %d, %v; want nothing removed", n, err)
	}
	time.Sleep(3 * time.Second)
	w, err = d.Writer(ctx, "uploads/active", true)
	if err != nil {
		t.Fatal(err)
	}
	writeAll(t, w, []byte("more"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	n, err := d.CleanupAbandoned(ctx, 1500*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	// abandoned's upload, closed's tail.
	if n != 2 {
		t.Errorf("CleanupAbandoned removed %d, want 2", n)
	}
	if got := uploadKeys(t, d); !slices.Equal(got, []string{"uploads/active"}) {
		t.Errorf("multipart uploads after cleanup = %v, want only the active one", got)
	}
	if _, err := d.Writer(ctx, "uploads/closed", true); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("resuming a cleaned-up upload: %v, want PathNotFoundError", err)
	}
	w, err = d.Writer(ctx, "uploads/active", true)
	if err != nil {
		t.Fatalf("resuming the active upload after cleanup: %v", err)
	}
	if w.Size() != 6*mib+4 {
		t.Errorf("active upload size = %d", w.Size())
	}
	if err := w.Cancel(ctx); err != nil {
		t.Fatal(err)
	}
	if err := d.Delete(ctx, "uploads/abandoned"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Delete(abandoned) after cleanup: %v, want PathNotFoundError", err)
	}
	if left := leftovers(t, d); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
}

// TestDeleteAbortsOpenWriter: deleting an upload that a writer still holds
// discards its parts, and that writer's Commit then reports the path gone.
func TestDeleteAbortsOpenWriter(t *testing.T) {
	ctx := t.Context()
	endpoint, bucket, ak, sk := tests3.NewBucket(t)
	d := newDriver(t, NameS3, styles[0].params(endpoint, bucket, ak, sk))
	w, err := d.Writer(ctx, "uploads/x", false)
	if err != nil {
		t.Fatal(err)
	}
	writeAll(t, w, randomBytes(t, 6*mib))
	// Let the part in flight land first: S3 does not promise that aborting
	// an upload stops a part still being sent (it may need aborting again).
	if err := w.(*writer).wait(); err != nil {
		t.Fatal(err)
	}
	if err := d.Delete(ctx, "uploads"); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(ctx); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Commit after Delete: %v, want PathNotFoundError", err)
	}
	if left := leftovers(t, d); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
}

// TestSignedURL: the URL serves the bytes (and ranges) without credentials,
// to anyone, until it expires.
func TestSignedURL(t *testing.T) {
	ctx := t.Context()
	endpoint, bucket, ak, sk := tests3.NewBucket(t)
	for i, st := range styles {
		t.Run(st.driver, func(t *testing.T) {
			d := newDriver(t, st.driver, st.params(endpoint, bucket, ak, sk))
			content := []byte("blob bytes served straight from the bucket")
			w, err := d.Writer(ctx, "sha256/aa/aa"+strconv.Itoa(i), false)
			if err != nil {
				t.Fatal(err)
			}
			writeAll(t, w, content)
			if err := w.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = d.Delete(context.Background(), "sha256") })

			u, err := d.SignedURL(ctx, "sha256/aa/aa"+strconv.Itoa(i), 2*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(u, endpoint+"/"+bucket+"/") {
				t.Errorf("signed URL %s does not address the bucket by path on %s", u, endpoint)
			}
			if strings.Contains(u, sk) {
				t.Error("signed URL contains the secret key")
			}
			for _, tc := range []struct {
				rangeHdr   string
				wantStatus int
				wantBody   string
			}{
				{"", http.StatusOK, string(content)},
				{"bytes=5-9", http.StatusPartialContent, string(content[5:10])},
			} {
				status, body := get(t, u, tc.rangeHdr)
				if status != tc.wantStatus || body != tc.wantBody {
					t.Errorf("GET signed URL (Range %q) = %d %q, want %d %q", tc.rangeHdr, status, body, tc.wantStatus, tc.wantBody)
				}
			}
			time.Sleep(3 * time.Second)
			if status, _ := get(t, u, ""); status != http.StatusForbidden {
				t.Errorf("GET expired signed URL = %d, want 403", status)
			}
		})
	}
}

func get(t *testing.T, u, rangeHdr string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rangeHdr != "" {
		req.Header.Set("Range", rangeHdr)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestMissingBucket: a wrong bucket name is reported as such.
func TestMissingBucket(t *testing.T) {
	endpoint, _, ak, sk := tests3.NewBucket(t)
	d := newDriver(t, NameS3, styles[0].params(endpoint, "no-such-bucket", ak, sk))
	res := storage.Probe(t.Context(), d)
	if res.OK || res.Err == nil || !strings.Contains(res.Err.Error(), `bucket "no-such-bucket" does not exist`) {
		t.Errorf("Probe on a missing bucket = %+v, want a 'bucket does not exist' error", res)
	}
	if res.Err != nil && strings.Contains(res.Err.Error(), sk) {
		t.Error("error shows the secret key")
	}
}

// TestCopiesInParts: with a small maximum_chunk_size_mb, Move copies an
// object in several server-side parts, and appending to a committed object
// copies its whole parts and continues after them.
func TestCopiesInParts(t *testing.T) {
	ctx := t.Context()
	endpoint, bucket, ak, sk := tests3.NewBucket(t)
	params := styles[1].params(endpoint, bucket, ak, sk)
	params["maximum_chunk_size_mb"] = 5
	d := newDriver(t, NameRadosGW, params)
	for _, tc := range []struct {
		name   string
		size   int
		append int
	}{
		{"whole parts and a short end", 12*mib + 3, 1*mib + 5},
		{"whole parts only", 10 * mib, 7 * mib},
		{"one short part", 3 * mib, 4 * mib},
		{"a long last part", 5*mib + 5*mib + 6*mib, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			content := randomBytes(t, tc.size)
			w, err := d.Writer(ctx, "src/obj", false)
			if err != nil {
				t.Fatal(err)
			}
			writeAll(t, w, content)
			if err := w.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			if err := d.Move(ctx, "src/obj", "dst/obj"); err != nil {
				t.Fatalf("Move: %v", err)
			}
			if got := readAll(t, d, "dst/obj"); !bytes.Equal(got, content) {
				t.Fatalf("moved object: %d bytes, differs from the %d written", len(got), len(content))
			}
			more := randomBytes(t, tc.append)
			w, err = d.Writer(ctx, "dst/obj", true)
			if err != nil {
				t.Fatal(err)
			}
			if w.Size() != int64(tc.size) {
				t.Fatalf("append starts at %d, want %d", w.Size(), tc.size)
			}
			writeAll(t, w, more)
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			w, err = newDriver(t, NameRadosGW, params).Writer(ctx, "dst/obj", true)
			if err != nil {
				t.Fatal(err)
			}
			if err := w.Commit(ctx); err != nil {
				t.Fatalf("Commit: %v", err)
			}
			if got := readAll(t, d, "dst/obj"); !bytes.Equal(got, append(content, more...)) {
				t.Fatalf("appended object: %d bytes, differs from the %d written", len(got), len(content)+len(more))
			}
			if err := d.Delete(ctx, "dst"); err != nil {
				t.Fatal(err)
			}
			if left := leftovers(t, d); len(left) > 0 {
				t.Errorf("left behind: %v", left)
			}
		})
	}
}

// A writer keeps up to maxPartsInFlight parts in flight, so a store with a
// long round trip is not paid once per part; with the process-wide spare
// budget used up it sends one at a time. The object is whole either way.
// A proxy in front of the S3 server adds the round trip.
func TestPartsInFlight(t *testing.T) {
	endpoint, bucket, ak, sk := tests3.NewBucket(t)
	target, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	const delay = 150 * time.Millisecond
	var inFlight, peak atomic.Int32
	rp := httputil.NewSingleHostReverseProxy(target) // keeps the Host header, so signatures still match
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if r.Method == http.MethodPut && q.Has("partNumber") && q.Has("uploadId") {
			n := inFlight.Add(1)
			defer inFlight.Add(-1)
			for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
			}
			time.Sleep(delay)
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(proxy.Close)
	d := newDriver(t, NameS3, styles[0].params(proxy.URL, bucket, ak, sk))
	if d.cfg.PartSize != 5*mib {
		t.Fatalf("part size %d, want 5 MiB", d.cfg.PartSize)
	}
	for _, tc := range []struct {
		name        string
		sparesTaken int64
		wantPeak    int32
	}{
		{"spare budget free", 0, maxPartsInFlight},
		{"spare budget used up", spareSendBytes, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			if tc.sparesTaken > 0 {
				if !spareSends.TryAcquire(tc.sparesTaken) {
					t.Fatal("spare budget in use elsewhere")
				}
				defer spareSends.Release(tc.sparesTaken)
			}
			peak.Store(0)
			content := randomBytes(t, 12*5*mib+7)
			w, err := d.Writer(ctx, "blob", false)
			if err != nil {
				t.Fatal(err)
			}
			writeAll(t, w, content)
			if err := w.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			if got := peak.Load(); got != tc.wantPeak {
				t.Errorf("at most %d parts were in flight, want %d", got, tc.wantPeak)
			}
			if got := readAll(t, d, "blob"); !bytes.Equal(got, content) {
				t.Fatalf("object: %d bytes, differs from the %d written", len(got), len(content))
			}
			if err := d.Delete(ctx, "blob"); err != nil {
				t.Fatal(err)
			}
		})
	}
	if !spareSends.TryAcquire(spareSendBytes) {
		t.Error("writers did not return their spare budget")
	}
	spareSends.Release(spareSendBytes)
}
