package boot

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"

	"github.com/latchkey/latchkey/models"
)

// Sender delivers one message from the outbox. It returns nil only when the
// mail server accepted the message.
type Sender interface {
	Send(ctx context.Context, e models.Email) error
}

// smtpTimeout bounds connecting and each SMTP command.
const smtpTimeout = 10 * time.Second

// SMTPSender sends with go-mail over SMTP, one connection per message (mail
// here is rare: resets, notices, confirmations).
type SMTPSender struct {
	cfg    SMTPConfig
	opts   []gomail.Option
	domain string // right-hand side of Message-IDs, from the From address
}

// NewSMTPSender checks cfg and returns a sender for it.
//
// TLS policy: "none" talks plain SMTP (local Mailpit/MailHog; go-mail then
// never offers PLAIN/LOGIN auth in the clear), "starttls" requires STARTTLS
// (TLSMandatory: a server without it fails the send), "tls" is implicit TLS
// from the first byte (usually port 465). The port is always the configured
// one: go-mail's defaults (port 25, mandatory TLS) are overridden on purpose.
func NewSMTPSender(cfg SMTPConfig) (*SMTPSender, error) {
	if strings.TrimSpace(cfg.Host) == "" {
		return nil, errors.New("boot: SMTP host is empty")
	}
	from, err := mail.ParseAddress(cfg.From)
	if err != nil {
		return nil, fmt.Errorf("boot: mail From %q: %w", cfg.From, err)
	}
	opts := []gomail.Option{gomail.WithPort(cfg.Port), gomail.WithTimeout(smtpTimeout)}
	switch cfg.TLS {
	case "", "none":
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	case "starttls":
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	case "tls":
		opts = append(opts, gomail.WithSSL())
	default:
		return nil, fmt.Errorf("boot: SMTP TLS policy %q: want none, starttls or tls", cfg.TLS)
	}
	if cfg.User != "" {
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover),
			gomail.WithUsername(cfg.User), gomail.WithPassword(cfg.Password))
	}
	s := &SMTPSender{cfg: cfg, opts: opts, domain: "latchkey.invalid"}
	if at := strings.LastIndexByte(from.Address, '@'); at >= 0 && at < len(from.Address)-1 {
		s.domain = from.Address[at+1:]
	}
	// Build one client now so a bad option fails at start-up, not at the first reset.
	if _, err := gomail.NewClient(cfg.Host, opts...); err != nil {
		return nil, fmt.Errorf("boot: SMTP client: %w", err)
	}
	return s, nil
}

// Send delivers e as multipart/alternative (plain text first, then HTML).
// The Message-ID is derived from the outbox row, so a message sent twice
// (at-least-once delivery) carries the same id. Errors never include the
// body: it may hold a live reset link.
func (s *SMTPSender) Send(ctx context.Context, e models.Email) error {
	m := gomail.NewMsg(gomail.WithNoDefaultUserAgent())
	if err := m.From(s.cfg.From); err != nil {
		return fmt.Errorf("from address: %w", err)
	}
	if err := m.To(e.To); err != nil {
		return fmt.Errorf("recipient address: %w", err)
	}
	m.Subject(e.Subject)
	m.SetDate()
	m.SetMessageIDWithValue(fmt.Sprintf("latchkey.%d.%d@%s", e.ID, e.Created.UnixMilli(), s.domain))
	m.SetGenHeader("Auto-Submitted", "auto-generated")
	m.SetBodyString(gomail.TypeTextPlain, e.Text)
	if e.HTML != "" {
		m.AddAlternativeString(gomail.TypeTextHTML, e.HTML)
	}
	c, err := gomail.NewClient(s.cfg.Host, s.opts...)
	if err != nil {
		return fmt.Errorf("smtp client: %w", err)
	}
	err = c.DialAndSendWithContext(ctx, m)
	if err != nil && m.IsDelivered() {
		// Accepted by the server; only QUIT/close failed. Sending again would duplicate it.
		return nil
	}
	return classifySMTP(err)
}

// classifySMTP marks a 5xx reply to RCPT TO or DATA (the recipient or the
// message refused) as permanent (models.PermanentMailError): the outbox
// dead-letters it at once. Everything else is left temporary and retried:
// 4xx replies, network errors and timeouts, and a 5xx to MAIL FROM or to
// authentication, which is the server's configuration (fixed, every
// message goes out again) rather than this message's fault.
func classifySMTP(err error) error {
	var se *gomail.SendError
	if err == nil || !errors.As(err, &se) || se.IsTemp() || se.ErrorCode() < 500 || se.ErrorCode() > 599 {
		return err
	}
	switch se.Reason {
	case gomail.ErrSMTPRcptTo, gomail.ErrSMTPData, gomail.ErrSMTPDataClose:
		return &models.PermanentMailError{Err: err}
	}
	return err
}
