// Package s3 is the S3-compatible storage driver behind Quay's S3Storage,
// RadosGWStorage and RHOCSStorage (AWS S3, Ceph RGW, OpenShift Data
// Foundation/NooBaa, MinIO, versitygw…), built on the AWS SDK for Go v2.
//
// Layout in the bucket, below storage_path (<root>):
//
//	<root>/<path>              a committed object
//	<root>/.inprogress/<path>  a closed writer's tail: the bytes after its
//	                           last full part (less than one part), with the
//	                           multipart upload id and part count in metadata
//
// A writer streams into an S3 multipart upload on the final key, one part
// per PartSize bytes (5 MiB by default, S3's minimum), so memory holds at most
// one part per writer and nothing is spooled to local disk. Close stores the
// tail as an object, so another process (a restart, another replica) can
// continue the upload: it lists the parts, reads the tail back and carries
// on. Commit sends the tail as the last part and completes the upload, which
// makes the object appear whole in one step; Cancel aborts it.
// CleanupAbandoned aborts uploads nobody came back to.
package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	s3api "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/quayctl/quayctl/registry/storage"
)

// inProgressDir holds closed writers' tails; client paths may not use it.
const inProgressDir = ".inprogress"

// Metadata keys on a tail object.
const (
	metaUploadID = "quayctl-upload-id"
	metaParts    = "quayctl-parts"
)

// deleteConcurrency bounds parallel DeleteObject calls in a tree delete
// (single deletes work on every S3-compatible server; DeleteObjects needs
// checksums some of them refuse).
const deleteConcurrency = 8

// Driver stores objects in one bucket. It is safe for concurrent use.
type Driver struct {
	cfg     Config
	client  *s3api.Client
	presign *s3api.PresignClient
}

var (
	_ storage.Driver    = (*Driver)(nil)
	_ storage.URLSigner = (*Driver)(nil)
)

// New builds a driver for one of Names from Quay's parameters (see
// ParseConfig). It does not contact the server; the registry's start-up
// probe does.
func New(ctx context.Context, driver string, params map[string]any) (*Driver, error) {
	cfg, err := ParseConfig(driver, params)
	if err != nil {
		return nil, err
	}
	return NewFromConfig(ctx, cfg)
}

// NewFromConfig builds a driver from a parsed Config.
func NewFromConfig(ctx context.Context, cfg Config) (*Driver, error) {
	var creds aws.CredentialsProvider
	if cfg.AccessKey != "" {
		creds = credentials.NewStaticCredentialsProvider(cfg.AccessKey, cfg.SecretKey, cfg.SessionToken)
	} else {
		// No keys: the AWS default chain (environment, shared config, web
		// identity, instance or task role), as boto3 does for Quay.
		awsCfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(cfg.Region))
		if err != nil {
			return nil, fmt.Errorf("%s: loading AWS credentials (no s3_access_key given): %w", cfg.Driver, err)
		}
		creds = awsCfg.Credentials
	}
	httpClient := awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
		// Parts and blobs go to one host; keep enough warm connections.
		t.MaxIdleConnsPerHost = 64
	})
	client := s3api.New(s3api.Options{
		Region:       cfg.Region,
		Credentials:  creds,
		UsePathStyle: cfg.PathStyle,
		BaseEndpoint: optional(cfg.Endpoint),
		HTTPClient:   httpClient,
		// Only send and check checksums the API requires: S3-compatible
		// servers (older Ceph, NooBaa) reject the newer default trailers.
		RequestChecksumCalculation:                aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation:                aws.ResponseChecksumValidationWhenRequired,
		DisableLogOutputChecksumValidationSkipped: true,
	})
	return &Driver{cfg: cfg, client: client, presign: s3api.NewPresignClient(client)}, nil
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// Name is the Quay driver name this driver was configured as.
func (d *Driver) Name() string { return d.cfg.Driver }

// Config returns the parsed configuration (with the secret key).
func (d *Driver) Config() Config { return d.cfg }

// Client is the underlying S3 client, for tests and tools.
func (d *Driver) Client() *s3api.Client { return d.client }

// Bucket is the bucket name.
func (d *Driver) Bucket() string { return d.cfg.Bucket }

// key maps a storage path to its object key.
func (d *Driver) key(p string) string {
	if d.cfg.Root == "" {
		return p
	}
	return d.cfg.Root + "/" + p
}

// rel maps an object key back to a storage path.
func (d *Driver) rel(key string) string {
	if d.cfg.Root == "" {
		return key
	}
	return strings.TrimPrefix(key, d.cfg.Root+"/")
}

func (d *Driver) tailKey(p string) string { return d.key(inProgressDir + "/" + p) }

