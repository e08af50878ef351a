package main

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"net"
	"runtime"
	"runtime/debug"
	"slices"
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
	wire    wire
	pending []time.Duration
	read    []byte
}

// wire is what a polling loop speaks on each of its connections.
type wire interface {
	// greeting is written first on a new connection (nil for nothing).
	greeting() []byte
	// next reads the first whole answer or frame in b: its length (0 when
	// b holds none yet), how many requests it answers, and what to write
	// back at once (HTTP/2's acknowledgements); an error for an answer
	// that is not a success, or a frame that ends the connection.
	next(b []byte) (size, answers int, reply []byte, err error)
	// take reports whether request may be written now (HTTP/2's flow
	// control), and if so counts it as written.
	take(request []byte) bool
}

// oneAnswerAtATime is the wire of HTTP/1.1 and of the echo: each answer
// stands alone, and answers the oldest request in flight.
type oneAnswerAtATime func(b []byte) (int, error)

func (oneAnswerAtATime) greeting() []byte { return nil }
func (oneAnswerAtATime) take([]byte) bool { return true }
func (f oneAnswerAtATime) next(b []byte) (int, int, []byte, error) {
	size, err := f(b)
	return size, min(size, 1), nil, err
}

// pollingLoop sends requests at a fixed rate over its connections from one
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
	// next is where the search for the least busy connection starts, so
	// that ties go round every connection.
	next int
}

// newPollingLoop opens conns connections to addr, each speaking the wire
// newWire returns, and sends prime on each, untimed, reading its answer:
// the service closes an HTTP connection that sends no request within its
// ReadHeaderTimeout (10s), and on a gRPC stream it leaves out of the timed
// run what opening the stream costs (the SETTINGS exchange, the service's
// response HEADERS, the first window update).
func newPollingLoop(addr string, conns int, newWire func() wire, prime []byte) (*pollingLoop, error) {
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
	l := &pollingLoop{epoll: ep, byFD: map[int32]*pollingConn{}}
	for range conns {
		if err := l.connect(sa, newWire()); err != nil {
			l.close()
			return nil, fmt.Errorf("%s: %w", addr, err)
		}
	}
	primes := make([][]byte, conns)
	for i := range primes {
		primes[i] = prime
	}
	if _, err := l.run(primes, 20000, nil); err != nil {
		l.close()
		return nil, fmt.Errorf("%s: first request on each connection: %w", addr, err)
	}
	return l, nil
}

func (l *pollingLoop) connect(sa *unix.SockaddrInet4, w wire) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	c := &pollingConn{fd: fd, wire: w}
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
	if g := w.greeting(); g != nil {
		if err := writeAll(fd, g, time.Now().Add(10*time.Second)); err != nil {
			return fmt.Errorf("write of the greeting: %w", err)
		}
	}
	return nil
}

func (l *pollingLoop) close() {
	for _, c := range l.conns {
		_ = unix.Close(c.fd)
	}
	_ = unix.Close(l.epoll)
}

