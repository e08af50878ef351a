package resp

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Options say which server to use and how.
type Options struct {
	// Addr is the server's host:port.
	Addr string
	// Username and Password are sent with AUTH on each new connection when
	// either is set; they appear in no error.
	Username, Password string
	// DB is selected on each new connection when not 0.
	DB int
	// PoolSize bounds the connections in use at once; callers beyond it
	// wait. 0 means 10 per GOMAXPROCS.
	PoolSize int
	// DialTimeout bounds dialing and the AUTH and SELECT that follow;
	// 0 means 5 s.
	DialTimeout time.Duration
	// IOTimeout bounds each exchange (writing the commands, reading their
	// replies) when ctx does not end sooner, so that a server that stops
	// answering fails calls whose ctx has no deadline; 0 means 3 s.
	IOTimeout time.Duration
	// MaxRetries is how often a call is sent again after an error that
	// retrying may cure (see Retryable), on a new connection. Leave it 0
	// unless every command sent is safe to apply twice: a call that failed
	// while reading its reply may have run.
	MaxRetries int
}

// Defaults as go-redis has them, whose place this client takes.
const (
	defaultDialTimeout = 5 * time.Second
	defaultIOTimeout   = 3 * time.Second
	// maxIdleTime drops pooled connections unused for long: servers and
	// proxies close idle connections, and a fresh dial is cheaper than a
	// failed call.
	maxIdleTime = 30 * time.Minute
	minBackoff  = 8 * time.Millisecond
	maxBackoff  = 512 * time.Millisecond
	bufferSize  = 16 << 10
)

// ErrClosed is returned by calls on a closed Client.
var ErrClosed = errors.New("redis: client closed")

var errEmptyCommand = errors.New("redis: empty command")

// Client is a pool of connections to one server, safe for concurrent use.
type Client struct {
	opts  Options
	slots chan struct{} // one token per connection in use

	mu     sync.Mutex
	idle   []*conn // most recently used last
	closed bool
}

// New makes a client; it dials when a call needs a connection.
func New(opts Options) *Client {
	if opts.PoolSize <= 0 {
		opts.PoolSize = 10 * runtime.GOMAXPROCS(0)
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = defaultDialTimeout
	}
	if opts.IOTimeout <= 0 {
		opts.IOTimeout = defaultIOTimeout
	}
	return &Client{opts: opts, slots: make(chan struct{}, opts.PoolSize)}
}

// Do sends one command and returns its reply; an error reply is returned
// as the error.
func (c *Client) Do(ctx context.Context, args ...string) (any, error) {
	replies, err := c.Pipeline(ctx, args)
	if err != nil {
		return nil, err
	}
	return replies[0], nil
}

// Pipeline sends the commands in one write and reads their replies, in
// order. The error is the first failed command's (an Error; the replies
// are returned too) or what broke the exchange (no replies).
func (c *Client) Pipeline(ctx context.Context, cmds ...[]string) ([]any, error) {
	return c.withRetries(ctx, func(fresh bool) ([]any, error) {
		replies, err := c.exchange(ctx, fresh, cmds)
		if err != nil {
			return nil, err
		}
		return replies, firstError(replies)
	})
}

// Tx sends the commands between MULTI and EXEC in one write, so that the
// server applies all of them or, when it refuses one while queuing, none.
// It returns their replies and errors as Pipeline does.
func (c *Client) Tx(ctx context.Context, cmds ...[]string) ([]any, error) {
	all := make([][]string, 0, len(cmds)+2)
	all = append(append(append(all, []string{"MULTI"}), cmds...), []string{"EXEC"})
	return c.withRetries(ctx, func(fresh bool) ([]any, error) {
		replies, err := c.exchange(ctx, fresh, all)
		if err != nil {
			return nil, err
		}
		// A command refused while queuing says why; EXEC then only says
		// EXECABORT.
		if err := firstError(replies); err != nil {
			return nil, err
		}
		results, ok := replies[len(replies)-1].([]any)
		if !ok || len(results) != len(cmds) {
			return nil, fmt.Errorf("redis: EXEC answered %T, want %d replies", replies[len(replies)-1], len(cmds))
		}
		return results, firstError(results)
	})
}

