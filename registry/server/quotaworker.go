package server

import (
	"context"
	"time"

	"github.com/quayctl/quayctl/registry/store"
)

// Quay's quota worker periods: quotatotalworker every 15 s after its
// start delay (QUOTA_TOTAL_DELAY_SECONDS), quotaregistrysizeworker every
// 60 s.
const (
	quotaBackfillPeriod     = 15 * time.Second
	quotaBackfillBatch      = 100
	quotaRegistrySizePeriod = 60 * time.Second
)

// wireQuota tells the store how to keep and enforce sizes.
func (s *Server) wireQuota(st *store.DB) {
	st.SetQuotaPolicy(store.QuotaPolicy{Track: s.settings.QuotaManagement, Verify: s.settings.QuotaManagement && s.settings.VerifyQuota,
		DefaultRejectBytes: s.settings.DefaultRejectQuotaBytes})
}

// startQuota runs Quay's two quota workers when FEATURE_QUOTA_MANAGEMENT is
// on: the backfill of namespaces without a complete size
// (quotatotalworker) and the registry size recount (quotaregistrysizeworker).
func (s *Server) startQuota(ctx context.Context) {
	if !s.settings.QuotaManagement {
		return
	}
	if s.runs("quotatotalworker") {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.quotaLoop(ctx, s.settings.QuotaTotalDelay, quotaBackfillPeriod, func(ctx context.Context) error {
				n, err := s.Store.BackfillQuotaSizes(ctx, quotaBackfillBatch)
				if n > 0 {
					s.log.Info("quota sizes backfilled", "namespaces", n)
				}
				return err
			})
		}()
	}
	if s.runs("quotaregistrysizeworker") {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			// Start from a known size, as enabling the feature should.
			if err := s.Store.QueueRegistrySize(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("cannot queue the registry size recount", "error", err)
			}
			s.quotaLoop(ctx, 0, quotaRegistrySizePeriod, func(ctx context.Context) error {
				_, err := s.Store.UpdateRegistrySize(ctx)
				return err
			})
		}()
	}
}

// quotaLoop runs fn after delay, then every period, until ctx ends.
func (s *Server) quotaLoop(ctx context.Context, delay, period time.Duration, fn func(context.Context) error) {
	if delay > 0 {
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
	}
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		if err := fn(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("quota worker failed; retrying next period", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
