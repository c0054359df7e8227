// Package email renders the mail Latchkey sends: an HTML body (templ, in
// email.templ) and a plain-text alternative (here) for each message.
//
// Every link is passed in, already built by the caller from the configured
// base URL; nothing here looks at a request.
package email

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/a-h/templ"

	"github.com/latchkey/latchkey/views"
)

// Renderer renders the mail for one app: its Brand (the zero Brand is
// Latchkey's) and the operator's templates (LATCHKEY_MAIL_TEMPLATES; nil:
// none). The zero Renderer renders Latchkey's own mail.
type Renderer struct {
	Brand     views.Brand
	Templates *Templates
}

// name is the app's name in the mail.
func (r Renderer) name() string { return r.Brand.AppName() }

// buttonStyle is the inline style of a mail's button, in the brand's colour.
func buttonStyle(b views.Brand) templ.SafeCSS {
	bg := "#1c1917"
	if b.Color != "" {
		bg = b.Color
	}
	return templ.SafeCSS("display:inline-block;background:" + bg + ";color:#ffffff;text-decoration:none;padding:12px 20px;border-radius:6px;")
}

// Subjects. VerifySubject is LoopBack's (verifyOptions default).
const (
	ResetSubject           = "Reset your password"
	PasswordChangedSubject = "Your password was changed"
	VerifySubject          = "Thanks for Registering"
	EmailChangedSubject    = "Your email address was changed"
	MethodAddedSubject     = "A new way to sign in was added to your account"
	MethodRemovedSubject   = "A way to sign in was removed from your account"
)

// ResetData fills the password-reset email.
type ResetData struct {
	Email   string // the account's address
	Link    string // BASE_URL/reset-password?access_token=TOKEN
	Minutes int64  // how long the link works
}

// PasswordChangedData fills the "your password was changed" notice.
type PasswordChangedData struct {
	Email            string
	When             time.Time
	Reason           string // "reset" or "change"
	IP               string // where the request came from, "" when unknown
	RequestResetLink string // BASE_URL/request-password-reset (no secret)
}

// EmailChangedData fills the notice sent to the old address after an
// address change.
type EmailChangedData struct {
	OldEmail, NewEmail string
	When               time.Time
	IP                 string
}

// MethodChangedData fills the notice sent when a provider was linked to
// the account or unlinked.
type MethodChangedData struct {
	Email    string
	Provider string // its label: "Google"
	Linked   bool   // false: removed
	When     time.Time
	IP       string
	// AccountLink is BASE_URL/ (the account page, where methods are
	// removed); no secret.
	AccountLink string
}

func (d MethodChangedData) subject() string {
	if d.Linked {
		return MethodAddedSubject
	}
	return MethodRemovedSubject
}

func (d MethodChangedData) sentence(app string) string {
	if d.Linked {
		return fmt.Sprintf("%s was added as a way to sign in to the %s account for %s on %s%s.", d.Provider, app, d.Email, when(d.When), fromIP(d.IP))
	}
	return fmt.Sprintf("%s was removed from the ways to sign in to the %s account for %s on %s%s.", d.Provider, app, d.Email, when(d.When), fromIP(d.IP))
}

// RenderMethodChanged renders the notice of a linked or unlinked provider.
func RenderMethodChanged(ctx context.Context, d MethodChangedData) (Message, error) {
	return Renderer{}.MethodChanged(ctx, d)
}

// MethodChanged renders the method-changed mail.
func (r Renderer) MethodChanged(ctx context.Context, d MethodChangedData) (Message, error) {
	h, err := render(ctx, MethodChangedHTML(r.Brand, d))
	if err != nil {
		return Message{}, err
	}
	var t strings.Builder
	t.WriteString(d.sentence(r.name()) + "\n\n")
	t.WriteString("If this was you, there is nothing to do.\n\n")
	fmt.Fprintf(&t, "If this wasn't you, someone used your account: open it, remove what you don't recognise and reset your password:\n\n%s\n", d.AccountLink)
	t.WriteString(footer(r.name()))
	return r.override(d, Message{Subject: d.subject(), HTML: h, Text: t.String()})
}

// VerifyData fills the confirmation email.
type VerifyData struct {
	Email string
	Link  string // BASE_URL/api/users/confirm?uid=ID&redirect=R&token=T
	Hours int64  // how long the link works
}

// Message is a rendered email.
type Message struct {
	Subject, HTML, Text string
}

func render(ctx context.Context, c templ.Component) (string, error) {
	var b bytes.Buffer
	if err := c.Render(ctx, &b); err != nil {
		return "", fmt.Errorf("email: render: %w", err)
	}
	return b.String(), nil
}

// RenderReset renders the password-reset email.
func RenderReset(ctx context.Context, d ResetData) (Message, error) {
	return Renderer{}.Reset(ctx, d)
}

