package models

import "context"

// ClientMeta is where a request came from, for audit rows and session lists.
type ClientMeta struct {
	IP        string
	UserAgent string
	// RequestID is the request's X-Request-Id (handlers.requestID): the
	// reference an error page shows, and a field of that request's log lines.
	RequestID string
}

// Audit records an event. It never takes a password or a token.
func (t *Tx) Audit(ctx context.Context, kind string, userID int64, meta ClientMeta, detail string) error {
	var uid any
	if userID != 0 {
		uid = userID
	}
	_, err := t.Exec(ctx, `INSERT INTO audit_events(time, kind, user_id, ip, user_agent, detail, request_id) VALUES (?,?,?,?,?,?,?)`,
		ms(t.now), kind, uid, meta.IP, truncate(meta.UserAgent, 512), detail, truncate(meta.RequestID, 64))
	return err
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
