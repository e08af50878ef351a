package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"runtime"
	"runtime/debug"
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

// pollingLoop sends requests at a fixed rate over 64 connections from one
// thread that never waits in the kernel: it spins until each request is
// due, writes it on the connection with the fewest in flight, and polls
// every socket (epoll with a zero timeout) for answers, each timed from
// when its request was due. The harness's floor, whose threads wait in
// the kernel between events as a frontend's do, measures its own wake-ups
// too; this one leaves the kernel's loopback and the service, and counts
// its own stalls (pollingStats).
type pollingLoop struct {
	conns []*pollingConn
	byFD  map[int32]*pollingConn
	epoll int
	// answer returns the length of the first whole answer in b, or 0 when
	// b holds none yet; an error for an answer that is not a success.
	answer func(b []byte) (int, error)
	// next is where the search for the least busy connection starts, so
	// that ties go round every connection.
	next int
}

// pollingConns is how many connections a polling loop keeps.
const pollingConns = 64

// newPollingLoop connects to addr and sends prime on every connection,
// untimed, reading its answer: the service closes a connection that sends
// no request within its ReadHeaderTimeout (10s).
func newPollingLoop(addr string, answer func([]byte) (int, error), prime []byte) (*pollingLoop, error) {
	ta, err := net.ResolveTCPAddr("tcp4", addr)
	if err != nil {
		return nil, err
	}
	sa := &unix.SockaddrInet4{Port: ta.Port}
	copy(sa.Addr[:], ta.IP.To4())
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	l := &pollingLoop{epoll: ep, byFD: map[int32]*pollingConn{}, answer: answer}
	for range pollingConns {
		if err := l.connect(sa); err != nil {
			l.close()
			return nil, fmt.Errorf("%s: %w", addr, err)
		}
	}
	primes := make([][]byte, pollingConns)
	for i := range primes {
		primes[i] = prime
	}
	if _, err := l.run(primes, 20000, nil); err != nil {
		l.close()
		return nil, fmt.Errorf("%s: first request on each connection: %w", addr, err)
	}
	return l, nil
}

func (l *pollingLoop) connect(sa *unix.SockaddrInet4) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	c := &pollingConn{fd: fd}
	l.conns = append(l.conns, c)
	if err := unix.Connect(fd, sa); err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1); err != nil {
		return fmt.Errorf("setsockopt TCP_NODELAY: %w", err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		return fmt.Errorf("set non-blocking: %w", err)
	}
	if err := unix.EpollCtl(l.epoll, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}); err != nil {
		return fmt.Errorf("epoll_ctl: %w", err)
	}
	l.byFD[int32(fd)] = c
	return nil
}

func (l *pollingLoop) close() {
	for _, c := range l.conns {
		_ = unix.Close(c.fd)
	}
	_ = unix.Close(l.epoll)
}

// pollingStats are what a polling loop saw of itself: requests written
// more than 20µs after they were due, passes of its loop that took over
// 100µs (the thread held up: a preemption, an interrupt, a slow system
// call) and the longest, and answers too late for the histogram (10s).
type pollingStats struct {
	late, stalls, dropped int
	longest               time.Duration
}

func (s *pollingStats) add(o pollingStats) {
	s.late, s.stalls, s.dropped = s.late+o.late, s.stalls+o.stalls, s.dropped+o.dropped
	s.longest = max(s.longest, o.longest)
}

