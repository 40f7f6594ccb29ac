package notify

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/mail"
	"net/smtp"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/quayctl/quayctl/registry/store"
)

// Run is the notification worker (Quay's notificationworker): it delivers
// queued items until ctx ends, polling every Options.Poll when idle.
// Several workers, in one process or many, share the queue safely.
func (d *Dispatcher) Run(ctx context.Context) {
	d.log.InfoContext(ctx, "notification worker started", "poll", d.opts.Poll.String())
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for ctx.Err() == nil {
			worked, err := d.DeliverOne(ctx)
			if err != nil && ctx.Err() == nil {
				d.log.WarnContext(ctx, "notification worker: cannot read the queue", "err", err)
			}
			if !worked || err != nil {
				break
			}
		}
		t.Reset(d.opts.Poll)
	}
}

// lease is how long a claimed delivery stays with its worker: longer than
// any delivery may take, so nobody else takes it while it is being sent.
func (d *Dispatcher) lease() time.Duration { return 3*d.opts.Timeout + 30*time.Second }

// DeliverOne claims and performs one queued delivery; false when the
// queue had nothing available.
func (d *Dispatcher) DeliverOne(ctx context.Context) (bool, error) {
	it, err := d.st.ClaimNotification(ctx, d.lease())
	if err != nil || it == nil {
		return false, err
	}
	d.deliver(ctx, it)
	return true, nil
}

func (d *Dispatcher) complete(ctx context.Context, it *store.NotificationQueueItem) {
	if _, err := d.st.CompleteNotification(ctx, it); err != nil {
		d.log.WarnContext(ctx, "cannot remove a delivered notification from the queue", "queue_item", it.ID, "err", err)
	}
}

func (d *Dispatcher) deliver(ctx context.Context, it *store.NotificationQueueItem) {
	var body queueBody
	if err := json.Unmarshal([]byte(it.Body), &body); err != nil || body.NotificationUUID == "" {
		d.log.WarnContext(ctx, "dropping an unreadable notification queue item", "queue_item", it.ID, "queue", it.QueueName)
		d.complete(ctx, it)
		return
	}
	n, err := d.st.RepoNotificationByUUID(ctx, body.NotificationUUID)
	if errors.Is(err, store.ErrNotFound) {
		d.complete(ctx, it) // the notification was deleted since
		return
	}
	if err != nil {
		d.log.WarnContext(ctx, "cannot read a repository notification; will retry", "notification", body.NotificationUUID, "err", err)
		_ = d.st.RetryNotification(ctx, it, time.Now().Add(d.opts.RetryAfter))
		return
	}
	log := d.log.With("notification", n.UUID, "repository", n.Namespace+"/"+n.Repository, "event", n.Event, "method", n.Method)
	if n.NumberOfFailures >= store.NotificationFailureLimit {
		log.InfoContext(ctx, "notification disabled after repeated failures; dropping delivery (reset it with POST …/notification/{uuid})", "number_of_failures", n.NumberOfFailures)
		d.complete(ctx, it)
		return
	}
	if body.EventData == nil {
		body.EventData = map[string]any{}
	}
	perr := d.perform(ctx, n, body.EventData)
	if perr == nil {
		if _, err := d.st.RecordNotificationResult(ctx, n.UUID, true); err != nil && !errors.Is(err, store.ErrNotFound) {
			log.WarnContext(ctx, "cannot record a notification's success", "err", err)
		}
		d.complete(ctx, it)
		log.DebugContext(ctx, "notification delivered")
		return
	}
	failures, err := d.st.RecordNotificationResult(ctx, n.UUID, false)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		log.WarnContext(ctx, "cannot record a notification's failure", "err", err)
	}
	if failures >= store.NotificationFailureLimit || it.RetriesRemaining <= 0 || errors.Is(err, store.ErrNotFound) {
		log.WarnContext(ctx, "notification delivery failed; giving up", "err", perr, "number_of_failures", failures)
		d.complete(ctx, it)
		return
	}
	used := d.opts.Retries - it.RetriesRemaining
	wait := d.opts.RetryAfter << max(0, min(used-1, 8))
	log.WarnContext(ctx, "notification delivery failed; will retry", "err", perr, "number_of_failures", failures, "retry_in", wait.String())
	if err := d.st.RetryNotification(ctx, it, time.Now().Add(wait)); err != nil {
		log.WarnContext(ctx, "cannot put a failed notification back in the queue", "err", err)
	}
}

func (d *Dispatcher) perform(ctx context.Context, n *store.RepoNotification, data map[string]any) error {
	var config map[string]any
	if err := json.Unmarshal([]byte(n.ConfigJSON), &config); err != nil {
		return fmt.Errorf("config_json is not a JSON object: %w", err)
	}
	switch n.Method {
	case "webhook":
		raw, _ := config["url"].(string)
		if err := d.validateURL("webhook", config, true); err != nil {
			return err
		}
		return d.post(ctx, "webhook", raw, data)
	case "slack":
		raw, _ := config["url"].(string)
		if err := d.validateURL("Slack", config, false); err != nil {
			return err
		}
		return d.post(ctx, "Slack", raw, slackPayload(n.Event, data))
	case "quay_notification":
		users, err := d.targets(ctx, n.Namespace, config)
		if err != nil {
			return err
		}
		md, _ := json.Marshal(data)
		seen := map[int64]bool{}
		for _, u := range users {
			// Robots never read in-app notifications (and a row
			// would hold up the robot's deletion).
			if seen[u.ID] || u.Robot {
				continue
			}
			seen[u.ID] = true
			if err := d.st.CreateUserNotification(ctx, n.Event, u.ID, string(md)); err != nil {
				return err
			}
		}
		return nil
	case "email":
		addr, _ := config["email"].(string)
		return d.sendMail(ctx, addr, summaryOf(n.Event, data), messageOf(n.Event, data))
	}
	return fmt.Errorf("method %s is not delivered by quayctl", n.Method)
}

