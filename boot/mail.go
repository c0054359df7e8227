package boot

import (
	"cmp"
	"context"
	"net/url"
	"strconv"
	"strings"

	"github.com/latchkey/latchkey/models"
	"github.com/latchkey/latchkey/views/email"
)

// DefaultVerifyRedirect is where a confirm link sends the browser when the
// verify request named no redirect: the page that says the address is
// verified.
const DefaultVerifyRedirect = "/verified"

// Mail kinds in the outbox.
const (
	KindResetPassword   = "reset-password"
	KindPasswordChanged = "password-changed"
	KindVerifyEmail     = "verify-email"
	KindEmailChanged    = "email-changed"
	KindMethodChanged   = "sign-in-method"
	// The account page's: the link to a new address, the notice to the
	// old one, the goodbye.
	KindEmailChangeConfirm = "email-change-confirm"
	KindEmailChangeNotice  = "email-change-requested"
	KindAccountDeleted     = "account-deleted"
)

// registerMail subscribes to the account events that send mail, rendered
// by r (the brand and the operator's templates), as the
// seed's boot script does with user.on('resetPasswordRequest', ...). Each
// subscriber renders views/email and puts the message in the outbox inside
// the event's transaction, so the token and its mail commit together or not
// at all. notify (may be nil) wakes this process's outbox worker once the
// transaction has committed (other replicas find the mail at their next poll).
//
// Links are built only from baseURL (LATCHKEY_BASE_URL), never from a
// request's Host header. With linksByWebhook (LATCHKEY_RESET_DELIVERY=webhook)
// the reset and verification links are the host app's to mail
// (registerWebhooks) and no mail of ours carries them.
func registerMail(users *models.Users, r email.Renderer, baseURL string, labels map[string]string, linksByWebhook bool, notify func()) {
	baseURL = strings.TrimRight(baseURL, "/")
	// enqueue puts a rendered mail in the outbox and wakes the worker.
	enqueue := func(ctx context.Context, tx *models.Tx, kind, to string, m email.Message, renderErr error) error {
		if renderErr != nil {
			return renderErr
		}
		if err := tx.EnqueueEmail(ctx, models.Email{Kind: kind, To: to, Subject: m.Subject, HTML: m.HTML, Text: m.Text}); err != nil {
			return err
		}
		if notify != nil {
			tx.AfterCommit(notify)
		}
		return nil
	}
	if !linksByWebhook {
		registerLinkMail(users, r, baseURL, enqueue)
	}
	users.OnPasswordChanged(func(ctx context.Context, tx *models.Tx, ev models.PasswordChanged) error {
		m, err := r.PasswordChanged(ctx, email.PasswordChangedData{
			Email:            ev.User.Email,
			When:             tx.Now(),
			Reason:           ev.Reason,
			IP:               ev.Meta.IP,
			RequestResetLink: baseURL + "/request-password-reset",
		})
		return enqueue(ctx, tx, KindPasswordChanged, ev.User.Email, m, err)
	})
	users.OnEmailChanged(func(ctx context.Context, tx *models.Tx, ev models.EmailChanged) error {
		m, err := r.EmailChanged(ctx, email.EmailChangedData{
			OldEmail: ev.OldEmail, NewEmail: ev.User.Email, When: tx.Now(), IP: ev.Meta.IP,
		})
		return enqueue(ctx, tx, KindEmailChanged, ev.OldEmail, m, err)
	})
	users.OnSignInMethodChanged(func(ctx context.Context, tx *models.Tx, ev models.SignInMethodChanged) error {
		m, err := r.MethodChanged(ctx, email.MethodChangedData{
			Email: ev.User.Email, Provider: cmp.Or(labels[ev.Provider], ev.Provider), Linked: ev.Linked,
			When: tx.Now(), IP: ev.Meta.IP, AccountLink: baseURL + "/",
		})
		return enqueue(ctx, tx, KindMethodChanged, ev.User.Email, m, err)
	})
	users.OnEmailChangeRequested(func(ctx context.Context, tx *models.Tx, ev models.EmailChangeRequested) error {
		hours := ceilDiv(int64(ev.Expires.Sub(tx.Now()).Seconds()), 3600)
		m, err := r.EmailChangeConfirm(ctx, email.EmailChangeConfirmData{
			NewEmail: ev.NewEmail, Link: EmailChangeLink(baseURL, "confirm", ev.ConfirmToken), Hours: hours,
		})
		if err := enqueue(ctx, tx, KindEmailChangeConfirm, ev.NewEmail, m, err); err != nil {
			return err
		}
		if ev.CancelToken == "" {
			return nil // the old address is a placeholder
		}
		n, err := r.EmailChangeRequested(ctx, email.EmailChangeRequestedData{
			OldEmail: ev.User.Email, NewEmail: ev.NewEmail, When: tx.Now(), IP: ev.Meta.IP, Hours: hours,
			CancelLink: EmailChangeLink(baseURL, "cancel", ev.CancelToken),
		})
		return enqueue(ctx, tx, KindEmailChangeNotice, ev.User.Email, n, err)
	})
	users.OnAccountDeleted(func(ctx context.Context, tx *models.Tx, ev models.AccountDeleted) error {
		m, err := r.AccountDeleted(ctx, email.AccountDeletedData{Email: ev.User.Email, When: tx.Now(), IP: ev.Meta.IP})
		return enqueue(ctx, tx, KindAccountDeleted, ev.User.Email, m, err)
	})
}