// pollingStats are what a polling loop saw of itself: requests written
// more than 20µs after they were due (held up by the loop, or by HTTP/2's
// flow control), passes of its loop that took over 100µs (the thread held
// up: a preemption, an interrupt, a slow system call) and the longest, and
// answers too late for the histogram (10s).
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
	held := false // the last request due waits for a window (HTTP/2)
	for sent, done := 0, 0; done < n; {
		now := time.Now()
		if pass := now.Sub(last); pass > 100*time.Microsecond {
			st.stalls++
			st.longest = max(st.longest, pass)
		}
		last = now
		since := now.Sub(start)
		if since > deadline {
			why := ""
			if held {
				why = " (the service's HTTP/2 window stayed closed)"
			}
			return st, fmt.Errorf("%d of %d requests sent, %d answered, 10s after the last was due%s", sent, n, done, why)
		}
		if due := time.Duration(sent) * interval; sent < n && since >= due {
			c := l.conns[l.next]
			for k := range l.conns {
				if x := l.conns[(l.next+k)%len(l.conns)]; len(x.pending) < len(c.pending) {
					c = x
				}
			}
			held = !c.wire.take(requests[sent])
			if !held {
				if since-due > 20*time.Microsecond {
					st.late++
				}
				l.next = (l.next + 1) % len(l.conns)
				if err := writeAll(c.fd, requests[sent], start.Add(deadline)); err != nil {
					return st, fmt.Errorf("write of request %d: %w", sent, err)
				}
				c.pending = append(c.pending, due)
				sent++
			}
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
			// What was read, and the due times in flight, are kept in one
			// buffer each, moved down as they are used: the loop allocates
			// little once it runs (the collector is off).
			read := 0
			for {
				size, answers, reply, err := c.wire.next(c.read[read:])
				if err != nil {
					return st, err
				}
				if size == 0 {
					break
				}
				if answers > len(c.pending) {
					return st, fmt.Errorf("%d answers to %d requests: %q", answers, len(c.pending), c.read[read:read+size])
				}
				took := time.Since(start)
				for _, due := range c.pending[:answers] {
					if h != nil && h.RecordValue((took-due).Microseconds()) != nil {
						st.dropped++
					}
				}
				read += size
				c.pending = c.pending[:copy(c.pending, c.pending[answers:])]
				done += answers
				if reply != nil {
					if err := writeAll(c.fd, reply, start.Add(deadline)); err != nil {
						return st, fmt.Errorf("write of an acknowledgement: %w", err)
					}
				}
			}
			c.read = c.read[:copy(c.read, c.read[read:])]
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

// pollingConns is how many connections a polling loop over HTTP/1.1 or
// the echo keeps; over the Lookups stream it keeps one, as the SDK does.
const pollingConns = 64

// pollingLoops measures through polling loops at rate, each round on
// connections of its own: in rounds taken in turns, the 64-byte echo of
// the service's process (when echo is given), GET /healthz, and Lookups of
// returning users by POST /v1/lookup and on the SDK's Lookups stream (at
// target); or, with newUsers, Lookups of new users by both (in turns too),
// whose exposures the service goes on storing after each round. Only the
// rounds whose names contain only are taken (all when it is empty). With
// newShare, one in round(1/newShare) of the returning users' Lookups is a
// new user's. It returns how many kinds of round were taken.
func pollingLoops(target, httpAddr, echo string, rate int, d time.Duration, newUsers bool, only string, newShare float64) (int, error) {
	lookup := func(user string) []byte {
		body := `{"name":"bench/shop","user":"` + user + `"}`
		return []byte("POST /v1/lookup HTTP/1.1\r\nHost: abn\r\nContent-Type: application/json\r\nContent-Length: " +
			strconv.Itoa(len(body)) + "\r\n\r\n" + body)
	}
	healthz := []byte("GET /healthz HTTP/1.1\r\nHost: abn\r\n\r\n")
	echoed := bytes.Repeat([]byte{'e'}, 64)
	overHTTP := func() wire { return oneAnswerAtATime(httpAnswer) }
	echoes := func() wire {
		return oneAnswerAtATime(func(b []byte) (int, error) { return min(len(b)/64, 1) * 64, nil })
	}
	returningUser := func(i int) string { return userID("polling-returning-"+runID, uint64(i%returningUsers)) }
	// The two ways to look a user up, each with new or returning users.
	lookups := []struct {
		name, via, addr string
		conns           int
		wire            func() wire
		prime           []byte
		request         func(user string) []byte
	}{
		{"Lookup over HTTP/JSON", "http", httpAddr, pollingConns, overHTTP, healthz, lookup},
		{"Lookup on the Lookups stream (the SDK's), one a message", "stream", target, 1,
			func() wire { return newLookupsStream(target) }, lookupsRequest("bench/shop", returningUser(0)),
			func(user string) []byte { return lookupsRequest("bench/shop", user) }},
	}
	type contender struct {
		name, addr string
		conns      int
		wire       func() wire
		prime      []byte
		request    func(round, i int) []byte
		all        *hdrhistogram.Histogram
		p99s       []string
		stats      pollingStats
	}
	var contenders []*contender
	everyNew, mixed := 0, ""
	if newShare > 0 {
		everyNew = int(math.Round(1 / newShare))
		mixed = fmt.Sprintf(" (one in %d a new user)", everyNew)
	}
	for _, lu := range lookups {
		c := &contender{name: lu.name + ", returning users" + mixed, addr: lu.addr, conns: lu.conns, wire: lu.wire, prime: lu.prime,
			request: func(round, i int) []byte {
				if everyNew > 0 && i%everyNew == everyNew-1 {
					return lu.request(userID(fmt.Sprintf("polling-mixed-%s-%s-%d", lu.via, runID, round), uint64(i)))
				}
				return lu.request(returningUser(i))
			}}
		if newUsers {
			c.name = lu.name + ", new users"
			c.request = func(round, i int) []byte {
				return lu.request(userID(fmt.Sprintf("polling-new-%s-%s-%d", lu.via, runID, round), uint64(i)))
			}
		}
		contenders = append(contenders, c)
	}
	if !newUsers {
		contenders = append([]*contender{{name: "GET /healthz (an answer that does nothing)", addr: httpAddr, conns: pollingConns,
			wire: overHTTP, prime: healthz, request: func(int, int) []byte { return healthz }}}, contenders...)
		if echo != "" {
			contenders = append([]*contender{{name: "The service process's own echo (a 64-byte round trip: the floor)", addr: echo,
				conns: pollingConns, wire: echoes, prime: echoed, request: func(int, int) []byte { return echoed }}}, contenders...)
		}
	}
	contenders = slices.DeleteFunc(contenders, func(c *contender) bool { return !strings.Contains(c.name, only) })
	if len(contenders) == 0 {
		return 0, nil
	}
	if slices.ContainsFunc(contenders, func(c *contender) bool { return strings.Contains(c.name, ", returning users") }) {
		// Twice over, as warmUp does: the service's set of recent users
		// may be emptied during the first pass.
		warm := make([][]byte, 2*returningUsers)
		for i := range warm {
			warm[i] = lookups[0].request(returningUser(i)) // over HTTP; the stream's users are the same
		}
		l, err := newPollingLoop(httpAddr, pollingConns, overHTTP, healthz)
		if err != nil {
			return 0, fmt.Errorf("%s, warm-up: %w", lookups[0].name, err)
		}
		_, err = l.run(warm, rate, nil)
		l.close()
		if err != nil {
			return 0, fmt.Errorf("%s, warm-up: %w", lookups[0].name, err)
		}
	}
	per := int(int64(rate) * int64(d/openLoopRounds) / int64(time.Second))
	for r := range openLoopRounds {
		for _, t := range contenders {
			requests := make([][]byte, per)
			for i := range requests {
				requests[i] = t.request(r, i)
			}
			l, err := newPollingLoop(t.addr, t.conns, t.wire, t.prime)
			if err != nil {
				return 0, fmt.Errorf("%s: %w", t.name, err)
			}
			h := newHist()
			st, err := l.run(requests, rate, h)
			l.close()
			if err != nil {
				return 0, fmt.Errorf("%s: %w", t.name, err)
			}
			if t.all == nil {
				t.all = newHist()
			}
			t.all.Merge(h)
			t.p99s = append(t.p99s, strconv.FormatInt(h.ValueAtQuantile(99), 10))
			t.stats.add(st)
		}
	}
	for _, t := range contenders {
		dropped := ""
		if t.stats.dropped > 0 {
			dropped = fmt.Sprintf("; %d answers over 10s not counted", t.stats.dropped)
		}
		conns := fmt.Sprintf("%d connections", t.conns)
		if t.conns == 1 {
			conns = "one connection"
		}
		fmt.Printf("%s, open loop at %d/s from one polling thread over %s, %d rounds of %v in turns: p50 %dµs, p99 %dµs (rounds: %s), p99.9 %dµs; %.1f%% of requests written over 20µs late, %d passes of the client's loop over 100µs (longest %dµs)%s\n",
			t.name, rate, conns, openLoopRounds, (d / openLoopRounds).Round(time.Millisecond), t.all.ValueAtQuantile(50), t.all.ValueAtQuantile(99),
			strings.Join(t.p99s, ", "), t.all.ValueAtQuantile(99.9), 100*float64(t.stats.late)/float64(openLoopRounds*per), t.stats.stalls,
			t.stats.longest.Microseconds(), dropped)
	}
	return len(contenders), nil
}
