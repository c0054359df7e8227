package boot

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/latchkey/latchkey/handlers"
	"github.com/latchkey/latchkey/models"
)

// The webhook events that carry a link (LATCHKEY_RESET_DELIVERY=webhook):
// the only deliveries with a secret in them.
const (
	EventResetRequested        = "user.reset_requested"
	EventVerificationRequested = "user.verification_requested"
)

// WebhookConfig is where account events go (issue 14), and whether the
// reset and verification links go there instead of by mail.
type WebhookConfig struct {
	URLs          []string      // LATCHKEY_WEBHOOK_URL, comma-separated
	Secret        WebhookSecret // LATCHKEY_WEBHOOK_SECRET, whsec_<base64>
	Events        []string      // LATCHKEY_WEBHOOK_EVENTS; empty: all
	ResetDelivery string        // LATCHKEY_RESET_DELIVERY: mail or webhook
}

// WebhookSecret is the signing key. It prints as [redacted], so a config
// dump or a log line never shows it.
type WebhookSecret []byte

func (s WebhookSecret) String() string {
	if len(s) == 0 {
		return ""
	}
	return "[redacted]"
}

// webhookSettings are the webhook settings of c (config.go lists them).
func webhookSettings(c *Config) []setting {
	return []setting{
		{"webhook-url", "LATCHKEY_WEBHOOK_URL", "where account events are POSTed, comma-separated https URLs (http only to loopback)", list(&c.Webhook.URLs, webhookURL)},
		{"webhook-secret", "LATCHKEY_WEBHOOK_SECRET", "the Standard Webhooks signing secret, whsec_<base64>; required with a webhook URL", checked(&c.Webhook.Secret, webhookSecret)},
		{"webhook-events", "LATCHKEY_WEBHOOK_EVENTS", "which events to send, comma-separated (empty: all)", list(&c.Webhook.Events, webhookEvent)},
		{"reset-delivery", "LATCHKEY_RESET_DELIVERY", "how reset and verification links go out: mail, or webhook (the app sends its own mail)", oneOf(&c.Webhook.ResetDelivery, "mail", "webhook")},
	}
}

// check is what the webhook settings must be together.
func (w WebhookConfig) check() error {
	if len(w.URLs) > 0 && len(w.Secret) == 0 {
		return errors.New("config LATCHKEY_WEBHOOK_SECRET: required with LATCHKEY_WEBHOOK_URL")
	}
	if w.ResetDelivery == "webhook" && len(w.URLs) == 0 {
		return errors.New("config LATCHKEY_RESET_DELIVERY: webhook needs LATCHKEY_WEBHOOK_URL")
	}
	return nil
}

// webhookURL is an absolute https URL; plain http only to a loopback host
// (a receiver on the same machine, tests), since a reset link may be in
// the body.
func webhookURL(s string) (string, bool, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", false, nil
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.User != nil || (u.Scheme != "https" && u.Scheme != "http") {
		return "", false, fmt.Errorf("want https URLs, got %q", redactURL(s))
	}
	if u.Scheme == "http" && !loopbackHost(u.Hostname()) {
		return "", false, fmt.Errorf("want https (http only to localhost), got %q", redactURL(s))
	}
	return u.String(), true, nil
}

func loopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// webhookSecret is whsec_ followed by the base64 of at least 24 bytes
// (Standard Webhooks: 24 to 64).
func webhookSecret(v string) (WebhookSecret, error) {
	raw, ok := strings.CutPrefix(strings.TrimSpace(v), "whsec_")
	key, err := base64.StdEncoding.DecodeString(raw)
	if !ok || err != nil || len(key) < 24 || len(key) > 64 {
		// Never echo the value: it is a secret.
		return nil, errors.New("want whsec_ followed by the base64 of 24 to 64 random bytes")
	}
	return key, nil
}

func webhookEvent(s string) (string, bool, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", false, nil
	}
	if !slices.Contains(models.AccountEvents, s) && s != EventResetRequested && s != EventVerificationRequested {
		return "", false, fmt.Errorf("unknown event %q; want some of %s", s, strings.Join(models.AccountEvents, ", "))
	}
	return s, true, nil
}

// registerWebhooks subscribes to the account events and writes one outbox
// row per receiver URL inside the event's transaction (kind
// webhook.<type>, To the URL, Subject the event id, Text the body), so the
// change and its delivery commit together; the request that made the
// change does nothing more, and a slow or failing receiver is the
// worker's business. With ResetDelivery webhook the reset and
// verification links go as events too (registerMail then sends no mail
// for them). notify (may be nil) wakes the worker after the commit.
func registerWebhooks(users *models.Users, cfg WebhookConfig, baseURL string, notify func()) {
	if len(cfg.URLs) == 0 {
		return
	}
	baseURL = strings.TrimRight(baseURL, "/")
	wanted := func(typ string) bool { return len(cfg.Events) == 0 || slices.Contains(cfg.Events, typ) }
	enqueue := func(ctx context.Context, tx *models.Tx, typ string, data map[string]any) error {
		id := "msg_" + rand.Text()
		body, err := json.Marshal(map[string]any{
			"id": id, "type": typ, "timestamp": tx.Now().UTC().Format(time.RFC3339Nano), "data": data,
		})
		if err != nil {
			return err
		}
		for _, u := range cfg.URLs {
			if err := tx.EnqueueEmail(ctx, models.Email{Kind: models.WebhookKindPrefix + typ, To: u, Subject: id, Text: string(body)}); err != nil {
				return err
			}
		}
		if notify != nil {
			tx.AfterCommit(notify)
		}
		return nil
	}
	users.OnAccountEvent(func(ctx context.Context, tx *models.Tx, ev models.AccountEvent) error {
		if !wanted(ev.Type) {
			return nil
		}
		return enqueue(ctx, tx, ev.Type, accountEventData(ev))
	})
	if cfg.ResetDelivery != "webhook" {
		return
	}
	// Always sent when they replace the mail: without them nobody could
	// reset a password.
	users.OnResetPasswordRequest(func(ctx context.Context, tx *models.Tx, ev models.ResetPasswordRequest) error {
		return enqueue(ctx, tx, EventResetRequested, map[string]any{
			"user":    handlers.MarshalUser(ev.User),
			"link":    ResetLink(baseURL, ev.AccessToken.ID),
			"expires": tx.Now().Add(time.Duration(ev.AccessToken.TTL) * time.Second).UTC().Format(time.RFC3339),
		})
	})
	users.OnVerifyEmailRequest(func(ctx context.Context, tx *models.Tx, ev models.VerifyEmailRequest) error {
		return enqueue(ctx, tx, EventVerificationRequested, map[string]any{
			"user":    handlers.MarshalUser(ev.User),
			"link":    ConfirmLink(baseURL, ev.User.ID, ev.Redirect, ev.Token),
			"expires": tx.Now().Add(time.Duration(users.VerifyTTL()) * time.Second).UTC().Format(time.RFC3339),
		})
	})
}

