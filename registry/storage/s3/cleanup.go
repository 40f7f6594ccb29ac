package s3

import (
	"context"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	s3api "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/quayctl/quayctl/registry/storage"
)

var _ storage.AbandonedCleaner = (*Driver)(nil)

// CleanupAbandoned aborts multipart uploads started more than olderThan ago
// and removes in-progress tails last written more than olderThan ago, so the
// parts of uploads nobody finished stop costing storage. An upload whose
// tail was stored recently (its writer closed within olderThan) is still in
// use and kept, however old the upload. It returns how many uploads and
// tails it removed.
func (d *Driver) CleanupAbandoned(ctx context.Context, olderThan time.Duration) (int, error) {
	cutoff := time.Now().Add(-olderThan)
	prefix := ""
	if d.cfg.Root != "" {
		prefix = d.cfg.Root + "/"
	}
	uploads, err := d.listUploads(ctx, prefix)
	if err != nil {
		return 0, d.fail("cleanup", "", err)
	}
	removed := 0
	for _, u := range uploads {
		if u.Initiated == nil || u.Initiated.After(cutoff) {
			continue
		}
		p := d.rel(aws.ToString(u.Key))
		id := aws.ToString(u.UploadId)
		if d.tailFresh(ctx, p, id, cutoff) {
			continue
		}
		if err := d.abort(ctx, p, id); err != nil {
			return removed, d.fail("cleanup", p, err)
		}
		removed++
	}
	tails, err := d.listObjects(ctx, d.key(inProgressDir)+"/")
	if err != nil {
		return removed, d.fail("cleanup", "", err)
	}
	for _, o := range tails {
		if o.LastModified == nil || o.LastModified.After(cutoff) {
			continue
		}
		if _, err := d.client.DeleteObject(ctx, &s3api.DeleteObjectInput{Bucket: &d.cfg.Bucket, Key: o.Key}); err != nil && !isNotFound(err) {
			return removed, d.fail("cleanup", strings.TrimPrefix(aws.ToString(o.Key), d.key(inProgressDir)+"/"), err)
		}
		removed++
	}
	return removed, nil
}

// tailFresh reports whether p's tail names upload id and was written after
// cutoff.
func (d *Driver) tailFresh(ctx context.Context, p, id string, cutoff time.Time) bool {
	out, err := d.client.HeadObject(ctx, &s3api.HeadObjectInput{Bucket: &d.cfg.Bucket, Key: aws.String(d.tailKey(p))})
	if err != nil {
		return false
	}
	return out.Metadata[metaUploadID] == id && out.LastModified != nil && out.LastModified.After(cutoff)
}

// listObjects returns every object whose key starts with prefix.
func (d *Driver) listObjects(ctx context.Context, prefix string) ([]types.Object, error) {
	pager := s3api.NewListObjectsV2Paginator(d.client, &s3api.ListObjectsV2Input{Bucket: &d.cfg.Bucket, Prefix: &prefix})
	var out []types.Object
	for pager.HasMorePages() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		out = append(out, page.Contents...)
	}
	return out, nil
}
