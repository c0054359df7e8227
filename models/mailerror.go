package models

import "errors"

// PermanentMailError marks a send error the mail server gave as final: a
// 5xx reply to RCPT TO or DATA (no such mailbox, message refused). Sending
// it again would fail the same way, so Outbox.MarkFailed dead-letters the
// message at once instead of retrying it for half an hour; an operator can
// still retry it. 4xx replies and network errors are temporary and are
// retried with backoff.
type PermanentMailError struct{ Err error }

func (e *PermanentMailError) Error() string { return e.Err.Error() }
func (e *PermanentMailError) Unwrap() error { return e.Err }

// IsPermanentMailError reports whether err is, or wraps, a PermanentMailError.
func IsPermanentMailError(err error) bool {
	var p *PermanentMailError
	return errors.As(err, &p)
}
