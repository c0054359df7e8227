// Package tcpproxy is a TCP proxy for fault-injection tests: put it between
// the code under test and its database, then Cut the link to see what the
// code does when the database goes away, and Restore it to see it recover.
//
// A cut is abrupt: every open connection, on both sides, is reset (RST), and
// connections made while cut are accepted and reset at once. Clients thus get
// a prompt error, as when the database restarts, rather than waiting on a
// timeout, so a test about failure handling does not have to be slow.
package tcpproxy

import (
	"context"
	"io"
	"net"
	"sync"
	"testing"
)

// Proxy forwards connections to one target until the test ends.
type Proxy struct {
	t      testing.TB
	target string
	ln     net.Listener
	ctx    context.Context // cancelled at cleanup, to abandon dials in flight
	cancel context.CancelFunc
	wg     sync.WaitGroup // the accept loop and every forwarding goroutine

	mu      sync.Mutex
	cut     bool
	closed  bool
	links   map[*link]struct{} // accepted and not yet ended or cut
	resumed chan struct{}      // nil, or closed when a Stall ends
}

// link is one forwarded connection: the client's, and the target's once
// dialled. Both fields are guarded by Proxy.mu.
type link struct {
	client, server net.Conn
}

// New starts a proxy on a free loopback port that forwards every accepted
// connection to target ("host:port"). At t's cleanup it stops accepting,
// closes every connection and waits for its goroutines.
func New(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("tcpproxy: listen: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Proxy{t: t, target: target, ln: ln, ctx: ctx, cancel: cancel, links: make(map[*link]struct{})}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(p.close)
	return p
}

// Addr returns the address to dial instead of the target, "127.0.0.1:port".
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Cut resets every open connection and makes the proxy reset new ones as
// soon as it accepts them, until Restore. When Cut returns, every
// connection open before it has been reset.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for l := range p.links {
		l.reset()
	}
	clear(p.links)
}

// Restore makes the proxy forward new connections again. Connections cut
// stay cut: clients must reconnect, as after a real outage.
func (p *Proxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = false
}

// Conns returns the number of connections being forwarded: accepted, joined
// to the target, and not yet closed by either side or cut.
func (p *Proxy) Conns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for l := range p.links {
		if l.server != nil {
			n++
		}
	}
	return n
}

func (p *Proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return // closed at cleanup; a loopback listener fails no other way
		}
		l := &link{client: c}
		if !p.add(l) {
			l.reset()
			continue
		}
		p.wg.Add(1)
		go p.forward(l)
	}
}

// add records l as open, unless the proxy is cut or closed.
func (p *Proxy) add(l *link) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut || p.closed {
		return false
	}
	p.links[l] = struct{}{}
	return true
}

// join sets l's server side, unless l was cut (or the proxy closed) while
// the target was being dialled.
func (p *Proxy) join(l *link, server net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, open := p.links[l]; !open {
		return false
	}
	l.server = server
	return true
}

// remove forgets l once its connections have ended on their own.
func (p *Proxy) remove(l *link) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.links, l)
}

// forward dials the target for l and copies both ways until both sides have
// finished, or the link is cut.
func (p *Proxy) forward(l *link) {
	defer p.wg.Done()
	defer p.remove(l)
	var d net.Dialer
	server, err := d.DialContext(p.ctx, "tcp", p.target)
	if err != nil {
		if p.ctx.Err() == nil {
			p.t.Logf("tcpproxy: dial %s: %v", p.target, err)
		}
		p.mu.Lock()
		l.reset()
		p.mu.Unlock()
		return
	}
	if !p.join(l, server) {
		server.Close()
		return
	}
	// l.client and server are read from here on without the lock: Cut
	// only closes them, which is safe alongside reads and writes.
	done := make(chan struct{})
	go func() {
		pipe(server, l.client, nil)
		close(done)
	}()
	pipe(l.client, server, p.gate)
	<-done
	l.client.Close()
	server.Close()
}

// Stall stops passing the target's bytes to the clients, without closing
// anything: the path looks alive but nothing arrives, as with a stalled
// network, a paused VM or a starved process. Resume lets them through.
func (p *Proxy) Stall() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.resumed == nil {
		p.resumed = make(chan struct{})
	}
}

// Resume ends a Stall: what the target sent meanwhile is delivered.
func (p *Proxy) Resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.resumed != nil {
		close(p.resumed)
		p.resumed = nil
	}
}

// gate waits while the proxy is stalled (or until it closes).
func (p *Proxy) gate() {
	p.mu.Lock()
	ch := p.resumed
	p.mu.Unlock()
	if ch != nil {
		select {
		case <-ch:
		case <-p.ctx.Done():
		}
	}
}

// pipe copies src to dst, calling gate (when not nil) before each write.
// When src ends cleanly (EOF), the end is passed on as a half-close, so the
// other direction can still finish (a client that sends its request, shuts
// its write side and waits for the answer). When it fails (a reset, or a
// cut), both connections are closed, ending the other direction too.
func pipe(dst, src net.Conn, gate func()) {
	var err error
	if gate == nil {
		_, err = io.Copy(dst, src)
	} else {
		buf := make([]byte, 32<<10)
		for {
			n, rerr := src.Read(buf)
			if n > 0 {
				gate()
				if _, werr := dst.Write(buf[:n]); werr != nil {
					err = werr
					break
				}
			}
			if rerr != nil {
				if rerr != io.EOF {
					err = rerr
				}
				break
			}
		}
	}
	if err != nil {
		dst.Close()
		src.Close()
		return
	}
	if tc, ok := dst.(*net.TCPConn); ok {
		tc.CloseWrite()
	} else {
		dst.Close()
	}
}

// reset closes both sides of l with a TCP RST rather than a FIN, so that
// peers see "connection reset" at once. Call it with Proxy.mu held, or
// before l is shared.
func (l *link) reset() {
	for _, c := range []net.Conn{l.client, l.server} {
		if c == nil {
			continue
		}
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
		c.Close()
	}
}

// close stops the proxy for good: no more accepts, every link reset, every
// goroutine finished.
func (p *Proxy) close() {
	p.cancel()
	p.ln.Close()
	p.mu.Lock()
	p.closed = true
	for l := range p.links {
		l.reset()
	}
	clear(p.links)
	p.mu.Unlock()
	p.wg.Wait()
}
