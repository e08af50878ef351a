// Package rawhttp is a loopback HTTP/1.1 server for tests that answers each
// request with raw bytes, so that a test can send what a well-behaved
// server would not: bodies cut short, broken chunks, malformed heads.
package rawhttp

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// Server counts the connections and requests it got.
type Server struct {
	ln       net.Listener
	Conns    atomic.Int64
	Requests atomic.Int64

	mu   sync.Mutex
	last string
}

// Start serves on 127.0.0.1 until the test ends. answer writes the response
// to the n-th request (from 1) and says whether to keep the connection.
func Start(t testing.TB, answer func(n int64, w *bufio.Writer) (keep bool)) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{ln: ln}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			s.Conns.Add(1)
			wg.Go(func() { s.serve(conn, answer) })
		}
	})
	return s
}

// Answer starts a server that writes answer to every request and closes
// the connection.
func Answer(t testing.TB, answer string) *Server {
	t.Helper()
	return Start(t, func(_ int64, w *bufio.Writer) bool {
		w.WriteString(answer)
		return false
	})
}

func (s *Server) serve(conn net.Conn, answer func(int64, *bufio.Writer) bool) {
	defer conn.Close()
	br := bufio.NewReader(conn)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		body, _ := io.ReadAll(req.Body)
		var head strings.Builder
		req.Header.Write(&head)
		s.mu.Lock()
		s.last = fmt.Sprintf("%s %s host=%s\n%s\n%s", req.Method, req.RequestURI, req.Host, head.String(), body)
		s.mu.Unlock()
		n := s.Requests.Add(1)
		w := bufio.NewWriter(conn)
		keep := answer(n, w)
		if w.Flush() != nil || !keep {
			return
		}
	}
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// URL is the server's root URL.
func (s *Server) URL() string { return "http://" + s.Addr() + "/" }

// LastRequest is the last request as read: method, target, host, headers
// and body.
func (s *Server) LastRequest() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}
