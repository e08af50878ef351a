package grpc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/iter8-tools/iter8/pkg/experiment"
	"github.com/iter8-tools/iter8/test/greeter"
)

// orderedLatencies are the latency metrics of one prefix, in the order in
// which their values must not decrease.
var orderedLatencies = []string{"latency-min", "latency-p50", "latency-p75", "latency-p90", "latency-p95", "latency-p99", "latency-p99.9", "latency-max"}

// checkLatencies checks that the latency metrics of prefix are present, in
// msec, ordered, with the mean inside [min, max], and that the histogram
// counts every call.
func checkLatencies(t *testing.T, r *experiment.Result, version, prefix string) {
	t.Helper()
	prev := -1.0
	for _, m := range orderedLatencies {
		name := prefix + "/" + m
		v := metric(t, r, version, name)
		if u := r.Version(version).Metrics[name].Unit; u != "msec" {
			t.Errorf("%s of version %q has unit %q, want msec", name, version, u)
		}
		if v < prev {
			t.Errorf("version %q: %s = %v is below the previous latency metric %v", version, name, v, prev)
		}
		prev = v
	}
	mean := metric(t, r, version, prefix+"/latency-mean")
	lo, hi := metric(t, r, version, prefix+"/latency-min"), metric(t, r, version, prefix+"/latency-max")
	if mean < lo || mean > hi {
		t.Errorf("version %q: %s/latency-mean = %v, want within [%v, %v]", version, prefix, mean, lo, hi)
	}
	if sd := metric(t, r, version, prefix+"/latency-stddev"); sd < 0 {
		t.Errorf("version %q: %s/latency-stddev = %v, want >= 0", version, prefix, sd)
	}
	h := r.Version(version).Histograms[prefix+"/latency"]
	if h == nil {
		t.Fatalf("version %q has no histogram %s/latency", version, prefix)
	}
	if count := metric(t, r, version, prefix+"/request-count"); float64(h.Count) != count {
		t.Errorf("version %q: %s/latency histogram counts %d, request-count is %v", version, prefix, h.Count, count)
	}
}

// checkCounts checks the call and error counts of prefix.
func checkCounts(t *testing.T, r *experiment.Result, version, prefix string, calls, errs int64) {
	t.Helper()
	if got := metric(t, r, version, prefix+"/request-count"); got != float64(calls) {
		t.Errorf("version %q: %s/request-count = %v, want %d", version, prefix, got, calls)
	}
	if got := metric(t, r, version, prefix+"/error-count"); got != float64(errs) {
		t.Errorf("version %q: %s/error-count = %v, want %d", version, prefix, got, errs)
	}
	if calls > 0 {
		if got, want := metric(t, r, version, prefix+"/error-rate"), float64(errs)/float64(calls); got != want {
			t.Errorf("version %q: %s/error-rate = %v, want %v", version, prefix, got, want)
		}
	}
}

func TestRunWithReflection(t *testing.T) {
	var seen observed
	s := startGreeter(t, greeter.Options{Version: "v1", Observe: seen.observe})
	f := mustDecode(t, fmt.Sprintf(`{host: %q, call: %s, insecure: true, total: 25, concurrency: 4, connections: 2, data: {name: ann}, metadata: {x-user: bob}}`,
		s.Addr(), greeter.SayHello), nil)
	r, err := f.run(t, t.Context())
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	checkCounts(t, r, "", "grpc", 25, 0)
	checkLatencies(t, r, "", "grpc")
	if got := s.Calls(); got != 25 {
		t.Errorf("the greeter got %d calls, want exactly 25", got)
	}
	for _, c := range seen.all() {
		if c.Name != "ann" || !slices.Equal(c.Metadata.Get("x-user"), []string{"bob"}) {
			t.Fatalf("the greeter saw name %q and x-user %q, want ann and bob", c.Name, c.Metadata.Get("x-user"))
		}
	}
}