func (d *Driver) fail(op, p string, err error) error {
	var ae smithy.APIError
	if errors.As(err, &ae) && ae.ErrorCode() == "NoSuchBucket" {
		err = fmt.Errorf("bucket %q does not exist (create it, or fix the bucket name in DISTRIBUTED_STORAGE_CONFIG): %w", d.cfg.Bucket, err)
	}
	return &storage.Error{Driver: d.cfg.Driver, Op: op, Path: p, Err: err}
}

func (d *Driver) notFound(p string) error {
	return storage.PathNotFoundError{Driver: d.cfg.Driver, Path: p}
}

// check validates the path and the context before any request is made.
func (d *Driver) check(ctx context.Context, op, p string) error {
	if err := storage.ValidatePath(d.cfg.Driver, p); err != nil {
		return err
	}
	if first, _, _ := strings.Cut(p, "/"); first == inProgressDir {
		return storage.InvalidPathError{Driver: d.cfg.Driver, Path: p}
	}
	if err := ctx.Err(); err != nil {
		return d.fail(op, p, err)
	}
	return nil
}

// isNotFound reports an S3 answer meaning "no such object" (GET gives
// NoSuchKey, HEAD only a 404 status).
func isNotFound(err error) bool {
	var nsk *types.NoSuchKey
	var nf *types.NotFound
	if errors.As(err, &nsk) || errors.As(err, &nf) {
		return true
	}
	var ae smithy.APIError
	if errors.As(err, &ae) && (ae.ErrorCode() == "NoSuchKey" || ae.ErrorCode() == "NotFound") {
		return true
	}
	return httpStatus(err) == http.StatusNotFound && !isCode(err, "NoSuchBucket", "NoSuchUpload")
}

func isNoSuchUpload(err error) bool {
	var nsu *types.NoSuchUpload
	return errors.As(err, &nsu) || isCode(err, "NoSuchUpload")
}

func isCode(err error, codes ...string) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && slices.Contains(codes, ae.ErrorCode())
}

