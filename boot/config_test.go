package boot_test

import (
	"io"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/boot"
	"github.com/latchkey/latchkey/models"
)

func TestLoadConfigDefaults(t *testing.T) {
	c, err := boot.LoadConfig(nil, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := boot.DefaultConfig()
	if c.Addr != "127.0.0.1:3000" || c.DB != "./data/latchkey.db" || c.BaseURL != "http://localhost:3000" ||
		c.SMTP.Host != "127.0.0.1" || c.SMTP.Port != 1025 || c.SMTP.TLS != "none" || c.BcryptCost != 10 ||
		c.PasswordMin != 8 || c.TokenTTL != 1209600 || c.TokenMaxTTL != 31556926 || c.ResetTTL != 900 ||
		c.LogFormat != "text" || c.Addr != want.Addr {
		t.Fatalf("defaults: %+v", c)
	}
	if c.SecureCookies() {
		t.Error("http base URL with secure cookies")
	}
}

func TestLoadConfigEnvAndFlags(t *testing.T) {
	env := map[string]string{
		"LATCHKEY_ADDR":            "0.0.0.0:8080",
		"LATCHKEY_BASE_URL":        "https://auth.example.com/",
		"LATCHKEY_SMTP_TLS":        "STARTTLS",
		"LATCHKEY_SMTP_PORT":       "587",
		"LATCHKEY_BCRYPT_COST":     "12",
		"LATCHKEY_TOKEN_TTL":       "3600",
		"LATCHKEY_LOG_FORMAT":      "json",
		"LATCHKEY_CORS_ORIGINS":    "https://a.example.com, https://b.example.com",
		"LATCHKEY_TRUSTED_PROXIES": "10.0.0.0/8,192.0.2.7",
		"LATCHKEY_AUTH_CACHE":      "0",
	}
	c, err := boot.LoadConfig([]string{"-addr", "127.0.0.1:9999", "-password-min", "12"}, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:9999" || c.PasswordMin != 12 {
		t.Errorf("flags did not win: %+v", c)
	}
	if c.BaseURL != "https://auth.example.com" || !c.SecureCookies() || c.SMTP.TLS != "starttls" || c.SMTP.Port != 587 ||
		c.BcryptCost != 12 || c.TokenTTL != 3600 || c.LogFormat != "json" || len(c.CORSOrigins) != 2 ||
		len(c.TrustedProxies) != 2 || c.TrustedProxies[1].String() != "192.0.2.7/32" || c.AuthCache != 0 {
		t.Errorf("env: %+v", c)
	}
}

// TestLoadConfigBadValues: every bad value stops start-up naming the setting.
func TestLoadConfigBadValues(t *testing.T) {
	for name, val := range map[string]string{
		"LATCHKEY_ADDR":             "nonsense",
		"LATCHKEY_BASE_URL":         "ftp://x",
		"LATCHKEY_SMTP_PORT":        "70000",
		"LATCHKEY_SMTP_TLS":         "maybe",
		"LATCHKEY_BCRYPT_COST":      "4",
		"LATCHKEY_PASSWORD_MIN":     "zero",
		"LATCHKEY_TOKEN_TTL":        "-5",
		"LATCHKEY_TOKEN_MAX_TTL":    "1.5",
		"LATCHKEY_RESET_TTL":        "10",
		"LATCHKEY_LOG_FORMAT":       "xml",
		"LATCHKEY_MAIL_FROM":        "nobody",
		"LATCHKEY_CORS_ORIGINS":     "*",
		"LATCHKEY_TRUSTED_PROXIES":  "everyone",
		"LATCHKEY_PASSWORD_HASH":    "md5",
		"LATCHKEY_SHUTDOWN_TIMEOUT": "soon",
		"LATCHKEY_AUTH_CACHE":       "-1",
		"LATCHKEY_DB":               "mysql://root@127.0.0.1/test",
	} {
		_, err := boot.LoadConfig(nil, func(k string) string {
			if k == name {
				return val
			}
			return ""
		}, io.Discard)
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s=%q: %v", name, val, err)
		}
	}
	if _, err := boot.LoadConfig(nil, func(k string) string {
		return map[string]string{"LATCHKEY_TOKEN_TTL": "100", "LATCHKEY_TOKEN_MAX_TTL": "50"}[k]
	}, io.Discard); err == nil {
		t.Error("ttl above max accepted")
	}
	if _, err := boot.LoadConfig([]string{"-bcrypt-cost", "99"}, func(string) string { return "" }, io.Discard); err == nil || !strings.Contains(err.Error(), "-bcrypt-cost") {
		t.Errorf("bad flag: %v", err)
	}
	if _, err := boot.LoadConfig([]string{"extra"}, func(string) string { return "" }, io.Discard); err == nil {
		t.Error("stray argument accepted")
	}
}

