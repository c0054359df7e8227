package handlers_test

import (
	"strings"
	"testing"

	"github.com/latchkey/latchkey/handlers"
	"github.com/latchkey/latchkey/models"
	"github.com/latchkey/latchkey/static"
	"github.com/latchkey/latchkey/views"
)

// The pages show the brand's name, logo and stylesheet wherever they showed
// Latchkey's, the stylesheet and logo are served content-hashed, and the
// CSP is the same as without a brand.
func TestPagesShowBrand(t *testing.T) {
	plain := newEnv(t)
	plainCSP := newBrowser(t, plain, "http://localhost:3000").get("/login").header.Get("Content-Security-Policy")

	logo := `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><rect width="10" height="10" fill="#0b6e4f"/></svg>`
	assets, err := static.Load(static.File{Name: "logo.svg", Body: []byte(logo)},
		static.File{Name: "brand.css", Body: []byte(":root { --accent: #0b6e4f; --accent-dark: #09583f; }")})
	if err != nil {
		t.Fatal(err)
	}
	brand := views.Brand{Name: "Acme Cloud", Color: "#0b6e4f", Logo: assets.URL("logo.svg"), Stylesheet: assets.URL("brand.css")}
	env := newEnv(t, func(_ *models.Config, o *handlers.Options) { o.Assets, o.Brand = assets, brand })
	b := newBrowser(t, env, "http://localhost:3000")

	for _, path := range []string{"/login", "/signup", "/no-such-page"} {
		p := b.get(path)
		if title := p.doc.Find("title").Text(); !strings.HasSuffix(title, " · Acme Cloud") {
			t.Errorf("%s: title %q", path, title)
		}
		if got := strings.TrimSpace(p.doc.Find("[data-testid=brand]").Text()); got != "Acme Cloud" {
			t.Errorf("%s: brand %q", path, got)
		}
		if src, _ := p.doc.Find("[data-testid=brand-logo]").Attr("src"); src != brand.Logo || !strings.HasPrefix(src, "/static/logo.") {
			t.Errorf("%s: logo %q", path, src)
		}
		if href, _ := p.doc.Find("link[rel=stylesheet][data-testid=brand-css]").Attr("href"); href != brand.Stylesheet {
			t.Errorf("%s: brand stylesheet %q", path, href)
		}
		if strings.Contains(p.body, "Latchkey") {
			t.Errorf("%s still says Latchkey", path)
		}
		if csp := p.header.Get("Content-Security-Policy"); csp != plainCSP {
			t.Errorf("%s: CSP %q, want %q", path, csp, plainCSP)
		}
		if p.doc.Find("[style]").Length() != 0 {
			t.Errorf("%s: an inline style attribute", path)
		}
	}
	// The brand stylesheet comes after style.css, so its variables win.
	links := b.get("/login").doc.Find("link[rel=stylesheet]")
	if last, _ := links.Last().Attr("href"); links.Length() != 2 || last != brand.Stylesheet {
		t.Errorf("stylesheets: %d, last %q", links.Length(), last)
	}
	css := b.get(brand.Stylesheet)
	if css.status != 200 || !strings.Contains(css.body, "--accent: #0b6e4f") || !strings.Contains(css.header.Get("Cache-Control"), "immutable") {
		t.Errorf("brand.css: %d %q %q", css.status, css.header.Get("Cache-Control"), css.body)
	}
	svg := b.get(brand.Logo)
	if svg.status != 200 || svg.header.Get("Content-Type") != "image/svg+xml" || !strings.Contains(svg.header.Get("Content-Security-Policy"), "sandbox") {
		t.Errorf("logo: %d %v", svg.status, svg.header)
	}
}
