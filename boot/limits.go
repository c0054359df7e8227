package boot

import (
	"context"
	"fmt"
	"strconv"
	"strings"
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

// limitSettings are the throttling and hashing-queue entries of LoadConfig.
func limitSettings(c *Config) []setting {
	count := func(p *int, lo, hi int) func(string) error {
		return func(v string) error {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil || n < lo || n > hi {
				return fmt.Errorf("want a whole number from %d to %d, got %q", lo, hi, v)
			}
			*p = n
			return nil
		}
	}
	duration := func(p *time.Duration, lo time.Duration) func(string) error {
		return func(v string) error {
			d, err := time.ParseDuration(strings.TrimSpace(v))
			if err != nil || d < lo {
				return fmt.Errorf("want a duration of at least %s like 15m, got %q", lo, v)
			}
			*p = d
			return nil
		}
	}
	l := &c.Limits
	return []setting{
		{"login-limit", "LATCHKEY_LOGIN_LIMIT", "throttle login guessing per account and per client IP: on or off", onOff(&l.Login), onOffText(l.Login)},
		{"login-limit-free-failures", "LATCHKEY_LOGIN_LIMIT_FREE_FAILURES", "consecutive failed logins of one account before delays start", count(&l.FreeFailures, 1, 100), strconv.Itoa(l.FreeFailures)},
		{"login-limit-delay", "LATCHKEY_LOGIN_LIMIT_DELAY", "first delay after the free failures; doubles with each further one", duration(&l.Delay, 100*time.Millisecond), l.Delay.String()},
		{"login-limit-max-delay", "LATCHKEY_LOGIN_LIMIT_MAX_DELAY", "cap on the delay between guesses at one account", duration(&l.MaxDelay, time.Second), l.MaxDelay.String()},
		{"login-limit-ip-burst", "LATCHKEY_LOGIN_LIMIT_IP_BURST", "failed logins one client IP (IPv6: its /64) may make at once", count(&l.IPBurst, 1, 100000), strconv.Itoa(l.IPBurst)},
		{"login-limit-ip-per-minute", "LATCHKEY_LOGIN_LIMIT_IP_PER_MINUTE", "failed logins per client IP per minute after the burst", count(&l.IPPerMinute, 1, 100000), strconv.Itoa(l.IPPerMinute)},
		{"reset-limit", "LATCHKEY_RESET_LIMIT", "limit reset and verification mail per address and per client IP: on or off", onOff(&l.Reset), onOffText(l.Reset)},
		{"reset-limit-interval", "LATCHKEY_RESET_LIMIT_INTERVAL", "at most one reset mail (and one verification mail) per address per interval", duration(&l.ResetInterval, time.Second), l.ResetInterval.String()},
		{"reset-limit-ip-burst", "LATCHKEY_RESET_LIMIT_IP_BURST", "reset/verify requests one client IP may make at once", count(&l.ResetIPBurst, 1, 100000), strconv.Itoa(l.ResetIPBurst)},
		{"reset-limit-ip-per-minute", "LATCHKEY_RESET_LIMIT_IP_PER_MINUTE", "reset/verify requests per client IP per minute after the burst", count(&l.ResetIPPerMinute, 1, 100000), strconv.Itoa(l.ResetIPPerMinute)},
		{"hash-queue", "LATCHKEY_HASH_QUEUE", "logins that may wait for a hashing worker (one per CPU) before 503 + Retry-After", count(&c.HashQueue, 1, 100000), strconv.Itoa(c.HashQueue)},
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
