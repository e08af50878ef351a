package resp

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iter8-tools/iter8/test/redistest"
)

func newClient(t *testing.T, opts Options) *Client {
	t.Helper()
	c := New(opts)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func do(t *testing.T, c *Client, args ...string) any {
	t.Helper()
	v, err := c.Do(context.Background(), args...)
	if err != nil {
		t.Fatalf("%s: %v", strings.Join(args, " "), err)
	}
	return v
}

// TestReplies: every kind of reply, from a real server.
func TestReplies(t *testing.T) {
	c := newClient(t, Options{Addr: redistest.Start(t).Addr()})
	for _, tc := range []struct {
		args []string
		want any
	}{
		{[]string{"PING"}, "PONG"},
		{[]string{"SET", "k", "a\r\nb"}, "OK"},
		{[]string{"GET", "k"}, "a\r\nb"},
		{[]string{"GET", "missing"}, nil},
		{[]string{"INCR", "n"}, int64(1)},
		{[]string{"EVAL", "return {1, {2, 'x'}, false, {}}", "0"}, []any{int64(1), []any{int64(2), "x"}, nil, []any{}}},
		{[]string{"BLPOP", "missing", "0.01"}, nil}, // a null array
	} {
		if got := do(t, c, tc.args...); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q = %#v, want %#v", tc.args, got, tc.want)
		}
	}
	_, err := c.Do(context.Background(), "EVALSHA", strings.Repeat("0", 40), "0")
	if !HasErrorPrefix(err, "NOSCRIPT") {
		t.Errorf("EVALSHA of no script: %v, want a NOSCRIPT Error", err)
	}
}

// TestPipeline: replies come in the order of the commands; the error is
// the first failed command's, the others' replies are still there, and
// the connection stays in use.
func TestPipeline(t *testing.T) {
	c := newClient(t, Options{Addr: redistest.Start(t).Addr()})
	id := do(t, c, "CLIENT", "ID")
	var cmds [][]string
	for i := range 200 {
		switch i {
		case 50:
			cmds = append(cmds, []string{"INCR", "text"}) // not an integer
		case 120:
			cmds = append(cmds, []string{"NOSUCHCOMMAND"})
		default:
			cmds = append(cmds, []string{"ECHO", fmt.Sprint(i)})
		}
	}
	do(t, c, "SET", "text", "x")
	replies, err := c.Pipeline(context.Background(), cmds...)
	if !HasErrorPrefix(err, "ERR value is not an integer") {
		t.Errorf("Pipeline error = %v, want the INCR's", err)
	}
	for i, r := range replies {
		switch i {
		case 50, 120:
			if _, ok := r.(Error); !ok {
				t.Errorf("reply %d = %#v, want an Error", i, r)
			}
		default:
			if r != fmt.Sprint(i) {
				t.Errorf("reply %d = %#v", i, r)
			}
		}
	}
	if again := do(t, c, "CLIENT", "ID"); again != id {
		t.Errorf("after error replies the client uses connection %v, want %v still", again, id)
	}
}

// TestTx: MULTI/EXEC applies all commands, or none when one is refused
// while queuing.
func TestTx(t *testing.T) {
	ctx := context.Background()
	c := newClient(t, Options{Addr: redistest.Start(t).Addr()})
	replies, err := c.Tx(ctx, []string{"SET", "a", "1"}, []string{"INCR", "a"}, []string{"GET", "a"})
	if err != nil || !reflect.DeepEqual(replies, []any{"OK", int64(2), "2"}) {
		t.Errorf("Tx = %#v, %v", replies, err)
	}
	_, err = c.Tx(ctx, []string{"SET", "b", "1"}, []string{"SET", "b"})
	if !HasErrorPrefix(err, "ERR wrong number of arguments") {
		t.Errorf("Tx with a bad command = %v, want its error", err)
	}
	if v := do(t, c, "GET", "b"); v != nil {
		t.Errorf("after a refused Tx, b = %#v, want nothing", v)
	}
	// A command that fails while running leaves the others applied.
	replies, err = c.Tx(ctx, []string{"SET", "c", "x"}, []string{"INCR", "c"}, []string{"SET", "d", "1"})
	if !HasErrorPrefix(err, "ERR value is not an integer") || len(replies) != 3 || replies[2] != "OK" {
		t.Errorf("Tx with a failing command = %#v, %v", replies, err)
	}
}

