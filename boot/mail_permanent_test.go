package boot

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/smtptest"
	"github.com/latchkey/latchkey/internal/testdb"
	"github.com/latchkey/latchkey/models"
)

// TestMailPermanentFailureDeadAtOnce: the mail server answers 550 to one
// recipient (RCPT TO) and 554 to another's message (DATA): each message is
// dead after its first attempt, with the server's reply as its last error,
// and /healthz counts it dead at once; a 451 (temporary) is retried.
func TestMailPermanentFailureDeadAtOnce(t *testing.T) {
	t.Parallel()
	sink := smtptest.Start(t)
	sink.Refuse(func(stage, rcpt string) int {
		switch {
		case stage == "RCPT" && strings.HasPrefix(rcpt, "gone@"):
			return 550
		case stage == "DATA" && strings.HasPrefix(rcpt, "spam@"):
			return 554
		case stage == "RCPT" && strings.HasPrefix(rcpt, "busy@"):
			return 451
		}
		return 0
	})
	clk := newClock()
	a := startApp(t, testdb.DSN(t), sink.Port(), clk)
	for _, email := range []string{"gone@example.com", "spam@example.com", "busy@example.com", "fine@example.com"} {
		if r := a.do("POST", "/api/users", `{"email":"`+email+`","password":"correct horse battery"}`); r.status != 200 {
			t.Fatalf("sign-up %s: %d %s", email, r.status, r.body)
		}
		if r := a.do("POST", "/api/users/reset", `{"email":"`+email+`"}`); r.status != 204 {
			t.Fatalf("reset %s: %d %s", email, r.status, r.body)
		}
	}
	sink.WaitFor(t, "fine@example.com", "Reset your password", 10*time.Second)

	ctx := context.Background()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := a.outbox.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.Dead == 2 && st.Retrying == 1 && st.Pending == 1 || time.Now().After(deadline) {
			if st.Dead != 2 || st.Retrying != 1 || st.Pending != 1 {
				t.Fatalf("outbox %+v, want 2 dead at once and 1 retrying", st)
			}
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	var rows []struct {
		to, lastError string
		attempts      int
		dead          bool
	}
	r, err := a.app.DB.Query(ctx, `SELECT to_addr, last_error, attempts, dead_at IS NOT NULL FROM outbox ORDER BY to_addr`)
	if err != nil {
		t.Fatal(err)
	}
	for r.Next() {
		var x struct {
			to, lastError string
			attempts      int
			dead          bool
		}
		if err := r.Scan(&x.to, &x.lastError, &x.attempts, &x.dead); err != nil {
			t.Fatal(err)
		}
		rows = append(rows, x)
	}
	r.Close()
	if len(rows) != 4 {
		t.Fatalf("%d outbox rows", len(rows))
	}
	for _, x := range rows {
		switch {
		case strings.HasPrefix(x.to, "gone@"), strings.HasPrefix(x.to, "spam@"):
			if !x.dead || x.attempts != 1 || !strings.Contains(x.lastError, "5") {
				t.Errorf("%s: dead %v after %d attempts (%q), want dead after 1", x.to, x.dead, x.attempts, x.lastError)
			}
		case strings.HasPrefix(x.to, "busy@"):
			if x.dead || x.attempts != 1 {
				t.Errorf("%s: a 451 should be retried: dead %v, %d attempts", x.to, x.dead, x.attempts)
			}
		}
	}
	h := a.do("GET", "/healthz", "")
	var body struct {
		Mail map[string]int64 `json:"mail"`
	}
	if err := json.Unmarshal([]byte(h.body), &body); err != nil || body.Mail["dead"] != 2 || body.Mail["retrying"] != 1 {
		t.Errorf("healthz %d %s", h.status, h.body)
	}
	if len(sink.Messages()) != 1 {
		t.Errorf("%d messages arrived, want only fine@'s", len(sink.Messages()))
	}
}

// TestClassifySMTP: only a 5xx reply to RCPT TO or DATA is permanent.
func TestClassifySMTP(t *testing.T) {
	t.Parallel()
	if err := classifySMTP(errors.New("dial tcp 127.0.0.1:25: connection refused")); models.IsPermanentMailError(err) {
		t.Error("a network error is permanent")
	}
	if classifySMTP(nil) != nil {
		t.Error("nil is an error")
	}
}
