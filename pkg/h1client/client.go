// Package h1client is a small HTTP/1.1 client for load generation. A Client
// owns one connection at a time, serialises its request once, and reads
// every response to its end and discards it, so that a request's time
// covers its whole body and a short or malformed body is an error, not a
// success. It takes no lock and makes no allocation per request on a kept
// connection; memory per Client is its read buffer (BufferSize) and the
// serialised request.
package h1client

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DefaultBufferSize is the read buffer per connection. It bounds the length
// of the status line and of each header line; bodies of any size stream
// through it.
const DefaultBufferSize = 32 << 10

// maxHeaderBytes bounds a response's header block, so that a server that
// sends headers forever cannot hold a load thread.
const maxHeaderBytes = 1 << 20

// Options describe the one request that a Client sends again and again.
type Options struct {
	// URL is an http or https URL with a host.
	URL *url.URL
	// Method defaults to GET, or POST when there is a Body.
	Method string
	// Header is sent as given; a Host entry replaces the URL's host in the
	// Host header, and a User-Agent entry replaces UserAgent.
	Header map[string]string
	// UserAgent is sent unless Header has one; empty sends none.
	UserAgent string
	// Body is sent with its Content-Length; ContentType, when set, as
	// Content-Type.
	Body        []byte
	ContentType string
	// Timeout bounds each request: connecting, sending and reading the
	// whole response. Zero means no bound.
	Timeout time.Duration
	// TLS is the configuration for https; nil verifies the server with the
	// system's roots.
	TLS *tls.Config
	// BufferSize is the read buffer in bytes; zero means DefaultBufferSize.
	BufferSize int
}

// Client sends the request of its Options, one at a time. It is not safe
// for concurrent use: a load thread has one Client.
type Client struct {
	ctx     context.Context
	addr    string
	tls     *tls.Config
	request []byte
	head    bool
	timeout time.Duration
	dialer  net.Dialer

	mu   sync.Mutex // guards conn against the cancel func
	conn net.Conn
	br   *bufio.Reader
	// reused is true once conn has carried a whole exchange, so that a
	// failure before the next response's first byte may be the server
	// closing an idle connection.
	reused    bool
	stopWatch func() bool
}

// New returns a Client for o. Cancelling ctx ends a request in flight and
// every later one at once.
func New(ctx context.Context, o Options) (*Client, error) {
	if o.URL == nil || o.URL.Host == "" {
		return nil, errors.New("h1client: a URL with a host is needed")
	}
	c := &Client{ctx: ctx, timeout: o.Timeout}
	host, port := o.URL.Hostname(), o.URL.Port()
	switch o.URL.Scheme {
	case "http":
		port = cmp.Or(port, "80")
	case "https":
		port = cmp.Or(port, "443")
		c.tls = o.TLS.Clone()
		if c.tls == nil {
			c.tls = &tls.Config{}
		}
		c.tls.ServerName = cmp.Or(c.tls.ServerName, host)
		c.tls.NextProtos = []string{"http/1.1"}
	default:
		return nil, fmt.Errorf("h1client: scheme %q: want http or https", o.URL.Scheme)
	}
	c.addr = net.JoinHostPort(host, port)
	method := o.Method
	if method == "" {
		method = "GET"
		if len(o.Body) > 0 {
			method = "POST"
		}
	}
	c.head = method == "HEAD"
	c.request = serialise(method, o)
	size := o.BufferSize
	if size <= 0 {
		size = DefaultBufferSize
	}
	c.br = bufio.NewReaderSize(nil, size)
	c.stopWatch = context.AfterFunc(ctx, c.interrupt)
	return c, nil
}

