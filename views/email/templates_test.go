package email

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/views"
)

func writeTemplates(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// The brand shows in the built-in mail; the operator's templates replace
// the parts they give and keep the others.
func TestRenderBrandAndOverrides(t *testing.T) {
	ctx := context.Background()
	brand := views.Brand{Name: "Acme Cloud", Logo: "https://acme.example/static/logo.abc.png", Color: "#0b6e4f"}
	d := ResetData{Email: "ada@example.com", Link: "https://acme.example/reset-password?access_token=T", Minutes: 15}

	m, err := Renderer{Brand: brand}.Reset(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"the Acme Cloud account for", "sent automatically by Acme Cloud", `src="https://acme.example/static/logo.abc.png"`, "background:#0b6e4f"} {
		if !strings.Contains(m.HTML, want) {
			t.Errorf("HTML lacks %q:\n%s", want, m.HTML)
		}
	}
	if strings.Contains(m.HTML+m.Text, "Latchkey") || !strings.Contains(m.Text, "sent automatically by Acme Cloud") {
		t.Errorf("text:\n%s", m.Text)
	}

	dir := writeTemplates(t, map[string]string{
		"reset.subject.txt": "{{.App.Name}}: reset\nfor {{.Email}}",
		"reset.html":        `<p>Hi {{.Email}}, <a href="{{.Link}}">reset</a> within {{minutes .Minutes}} — {{.Subject}}</p>`,
		"verify.txt":        "Confirm {{.Email}} at {{.Link}} ({{hours .Hours}}), {{.App.Name}}",
	})
	tpl, err := LoadTemplates(dir, brand)
	if err != nil {
		t.Fatal(err)
	}
	r := Renderer{Brand: brand, Templates: tpl}
	m, err = r.Reset(ctx, ResetData{Email: "o'hara@example.com", Link: "https://acme.example/reset-password?access_token=T", Minutes: 15})
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject != "Acme Cloud: reset for o'hara@example.com" {
		t.Errorf("subject %q", m.Subject)
	}
	if m.HTML != `<p>Hi o&#39;hara@example.com, <a href="https://acme.example/reset-password?access_token=T">reset</a> within 15 minutes — Acme Cloud: reset for o&#39;hara@example.com</p>` {
		t.Errorf("html %s", m.HTML)
	}
	if !strings.Contains(m.Text, "the Acme Cloud account for o'hara@example.com") { // not overridden: built in
		t.Errorf("text %s", m.Text)
	}
	v, err := r.Verify(ctx, VerifyData{Email: "a@example.com", Link: "https://acme.example/c", Hours: 24})
	if err != nil {
		t.Fatal(err)
	}
	if v.Text != "Confirm a@example.com at https://acme.example/c (24 hours), Acme Cloud" || v.Subject != VerifySubject || !strings.Contains(v.HTML, "Acme Cloud") {
		t.Errorf("verify %+v", v)
	}
}

// Every kind has sample data, and a template of each kind that names all
// of its fields renders.
func TestSamplesCoverKinds(t *testing.T) {
	s := Samples()
	for _, k := range Kinds() {
		if kindOf(s[k]) != k {
			t.Errorf("kind %s: sample %T", k, s[k])
		}
	}
}

// Bad folders stop with the file's name.
func TestLoadTemplatesErrors(t *testing.T) {
	for name, c := range map[string]struct{ file, body, want string }{
		"unknown kind":  {"welcome.html", "hi", "welcome.html: unknown template name"},
		"unknown part":  {"reset.md", "hi", "reset.md: unknown template name"},
		"parse":         {"reset.html", "{{.Email", "reset.html: template: reset.html:1: unclosed action"},
		"missing field": {"verify.txt", "{{.Minutes}}", "verify.txt: with sample data:"},
		"bad func":      {"reset.subject.txt", "{{upper .Email}}", `reset.subject.txt: template: reset.subject.txt:1: function "upper" not defined`},
	} {
		t.Run(name, func(t *testing.T) {
			dir := writeTemplates(t, map[string]string{c.file: c.body})
			_, err := LoadTemplates(dir, views.Brand{})
			if err == nil || !strings.HasPrefix(err.Error(), filepath.Join(dir, c.want)) {
				t.Fatalf("got %v, want %q…", err, c.want)
			}
		})
	}
}