func TestRunExactTotals(t *testing.T) {
	for _, tt := range []struct{ total, concurrency, connections int }{{1, 1, 1}, {1, 50, 1}, {7, 3, 3}, {100, 16, 4}} {
		t.Run(fmt.Sprintf("%d calls at concurrency %d", tt.total, tt.concurrency), func(t *testing.T) {
			s := startGreeter(t, greeter.Options{})
			f := mustDecode(t, fmt.Sprintf(`{host: %q, call: %s, insecure: true, total: %d, concurrency: %d, connections: %d}`,
				s.Addr(), greeter.SayHello, tt.total, tt.concurrency, tt.connections), nil)
			r, err := f.run(t, t.Context())
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			checkCounts(t, r, "", "grpc", int64(tt.total), 0)
			if got := s.Calls(); got != int64(tt.total) {
				t.Errorf("the greeter got %d calls, want %d", got, tt.total)
			}
		})
	}
}

// TestRunWithProtoFile uses the proto file shipped beside the greeter, on a
// server without reflection.
func TestRunWithProtoFile(t *testing.T) {
	var seen observed
	s := startGreeter(t, greeter.Options{NoReflection: true, Observe: seen.observe})
	spec := fmt.Sprintf(`{host: %q, call: %s, insecure: true, total: 12, concurrency: 2, protoFile: %s,
		data: [{name: a}, {name: b}, {name: "n{{.RequestNumber}}"}]}`, s.Addr(), greeter.SayHello, greeter.ProtoFile)
	f, errs := decode(t, spec, nil, func(name string) ([]byte, error) { return os.ReadFile(filepath.Join(greeterDir, name)) })
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	r, err := f.run(t, t.Context())
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	checkCounts(t, r, "", "grpc", 12, 0)
	checkLatencies(t, r, "", "grpc")
	// The list of messages is used in turn, with templates expanded.
	counts := map[string]int{}
	for _, c := range seen.all() {
		counts[c.Name]++
	}
	if counts["a"] != 4 || counts["b"] != 4 || counts["n2"] != 1 || counts["n11"] != 1 {
		t.Errorf("the greeter saw names %v, want a and b 4 times each and n2, n5, n8, n11", counts)
	}

	// Without the proto file, the method cannot be found.
	f = mustDecode(t, fmt.Sprintf(`{host: %q, call: %s, insecure: true, total: 1}`, s.Addr(), greeter.SayHello), nil)
	if _, err := f.run(t, t.Context()); err == nil || !strings.Contains(err.Error(), s.Addr()) {
		t.Errorf("Run with reflection against a server without it: %v, want an error naming the endpoint", err)
	}
}

func TestRunWithProtoset(t *testing.T) {
	s := startGreeter(t, greeter.Options{NoReflection: true})
	f := mustDecode(t, fmt.Sprintf(`{host: %q, call: %s, insecure: true, total: 5, protoset: greeter.protoset}`, s.Addr(), greeter.SayHello), nil)
	r, err := f.run(t, t.Context())
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	checkCounts(t, r, "", "grpc", 5, 0)
}

