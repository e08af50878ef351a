//go:build unix

package main

import (
	"errors"
	"net"
	"syscall"
)

// busyRoundTrip writes 64 bytes on c and reads them back, polling the
// socket without ever waiting in the kernel, so that the client's core
// stays busy between the write and the answer.
func busyRoundTrip(c *net.TCPConn) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var out, in [64]byte
	out[0] = 1
	var ioErr error
	err = raw.Write(func(fd uintptr) bool {
		var n int
		n, ioErr = syscall.Write(int(fd), out[:])
		if ioErr == nil && n != len(out) {
			ioErr = errors.New("short write")
		}
		return !errors.Is(ioErr, syscall.EAGAIN)
	})
	if err == nil {
		err = ioErr
	}
	for got := 0; err == nil && got < len(in); {
		// Returning true hands control back without waiting for
		// readability: the loop polls again at once.
		err = raw.Read(func(fd uintptr) bool {
			var n int
			n, ioErr = syscall.Read(int(fd), in[got:])
			switch {
			case errors.Is(ioErr, syscall.EAGAIN):
				ioErr = nil
			case ioErr == nil && n == 0:
				ioErr = errors.New("closed")
			case ioErr == nil:
				got += n
			}
			return true
		})
		if err == nil {
			err = ioErr
		}
	}
	if err == nil && in != out {
		err = errors.New("answered other bytes than it was sent: not an echo")
	}
	return err
}