func httpStatus(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

// head returns the object's size and time, or PathNotFoundError.
func (d *Driver) head(ctx context.Context, op, p string) (*s3api.HeadObjectOutput, error) {
	out, err := d.client.HeadObject(ctx, &s3api.HeadObjectInput{Bucket: &d.cfg.Bucket, Key: aws.String(d.key(p))})
	if err != nil {
		if isNotFound(err) {
			return nil, d.notFound(p)
		}
		return nil, d.fail(op, p, err)
	}
	return out, nil
}

// Reader streams the object from offset.
func (d *Driver) Reader(ctx context.Context, p string, offset int64) (io.ReadCloser, error) {
	if err := d.check(ctx, "reader", p); err != nil {
		return nil, err
	}
	if offset < 0 {
		return nil, storage.InvalidOffsetError{Driver: d.cfg.Driver, Path: p, Offset: offset}
	}
	in := &s3api.GetObjectInput{Bucket: &d.cfg.Bucket, Key: aws.String(d.key(p))}
	if offset > 0 {
		in.Range = aws.String(fmt.Sprintf("bytes=%d-", offset))
	}
	out, err := d.client.GetObject(ctx, in)
	if err == nil {
		return out.Body, nil
	}
	if isNotFound(err) {
		return nil, d.notFound(p)
	}
	if httpStatus(err) == http.StatusRequestedRangeNotSatisfiable || isCode(err, "InvalidRange") {
		// The offset is at or past the end: at the end is an empty read.
		h, herr := d.head(ctx, "reader", p)
		if herr != nil {
			return nil, herr
		}
		if offset == aws.ToInt64(h.ContentLength) {
			return io.NopCloser(strings.NewReader("")), nil
		}
		return nil, storage.InvalidOffsetError{Driver: d.cfg.Driver, Path: p, Offset: offset}
	}
	return nil, d.fail("reader", p, err)
}

// Stat describes an object, or a prefix that holds objects (IsDir).
func (d *Driver) Stat(ctx context.Context, p string) (storage.FileInfo, error) {
	if err := d.check(ctx, "stat", p); err != nil {
		return storage.FileInfo{}, err
	}
	out, err := d.head(ctx, "stat", p)
	if err == nil {
		return storage.FileInfo{Path: p, Size: aws.ToInt64(out.ContentLength), ModTime: aws.ToTime(out.LastModified)}, nil
	}
	if !errors.Is(err, storage.ErrNotFound) {
		return storage.FileInfo{}, err
	}
	list, lerr := d.client.ListObjectsV2(ctx, &s3api.ListObjectsV2Input{
		Bucket: &d.cfg.Bucket, Prefix: aws.String(d.key(p) + "/"), MaxKeys: aws.Int32(1),
	})
	if lerr != nil {
		return storage.FileInfo{}, d.fail("stat", p, lerr)
	}
	if len(list.Contents) == 0 {
		return storage.FileInfo{}, d.notFound(p)
	}
	return storage.FileInfo{Path: p, IsDir: true}, nil
}

// List returns the full paths of the direct children of p, sorted.
func (d *Driver) List(ctx context.Context, p string) ([]string, error) {
	if err := d.check(ctx, "list", p); err != nil {
		return nil, err
	}
	prefix := d.key(p) + "/"
	pager := s3api.NewListObjectsV2Paginator(d.client, &s3api.ListObjectsV2Input{
		Bucket: &d.cfg.Bucket, Prefix: &prefix, Delimiter: aws.String("/"),
	})
	var out []string
	for pager.HasMorePages() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, d.fail("list", p, err)
		}
		for _, o := range page.Contents {
			out = append(out, d.rel(aws.ToString(o.Key)))
		}
		for _, cp := range page.CommonPrefixes {
			out = append(out, strings.TrimSuffix(d.rel(aws.ToString(cp.Prefix)), "/"))
		}
	}
	if len(out) == 0 {
		return nil, d.notFound(p)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// Move copies src to dst on the server and deletes src. dst is replaced in
// one step; objects over MaxCopyPart are copied as a multipart upload.
func (d *Driver) Move(ctx context.Context, src, dst string) error {
	if err := d.check(ctx, "move", src); err != nil {
		return err
	}
	if err := d.check(ctx, "move", dst); err != nil {
		return err
	}
	h, err := d.head(ctx, "move", src)
	if err != nil {
		return err
	}
	if src == dst {
		return nil
	}
	if err := d.copyObject(ctx, src, dst, aws.ToInt64(h.ContentLength)); err != nil {
		if isNotFound(err) {
			return d.notFound(src)
		}
		return d.fail("move", src+" -> "+dst, err)
	}
	if _, err := d.client.DeleteObject(ctx, &s3api.DeleteObjectInput{Bucket: &d.cfg.Bucket, Key: aws.String(d.key(src))}); err != nil {
		return d.fail("move", src, err)
	}
	return nil
}

func (d *Driver) copySource(p string) string {
	return escapeCopySource(d.cfg.Bucket + "/" + d.key(p))
}

// escapeCopySource percent-encodes a bucket/key pair for x-amz-copy-source,
// keeping only unreserved characters and '/' as they are.
func escapeCopySource(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-_.~/", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

func (d *Driver) copyObject(ctx context.Context, src, dst string, size int64) error {
	if size <= d.cfg.MaxCopyPart {
		_, err := d.client.CopyObject(ctx, &s3api.CopyObjectInput{
			Bucket: &d.cfg.Bucket, Key: aws.String(d.key(dst)), CopySource: aws.String(d.copySource(src)),
		})
		return err
	}
	up, err := d.client.CreateMultipartUpload(ctx, &s3api.CreateMultipartUploadInput{Bucket: &d.cfg.Bucket, Key: aws.String(d.key(dst))})
	if err != nil {
		return err
	}
	uploadID := aws.ToString(up.UploadId)
	parts, err := d.copyParts(ctx, uploadID, dst, src, size)
	if err == nil {
		_, err = d.client.CompleteMultipartUpload(ctx, &s3api.CompleteMultipartUploadInput{
			Bucket: &d.cfg.Bucket, Key: aws.String(d.key(dst)), UploadId: &uploadID,
			MultipartUpload: &types.CompletedMultipartUpload{Parts: completed(parts)},
		})
	}
	if err != nil {
		d.abort(context.WithoutCancel(ctx), dst, uploadID)
	}
	return err
}

// part is one uploaded part of a multipart upload.
type part struct {
	number int32
	etag   string
	size   int64
}

func completed(parts []part) []types.CompletedPart {
	out := make([]types.CompletedPart, len(parts))
	for i, p := range parts {
		out[i] = types.CompletedPart{PartNumber: aws.Int32(p.number), ETag: aws.String(p.etag)}
	}
	return out
}

// copyParts copies the first n bytes of object src into upload uploadID (on
// dst's key) as parts of MaxCopyPart bytes (at least 5 MiB) and a last,
// shorter one, numbered from 1. Callers that add parts after these make n a
// multiple of MaxCopyPart or leave a last part of at least 5 MiB.
func (d *Driver) copyParts(ctx context.Context, uploadID, dst, src string, n int64) ([]part, error) {
	var parts []part
	for off := int64(0); off < n; off += d.cfg.MaxCopyPart {
		end := min(off+d.cfg.MaxCopyPart, n)
		num := int32(len(parts) + 1)
		out, err := d.client.UploadPartCopy(ctx, &s3api.UploadPartCopyInput{
			Bucket: &d.cfg.Bucket, Key: aws.String(d.key(dst)), UploadId: &uploadID,
			PartNumber: aws.Int32(num), CopySource: aws.String(d.copySource(src)),
			CopySourceRange: aws.String(fmt.Sprintf("bytes=%d-%d", off, end-1)),
		})
		if err != nil {
			return nil, err
		}
		etag := ""
		if out.CopyPartResult != nil {
			etag = aws.ToString(out.CopyPartResult.ETag)
		}
		parts = append(parts, part{number: num, etag: etag, size: end - off})
	}
	return parts, nil
}

// abort ends a multipart upload, ignoring one that is already gone.
func (d *Driver) abort(ctx context.Context, p, uploadID string) error {
	_, err := d.client.AbortMultipartUpload(ctx, &s3api.AbortMultipartUploadInput{
		Bucket: &d.cfg.Bucket, Key: aws.String(d.key(p)), UploadId: &uploadID,
	})
	if err != nil && !isNoSuchUpload(err) && !isNotFound(err) {
		return err
	}
	return nil
}

// Delete removes an object, or every object below a directory path, and any
// upload in progress at or below p. PathNotFoundError only when nothing was
// there.
func (d *Driver) Delete(ctx context.Context, p string) error {
	if err := d.check(ctx, "delete", p); err != nil {
		return err
	}
	var keys []string
	if _, err := d.head(ctx, "delete", p); err == nil {
		keys = append(keys, d.key(p))
	} else if !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	below, err := d.listKeys(ctx, d.key(p)+"/")
	if err != nil {
		return d.fail("delete", p, err)
	}
	keys = append(keys, below...)
	// Tails of closed writers, at p and below.
	tails, err := d.listKeys(ctx, d.tailKey(p)+"/")
	if err != nil {
		return d.fail("delete", p, err)
	}
	if _, err := d.client.HeadObject(ctx, &s3api.HeadObjectInput{Bucket: &d.cfg.Bucket, Key: aws.String(d.tailKey(p))}); err == nil {
		tails = append(tails, d.tailKey(p))
	} else if !isNotFound(err) {
		return d.fail("delete", p, err)
	}
	// Multipart uploads at p and below, whether their writer closed or not.
	uploads, err := d.listUploads(ctx, d.key(p))
	if err != nil {
		return d.fail("delete", p, err)
	}
	n := 0
	for _, u := range uploads {
		if k := aws.ToString(u.Key); k == d.key(p) || strings.HasPrefix(k, d.key(p)+"/") {
			n++
			if err := d.abort(ctx, d.rel(k), aws.ToString(u.UploadId)); err != nil {
				return d.fail("delete", p, err)
			}
		}
	}
	if len(keys)+len(tails)+n == 0 {
		return d.notFound(p)
	}
	if err := d.deleteKeys(ctx, append(keys, tails...)); err != nil {
		return d.fail("delete", p, err)
	}
	return nil
}

// listKeys returns every key that starts with prefix.
func (d *Driver) listKeys(ctx context.Context, prefix string) ([]string, error) {
	pager := s3api.NewListObjectsV2Paginator(d.client, &s3api.ListObjectsV2Input{Bucket: &d.cfg.Bucket, Prefix: &prefix})
	var keys []string
	for pager.HasMorePages() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	return keys, nil
}

// listUploads returns the multipart uploads whose key starts with prefix.
func (d *Driver) listUploads(ctx context.Context, prefix string) ([]types.MultipartUpload, error) {
	pager := s3api.NewListMultipartUploadsPaginator(d.client, &s3api.ListMultipartUploadsInput{Bucket: &d.cfg.Bucket, Prefix: &prefix})
	var out []types.MultipartUpload
	for pager.HasMorePages() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, u := range page.Uploads {
			// Some servers treat Prefix loosely; filter again.
			if strings.HasPrefix(aws.ToString(u.Key), prefix) {
				out = append(out, u)
			}
		}
	}
	return out, nil
}

func (d *Driver) deleteKeys(ctx context.Context, keys []string) error {
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		sem      = make(chan struct{}, deleteConcurrency)
	)
	for _, k := range keys {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			_, err := d.client.DeleteObject(ctx, &s3api.DeleteObjectInput{Bucket: &d.cfg.Bucket, Key: aws.String(k)})
			if err != nil && !isNotFound(err) {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return firstErr
}

// SignedURL returns a presigned GET URL for p that expires after expiry.
// It does not check that the object exists (the caller knows it does; a
// HEAD per pull would cost a round trip).
func (d *Driver) SignedURL(ctx context.Context, p string, expiry time.Duration) (string, error) {
	if err := d.check(ctx, "signed-url", p); err != nil {
		return "", err
	}
	if expiry <= 0 {
		expiry = time.Minute
	}
	req, err := d.presign.PresignGetObject(ctx, &s3api.GetObjectInput{Bucket: &d.cfg.Bucket, Key: aws.String(d.key(p))},
		s3api.WithPresignExpires(expiry))
	if err != nil {
		return "", d.fail("signed-url", p, err)
	}
	return req.URL, nil
}
