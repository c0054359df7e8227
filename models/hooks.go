package models

import "context"

// The account events a host app may subscribe to (issue 14's webhooks),
// named as the webhook's "type" field names them.
const (
	EventUserCreated         = "user.created"
	EventUserEmailVerified   = "user.email_verified"
	EventUserEmailChanged    = "user.email_changed"
	EventUserPasswordChanged = "user.password_changed"
	EventUserDeleted         = "user.deleted"
	EventUserDisabled        = "user.disabled"
	EventUserEnabled         = "user.enabled"
	EventSessionCreated      = "session.created"
	EventSessionEnded        = "session.ended"
	EventIdentityLinked      = "identity.linked"
	EventIdentityUnlinked    = "identity.unlinked"
)

// AccountEvents lists every AccountEvent type, in the order of the README.
var AccountEvents = []string{EventUserCreated, EventUserEmailVerified, EventUserEmailChanged, EventUserPasswordChanged,
	EventUserDeleted, EventUserDisabled, EventUserEnabled, EventSessionCreated, EventSessionEnded,
	EventIdentityLinked, EventIdentityUnlinked}

// AccountEvent is emitted inside the transaction that made a change a host
// app may want to know of: the subscriber (boot's webhooks) writes its
// delivery to the outbox through tx, so the change and its notice commit
// together or not at all. Unlike the mail events it is emitted for a
// placeholder address too: it goes to the app, not to the address. It
// carries no secret.
type AccountEvent struct {
	Type string
	User *User // as it is after the change (as it was, for user.deleted)
	// Method is how a session was created: "password", "provider" or
	// "passkey"; Provider names the provider of a session.created by
	// provider, of identity.linked and of identity.unlinked.
	Method, Provider string
	OldEmail         string // user.email_changed
	Reason           string // user.password_changed: "change" or "reset"; session.ended: "logout" or "revoked"
	Sessions         int64  // session.ended: how many ended (a revoke of the others may end several)
	Meta             ClientMeta
}

// OnAccountEvent subscribes to every AccountEvent (boot does, before serving).
func (s *Users) OnAccountEvent(fn func(context.Context, *Tx, AccountEvent) error) {
	s.onAccount = append(s.onAccount, fn)
}

// tell hands ev to the AccountEvent subscribers inside tx.
func (s *Users) tell(ctx context.Context, tx *Tx, ev AccountEvent) error {
	return emit(ctx, tx, s.onAccount, ev, ev.Type)
}

// tellUser is tell for a change made by user id alone (disable, enable):
// the user is read inside tx, as the change left it.
func (s *Users) tellUser(ctx context.Context, tx *Tx, id int64, ev AccountEvent) error {
	if len(s.onAccount) == 0 {
		return nil
	}
	u, err := scanUser(tx.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE id = ?`, id))
	if err != nil {
		return err
	}
	ev.User = u
	return s.tell(ctx, tx, ev)
}

// identityEvent is identity.linked or identity.unlinked.
func identityEvent(u *User, provider string, linked bool, meta ClientMeta) AccountEvent {
	ev := AccountEvent{Type: EventIdentityUnlinked, User: u, Provider: provider, Meta: meta}
	if linked {
		ev.Type = EventIdentityLinked
	}
	return ev
}