// Reset renders the reset mail.
func (r Renderer) Reset(ctx context.Context, d ResetData) (Message, error) {
	h, err := render(ctx, ResetHTML(r.Brand, d))
	if err != nil {
		return Message{}, err
	}
	var t strings.Builder
	fmt.Fprintf(&t, "Someone (hopefully you) asked to reset the password of the %s account for %s.\n\n", r.name(), d.Email)
	fmt.Fprintf(&t, "To choose a new password, open this link within %s:\n\n%s\n\n", minutes(d.Minutes), d.Link)
	t.WriteString("The link works once. If you did not ask for a reset, ignore this email: your password stays as it is.\n")
	t.WriteString(footer(r.name()))
	return r.override(d, Message{Subject: ResetSubject, HTML: h, Text: t.String()})
}

// RenderPasswordChanged renders the notice sent after a change or reset.
func RenderPasswordChanged(ctx context.Context, d PasswordChangedData) (Message, error) {
	return Renderer{}.PasswordChanged(ctx, d)
}

// PasswordChanged renders the password-changed mail.
func (r Renderer) PasswordChanged(ctx context.Context, d PasswordChangedData) (Message, error) {
	h, err := render(ctx, PasswordChangedHTML(r.Brand, d))
	if err != nil {
		return Message{}, err
	}
	var t strings.Builder
	fmt.Fprintf(&t, "The password of the %s account for %s was %s on %s%s.\n\n", r.name(), d.Email, reasonText(d.Reason), when(d.When), fromIP(d.IP))
	fmt.Fprintf(&t, "All sessions of the account were signed out%s.\n\n", keptText(d.Reason))
	t.WriteString("If this was you, there is nothing to do.\n\n")
	fmt.Fprintf(&t, "If this wasn't you, reset your password now:\n\n%s\n", d.RequestResetLink)
	t.WriteString(footer(r.name()))
	return r.override(d, Message{Subject: PasswordChangedSubject, HTML: h, Text: t.String()})
}

// RenderVerify renders the confirmation email.
func RenderVerify(ctx context.Context, d VerifyData) (Message, error) {
	return Renderer{}.Verify(ctx, d)
}

// Verify renders the verify mail.
func (r Renderer) Verify(ctx context.Context, d VerifyData) (Message, error) {
	h, err := render(ctx, VerifyHTML(r.Brand, d))
	if err != nil {
		return Message{}, err
	}
	var t strings.Builder
	fmt.Fprintf(&t, "Please confirm that %s is your email address by opening this link within %s:\n\n%s\n\n", d.Email, hours(d.Hours), d.Link)
	fmt.Fprintf(&t, "If you did not create a %s account, ignore this email.\n", r.name())
	t.WriteString(footer(r.name()))
	return r.override(d, Message{Subject: VerifySubject, HTML: h, Text: t.String()})
}

// RenderEmailChanged renders the notice to the old address.
func RenderEmailChanged(ctx context.Context, d EmailChangedData) (Message, error) {
	return Renderer{}.EmailChanged(ctx, d)
}

// EmailChanged renders the email-changed mail.
func (r Renderer) EmailChanged(ctx context.Context, d EmailChangedData) (Message, error) {
	h, err := render(ctx, EmailChangedHTML(r.Brand, d))
	if err != nil {
		return Message{}, err
	}
	var t strings.Builder
	fmt.Fprintf(&t, "The email address of the %s account for %s was changed to %s on %s%s.\n\n", r.name(), d.OldEmail, d.NewEmail, when(d.When), fromIP(d.IP))
	t.WriteString("Mail about the account, including password-reset links, now goes to the new address, and its other sessions were signed out.\n\n")
	t.WriteString("If this was you, there is nothing to do.\n\n")
	t.WriteString("If this wasn't you, someone used your account: contact the site's administrator at once.\n")
	t.WriteString(footer(r.name()))
	return r.override(d, Message{Subject: EmailChangedSubject, HTML: h, Text: t.String()})
}

func footer(app string) string {
	return "\n-- \nThis message was sent automatically by " + app + ". Please do not reply.\n"
}

func minutes(n int64) string {
	if n == 1 {
		return "1 minute"
	}
	return fmt.Sprintf("%d minutes", n)
}

func hours(n int64) string {
	if n == 1 {
		return "1 hour"
	}
	return fmt.Sprintf("%d hours", n)
}

func reasonText(reason string) string {
	if reason == "reset" {
		return "reset with an emailed link"
	}
	return "changed"
}

func keptText(reason string) string {
	if reason == "reset" {
		return ""
	}
	return " except the one used to change it"
}

func when(t time.Time) string { return t.UTC().Format("Monday 2 January 2006 at 15:04 UTC") }

