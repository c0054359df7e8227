package smtptest

import (
	"fmt"
	"net/smtp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// send delivers one multipart/alternative message: the text part in
// quoted-printable, the HTML part in base64.
func send(t *testing.T, s *Server, to, subject string) {
	t.Helper()
	msg := strings.ReplaceAll(`From: Sender <from@example.com>
To: `+to+`
Subject: `+subject+`
Message-Id: <`+subject+`@example.com>
Date: Mon, 02 Jan 2006 15:04:05 +0000
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary=b

--b
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: quoted-printable

caf=C3=A9 =
link
--b
Content-Type: text/html; charset=utf-8
Content-Transfer-Encoding: base64

PHA+Y2Fmw6k8
L3A+
--b--
`, "\n", "\r\n")
	if err := smtp.SendMail(s.Addr(), nil, "from@example.com", []string{to}, []byte(msg)); err != nil {
		t.Error(err) // not Fatal: one call runs in its own goroutine
	}
}

func TestRecorder(t *testing.T) {
	s := Start(t)
	send(t, s, "a@example.com", "first")
	m := s.Next(t, 5*time.Second)
	if m.From != "Sender <from@example.com>" || len(m.To) != 1 || m.To[0] != "a@example.com" || m.Subject != "first" ||
		m.MessageID != "<first@example.com>" || m.Date.Year() != 2006 || len(m.Raw) == 0 || m.At.IsZero() {
		t.Fatalf("headers: %+v", m)
	}
	if m.Text != "café link" || m.HTML != "<p>café</p>" {
		t.Fatalf("parts: text %q, html %q", m.Text, m.HTML)
	}
	s.NoMore(t, 50*time.Millisecond)

	// WaitFor passes over what does not match, and it is not returned later.
	send(t, s, "b@example.com", "second")
	send(t, s, "A@example.com", "third")
	if m := s.WaitFor(t, "a@example.com", "thi", 5*time.Second); m.Subject != "third" {
		t.Fatalf("WaitFor: %q", m.Subject)
	}
	s.NoMore(t, 50*time.Millisecond)
	perRcpt, perID := s.Count(func(m Message) bool { return m.Subject != "second" })
	if perRcpt["a@example.com"] != 2 || perRcpt["b@example.com"] != 0 || perID["<third@example.com>"] != 1 || len(perID) != 2 {
		t.Fatalf("Count: %v %v", perRcpt, perID)
	}

	// OnData holds the sender until the hook returns.
	release := make(chan struct{})
	s.OnData(func(Message) { <-release })
	sent := make(chan struct{})
	go func() { defer close(sent); send(t, s, "c@example.com", "held") }()
	if m := s.Next(t, 5*time.Second); m.Subject != "held" {
		t.Fatalf("held: %q", m.Subject)
	}
	select {
	case <-sent:
		t.Fatal("DATA was answered while the hook held it")
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	<-sent

	// Closed, the port is free for a new server.
	addr := s.Addr()
	s.Close()
	s2 := StartAt(t, addr)
	send(t, s2, "d@example.com", "again")
	s2.Next(t, 5*time.Second)
	if n := len(s.Messages()); n != 4 {
		t.Fatalf("the first server recorded %d messages, want 4", n)
	}
}

// fatalTB records a Fatalf and ends the goroutine, as testing.T does, and
// records Errorf.
type fatalTB struct {
	testing.TB
	mu  sync.Mutex
	msg string
}

func (f *fatalTB) Errorf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.msg = fmt.Sprintf(format, args...)
}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// fails runs check against a fatalTB and returns what it failed with.
func fails(t *testing.T, check func(testing.TB)) string {
	f := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() { defer close(done); check(f) }()
	<-done
	return f.msg
}

// TestRecorderFails: the waits fail the test when the mail is not as wanted.
func TestRecorderFails(t *testing.T) {
	s := Start(t)
	if msg := fails(t, func(tb testing.TB) { s.Next(tb, 20*time.Millisecond) }); msg != "no mail within 20ms" {
		t.Errorf("Next with no mail: %q", msg)
	}
	send(t, s, "a@example.com", "one")
	if msg := fails(t, func(tb testing.TB) { s.WaitFor(tb, "a@example.com", "two", 20*time.Millisecond) }); msg == "" {
		t.Error("WaitFor passed on a subject that never came")
	}
	send(t, s, "a@example.com", "two")
	if msg := fails(t, func(tb testing.TB) { s.NoMore(tb, 20*time.Millisecond) }); msg != `unexpected mail "two" to [a@example.com]` {
		t.Errorf("NoMore with a mail waiting: %q", msg)
	}

	// A message that is not multipart/alternative is refused and fails the test.
	f := &fatalTB{TB: t}
	plain := Start(f)
	err := smtp.SendMail(plain.Addr(), nil, "from@example.com", []string{"a@example.com"}, []byte("Subject: plain\r\nContent-Type: text/plain\r\n\r\nhello\r\n"))
	f.mu.Lock()
	defer f.mu.Unlock()
	if err == nil || !strings.Contains(f.msg, "want multipart/alternative") || len(plain.Messages()) != 0 {
		t.Errorf("a text/plain message: send error %v, test error %q, %d recorded", err, f.msg, len(plain.Messages()))
	}
}
