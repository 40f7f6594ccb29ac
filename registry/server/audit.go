package server

import (
	"context"
	"log/slog"
	"time"

	"github.com/quayctl/quayctl/registry/store"
)

// auditQueue writes audit entries off the request path: a pull must not
// wait for a database insert. Entries are flushed on shutdown; if the queue
// is full the entry is written synchronously rather than dropped.
type auditQueue struct {
	st  store.Store
	log *slog.Logger
	ch  chan store.LogEntry
}

func newAuditQueue(st store.Store, log *slog.Logger, size int) *auditQueue {
	return &auditQueue{st: st, log: log, ch: make(chan store.LogEntry, size)}
}

func (q *auditQueue) Audit(ctx context.Context, e store.LogEntry) {
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	select {
	case q.ch <- e:
	default:
		q.write(context.WithoutCancel(ctx), e)
	}
}

func (q *auditQueue) write(ctx context.Context, e store.LogEntry) {
	if err := q.st.Log(ctx, e); err != nil {
		q.log.WarnContext(ctx, "could not write audit log entry", "kind", e.Kind, "error", err)
	}
}

func (q *auditQueue) run(ctx context.Context) {
	for {
		select {
		case e := <-q.ch:
			q.write(context.Background(), e)
		case <-ctx.Done():
			for {
				select {
				case e := <-q.ch:
					q.write(context.Background(), e)
				default:
					return
				}
			}
		}
	}
}
