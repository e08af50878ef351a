// Command fastserver is a minimal HTTP/1.1 server for throughput
// benchmarks: it answers every request with a fixed 200 "ok" and does
// little else, so that on its own CPU it outpaces the load generator under
// test and the benchmark measures the generator, not the server.
//
//	fastserver [--listen 127.0.0.1:0] [--addr-file FILE] [--body-size 2]
//
// It reads a request's headers, skips a Content-Length body, and writes the
// canned response (a body of --body-size bytes), flushing only when no further request is already
// buffered. It does not support chunked request bodies. SIGINT or SIGTERM
// stops it; it then prints how many requests it answered.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "loopback `host:port` to listen on")
	addrFile := flag.String("addr-file", "", "once listening, write the bound host:port to this `file` (atomically)")
	bodySize := flag.Int("body-size", 2, "`bytes` in every response body (0 to 64 MiB)")
	flag.Parse()
	if *bodySize < 0 || *bodySize > 64<<20 {
		fmt.Fprintf(os.Stderr, "fastserver: --body-size %d: want 0 to %d\n", *bodySize, 64<<20)
		os.Exit(2)
	}
	response := fmt.Appendf(nil, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n", *bodySize)
	response = append(response, bytes.Repeat([]byte("o"), *bodySize)...)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := serve(ctx, *listen, *addrFile, response); err != nil {
		fmt.Fprintf(os.Stderr, "fastserver: %v\n", err)
		os.Exit(1)
	}
}

func serve(ctx context.Context, listen, addrFile string, response []byte) error {
	host, _, err := net.SplitHostPort(listen)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("--listen %q: want a loopback host:port such as 127.0.0.1:0", listen)
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", listen)
	if err != nil {
		return err
	}
	if addrFile != "" {
		if err := writeFileAtomic(addrFile, ln.Addr().String()); err != nil {
			ln.Close()
			return err
		}
		defer os.Remove(addrFile)
	}
	fmt.Fprintf(os.Stderr, "fastserver: listening on %s\n", ln.Addr())

	var (
		served atomic.Int64
		wg     sync.WaitGroup
		mu     sync.Mutex
		conns  = map[net.Conn]bool{}
	)
	go func() {
		<-ctx.Done()
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			return fmt.Errorf("accept: %w", err)
		}
		mu.Lock()
		conns[c] = true
		mu.Unlock()
		wg.Go(func() {
			handle(c, response, &served)
			mu.Lock()
			delete(conns, c)
			mu.Unlock()
			c.Close()
		})
	}
	wg.Wait()
	fmt.Fprintf(os.Stderr, "fastserver: shut down after %d requests\n", served.Load())
	return nil
}

// handle answers the requests on one connection until it closes.
func handle(c net.Conn, response []byte, served *atomic.Int64) {
	r := bufio.NewReaderSize(c, 16<<10)
	w := bufio.NewWriterSize(c, 16<<10)
	for {
		n, err := readRequest(r)
		if err != nil {
			return
		}
		if _, err := r.Discard(n); err != nil {
			return
		}
		w.Write(response)
		served.Add(1)
		if r.Buffered() == 0 {
			if w.Flush() != nil {
				return
			}
		}
	}
}

// readRequest reads a request line and headers and returns the body length.
func readRequest(r *bufio.Reader) (int, error) {
	body := 0
	for first := true; ; first = false {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return 0, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			if first {
				continue // tolerate a stray CRLF between requests
			}
			return body, nil
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if ok && bytes.EqualFold(bytes.TrimSpace(name), []byte("Content-Length")) {
			n, err := strconv.Atoi(string(bytes.TrimSpace(value)))
			if err != nil || n < 0 {
				return 0, errors.New("bad Content-Length")
			}
			body = n
		}
	}
}

// writeFileAtomic writes content to name via a temporary file and a rename,
// so that a reader never sees a partial address.
func writeFileAtomic(name, content string) error {
	f, err := os.CreateTemp(filepath.Dir(name), filepath.Base(name)+".tmp*")
	if err != nil {
		return fmt.Errorf("addr file: %w", err)
	}
	_, err = io.WriteString(f, content)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), name)
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("addr file %q: %w", name, err)
	}
	return nil
}