func TestRunTLS(t *testing.T) {
	cert, err := greeter.NewSelfSignedCertificate("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	tlsServer := startGreeter(t, greeter.Options{TLS: cert.ServerConfig(), Version: "tls"})
	plainServer := startGreeter(t, greeter.Options{Version: "plain"})
	rf := func(name string) ([]byte, error) {
		if name == "ca.pem" {
			return cert.PEM, nil
		}
		return readFile(name)
	}
	tests := []struct {
		name   string
		server *greeter.Server
		with   string
		// wantErr, when set, is in the task's error; otherwise the
		// task succeeds.
		wantErr []string
	}{
		{name: "rootCert with reflection", server: tlsServer, with: "rootCert: ca.pem"},
		{name: "rootCert with a protoset", server: tlsServer, with: "rootCert: ca.pem\nprotoset: greeter.protoset"},
		{name: "skipVerify", server: tlsServer, with: "skipVerify: true\nprotoset: greeter.protoset"},
		{name: "plaintext server when asked", server: plainServer, with: "insecure: true"},
		{name: "TLS by default: the system's roots do not know the server", server: tlsServer, with: "protoset: greeter.protoset",
			wantErr: []string{"none of 3 calls succeeded, all Unavailable", "certificate"}},
		{name: "TLS by default: reflection cannot find the method", server: tlsServer, with: "",
			wantErr: []string{"prepare the calls", "certificate"}},
		{name: "TLS against a plaintext server", server: plainServer, with: "rootCert: ca.pem\nprotoset: greeter.protoset",
			wantErr: []string{"none of 3 calls succeeded, all Unavailable"}},
		{name: "plaintext against a TLS server", server: tlsServer, with: "insecure: true\nprotoset: greeter.protoset",
			wantErr: []string{"none of 3 calls succeeded, all Unavailable"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := "host: " + tt.server.Addr() + "\ncall: " + greeter.SayHello + "\ntotal: 3\ntimeout: 5s\n" + tt.with
			f, errs := decode(t, spec, nil, rf)
			if len(errs) > 0 {
				t.Fatal(errs)
			}
			r, err := f.run(t, t.Context())
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Run: %v", err)
				}
				checkCounts(t, r, "", "grpc", 3, 0)
				return
			}
			if err == nil {
				t.Fatalf("Run succeeded, want an error with %q", tt.wantErr)
			}
			for _, w := range append(tt.wantErr, tt.server.Addr()) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Run: error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// freeAddr returns a loopback address where nothing listens.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestRunUnavailableFailsNamingTheEndpoint(t *testing.T) {
	addr := freeAddr(t)
	tests := []struct {
		name, with string
		want       []string
		// metrics: the calls that were made are recorded.
		metrics bool
	}{
		{"reflection", "", []string{"version v2 " + addr + " " + greeter.SayHello, "prepare the calls", "connection refused"}, false},
		{"protoset", "protoset: greeter.protoset", []string{"version v2 " + addr + " " + greeter.SayHello,
			"none of 10 calls succeeded, all Unavailable", "connection refused"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok := startGreeter(t, greeter.Options{})
			f := mustDecode(t, fmt.Sprintf(`
call: %s
insecure: true
total: 10
concurrency: 2
%s
endpoints:
- {host: %q, version: v1}
- {host: %q, version: v2}
`, greeter.SayHello, tt.with, ok.Addr(), addr), []string{"v1", "v2"})
			began := time.Now()
			r, err := f.run(t, t.Context())
			if err == nil {
				t.Fatal("Run succeeded against a port where nothing listens")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), ok.Addr()) {
				t.Errorf("error %q names the endpoint that works", err)
			}
			if took := time.Since(began); took > 5*time.Second {
				t.Errorf("Run took %v to find a refused connection", took)
			}
			// The version that works is measured all the same.
			checkCounts(t, r, "v1", "grpc", 10, 0)
			if tt.metrics {
				checkCounts(t, r, "v2", "grpc", 10, 10)
			}
		})
	}
}

func TestRunDeadlineExceededIsAnErrorMetric(t *testing.T) {
	s := startGreeter(t, greeter.Options{Latency: latency(t, "fixed:300ms")})
	f := mustDecode(t, fmt.Sprintf(`{host: %q, call: %s, insecure: true, total: 6, concurrency: 3, timeout: 50ms}`, s.Addr(), greeter.SayHello), nil)
	r, err := f.run(t, t.Context())
	if err != nil {
		t.Fatalf("Run: %v, want success with errors in the metrics", err)
	}
	checkCounts(t, r, "", "grpc", 6, 6)
	checkLatencies(t, r, "", "grpc")
	// The calls lasted about the timeout.
	if p50 := metric(t, r, "", "grpc/latency-p50"); p50 < 45 || p50 > 250 {
		t.Errorf("grpc/latency-p50 = %vms, want about the 50ms timeout", p50)
	}
}

func TestRunUnimplementedIsAnErrorMetric(t *testing.T) {
	s := startGreeter(t, greeter.Options{})
	for _, with := range []string{"", "protoset: greeter.protoset"} {
		f := mustDecode(t, "host: "+s.Addr()+"\ncall: "+greeter.SayGoodbye+"\ninsecure: true\ntotal: 4\n"+with, nil)
		r, err := f.run(t, t.Context())
		if err != nil {
			t.Fatalf("Run %q: %v, want success with errors in the metrics", with, err)
		}
		checkCounts(t, r, "", "grpc", 4, 4)
	}
}

func TestRunUnknownMethodWithReflectionFails(t *testing.T) {
	s := startGreeter(t, greeter.Options{})
	f := mustDecode(t, fmt.Sprintf(`{host: %q, call: helloworld.Greeter/SayHi, insecure: true, total: 4}`, s.Addr()), nil)
	_, err := f.run(t, t.Context())
	if err == nil || !strings.Contains(err.Error(), "SayHi") || !strings.Contains(err.Error(), s.Addr()) {
		t.Errorf("Run: %v, want an error naming the endpoint and the method", err)
	}
	if s.Calls() != 0 {
		t.Errorf("the greeter got %d calls", s.Calls())
	}
}

func TestRunInjectedErrorsAreMetrics(t *testing.T) {
	for _, code := range []codes.Code{codes.Internal, codes.ResourceExhausted, codes.Unavailable} {
		t.Run(code.String(), func(t *testing.T) {
			s := startGreeter(t, greeter.Options{ErrorRate: 0.3, ErrorCode: code, Seed: 42})
			f := mustDecode(t, fmt.Sprintf(`{host: %q, call: %s, insecure: true, total: 60, concurrency: 4}`, s.Addr(), greeter.SayHello), nil)
			r, err := f.run(t, t.Context())
			if err != nil {
				t.Fatalf("Run: %v, want success with errors in the metrics", err)
			}
			if s.Failures() == 0 || s.Failures() == 60 {
				t.Fatalf("the greeter failed %d of 60 calls; the test needs some of each", s.Failures())
			}
			checkCounts(t, r, "", "grpc", 60, s.Failures())
			checkLatencies(t, r, "", "grpc")
		})
	}
}

func TestRunTwoVersionsAndNamedEndpoints(t *testing.T) {
	v1 := startGreeter(t, greeter.Options{Version: "v1", Latency: latency(t, "fixed:2ms")})
	v2 := startGreeter(t, greeter.Options{Version: "v2", Latency: latency(t, "fixed:25ms"), ErrorRate: 1, ErrorCode: codes.Internal})
	f := mustDecode(t, fmt.Sprintf(`
call: %s
insecure: true
total: 20
concurrency: 5
percentiles: [42]
endpoints:
- {name: hello, host: %q, version: v1}
- {name: bye, host: %q, version: v1, call: %s}
- {host: %q, version: v2}
`, greeter.SayHello, v1.Addr(), v1.Addr(), greeter.SayGoodbye, v2.Addr()), []string{"v1", "v2"})
	r, err := f.run(t, t.Context())
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	checkCounts(t, r, "v1", "grpc-hello", 20, 0)
	checkCounts(t, r, "v1", "grpc-bye", 20, 20)
	checkCounts(t, r, "v1", "grpc", 40, 20)
	checkCounts(t, r, "v2", "grpc", 20, 20)
	for _, c := range []struct{ v, p string }{{"v1", "grpc"}, {"v1", "grpc-hello"}, {"v1", "grpc-bye"}, {"v2", "grpc"}} {
		checkLatencies(t, r, c.v, c.p)
	}
	if a, b := metric(t, r, "v1", "grpc-hello/latency-p50"), metric(t, r, "v2", "grpc/latency-p50"); !(a < b && b >= 25) {
		t.Errorf("p50 of v1 %vms and of v2 %vms: want v2 slower, at least its 25ms", a, b)
	}

	// Every declared metric is in the result and nothing else.
	for _, v := range []string{"v1", "v2"} {
		for _, m := range f.catalog.Known() {
			_, got := r.Value(v, m)
			if f.catalog.Has(v, m) != got {
				t.Errorf("version %s metric %s: declared %v, in the result %v", v, m, f.catalog.Has(v, m), got)
			}
		}
		for _, m := range resultMetrics(r, v) {
			if !f.catalog.Has(v, m) {
				t.Errorf("version %s: the result has %s, which Decode did not declare", v, m)
			}
		}
	}
}

func TestRunLoadsEndpointsConcurrently(t *testing.T) {
	// Each greeter notes when its one call arrives; in turn, the second
	// would arrive a whole call (1s) after the first.
	var mu sync.Mutex
	arrived := map[string]time.Time{}
	note := func(version string) func(greeter.Call) {
		return func(greeter.Call) {
			mu.Lock()
			arrived[version] = time.Now()
			mu.Unlock()
		}
	}
	a := startGreeter(t, greeter.Options{Latency: latency(t, "fixed:1s"), Observe: note("a")})
	b := startGreeter(t, greeter.Options{Latency: latency(t, "fixed:1s"), Observe: note("b")})
	f := mustDecode(t, fmt.Sprintf(`{call: %s, insecure: true, total: 1, concurrency: 1, protoset: greeter.protoset,
		endpoints: [{host: %q, version: a}, {host: %q, version: b}]}`, greeter.SayHello, a.Addr(), b.Addr()), []string{"a", "b"})
	if _, err := f.run(t, t.Context()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if gap := arrived["a"].Sub(arrived["b"]).Abs(); gap > 800*time.Millisecond {
		t.Errorf("the calls to the two endpoints arrived %v apart: endpoints were not loaded at the same time", gap)
	}
}

func TestRunDurationAndRPS(t *testing.T) {
	s := startGreeter(t, greeter.Options{})
	f := mustDecode(t, fmt.Sprintf(`{host: %q, call: %s, insecure: true, duration: 500ms, rps: 40, concurrency: 4}`, s.Addr(), greeter.SayHello), nil)
	began := time.Now()
	r, err := f.run(t, t.Context())
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(began)
	// 40 per second for half a second: 20 calls, the first at once.
	n := metric(t, r, "", "grpc/request-count")
	if n < 17 || n > 21 {
		t.Errorf("grpc/request-count = %v in 500ms at 40 rps, want about 20", n)
	}
	if took < 450*time.Millisecond || took > 2*time.Second {
		t.Errorf("a 500ms load took %v", took)
	}

	// A total at a rate takes as long as the rate says.
	f = mustDecode(t, fmt.Sprintf(`{host: %q, call: %s, insecure: true, total: 11, rps: 50}`, s.Addr(), greeter.SayHello), nil)
	began = time.Now()
	r, err = f.run(t, t.Context())
	if err != nil {
		t.Fatal(err)
	}
	checkCounts(t, r, "", "grpc", 11, 0)
	if took := time.Since(began); took < 190*time.Millisecond {
		t.Errorf("11 calls at 50 rps took %v, want at least 200ms", took)
	}
}

func TestRunDurationAtFullSpeed(t *testing.T) {
	s := startGreeter(t, greeter.Options{})
	f := mustDecode(t, fmt.Sprintf(`{host: %q, call: %s, insecure: true, duration: 300ms, concurrency: 8}`, s.Addr(), greeter.SayHello), nil)
	began := time.Now()
	r, err := f.run(t, t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(began); took > 2*time.Second {
		t.Errorf("a 300ms load took %v", took)
	}
	n := metric(t, r, "", "grpc/request-count")
	if n < 50 || float64(s.Calls()) != n {
		t.Errorf("grpc/request-count = %v, greeter calls %d: want the same, and many", n, s.Calls())
	}
	checkLatencies(t, r, "", "grpc")
}

// TestRunCancel cancels loads that would run for a long time: the task
// returns promptly with the cancellation and keeps what it measured.
func TestRunCancel(t *testing.T) {
	tests := []struct {
		name string
		opts greeter.Options
		with string
		// calls the greeter must have seen before the cancel.
		calls int64
	}{
		{"fast calls", greeter.Options{}, "duration: 60s\nconcurrency: 4", 50},
		{"calls in flight", greeter.Options{Latency: latency(t, "fixed:30s")}, "duration: 60s\nconcurrency: 4\ntimeout: 60s", 4},
		{"a slow rate", greeter.Options{}, "duration: 60s\nrps: 0.2", 1},
		{"a total", greeter.Options{Latency: latency(t, "fixed:20ms")}, "total: 100000\nconcurrency: 2", 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startGreeter(t, tt.opts)
			f := mustDecode(t, fmt.Sprintf("host: %s\ncall: %s\ninsecure: true\nprotoset: greeter.protoset\n%s", s.Addr(), greeter.SayHello, tt.with), nil)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			type ran struct {
				r   *experiment.Result
				err error
			}
			done := make(chan ran, 1)
			go func() {
				r, err := f.run(t, ctx)
				done <- ran{r, err}
			}()
			deadline := time.Now().Add(10 * time.Second)
			for s.Calls() < tt.calls {
				if time.Now().After(deadline) {
					t.Fatalf("the greeter got %d calls in 10s, want %d", s.Calls(), tt.calls)
				}
				time.Sleep(5 * time.Millisecond)
			}
			if tt.name == "a slow rate" {
				// Cancel while the pacer waits for the next call's turn.
				time.Sleep(50 * time.Millisecond)
			}
			cancel()
			cancelled := time.Now()
			var got ran
			select {
			case got = <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("Run did not return within 5s of the cancel")
			}
			if took := time.Since(cancelled); took > 2*time.Second {
				t.Errorf("Run returned %v after the cancel, want within 2s", took)
			}
			if !errors.Is(got.err, context.Canceled) {
				t.Errorf("Run: %v, want context.Canceled", got.err)
			}
			n := metric(t, got.r, "", "grpc/request-count")
			if tt.name == "calls in flight" {
				// Calls cut short are not measured.
				checkCounts(t, got.r, "", "grpc", 0, 0)
				return
			}
			if n < 1 {
				t.Errorf("grpc/request-count = %v after the cancel, want what was measured", n)
			}
			if errs := metric(t, got.r, "", "grpc/error-count"); errs != 0 {
				t.Errorf("grpc/error-count = %v: calls cut short by the cancel were counted as errors", errs)
			}
			checkLatencies(t, got.r, "", "grpc")
		})
	}
}

func TestRunAlreadyCancelled(t *testing.T) {
	s := startGreeter(t, greeter.Options{})
	f := mustDecode(t, fmt.Sprintf(`{host: %q, call: %s, insecure: true, total: 10}`, s.Addr(), greeter.SayHello), nil)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := f.run(t, ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Run: %v, want context.Canceled", err)
	}
	if s.Calls() != 0 {
		t.Errorf("the greeter got %d calls after a cancel", s.Calls())
	}
}

// TestRunCancelAtAnyMoment cancels loads at moments spread over their
// start, middle and end, where a Stop at the wrong time would panic in ghz.
func TestRunCancelAtAnyMoment(t *testing.T) {
	s := startGreeter(t, greeter.Options{})
	f := mustDecode(t, fmt.Sprintf(`{host: %q, call: %s, insecure: true, protoset: greeter.protoset, total: 40, concurrency: 4}`,
		s.Addr(), greeter.SayHello), nil)
	for i := range 40 {
		ctx, cancel := context.WithCancel(t.Context())
		timer := time.AfterFunc(time.Duration(i)*250*time.Microsecond, cancel)
		r, err := f.run(t, ctx)
		timer.Stop()
		cancel()
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Fatalf("cancel after %v: Run: %v", time.Duration(i)*250*time.Microsecond, err)
		}
		if n, ok := r.Value("", "grpc/request-count"); err == nil && (!ok || n != 40) {
			t.Fatalf("a load that was not cancelled counted %v calls, want 40", n)
		}
	}
}
