package views

// Brand is how the pages and the mail name and show the app
// (LATCHKEY_APP_NAME, LATCHKEY_LOGO, LATCHKEY_BRAND_COLOR). The zero Brand
// is Latchkey's own look.
type Brand struct {
	// Name replaces "Latchkey" in titles, the header, the footer and mail.
	Name string
	// Logo is the logo's URL (a content-hashed /static path on pages, an
	// absolute URL in mail); "" shows Latchkey's icon (pages) or none (mail).
	Logo string
	// Color is the accent as #rrggbb; "" keeps the stylesheet's.
	Color string
	// Stylesheet is the URL of the generated stylesheet that sets the
	// accent (static brand.css); "" when there is none.
	Stylesheet string
}

// AppName is the name to show: Name, or "Latchkey".
func (b Brand) AppName() string {
	if b.Name == "" {
		return "Latchkey"
	}
	return b.Name
}
