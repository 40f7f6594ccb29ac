// Package health answers Quay's health endpoints with Quay's JSON shape:
// {"data":{"services":{name:bool}},"status_code":200|503}. Each service is
// checked for real: the database answers, storage takes a write and read,
// disk space is measured.
package health

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"sort"
	"sync"
	"syscall"
	"time"
)

// Check is one service check; it returns nil when healthy.
type Check func(ctx context.Context) error

// Checker holds the named checks of each endpoint.
type Checker struct {
	Instance map[string]Check // /health, /health/instance
	EndToEnd map[string]Check // /health/endtoend, /status
	Warning  map[string]Check // /health/warning
	Timeout  time.Duration    // per check
	// Logger receives the reason of every failed check: the JSON answer
	// only says false, as Quay's does, so the log is where the why goes.
	Logger *slog.Logger
}

// Result is what one endpoint reports.
type Result struct {
	Services map[string]bool
	Failures map[string]string // not serialised: for logs and debug
}

// Healthy is true when every service passed.
func (r Result) Healthy() bool {
	for _, ok := range r.Services {
		if !ok {
			return false
		}
	}
	return true
}

// Run runs the checks concurrently, each with its own timeout.
func (c *Checker) Run(ctx context.Context, checks map[string]Check) Result {
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	res := Result{Services: map[string]bool{}, Failures: map[string]string{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for name, check := range checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			err := safe(cctx, check)
			mu.Lock()
			defer mu.Unlock()
			res.Services[name] = err == nil
			if err != nil {
				res.Failures[name] = err.Error()
			}
		}()
	}
	wg.Wait()
	return res
}

func safe(ctx context.Context, check Check) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = panicError{r}
		}
	}()
	return check(ctx)
}

type panicError struct{ v any }

func (p panicError) Error() string { return "check panicked" }

// Handler serves the endpoints. Anonymous requests are allowed, as in Quay.
func (c *Checker) Handler() http.Handler {
	mux := http.NewServeMux()
	serve := func(checks map[string]Check) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			res := c.Run(r.Context(), checks)
			status := http.StatusOK
			if !res.Healthy() {
				status = http.StatusServiceUnavailable
				if c.Logger != nil {
					for _, name := range Names(checks) {
						if msg, failed := res.Failures[name]; failed {
							c.Logger.WarnContext(r.Context(), "health check failed", "endpoint", r.URL.Path, "service", name, "reason", msg)
						}
					}
				}
			}
			body, _ := json.Marshal(map[string]any{
				"data":        map[string]any{"services": res.Services},
				"status_code": status,
			})
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			_, _ = w.Write(body)
		}
	}
	mux.Handle("/health", serve(c.Instance))
	mux.Handle("/health/instance", serve(c.Instance))
	mux.Handle("/health/endtoend", serve(c.EndToEnd))
	mux.Handle("/status", serve(c.EndToEnd))
	mux.Handle("/health/warning", serve(c.Warning))
	return mux
}

// Names lists the services of a check set, sorted (for logs and docs).
func Names(checks map[string]Check) []string {
	out := make([]string, 0, len(checks))
	for n := range checks {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// DiskSpace fails when the free fraction of any path's filesystem is below
// threshold, as Quay's disk_space (0.01) and disk_space_warning (0.1).
func DiskSpace(threshold float64, paths ...string) Check {
	return func(ctx context.Context) error {
		for _, p := range paths {
			free, err := FreeFraction(p)
			if err != nil {
				return err
			}
			if free < threshold {
				return lowDiskError{path: p, free: free, threshold: threshold}
			}
		}
		return nil
	}
}

// FreeFraction is the fraction of the filesystem at path available to
// unprivileged users.
func FreeFraction(path string) (float64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, err
	}
	if st.Blocks == 0 {
		return 1, nil
	}
	return float64(st.Bavail) / float64(st.Blocks), nil
}

type lowDiskError struct {
	path            string
	free, threshold float64
}

func (e lowDiskError) Error() string {
	return "free space on " + e.path + " is below threshold"
}
