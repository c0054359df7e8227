package models

import (
	"context"
	"fmt"
	"time"
)

// ResetPasswordRequest is emitted inside the transaction that created a reset
// token, as LoopBack's User emits 'resetPasswordRequest' {email, accessToken,
// user}. A subscriber puts the email in the outbox through tx, so the token
// and its mail are committed together or not at all.
type ResetPasswordRequest struct {
	Email       string
	AccessToken *AccessToken // ID is the token to put in the link
	User        *User
	Meta        ClientMeta
}

// PasswordChanged is emitted when a password was changed or reset, so the
// user can be told (never with a secret in the notice).
type PasswordChanged struct {
	User   *User
	Reason string // "change" or "reset"
	Meta   ClientMeta
}

// EmailChanged is emitted when a user's address changed, so the old
// address can be told (an attacker holding a session would otherwise move
// the account, and its reset mail, silently).
type EmailChanged struct {
	User     *User // with the new address
	OldEmail string
	Meta     ClientMeta
}

// VerifyEmailRequest is emitted when a confirmation link must be mailed.
type VerifyEmailRequest struct {
	User     *User
	Token    string // 128 hex characters, LoopBack's shape
	Redirect string // where confirm sends the browser, already checked
	Meta     ClientMeta
}

// EmailChangeRequested is emitted when a signed-in user asked, on the
// account page, to move the account to NewEmail (SECURITY S9, R10). Two
// mails follow: the confirmation link to the new address, and to the old
// one a notice with a link that cancels the change. The tokens are in
// neither the log nor the store (only their digests are kept).
type EmailChangeRequested struct {
	User         *User // as it is: the old address
	NewEmail     string
	ConfirmToken string // for the link to the new address
	CancelToken  string // for the link in the notice to the old address; empty: send no notice (placeholder address)
	Expires      time.Time
	Meta         ClientMeta
}

// AccountDeleted is emitted when an account was deleted, so its address
// gets a goodbye notice (not for a placeholder address).
type AccountDeleted struct {
	User *User // as it was
	Meta ClientMeta
}

// OnEmailChangeRequested subscribes to address changes waiting for confirmation.
func (s *Users) OnEmailChangeRequested(fn func(context.Context, *Tx, EmailChangeRequested) error) {
	s.onEmailChange = append(s.onEmailChange, fn)
}

// OnAccountDeleted subscribes to deleted accounts.
func (s *Users) OnAccountDeleted(fn func(context.Context, *Tx, AccountDeleted) error) {
	s.onDeleted = append(s.onDeleted, fn)
}

// SignInMethodChanged is emitted when a provider was linked to an
// account, or unlinked, so the user can be told: a way into the account
// appeared or went.
type SignInMethodChanged struct {
	User     *User
	Provider string // the provider's id
	Linked   bool   // false: unlinked
	Meta     ClientMeta
}

// OnSignInMethodChanged subscribes to links and unlinks.
func (s *Users) OnSignInMethodChanged(fn func(context.Context, *Tx, SignInMethodChanged) error) {
	s.onMethods = append(s.onMethods, fn)
}

// OnResetPasswordRequest subscribes to reset requests (boot does, before serving).
func (s *Users) OnResetPasswordRequest(fn func(context.Context, *Tx, ResetPasswordRequest) error) {
	s.onReset = append(s.onReset, fn)
}

// OnPasswordChanged subscribes to password changes and resets.
func (s *Users) OnPasswordChanged(fn func(context.Context, *Tx, PasswordChanged) error) {
	s.onChanged = append(s.onChanged, fn)
}

// OnEmailChanged subscribes to address changes.
func (s *Users) OnEmailChanged(fn func(context.Context, *Tx, EmailChanged) error) {
	s.onEmailChanged = append(s.onEmailChanged, fn)
}

// OnVerifyEmailRequest subscribes to confirmation requests.
func (s *Users) OnVerifyEmailRequest(fn func(context.Context, *Tx, VerifyEmailRequest) error) {
	s.onVerify = append(s.onVerify, fn)
}

// The mail events (ResetPasswordRequest, PasswordChanged, EmailChanged
// for the old address, VerifyEmailRequest, SignInMethodChanged,
// AccountDeleted) are not emitted for a user
// whose address is a placeholder (User.EmailPlaceholder): it reaches
// nobody. The client's answer is the same either way.

// emit hands an event to its subscribers inside the transaction that made
// it; the first failure rolls the whole change back.
func emit[E any](ctx context.Context, tx *Tx, subs []func(context.Context, *Tx, E) error, ev E, name string) error {
	for _, fn := range subs {
		if err := fn(ctx, tx, ev); err != nil {
			return fmt.Errorf("models: %s subscriber: %w", name, err)
		}
	}
	return nil
}
