package notify

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/mail"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/quayctl/quayctl/registry/store"
)

// Store is what the dispatcher needs from the database.
type Store interface {
	store.NotificationStore
	Repository(ctx context.Context, namespace, name string) (*store.Repository, error)
	UserByName(ctx context.Context, username string) (*store.User, error)
	TeamByName(ctx context.Context, orgID int64, name string) (*store.Team, error)
	TeamMembers(ctx context.Context, teamID int64) ([]store.User, error)
}

// Mail is the SMTP server e-mail notifications go through (Quay's
// MAIL_SERVER, MAIL_PORT, MAIL_USE_TLS, MAIL_USE_AUTH/MAIL_USERNAME/
// MAIL_PASSWORD, MAIL_DEFAULT_SENDER). nil in Options: e-mail
// notifications are refused.
type Mail struct {
	Server string
	Port   int // 0: 587
	// UseTLS requires STARTTLS before the envelope (and any password) is
	// sent; TLSConfig verifies the server (nil: system roots, Server's
	// name).
	UseTLS    bool
	TLSConfig *tls.Config
	// Username, when set, logs in with AUTH PLAIN, which net/smtp only
	// does over TLS or to localhost.
	Username, Password string
	Sender             string // "": support@quay.io
}

// String describes the server without the password, so a Mail printed by
// mistake leaks nothing.
func (m Mail) String() string {
	s := fmt.Sprintf("smtp://%s:%d tls=%t sender=%q", m.Server, m.Port, m.UseTLS, m.Sender)
	if m.Username != "" {
		s += " user=" + m.Username
	}
	return s
}

// LogValue keeps the password out of structured logs.
func (m Mail) LogValue() slog.Value { return slog.StringValue(m.String()) }

// Options configure a Dispatcher. Zero values take Quay's defaults.
type Options struct {
	// ServerHostname and Scheme (SERVER_HOSTNAME, PREFERRED_URL_SCHEME)
	// make the docker_url and homepage of event payloads.
	ServerHostname string
	Scheme         string
	// Mail enables the email method (FEATURE_MAILING with a MAIL_SERVER).
	Mail *Mail
	// HostnameBlacklist are webhook hosts refused at creation and delivery
	// (WEBHOOK_HOSTNAME_BLACKLIST), besides localhost and 127.0.0.1 which
	// are always refused; compared case-insensitively.
	HostnameBlacklist []string
	// Timeout bounds one delivery (NOTIFICATION_SEND_TIMEOUT, 10s).
	Timeout time.Duration
	// RetryAfter is the wait after the first failed delivery, doubled at
	// each further failure (Quay waits 30s).
	RetryAfter time.Duration
	// Poll is how often an idle worker looks at the queue (Quay: 10s).
	Poll time.Duration
	// Retries are the tries of one delivery (Quay's queue default, 5);
	// the notification is disabled after store.NotificationFailureLimit
	// consecutive failures anyway.
	Retries int
	// HTTPClient sends webhooks and Slack messages; nil: a client with
	// Timeout.
	HTTPClient *http.Client
	Logger     *slog.Logger
}

// Dispatcher is the real Emitter: Emit records one queue item per
// matching repository notification, and the worker (Run) delivers them.
type Dispatcher struct {
	st   Store
	opts Options
	log  *slog.Logger
	http *http.Client
}

var _ Emitter = (*Dispatcher)(nil)

// NewDispatcher builds a dispatcher over st.
func NewDispatcher(st Store, opts Options) *Dispatcher {
	if opts.Scheme == "" {
		opts.Scheme = "http"
	}
	// localhost and 127.0.0.1 are always refused; the list adds to them.
	blacklist := []string{"localhost", "127.0.0.1"}
	for _, h := range opts.HostnameBlacklist {
		if h = strings.ToLower(strings.TrimSpace(h)); h != "" && !slices.Contains(blacklist, h) {
			blacklist = append(blacklist, h)
		}
	}
	opts.HostnameBlacklist = blacklist
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.RetryAfter <= 0 {
		opts.RetryAfter = 30 * time.Second
	}
	if opts.Poll <= 0 {
		opts.Poll = 10 * time.Second
	}
	if opts.Retries <= 0 {
		opts.Retries = 5
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	hc := opts.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: opts.Timeout}
	}
	return &Dispatcher{st: st, opts: opts, log: log, http: hc}
}

