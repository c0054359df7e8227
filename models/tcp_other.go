//go:build !linux

package models

import "syscall"

// dialControl sets nothing where TCP_USER_TIMEOUT does not exist; the
// keepalives still find a dead peer, more slowly.
func dialControl(network, address string, c syscall.RawConn) error { return nil }
