package tcpproxy

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"
)

// safety bounds every blocking read in these tests, so that a bug fails
// the test instead of hanging it. An error that is a deadline error means
// the proxy did not act: a prompt failure is any other error.
const safety = 10 * time.Second

// echoServer serves on a free loopback port, sending back all it reads and
// half-closing when its client does. ended receives once per connection
// that has finished, on the server's side.
type echoServer struct {
	addr  string
	ended chan struct{}
}

func startEcho(t *testing.T) *echoServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := &echoServer{addr: ln.Addr().String(), ended: make(chan struct{}, 1000)}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { e.ended <- struct{}{} }()
				defer c.Close()
				if _, err := io.Copy(c, c); err == nil {
					c.(*net.TCPConn).CloseWrite()
				}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	return e
}

// waitEnded waits for n server-side connections to finish.
func (e *echoServer) waitEnded(t *testing.T, n int) {
	t.Helper()
	timeout := time.After(safety)
	for range n {
		select {
		case <-e.ended:
		case <-timeout:
			t.Fatal("the echo server's connection is still open")
		}
	}
}

func dial(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(safety))
	return c.(*net.TCPConn)
}

// echo sends msg on c and checks that it comes back.
func echo(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatalf("write: %v", err)
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != msg {
		t.Fatalf("read back %q, %v; want %q", buf, err, msg)
	}
}

// wantReset checks that a read on c fails, and not by running out of time.
func wantReset(t *testing.T, c net.Conn) {
	t.Helper()
	n, err := c.Read(make([]byte, 1))
	if err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read = %d, %v; want a prompt error", n, err)
	}
}

// wantRefused checks that a connection to addr fails promptly: the dial
// itself fails (the reset came first) or the first read does.
func wantRefused(t *testing.T, addr string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, safety)
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("dial %s: %v; want a prompt error", addr, err)
		}
		return
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(safety))
	io.WriteString(c, "hello?") // may fail: the reset may have arrived
	wantReset(t, c)
}

// waitConns polls p.Conns until it is want.
func waitConns(t *testing.T, p *Proxy, want int) {
	t.Helper()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	timeout := time.After(safety)
	for p.Conns() != want {
		select {
		case <-tick.C:
		case <-timeout:
			t.Fatalf("Conns() = %d, want %d", p.Conns(), want)
		}
	}
}

func TestForward(t *testing.T) {
	t.Parallel()
	e := startEcho(t)
	p := New(t, e.addr)

	a, b := dial(t, p.Addr()), dial(t, p.Addr())
	echo(t, a, "hello")
	echo(t, b, "world")
	if n := p.Conns(); n != 2 {
		t.Fatalf("Conns() = %d with two connections open, want 2", n)
	}

	// A half-close reaches the server, and what it sends after still comes
	// back, then its own close.
	io.WriteString(a, "last words")
	a.CloseWrite()
	rest, err := io.ReadAll(a)
	if err != nil || string(rest) != "last words" {
		t.Fatalf("after CloseWrite: read %q, %v; want the echo then EOF", rest, err)
	}
	e.waitEnded(t, 1)
	waitConns(t, p, 1)
	echo(t, b, "still here")
}

func TestCut(t *testing.T) {
	t.Parallel()
	e := startEcho(t)
	p := New(t, e.addr)

	a, b := dial(t, p.Addr()), dial(t, p.Addr())
	echo(t, a, "before")
	echo(t, b, "before")
	p.Cut()
	if n := p.Conns(); n != 0 {
		t.Fatalf("Conns() = %d after Cut, want 0", n)
	}
	wantReset(t, a)
	wantReset(t, b)
	e.waitEnded(t, 2) // the server's side was cut too

	// While cut, a new connection is accepted and reset at once.
	for range 3 {
		wantRefused(t, p.Addr())
	}

	p.Restore()
	c := dial(t, p.Addr())
	echo(t, c, "after")
	if n := p.Conns(); n != 1 {
		t.Fatalf("Conns() = %d after Restore and one dial, want 1", n)
	}
	wantReset(t, a) // a cut connection stays cut
}

func TestTargetDown(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	target := ln.Addr().String()
	ln.Close()

	p := New(t, target)
	wantRefused(t, p.Addr())
}

func TestCleanup(t *testing.T) {
	t.Parallel()
	e := startEcho(t)
	var (
		addr string
		c    net.Conn // left open by the subtest: its proxy must close it
	)
	defer func() {
		if c != nil {
			c.Close()
		}
	}()
	t.Run("owner", func(t *testing.T) {
		p := New(t, e.addr)
		addr = p.Addr()
		var err error
		if c, err = net.Dial("tcp", addr); err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(safety))
		echo(t, c, "hello")
	})
	if c == nil {
		t.FailNow()
	}
	wantReset(t, c)
	e.waitEnded(t, 1)
	if c2, err := net.Dial("tcp", addr); err == nil {
		c2.Close()
		t.Fatalf("dial %s after the test ended: the proxy still listens", addr)
	}
}

// TestCutRestoreRace runs clients against Cut and Restore called from
// another goroutine; under -race it checks the locking, and that nothing
// hangs.
func TestCutRestoreRace(t *testing.T) {
	t.Parallel()
	e := startEcho(t)
	p := New(t, e.addr)

	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 20 {
				c, err := net.Dial("tcp", p.Addr())
				if err != nil {
					continue
				}
				c.SetDeadline(time.Now().Add(safety))
				msg := fmt.Sprintf("client %d message %d", i, j)
				buf := make([]byte, len(msg))
				if _, err := io.WriteString(c, msg); err == nil {
					_, err = io.ReadFull(c, buf)
					if errors.Is(err, os.ErrDeadlineExceeded) {
						t.Errorf("client %d: the proxy neither forwarded nor reset", i)
					}
				}
				c.Close()
				_ = p.Conns()
			}
		}()
	}
	for range 20 {
		p.Cut()
		p.Restore()
	}
	wg.Wait()
	echo(t, dial(t, p.Addr()), "after the storm")
}

// TestStall: while stalled the target's bytes are held back and nothing
// is closed; after Resume they arrive, and the connection works on.
func TestStall(t *testing.T) {
	t.Parallel()
	e := startEcho(t)
	p := New(t, e.addr)
	c := dial(t, p.Addr())
	echo(t, c, "before")

	p.Stall()
	if _, err := io.WriteString(c, "held"); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	buf := make([]byte, 4)
	if n, err := c.Read(buf); n != 0 || !os.IsTimeout(err) {
		t.Fatalf("read while stalled: %d bytes, %v; want nothing and a timeout", n, err)
	}
	if p.Conns() != 1 {
		t.Fatalf("Conns() = %d while stalled, want the connection kept", p.Conns())
	}
	p.Resume()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "held" {
		t.Fatalf("after Resume: %q, %v", buf, err)
	}
	c.SetReadDeadline(time.Time{})
	echo(t, c, "after")
}
