package boot

import (
	"github.com/latchkey/latchkey/internal/oauth"
	"github.com/latchkey/latchkey/models"

	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Config is everything the server needs, read from flags with environment
// fallbacks (flag > LATCHKEY_* variable > default). Tests build it directly.
type Config struct {
	// Providers are the third-party sign-in providers, from
	// LATCHKEY_OIDC_<ID>_… and LATCHKEY_OAUTH_{GITHUB,FACEBOOK,X}_…
	// (internal/oauth.FromEnv): found by name, so only in the environment.
	Providers []oauth.Settings

	Addr      string // LATCHKEY_ADDR
	DB        string // LATCHKEY_DB
	BaseURL   string // LATCHKEY_BASE_URL: links in mail and the cookie's Secure flag come from it, never from Host
	LogFormat string // LATCHKEY_LOG_FORMAT: text or json

	// MetricsAddr is LATCHKEY_METRICS_ADDR: where Prometheus /metrics
	// listens, a listener apart from Addr; empty (the default): no metrics.
	MetricsAddr string

	SMTP    SMTPConfig
	Webhook WebhookConfig // LATCHKEY_WEBHOOK_…, LATCHKEY_RESET_DELIVERY (webhook.go)
	Brand   BrandConfig   // LATCHKEY_APP_NAME, LATCHKEY_LOGO, LATCHKEY_BRAND_COLOR, LATCHKEY_MAIL_TEMPLATES (brand.go)

	BcryptCost          int    // LATCHKEY_BCRYPT_COST
	PasswordHash        string // LATCHKEY_PASSWORD_HASH: bcrypt or argon2id
	PasswordMin         int    // LATCHKEY_PASSWORD_MIN
	PasswordBlocklist   bool   // LATCHKEY_PASSWORD_BLOCKLIST: refuse common passwords (SECURITY P6)
	PasswordContext     bool   // LATCHKEY_PASSWORD_CONTEXT_CHECK: refuse the email, username, product name (P7)
	TokenTTL            int64  // LATCHKEY_TOKEN_TTL, seconds
	TokenMaxTTL         int64  // LATCHKEY_TOKEN_MAX_TTL, seconds
	ResetTTL            int64  // LATCHKEY_RESET_TTL, seconds
	VerifyTTL           int64  // LATCHKEY_VERIFY_TTL, seconds
	ReauthAfter         int64  // LATCHKEY_REAUTH_AFTER, seconds: how long a sign-in counts as recent for sensitive changes
	SessionIdleTimeout  int64  // LATCHKEY_SESSION_IDLE_TIMEOUT, seconds; 0 (the default): sessions never idle out
	AllowEternalTokens  bool   // LATCHKEY_ALLOW_ETERNAL_TOKENS
	CompatEmailNotFound bool   // LATCHKEY_COMPAT_EMAIL_NOT_FOUND

	// SecretKey signs device cookies (SECURITY N1); every replica needs the
	// same. Empty: a random key kept in the database, made on first use.
	SecretKey string // LATCHKEY_SECRET_KEY

	CORSOrigins    []string       // LATCHKEY_CORS_ORIGINS, comma-separated
	TrustedProxies []netip.Prefix // LATCHKEY_TRUSTED_PROXIES, comma-separated CIDRs or addresses

	ShutdownTimeout time.Duration // LATCHKEY_SHUTDOWN_TIMEOUT
	AuthCache       int           // LATCHKEY_AUTH_CACHE: tokens (and as many users) kept in memory; 0 turns the cache off

	Limits    models.LimitConfig // LATCHKEY_LOGIN_LIMIT…, LATCHKEY_RESET_LIMIT… (limits.go); New sets its clock
	HashQueue int                // LATCHKEY_HASH_QUEUE
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
		ReauthAfter:       600,
		ShutdownTimeout:   10 * time.Second,
		AuthCache:         100000,
		Limits:            models.DefaultLimitConfig(),
		HashQueue:         64,
		Webhook:           WebhookConfig{ResetDelivery: "mail"},
		Brand:             BrandConfig{Name: "Latchkey"},
	}
}

// setting is one configuration entry, declared once: its flag, its
// variable, its help and the parser that the flag and the variable share.
type setting struct {
	flag, env, usage string
	value
}

// value reads a setting's text into its field of a Config: parse checks and
// stores, def is the default as -h shows it.
type value struct {
	parse func(string) error
	def   string
	// isBool: the flag alone means true (-allow-eternal-tokens), as a Go
	// bool flag; -flag=false still works.
	isBool bool
}

