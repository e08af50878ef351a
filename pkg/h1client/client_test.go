package h1client

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iter8-tools/iter8/test/rawhttp"
)

// requestURL is the server with the path and query that the tests request.
func requestURL(s *rawhttp.Server) *url.URL {
	return &url.URL{Scheme: "http", Host: s.Addr(), Path: "/p", RawQuery: "q=1"}
}

func newClient(t *testing.T, o Options) *Client {
	t.Helper()
	c, err := New(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func wantOK(t *testing.T, r Response, status int) {
	t.Helper()
	if r.Err != nil || r.Status != status {
		t.Fatalf("response: status %d, err %v; want status %d and no error", r.Status, r.Err, status)
	}
}

func wantErr(t *testing.T, r Response, kind Kind, text string) {
	t.Helper()
	if r.Err == nil {
		t.Fatalf("response: status %d and no error; want a %v error", r.Status, kind)
	}
	if r.Err.Kind != kind || !strings.Contains(r.Err.Error(), text) {
		t.Fatalf("error %q (kind %v); want kind %v containing %q", r.Err, r.Err.Kind, kind, text)
	}
}

func TestContentLengthKeepsTheConnection(t *testing.T) {
	s := rawhttp.Start(t, func(_ int64, w *bufio.Writer) bool {
		fmt.Fprintf(w, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
		return true
	})
	c := newClient(t, Options{URL: requestURL(s)})
	for range 5 {
		wantOK(t, c.Do(), 200)
	}
	if n := s.Conns.Load(); n != 1 {
		t.Errorf("5 requests used %d connections, want 1", n)
	}
}

func TestRequestIsSentAsConfigured(t *testing.T) {
	s := rawhttp.Start(t, func(_ int64, w *bufio.Writer) bool {
		fmt.Fprintf(w, "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")
		return true
	})
	c := newClient(t, Options{URL: requestURL(s), Body: []byte(`{"a":1}`), ContentType: "application/json",
		UserAgent: "iter8", Header: map[string]string{"X-Test": "yes"}})
	wantOK(t, c.Do(), 201)
	got := s.LastRequest()
	for _, want := range []string{"POST /p?q=1 host=" + s.Addr(), "Content-Type: application/json", "User-Agent: iter8", "X-Test: yes", `{"a":1}`} {
		if !strings.Contains(got, want) {
			t.Errorf("request %q does not contain %q", got, want)
		}
	}
}

func TestShortBodyIsAnError(t *testing.T) {
	s := rawhttp.Start(t, func(_ int64, w *bufio.Writer) bool {
		fmt.Fprintf(w, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789")
		return false
	})
	r := newClient(t, Options{URL: requestURL(s)}).Do()
	wantErr(t, r, ShortBody, "got 10 of 1000 bytes")
	if r.Status != 200 {
		t.Errorf("status %d, want the 200 that the head said", r.Status)
	}
}

func TestChunkedBodies(t *testing.T) {
	tests := []struct {
		name, body string
		kind       Kind
		text       string
	}{
		{"whole", "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nTrailer: x\r\n\r\n", 0, ""},
		{"cut in a chunk", "5\r\nhel", ShortBody, "chunk: got 3 of 5 bytes"},
		{"cut before the last chunk", "5\r\nhello\r\n", ShortBody, "chunk size"},
		{"malformed size", "zz\r\nhello\r\n0\r\n\r\n", BadResponse, "malformed chunk size"},
		{"data longer than its size", "2\r\nhello\r\n0\r\n\r\n", BadResponse, "longer than its size"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := rawhttp.Start(t, func(_ int64, w *bufio.Writer) bool {
				fmt.Fprintf(w, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%s", tt.body)
				return tt.kind == 0
			})
			c := newClient(t, Options{URL: requestURL(s)})
			r := c.Do()
			if tt.kind == 0 {
				wantOK(t, r, 200)
				wantOK(t, c.Do(), 200) // the connection is still in step
				if n := s.Conns.Load(); n != 1 {
					t.Errorf("2 chunked responses used %d connections, want 1", n)
				}
				return
			}
			wantErr(t, r, tt.kind, tt.text)
		})
	}
}

func TestBodyUntilClose(t *testing.T) {
	s := rawhttp.Start(t, func(_ int64, w *bufio.Writer) bool {
		fmt.Fprintf(w, "HTTP/1.0 200 OK\r\n\r\n%s", strings.Repeat("x", 100000))
		return false
	})
	c := newClient(t, Options{URL: requestURL(s)})
	wantOK(t, c.Do(), 200)
	wantOK(t, c.Do(), 200)
	if n := s.Conns.Load(); n != 2 {
		t.Errorf("2 responses ended by close used %d connections, want 2", n)
	}
}

func TestInformationalAndBodilessResponses(t *testing.T) {
	s := rawhttp.Start(t, func(n int64, w *bufio.Writer) bool {
		switch n {
		case 1:
			fmt.Fprintf(w, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		case 2:
			// 204 and 304 have no body whatever their headers say.
			fmt.Fprintf(w, "HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n")
		default:
			fmt.Fprintf(w, "HTTP/1.1 503 Unavailable\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbusy")
		}
		return true
	})
	c := newClient(t, Options{URL: requestURL(s)})
	wantOK(t, c.Do(), 200)
	wantOK(t, c.Do(), 204)
	wantOK(t, c.Do(), 503)
	wantOK(t, c.Do(), 503)
	if n := s.Conns.Load(); n != 2 {
		t.Errorf("connections %d, want 2: one until Connection: close, then a new one", n)
	}
}

func TestHeadHasNoBody(t *testing.T) {
	s := rawhttp.Start(t, func(_ int64, w *bufio.Writer) bool {
		fmt.Fprintf(w, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
		return true
	})
	c := newClient(t, Options{URL: requestURL(s), Method: "HEAD"})
	wantOK(t, c.Do(), 200)
	wantOK(t, c.Do(), 200)
}

func TestMalformedHeads(t *testing.T) {
	tests := []struct{ name, head, text string }{
		{"not http", "SSH-2.0-OpenSSH\r\n\r\n", "not an HTTP/1.x status line"},
		{"header without colon", "HTTP/1.1 200 OK\r\nbroken\r\n\r\n", "malformed header line"},
		{"bad length", "HTTP/1.1 200 OK\r\nContent-Length: -3\r\n\r\n", "invalid Content-Length"},
		{"two lengths", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabc", "invalid Content-Length"},
		{"cut in the headers", "HTTP/1.1 200 OK\r\nContent-Le", "connection ended in the headers"},
		{"long header", "HTTP/1.1 200 OK\r\nX: " + strings.Repeat("a", 40000) + "\r\n\r\n", "header line longer"},
		{"switching protocols", "HTTP/1.1 101 Switching Protocols\r\n\r\n", "switched protocols"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := rawhttp.Start(t, func(_ int64, w *bufio.Writer) bool {
				w.WriteString(tt.head)
				return false
			})
			wantErr(t, newClient(t, Options{URL: requestURL(s)}).Do(), BadResponse, tt.text)
		})
	}
}

func TestLargeBodiesAreReadWhole(t *testing.T) {
	const size = 64 << 20
	chunk := []byte(strings.Repeat("x", 1<<20))
	s := rawhttp.Start(t, func(n int64, w *bufio.Writer) bool {
		if n == 1 {
			fmt.Fprintf(w, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", size)
		} else {
			fmt.Fprintf(w, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
		}
		for range size / len(chunk) {
			if n != 1 {
				fmt.Fprintf(w, "%x\r\n", len(chunk))
			}
			w.Write(chunk)
			if n != 1 {
				w.WriteString("\r\n")
			}
		}
		if n != 1 {
			w.WriteString("0\r\n\r\n")
		}
		return true
	})
	c := newClient(t, Options{URL: requestURL(s)})
	wantOK(t, c.Do(), 200)
	wantOK(t, c.Do(), 200)
	if n := s.Conns.Load(); n != 1 {
		t.Errorf("two 64 MiB responses used %d connections, want 1", n)
	}
}

func TestIdleConnectionClosedByServerIsRetriedOnce(t *testing.T) {
	// The server answers one request per connection but announces nothing:
	// the client finds out when it reuses the connection.
	s := rawhttp.Start(t, func(_ int64, w *bufio.Writer) bool {
		fmt.Fprintf(w, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		return false
	})
	c := newClient(t, Options{URL: requestURL(s)})
	for range 3 {
		wantOK(t, c.Do(), 200)
	}
	if n := s.Requests.Load(); n != 3 {
		t.Errorf("server got %d requests, want 3", n)
	}
}

func TestNoResponseOnANewConnectionIsNotRetried(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var accepted atomic.Int64
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			conn.Close()
		}
	}()
	c := newClient(t, Options{URL: &url.URL{Scheme: "http", Host: ln.Addr().String()}})
	r := c.Do()
	if r.Err == nil || (r.Err.Kind != NoResponse && r.Err.Kind != Send) {
		t.Fatalf("response %+v, want a no-response or send error", r)
	}
	if n := accepted.Load(); n != 1 {
		t.Errorf("%d connections, want 1: a fresh connection is not retried", n)
	}
}

func TestConnectionRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	r := newClient(t, Options{URL: &url.URL{Scheme: "http", Host: addr}}).Do()
	wantErr(t, r, Connect, "connection refused")
	if strings.Contains(r.Err.Error(), addr) {
		t.Errorf("error %q repeats the address, which the caller names", r.Err)
	}
}

func TestTimeoutCoversTheWholeResponse(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	s := rawhttp.Start(t, func(_ int64, w *bufio.Writer) bool {
		fmt.Fprintf(w, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n01234")
		w.Flush()
		<-release
		return false
	})
	start := time.Now()
	r := newClient(t, Options{URL: requestURL(s), Timeout: 100 * time.Millisecond}).Do()
	wantErr(t, r, Timeout, "no complete response within 100ms")
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Errorf("timed out after %v, before the 100ms timeout", d)
	}
}

func TestCancelEndsARequestInFlight(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	s := rawhttp.Start(t, func(_ int64, w *bufio.Writer) bool {
		<-release
		return false
	})
	ctx, cancel := context.WithCancelCause(t.Context())
	c, err := New(ctx, Options{URL: requestURL(s)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	done := make(chan Response)
	go func() { done <- c.Do() }()
	deadline := time.Now().Add(10 * time.Second)
	for s.Requests.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond) // polling the server's count, not synchronising on time
	}
	cause := errors.New("stopped by the test")
	cancel(cause)
	select {
	case r := <-done:
		if r.Err == nil || r.Err.Kind != Interrupted || !errors.Is(r.Err, cause) {
			t.Fatalf("response %+v, want Interrupted by the test's cause", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Do did not return within 10s of the cancel")
	}
	if r := c.Do(); r.Err == nil || r.Err.Kind != Interrupted {
		t.Errorf("Do after cancel: %+v, want Interrupted", r)
	}
}

func TestHTTPS(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, strings.Repeat("y", 300000))
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the unverified client's refusal
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	pool := srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	c := newClient(t, Options{URL: u, TLS: &tls.Config{RootCAs: pool}})
	wantOK(t, c.Do(), 200)
	wantOK(t, c.Do(), 200)

	unverified := newClient(t, Options{URL: u})
	wantErr(t, unverified.Do(), Connect, "certificate")
}

func TestBadOptions(t *testing.T) {
	for _, u := range []*url.URL{nil, {Scheme: "http"}, {Scheme: "ftp", Host: "127.0.0.1:21"}} {
		if _, err := New(t.Context(), Options{URL: u}); err == nil {
			t.Errorf("New with URL %v succeeded", u)
		}
	}
}

func TestParseStatusLine(t *testing.T) {
	tests := []struct {
		line          string
		minor, status int
		ok            bool
	}{
		{"HTTP/1.1 200 OK\r\n", 1, 200, true},
		{"HTTP/1.0 404\r\n", 0, 404, true},
		{"HTTP/1.1 200OK\r\n", 0, 0, false},
		{"HTTP/2.0 200 OK\r\n", 0, 0, false},
		{"HTTP/1.1 099 x\r\n", 0, 0, false},
		{"HTTP/1.1 2x0 x\r\n", 0, 0, false},
	}
	for _, tt := range tests {
		minor, status, ok := parseStatusLine([]byte(tt.line))
		if minor != tt.minor || status != tt.status || ok != tt.ok {
			t.Errorf("parseStatusLine(%q) = %d, %d, %v; want %d, %d, %v", tt.line, minor, status, ok, tt.minor, tt.status, tt.ok)
		}
	}
}

func TestNoAllocationsPerRequest(t *testing.T) {
	// A server that allocates nothing either, since AllocsPerRun counts
	// every goroutine: it answers each request head from a fixed buffer.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		answer := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello")
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			// Each request is small and sent in one write: one read, one answer.
			if n > 0 && buf[n-1] == '\n' {
				if _, err := conn.Write(answer); err != nil {
					return
				}
			}
		}
	}()
	c := newClient(t, Options{URL: &url.URL{Scheme: "http", Host: ln.Addr().String(), Path: "/"}})
	wantOK(t, c.Do(), 200)
	if a := testing.AllocsPerRun(100, func() { c.Do() }); a != 0 {
		t.Errorf("%v allocations per request on a kept connection, want 0", a)
	}
}

func BenchmarkDo(b *testing.B) {
	for _, size := range []int{0, 16 << 10, 1 << 20} {
		b.Run(fmt.Sprintf("body=%d", size), func(b *testing.B) {
			body := strings.Repeat("z", size)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, body)
			}))
			defer srv.Close()
			u, _ := url.Parse(srv.URL)
			c, err := New(b.Context(), Options{URL: u})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if r := c.Do(); r.Err != nil {
					b.Fatal(r.Err)
				}
			}
		})
	}
}
