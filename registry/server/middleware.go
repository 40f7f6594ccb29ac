package server

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
)

type ctxKey int

const requestIDKey ctxKey = iota

// RequestID returns the request id of ctx ("" outside a request).
func RequestID(ctx context.Context) string {
	s, _ := ctx.Value(requestIDKey).(string)
	return s
}

// requestIDHandler adds the request id to every log line of the request, so
// one id ties the access log to any error logged while serving it.
type requestIDHandler struct{ slog.Handler }

func (h requestIDHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := RequestID(ctx); id != "" {
		r.AddAttrs(slog.String("request_id", id))
	}
	return h.Handler.Handle(ctx, r)
}

func (h requestIDHandler) WithAttrs(a []slog.Attr) slog.Handler {
	return requestIDHandler{h.Handler.WithAttrs(a)}
}
func (h requestIDHandler) WithGroup(n string) slog.Handler {
	return requestIDHandler{h.Handler.WithGroup(n)}
}

// WithRequestID wraps a slog handler so records carry the request id.
func WithRequestID(h slog.Handler) slog.Handler { return requestIDHandler{h} }

// statusWriter records the status and bytes of a response. It keeps
// io.ReaderFrom reachable so sendfile still works for blob downloads.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// ReadFrom keeps the underlying connection's sendfile path for blobs.
func (w *statusWriter) ReadFrom(r io.Reader) (int64, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	var n int64
	var err error
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(r)
	} else {
		n, err = io.Copy(struct{ io.Writer }{w.ResponseWriter}, r)
	}
	w.bytes += n
	return n, err
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "quayctl_http_requests_total", Help: "HTTP requests by method, endpoint group and status.",
		}, []string{"method", "group", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "quayctl_http_request_duration_seconds", Help: "HTTP request latency by endpoint group.",
			Buckets: prometheus.DefBuckets,
		}, []string{"method", "group"}),
	}
	reg.MustRegister(m.requests, m.duration)
	return m
}

// group names a path family for metrics without unbounded label values.
func group(path string) string {
	switch {
	case path == "/v2/auth":
		return "v2_auth"
	case len(path) >= 3 && path[:3] == "/v2":
		return "v2"
	case len(path) >= 7 && path[:7] == "/api/v1":
		return "api"
	case len(path) >= 7 && path[:7] == "/health":
		return "health"
	}
	return "other"
}

// instrument wraps next with request id, recovery, access log and metrics.
func instrument(next http.Handler, log *slog.Logger, m *metrics) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := "urn:request:" + uuid.NewString()
		ctx := context.WithValue(r.Context(), requestIDKey, id)
		r = r.WithContext(ctx)
		w.Header().Set("X-Request-Id", id)
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			if rec := recover(); rec != nil {
				if rec == http.ErrAbortHandler {
					panic(rec)
				}
				log.ErrorContext(ctx, "panic while serving request", "panic", rec, "method", r.Method, "path", r.URL.Path)
				if sw.status == 0 {
					sw.Header().Set("Content-Type", "application/json")
					sw.WriteHeader(http.StatusInternalServerError)
					_, _ = sw.Write([]byte(`{"errors":[{"code":"UNKNOWN","message":"internal server error"}]}`))
				}
			}
			if sw.status == 0 {
				sw.status = http.StatusOK
			}
			g := group(r.URL.Path)
			m.requests.WithLabelValues(r.Method, g, strconv.Itoa(sw.status)).Inc()
			m.duration.WithLabelValues(r.Method, g).Observe(time.Since(start).Seconds())
			log.LogAttrs(ctx, slog.LevelInfo, "request",
				slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Int("status", sw.status),
				slog.Int64("bytes", sw.bytes), slog.Duration("duration", time.Since(start)),
				slog.String("remote", r.RemoteAddr), slog.String("user_agent", r.UserAgent()))
		}()
		next.ServeHTTP(sw, r)
	})
}