// run sends requests at rate and records each answer's time from when it
// was due in h (when h is not nil). It fails when an answer is not a
// success, or the answers are not all in within 10s of the last request's
// due time. The collector is off meanwhile, so that it does not stop this
// thread (requests are built before).
func (l *pollingLoop) run(requests [][]byte, rate int, h *hdrhistogram.Histogram) (pollingStats, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	var st pollingStats
	n := len(requests)
	events := make([]unix.EpollEvent, len(l.conns))
	buf := make([]byte, 64<<10)
	interval := time.Second / time.Duration(rate)
	deadline := time.Duration(n)*interval + 10*time.Second
	start := time.Now()
	last := start
	for sent, done := 0, 0; done < n; {
		now := time.Now()
		if pass := now.Sub(last); pass > 100*time.Microsecond {
			st.stalls++
			st.longest = max(st.longest, pass)
		}
		last = now
		since := now.Sub(start)
		if since > deadline {
			return st, fmt.Errorf("%d of %d requests sent, %d answered, 10s after the last was due", sent, n, done)
		}
		if due := time.Duration(sent) * interval; sent < n && since >= due {
			if since-due > 20*time.Microsecond {
				st.late++
			}
			c := l.conns[l.next]
			for k := range l.conns {
				if x := l.conns[(l.next+k)%len(l.conns)]; len(x.pending) < len(c.pending) {
					c = x
				}
			}
			l.next = (l.next + 1) % len(l.conns)
			if err := writeAll(c.fd, requests[sent], start.Add(deadline)); err != nil {
				return st, fmt.Errorf("write: %w", err)
			}
			c.pending = append(c.pending, due)
			sent++
		}
		k, err := unix.EpollWait(l.epoll, events, 0)
		if err != nil && err != unix.EINTR {
			return st, fmt.Errorf("epoll_wait: %w", err)
		}
		for _, e := range events[:max(k, 0)] {
			c := l.byFD[e.Fd]
			m, err := unix.Read(c.fd, buf)
			if err == unix.EAGAIN {
				continue
			}
			if err != nil {
				return st, fmt.Errorf("read: %w", err)
			}
			if m == 0 {
				return st, fmt.Errorf("the service closed a connection with %d answers pending", len(c.pending))
			}
			c.read = append(c.read, buf[:m]...)
			for {
				size, err := l.answer(c.read)
				if err != nil {
					return st, err
				}
				if size == 0 {
					break
				}
				if len(c.pending) == 0 {
					return st, fmt.Errorf("an answer to no request: %q", c.read[:size])
				}
				if h != nil && h.RecordValue(time.Since(start.Add(c.pending[0])).Microseconds()) != nil {
					st.dropped++
				}
				c.read, c.pending = c.read[size:], c.pending[1:]
				done++
			}
		}
	}
	return st, nil
}