func serialise(method string, o Options) []byte {
	b := fmt.Appendf(nil, "%s %s HTTP/1.1\r\n", method, o.URL.RequestURI())
	// The same order every time, so that requests are identical.
	keys := slices.Sorted(maps.Keys(o.Header))
	// Defaults, unless o.Header names them (in any letter case).
	for _, h := range [][2]string{{"Host", o.URL.Host}, {"User-Agent", o.UserAgent}, {"Content-Type", o.ContentType}} {
		given := slices.ContainsFunc(keys, func(k string) bool { return strings.EqualFold(k, h[0]) })
		if h[1] != "" && !given {
			b = fmt.Appendf(b, "%s: %s\r\n", h[0], h[1])
		}
	}
	for _, k := range keys {
		b = fmt.Appendf(b, "%s: %s\r\n", k, o.Header[k])
	}
	if len(o.Body) > 0 || method == "POST" || method == "PUT" || method == "PATCH" {
		b = fmt.Appendf(b, "Content-Length: %d\r\n", len(o.Body))
	}
	return append(append(b, "\r\n"...), o.Body...)
}

// Close closes the connection and stops watching the context.
func (c *Client) Close() {
	c.stopWatch()
	c.closeConn()
}

func (c *Client) closeConn() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
	c.reused = false
}

// interrupt wakes a request blocked in the network when the context ends.
func (c *Client) interrupt() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn != nil {
		c.conn.SetDeadline(time.Unix(1, 0))
	}
}

// Response is the outcome of one request.
type Response struct {
	// Status is the response's status code; 0 when none was read.
	Status int
	// Err is why the response was not complete: nil for a whole response.
	Err *Error
}

// Do sends the request and reads the whole response. A failure on a kept
// connection before the response's first byte (the server closed it while
// idle) is retried once on a new connection.
func (c *Client) Do() Response {
	start := time.Now()
	resp, retry := c.exchange(start)
	if retry {
		c.closeConn()
		resp, _ = c.exchange(start)
	}
	if resp.Err != nil {
		c.closeConn()
		if c.ctx.Err() != nil {
			resp.Err = c.interrupted()
		}
	}
	return resp
}

// exchange is one attempt; retry says whether the failure may be retried.
// It leaves a failed connection to its caller to close.
func (c *Client) exchange(start time.Time) (resp Response, retry bool) {
	if c.ctx.Err() != nil {
		return Response{Err: c.interrupted()}, false
	}
	if c.conn == nil {
		if err := c.connect(start); err != nil {
			return Response{Err: err}, false
		}
	}
	reused := c.reused
	if c.timeout > 0 {
		c.conn.SetDeadline(start.Add(c.timeout))
	}
	if _, err := c.conn.Write(c.request); err != nil {
		return Response{Err: c.ioError(Send, err)}, reused && !isTimeout(err)
	}
	keepAlive, resp := c.readResponse()
	switch {
	case resp.Err != nil:
		// A timeout is never NoResponse (see noResponse).
		return resp, resp.Err.Kind == NoResponse && reused
	case keepAlive:
		c.reused = true
	default:
		c.closeConn()
	}
	return resp, false
}

func (c *Client) connect(start time.Time) *Error {
	ctx := c.ctx
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, start.Add(c.timeout))
		defer cancel()
	}
	conn, err := c.dialer.DialContext(ctx, "tcp", c.addr)
	if err != nil {
		return c.ioError(Connect, err)
	}
	if c.tls != nil {
		tc := tls.Client(conn, c.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return c.ioError(Connect, err)
		}
		conn = tc
	}
	c.mu.Lock()
	c.conn = conn
	c.mu.Unlock()
	c.br.Reset(conn)
	if c.ctx.Err() != nil {
		c.interrupt() // cancelled while connecting: the watcher saw no conn
	}
	return nil
}

// ioError classifies a network error: timeouts are their own kind, so that
// reports can tell a slow server from a broken one.
func (c *Client) ioError(kind Kind, err error) *Error {
	switch {
	case !isTimeout(err):
		return &Error{Kind: kind, Err: cause(err)}
	case c.ctx.Err() != nil:
		return c.interrupted()
	case kind == Connect:
		// Still a failure to connect: an address that drops packets is as
		// unreachable as one that refuses.
		return &Error{Kind: Connect, Err: fmt.Errorf("no connection within %v", c.timeout)}
	}
	return &Error{Kind: Timeout, Err: fmt.Errorf("no complete response within %v", c.timeout)}
}