// settings are every setting of c, in the order their errors are reported.
func settings(c *Config) []setting {
	return append([]setting{
		{"addr", "LATCHKEY_ADDR", "listen address (host:port)", checked(&c.Addr, hostPort)},
		{"metrics-addr", "LATCHKEY_METRICS_ADDR", "listen address (host:port) of Prometheus /metrics, a listener of its own, never the app's; empty: no metrics", checked(&c.MetricsAddr, optional(hostPort))},
		{"db", "LATCHKEY_DB", "the store: a SQLite file path or file:PATH (its folder is created), or postgres://user@host:5432/db", checked(&c.DB, dbDSN)},
		{"base-url", "LATCHKEY_BASE_URL", "public URL of the app, used in mailed links and for secure cookies", checked(&c.BaseURL, baseURL)},
		{"log-format", "LATCHKEY_LOG_FORMAT", "log format: text or json", oneOf(&c.LogFormat, "text", "json")},
		{"smtp-host", "LATCHKEY_SMTP_HOST", "SMTP server host", text(&c.SMTP.Host)},
		{"smtp-port", "LATCHKEY_SMTP_PORT", "SMTP server port", whole(&c.SMTP.Port, 1, 65535)},
		{"smtp-user", "LATCHKEY_SMTP_USER", "SMTP user (empty: no authentication)", text(&c.SMTP.User)},
		{"smtp-password", "LATCHKEY_SMTP_PASSWORD", "SMTP password", text(&c.SMTP.Password)},
		{"smtp-tls", "LATCHKEY_SMTP_TLS", "SMTP TLS: none, starttls (required) or tls (implicit)", oneOf(&c.SMTP.TLS, "none", "starttls", "tls")},
		{"mail-from", "LATCHKEY_MAIL_FROM", "From address of mail", checked(&c.SMTP.From, mailFrom)},
		{"bcrypt-cost", "LATCHKEY_BCRYPT_COST", "bcrypt cost (LoopBack's is 10)", whole(&c.BcryptCost, 10, 16)},
		{"password-hash", "LATCHKEY_PASSWORD_HASH", "hash for new passwords: bcrypt or argon2id", oneOf(&c.PasswordHash, "bcrypt", "argon2id")},
		{"password-min", "LATCHKEY_PASSWORD_MIN", "minimum password length in characters", whole(&c.PasswordMin, 1, 64)},
		{"password-blocklist", "LATCHKEY_PASSWORD_BLOCKLIST", "refuse common passwords (embedded list): on or off", onOff(&c.PasswordBlocklist)},
		{"password-context-check", "LATCHKEY_PASSWORD_CONTEXT_CHECK", "refuse passwords containing the email, username or product name: on or off", onOff(&c.PasswordContext)},
		{"token-ttl", "LATCHKEY_TOKEN_TTL", "default access-token lifetime, seconds", seconds(&c.TokenTTL, 1)},
		{"token-max-ttl", "LATCHKEY_TOKEN_MAX_TTL", "cap on a requested token lifetime, seconds", seconds(&c.TokenMaxTTL, 1)},
		{"reset-ttl", "LATCHKEY_RESET_TTL", "password-reset link lifetime, seconds", seconds(&c.ResetTTL, 60)},
		{"verify-ttl", "LATCHKEY_VERIFY_TTL", "email confirmation link lifetime, seconds", seconds(&c.VerifyTTL, 60)},
		{"reauth-after", "LATCHKEY_REAUTH_AFTER", "how long a sign-in lets an account without a password make sensitive changes (change the email, delete the account) before it must confirm again, seconds", seconds(&c.ReauthAfter, 60)},
		{"session-idle-timeout", "LATCHKEY_SESSION_IDLE_TIMEOUT", "end a session (pages and API) unused for longer than this, seconds (up to a minute later: last use is recorded once a minute); 0: never (LoopBack)", seconds(&c.SessionIdleTimeout, 0)},
		{"allow-eternal-tokens", "LATCHKEY_ALLOW_ETERNAL_TOKENS", "accept ttl -1 (tokens that never expire)", boolean(&c.AllowEternalTokens)},
		{"compat-email-not-found", "LATCHKEY_COMPAT_EMAIL_NOT_FOUND", "reset for an unknown email answers 404 as LoopBack (reveals accounts)", boolean(&c.CompatEmailNotFound)},
		{"secret-key", "LATCHKEY_SECRET_KEY", "the server's secret key (at least 32 characters, the same on every replica; better in the environment than on the command line); empty: a random one kept in the database", checked(&c.SecretKey, secretKey)},
		{"cors-origins", "LATCHKEY_CORS_ORIGINS", "origins allowed to call /api from a browser, comma-separated", list(&c.CORSOrigins, origin)},
		{"trusted-proxies", "LATCHKEY_TRUSTED_PROXIES", "proxies whose X-Forwarded-For is believed, comma-separated CIDRs", list(&c.TrustedProxies, proxy)},
		{"shutdown-timeout", "LATCHKEY_SHUTDOWN_TIMEOUT", "how long in-flight requests may finish on shutdown (e.g. 10s)", checked(&c.ShutdownTimeout, positiveDuration)},
		{"auth-cache", "LATCHKEY_AUTH_CACHE", "tokens (and as many users) kept in memory for authenticated requests; 0 turns the cache off", whole(&c.AuthCache, 0, 10_000_000)},
	}, append(append(limitSettings(c), webhookSettings(c)...), brandSettings(c)...)...)
}

