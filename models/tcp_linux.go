package models

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// dialControl makes a connection to PostgreSQL give up when what it sent
// has not been acknowledged for tcpUserTimeout (TCP_USER_TIMEOUT): a
// database host that died, or a network that drops packets without a
// reset, then fails a request in seconds (503) instead of leaving it to
// the kernel's retransmissions for a quarter of an hour.
func dialControl(network, address string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, int(tcpUserTimeout.Milliseconds()))
	})
	if err != nil {
		return err
	}
	return serr
}