// TestAuthAndSelect: AUTH (user and password, or password alone) and
// SELECT reach the server on each new connection; a wrong password fails
// without naming it.
func TestAuthAndSelect(t *testing.T) {
	ctx := context.Background()
	t.Run("user", func(t *testing.T) {
		srv := redistest.Start(t) // redistest pings without a password: users come after
		admin := newClient(t, Options{Addr: srv.Addr()})
		do(t, admin, "ACL", "SETUSER", "alice", "on", ">alice-pw", "~*", "&*", "+@all")
		c := newClient(t, Options{Addr: srv.Addr(), Username: "alice", Password: "alice-pw", DB: 3})
		if who := do(t, c, "ACL", "WHOAMI"); who != "alice" {
			t.Errorf("ACL WHOAMI = %v, want alice", who)
		}
		if info, _ := String(do(t, c, "CLIENT", "INFO")); !strings.Contains(info, " db=3 ") {
			t.Errorf("CLIENT INFO = %q, want db=3", info)
		}
		bad := newClient(t, Options{Addr: srv.Addr(), Username: "alice", Password: "wrong-pw"})
		_, err := bad.Do(ctx, "PING")
		if !HasErrorPrefix(err, "WRONGPASS") || strings.Contains(err.Error(), "wrong-pw") {
			t.Errorf("with a wrong password: %v; want WRONGPASS, without the password", err)
		}
	})
	t.Run("password", func(t *testing.T) {
		srv := redistest.Start(t)
		do(t, newClient(t, Options{Addr: srv.Addr()}), "CONFIG", "SET", "requirepass", "the-pw")
		c := newClient(t, Options{Addr: srv.Addr(), Password: "the-pw", DB: 5})
		do(t, c, "SET", "k", "in 5")
		c0 := newClient(t, Options{Addr: srv.Addr(), Password: "the-pw"})
		if v := do(t, c0, "GET", "k"); v != nil {
			t.Errorf("db 0 has k = %v, want it in db 5 only", v)
		}
		none := newClient(t, Options{Addr: srv.Addr()})
		if _, err := none.Do(ctx, "PING"); !HasErrorPrefix(err, "NOAUTH") {
			t.Errorf("without a password: %v, want NOAUTH", err)
		}
	})
	t.Run("no password needed", func(t *testing.T) {
		// As with go-redis, a password the server does not need is no error.
		c := newClient(t, Options{Addr: redistest.Start(t).Addr(), Password: "unneeded"})
		do(t, c, "PING")
	})
}

// fakeServer accepts connections on loopback and serves each with serve
// (given the connection and its number, from 1); it returns the address
// and a count of connections accepted.
func fakeServer(t *testing.T, serve func(nc net.Conn, r *bufio.Reader, n int)) (string, *atomic.Int32) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var accepted atomic.Int32
	var wg sync.WaitGroup
	t.Cleanup(func() { _ = lis.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			nc, err := lis.Accept()
			if err != nil {
				return
			}
			n := int(accepted.Add(1))
			wg.Go(func() {
				defer nc.Close()
				serve(nc, bufio.NewReader(nc), n)
			})
		}
	})
	return lis.Addr().String(), &accepted
}

// readCommand reads a command as the server does (it is an array).
func readCommand(r *bufio.Reader) ([]string, error) {
	v, err := ReadReply(r)
	if err != nil {
		return nil, err
	}
	return Strings(v)
}

// TestBrokenConnectionDiscarded: a connection that broke inside a reply,
// or sent a malformed one, is closed, and the next call dials anew.
func TestBrokenConnectionDiscarded(t *testing.T) {
	for _, tc := range []struct {
		name, first string
		closes      bool
		wantErr     func(error) bool
	}{
		{"cut inside a reply", "$10\r\nhal", true, func(err error) bool { return errors.Is(err, io.ErrUnexpectedEOF) }},
		{"malformed reply", "?\r\n", false, func(err error) bool { var pe *ProtocolError; return errors.As(err, &pe) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			closed := make(chan struct{})
			addr, accepted := fakeServer(t, func(nc net.Conn, r *bufio.Reader, n int) {
				for {
					if _, err := readCommand(r); err != nil {
						if n == 1 {
							close(closed) // the client closed connection 1
						}
						return
					}
					if n == 1 {
						_, _ = io.WriteString(nc, tc.first)
						if tc.closes {
							return
						}
						continue
					}
					_, _ = io.WriteString(nc, "+OK\r\n")
				}
			})
			c := newClient(t, Options{Addr: addr})
			if _, err := c.Do(context.Background(), "GET", "k"); !tc.wantErr(err) {
				t.Fatalf("first call: %v", err)
			}
			if v, err := c.Do(context.Background(), "GET", "k"); v != "OK" || err != nil {
				t.Fatalf("second call = %v, %v; want OK on a new connection", v, err)
			}
			if n := accepted.Load(); n != 2 {
				t.Errorf("%d connections, want 2", n)
			}
			if !tc.closes {
				<-closed // the client closed the connection it could not read
			}
		})
	}
}

