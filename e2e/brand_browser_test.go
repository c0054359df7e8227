package e2e

import (
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/latchkey/latchkey/boot"
	"github.com/latchkey/latchkey/views"
	"github.com/latchkey/latchkey/views/email"
)

// brandLogo is a made-up mark: a green rounded square with a white A.
const brandLogo = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64">` +
	`<rect width="64" height="64" rx="14" fill="#0b6e4f"/>` +
	`<path d="M20 48 L32 14 L44 48 M25 36 H39" stroke="#fff" stroke-width="6" fill="none" stroke-linecap="round" stroke-linejoin="round"/></svg>`

// TestBrowserBranding: with another name, logo and colour (issue 14), the
// login page and a mail show them, at 1024 px. The mail's HTML is opened
// from a file, as a mail client shows it apart from the site.
func TestBrowserBranding(t *testing.T) {
	browserChromium(t)
	tpl := t.TempDir()
	if err := os.WriteFile(filepath.Join(tpl, "reset.subject.txt"), []byte("{{.App.Name}}: choose a new password"), 0o644); err != nil {
		t.Fatal(err)
	}
	templates, err := email.LoadTemplates(tpl, views.Brand{})
	if err != nil {
		t.Fatal(err)
	}
	base, mails := browserStartAppWith(t, "", func(c *boot.Config) {
		c.Brand = boot.BrandConfig{Name: "Acme Cloud", Color: "#0b6e4f", MailTemplates: templates,
			Logo: &boot.Logo{Path: "acme.svg", Body: []byte(brandLogo), Ext: ".svg"}}
	})
	b := browserOpen(t, base, 1024, 768)

	b.do("login page", chromedp.Navigate(base+"/login"), b.on("page-login"))
	if got := b.text("brand"); got != "Acme Cloud" {
		t.Errorf("brand: %q", got)
	}
	title, err := chromedp.Run(b.ctx, chromedp.Title())
	if err != nil || title != "Log in · Acme Cloud" {
		t.Errorf("title %q %v", title, err)
	}
	// The brand stylesheet took: the button's background is the colour.
	bg, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`getComputedStyle(document.querySelector('button[type=submit], .button')).backgroundColor`))
	if err != nil || bg != "rgb(11, 110, 79)" {
		t.Errorf("button background %q %v", bg, err)
	}
	loaded, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](`document.querySelector('[data-testid=brand-logo]').naturalWidth > 0`))
	if err != nil || !loaded {
		t.Errorf("the logo did not load: %v", err)
	}
	b.shot("brand-login")

	// A reset mail, rendered by the app with the brand.
	addr := "ada@example.com"
	brandPost(t, base+"/api/users", url.Values{"email": {addr}, "password": {"correct horse 42"}})
	brandPost(t, base+"/api/users/reset", url.Values{"email": {addr}})
	m := mails.WaitFor(t, addr, "Acme Cloud: choose a new password", 15*time.Second)
	if !strings.Contains(m.HTML, "the Acme Cloud account for") || !strings.Contains(m.Text, "sent automatically by Acme Cloud") || strings.Contains(m.HTML+m.Text, "Latchkey") {
		t.Errorf("mail:\n%s\n%s", m.HTML, m.Text)
	}
	file := filepath.Join(t.TempDir(), "reset.html")
	if err := os.WriteFile(file, []byte(m.HTML), 0o644); err != nil {
		t.Fatal(err)
	}
	b.do("the mail", chromedp.Navigate("file://"+file), b.on("action"))
	loaded, err = chromedp.Run(b.ctx, chromedp.Evaluate[bool](`document.querySelector('[data-testid=logo]').naturalWidth > 0`))
	if err != nil || !loaded {
		t.Errorf("the mail's logo did not load: %v", err)
	}
	bg, err = chromedp.Run(b.ctx, chromedp.Evaluate[string](`getComputedStyle(document.querySelector('[data-testid=action]')).backgroundColor`))
	if err != nil || bg != "rgb(11, 110, 79)" {
		t.Errorf("mail button background %q %v", bg, err)
	}
	b.shot("brand-mail-reset")
}

func brandPost(t *testing.T, u string, form url.Values) {
	t.Helper()
	res, err := http.PostForm(u, form)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode >= 300 {
		t.Fatalf("POST %s: %d", u, res.StatusCode)
	}
}
