package server

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"slices"
	"time"

	"github.com/quayctl/quayctl/registry/health"
	"github.com/quayctl/quayctl/registry/storage"
)

// healthChecks builds Quay's service sets. Quay's default checker skips
// redis and storage on /health/instance (HEALTH_CHECKER instance_skips).
func (s *Server) healthChecks() *health.Checker {
	set := s.settings
	database := func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		return s.Store.Ping(ctx)
	}
	storageCheck := func(ctx context.Context) error {
		// Only preferred locations decide, as in Quay.
		for _, name := range set.Preference {
			if d, ok := s.Storage[name]; ok {
				if res := storage.Probe(ctx, d); !res.OK {
					return fmt.Errorf("location %s: %w", name, res.Err)
				}
			}
		}
		return nil
	}
	redis := func(ctx context.Context) error { return nil } // quayctl serve does not need Redis
	if set.Redis != nil {
		redis = health.RedisPing(set.Redis.Host, set.Redis.Port, set.Redis.Password)
	}
	ping := func(ctx context.Context) error {
		if s.selfURL == "" {
			return nil
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.selfURL+"/_internal_ping", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("internal ping answered %d", resp.StatusCode)
		}
		return nil
	}
	serviceKey := func(ctx context.Context) error {
		_, err := s.Store.ServiceKey(ctx, s.Auth.KeyID())
		return err
	}
	paths := set.DiskPaths
	if len(paths) == 0 {
		paths = []string{os.TempDir()}
	}
	diskT, warnT := set.DiskThreshold, set.DiskWarningThreshold
	if diskT == 0 {
		diskT = 0.01
	}
	if warnT == 0 {
		warnT = 0.1
	}
	authCheck := func(ctx context.Context) error { return nil } // Database auth: Quay's ping always passes
	instance := map[string]health.Check{
		"registry_gunicorn": ping, "web_gunicorn": ping, "service_key": serviceKey,
		"disk_space": health.DiskSpace(diskT, paths...), "database": database, "auth": authCheck,
		"redis": redis, "storage": storageCheck,
	}
	skips := set.InstanceSkips
	if skips == nil {
		skips = []string{"redis", "storage"}
	}
	for name := range instance {
		if slices.Contains(skips, name) {
			delete(instance, name)
		}
	}
	return &health.Checker{
		Logger:   s.log,
		Instance: instance,
		EndToEnd: map[string]health.Check{"database": database, "redis": redis, "storage": storageCheck, "auth": authCheck},
		Warning:  map[string]health.Check{"disk_space_warning": health.DiskSpace(warnT, paths...)},
	}
}