// post sends JSON; any 2xx is success, as in Quay.
func (d *Dispatcher) post(ctx context.Context, what, target string, payload any) error {
	b, err := json.Marshal(payload)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, d.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("%s to %s: %v", what, safeURL(target), errors.Unwrap(err))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "quayctl-notificationworker")
	resp, err := d.http.Do(req)
	if err != nil {
		// url.Error repeats the full URL; keep only the cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("%s to %s: %v", what, safeURL(target), err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%d response for %s to %s", resp.StatusCode, what, safeURL(target))
	}
	return nil
}

// slackPayload is Slack's incoming-webhook message, shaped as Quay's.
func slackPayload(event string, data map[string]any) map[string]any {
	summary := summaryOf(event, data)
	color := map[string]string{"info": "#ffffff", "warning": "warning", "error": "danger", "success": "good", "primary": "good"}[levelOf(event)]
	return map[string]any{
		"text":     summary,
		"username": "quayiobot",
		"attachments": []map[string]any{{
			"fallback": summary, "text": messageOf(event, data), "color": color, "mrkdwn_in": []string{"text"},
		}},
	}
}

// sendMail delivers one plain-text message; any refusal by the server
// (connection, STARTTLS, AUTH, MAIL, RCPT or DATA) is a failed delivery,
// retried like a webhook's. The password never appears in errors.
func (d *Dispatcher) sendMail(ctx context.Context, to, subject, body string) error {
	m := d.opts.Mail
	if m == nil || m.Server == "" {
		return errors.New("mail is not configured (FEATURE_MAILING, MAIL_SERVER)")
	}
	rcpt, err := mail.ParseAddress(to)
	if err != nil {
		return fmt.Errorf("invalid e-mail address %q: %v", to, err)
	}
	from := m.Sender
	if from == "" {
		from = "support@quay.io"
	}
	sender, err := mail.ParseAddress(from)
	if err != nil {
		return fmt.Errorf("invalid MAIL_DEFAULT_SENDER %q: %v", from, err)
	}
	port := m.Port
	if port == 0 {
		port = 587
	}
	addr := net.JoinHostPort(m.Server, strconv.Itoa(port))
	fail := func(step string, err error) error { return fmt.Errorf("e-mail through %s: %s: %w", addr, step, err) }
	ctx, cancel := context.WithTimeout(ctx, d.opts.Timeout)
	defer cancel()
	var dialer net.Dialer
	conn, err := dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fail("connect", err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl) // net/smtp has no context of its own
	}
	c, err := smtp.NewClient(conn, m.Server)
	if err != nil {
		return fail("greeting", err)
	}
	defer c.Close()
	if err := c.Hello("quayctl"); err != nil {
		return fail("EHLO", err)
	}
	if m.UseTLS {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return fail("STARTTLS", errors.New("the server does not offer it, and MAIL_USE_TLS requires it (set MAIL_USE_TLS: false only for a server on a trusted network)"))
		}
		tc := &tls.Config{}
		if m.TLSConfig != nil {
			tc = m.TLSConfig.Clone()
		}
		if tc.ServerName == "" {
			tc.ServerName = m.Server
		}
		if err := c.StartTLS(tc); err != nil {
			return fail("STARTTLS", err)
		}
	}
	if m.Username != "" {
		if ok, _ := c.Extension("AUTH"); !ok {
			return fail("AUTH", errors.New("the server does not offer authentication on this connection (MAIL_USE_AUTH is true; does it need MAIL_USE_TLS: true?)"))
		}
		if err := c.Auth(smtp.PlainAuth("", m.Username, m.Password, m.Server)); err != nil {
			return fail("log in as "+m.Username, err)
		}
	}
	if err := c.Mail(sender.Address); err != nil {
		return fail("MAIL FROM", err)
	}
	if err := c.Rcpt(rcpt.Address); err != nil {
		return fail("RCPT TO "+rcpt.Address, err)
	}
	w, err := c.Data()
	if err != nil {
		return fail("DATA", err)
	}
	msg := "From: " + sender.String() + "\r\nTo: " + rcpt.String() +
		"\r\nSubject: " + mime.QEncoding.Encode("utf-8", strings.ReplaceAll(subject, "\n", " ")) +
		"\r\nDate: " + time.Now().Format(time.RFC1123Z) +
		"\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" +
		strings.ReplaceAll(strings.ReplaceAll(body, "\r\n", "\n"), "\n", "\r\n") + "\r\n"
	if _, err := io.WriteString(w, msg); err != nil {
		return fail("DATA", err)
	}
	if err := w.Close(); err != nil {
		return fail("message refused", err)
	}
	_ = c.Quit() // delivered; a failed goodbye changes nothing
	return nil
}