// TestRetries: with MaxRetries, a call that met a broken connection is
// sent again on a new one; a server error is not retried.
func TestRetries(t *testing.T) {
	var calls atomic.Int32
	addr, accepted := fakeServer(t, func(nc net.Conn, r *bufio.Reader, n int) {
		for {
			cmd, err := readCommand(r)
			if err != nil {
				return
			}
			calls.Add(1)
			switch {
			case n == 1:
				return // closed without a reply
			case cmd[0] == "BAD":
				_, _ = io.WriteString(nc, "-ERR bad\r\n")
			default:
				_, _ = io.WriteString(nc, "+OK\r\n")
			}
		}
	})
	c := newClient(t, Options{Addr: addr, MaxRetries: 3})
	if v, err := c.Do(context.Background(), "PING"); v != "OK" || err != nil {
		t.Fatalf("PING = %v, %v; want OK after a retry", v, err)
	}
	if _, err := c.Do(context.Background(), "BAD"); !HasErrorPrefix(err, "ERR bad") {
		t.Fatalf("BAD = %v", err)
	}
	if n, a := calls.Load(), accepted.Load(); n != 3 || a != 2 {
		t.Errorf("%d commands on %d connections, want 3 on 2", n, a)
	}
}

// silentServer reads commands and never answers; got receives each
// command's first word.
func silentServer(t *testing.T) (string, *atomic.Int32, chan string, chan struct{}) {
	got := make(chan string, 10)
	closed := make(chan struct{}, 10)
	addr, accepted := fakeServer(t, func(nc net.Conn, r *bufio.Reader, n int) {
		for {
			cmd, err := readCommand(r)
			if err != nil {
				closed <- struct{}{}
				return
			}
			got <- cmd[0]
		}
	})
	return addr, accepted, got, closed
}

// TestCancelUnblocksRead: cancelling ctx ends a call blocked on its
// reply, the connection is closed, and nothing is retried.
func TestCancelUnblocksRead(t *testing.T) {
	addr, accepted, got, closed := silentServer(t)
	c := newClient(t, Options{Addr: addr, MaxRetries: 3, IOTimeout: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		_, err := c.Do(ctx, "BLOCK")
		done <- err
	}()
	<-got // the call waits for its reply
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Do = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Do still blocked 10 s after cancel")
	}
	<-closed
	if n := accepted.Load(); n != 1 {
		t.Errorf("%d connections, want 1: a cancelled call is not retried", n)
	}
}

// TestTimeouts: ctx's deadline ends a call and is not retried; IOTimeout
// ends one whose ctx has none, and that is retried.
func TestTimeouts(t *testing.T) {
	t.Run("ctx deadline", func(t *testing.T) {
		addr, accepted, _, _ := silentServer(t)
		c := newClient(t, Options{Addr: addr, MaxRetries: 3, IOTimeout: time.Hour})
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		if _, err := c.Do(ctx, "BLOCK"); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Do = %v, want context.DeadlineExceeded", err)
		}
		if n := accepted.Load(); n != 1 {
			t.Errorf("%d connections, want 1", n)
		}
	})
	t.Run("IOTimeout", func(t *testing.T) {
		addr, accepted, _, _ := silentServer(t)
		c := newClient(t, Options{Addr: addr, MaxRetries: 1, IOTimeout: 20 * time.Millisecond})
		_, err := c.Do(context.Background(), "BLOCK")
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() || errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Do = %v, want an I/O timeout", err)
		}
		if n := accepted.Load(); n != 2 {
			t.Errorf("%d connections, want 2: one retry", n)
		}
	})
}

// TestPoolBound: no more connections than PoolSize, however many calls
// wait; they take turns.
func TestPoolBound(t *testing.T) {
	release := make(chan struct{})
	addr, accepted := fakeServer(t, func(nc net.Conn, r *bufio.Reader, n int) {
		for {
			if _, err := readCommand(r); err != nil {
				return
			}
			<-release
			_, _ = io.WriteString(nc, ":1\r\n")
		}
	})
	c := newClient(t, Options{Addr: addr, PoolSize: 2})
	var wg sync.WaitGroup
	for range 6 {
		wg.Go(func() {
			if _, err := c.Do(context.Background(), "PING"); err != nil {
				t.Error(err)
			}
		})
	}
	for range 6 { // each reply as the server reads a command
		release <- struct{}{}
	}
	wg.Wait()
	if n := accepted.Load(); n != 2 {
		t.Errorf("%d connections for 6 calls with PoolSize 2, want 2", n)
	}
}

// TestEmptyCommand: a command without words fails at once (Redis would
// not answer it) and the connection is not trusted again.
func TestEmptyCommand(t *testing.T) {
	c := newClient(t, Options{Addr: redistest.Start(t).Addr()})
	if _, err := c.Do(context.Background()); !errors.Is(err, errEmptyCommand) {
		t.Errorf("Do() = %v, want errEmptyCommand", err)
	}
	do(t, c, "PING")
}

// TestClose: calls after Close fail.
func TestClose(t *testing.T) {
	c := New(Options{Addr: redistest.Start(t).Addr()})
	do(t, c, "PING")
	_ = c.Close()
	if _, err := c.Do(context.Background(), "PING"); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: %v, want ErrClosed", err)
	}
}
