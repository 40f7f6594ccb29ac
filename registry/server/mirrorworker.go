package server

import (
	"context"

	"github.com/quayctl/quayctl/registry/mirror"
)

// Mirror is a repository mirror syncer over this server's database and
// preferred storage location.
func (s *Server) Mirror() *mirror.Syncer {
	loc := s.settings.Preference[0]
	return mirror.New(s.Store, s.Storage[loc], mirror.Options{Location: loc, EncryptionKey: s.encKey,
		Rollback: s.settings.RepoMirrorRollback, MaxManifestBytes: s.settings.MaxManifestBytes, Logger: s.log,
		Notifier: s.Notifier})
}

// startMirror runs the repository mirror worker when FEATURE_REPO_MIRROR
// is on and this process runs Quay's repomirror worker (serve
// --only-workers); replicas coordinate through the database claim.
func (s *Server) startMirror(ctx context.Context) {
	if !s.settings.RepoMirror || !s.runs("repomirror") {
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.Mirror().Worker(ctx, s.settings.RepoMirrorInterval)
	}()
}
