package models

import (
	"net"
	"testing"

	"golang.org/x/sys/unix"
)

// TestDialControlSetsUserTimeout: connections dialled for PostgreSQL carry
// TCP_USER_TIMEOUT, so a peer that stops acknowledging fails a request in
// tcpUserTimeout rather than after the kernel's retransmissions.
func TestDialControlSetsUserTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := (&net.Dialer{Control: dialControl}).Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	raw, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var got int
	var gerr error
	if err := raw.Control(func(fd uintptr) {
		got, gerr = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT)
	}); err != nil || gerr != nil {
		t.Fatal(err, gerr)
	}
	if got != int(tcpUserTimeout.Milliseconds()) {
		t.Fatalf("TCP_USER_TIMEOUT = %d ms, want %d", got, tcpUserTimeout.Milliseconds())
	}
}
