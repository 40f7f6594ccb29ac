package server

import (
	"context"

	"github.com/quayctl/quayctl/registry/autoprune"
)

// AutoPruner runs this server's namespace auto-prune policies and the
// registry-wide one.
func (s *Server) AutoPruner() *autoprune.Pruner {
	return autoprune.New(s.Store, autoprune.Options{Logger: s.log, BatchSize: s.settings.AutoPruneBatchSize,
		MinInterval: s.settings.AutoPruneMinInterval, RegistryPolicy: s.registryPolicy,
		RegistryPeriod: s.settings.AutoPruneRegistryPeriod, RegistryTimeout: s.settings.AutoPruneRegistryTimeout,
		NamespacePageSize: s.settings.AutoPruneNamespacePage})
}

// startAutoPrune runs Quay's autopruneworker when FEATURE_AUTO_PRUNE is on
// and this process runs it (serve --only-workers); replicas share the
// work through the task claim in the database.
func (s *Server) startAutoPrune(ctx context.Context) {
	if !s.settings.AutoPrune || !s.runs("autopruneworker") {
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.AutoPruner().Worker(ctx, s.settings.AutoPrunePollPeriod)
	}()
}
