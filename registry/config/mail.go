package config

import (
	"net/mail"
	"strings"
)

// MailEnabled reports whether e-mail notifications can be sent: FEATURE_MAILING
// is on and MAIL_SERVER names an SMTP server.
func (c *Config) MailEnabled() bool { return c.FeatureMailing && c.MailServer != "" }

// WebhookBlacklist is WEBHOOK_HOSTNAME_BLACKLIST lowercased, after the hosts
// Quay always refuses (localhost and 127.0.0.1).
func (c *Config) WebhookBlacklist() []string {
	hosts := []string{"localhost", "127.0.0.1"}
	for _, h := range c.WebhookHostnameBlacklist {
		if h = strings.ToLower(strings.TrimSpace(h)); h != "" {
			hosts = append(hosts, h)
		}
	}
	return hosts
}

// validateMail checks the MAIL_* keys when mail is on; values of a server
// that is never used are not judged. Messages never repeat MAIL_PASSWORD.
func (c *Config) validateMail(ps *problems) {
	for _, h := range c.WebhookHostnameBlacklist {
		if h = strings.TrimSpace(h); h == "" || strings.Contains(h, "/") || strings.Contains(h, "://") {
			ps.errorf("WEBHOOK_HOSTNAME_BLACKLIST", "list bare host names, such as [internal.example.com, 10.0.0.1]", "%q is not a host name", h)
		}
	}
	if !c.FeatureMailing {
		return
	}
	if c.MailServer == "" {
		if c.IsSet("MAIL_USERNAME") || c.IsSet("MAIL_PASSWORD") || c.IsSet("MAIL_USE_AUTH") {
			ps.warnf("MAIL_SERVER", "set MAIL_SERVER to your SMTP server's host name, or remove the other MAIL_* keys",
				"is empty, so e-mail notifications are refused although other MAIL_* keys are set")
		}
		return
	}
	if msg := checkHostPort(c.MailServer); msg != "" || strings.Contains(c.MailServer, ":") {
		ps.errorf("MAIL_SERVER", "write a host name, such as smtp.example.com, and put the port in MAIL_PORT", "%q is not a host name", c.MailServer)
	}
	if c.MailPort <= 0 || c.MailPort > 65535 {
		ps.errorf("MAIL_PORT", "use the SMTP submission port, such as 587", "%d is not a TCP port", c.MailPort)
	}
	if c.MailUseAuth && (c.MailUsername == "" || c.MailPassword == "") {
		ps.errorf("MAIL_USE_AUTH", "set MAIL_USERNAME and MAIL_PASSWORD, or MAIL_USE_AUTH: false", "is true but MAIL_USERNAME or MAIL_PASSWORD is empty")
	}
	if c.MailUseAuth && !c.MailUseTLS && !isLoopbackHost(c.MailServer) {
		ps.errorf("MAIL_USE_TLS", "set MAIL_USE_TLS: true (STARTTLS)", "is false while MAIL_USE_AUTH is true: the password would cross the network in clear text, which quayctl refuses")
	}
	if c.MailDefaultSender != "" {
		if _, err := mail.ParseAddress(c.MailDefaultSender); err != nil {
			ps.errorf("MAIL_DEFAULT_SENDER", "write an address such as quay@example.com", "%q is not an e-mail address", c.MailDefaultSender)
		}
	} else {
		ps.warnf("MAIL_DEFAULT_SENDER", "set it to the address notifications come from, such as quay@example.com", "is empty, so e-mails are sent from support@quay.io")
	}
}

func isLoopbackHost(h string) bool {
	switch strings.ToLower(h) {
	case "localhost", "127.0.0.1", "::1":
		return true
	}
	return false
}