// interrupted is the error of every request once the context has ended.
func (c *Client) interrupted() *Error {
	return &Error{Kind: Interrupted, Err: context.Cause(c.ctx)}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded)
}

// readResponse reads one response, skipping informational (1xx) ones, and
// says whether the connection may carry another request.
func (c *Client) readResponse() (keepAlive bool, resp Response) {
	for {
		h, err := c.readHead()
		resp = Response{Status: h.status, Err: err}
		switch {
		case err != nil:
			return false, resp
		case h.status == 101:
			resp.Err = &Error{Kind: BadResponse, Err: errors.New("the server switched protocols (101)")}
			return false, resp
		case h.status < 200:
			continue
		}
		if resp.Err = c.readBody(&h); resp.Err != nil {
			return false, resp
		}
		return h.keepAlive, resp
	}
}

// head is what the response's status line and headers say about its body.
type head struct {
	status             int
	keepAlive, chunked bool
	contentLength      int64 // -1 when absent
}

func (c *Client) readHead() (head, *Error) {
	h := head{contentLength: -1}
	line, err := c.br.ReadSlice('\n')
	switch {
	case errors.Is(err, bufio.ErrBufferFull):
		return h, &Error{Kind: BadResponse, Err: fmt.Errorf("status line longer than %d bytes", c.br.Size())}
	case err != nil && len(line) == 0 && c.br.Buffered() == 0:
		return h, c.noResponse(err)
	case err != nil:
		return h, c.brokenResponse("status line", err)
	}
	minor, status, ok := parseStatusLine(line)
	if !ok {
		return h, &Error{Kind: BadResponse, Err: fmt.Errorf("not an HTTP/1.x status line: %q", truncate(line, 40))}
	}
	h.status = status
	h.keepAlive = minor >= 1
	total := len(line)
	for {
		line, err := c.br.ReadSlice('\n')
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			return h, &Error{Kind: BadResponse, Err: fmt.Errorf("a header line longer than %d bytes", c.br.Size())}
		case err != nil:
			return h, c.brokenResponse("headers", err)
		}
		total += len(line)
		if total > maxHeaderBytes {
			return h, &Error{Kind: BadResponse, Err: fmt.Errorf("headers longer than %d bytes", maxHeaderBytes)}
		}
		line = trimEOL(line)
		if len(line) == 0 {
			break
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return h, &Error{Kind: BadResponse, Err: fmt.Errorf("malformed header line %q", truncate(line, 40))}
		}
		name, value := line[:colon], trimSpace(line[colon+1:])
		switch {
		case equalFold(name, "content-length"):
			n, ok := parseDecimal(value)
			if !ok || (h.contentLength >= 0 && h.contentLength != n) {
				return h, &Error{Kind: BadResponse, Err: fmt.Errorf("invalid Content-Length %q", truncate(value, 40))}
			}
			h.contentLength = n
		case equalFold(name, "transfer-encoding"):
			// chunked must be the last coding; anything else ends at close.
			n := len(value) - len("chunked")
			h.chunked = n >= 0 && equalFold(value[n:], "chunked")
			if !h.chunked {
				h.keepAlive = false
			}
		case equalFold(name, "connection"):
			if containsTokenFold(value, "close") {
				h.keepAlive = false
			} else if containsTokenFold(value, "keep-alive") {
				h.keepAlive = true
			}
		}
	}
	return h, nil
}

// readBody reads the body that h describes.
func (c *Client) readBody(h *head) *Error {
	switch {
	case c.head || h.status == 204 || h.status == 304:
		return nil
	case h.chunked:
		return c.readChunked()
	case h.contentLength >= 0:
		n, err := c.br.Discard(int(min(h.contentLength, math.MaxInt)))
		if int64(n) < h.contentLength {
			return c.brokenBody(fmt.Sprintf("got %d of %d bytes (Content-Length)", n, h.contentLength), err)
		}
		return nil
	}
	// No length: the body ends when the server closes the connection, so
	// the connection carries no other request.
	h.keepAlive = false
	if _, err := io.Copy(io.Discard, c.br); err != nil {
		return c.brokenBody("reading to the end of the connection", err)
	}
	return nil
}

