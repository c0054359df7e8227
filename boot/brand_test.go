package boot_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/boot"
	"github.com/latchkey/latchkey/internal/testkit"
)

func brandEnv(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func writeFile(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const testSVG = `<?xml version="1.0"?>
<!-- a logo -->
<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><rect width="10" height="10"/></svg>`

func TestBrandSettings(t *testing.T) {
	dir := t.TempDir()
	svg := writeFile(t, dir, "logo.svg", testSVG)
	png := writeFile(t, dir, "logo.bin", "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
	tpl := filepath.Join(dir, "mail")
	os.Mkdir(tpl, 0o755)
	writeFile(t, tpl, "reset.subject.txt", "{{.App.Name}} reset")

	c, err := boot.LoadConfig(nil, brandEnv(nil), io.Discard)
	if err != nil || c.Brand.Name != "Latchkey" || c.Brand.Logo != nil || c.Brand.Color != "" || c.Brand.MailTemplates != nil {
		t.Fatalf("defaults: %+v %v", c.Brand, err)
	}
	c, err = boot.LoadConfig([]string{"-logo", png}, brandEnv(map[string]string{
		"LATCHKEY_APP_NAME": "Acme Cloud", "LATCHKEY_LOGO": svg, "LATCHKEY_BRAND_COLOR": "#0B6E4F", "LATCHKEY_MAIL_TEMPLATES": tpl,
	}), io.Discard)
	if err != nil || c.Brand.Name != "Acme Cloud" || c.Brand.Logo.Ext != ".png" || c.Brand.Color != "#0b6e4f" || c.Brand.MailTemplates == nil {
		t.Fatalf("set: %+v %v", c.Brand, err)
	}
	if c, err := boot.LoadConfig(nil, brandEnv(map[string]string{"LATCHKEY_LOGO": svg}), io.Discard); err != nil || c.Brand.Logo.Ext != ".svg" {
		t.Fatalf("svg: %v", err)
	}
	// #767676 is the lightest grey that passes (4.54:1); AA is 4.5:1.
	if _, err := boot.LoadConfig(nil, brandEnv(map[string]string{"LATCHKEY_BRAND_COLOR": "#767676"}), io.Discard); err != nil {
		t.Fatalf("#767676: %v", err)
	}

	big := writeFile(t, dir, "big.png", "\x89PNG\r\n\x1a\n"+strings.Repeat("x", 600<<10))
	for name, c := range map[string]struct {
		env  map[string]string
		want string
	}{
		"light colour":  {map[string]string{"LATCHKEY_BRAND_COLOR": "#777777"}, "config LATCHKEY_BRAND_COLOR: white button text on #777777 has a contrast of 4.47:1, below WCAG AA's 4.5:1"},
		"yellow":        {map[string]string{"LATCHKEY_BRAND_COLOR": "#ffff00"}, "contrast of 1.07:1"},
		"not a colour":  {map[string]string{"LATCHKEY_BRAND_COLOR": "green"}, `config LATCHKEY_BRAND_COLOR: want a colour as #rrggbb, got "green"`},
		"missing logo":  {map[string]string{"LATCHKEY_LOGO": filepath.Join(dir, "nope.svg")}, "config LATCHKEY_LOGO: open " + filepath.Join(dir, "nope.svg")},
		"not an image":  {map[string]string{"LATCHKEY_LOGO": writeFile(t, dir, "logo.txt", "<html><svg/></html>")}, "config LATCHKEY_LOGO: " + filepath.Join(dir, "logo.txt") + ": not an SVG or PNG image"},
		"too big":       {map[string]string{"LATCHKEY_LOGO": big}, "config LATCHKEY_LOGO: " + big + ": larger than 512 KiB"},
		"no folder":     {map[string]string{"LATCHKEY_MAIL_TEMPLATES": filepath.Join(dir, "none")}, "config LATCHKEY_MAIL_TEMPLATES: open " + filepath.Join(dir, "none")},
		"unknown name":  {map[string]string{"LATCHKEY_MAIL_TEMPLATES": tplDir(t, "welcome.html", "hi")}, "welcome.html: unknown template name"},
		"parse error":   {map[string]string{"LATCHKEY_MAIL_TEMPLATES": tplDir(t, "verify.html", "{{if}}")}, "verify.html: template: verify.html:1: missing value for if"},
		"render error":  {map[string]string{"LATCHKEY_MAIL_TEMPLATES": tplDir(t, "account-deleted.txt", "{{.Link}}")}, "account-deleted.txt: with sample data"},
		"empty name":    {map[string]string{"LATCHKEY_APP_NAME": " "}, ""}, // empty: the default
		"two-line name": {map[string]string{"LATCHKEY_APP_NAME": "a\nb"}, "config LATCHKEY_APP_NAME: want a name of at most 60 characters on one line"},
	} {
		_, err := boot.LoadConfig(nil, brandEnv(c.env), io.Discard)
		if c.want == "" {
			if err != nil {
				t.Errorf("%s: %v", name, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", name, err, c.want)
		}
		if strings.Contains(c.want, "template") && (err == nil || !strings.HasPrefix(err.Error(), "config LATCHKEY_MAIL_TEMPLATES: ")) {
			t.Errorf("%s: %v does not name the setting", name, err)
		}
	}
}

func tplDir(t *testing.T, name, body string) string {
	dir := t.TempDir()
	writeFile(t, dir, name, body)
	return dir
}

// A template that does not render stops start-up with the file named,
// before anything listens.
func TestStartFailsOnBadMailTemplate(t *testing.T) {
	dir := tplDir(t, "reset.html", "<p>{{.Nope}}</p>")
	logs := &testkit.SyncBuffer{}
	err := boot.RunReady(context.Background(), nil, boot.Environ(map[string]string{
		"LATCHKEY_ADDR": "127.0.0.1:0", "LATCHKEY_DB": filepath.Join(t.TempDir(), "l.db"), "LATCHKEY_MAIL_TEMPLATES": dir,
	}), logs, func(string) { t.Error("listening") })
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "reset.html")) || !strings.Contains(err.Error(), "LATCHKEY_MAIL_TEMPLATES") {
		t.Fatalf("got %v", err)
	}
}

// The running app shows the brand and mails with it.
func TestAppShowsBrand(t *testing.T) {
	dir := t.TempDir()
	base, _, stop := startApp(t, map[string]string{
		"LATCHKEY_APP_NAME": "Acme Cloud", "LATCHKEY_LOGO": writeFile(t, dir, "logo.svg", testSVG), "LATCHKEY_BRAND_COLOR": "#0b6e4f",
	})
	defer stop()
	res, err := http.Get(base + "/login")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	body := string(b)
	for _, want := range []string{"<title>Log in · Acme Cloud</title>", `src="/static/logo.`, `href="/static/brand.`} {
		if !strings.Contains(body, want) {
			t.Errorf("login page lacks %q", want)
		}
	}
}
