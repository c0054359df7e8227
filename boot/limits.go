package boot

import (
	"context"
	"time"

	"github.com/latchkey/latchkey/models"
)

// limitSettings are the throttling and hashing-queue entries of settings.
// The throttling settings fill the limiter's own configuration
// (models.LimitConfig) directly; New adds its clock.
func limitSettings(c *Config) []setting {
	l := &c.Limits
	return []setting{
		{"login-limit", "LATCHKEY_LOGIN_LIMIT", "throttle login guessing per account and per client IP: on or off", onOff(&l.Login)},
		{"login-limit-free-failures", "LATCHKEY_LOGIN_LIMIT_FREE_FAILURES", "consecutive failed logins of one account before delays start", whole(&l.FreeFailures, 1, 100)},
		{"login-limit-delay", "LATCHKEY_LOGIN_LIMIT_DELAY", "first delay after the free failures; doubles with each further one", duration(&l.Delay, 100*time.Millisecond)},
		{"login-limit-max-delay", "LATCHKEY_LOGIN_LIMIT_MAX_DELAY", "cap on the delay between guesses at one account", duration(&l.MaxDelay, time.Second)},
		{"login-limit-ip-burst", "LATCHKEY_LOGIN_LIMIT_IP_BURST", "failed logins one client IP (IPv6: its /64) may make at once", whole(&l.IPBurst, 1, 100000)},
		{"login-limit-ip-per-minute", "LATCHKEY_LOGIN_LIMIT_IP_PER_MINUTE", "failed logins per client IP per minute after the burst", whole(&l.IPPerMinute, 1, 100000)},
		{"reset-limit", "LATCHKEY_RESET_LIMIT", "limit reset and verification mail per address and per client IP: on or off", onOff(&l.Mail)},
		{"reset-limit-interval", "LATCHKEY_RESET_LIMIT_INTERVAL", "at most one reset mail (and one verification mail) per address per interval", duration(&l.MailInterval, time.Second)},
		{"reset-limit-ip-burst", "LATCHKEY_RESET_LIMIT_IP_BURST", "reset/verify requests one client IP may make at once", whole(&l.MailIPBurst, 1, 100000)},
		{"reset-limit-ip-per-minute", "LATCHKEY_RESET_LIMIT_IP_PER_MINUTE", "reset/verify requests per client IP per minute after the burst", whole(&l.MailIPPerMinute, 1, 100000)},
		{"hash-queue", "LATCHKEY_HASH_QUEUE", "logins that may wait for a hashing worker (one per CPU) before 503 + Retry-After", whole(&c.HashQueue, 1, 100000)},
	}
}

// pruneThrottle deletes spent throttle counters in small batches in the
// background, so the table holds only what still limits someone.
func pruneThrottle(l *models.Limiter, log interface {
	Error(msg string, args ...any)
}) func(context.Context) {
	return func(ctx context.Context) {
		t := time.NewTicker(time.Minute)
		defer t.Stop()
		for {
			for {
				n, err := l.Prune(ctx, 500)
				if err != nil {
					if ctx.Err() == nil {
						log.Error("pruning throttle counters", "err", err)
					}
					break
				}
				if n < 500 {
					break
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}
}
