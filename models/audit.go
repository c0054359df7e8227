package models

import (
	"context"
	"strconv"
	"time"
)

// ClientMeta is where a request came from, for audit rows and session
// lists, and who made it when that is not the account's owner.
type ClientMeta struct {
	IP        string
	UserAgent string
	// RequestID is the request's X-Request-Id (handlers.requestID): the
	// reference an error page shows, and a field of that request's log lines.
	RequestID string
	// Actor is who acted, when not the account itself: ActorCLI for
	// latchkey user …, AdminActor(id) for an admin on the admin pages; ""
	// for the owner or an anonymous request (SECURITY A1).
	Actor string
	// Device is the browser's device cookie as sent ("" without one): a
	// login or second step to an account it holds a valid entry for is
	// throttled on that entry alone (device.go, SECURITY N1).
	Device string
	// device is Device's entry for the account being tried, once checked
	// (trustDevice): the limiter's key for this browser's attempts.
	device string
}

// ActorCLI is the actor of latchkey user …: someone with shell access to
// the server and its database settings.
const ActorCLI = "cli"

// AdminActor is the actor of an admin's action on the admin pages.
func AdminActor(adminID int64) string { return "admin:" + strconv.FormatInt(adminID, 10) }

// Audit records an event. It never takes a password or a token.
func (t *Tx) Audit(ctx context.Context, kind string, userID int64, meta ClientMeta, detail string) error {
	var uid any
	if userID != 0 {
		uid = userID
	}
	_, err := t.Exec(ctx, `INSERT INTO audit_events(time, kind, user_id, ip, user_agent, detail, request_id, actor) VALUES (?,?,?,?,?,?,?,?)`,
		ms(t.now), kind, uid, meta.IP, truncate(meta.UserAgent, 512), detail, truncate(meta.RequestID, 64), meta.Actor)
	return err
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// AuditEvent is one row of the audit trail.
type AuditEvent struct {
	ID        int64
	Time      time.Time
	Kind      string // login.ok, login.failed, user.disabled, …
	UserID    int64  // 0: no account (a login for an unknown address)
	IP        string
	UserAgent string
	Detail    string
	Actor     string // see ClientMeta.Actor
}

// ListAudit returns a user's most recent audit rows, newest first, at
// most limit of them.
func (s *Users) ListAudit(ctx context.Context, userID int64, limit int) ([]AuditEvent, error) {
	rows, err := s.db.Query(ctx, `SELECT id, time, kind, ip, user_agent, detail, actor FROM audit_events
		WHERE user_id = ? ORDER BY time DESC, id DESC LIMIT ?`, userID, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []AuditEvent
	for rows.Next() {
		e := AuditEvent{UserID: userID}
		var at int64
		if err := rows.Scan(&e.ID, &at, &e.Kind, &e.IP, &e.UserAgent, &e.Detail, &e.Actor); err != nil {
			return nil, err
		}
		e.Time = fromMS(at)
		out = append(out, e)
	}
	return out, rows.Err()
}
