package main

import (
	"bytes"
	"fmt"
	"net"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"golang.org/x/sys/unix"
)

// pollingConn is one connection of a polling open loop: the due times of
// its requests in flight, in order, and what it has read of their answers.
type pollingConn struct {
	fd      int
	pending []time.Duration
	read    []byte
}

// pollingLoop sends requests at a fixed rate over conns connections from
// one thread that never waits in the kernel: it spins until each request
// is due, writes it on the connection with the fewest in flight, and
// polls every socket (epoll with no timeout) for answers, each timed from
// when its request was due. The harness's floor, whose threads wait in
// the kernel between events as a frontend's do, measures its own wake-ups
// too; this one leaves the kernel's loopback and the service.
type pollingLoop struct {
	conns []*pollingConn
	byFD  map[int32]*pollingConn
	epoll int
	// answer returns the length of the first whole answer in b, or 0 when
	// b holds none yet; an error for an answer that is not a success.
	answer func(b []byte) (int, error)
}

func newPollingLoop(addr string, conns int, answer func([]byte) (int, error)) (*pollingLoop, error) {
	ta, err := net.ResolveTCPAddr("tcp4", addr)
	if err != nil {
		return nil, err
	}
	sa := &unix.SockaddrInet4{Port: ta.Port}
	copy(sa.Addr[:], ta.IP.To4())
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	l := &pollingLoop{epoll: ep, byFD: map[int32]*pollingConn{}, answer: answer}
	for range conns {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			l.close()
			return nil, err
		}
		c := &pollingConn{fd: fd}
		l.conns = append(l.conns, c)
		if err := unix.Connect(fd, sa); err != nil {
			l.close()
			return nil, fmt.Errorf("%s: %w", addr, err)
		}
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1); err != nil {
			l.close()
			return nil, err
		}
		if err := unix.SetNonblock(fd, true); err != nil {
			l.close()
			return nil, err
		}
		if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}); err != nil {
			l.close()
			return nil, err
		}
		l.byFD[int32(fd)] = c
	}
	return l, nil
}

func (l *pollingLoop) close() {
	for _, c := range l.conns {
		_ = unix.Close(c.fd)
	}
	_ = unix.Close(l.epoll)
}

// run sends n requests (request(i) is the i-th) at rate and records each
// answer's time from when it was due in h (when h is not nil). It returns
// how many requests were written more than 20µs after they were due, and
// fails when an answer is not a success or the answers are not all in
// within 10s of the last request's due time.
func (l *pollingLoop) run(n, rate int, request func(i int) []byte, h *hdrhistogram.Histogram) (late int, err error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	events := make([]unix.EpollEvent, len(l.conns))
	buf := make([]byte, 64<<10)
	interval := time.Second / time.Duration(rate)
	deadline := time.Duration(n)*interval + 10*time.Second
	start := time.Now()
	for sent, done := 0, 0; done < n; {
		now := time.Since(start)
		if now > deadline {
			return late, fmt.Errorf("%d of %d answers missing 10s after the last request was due", n-done, n)
		}
		if due := time.Duration(sent) * interval; sent < n && now >= due {
			if now-due > 20*time.Microsecond {
				late++
			}
			c := l.conns[0]
			for _, x := range l.conns[1:] {
				if len(x.pending) < len(c.pending) {
					c = x
				}
			}
			if err := writeAll(c.fd, request(sent)); err != nil {
				return late, err
			}
			c.pending = append(c.pending, due)
			sent++
		}
		k, err := unix.EpollWait(l.epoll, events, 0)
		if err != nil && err != unix.EINTR {
			return late, err
		}
		for _, e := range events[:max(k, 0)] {
			c := l.byFD[e.Fd]
			m, err := unix.Read(c.fd, buf)
			if err == unix.EAGAIN {
				continue
			}
			if err != nil || m == 0 {
				return late, fmt.Errorf("read: connection closed (%v)", err)
			}
			c.read = append(c.read, buf[:m]...)
			for {
				size, err := l.answer(c.read)
				if err != nil {
					return late, err
				}
				if size == 0 {
					break
				}
				if len(c.pending) == 0 {
					return late, fmt.Errorf("an answer to no request: %q", c.read[:size])
				}
				if h != nil {
					_ = h.RecordValue((time.Since(start) - c.pending[0]).Microseconds())
				}
				c.read, c.pending = c.read[size:], c.pending[1:]
				done++
			}
		}
	}
	return late, nil
}

// writeAll writes b to a non-blocking socket, polling while its buffer is
// full.
func writeAll(fd int, b []byte) error {
	for len(b) > 0 {
		m, err := unix.Write(fd, b)
		if err == unix.EAGAIN {
			continue
		}
		if err != nil {
			return err
		}
		b = b[m:]
	}
	return nil
}

