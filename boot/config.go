package boot

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Config is everything the server needs, read from flags with environment
// fallbacks (flag > LATCHKEY_* variable > default). Tests build it directly.
type Config struct {
	Addr      string // LATCHKEY_ADDR
	DB        string // LATCHKEY_DB
	BaseURL   string // LATCHKEY_BASE_URL: links in mail and the cookie's Secure flag come from it, never from Host
	LogFormat string // LATCHKEY_LOG_FORMAT: text or json

	SMTP SMTPConfig

	BcryptCost          int    // LATCHKEY_BCRYPT_COST
	PasswordHash        string // LATCHKEY_PASSWORD_HASH: bcrypt or argon2id
	PasswordMin         int    // LATCHKEY_PASSWORD_MIN
	PasswordBlocklist   bool   // LATCHKEY_PASSWORD_BLOCKLIST: refuse common passwords (SECURITY P6)
	PasswordContext     bool   // LATCHKEY_PASSWORD_CONTEXT_CHECK: refuse the email, username, product name (P7)
	TokenTTL            int64  // LATCHKEY_TOKEN_TTL, seconds
	TokenMaxTTL         int64  // LATCHKEY_TOKEN_MAX_TTL, seconds
	ResetTTL            int64  // LATCHKEY_RESET_TTL, seconds
	VerifyTTL           int64  // LATCHKEY_VERIFY_TTL, seconds
	AllowEternalTokens  bool   // LATCHKEY_ALLOW_ETERNAL_TOKENS
	CompatEmailNotFound bool   // LATCHKEY_COMPAT_EMAIL_NOT_FOUND

	CORSOrigins    []string       // LATCHKEY_CORS_ORIGINS, comma-separated
	TrustedProxies []netip.Prefix // LATCHKEY_TRUSTED_PROXIES, comma-separated CIDRs or addresses

	ShutdownTimeout time.Duration // LATCHKEY_SHUTDOWN_TIMEOUT

	Limits    LimitsConfig // LATCHKEY_LOGIN_LIMIT…, LATCHKEY_RESET_LIMIT… (limits.go)
	HashQueue int          // LATCHKEY_HASH_QUEUE
}

// SMTPConfig is how the outbox worker reaches the mail server.
type SMTPConfig struct {
	Host     string // LATCHKEY_SMTP_HOST
	Port     int    // LATCHKEY_SMTP_PORT
	User     string // LATCHKEY_SMTP_USER
	Password string // LATCHKEY_SMTP_PASSWORD
	TLS      string // LATCHKEY_SMTP_TLS: none, starttls or tls
	From     string // LATCHKEY_MAIL_FROM
}

// DefaultConfig runs on a laptop: LoopBack's port, a file under ./data, a
// local Mailpit or MailHog for mail.
func DefaultConfig() Config {
	return Config{
		Addr:              "127.0.0.1:3000",
		DB:                "./data/latchkey.db",
		BaseURL:           "http://localhost:3000",
		LogFormat:         "text",
		SMTP:              SMTPConfig{Host: "127.0.0.1", Port: 1025, TLS: "none", From: "Latchkey <noreply@localhost>"},
		BcryptCost:        10,
		PasswordHash:      "bcrypt",
		PasswordMin:       8,
		PasswordBlocklist: true,
		PasswordContext:   true,
		TokenTTL:          1209600,
		TokenMaxTTL:       31556926,
		ResetTTL:          900,
		VerifyTTL:         86400,
		ShutdownTimeout:   10 * time.Second,
		Limits:            defaultLimits(),
		HashQueue:         64,
	}
}

// setting is one configuration entry: its flag, variable and parser.
type setting struct {
	flag, env, usage string
	set              func(string) error
	def              string
}

