package email

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestRender(t *testing.T) {
	ctx := context.Background()
	r, err := RenderReset(ctx, ResetData{Email: `o'hara&co@example.com`, Link: "https://x.example/reset-password?access_token=T0K", Minutes: 15})
	if err != nil {
		t.Fatal(err)
	}
	if r.Subject != ResetSubject || !strings.Contains(r.Text, "https://x.example/reset-password?access_token=T0K") ||
		!strings.Contains(r.Text, "15 minutes") || !strings.Contains(r.HTML, `href="https://x.example/reset-password?access_token=T0K"`) ||
		!strings.Contains(r.HTML, "o&#39;hara&amp;co@example.com") || strings.Contains(r.HTML, "o'hara&co") {
		t.Fatalf("reset:\n%s\n%s", r.Text, r.HTML)
	}

	v, err := RenderVerify(ctx, VerifyData{Email: "a@example.com", Link: "https://x.example/api/users/confirm?uid=1&redirect=%2Fverified&token=abc", Hours: 24})
	if err != nil {
		t.Fatal(err)
	}
	if v.Subject != "Thanks for Registering" || !strings.Contains(v.Text, "uid=1&redirect=%2Fverified&token=abc") ||
		!strings.Contains(v.HTML, `href="https://x.example/api/users/confirm?uid=1&amp;redirect=%2Fverified&amp;token=abc"`) || !strings.Contains(v.Text, "24 hours") {
		t.Fatalf("verify:\n%s\n%s", v.Text, v.HTML)
	}

	when := time.Date(2026, 11, 26, 9, 30, 0, 0, time.UTC)
	for reason, want := range map[string]string{"reset": "reset with an emailed link", "change": "except the one used to change it"} {
		c, err := RenderPasswordChanged(ctx, PasswordChangedData{Email: "a@example.com", When: when, Reason: reason, IP: "192.0.2.1",
			RequestResetLink: "https://x.example/request-password-reset"})
		if err != nil {
			t.Fatal(err)
		}
		for _, part := range []string{c.Text, c.HTML} {
			if !strings.Contains(part, want) || !strings.Contains(part, "Thursday 26 November 2026 at 09:30 UTC") ||
				!strings.Contains(part, "192.0.2.1") || !strings.Contains(part, "https://x.example/request-password-reset") ||
				strings.Contains(part, "access_token") {
				t.Fatalf("changed (%s):\n%s", reason, part)
			}
		}
	}

	for _, linked := range []bool{true, false} {
		m, err := RenderMethodChanged(ctx, MethodChangedData{Email: "a@example.com", Provider: "Google", Linked: linked, When: when,
			IP: "192.0.2.1", AccountLink: "https://x.example/"})
		if err != nil {
			t.Fatal(err)
		}
		verb := map[bool]string{true: "was added as a way to sign in", false: "was removed from the ways to sign in"}[linked]
		for _, part := range []string{m.Text, m.HTML} {
			if !strings.Contains(part, "Google "+verb) || !strings.Contains(part, "192.0.2.1") || !strings.Contains(part, "https://x.example/") {
				t.Fatalf("method changed (%t):\n%s", linked, part)
			}
		}
	}
}

// TestRenderAccountMail: the account page's mail, each with both parts.
// The notice to the old address has the cancel link and no other link;
// the goodbye notice has none.
func TestRenderAccountMail(t *testing.T) {
	ctx := context.Background()
	when := time.Date(2026, 11, 26, 9, 30, 0, 0, time.UTC)
	c, err := RenderEmailChangeConfirm(ctx, EmailChangeConfirmData{NewEmail: "new@example.com",
		Link: "https://x.example/account/email/confirm?token=abc", Hours: 24})
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject != EmailChangeConfirmSubject || !strings.Contains(c.Text, "https://x.example/account/email/confirm?token=abc") ||
		!strings.Contains(c.HTML, `href="https://x.example/account/email/confirm?token=abc"`) || !strings.Contains(c.Text, "24 hours") ||
		!strings.Contains(c.HTML, "new@example.com") {
		t.Fatalf("confirm:\n%s\n%s", c.Text, c.HTML)
	}
	n, err := RenderEmailChangeRequested(ctx, EmailChangeRequestedData{OldEmail: "old@example.com", NewEmail: "new@example.com",
		When: when, IP: "192.0.2.1", Hours: 24, CancelLink: "https://x.example/account/email/cancel?token=def"})
	if err != nil {
		t.Fatal(err)
	}
	for _, part := range []string{n.Text, n.HTML} {
		if !strings.Contains(part, "old@example.com") || !strings.Contains(part, "new@example.com") || !strings.Contains(part, "192.0.2.1") ||
			!strings.Contains(part, "Thursday 26 November 2026 at 09:30 UTC") || !strings.Contains(part, "https://x.example/account/email/cancel?token=def") ||
			strings.Contains(part, "confirm") || strings.Count(part, "https://") != 1+strings.Count(part, `href="https://`) {
			t.Fatalf("change notice:\n%s", part)
		}
	}
	if n.Subject != EmailChangeRequestedSubject {
		t.Fatalf("subject %q", n.Subject)
	}
	g, err := RenderAccountDeleted(ctx, AccountDeletedData{Email: "gone@example.com", When: when, IP: "192.0.2.1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, part := range []string{g.Text, g.HTML} {
		if !strings.Contains(part, "gone@example.com") || !strings.Contains(part, "was deleted") || strings.Contains(part, "http") {
			t.Fatalf("goodbye:\n%s", part)
		}
	}
}
