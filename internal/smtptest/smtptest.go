// Package smtptest is an in-process SMTP server for tests: it records every
// message it is sent, parsed, so that a test can wait for a mail, read its
// text and HTML parts, and count what arrived.
//
// Every message must be multipart/alternative (what Latchkey sends); one
// that is not, or that does not parse, fails the test that started the
// server and is refused in DATA.
package smtptest

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// Message is one message as the server received it. Treat it as read-only:
// its slices and header are shared with the server's record.
type Message struct {
	From       string    // the From header
	To         []string  // the envelope recipients (RCPT TO), in order
	Subject    string    // decoded (RFC 2047)
	MessageID  string    // the Message-Id header, with its angle brackets
	Date       time.Time // the Date header; zero when missing or unparsable
	Header     mail.Header
	Text, HTML string    // the text/plain and text/html parts, transfer-decoded
	Raw        []byte    // the message as DATA carried it
	At         time.Time // when the server had the whole message
}

// Server is a running recorder. Next, WaitFor and NoMore read the messages
// in arrival order, each returned once (like a queue); Messages and Count
// see every message received, returned or not.
type Server struct {
	t      testing.TB
	srv    *smtp.Server
	ln     net.Listener
	served chan struct{} // closed when Serve has returned
	once   sync.Once

	mu      sync.Mutex
	msgs    []Message
	unread  int           // index of the first message Next and WaitFor have not returned
	arrived chan struct{} // closed (and replaced) when a message is recorded
	onData  func(Message)
	refuse  func(stage, rcpt string) int // Refuse's hook
}

// Start serves a recorder on a free loopback port until the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	return StartAt(t, "127.0.0.1:0")
}

// StartAt serves a recorder on addr until the test ends, e.g. on the address
// of one that was closed, to bring "the mail server" back on the same port.
func StartAt(t testing.TB, addr string) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("smtptest: listen on %s: %v", addr, err)
	}
	s := &Server{t: t, ln: ln, served: make(chan struct{}), arrived: make(chan struct{})}
	s.srv = smtp.NewServer(backend{s})
	s.srv.Domain = "localhost"
	s.srv.AllowInsecureAuth = true
	s.srv.ReadTimeout = 30 * time.Second
	s.srv.WriteTimeout = 30 * time.Second
	go func() {
		defer close(s.served)
		_ = s.srv.Serve(ln)
	}()
	t.Cleanup(s.Close)
	return s
}

// Addr is the host:port the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Port is the port the server listens on.
func (s *Server) Port() int { return s.ln.Addr().(*net.TCPAddr).Port }

// Close stops the server, drops its connections and frees its port before
// returning. It is safe to call more than once.
func (s *Server) Close() {
	s.once.Do(func() {
		_ = s.srv.Close()
		_ = s.ln.Close() // in case Close ran before Serve registered it
		<-s.served
	})
}

// OnData sets a hook that runs inside DATA, after the message is recorded
// and before the server answers it: the client waits until the hook
// returns, so a hook that blocks holds the message undelivered as far as
// the sender knows. nil removes the hook.
func (s *Server) OnData(hook func(Message)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onData = hook
}

// Refuse sets a hook asked at RCPT TO (stage "RCPT", with the recipient)
// and at the end of DATA (stage "DATA", with the first recipient): a
// return of 400–599 answers with that code (and an enhanced code of the
// same class) instead of accepting, and a message refused in DATA is not
// recorded; 0 accepts. nil removes the hook.
func (s *Server) Refuse(hook func(stage, rcpt string) int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refuse = hook
}

// refusal is the SMTP error Refuse's hook asks for at stage, or nil.
func (s *Server) refusal(stage, rcpt string) error {
	s.mu.Lock()
	hook := s.refuse
	s.mu.Unlock()
	if hook == nil {
		return nil
	}
	code := hook(stage, rcpt)
	if code < 400 || code > 599 {
		return nil
	}
	return &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCode{code / 100, 1, 1},
		Message: fmt.Sprintf("refused by smtptest at %s", stage)}
}

// Next returns the next message not yet returned, waiting up to within for
// it; it fails the test if none comes.
func (s *Server) Next(t testing.TB, within time.Duration) Message {
	t.Helper()
	m, ok := s.await(within, func(Message) bool { return true })
	if !ok {
		t.Fatalf("no mail within %v", within)
	}
	return m
}

