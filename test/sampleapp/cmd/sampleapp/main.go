// Command sampleapp serves the sample application of package sampleapp on a
// loopback address, for tests, benchmarks and demos of the load tester.
//
// Usage:
//
//	sampleapp [--listen 127.0.0.1:8080] [--version v1] [--latency SPEC]
//	          [--error-rate 0] [--error-code 503] [--seed 0]
//	          [--conversion 0] [--addr-file FILE] [--allow-non-loopback]
//
// With --conversion P, a share P of users buy: the answers to a converting
// user's requests (any path with ?user=U) carry X-Purchase: <amount>. Who
// converts, and for how much, is a hash of the version and the user (per
// user, the same on every request and in every process; see
// sampleapp.Purchase).
//
// Prometheus metrics are served on /metrics (see package sampleapp).
// With --listen 127.0.0.1:0 the kernel picks a free port; --addr-file then
// tells scripts which one. SIGINT or SIGTERM shuts the server down
// gracefully. Bad flags exit with status 2, other failures with status 1.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/iter8-tools/iter8/test/sampleapp"
)

// shutdownTimeout bounds how long in-flight requests may take to finish
// after a signal; a long injected latency must not keep the process alive.
const shutdownTimeout = 5 * time.Second

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stderr)
	stop()
	os.Exit(code)
}

// config is the parsed command line.
type config struct {
	listen           string
	addrFile         string
	allowNonLoopback bool
	opts             sampleapp.Options
}

// run parses args and serves until ctx is done, returning the exit status.
func run(ctx context.Context, args []string, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return 2
	}
	if err := serve(ctx, cfg, stderr, nil); err != nil {
		fmt.Fprintf(stderr, "sampleapp: %v\n", err)
		return 1
	}
	return 0
}

// parseFlags parses and checks the command line, printing any error to
// stderr.
func parseFlags(args []string, stderr io.Writer) (config, error) {
	var (
		cfg     config
		latency string
	)
	fs := flag.NewFlagSet("sampleapp", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.listen, "listen", "127.0.0.1:8080", "`host:port` to listen on; port 0 picks a free port")
	fs.StringVar(&cfg.opts.Version, "version", "v1", "version reported in the X-Version header and the JSON body")
	fs.StringVar(&latency, "latency", "", "added latency: \"\", 0, fixed:5ms, uniform:2ms-20ms or lognormal:10ms,0.5")
	fs.Float64Var(&cfg.opts.ErrorRate, "error-rate", 0, "fraction in [0, 1] of requests answered with --error-code")
	fs.IntVar(&cfg.opts.ErrorCode, "error-code", sampleapp.DefaultErrorCode, "HTTP status 400-599 of injected errors")
	fs.Uint64Var(&cfg.opts.Seed, "seed", 0, "random seed for reproducible latencies and errors; 0 picks one")
	fs.Float64Var(&cfg.opts.Conversion, "conversion", 0, "share in [0, 1] of users (?user=U) whose answers carry X-Purchase: <amount>; 0: nobody buys")
	fs.StringVar(&cfg.addrFile, "addr-file", "", "once listening, write the bound host:port to this `file` (atomically)")
	fs.BoolVar(&cfg.allowNonLoopback, "allow-non-loopback", false, "allow --listen on a non-loopback address")
	if err := fs.Parse(args); err != nil {
		return config{}, err // the flag package has printed it with the usage
	}
	cfg, err := check(cfg, latency, fs.Args())
	if err != nil {
		fmt.Fprintf(stderr, "sampleapp: %v (see sampleapp -h)\n", err)
	}
	return cfg, err
}

// check completes cfg from the flag values the flag package cannot check.
func check(cfg config, latency string, rest []string) (config, error) {
	if len(rest) > 0 {
		return config{}, fmt.Errorf("unexpected arguments %q: all settings are flags", rest)
	}
	l, err := sampleapp.ParseLatency(latency)
	if err != nil {
		return config{}, fmt.Errorf("--latency: %v", err)
	}
	cfg.opts.Latency = l
	// Validate each flag on its own so the message names the right one.
	if err := (sampleapp.Options{ErrorRate: cfg.opts.ErrorRate}).Validate(); err != nil {
		return config{}, fmt.Errorf("--error-rate: %v", err)
	}
	if err := (sampleapp.Options{Conversion: cfg.opts.Conversion}).Validate(); err != nil {
		return config{}, fmt.Errorf("--conversion: %v", err)
	}
	if err := cfg.opts.Validate(); err != nil {
		return config{}, fmt.Errorf("--error-code: %v", err)
	}
	if err := checkLoopback(cfg.listen); err != nil && !cfg.allowNonLoopback {
		return config{}, fmt.Errorf("--listen: %v; use --allow-non-loopback to override", err)
	}
	return cfg, nil
}

// checkLoopback reports an error unless addr is host:port with host a
// loopback IP or "localhost". An empty host means all interfaces, and other
// names are refused because they may resolve anywhere.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("address %q: want host:port", addr)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("address %q is not a loopback address such as 127.0.0.1:8080", addr)
	}
	return nil
}

// serve listens on cfg.listen and serves until ctx is done, then shuts down
// gracefully. ready, if not nil, is called with the bound address once the
// address file (if any) is written; tests use it instead of polling.
func serve(ctx context.Context, cfg config, stderr io.Writer, ready func(addr string)) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", cfg.listen)
	if err != nil {
		return err
	}
	addr := ln.Addr().String()
	if cfg.addrFile != "" {
		if err := writeFileAtomic(cfg.addrFile, addr); err != nil {
			ln.Close()
			return err
		}
		// A stale file would point scripts at a dead port.
		defer os.Remove(cfg.addrFile)
	}

	h := sampleapp.NewHandler(cfg.opts)
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	fmt.Fprintf(stderr, "sampleapp: listening on %s (version %q, latency %s, error rate %v, error code %d, conversion %v)\n",
		addr, cfg.opts.Version, cfg.opts.Latency, cfg.opts.ErrorRate, cfg.opts.ErrorCode, cfg.opts.Conversion)
	if ready != nil {
		ready(addr)
	}

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	err = srv.Shutdown(sctx)
	if errors.Is(err, context.DeadlineExceeded) {
		fmt.Fprintf(stderr, "sampleapp: requests still running after %v; closing them\n", shutdownTimeout)
		err = srv.Close()
	}
	if err != nil {
		return fmt.Errorf("shutdown: %v", err)
	}
	fmt.Fprintf(stderr, "sampleapp: shut down after %d requests\n", h.Requests())
	return nil
}

// writeFileAtomic writes content to name via a temporary file in the same
// directory and a rename, so a reader never sees a partial address.
func writeFileAtomic(name, content string) error {
	f, err := os.CreateTemp(filepath.Dir(name), filepath.Base(name)+".tmp*")
	if err != nil {
		return fmt.Errorf("addr file: %v", err)
	}
	_, err = f.WriteString(content)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), name)
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("addr file %q: %v", name, err)
	}
	return nil
}