func firstError(replies []any) error {
	for _, r := range replies {
		if e, ok := r.(Error); ok {
			return e
		}
	}
	return nil
}

// withRetries runs try, and again on a new connection after an error
// that Retryable accepts, up to MaxRetries times, with jittered
// exponential backoff (8 ms to 512 ms, as go-redis).
func (c *Client) withRetries(ctx context.Context, try func(fresh bool) ([]any, error)) ([]any, error) {
	for attempt := 0; ; attempt++ {
		replies, err := try(attempt > 0)
		if err == nil || attempt == c.opts.MaxRetries || !Retryable(err) {
			return replies, err
		}
		t := time.NewTimer(backoff(attempt + 1))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		}
	}
}

func backoff(attempt int) time.Duration {
	d := minBackoff << attempt
	d = minBackoff + rand.N(d)
	return min(d, maxBackoff)
}

// Retryable reports whether sending a call again may succeed: the
// connection broke (the server restarted, or closed an idle connection)
// or timed out without ctx ending, or the server says it is briefly
// unable (loading its data, a replica, a failover, too many clients).
// These are the errors go-redis retries, plus a reset or broken pipe:
// go-redis peeks at a pooled connection before using it and so rarely
// meets one, this client finds out by using it.
func Retryable(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var e Error
	if errors.As(err, &e) {
		for _, p := range []string{"LOADING ", "READONLY ", "MASTERDOWN ", "TRYAGAIN ", "CLUSTERDOWN ", "ERR max number of clients reached"} {
			if strings.HasPrefix(string(e), p) {
				return true
			}
		}
		return false
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// Close closes the idle connections now and those in use when their
// calls end; later calls fail with ErrClosed.
func (c *Client) Close() error {
	c.mu.Lock()
	idle := c.idle
	c.idle, c.closed = nil, true
	c.mu.Unlock()
	for _, cn := range idle {
		_ = cn.nc.Close()
	}
	return nil
}

// exchange sends cmds on a pooled connection (a new one when fresh) and
// reads their replies. A connection whose exchange failed is closed: it
// may hold half a reply, or the server may be gone.
func (c *Client) exchange(ctx context.Context, fresh bool, cmds [][]string) ([]any, error) {
	cn, err := c.get(ctx, fresh)
	if err != nil {
		return nil, err
	}
	replies, err := cn.exchange(ctx, c.opts.IOTimeout, cmds)
	c.put(cn, err == nil)
	return replies, err
}

// get takes a pool slot, waiting while all are in use, and returns an
// idle connection or dials one.
func (c *Client) get(ctx context.Context, fresh bool) (*conn, error) {
	select {
	case c.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		<-c.slots
		return nil, ErrClosed
	}
	var stale []*conn
	var cn *conn
	for !fresh && cn == nil && len(c.idle) > 0 {
		last := c.idle[len(c.idle)-1]
		c.idle = c.idle[:len(c.idle)-1]
		if time.Since(last.usedAt) > maxIdleTime {
			stale = append(stale, last)
		} else {
			cn = last
		}
	}
	c.mu.Unlock()
	for _, s := range stale {
		_ = s.nc.Close()
	}
	if cn != nil {
		return cn, nil
	}
	cn, err := c.dial(ctx)
	if err != nil {
		<-c.slots
		return nil, err
	}
	return cn, nil
}

// put returns a connection to the pool, or closes it when it is broken,
// the pool is closed or already holds enough idle connections.
func (c *Client) put(cn *conn, healthy bool) {
	c.mu.Lock()
	keep := healthy && !c.closed && len(c.idle) < c.opts.PoolSize
	if keep {
		cn.usedAt = time.Now()
		c.idle = append(c.idle, cn)
	}
	c.mu.Unlock()
	if !keep {
		_ = cn.nc.Close()
	}
	<-c.slots
}

// dial connects and authenticates. Errors name the step, never the
// credentials.
func (c *Client) dial(ctx context.Context) (*conn, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.DialTimeout)
	defer cancel()
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", c.opts.Addr)
	if err != nil {
		return nil, err
	}
	cn := &conn{nc: nc, r: bufio.NewReaderSize(nc, bufferSize), w: bufio.NewWriterSize(nc, bufferSize)}
	err = c.setup(ctx, cn, false)
	if HasErrorPrefix(err, "ERR wrong number of arguments") && c.opts.Username == "" {
		// Redis before 6 knows no users: AUTH takes the password alone.
		err = c.setup(ctx, cn, true)
	}
	if err != nil {
		_ = nc.Close()
		return nil, err
	}
	return cn, nil
}

// setup authenticates and selects the database, in one round trip. A
// password alone is sent for the user "default", as go-redis' HELLO
// does: a server without a password then accepts any, where the legacy
// AUTH <password> would fail; legacy sends that, for servers before 6.
func (c *Client) setup(ctx context.Context, cn *conn, legacy bool) error {
	var cmds [][]string
	var steps []string // what each command does, for errors
	switch {
	case legacy && c.opts.Password != "":
		cmds, steps = append(cmds, []string{"AUTH", c.opts.Password}), append(steps, "AUTH")
	case c.opts.Username != "" || c.opts.Password != "":
		user := cmp.Or(c.opts.Username, "default")
		cmds, steps = append(cmds, []string{"AUTH", user, c.opts.Password}), append(steps, "AUTH")
	}
	if c.opts.DB != 0 {
		db := strconv.Itoa(c.opts.DB)
		cmds, steps = append(cmds, []string{"SELECT", db}), append(steps, "SELECT "+db)
	}
	if len(cmds) == 0 {
		return nil
	}
	replies, err := cn.exchange(ctx, c.opts.DialTimeout, cmds)
	if err != nil {
		return err
	}
	for i, r := range replies {
		if e, ok := r.(Error); ok {
			return fmt.Errorf("%s: %w", steps[i], e)
		}
	}
	return nil
}

// conn is one connection with its buffers.
type conn struct {
	nc     net.Conn
	r      *bufio.Reader
	w      *bufio.Writer
	usedAt time.Time // when last returned to the pool
}

// longAgo is a deadline in the past: setting it wakes a blocked read or
// write at once.
var longAgo = time.Unix(1, 0)

// exchange writes cmds, flushes and reads one reply per command. The
// connection's deadline is ctx's or timeout from now, whichever is
// sooner; when ctx is cancelled the deadline is moved to the past, which
// unblocks a read or write, and the error is ctx's.
func (cn *conn) exchange(ctx context.Context, timeout time.Duration, cmds [][]string) (replies []any, err error) {
	deadline := time.Now().Add(timeout)
	ctxDeadline, bounded := ctx.Deadline()
	bounded = bounded && ctxDeadline.Before(deadline)
	if bounded {
		deadline = ctxDeadline
	}
	if err := cn.nc.SetDeadline(deadline); err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { _ = cn.nc.SetDeadline(longAgo) })
	defer func() {
		var ne net.Error
		switch {
		case !stop():
			// The deadline is (being) moved to the past: whatever the
			// outcome, the connection cannot serve the next call.
			if err == nil {
				replies, err = nil, ctx.Err()
			} else {
				err = fmt.Errorf("%w (%v)", ctx.Err(), err)
			}
		case err != nil && ctx.Err() != nil:
			err = fmt.Errorf("%w (%v)", ctx.Err(), err)
		case err != nil && bounded && errors.As(err, &ne) && ne.Timeout():
			// ctx's deadline passed a moment before ctx says so.
			err = fmt.Errorf("%w (%v)", context.DeadlineExceeded, err)
		}
	}()

	for _, cmd := range cmds {
		if len(cmd) == 0 {
			return nil, errEmptyCommand // Redis would answer nothing
		}
		writeCommand(cn.w, cmd)
	}
	if err := cn.w.Flush(); err != nil {
		return nil, err
	}
	replies = make([]any, len(cmds))
	for i := range replies {
		if replies[i], err = ReadReply(cn.r); err != nil {
			return nil, err
		}
	}
	return replies, nil
}