// WaitFor returns the next message whose only recipient is rcpt (compared
// case-insensitively) and whose subject contains subject ("" matches any),
// waiting up to within; messages before it that do not match are passed
// over and not returned later. It fails the test if none comes.
func (s *Server) WaitFor(t testing.TB, rcpt, subject string, within time.Duration) Message {
	t.Helper()
	m, ok := s.await(within, func(m Message) bool {
		return len(m.To) == 1 && strings.EqualFold(m.To[0], rcpt) && strings.Contains(m.Subject, subject)
	})
	if !ok {
		t.Fatalf("no %q mail to %s within %v", subject, rcpt, within)
	}
	return m
}

// NoMore fails the test if a message not yet returned is there or arrives
// within wait.
func (s *Server) NoMore(t testing.TB, wait time.Duration) {
	t.Helper()
	if m, ok := s.await(wait, func(Message) bool { return true }); ok {
		t.Fatalf("unexpected mail %q to %v", m.Subject, m.To)
	}
}

// Messages returns every message received so far, in arrival order.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

// Count counts the messages received so far for which match holds (all of
// them when match is nil): per recipient, lower-cased, and per Message-ID.
func (s *Server) Count(match func(Message) bool) (perRcpt, perID map[string]int) {
	perRcpt, perID = map[string]int{}, map[string]int{}
	for _, m := range s.Messages() {
		if match != nil && !match(m) {
			continue
		}
		perID[m.MessageID]++
		for _, to := range m.To {
			perRcpt[strings.ToLower(to)]++
		}
	}
	return perRcpt, perID
}

// await returns the first message not yet returned for which match holds,
// marking it and those before it returned, waiting up to within.
func (s *Server) await(within time.Duration, match func(Message) bool) (Message, bool) {
	timeout := time.NewTimer(within)
	defer timeout.Stop()
	for {
		s.mu.Lock()
		for i := s.unread; i < len(s.msgs); i++ {
			if match(s.msgs[i]) {
				s.unread = i + 1
				m := s.msgs[i]
				s.mu.Unlock()
				return m, true
			}
		}
		s.unread = len(s.msgs)
		arrived := s.arrived
		s.mu.Unlock()
		select {
		case <-arrived:
		case <-timeout.C:
			return Message{}, false
		}
	}
}

func (s *Server) record(m Message) {
	s.mu.Lock()
	s.msgs = append(s.msgs, m)
	close(s.arrived)
	s.arrived = make(chan struct{})
	hook := s.onData
	s.mu.Unlock()
	if hook != nil {
		hook(m)
	}
}

type backend struct{ s *Server }

func (b backend) NewSession(*smtp.Conn) (smtp.Session, error) { return &session{s: b.s}, nil }

type session struct {
	s  *Server
	to []string
}

func (x *session) Mail(string, *smtp.MailOptions) error { return nil }
func (x *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if err := x.s.refusal("RCPT", to); err != nil {
		return err
	}
	x.to = append(x.to, to)
	return nil
}
func (x *session) Reset()        { x.to = nil }
func (x *session) Logout() error { return nil }

func (x *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	first := ""
	if len(x.to) > 0 {
		first = x.to[0]
	}
	if err := x.s.refusal("DATA", first); err != nil {
		return err
	}
	m, err := parse(raw)
	if err != nil {
		x.s.t.Errorf("smtptest: unparsable message: %v\n%s", err, raw)
		return err
	}
	m.To = append([]string(nil), x.to...)
	m.At = time.Now()
	x.s.record(m)
	return nil
}

// parse reads a multipart/alternative message: its headers and its
// text/plain and text/html parts, quoted-printable or base64 decoded.
func parse(raw []byte) (Message, error) {
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return Message{}, err
	}
	m := Message{From: msg.Header.Get("From"), Subject: msg.Header.Get("Subject"), MessageID: msg.Header.Get("Message-Id"), Header: msg.Header, Raw: raw}
	if subj, err := new(mime.WordDecoder).DecodeHeader(m.Subject); err == nil {
		m.Subject = subj
	}
	m.Date, _ = msg.Header.Date()
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		return m, err
	}
	if mt != "multipart/alternative" {
		return m, fmt.Errorf("content type %s, want multipart/alternative", mt)
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return m, nil
		}
		if err != nil {
			return m, err
		}
		body, err := io.ReadAll(p) // quoted-printable is decoded by the reader
		if err != nil {
			return m, err
		}
		if strings.EqualFold(p.Header.Get("Content-Transfer-Encoding"), "base64") {
			if body, err = base64.StdEncoding.DecodeString(strings.Join(strings.Fields(string(body)), "")); err != nil {
				return m, err
			}
		}
		switch pt, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type")); pt {
		case "text/plain":
			m.Text = string(body)
		case "text/html":
			m.HTML = string(body)
		}
	}
}