func fromIP(ip string) string {
	if ip == "" {
		return ""
	}
	return " from IP address " + ip
}

// Subjects of the account page's mail.
const (
	EmailChangeConfirmSubject   = "Confirm your new email address"
	EmailChangeRequestedSubject = "A change of your email address was requested"
	AccountDeletedSubject       = "Your account was deleted"
)

// EmailChangeConfirmData fills the confirmation link sent to a new address.
type EmailChangeConfirmData struct {
	NewEmail string
	Link     string // BASE_URL/account/email/confirm?token=T
	Hours    int64  // how long the link works
}

// EmailChangeRequestedData fills the notice to the old address.
type EmailChangeRequestedData struct {
	OldEmail, NewEmail string
	When               time.Time
	IP                 string
	Hours              int64
	CancelLink         string // BASE_URL/account/email/cancel?token=T: it can only cancel the change
}

func (d EmailChangeRequestedData) sentence(app string) string {
	return fmt.Sprintf("Someone asked on %s%s to change the email address of the %s account for %s to %s.",
		when(d.When), fromIP(d.IP), app, d.OldEmail, d.NewEmail)
}

// AccountDeletedData fills the goodbye notice.
type AccountDeletedData struct {
	Email string
	When  time.Time
	IP    string
}

func (d AccountDeletedData) sentence(app string) string {
	return fmt.Sprintf("The %s account for %s was deleted on %s%s.", app, d.Email, when(d.When), fromIP(d.IP))
}

// RenderEmailChangeConfirm renders the confirmation link for a new address.
func RenderEmailChangeConfirm(ctx context.Context, d EmailChangeConfirmData) (Message, error) {
	return Renderer{}.EmailChangeConfirm(ctx, d)
}

// EmailChangeConfirm renders the email-change-confirm mail.
func (r Renderer) EmailChangeConfirm(ctx context.Context, d EmailChangeConfirmData) (Message, error) {
	h, err := render(ctx, EmailChangeConfirmHTML(r.Brand, d))
	if err != nil {
		return Message{}, err
	}
	var t strings.Builder
	fmt.Fprintf(&t, "Someone (hopefully you) asked to use %s as the email address of their %s account.\n\n", d.NewEmail, r.name())
	fmt.Fprintf(&t, "To confirm it, open this link within %s:\n\n%s\n\n", hours(d.Hours), d.Link)
	t.WriteString("The link works once. Until it is used, the account keeps its old address. If you did not ask for this, ignore this email.\n")
	t.WriteString(footer(r.name()))
	return r.override(d, Message{Subject: EmailChangeConfirmSubject, HTML: h, Text: t.String()})
}

// RenderEmailChangeRequested renders the notice to the old address.
func RenderEmailChangeRequested(ctx context.Context, d EmailChangeRequestedData) (Message, error) {
	return Renderer{}.EmailChangeRequested(ctx, d)
}

// EmailChangeRequested renders the email-change-requested mail.
func (r Renderer) EmailChangeRequested(ctx context.Context, d EmailChangeRequestedData) (Message, error) {
	h, err := render(ctx, EmailChangeRequestedHTML(r.Brand, d))
	if err != nil {
		return Message{}, err
	}
	var t strings.Builder
	t.WriteString(d.sentence(r.name()) + "\n\n")
	fmt.Fprintf(&t, "Nothing changes until the link sent to the new address is used (within %s). Until then, the account keeps this address.\n\n", hours(d.Hours))
	t.WriteString("If this was you, there is nothing to do.\n\n")
	fmt.Fprintf(&t, "If this wasn't you, cancel the change now, then change your password: someone knows it.\n\n%s\n", d.CancelLink)
	t.WriteString(footer(r.name()))
	return r.override(d, Message{Subject: EmailChangeRequestedSubject, HTML: h, Text: t.String()})
}

// RenderAccountDeleted renders the goodbye notice.
func RenderAccountDeleted(ctx context.Context, d AccountDeletedData) (Message, error) {
	return Renderer{}.AccountDeleted(ctx, d)
}

// AccountDeleted renders the account-deleted mail.
func (r Renderer) AccountDeleted(ctx context.Context, d AccountDeletedData) (Message, error) {
	h, err := render(ctx, AccountDeletedHTML(r.Brand, d))
	if err != nil {
		return Message{}, err
	}
	var t strings.Builder
	t.WriteString(d.sentence(r.name()) + "\n\n")
	t.WriteString("Its sessions were signed out and its data deleted. If this was you, there is nothing to do: goodbye, and thank you.\n\n")
	t.WriteString("If this wasn't you, someone used your account: contact the site's administrator at once.\n")
	t.WriteString(footer(r.name()))
	return r.override(d, Message{Subject: AccountDeletedSubject, HTML: h, Text: t.String()})
}