// LoadConfig reads args (without the program name) and the environment.
// Bad values stop start-up with an error naming the setting.
func LoadConfig(args []string, getenv func(string) string, stderr io.Writer) (Config, error) {
	c := DefaultConfig()
	str := func(p *string) func(string) error { return func(v string) error { *p = v; return nil } }
	integer := func(p *int, lo, hi int) func(string) error {
		return func(v string) error {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil || n < lo || n > hi {
				return fmt.Errorf("want a whole number from %d to %d, got %q", lo, hi, v)
			}
			*p = n
			return nil
		}
	}
	seconds := func(p *int64, lo int64) func(string) error {
		return func(v string) error {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil || n < lo {
				return fmt.Errorf("want a whole number of seconds ≥ %d, got %q", lo, v)
			}
			*p = n
			return nil
		}
	}
	boolean := func(p *bool) func(string) error {
		return func(v string) error {
			b, err := strconv.ParseBool(strings.TrimSpace(v))
			if err != nil {
				return fmt.Errorf("want true/false or 1/0, got %q", v)
			}
			*p = b
			return nil
		}
	}
	oneOf := func(p *string, options ...string) func(string) error {
		return func(v string) error {
			v = strings.ToLower(strings.TrimSpace(v))
			for _, o := range options {
				if v == o {
					*p = v
					return nil
				}
			}
			return fmt.Errorf("want one of %s, got %q", strings.Join(options, ", "), v)
		}
	}
	settings := []setting{
		{"addr", "LATCHKEY_ADDR", "listen address (host:port)", func(v string) error {
			if _, _, err := net.SplitHostPort(v); err != nil {
				return fmt.Errorf("want host:port, got %q", v)
			}
			c.Addr = v
			return nil
		}, c.Addr},
		{"db", "LATCHKEY_DB", "SQLite database file (its folder is created)", func(v string) error {
			if strings.TrimSpace(v) == "" {
				return errors.New("want a file path")
			}
			c.DB = v
			return nil
		}, c.DB},
		{"base-url", "LATCHKEY_BASE_URL", "public URL of the app, used in mailed links and for secure cookies", func(v string) error {
			u, err := url.Parse(strings.TrimSpace(v))
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
				return fmt.Errorf("want an absolute http(s) URL without query, got %q", v)
			}
			c.BaseURL = strings.TrimRight(u.String(), "/")
			return nil
		}, c.BaseURL},
		{"log-format", "LATCHKEY_LOG_FORMAT", "log format: text or json", oneOf(&c.LogFormat, "text", "json"), c.LogFormat},
		{"smtp-host", "LATCHKEY_SMTP_HOST", "SMTP server host", str(&c.SMTP.Host), c.SMTP.Host},
		{"smtp-port", "LATCHKEY_SMTP_PORT", "SMTP server port", integer(&c.SMTP.Port, 1, 65535), strconv.Itoa(c.SMTP.Port)},
		{"smtp-user", "LATCHKEY_SMTP_USER", "SMTP user (empty: no authentication)", str(&c.SMTP.User), ""},
		{"smtp-password", "LATCHKEY_SMTP_PASSWORD", "SMTP password", str(&c.SMTP.Password), ""},
		{"smtp-tls", "LATCHKEY_SMTP_TLS", "SMTP TLS: none, starttls (required) or tls (implicit)", oneOf(&c.SMTP.TLS, "none", "starttls", "tls"), c.SMTP.TLS},
		{"mail-from", "LATCHKEY_MAIL_FROM", "From address of mail", func(v string) error {
			if !strings.Contains(v, "@") {
				return fmt.Errorf("want an address like \"Name <noreply@example.com>\", got %q", v)
			}
			c.SMTP.From = v
			return nil
		}, c.SMTP.From},
		{"bcrypt-cost", "LATCHKEY_BCRYPT_COST", "bcrypt cost (LoopBack's is 10)", integer(&c.BcryptCost, 10, 16), strconv.Itoa(c.BcryptCost)},
		{"password-hash", "LATCHKEY_PASSWORD_HASH", "hash for new passwords: bcrypt or argon2id", oneOf(&c.PasswordHash, "bcrypt", "argon2id"), c.PasswordHash},
		{"password-min", "LATCHKEY_PASSWORD_MIN", "minimum password length in characters", integer(&c.PasswordMin, 1, 64), strconv.Itoa(c.PasswordMin)},
		{"password-blocklist", "LATCHKEY_PASSWORD_BLOCKLIST", "refuse common passwords (embedded list): on or off", onOff(&c.PasswordBlocklist), onOffText(c.PasswordBlocklist)},
		{"password-context-check", "LATCHKEY_PASSWORD_CONTEXT_CHECK", "refuse passwords containing the email, username or product name: on or off", onOff(&c.PasswordContext), onOffText(c.PasswordContext)},
		{"token-ttl", "LATCHKEY_TOKEN_TTL", "default access-token lifetime, seconds", seconds(&c.TokenTTL, 1), strconv.FormatInt(c.TokenTTL, 10)},
		{"token-max-ttl", "LATCHKEY_TOKEN_MAX_TTL", "cap on a requested token lifetime, seconds", seconds(&c.TokenMaxTTL, 1), strconv.FormatInt(c.TokenMaxTTL, 10)},
		{"reset-ttl", "LATCHKEY_RESET_TTL", "password-reset link lifetime, seconds", seconds(&c.ResetTTL, 60), strconv.FormatInt(c.ResetTTL, 10)},
		{"verify-ttl", "LATCHKEY_VERIFY_TTL", "email confirmation link lifetime, seconds", seconds(&c.VerifyTTL, 60), strconv.FormatInt(c.VerifyTTL, 10)},
		{"allow-eternal-tokens", "LATCHKEY_ALLOW_ETERNAL_TOKENS", "accept ttl -1 (tokens that never expire)", boolean(&c.AllowEternalTokens), "false"},
		{"compat-email-not-found", "LATCHKEY_COMPAT_EMAIL_NOT_FOUND", "reset for an unknown email answers 404 as LoopBack (reveals accounts)", boolean(&c.CompatEmailNotFound), "false"},
		{"cors-origins", "LATCHKEY_CORS_ORIGINS", "origins allowed to call /api from a browser, comma-separated", func(v string) error {
			c.CORSOrigins = nil
			for _, o := range strings.Split(v, ",") {
				o = strings.TrimRight(strings.TrimSpace(o), "/")
				if o == "" {
					continue
				}
				u, err := url.Parse(o)
				if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" {
					return fmt.Errorf("want origins like https://app.example.com, got %q", o)
				}
				c.CORSOrigins = append(c.CORSOrigins, o)
			}
			return nil
		}, ""},
		{"trusted-proxies", "LATCHKEY_TRUSTED_PROXIES", "proxies whose X-Forwarded-For is believed, comma-separated CIDRs", func(v string) error {
			c.TrustedProxies = nil
			for _, p := range strings.Split(v, ",") {
				p = strings.TrimSpace(p)
				if p == "" {
					continue
				}
				if !strings.Contains(p, "/") {
					a, err := netip.ParseAddr(p)
					if err != nil {
						return fmt.Errorf("want CIDRs like 10.0.0.0/8 or addresses, got %q", p)
					}
					p = netip.PrefixFrom(a, a.BitLen()).String()
				}
				pfx, err := netip.ParsePrefix(p)
				if err != nil {
					return fmt.Errorf("want CIDRs like 10.0.0.0/8 or addresses, got %q", p)
				}
				c.TrustedProxies = append(c.TrustedProxies, pfx.Masked())
			}
			return nil
		}, ""},
		{"shutdown-timeout", "LATCHKEY_SHUTDOWN_TIMEOUT", "how long in-flight requests may finish on shutdown (e.g. 10s)", func(v string) error {
			d, err := time.ParseDuration(strings.TrimSpace(v))
			if err != nil || d <= 0 {
				return fmt.Errorf("want a duration like 10s, got %q", v)
			}
			c.ShutdownTimeout = d
			return nil
		}, c.ShutdownTimeout.String()},
	}

	settings = append(settings, limitSettings(&c)...)

	fs := flag.NewFlagSet("latchkey", flag.ContinueOnError)
	fs.SetOutput(stderr)
	for _, s := range settings {
		fs.String(s.flag, "", fmt.Sprintf("%s (env %s, default %q)", s.usage, s.env, s.def))
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	given := map[string]string{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = f.Value.String() })
	for _, s := range settings {
		v, from := given[s.flag], "-"+s.flag
		if _, ok := given[s.flag]; !ok {
			v, from = getenv(s.env), s.env
			if v == "" {
				continue
			}
		}
		if err := s.set(v); err != nil {
			return c, fmt.Errorf("config %s: %w", from, err)
		}
	}
	if c.TokenTTL > c.TokenMaxTTL {
		return c, fmt.Errorf("config LATCHKEY_TOKEN_TTL: %d is above LATCHKEY_TOKEN_MAX_TTL %d", c.TokenTTL, c.TokenMaxTTL)
	}
	return c, nil
}

// onOff parses a switch: on/off (also true/false, 1/0, yes/no).
func onOff(p *bool) func(string) error {
	return func(v string) error {
		switch strings.ToLower(strings.TrimSpace(v)) {
		case "on", "true", "1", "yes":
			*p = true
		case "off", "false", "0", "no":
			*p = false
		default:
			return fmt.Errorf("want on or off, got %q", v)
		}
		return nil
	}
}

func onOffText(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// SecureCookies reports whether the base URL is https, so the session cookie
// gets Secure and the __Host- prefix.
func (c Config) SecureCookies() bool { return strings.HasPrefix(c.BaseURL, "https://") }
