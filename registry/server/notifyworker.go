package server

import (
	"context"

	"github.com/quayctl/quayctl/registry/notify"
	"github.com/quayctl/quayctl/registry/store"
)

// newDispatcher builds the repository-notification dispatcher: every
// producer (pushes, mirror syncs, quota) emits through it, and the
// notification worker delivers what it queued.
func (s *Server) newDispatcher(st *store.DB) *notify.Dispatcher {
	var mail *notify.Mail
	if s.settings.Mailing && s.settings.Mail != nil && s.settings.Mail.Server != "" {
		mail = s.settings.Mail
	}
	return notify.NewDispatcher(st, notify.Options{
		ServerHostname:    s.settings.ServerHostname,
		Scheme:            s.settings.PreferredURLScheme,
		Mail:              mail,
		HostnameBlacklist: s.settings.WebhookHostnameBlacklist,
		RetryAfter:        s.settings.NotificationRetryAfter,
		Poll:              s.settings.NotificationPoll,
		Logger:            s.log,
	})
}

// startNotifications runs the notification worker (Quay's
// notificationworker); replicas share the queue through the database.
func (s *Server) startNotifications(ctx context.Context) {
	if !s.settings.Notifications || !s.runs("notificationworker") || s.dispatcher == nil {
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.dispatcher.Run(ctx)
	}()
}
