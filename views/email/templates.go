package email

import (
	"bytes"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	texttemplate "text/template"
	"time"

	"github.com/latchkey/latchkey/views"
)

// Kinds are the mail an operator may override (LATCHKEY_MAIL_TEMPLATES):
// for each, KIND.subject.txt (text/template, one line), KIND.html
// (html/template) and KIND.txt (text/template), each optional.
var kinds = []string{"reset", "verify", "password-changed", "email-changed",
	"email-change-confirm", "email-change-requested", "account-deleted", "method-changed"}

// Kinds returns the mail kinds a template folder may override.
func Kinds() []string { return slices.Clone(kinds) }

// kindOf names the mail a data value fills.
func kindOf(d any) string {
	switch d.(type) {
	case ResetData:
		return "reset"
	case VerifyData:
		return "verify"
	case PasswordChangedData:
		return "password-changed"
	case EmailChangedData:
		return "email-changed"
	case EmailChangeConfirmData:
		return "email-change-confirm"
	case EmailChangeRequestedData:
		return "email-change-requested"
	case AccountDeletedData:
		return "account-deleted"
	case MethodChangedData:
		return "method-changed"
	}
	return ""
}

// part is one overridable part of a mail.
type part int

const (
	partSubject part = iota
	partHTML
	partText
)

var suffixes = map[string]part{".subject.txt": partSubject, ".html": partHTML, ".txt": partText}

// executor is a parsed html/template or text/template.
type executor interface {
	Execute(w io.Writer, data any) error
}

type htmlT struct{ *htmltemplate.Template }

func (t htmlT) Execute(w io.Writer, d any) error {
	return t.Template.Execute(w, d)
}

type textT struct{ *texttemplate.Template }

func (t textT) Execute(w io.Writer, d any) error {
	return t.Template.Execute(w, d)
}

// Templates are the operator's overrides, read once at start-up by
// LoadTemplates and never changed afterwards.
type Templates struct {
	byKind map[string][3]executor // [partSubject, partHTML, partText]; nil: the built-in one
}

// funcs are the helpers the templates may call.
var funcs = map[string]any{
	"when":    when,    // a time.Time as "Monday 2 January 2006 at 15:04 UTC"
	"minutes": minutes, // 15 → "15 minutes"
	"hours":   hours,   // 24 → "24 hours"
}

// LoadTemplates reads the folder dir: every file must be KIND.subject.txt,
// KIND.html or KIND.txt of a known kind, parse, and render with sample
// data (a field that does not exist is an error); b is the brand the
// samples are rendered with. Errors name the file (dir/NAME).
func LoadTemplates(dir string, b views.Brand) (*Templates, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	t := &Templates{byKind: map[string][3]executor{}}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || strings.HasPrefix(name, ".") {
			continue
		}
		file := filepath.Join(dir, name) // what the errors name
		kind, p, ok := splitName(name)
		if !ok {
			return nil, fmt.Errorf("%s: unknown template name: want KIND.subject.txt, KIND.html or KIND.txt with KIND one of %s", file, strings.Join(kinds, ", "))
		}
		body, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		var x executor
		if p == partHTML {
			h, err := htmltemplate.New(name).Funcs(funcs).Option("missingkey=error").Parse(string(body))
			if err != nil {
				return nil, fmt.Errorf("%s: %w", file, err)
			}
			x = htmlT{h}
		} else {
			tt, err := texttemplate.New(name).Funcs(funcs).Option("missingkey=error").Parse(string(body))
			if err != nil {
				return nil, fmt.Errorf("%s: %w", file, err)
			}
			x = textT{tt}
		}
		if _, err := run(x, templateData(Samples()[kind], b, "Sample subject")); err != nil {
			return nil, fmt.Errorf("%s: with sample data: %w", file, err)
		}
		parts := t.byKind[kind]
		parts[p] = x
		t.byKind[kind] = parts
	}
	return t, nil
}