// registerLinkMail subscribes the mail that carries a link: the reset and
// the confirmation of an address.
func registerLinkMail(users *models.Users, r email.Renderer, baseURL string, enqueue func(context.Context, *models.Tx, string, string, email.Message, error) error) {
	users.OnResetPasswordRequest(func(ctx context.Context, tx *models.Tx, ev models.ResetPasswordRequest) error {
		m, err := r.Reset(ctx, email.ResetData{
			Email:   ev.Email,
			Link:    ResetLink(baseURL, ev.AccessToken.ID),
			Minutes: ceilDiv(ev.AccessToken.TTL, 60),
		})
		return enqueue(ctx, tx, KindResetPassword, ev.Email, m, err)
	})
	users.OnVerifyEmailRequest(func(ctx context.Context, tx *models.Tx, ev models.VerifyEmailRequest) error {
		m, err := r.Verify(ctx, email.VerifyData{
			Email: ev.User.Email,
			Link:  ConfirmLink(baseURL, ev.User.ID, ev.Redirect, ev.Token),
			Hours: ceilDiv(users.VerifyTTL(), 3600),
		})
		return enqueue(ctx, tx, KindVerifyEmail, ev.User.Email, m, err)
	})
}

// ResetLink is the link in the reset email: BASE_URL/reset-password?access_token=TOKEN.
func ResetLink(baseURL, token string) string {
	return strings.TrimRight(baseURL, "/") + "/reset-password?access_token=" + url.QueryEscape(token)
}

// EmailChangeLink is a link of an address change asked for on the account
// page: BASE_URL/account/email/confirm?token=T (to the new address) or
// BASE_URL/account/email/cancel?token=T (to the old one).
func EmailChangeLink(baseURL, action, token string) string {
	return strings.TrimRight(baseURL, "/") + "/account/email/" + action + "?token=" + url.QueryEscape(token)
}

// ConfirmLink is LoopBack's verify link with our base URL:
// BASE_URL/api/users/confirm?uid=ID&redirect=REDIRECT&token=TOKEN.
func ConfirmLink(baseURL string, uid int64, redirect, token string) string {
	if redirect == "" {
		redirect = DefaultVerifyRedirect
	}
	return strings.TrimRight(baseURL, "/") + "/api/users/confirm?uid=" + strconv.FormatInt(uid, 10) +
		"&redirect=" + url.QueryEscape(redirect) + "&token=" + url.QueryEscape(token)
}

func ceilDiv(n, d int64) int64 {
	if n <= 0 {
		return 0
	}
	return (n + d - 1) / d
}