// accountEventData is an event's "data": the user as the API shows it
// (never a password hash or a token) and what else the event names.
func accountEventData(ev models.AccountEvent) map[string]any {
	d := map[string]any{"user": handlers.MarshalUser(ev.User)}
	switch ev.Type {
	case models.EventSessionCreated:
		d["method"] = ev.Method
		if ev.Provider != "" {
			d["provider"] = ev.Provider
		}
	case models.EventSessionEnded:
		d["reason"], d["sessions"] = ev.Reason, ev.Sessions
	case models.EventIdentityLinked, models.EventIdentityUnlinked:
		d["provider"] = ev.Provider
	case models.EventUserEmailChanged:
		d["oldEmail"] = ev.OldEmail
	case models.EventUserPasswordChanged:
		d["reason"] = ev.Reason
	case models.EventUserCreated:
		if ev.Provider != "" {
			d["provider"] = ev.Provider
		}
	}
	return d
}

// WebhookSender POSTs webhook deliveries, signed per Standard Webhooks:
// webhook-id (the event id, the same on every retry, for the receiver to
// drop duplicates), webhook-timestamp (this attempt, Unix seconds) and
// webhook-signature "v1,<base64 HMAC-SHA256 of id.timestamp.body>". A 2xx
// answer is delivered; anything else, a redirect included, is a failure
// the outbox retries with backoff.
type WebhookSender struct {
	secret WebhookSecret
	client *http.Client
	now    func() time.Time
}

// webhookTimeout bounds one delivery, well inside the worker's SendTimeout
// and the outbox lease.
const webhookTimeout = 10 * time.Second

// NewWebhookSender returns a sender signing with secret.
func NewWebhookSender(secret WebhookSecret, now func() time.Time) *WebhookSender {
	if now == nil {
		now = time.Now
	}
	return &WebhookSender{secret: secret, now: now, client: &http.Client{
		Timeout:       webhookTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// Sign is the webhook-signature value for a delivery.
func (s *WebhookSender) Sign(id string, ts int64, body []byte) string {
	m := hmac.New(sha256.New, s.secret)
	m.Write([]byte(id + "." + strconv.FormatInt(ts, 10) + "."))
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// Send delivers one outbox row of a webhook kind.
func (s *WebhookSender) Send(ctx context.Context, e models.Email) error {
	body := []byte(e.Text)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.To, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("webhook %s: %w", redactURL(e.To), err)
	}
	ts := s.now().Unix()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Latchkey-Webhooks")
	req.Header.Set("webhook-id", e.Subject)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("webhook-signature", s.Sign(e.Subject, ts, body))
	res, err := s.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its text repeats the URL, query and all
		}
		return fmt.Errorf("webhook %s: %w", redactURL(e.To), err)
	}
	defer res.Body.Close()
	io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10)) // lets the connection be reused
	if res.StatusCode < 200 || res.StatusCode > 299 {
		return fmt.Errorf("webhook %s: answered %s", redactURL(e.To), res.Status)
	}
	return nil
}

// redactURL is a receiver URL fit for the log: no query, no user info (an
// operator may have put a token in either).
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "[bad URL]"
	}
	return u.Scheme + "://" + u.Host + u.Path
}

// dispatchSender sends webhook kinds over HTTP and the rest as mail.
type dispatchSender struct {
	mail  Sender
	hooks *WebhookSender // nil: no webhooks configured
}

func (d dispatchSender) Send(ctx context.Context, e models.Email) error {
	if strings.HasPrefix(e.Kind, models.WebhookKindPrefix) {
		if d.hooks == nil {
			return errors.New("webhook delivery queued but LATCHKEY_WEBHOOK_URL is not set")
		}
		return d.hooks.Send(ctx, e)
	}
	return d.mail.Send(ctx, e)
}

// withWebhooks is the worker's sender: mail through mail, webhook kinds
// signed with cfg's secret.
func withWebhooks(mail Sender, cfg WebhookConfig, now func() time.Time) Sender {
	d := dispatchSender{mail: mail}
	if len(cfg.Secret) > 0 {
		d.hooks = NewWebhookSender(cfg.Secret, now)
	}
	return d
}
