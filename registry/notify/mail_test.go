package notify

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// sink is a real SMTP server (go-smtp) in the test process that keeps the
// messages it accepts.
type sink struct {
	addr       string
	port       int
	user, pass string // AUTH PLAIN credentials offered; "" no AUTH
	refuseRcpt string // RCPT TO this address answers 550

	mu   sync.Mutex
	msgs []sunk
}

// sunk is one accepted message with how it arrived.
type sunk struct {
	from, to   string
	data       string
	tls        bool
	authUser   string
	authedOver bool // AUTH happened over TLS
}

type sinkSession struct {
	s    *sink
	conn *smtp.Conn
	cur  sunk
}

func (ss *sinkSession) AuthMechanisms() []string {
	if ss.s.user == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (ss *sinkSession) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != ss.s.user || pass != ss.s.pass {
			return smtp.ErrAuthFailed
		}
		_, isTLS := ss.conn.TLSConnectionState()
		ss.cur.authUser, ss.cur.authedOver = user, isTLS
		return nil
	}), nil
}

func (ss *sinkSession) Mail(from string, _ *smtp.MailOptions) error {
	if ss.s.user != "" && ss.cur.authUser == "" {
		return smtp.ErrAuthRequired
	}
	ss.cur.from = from
	return nil
}

func (ss *sinkSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if to == ss.s.refuseRcpt {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such mailbox"}
	}
	ss.cur.to = to
	return nil
}

func (ss *sinkSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m := ss.cur
	m.data = string(b)
	_, m.tls = ss.conn.TLSConnectionState()
	ss.s.mu.Lock()
	ss.s.msgs = append(ss.s.msgs, m)
	ss.s.mu.Unlock()
	return nil
}

func (ss *sinkSession) Reset() {
	ss.cur = sunk{authUser: ss.cur.authUser, authedOver: ss.cur.authedOver}
}

func (ss *sinkSession) Logout() error { return nil }

// newSink starts an SMTP server on 127.0.0.1; with cert it offers STARTTLS.
func newSink(t *testing.T, cert *tls.Certificate, user, pass string) *sink {
	t.Helper()
	s := &sink{user: user, pass: pass}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &sinkSession{s: s, conn: c}, nil
	}))
	srv.Domain = "sink.test"
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	if cert != nil {
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{*cert}}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = "127.0.0.1"
	s.port = ln.Addr().(*net.TCPAddr).Port
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return s
}

func (s *sink) got() []sunk {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]sunk(nil), s.msgs...)
}