// writeAll writes b to a non-blocking socket, polling while its buffer is
// full, until deadline.
func writeAll(fd int, b []byte, deadline time.Time) error {
	for len(b) > 0 {
		m, err := unix.Write(fd, b)
		if err == unix.EAGAIN {
			if time.Now().After(deadline) {
				return errors.New("the socket's buffer stayed full")
			}
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
// Content-Length (net/http sets it on answers this small).
func httpAnswer(b []byte) (int, error) {
	end := bytes.Index(b, []byte("\r\n\r\n"))
	if end < 0 {
		return 0, nil
	}
	head := b[:end+2]
	if !bytes.HasPrefix(head, []byte("HTTP/1.1 200 ")) {
		return 0, fmt.Errorf("answer: %q", b[:min(len(b), end+4+512)])
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

// pollingLoops measures through polling loops at rate, each round on
// connections of its own: in rounds taken in turns, the 64-byte echo of
// the service's process (when echo is given), GET /healthz and POST
// /v1/lookup of returning users; or, with newUsers, POST /v1/lookup of new
// users in rounds of their own, whose exposures the service goes on
// storing after each round.
func pollingLoops(httpAddr, echo string, rate int, d time.Duration, newUsers bool) error {
	lookup := func(user string) []byte {
		body := `{"name":"bench/shop","user":"` + user + `"}`
		return []byte("POST /v1/lookup HTTP/1.1\r\nHost: abn\r\nContent-Type: application/json\r\nContent-Length: " +
			strconv.Itoa(len(body)) + "\r\n\r\n" + body)
	}
	healthz := []byte("GET /healthz HTTP/1.1\r\nHost: abn\r\n\r\n")
	echoed := bytes.Repeat([]byte{'e'}, 64)
	echoAnswer := func(b []byte) (int, error) { return min(len(b)/64, 1) * 64, nil }
	type target struct {
		name, addr string
		answer     func([]byte) (int, error)
		prime      []byte
		request    func(round, i int) []byte
		all        *hdrhistogram.Histogram
		p99s       []string
		stats      pollingStats
	}
	var targets []*target
	if newUsers {
		targets = []*target{{name: "Lookup over HTTP/JSON, new users", addr: httpAddr, answer: httpAnswer, prime: healthz,
			request: func(round, i int) []byte {
				return lookup(userID(fmt.Sprintf("polling-new-%s-%d", runID, round), uint64(i)))
			}}}
	} else {
		returning := &target{name: "Lookup over HTTP/JSON, returning users", addr: httpAddr, answer: httpAnswer, prime: healthz,
			request: func(_, i int) []byte { return lookup(userID("polling-returning-"+runID, uint64(i%returningUsers))) }}
		targets = []*target{
			{name: "GET /healthz (an answer that does nothing)", addr: httpAddr, answer: httpAnswer, prime: healthz,
				request: func(int, int) []byte { return healthz }},
			returning,
		}
		if echo != "" {
			targets = append([]*target{{name: "The service process's own echo (a 64-byte round trip: the floor)", addr: echo,
				answer: echoAnswer, prime: echoed, request: func(int, int) []byte { return echoed }}}, targets...)
		}
		// Twice over, as warmUp does: the service's set of recent users
		// may be emptied during the first pass.
		warm := make([][]byte, 2*returningUsers)
		for i := range warm {
			warm[i] = returning.request(0, i)
		}
		l, err := newPollingLoop(httpAddr, httpAnswer, healthz)
		if err != nil {
			return fmt.Errorf("%s, warm-up: %w", returning.name, err)
		}
		_, err = l.run(warm, rate, nil)
		l.close()
		if err != nil {
			return fmt.Errorf("%s, warm-up: %w", returning.name, err)
		}
	}
	per := int(int64(rate) * int64(d/openLoopRounds) / int64(time.Second))
	for r := range openLoopRounds {
		for _, t := range targets {
			requests := make([][]byte, per)
			for i := range requests {
				requests[i] = t.request(r, i)
			}
			l, err := newPollingLoop(t.addr, t.answer, t.prime)
			if err != nil {
				return fmt.Errorf("%s: %w", t.name, err)
			}
			h := newHist()
			st, err := l.run(requests, rate, h)
			l.close()
			if err != nil {
				return fmt.Errorf("%s: %w", t.name, err)
			}
			if t.all == nil {
				t.all = newHist()
			}
			t.all.Merge(h)
			t.p99s = append(t.p99s, strconv.FormatInt(h.ValueAtQuantile(99), 10))
			t.stats.add(st)
		}
	}
	how := "in turns"
	if newUsers {
		how = "one after another"
	}
	for _, t := range targets {
		dropped := ""
		if t.stats.dropped > 0 {
			dropped = fmt.Sprintf("; %d answers over 10s not counted", t.stats.dropped)
		}
		fmt.Printf("%s, open loop at %d/s from one polling thread over %d connections, %d rounds of %v %s: p50 %dµs, p99 %dµs (rounds: %s), p99.9 %dµs; %.1f%% of requests written over 20µs late, %d passes of the client's loop over 100µs (longest %dµs)%s\n",
			t.name, rate, pollingConns, openLoopRounds, (d / openLoopRounds).Round(time.Millisecond), how, t.all.ValueAtQuantile(50), t.all.ValueAtQuantile(99),
			strings.Join(t.p99s, ", "), t.all.ValueAtQuantile(99.9), 100*float64(t.stats.late)/float64(openLoopRounds*per), t.stats.stalls,
			t.stats.longest.Microseconds(), dropped)
	}
	return nil
}