// TestPasswordCheckSettings: LATCHKEY_PASSWORD_BLOCKLIST and
// LATCHKEY_PASSWORD_CONTEXT_CHECK are on by default, take on/off, and reach
// the password policy (SECURITY P6, P7).
func TestPasswordCheckSettings(t *testing.T) {
	t.Parallel()
	c, err := boot.LoadConfig(nil, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !c.PasswordBlocklist || !c.PasswordContext {
		t.Fatalf("defaults: blocklist %v, context %v; want both on", c.PasswordBlocklist, c.PasswordContext)
	}
	for _, name := range []string{"LATCHKEY_PASSWORD_BLOCKLIST", "LATCHKEY_PASSWORD_CONTEXT_CHECK"} {
		if _, err := boot.LoadConfig(nil, func(k string) string {
			return map[string]string{name: "sometimes"}[k]
		}, io.Discard); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s=sometimes: %v", name, err)
		}
	}
	ctx := models.PasswordContext{Email: "alice@example.com", Username: "alice"}
	code := func(app *boot.App, pw string) string {
		if me, ok := models.AsError(app.Users.CheckPasswordPolicy(pw, ctx)); ok {
			return me.Code
		}
		return ""
	}
	on := newTestApp(t, nil)
	if got := code(on, "password1234"); got != "PASSWORD_BREACHED" {
		t.Errorf("default: password1234 = %q", got)
	}
	if got := code(on, "alice2024"); got != "PASSWORD_CONTEXT" {
		t.Errorf("default: alice2024 = %q", got)
	}
	off := newTestApp(t, map[string]string{"LATCHKEY_PASSWORD_BLOCKLIST": "off", "LATCHKEY_PASSWORD_CONTEXT_CHECK": "OFF"})
	for _, pw := range []string{"password1234", "alice2024"} {
		if got := code(off, pw); got != "" {
			t.Errorf("both off: %s = %q, want accepted", pw, got)
		}
	}
}

// TestLoadConfigLastValueCounts: a flag replaces its variable, also a bad
// one, and of a repeated flag the last value counts.
func TestLoadConfigLastValueCounts(t *testing.T) {
	env := func(k string) string { return map[string]string{"LATCHKEY_BCRYPT_COST": "4"}[k] }
	if c, err := boot.LoadConfig([]string{"-bcrypt-cost", "12"}, env, io.Discard); err != nil || c.BcryptCost != 12 {
		t.Errorf("flag over a bad variable: %d, %v", c.BcryptCost, err)
	}
	none := func(string) string { return "" }
	if c, err := boot.LoadConfig([]string{"-bcrypt-cost", "99", "-bcrypt-cost", "11"}, none, io.Discard); err != nil || c.BcryptCost != 11 {
		t.Errorf("bad then good: %d, %v", c.BcryptCost, err)
	}
	_, err := boot.LoadConfig([]string{"-bcrypt-cost", "11", "-bcrypt-cost", "99"}, none, io.Discard)
	if want := `config -bcrypt-cost: want a whole number from 10 to 16, got "99"`; err == nil || err.Error() != want {
		t.Errorf("good then bad: %v, want %s", err, want)
	}
}

// TestDBSetting: LATCHKEY_DB takes a path, file:PATH or a postgres URL; any
// other scheme stops start-up naming the setting, without echoing a password.
func TestDBSetting(t *testing.T) {
	for _, ok := range []string{"./data/latchkey.db", "file:/tmp/x.db", "postgres://u:pw@db:5432/app", "postgresql://db/app?sslmode=require"} {
		c, err := boot.LoadConfig([]string{"-db", ok}, func(string) string { return "" }, io.Discard)
		if err != nil || c.DB != ok {
			t.Errorf("-db %q: %v", ok, err)
		}
	}
	for _, bad := range []string{"mysql://u:s3cret@db/app", "mongodb://db", "file:/tmp/x.db?mode=ro"} {
		_, err := boot.LoadConfig(nil, func(k string) string { return map[string]string{"LATCHKEY_DB": bad}[k] }, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "LATCHKEY_DB") || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("LATCHKEY_DB=%q: %v", bad, err)
		}
	}
}
