// Command greeter serves the gRPC greeter of package greeter on a loopback
// address, plaintext and with server reflection, for benchmarks and demos of
// the grpc task.
//
// Usage:
//
//	greeter [--listen 127.0.0.1:50051] [--version v1] [--latency SPEC]
//	        [--error-rate 0] [--error-code Unavailable] [--seed 0]
//	        [--addr-file FILE]
//
// With --listen 127.0.0.1:0 the kernel picks a free port; --addr-file then
// tells scripts which one. SIGINT or SIGTERM stops the server, letting calls
// in flight finish for up to 5s. Bad flags exit with status 2, other
// failures with status 1.
package main

import (
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
	"syscall"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/iter8-tools/iter8/test/greeter"
	"github.com/iter8-tools/iter8/test/sampleapp"
)

// stopTimeout bounds how long calls in flight may take after a signal.
const stopTimeout = 5 * time.Second

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stderr io.Writer) int {
	var (
		listen, addrFile, latency, errorCode string
		opts                                 greeter.Options
	)
	fs := flag.NewFlagSet("greeter", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&listen, "listen", "127.0.0.1:50051", "loopback `host:port` to listen on; port 0 picks a free port")
	fs.StringVar(&opts.Version, "version", "v1", "version named in greetings and the x-version header")
	fs.StringVar(&latency, "latency", "", "added latency: \"\", 0, fixed:5ms, uniform:2ms-20ms or lognormal:10ms,0.5")
	fs.Float64Var(&opts.ErrorRate, "error-rate", 0, "fraction in [0, 1] of calls answered with --error-code")
	fs.StringVar(&errorCode, "error-code", greeter.DefaultErrorCode.String(), "gRPC status code of injected errors, by name or number")
	fs.Uint64Var(&opts.Seed, "seed", 0, "random seed for reproducible latencies and errors; 0 picks one")
	fs.StringVar(&addrFile, "addr-file", "", "once listening, write the bound host:port to this `file`")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if err := complete(&opts, listen, latency, errorCode, fs.Args()); err != nil {
		fmt.Fprintf(stderr, "greeter: %v (see greeter -h)\n", err)
		return 2
	}
	s, err := greeter.Start(listen, opts)
	if err != nil {
		fmt.Fprintf(stderr, "greeter: %v\n", err)
		return 1
	}
	if addrFile != "" {
		if err := writeFileAtomic(addrFile, s.Addr()); err != nil {
			fmt.Fprintf(stderr, "greeter: %v\n", err)
			s.Stop()
			return 1
		}
		defer os.Remove(addrFile)
	}
	fmt.Fprintf(stderr, "greeter: listening on %s (version %q, latency %s, error rate %v, error code %v)\n",
		s.Addr(), opts.Version, opts.Latency, opts.ErrorRate, opts.ErrorCode)
	<-ctx.Done()
	stopped := make(chan error, 1)
	go func() { stopped <- s.GracefulStop() }()
	select {
	case err = <-stopped:
	case <-time.After(stopTimeout):
		fmt.Fprintf(stderr, "greeter: calls still running after %v; closing them\n", stopTimeout)
		err = s.Stop()
	}
	if err != nil {
		fmt.Fprintf(stderr, "greeter: %v\n", err)
		return 1
	}
	fmt.Fprintf(stderr, "greeter: shut down after %d calls\n", s.Calls())
	return 0
}

// complete checks what the flag package cannot and fills in opts.
func complete(opts *greeter.Options, listen, latency, errorCode string, rest []string) error {
	if len(rest) > 0 {
		return fmt.Errorf("unexpected arguments %q: all settings are flags", rest)
	}
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return fmt.Errorf("--listen %q: want host:port", listen)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("--listen %q: not a loopback address", listen)
	}
	if opts.Latency, err = sampleapp.ParseLatency(latency); err != nil {
		return fmt.Errorf("--latency: %v", err)
	}
	if opts.ErrorCode, err = parseCode(errorCode); err != nil {
		return fmt.Errorf("--error-code: %v", err)
	}
	if err := opts.Validate(); err != nil {
		return err
	}
	return nil
}

// parseCode reads a status code by name (Unavailable) or number (14).
func parseCode(s string) (codes.Code, error) {
	if n, err := strconv.ParseUint(s, 10, 32); err == nil && n <= uint64(codes.Unauthenticated) {
		return codes.Code(n), nil
	}
	for c := codes.OK; c <= codes.Unauthenticated; c++ {
		if c.String() == s {
			return c, nil
		}
	}
	return 0, fmt.Errorf("%q is not a gRPC status code name or number", s)
}

// writeFileAtomic writes content to name through a temporary file and a
// rename, so that a reader never sees a partial address.
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