// LoadConfig reads args (without the program name) and the environment.
// Bad values stop start-up with an error naming the setting.
func LoadConfig(args []string, getenv func(string) string, stderr io.Writer) (Config, error) {
	fs := flag.NewFlagSet("latchkey", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c, err := parseConfig(fs, args, getenv)
	if err == nil && fs.NArg() > 0 { // serve's settings take no arguments
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return c, err
}

// parseConfig registers every setting as a flag of fs, parses args and
// returns the configuration: each setting from its flag, else its
// variable, else its default. Arguments after the flags are left in fs.
func parseConfig(fs *flag.FlagSet, args []string, getenv func(string) string) (Config, error) {
	c := DefaultConfig()
	all := settings(&c)
	// bad[i] is the error of setting i's last value: the variable is applied
	// first, a flag replaces it, a repeated flag's last value counts. Errors
	// wait until Parse is done, so a flag overrides a bad variable and the
	// message is "config -flag: …" without the flag package's usage text.
	bad := make([]error, len(all))
	for i, s := range all {
		if v := getenv(s.env); v != "" {
			bad[i] = named(s.env, s.parse(v))
		}
		set := func(v string) error {
			bad[i] = named("-"+s.flag, s.parse(v))
			return nil
		}
		if s.isBool {
			fs.BoolFunc(s.flag, fmt.Sprintf("%s (env %s, default %q)", s.usage, s.env, s.def), set)
		} else {
			fs.Func(s.flag, fmt.Sprintf("%s (env %s, default %q)", s.usage, s.env, s.def), set)
		}
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	// Positional arguments are the command's to judge (dispatch, Command.Args).
	for _, err := range bad {
		if err != nil {
			return c, err
		}
	}
	if err := c.Webhook.check(); err != nil {
		return c, err
	}
	if c.TokenTTL > c.TokenMaxTTL {
		return c, fmt.Errorf("config LATCHKEY_TOKEN_TTL: %d is above LATCHKEY_TOKEN_MAX_TTL %d", c.TokenTTL, c.TokenMaxTTL)
	}
	return c, nil
}

func named(from string, err error) error {
	if err != nil {
		return fmt.Errorf("config %s: %w", from, err)
	}
	return nil
}

// The parsers. Each keeps the field as it was when the text is bad.

func text(p *string) value {
	return value{parse: func(v string) error { *p = v; return nil }, def: *p}
}

// checked stores what check makes of the text.
func checked[T any](p *T, check func(string) (T, error)) value {
	return value{parse: func(v string) error {
		x, err := check(v)
		if err == nil {
			*p = x
		}
		return err
	}, def: fmt.Sprint(*p)}
}

// whole is a whole number from lo to hi, also into a float field (the
// limiter's rates per minute are fractional inside, whole as settings).
func whole[T ~int | ~float64](p *T, lo, hi int) value {
	return checked(p, func(v string) (T, error) {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < lo || n > hi {
			return 0, fmt.Errorf("want a whole number from %d to %d, got %q", lo, hi, v)
		}
		return T(n), nil
	})
}

func seconds(p *int64, lo int64) value {
	return checked(p, func(v string) (int64, error) {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil || n < lo {
			return 0, fmt.Errorf("want a whole number of seconds ≥ %d, got %q", lo, v)
		}
		return n, nil
	})
}

// duration is at least lo, written like 15m.
func duration(p *time.Duration, lo time.Duration) value {
	return checked(p, func(v string) (time.Duration, error) {
		d, err := time.ParseDuration(strings.TrimSpace(v))
		if err != nil || d < lo {
			return 0, fmt.Errorf("want a duration of at least %s like 15m, got %q", lo, v)
		}
		return d, nil
	})
}

func boolean(p *bool) value {
	v := checked(p, func(v string) (bool, error) {
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			return false, fmt.Errorf("want true/false or 1/0, got %q", v)
		}
		return b, nil
	})
	v.isBool = true
	return v
}

// onOff is a switch: on/off (also true/false, 1/0, yes/no).
func onOff(p *bool) value {
	v := checked(p, func(v string) (bool, error) {
		switch strings.ToLower(strings.TrimSpace(v)) {
		case "on", "true", "1", "yes":
			return true, nil
		case "off", "false", "0", "no":
			return false, nil
		}
		return false, fmt.Errorf("want on or off, got %q", v)
	})
	v.def = "off"
	if *p {
		v.def = "on"
	}
	return v
}

func oneOf(p *string, options ...string) value {
	return checked(p, func(v string) (string, error) {
		v = strings.ToLower(strings.TrimSpace(v))
		if slices.Contains(options, v) {
			return v, nil
		}
		return "", fmt.Errorf("want one of %s, got %q", strings.Join(options, ", "), v)
	})
}

// list is comma-separated items; item says whether one is empty (skipped).
func list[T any](p *[]T, item func(string) (x T, ok bool, err error)) value {
	v := checked(p, func(v string) ([]T, error) {
		var out []T
		for _, s := range strings.Split(v, ",") {
			x, ok, err := item(s)
			if err != nil {
				return nil, err
			}
			if ok {
				out = append(out, x)
			}
		}
		return out, nil
	})
	parts := make([]string, len(*p))
	for i, x := range *p {
		parts[i] = fmt.Sprint(x)
	}
	v.def = strings.Join(parts, ",")
	return v
}

// secretKey is LATCHKEY_SECRET_KEY: long enough to be a key. The error
// never repeats the value.
func secretKey(v string) (string, error) {
	if len(v) < models.SecretKeyMinLength {
		return "", fmt.Errorf("want at least %d characters (e.g. openssl rand -base64 48), got %d", models.SecretKeyMinLength, len(v))
	}
	return v, nil
}

func hostPort(v string) (string, error) {
	if _, _, err := net.SplitHostPort(v); err != nil {
		return "", fmt.Errorf("want host:port, got %q", v)
	}
	return v, nil
}

// optional lets check's setting be empty (off).
func optional[T any](check func(string) (T, error)) func(string) (T, error) {
	return func(v string) (T, error) {
		if strings.TrimSpace(v) == "" {
			var zero T
			return zero, nil
		}
		return check(strings.TrimSpace(v))
	}
}

// dbDSN is a SQLite file path (or file:PATH) or a postgres:// URL; any other
// scheme stops start-up here rather than becoming a file of that name.
func dbDSN(v string) (string, error) {
	if strings.TrimSpace(v) == "" {
		return "", errors.New("want a file path or a postgres:// URL")
	}
	if _, err := models.StoreKind(v); err != nil {
		return "", errors.New(strings.TrimPrefix(err.Error(), "models: "))
	}
	return v, nil
}

// baseURL is an absolute http(s) URL, kept without a trailing slash.
func baseURL(v string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(v))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("want an absolute http(s) URL without query, got %q", v)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

func mailFrom(v string) (string, error) {
	if !strings.Contains(v, "@") {
		return "", fmt.Errorf("want an address like \"Name <noreply@example.com>\", got %q", v)
	}
	return v, nil
}

// origin is a browser origin like https://app.example.com; a trailing slash
// is dropped.
func origin(s string) (string, bool, error) {
	o := strings.TrimRight(strings.TrimSpace(s), "/")
	if o == "" {
		return "", false, nil
	}
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" {
		return "", false, fmt.Errorf("want origins like https://app.example.com, got %q", o)
	}
	return o, true, nil
}

// proxy is a CIDR, or one address (a prefix of its full length).
func proxy(s string) (netip.Prefix, bool, error) {
	p := strings.TrimSpace(s)
	if p == "" {
		return netip.Prefix{}, false, nil
	}
	if !strings.Contains(p, "/") {
		a, err := netip.ParseAddr(p)
		if err != nil {
			return netip.Prefix{}, false, fmt.Errorf("want CIDRs like 10.0.0.0/8 or addresses, got %q", p)
		}
		p = netip.PrefixFrom(a, a.BitLen()).String()
	}
	pfx, err := netip.ParsePrefix(p)
	if err != nil {
		return netip.Prefix{}, false, fmt.Errorf("want CIDRs like 10.0.0.0/8 or addresses, got %q", p)
	}
	return pfx.Masked(), true, nil
}

func positiveDuration(v string) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(v))
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("want a duration like 10s, got %q", v)
	}
	return d, nil
}

// SecureCookies reports whether the base URL is https, so the session cookie
// gets Secure and the __Host- prefix.
func (c Config) SecureCookies() bool { return strings.HasPrefix(c.BaseURL, "https://") }
