//go:build linux

package main

import (
	"encoding/binary"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// pacer ticks at a fixed interval from a kernel timer (timerfd) read
// through Go's netpoller. Go's own timers cannot pace an open loop this
// fine: an idle Go process waits in epoll_wait, whose timeout is whole
// milliseconds, so a 50 µs time.Sleep takes 0.5 ms at the median and
// 1.1 ms at p99 on a 2-core VM, and the Lookups measured from when they
// were due would carry that delay.
type pacer struct {
	f     *os.File
	start time.Time
	buf   [8]byte
}

// newPacer starts the timer; tick k (from 1) is due at start + k·interval.
func newPacer(interval time.Duration) (*pacer, error) {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("timerfd: %w", err)
	}
	p := &pacer{f: os.NewFile(uintptr(fd), "timerfd")}
	spec := unix.ItimerSpec{Interval: unix.NsecToTimespec(int64(interval)), Value: unix.NsecToTimespec(int64(interval))}
	p.start = time.Now()
	if err := unix.TimerfdSettime(fd, 0, &spec, nil); err != nil {
		_ = p.f.Close()
		return nil, fmt.Errorf("timerfd: %w", err)
	}
	return p, nil
}

// wait blocks until the next tick and returns how many ticks have passed
// since the last call (more than one when the process was late).
func (p *pacer) wait() (int, error) {
	if _, err := p.f.Read(p.buf[:]); err != nil {
		return 0, fmt.Errorf("timerfd: %w", err)
	}
	return int(binary.NativeEndian.Uint64(p.buf[:])), nil
}

func (p *pacer) close() { _ = p.f.Close() }