func (c *Client) readChunked() *Error {
	for {
		line, err := c.br.ReadSlice('\n')
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			return &Error{Kind: BadResponse, Err: errors.New("chunk size line too long")}
		case err != nil:
			return c.brokenBody("chunk size", err)
		}
		size, ok := parseChunkSize(trimEOL(line))
		if !ok {
			return &Error{Kind: BadResponse, Err: fmt.Errorf("malformed chunk size %q", truncate(trimEOL(line), 40))}
		}
		if size == 0 {
			return c.readTrailers()
		}
		if n, err := c.br.Discard(int(size)); int64(n) < size {
			return c.brokenBody(fmt.Sprintf("chunk: got %d of %d bytes", n, size), err)
		}
		end, err := c.br.ReadSlice('\n')
		if err != nil {
			return c.brokenBody("chunk end", err)
		}
		if len(trimEOL(end)) != 0 {
			return &Error{Kind: BadResponse, Err: errors.New("chunk data longer than its size")}
		}
	}
}

func (c *Client) readTrailers() *Error {
	total := 0
	for {
		line, err := c.br.ReadSlice('\n')
		if err != nil {
			return c.brokenBody("trailers", err)
		}
		total += len(line)
		if total > maxHeaderBytes {
			return &Error{Kind: BadResponse, Err: fmt.Errorf("trailers longer than %d bytes", maxHeaderBytes)}
		}
		if len(trimEOL(line)) == 0 {
			return nil
		}
	}
}

// noResponse is a connection that ended or failed before the first byte.
func (c *Client) noResponse(err error) *Error {
	if isTimeout(err) {
		return c.ioError(NoResponse, err)
	}
	if errors.Is(err, io.EOF) {
		err = errors.New("the server closed the connection without a response")
	}
	return &Error{Kind: NoResponse, Err: err}
}

func (c *Client) brokenResponse(part string, err error) *Error {
	if isTimeout(err) {
		return c.ioError(BadResponse, err)
	}
	return &Error{Kind: BadResponse, Err: fmt.Errorf("connection ended in the %s: %w", part, cause(err))}
}

func (c *Client) brokenBody(what string, err error) *Error {
	if err == nil || errors.Is(err, io.EOF) {
		err = errors.New("the server closed the connection")
	} else if isTimeout(err) {
		return c.ioError(ShortBody, err)
	}
	return &Error{Kind: ShortBody, Err: fmt.Errorf("%s: %w", what, cause(err))}
}

// cause drops a network error's "dial tcp 127.0.0.1:1:": the caller names
// the endpoint.
func cause(err error) error {
	var ne *net.OpError
	if errors.As(err, &ne) && ne.Err != nil {
		return ne.Err
	}
	return err
}

// Kind classifies why a request failed.
type Kind int

// The kinds of failure, from the earliest in a request to the latest.
const (
	// Connect: the connection (or its TLS handshake) could not be made.
	Connect Kind = iota + 1
	// Send: the request could not be written.
	Send
	// NoResponse: the connection ended or failed before the response's
	// first byte.
	NoResponse
	// BadResponse: the status line or headers were malformed or cut off.
	BadResponse
	// ShortBody: the body ended before its length, or its chunks were cut
	// off.
	ShortBody
	// Timeout: the whole response did not arrive within the timeout.
	Timeout
	// Interrupted: the Client's context ended.
	Interrupted
)

var kindNames = map[Kind]string{
	Connect: "connect", Send: "send", NoResponse: "no response", BadResponse: "bad response",
	ShortBody: "short body", Timeout: "timeout", Interrupted: "interrupted",
}

func (k Kind) String() string {
	if s, ok := kindNames[k]; ok {
		return s
	}
	return "kind " + strconv.Itoa(int(k))
}

// Error is why one request failed.
type Error struct {
	Kind Kind
	Err  error
}

func (e *Error) Error() string { return e.Kind.String() + ": " + e.Err.Error() }

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }
