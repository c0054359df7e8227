package models

import (
	"context"
	"time"
)

// Email is a message in the outbox. It is written in the same transaction as
// the change that caused it, so it is never lost and never sent for a change
// that rolled back.
type Email struct {
	ID            int64
	Kind          string // reset-password, password-changed, verify-email
	To            string
	Subject       string
	HTML          string
	Text          string
	Created       time.Time
	Attempts      int
	NextAttemptAt time.Time
	LastError     string
	SentAt        time.Time
	DeadAt        time.Time
}

// EnqueueEmail adds a message to the outbox inside tx, due at once.
func (t *Tx) EnqueueEmail(ctx context.Context, e Email) error {
	_, err := t.Exec(ctx, `INSERT INTO outbox(kind, to_addr, subject, html, text, created, next_attempt_at)
		VALUES (?,?,?,?,?,?,?)`, e.Kind, e.To, e.Subject, e.HTML, e.Text, ms(t.now), ms(t.now))
	return err
}
