package boot

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/latchkey/latchkey/static"
	"github.com/latchkey/latchkey/views"
	"github.com/latchkey/latchkey/views/email"
)

// BrandConfig is the host app's look on the pages and in the mail (issue 14).
type BrandConfig struct {
	Name string // LATCHKEY_APP_NAME; "Latchkey" by default
	// Logo is LATCHKEY_LOGO, read at start-up; nil: Latchkey's icon.
	Logo *Logo
	// Color is LATCHKEY_BRAND_COLOR, #rrggbb (lower case); "": the
	// stylesheet's blue.
	Color string
	// MailTemplates is LATCHKEY_MAIL_TEMPLATES, parsed and tried at
	// start-up; nil: the built-in mail.
	MailTemplates *email.Templates
}

// Logo is the logo file's content.
type Logo struct {
	Path string // as configured, for -h and messages
	Body []byte
	Ext  string // ".svg" or ".png"
}

func (l *Logo) String() string {
	if l == nil {
		return ""
	}
	return l.Path
}

// logoMax caps the logo: it is kept in memory and sent on every page.
const logoMax = 512 << 10

// minContrast is WCAG 2.x AA for normal text: the buttons' white label on
// the brand colour.
const minContrast = 4.5

func brandSettings(c *Config) []setting {
	return []setting{
		{"app-name", "LATCHKEY_APP_NAME", "the app's name on the pages, in the mail and in authenticator apps", checked(&c.Brand.Name, appName)},
		{"logo", "LATCHKEY_LOGO", "the app's logo, an SVG or PNG file (at most 512 KiB), read at start-up; empty: Latchkey's", noDefault(checked(&c.Brand.Logo, optional(readLogo)))},
		{"brand-color", "LATCHKEY_BRAND_COLOR", "the accent colour of buttons and links, #rrggbb, dark enough for white text (WCAG AA, 4.5:1); empty: Latchkey's blue", checked(&c.Brand.Color, optional(brandColor))},
		{"mail-templates", "LATCHKEY_MAIL_TEMPLATES", "a folder of templates overriding the mail: KIND.subject.txt, KIND.html, KIND.txt (README, Branding)", noDefault(checked(&c.Brand.MailTemplates, optional(mailTemplates)))},
	}
}

func appName(v string) (string, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return "Latchkey", nil
	}
	if len(v) > 60 || strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return "", fmt.Errorf("want a name of at most 60 characters on one line, got %q", v)
	}
	return v, nil
}

// readLogo reads an SVG or PNG file, told apart by its content, not its name.
func readLogo(path string) (*Logo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	body, err := io.ReadAll(io.LimitReader(f, logoMax+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(body) > logoMax {
		return nil, fmt.Errorf("%s: larger than %d KiB", path, logoMax>>10)
	}
	switch {
	case bytes.HasPrefix(body, []byte("\x89PNG\r\n\x1a\n")):
		return &Logo{Path: path, Body: body, Ext: ".png"}, nil
	case isSVG(body):
		return &Logo{Path: path, Body: body, Ext: ".svg"}, nil
	}
	return nil, fmt.Errorf("%s: not an SVG or PNG image", path)
}

// isSVG: the document's first element is <svg> in XML.
func isSVG(body []byte) bool {
	d := xml.NewDecoder(bytes.NewReader(body))
	for {
		tok, err := d.Token()
		if err != nil {
			return false
		}
		if el, ok := tok.(xml.StartElement); ok {
			return el.Name.Local == "svg"
		}
	}
}

// brandColor is #rrggbb on which white text meets WCAG AA.
func brandColor(v string) (string, error) {
	v = strings.ToLower(strings.TrimSpace(v))
	r, g, b, ok := parseHex(v)
	if !ok {
		return "", fmt.Errorf("want a colour as #rrggbb, got %q", v)
	}
	if c := contrastWithWhite(r, g, b); c < minContrast {
		return "", fmt.Errorf("white button text on %s has a contrast of %.2f:1, below WCAG AA's %.1f:1: choose a darker colour", v, math.Floor(c*100)/100, minContrast)
	}
	return v, nil
}

func parseHex(v string) (r, g, b uint8, ok bool) {
	if len(v) != 7 || v[0] != '#' {
		return 0, 0, 0, false
	}
	n, err := strconv.ParseUint(v[1:], 16, 32)
	if err != nil {
		return 0, 0, 0, false
	}
	return uint8(n >> 16), uint8(n >> 8), uint8(n), true
}

// relativeLuminance is WCAG 2.x's, of an sRGB colour.
func relativeLuminance(r, g, b uint8) float64 {
	lin := func(c uint8) float64 {
		s := float64(c) / 255
		if s <= 0.04045 {
			return s / 12.92
		}
		return math.Pow((s+0.055)/1.055, 2.4)
	}
	return 0.2126*lin(r) + 0.7152*lin(g) + 0.0722*lin(b)
}

// contrastWithWhite is (L1 + 0.05) / (L2 + 0.05) with white the lighter.
func contrastWithWhite(r, g, b uint8) float64 {
	return 1.05 / (relativeLuminance(r, g, b) + 0.05)
}

// darker is the hover shade: each channel at 80 %.
func darker(hex string) string {
	r, g, b, _ := parseHex(hex)
	f := func(c uint8) uint8 { return uint8(math.Round(float64(c) * 0.8)) }
	return fmt.Sprintf("#%02x%02x%02x", f(r), f(g), f(b))
}

// mailTemplates loads a template folder; its errors name the file.
func mailTemplates(dir string) (*email.Templates, error) {
	return email.LoadTemplates(dir, views.Brand{Name: "Sample"})
}

// noDefault shows an empty default in -h.
func noDefault(v value) value { v.def = ""; return v }

// files are the brand's files served under /static: the logo as logo.svg
// or logo.png, and brand.css setting the accent.
func (b BrandConfig) files() []static.File {
	var out []static.File
	if b.Logo != nil {
		out = append(out, static.File{Name: "logo" + b.Logo.Ext, Body: b.Logo.Body})
	}
	if b.Color != "" {
		css := fmt.Sprintf(":root {\n  --accent: %s;\n  --accent-dark: %s;\n}\n", b.Color, darker(b.Color))
		out = append(out, static.File{Name: "brand.css", Body: []byte(css)})
	}
	return out
}

// assets loads the static files with the brand's, and the brand as the
// pages show it (URLs under /static) and as the mail does (absolute
// URLs from baseURL).
func (b BrandConfig) assets(baseURL string) (*static.Assets, views.Brand, email.Renderer, error) {
	a, err := static.Load(b.files()...)
	if err != nil {
		return nil, views.Brand{}, email.Renderer{}, err
	}
	page := views.Brand{Name: b.Name, Color: b.Color}
	if b.Logo != nil {
		page.Logo = a.URL("logo" + b.Logo.Ext)
	}
	if b.Color != "" {
		page.Stylesheet = a.URL("brand.css")
	}
	mail := page
	mail.Stylesheet = ""
	if mail.Logo != "" {
		mail.Logo = strings.TrimRight(baseURL, "/") + mail.Logo
	}
	return a, page, email.Renderer{Brand: mail, Templates: b.MailTemplates}, nil
}
