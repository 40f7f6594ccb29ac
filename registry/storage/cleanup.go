package storage

import (
	"context"
	"time"
)

// AbandonedCleaner is implemented by drivers that keep state of their own
// for writes in progress (S3 multipart uploads and their tails), which a
// process that died mid-upload leaves behind and path deletes do not see.
// The upload cleanup worker calls it for every location that has it.
type AbandonedCleaner interface {
	// CleanupAbandoned removes in-progress writes untouched for longer
	// than olderThan and returns how many it removed.
	CleanupAbandoned(ctx context.Context, olderThan time.Duration) (int, error)
}