// splitName parses KIND.subject.txt, KIND.html, KIND.txt.
func splitName(name string) (string, part, bool) {
	sfx := make([]string, 0, len(suffixes))
	for s := range suffixes {
		sfx = append(sfx, s)
	}
	sort.Slice(sfx, func(i, j int) bool { return len(sfx[i]) > len(sfx[j]) }) // .subject.txt before .txt
	for _, s := range sfx {
		if k, ok := strings.CutSuffix(name, s); ok && slices.Contains(kinds, k) {
			return k, suffixes[s], true
		}
	}
	return "", 0, false
}

func run(x executor, data any) (string, error) {
	var b bytes.Buffer
	if err := x.Execute(&b, data); err != nil {
		return "", err
	}
	return b.String(), nil
}

// templateData is what a template sees: the fields of the mail's data
// (.Email, .Link, …), .App (the brand: .App.Name, .App.Logo, .App.Color)
// and .Subject (the mail's subject, for the bodies).
func templateData(d any, b views.Brand, subject string) map[string]any {
	m := map[string]any{}
	v := reflect.ValueOf(d)
	for i := range v.NumField() {
		if f := v.Type().Field(i); f.IsExported() {
			m[f.Name] = v.Field(i).Interface()
		}
	}
	b.Name = b.AppName()
	m["App"] = b
	m["Subject"] = subject
	return m
}

// override replaces the parts of m that the operator's templates give.
func (r Renderer) override(d any, m Message) (Message, error) {
	if r.Templates == nil {
		return m, nil
	}
	parts, ok := r.Templates.byKind[kindOf(d)]
	if !ok {
		return m, nil
	}
	if x := parts[partSubject]; x != nil {
		s, err := run(x, templateData(d, r.Brand, m.Subject))
		if err != nil {
			return Message{}, fmt.Errorf("email: subject template: %w", err)
		}
		// One line: a header cannot hold a line break.
		s = strings.Join(strings.Fields(s), " ")
		if s == "" {
			return Message{}, errors.New("email: the subject template rendered nothing")
		}
		m.Subject = s
	}
	data := templateData(d, r.Brand, m.Subject)
	for _, p := range []part{partHTML, partText} {
		x := parts[p]
		if x == nil {
			continue
		}
		s, err := run(x, data)
		if err != nil {
			return Message{}, fmt.Errorf("email: template: %w", err)
		}
		if p == partHTML {
			m.HTML = s
		} else {
			m.Text = s
		}
	}
	return m, nil
}

// Samples are example data of each mail kind, what LoadTemplates renders
// the templates with.
func Samples() map[string]any {
	at := time.Date(2026, 1, 2, 15, 4, 0, 0, time.UTC)
	return map[string]any{
		"reset":                  ResetData{Email: "ada@example.com", Link: "https://example.com/reset-password?access_token=SAMPLE", Minutes: 15},
		"verify":                 VerifyData{Email: "ada@example.com", Link: "https://example.com/api/users/confirm?uid=1&token=SAMPLE", Hours: 24},
		"password-changed":       PasswordChangedData{Email: "ada@example.com", When: at, Reason: "change", IP: "192.0.2.1", RequestResetLink: "https://example.com/request-password-reset"},
		"email-changed":          EmailChangedData{OldEmail: "ada@example.com", NewEmail: "ada@example.org", When: at, IP: "192.0.2.1"},
		"email-change-confirm":   EmailChangeConfirmData{NewEmail: "ada@example.org", Link: "https://example.com/account/email/confirm?token=SAMPLE", Hours: 24},
		"email-change-requested": EmailChangeRequestedData{OldEmail: "ada@example.com", NewEmail: "ada@example.org", When: at, IP: "192.0.2.1", Hours: 24, CancelLink: "https://example.com/account/email/cancel?token=SAMPLE"},
		"account-deleted":        AccountDeletedData{Email: "ada@example.com", When: at, IP: "192.0.2.1"},
		"method-changed":         MethodChangedData{Email: "ada@example.com", Provider: "Google", Linked: true, When: at, IP: "192.0.2.1", AccountLink: "https://example.com/"},
	}
}