// selfSigned makes a certificate for 127.0.0.1 and a pool trusting it.
func selfSigned(t *testing.T) (*tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sink.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// TestEmailNotification delivers repo_push notifications with the email
// method through a real SMTP server: plain, STARTTLS with AUTH PLAIN, and
// the refusals that must count as failed deliveries.
func TestEmailNotification(t *testing.T) {
	const password = "smtp-secret-pw"
	cert, pool := selfSigned(t)
	tests := []struct {
		name string
		// server side
		tls        bool
		user, pass string
		refuseRcpt bool
		// client side (what MAIL_* would say)
		useTLS             bool
		trust              bool
		username, password string
		// outcome
		wantErr string // "" delivered
	}{
		{name: "plain", wantErr: ""},
		{name: "STARTTLS and AUTH PLAIN", tls: true, user: "quay", pass: password, useTLS: true, trust: true, username: "quay", password: password},
		{name: "STARTTLS without AUTH", tls: true, useTLS: true, trust: true},
		{name: "MAIL_USE_TLS but no STARTTLS offered", useTLS: true, wantErr: "STARTTLS: the server does not offer it"},
		{name: "untrusted certificate", tls: true, useTLS: true, wantErr: "certificate"},
		{name: "wrong password", tls: true, user: "quay", pass: password, useTLS: true, trust: true, username: "quay", password: "wrong-secret-pw", wantErr: "log in as quay"},
		{name: "AUTH without TLS is not offered", tls: true, user: "quay", pass: password, username: "quay", password: password, wantErr: "does not offer authentication"},
		{name: "recipient refused", refuseRcpt: true, wantErr: "550"},
	}
	forEachDialect(t, func(t *testing.T, uri string) {
		ctx := context.Background()
		w := newWorld(t, uri)
		for i, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				var c *tls.Certificate
				if tc.tls {
					c = cert
				}
				s := newSink(t, c, tc.user, tc.pass)
				to := fmt.Sprintf("dev%d@example.com", i)
				if tc.refuseRcpt {
					s.refuseRcpt = to
				}
				m := &Mail{Server: s.addr, Port: s.port, UseTLS: tc.useTLS, Username: tc.username, Password: tc.password,
					Sender: "Quay Registry <quay@example.com>"}
				if tc.trust {
					m.TLSConfig = &tls.Config{RootCAs: pool}
				}
				var logs bytes.Buffer
				d := NewDispatcher(w.db, Options{ServerHostname: "quay.example.com", Scheme: "https", Mail: m,
					RetryAfter: time.Hour, Timeout: 5 * time.Second, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
				// One repository per case: Emit queues for every
				// notification of the repository.
				repo, err := w.db.CreateRepository(ctx, w.alice.ID, fmt.Sprintf("mail%d", i), false, w.alice.ID)
				if err != nil {
					t.Fatal(err)
				}
				if err := d.Validate(ctx, "alice", RepoPush, "email", map[string]any{"email": to}); err != nil {
					t.Fatalf("Validate: %v", err)
				}
				n := w.notification(t, repo, RepoPush, "email", map[string]any{"email": to})
				pending, err := w.db.PendingNotifications(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if err := d.Emit(ctx, Event{Kind: RepoPush, RepositoryID: repo.ID, Namespace: "alice", Repository: repo.Name,
					Data: map[string]any{"updated_tags": []string{"latest"}}}); err != nil {
					t.Fatal(err)
				}
				// The worker's path; earlier cases' failures wait an hour.
				if got := drain(t, d); got != 1 {
					t.Fatalf("delivered %d items, want 1", got)
				}
				got, err := w.db.RepoNotificationByUUID(ctx, n.UUID)
				if err != nil {
					t.Fatal(err)
				}
				after, _ := w.db.PendingNotifications(ctx)
				msgs := s.got()
				if strings.Contains(logs.String(), password) || strings.Contains(logs.String(), "wrong-secret-pw") {
					t.Errorf("worker log shows the password:\n%s", logs.String())
				}
				if tc.wantErr != "" {
					if !strings.Contains(logs.String(), "will retry") || !strings.Contains(logs.String(), tc.wantErr) {
						t.Errorf("worker log does not report a retried failure containing %q:\n%s", tc.wantErr, logs.String())
					}
					if got.NumberOfFailures != 1 {
						t.Errorf("number_of_failures = %d, want 1", got.NumberOfFailures)
					}
					if after != pending+1 {
						t.Errorf("%d deliveries queued after a failure, want %d (the retry)", after, pending+1)
					}
					if len(msgs) != 0 {
						t.Errorf("server accepted %d messages", len(msgs))
					}
					return
				}
				if got.NumberOfFailures != 0 || got.LastRanMs == nil || after != pending {
					t.Errorf("after delivery: failures %d, last ran %v, queued %d (want %d); log:\n%s", got.NumberOfFailures, got.LastRanMs, after, pending, logs.String())
				}
				if len(msgs) != 1 {
					t.Fatalf("server got %d messages, want 1", len(msgs))
				}
				msg := msgs[0]
				if msg.from != "quay@example.com" || msg.to != to {
					t.Errorf("envelope %s -> %s, want quay@example.com -> %s", msg.from, msg.to, to)
				}
				if msg.tls != tc.useTLS {
					t.Errorf("message over TLS: %t, want %t", msg.tls, tc.useTLS)
				}
				if tc.username != "" && (msg.authUser != tc.username || !msg.authedOver) {
					t.Errorf("AUTH as %q over TLS %t, want %q over TLS", msg.authUser, msg.authedOver, tc.username)
				}
				pm, err := mail.ReadMessage(strings.NewReader(msg.data))
				if err != nil {
					t.Fatalf("message does not parse: %v\n%s", err, msg.data)
				}
				full := "alice/" + repo.Name
				for k, want := range map[string]string{
					"From": `"Quay Registry" <quay@example.com>`, "To": "<" + to + ">",
					"Subject": "Repository " + full + " updated", "Content-Type": "text/plain; charset=utf-8",
				} {
					if v := pm.Header.Get(k); v != want {
						t.Errorf("header %s = %q, want %q", k, v, want)
					}
				}
				b, _ := io.ReadAll(pm.Body)
				wantBody := "Repository " + full + " updated\r\nupdated_tags: latest\r\nhttps://quay.example.com/repository/" + full + "\r\n"
				if string(b) != wantBody {
					t.Errorf("body = %q, want %q", b, wantBody)
				}
			})
		}
	})
}