// httpAnswer is the length of the first whole HTTP/1.1 answer in b (0 for
// none yet); an error for a status other than 200, or an answer without
// Content-Length (the service sets it on every answer it sends here).
func httpAnswer(b []byte) (int, error) {
	end := bytes.Index(b, []byte("\r\n\r\n"))
	if end < 0 {
		return 0, nil
	}
	head := b[:end+2]
	if !bytes.HasPrefix(head, []byte("HTTP/1.1 200 ")) {
		return 0, fmt.Errorf("answer: %q", head)
	}
	const field = "\r\nContent-Length: "
	i := bytes.Index(head, []byte(field))
	if i < 0 {
		return 0, fmt.Errorf("answer without Content-Length: %q", head)
	}
	v := head[i+len(field):]
	n, err := strconv.Atoi(string(v[:bytes.IndexByte(v, '\r')]))
	if err != nil {
		return 0, fmt.Errorf("answer's Content-Length: %w", err)
	}
	if len(b) < end+4+n {
		return 0, nil
	}
	return end + 4 + n, nil
}

// pollingLoops measures through polling open loops at rate: in rounds
// taken in turns, the 64-byte echo of the service's process (when echo is
// given), GET /healthz and POST /v1/lookup of returning users; then, in
// rounds of their own, POST /v1/lookup of new users.
func pollingLoops(httpAddr, echo string, rate int, d time.Duration) error {
	lookup := func(user string) []byte {
		body := `{"name":"bench/shop","user":"` + user + `"}`
		return []byte("POST /v1/lookup HTTP/1.1\r\nHost: abn\r\nContent-Type: application/json\r\nContent-Length: " +
			strconv.Itoa(len(body)) + "\r\n\r\n" + body)
	}
	echoed := bytes.Repeat([]byte{'e'}, 64)
	type target struct {
		name, addr string
		answer     func([]byte) (int, error)
		request    func(round, i int) []byte
		loop       *pollingLoop
		all        *hdrhistogram.Histogram
		p99s       []string
		late       int
	}
	targets := []*target{
		{name: "The service process's own echo (a 64-byte round trip: the floor)", addr: echo,
			answer:  func(b []byte) (int, error) { return min(len(b)/64, 1) * 64, nil },
			request: func(int, int) []byte { return echoed }},
		{name: "GET /healthz (an answer that does nothing)", addr: httpAddr, answer: httpAnswer,
			request: func(int, int) []byte { return []byte("GET /healthz HTTP/1.1\r\nHost: abn\r\n\r\n") }},
		{name: "Lookup over HTTP/JSON, returning users", addr: httpAddr, answer: httpAnswer,
			request: func(_, i int) []byte { return lookup(userID("polling-returning-"+runID, uint64(i%returningUsers))) }},
		{name: "Lookup over HTTP/JSON, new users", addr: httpAddr, answer: httpAnswer,
			request: func(round, i int) []byte {
				return lookup(userID(fmt.Sprintf("polling-new-%s-%d", runID, round), uint64(i)))
			}},
	}
	if echo == "" {
		targets = targets[1:]
	}
	// Each target connects just before its first requests: the service
	// closes a connection that sends no request within its
	// ReadHeaderTimeout (10s).
	dial := func(t *target) error {
		if t.loop != nil {
			return nil
		}
		l, err := newPollingLoop(t.addr, 64, t.answer)
		if err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
		t.loop, t.all = l, newHist()
		return nil
	}
	defer func() {
		for _, t := range targets {
			if t.loop != nil {
				t.loop.close()
			}
		}
	}()
	returning := targets[len(targets)-2]
	if err := dial(returning); err != nil {
		return err
	}
	if _, err := returning.loop.run(returningUsers, rate, func(i int) []byte { return returning.request(0, i) }, nil); err != nil {
		return fmt.Errorf("%s, warm-up: %w", returning.name, err)
	}
	per := int(int64(rate) * int64(d/openLoopRounds) / int64(time.Second))
	round := func(t *target, round int) error {
		if err := dial(t); err != nil {
			return err
		}
		h := newHist()
		late, err := t.loop.run(per, rate, func(i int) []byte { return t.request(round, i) }, h)
		if err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
		t.all.Merge(h)
		t.p99s = append(t.p99s, strconv.FormatInt(h.ValueAtQuantile(99), 10))
		t.late += late
		return nil
	}
	// New users' rounds come last: the exposures they store (and merge,
	// and fsync) go on after each round, and would weigh on the others'.
	for r := range openLoopRounds {
		for _, t := range targets[:len(targets)-1] {
			if err := round(t, r); err != nil {
				return err
			}
		}
	}
	for r := range openLoopRounds {
		if err := round(targets[len(targets)-1], r); err != nil {
			return err
		}
	}
	for _, t := range targets {
		fmt.Printf("%s, open loop at %d/s from one polling thread over 64 connections, %d rounds of %v in turns: p50 %dµs, p99 %dµs (rounds: %s), p99.9 %dµs; %.1f%% of requests written over 20µs late\n",
			t.name, rate, openLoopRounds, (d / openLoopRounds).Round(time.Millisecond), t.all.ValueAtQuantile(50), t.all.ValueAtQuantile(99),
			strings.Join(t.p99s, ", "), t.all.ValueAtQuantile(99.9), 100*float64(t.late)/float64(openLoopRounds*per))
	}
	return nil
}