// queueBody is a queue item's JSON, Quay's build_notification_data.
type queueBody struct {
	NotificationUUID string         `json:"notification_uuid"`
	EventData        map[string]any `json:"event_data"`
	PerformerData    map[string]any `json:"performer_data"`
}

// eventData is Quay's build_repository_event_data: the repository's
// names, Docker URL and web page, then the event's own fields.
func (d *Dispatcher) eventData(namespace, repo string, extra map[string]any) map[string]any {
	full := namespace + "/" + repo
	data := map[string]any{
		"repository": full,
		"namespace":  namespace,
		"name":       repo,
		"docker_url": d.opts.ServerHostname + "/" + full,
		"homepage":   d.opts.Scheme + "://" + d.opts.ServerHostname + "/repository/" + full,
	}
	for k, v := range extra {
		data[k] = v
	}
	return data
}

// Emit implements Emitter: it finds the repository's enabled
// notifications for the event and queues one delivery each, in one
// transaction. Nothing here touches the network.
func (d *Dispatcher) Emit(ctx context.Context, ev Event) error {
	repoID := ev.RepositoryID
	if repoID == 0 {
		r, err := d.st.Repository(ctx, ev.Namespace, ev.Repository)
		if err != nil {
			return fmt.Errorf("notify %s on %s/%s: %w", ev.Kind, ev.Namespace, ev.Repository, err)
		}
		repoID = r.ID
	}
	ns, err := d.st.RepoNotifications(ctx, repoID, ev.Kind)
	if err != nil {
		return fmt.Errorf("notify %s on %s/%s: %w", ev.Kind, ev.Namespace, ev.Repository, err)
	}
	var bodies []string
	for _, n := range ns {
		if n.NumberOfFailures >= store.NotificationFailureLimit {
			continue // disabled until reset, as Quay's worker skips it
		}
		namespace, repo := ev.Namespace, ev.Repository
		if namespace == "" || repo == "" {
			namespace, repo = n.Namespace, n.Repository
		}
		b, err := json.Marshal(queueBody{NotificationUUID: n.UUID, EventData: d.eventData(namespace, repo, ev.Data), PerformerData: map[string]any{}})
		if err != nil {
			return fmt.Errorf("notify %s: encode payload: %w", ev.Kind, err)
		}
		bodies = append(bodies, string(b))
	}
	if len(bodies) == 0 {
		return nil
	}
	name := queueName(ns[0].Namespace, ns[0].Repository, ev.Kind)
	if err := d.st.EnqueueNotifications(ctx, name, bodies, d.opts.Retries); err != nil {
		return fmt.Errorf("notify %s on %s/%s: %w", ev.Kind, ns[0].Namespace, ns[0].Repository, err)
	}
	return nil
}

// queueName is Quay's queue path for a repository event.
func queueName(namespace, repo, event string) string {
	return store.NotificationQueue + "/" + namespace + "/" + repo + "/" + event + "/"
}

// QueueTest queues a delivery of the event's sample data to one
// notification (Quay's queue_test_notification), whatever its failures.
func (d *Dispatcher) QueueTest(ctx context.Context, n *store.RepoNotification) error {
	sample := map[string]any{}
	if e, ok := events[n.Event]; ok {
		for k, v := range e.sample {
			sample[k] = v
		}
	}
	b, err := json.Marshal(queueBody{NotificationUUID: n.UUID, EventData: d.eventData(n.Namespace, n.Repository, sample), PerformerData: map[string]any{}})
	if err != nil {
		return err
	}
	return d.st.EnqueueNotifications(ctx, queueName(n.Namespace, n.Repository, n.Event), []string{string(b)}, d.opts.Retries)
}

// ValidationError is a notification the API must refuse (answered 400).
type ValidationError struct{ Msg string }

func (e *ValidationError) Error() string { return e.Msg }

func invalid(format string, args ...any) error {
	return &ValidationError{Msg: fmt.Sprintf(format, args...)}
}

// Methods lists the method names quayctl delivers.
func Methods() []string { return []string{"email", "quay_notification", "slack", "webhook"} }

