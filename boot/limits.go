package boot

import (
	"context"
	"time"

	"github.com/latchkey/latchkey/models"
)

// LimitsConfig is the throttling: login guessing per account and per
// client IP, reset and verification mail per address and per IP.
type LimitsConfig struct {
	Login            bool          // LATCHKEY_LOGIN_LIMIT: on or off
	FreeFailures     int           // LATCHKEY_LOGIN_LIMIT_FREE_FAILURES: consecutive failures per account before delays
	Delay            time.Duration // LATCHKEY_LOGIN_LIMIT_DELAY: the first delay, doubled per further failure
	MaxDelay         time.Duration // LATCHKEY_LOGIN_LIMIT_MAX_DELAY: the cap (never a hard lock)
	IPBurst          int           // LATCHKEY_LOGIN_LIMIT_IP_BURST: failed logins per client IP at once
	IPPerMinute      int           // LATCHKEY_LOGIN_LIMIT_IP_PER_MINUTE: ...and per minute after that
	Reset            bool          // LATCHKEY_RESET_LIMIT: on or off
	ResetInterval    time.Duration // LATCHKEY_RESET_LIMIT_INTERVAL: one reset (and one verify) mail per address per interval
	ResetIPBurst     int           // LATCHKEY_RESET_LIMIT_IP_BURST: reset/verify requests per client IP at once
	ResetIPPerMinute int           // LATCHKEY_RESET_LIMIT_IP_PER_MINUTE: ...and per minute after that
}

// defaultLimits are models.DefaultLimitConfig's.
func defaultLimits() LimitsConfig {
	d := models.DefaultLimitConfig()
	return LimitsConfig{
		Login: d.Login, FreeFailures: d.FreeFailures, Delay: d.Delay, MaxDelay: d.MaxDelay,
		IPBurst: d.IPBurst, IPPerMinute: int(d.IPPerMinute),
		Reset: d.Mail, ResetInterval: d.MailInterval, ResetIPBurst: d.MailIPBurst, ResetIPPerMinute: int(d.MailIPPerMinute),
	}
}

// limitSettings are the throttling and hashing-queue entries of settings.
func limitSettings(c *Config) []setting {
	l := &c.Limits
	return []setting{
		{"login-limit", "LATCHKEY_LOGIN_LIMIT", "throttle login guessing per account and per client IP: on or off", onOff(&l.Login)},
		{"login-limit-free-failures", "LATCHKEY_LOGIN_LIMIT_FREE_FAILURES", "consecutive failed logins of one account before delays start", whole(&l.FreeFailures, 1, 100)},
		{"login-limit-delay", "LATCHKEY_LOGIN_LIMIT_DELAY", "first delay after the free failures; doubles with each further one", duration(&l.Delay, 100*time.Millisecond)},
		{"login-limit-max-delay", "LATCHKEY_LOGIN_LIMIT_MAX_DELAY", "cap on the delay between guesses at one account", duration(&l.MaxDelay, time.Second)},
		{"login-limit-ip-burst", "LATCHKEY_LOGIN_LIMIT_IP_BURST", "failed logins one client IP (IPv6: its /64) may make at once", whole(&l.IPBurst, 1, 100000)},
		{"login-limit-ip-per-minute", "LATCHKEY_LOGIN_LIMIT_IP_PER_MINUTE", "failed logins per client IP per minute after the burst", whole(&l.IPPerMinute, 1, 100000)},
		{"reset-limit", "LATCHKEY_RESET_LIMIT", "limit reset and verification mail per address and per client IP: on or off", onOff(&l.Reset)},
		{"reset-limit-interval", "LATCHKEY_RESET_LIMIT_INTERVAL", "at most one reset mail (and one verification mail) per address per interval", duration(&l.ResetInterval, time.Second)},
		{"reset-limit-ip-burst", "LATCHKEY_RESET_LIMIT_IP_BURST", "reset/verify requests one client IP may make at once", whole(&l.ResetIPBurst, 1, 100000)},
		{"reset-limit-ip-per-minute", "LATCHKEY_RESET_LIMIT_IP_PER_MINUTE", "reset/verify requests per client IP per minute after the burst", whole(&l.ResetIPPerMinute, 1, 100000)},
		{"hash-queue", "LATCHKEY_HASH_QUEUE", "logins that may wait for a hashing worker (one per CPU) before 503 + Retry-After", whole(&c.HashQueue, 1, 100000)},
	}
}

// newLimiter builds the throttle from the configuration.
func newLimiter(db *models.DB, l LimitsConfig, now func() time.Time) *models.Limiter {
	return models.NewLimiter(db, models.LimitConfig{
		Login: l.Login, FreeFailures: l.FreeFailures, Delay: l.Delay, MaxDelay: l.MaxDelay,
		IPBurst: l.IPBurst, IPPerMinute: float64(l.IPPerMinute),
		Mail: l.Reset, MailInterval: l.ResetInterval, MailIPBurst: l.ResetIPBurst, MailIPPerMinute: float64(l.ResetIPPerMinute),
		Now: now,
	})
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
