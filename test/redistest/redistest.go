// Package redistest starts a real Redis server for tests: Debian's
// /usr/bin/redis-server as a child process on a free 127.0.0.1 port, with
// its data directory in t.TempDir() and durable settings (every write in
// the append-only file, fsynced before Redis replies; no RDB snapshots).
//
//	srv := redistest.Start(t)
//	client := redis.NewClient(&redis.Options{Addr: srv.Addr()})
//	// ... write ...
//	srv.Kill()    // SIGKILL: a crash, nothing flushed on the way out
//	srv.Restart() // same port and directory: Redis reloads the AOF
//
// Redis never listens on 6379 here, so a daemon started by the Debian
// package does not interfere. scripts/install-test-deps.sh installs the
// package; [Start] skips the test when it is missing, or fails it when
// ITER8_REQUIRE_REDIS is set.
//
// This is test code only; nothing under pkg/ imports it.
package redistest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Binary is the Redis server that Start runs: the one from Debian's
// package, not whatever is first on PATH, so every machine runs the same one.
const Binary = "/usr/bin/redis-server"

// RequireEnv names the environment variable that makes Start fail, rather
// than skip, when Binary is missing.
const RequireEnv = "ITER8_REQUIRE_REDIS"

// StartTimeout bounds how long Start and Restart wait for PING to answer
// (a restart replays the whole AOF first).
const StartTimeout = 30 * time.Second

// pollInterval is how often the server is pinged while it starts.
const pollInterval = 20 * time.Millisecond

// ErrNotInstalled is reported when Binary is missing.
var ErrNotInstalled = errors.New(Binary + " not found: run scripts/install-test-deps.sh (as root) to install Debian's redis-server")

// DurableArgs are the settings every server starts with, before the extra
// arguments of Start (later arguments win, so a test can override them).
var DurableArgs = []string{"--appendonly", "yes", "--appendfsync", "always", "--save", ""}

// Server is a running redis-server that belongs to one test; t.Cleanup
// kills it.
type Server struct {
	t    testing.TB
	addr string
	dir  string
	log  string
	args []string

	cmd    *exec.Cmd
	exited chan struct{} // closed once cmd has exited
}

// Start runs Binary on a free 127.0.0.1 port with DurableArgs followed by
// extra (for example "--appendfsync", "everysec") and returns once it
// answers PING. It skips t when Binary is missing, or fails it when
// RequireEnv is set. The server's log is written to t.Log if t fails.
func Start(t testing.TB, extra ...string) *Server {
	t.Helper()
	if _, err := os.Stat(Binary); err != nil {
		if os.Getenv(RequireEnv) != "" {
			t.Fatalf("%v (%s is set)", ErrNotInstalled, RequireEnv)
		}
		t.Skip(ErrNotInstalled)
	}
	s := &Server{t: t, dir: t.TempDir()}
	s.log = filepath.Join(s.dir, "redis.log")
	t.Cleanup(func() {
		s.Kill()
		if t.Failed() {
			s.dumpLog()
		}
	})
	// The port is free when picked but could be taken before Redis binds
	// it; another port is tried then.
	const attempts = 3
	for i := 1; ; i++ {
		addr, err := freeAddr()
		if err != nil {
			t.Fatalf("redistest: pick a port: %v", err)
		}
		s.addr = addr
		_, port, _ := net.SplitHostPort(addr)
		s.args = append([]string{
			"--bind", "127.0.0.1", "--port", port,
			"--dir", s.dir, "--logfile", s.log, "--daemonize", "no",
		}, append(append([]string(nil), DurableArgs...), extra...)...)
		err = s.start()
		if err == nil {
			return s
		}
		if i == attempts || !s.logHas("Address already in use") {
			s.dumpLog()
			t.Fatalf("redistest: %v", err)
		}
	}
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return s.addr }

// Dir is the server's data directory (the AOF is under it).
func (s *Server) Dir() string { return s.dir }

// Kill ends the server with SIGKILL, as a crash would: Redis flushes
// nothing on the way out. It waits until the process has exited, and does
// nothing if it is not running.
func (s *Server) Kill() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill() // fails only if it has already exited
	<-s.exited
	s.cmd = nil
}

// Restart kills the server if it runs and starts it again on the same port
// with the same directory and arguments, so that it reloads its AOF.
// It returns once the server answers PING (after loading).
func (s *Server) Restart() {
	s.t.Helper()
	s.Kill()
	if err := s.start(); err != nil {
		s.dumpLog()
		s.t.Fatalf("redistest: restart: %v", err)
	}
}

// start runs the process and waits for PONG.
func (s *Server) start() error {
	cmd := exec.Command(Binary, s.args...)
	cmd.Dir = s.dir
	// Redis logs to the file; anything it prints before opening it (a bad
	// argument) goes there too, so that dumpLog shows it.
	f, err := os.OpenFile(s.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	cmd.Stdout, cmd.Stderr = f, f
	// Do not leave a server behind when the test binary dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", Binary, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	s.cmd, s.exited = cmd, exited

	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	last := errors.New("no answer yet")
	for {
		if last = ping(ctx, s.addr); last == nil {
			return nil
		}
		select {
		case <-exited:
			s.cmd = nil
			return fmt.Errorf("%s on %s exited (%v) before answering PING", Binary, s.addr, cmd.ProcessState)
		case <-ctx.Done():
			s.Kill()
			return fmt.Errorf("%s on %s: no PONG within %v; last: %v", Binary, s.addr, StartTimeout, last)
		case <-tick.C:
		}
	}
}

// ping sends PING in RESP and wants +PONG; while Redis loads its AOF it
// answers -LOADING, which counts as not ready.
func ping(ctx context.Context, addr string) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	if _, err := c.Write([]byte("*1\r\n$4\r\nPING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line = strings.TrimSpace(line); line != "+PONG" {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}

// dumpLog writes the server's log to the test's output.
func (s *Server) dumpLog() {
	b, err := os.ReadFile(s.log)
	if err != nil {
		s.t.Logf("redistest: redis log: %v", err)
		return
	}
	s.t.Logf("redistest: redis-server %s log (%s):\n%s", s.addr, s.log, b)
}

func (s *Server) logHas(text string) bool {
	b, _ := os.ReadFile(s.log)
	return strings.Contains(string(b), text)
}

// freeAddr returns a 127.0.0.1 address with a port that was free just now.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	return addr, ln.Close()
}