// Validate checks a new notification for a repository of namespace:
// the event and method exist, and the method's config is complete
// (Quay's NotificationMethod.validate). Errors are *ValidationError with
// a message for the user, or store errors.
func (d *Dispatcher) Validate(ctx context.Context, namespace, event, method string, config map[string]any) error {
	if _, ok := events[event]; !ok {
		return invalid("unknown event %q: use one of %s", event, strings.Join(Events(), ", "))
	}
	switch method {
	case "webhook":
		return d.validateURL("webhook", config, true)
	case "slack":
		return d.validateURL("Slack", config, false)
	case "quay_notification":
		_, err := d.targets(ctx, namespace, config)
		return err
	case "email":
		if d.opts.Mail == nil || d.opts.Mail.Server == "" {
			return invalid("e-mail notifications need mail to be configured: set FEATURE_MAILING: true and MAIL_SERVER (with MAIL_PORT, MAIL_DEFAULT_SENDER and, if the server needs them, MAIL_USE_AUTH, MAIL_USERNAME, MAIL_PASSWORD) in config.yaml, or use the webhook, slack or quay_notification method")
		}
		addr, _ := config["email"].(string)
		if addr == "" {
			return invalid("missing e-mail address: set config.email")
		}
		if _, err := mail.ParseAddress(addr); err != nil {
			return invalid("invalid e-mail address %q: %v", addr, err)
		}
		return nil
	case "flowdock", "hipchat":
		return invalid("the %s method is for a retired service and quayctl does not deliver it: use slack or webhook", method)
	}
	return invalid("unknown method %q: use one of %s", method, strings.Join(Methods(), ", "))
}

func (d *Dispatcher) validateURL(what string, config map[string]any, checkHost bool) error {
	raw, _ := config["url"].(string)
	if raw == "" {
		return invalid("missing %s URL: set config.url", what)
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return invalid("invalid %s URL %s: it must be an http:// or https:// URL", what, safeURL(raw))
	}
	if checkHost && slices.Contains(d.opts.HostnameBlacklist, strings.ToLower(u.Hostname())) {
		return invalid("invalid %s URL %s: host %s is not allowed (WEBHOOK_HOSTNAME_BLACKLIST, localhost and 127.0.0.1 are refused)", what, safeURL(raw), u.Hostname())
	}
	if t, ok := config["template"]; ok && t != nil && t != "" {
		return invalid("webhook body templates (config.template) are not supported by quayctl: remove it to receive Quay's standard JSON payload")
	}
	return nil
}

// safeURL shows a URL without its path and query, which often hold a
// secret (Slack incoming-webhook URLs do).
func safeURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(unparsable URL)"
	}
	s := u.Scheme + "://" + u.Host
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		s += "/…"
	}
	return s
}

// targets resolves quay_notification's config.target to users or
// organisations to notify (Quay's find_targets).
func (d *Dispatcher) targets(ctx context.Context, namespace string, config map[string]any) ([]store.User, error) {
	target, _ := config["target"].(map[string]any)
	kind, _ := target["kind"].(string)
	name, _ := target["name"].(string)
	if kind == "" || name == "" {
		return nil, invalid(`missing target: set config.target to {"kind": "user"|"team"|"org", "name": "…"}`)
	}
	switch kind {
	case "user":
		u, err := d.st.UserByName(ctx, name)
		if errors.Is(err, store.ErrNotFound) || (err == nil && (u.Robot || u.Organization)) {
			return nil, invalid("unknown user %s", name)
		}
		if err != nil {
			return nil, err
		}
		return []store.User{*u}, nil
	case "org":
		if name != namespace {
			return nil, invalid("organization name must match the repository's namespace %s", namespace)
		}
		u, err := d.st.UserByName(ctx, name)
		if errors.Is(err, store.ErrNotFound) || (err == nil && !u.Organization) {
			return nil, invalid("unknown organization %s", name)
		}
		if err != nil {
			return nil, err
		}
		return []store.User{*u}, nil
	case "team":
		org, err := d.st.UserByName(ctx, namespace)
		if err != nil {
			return nil, fmt.Errorf("namespace %s: %w", namespace, err)
		}
		t, err := d.st.TeamByName(ctx, org.ID, name)
		if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrNotOrganization) {
			return nil, invalid("unknown team %s in %s", name, namespace)
		}
		if err != nil {
			return nil, err
		}
		return d.st.TeamMembers(ctx, t.ID)
	}
	return nil, invalid("unknown target kind %q: use user, team or org", kind)
}
