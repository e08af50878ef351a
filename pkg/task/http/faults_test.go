package http

import (
	"bytes"
	"fmt"
	nethttp "net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iter8-tools/iter8/pkg/experiment"
	"github.com/iter8-tools/iter8/pkg/experiment/experimenttest"
	"github.com/iter8-tools/iter8/test/rawhttp"
)

// runLogged runs the task and returns its result, error and log.
func (f *fixture) runLogged(t *testing.T) (*experiment.Result, error, string) {
	t.Helper()
	var log syncBuffer
	env := experimenttest.Env(f.plan, &log)
	err := f.task.Run(t.Context(), env)
	return env.Result, err, log.String()
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// failures returns the failed requests of a version under prefix by kind.
func failures(r *experiment.Result, version, prefix string) map[string]experiment.RequestFailure {
	out := map[string]experiment.RequestFailure{}
	for _, f := range r.Version(version).Failures[prefix] {
		out[f.Kind] = f
	}
	return out
}

func TestRunLargeBodiesAreMeasuredWhole(t *testing.T) {
	// Each body pauses after 512 KiB, past any fixed read buffer: a client
	// that stopped reading early would report far less than the pause.
	const pause = 150 * time.Millisecond
	for _, size := range []int{128 << 10, 1 << 20, 64 << 20} {
		for _, chunked := range []bool{false, true} {
			t.Run(fmt.Sprintf("%d bytes chunked=%v", size, chunked), func(t *testing.T) {
				chunk := bytes.Repeat([]byte("x"), 64<<10)
				srv := newServer(t, func(w nethttp.ResponseWriter, r *nethttp.Request, _ int64) {
					if !chunked {
						w.Header().Set("Content-Length", fmt.Sprint(size))
					}
					for sent := 0; sent < size; sent += len(chunk) {
						if sent == 512<<10 {
							w.(nethttp.Flusher).Flush()
							delay(r, pause)
						}
						w.Write(chunk[:min(len(chunk), size-sent)])
					}
				})
				f := mustDecode(t, fmt.Sprintf(`{url: %q, numRequests: 4, connections: 2, timeout: 30s}`, srv.URL), nil)
				r, err := f.run(t, t.Context())
				if err != nil {
					t.Fatalf("Run: %v", err)
				}
				if got := metric(t, r, "", "http/error-count"); got != 0 {
					t.Errorf("http/error-count = %v, want 0; failures %v", got, r.Version("").Failures)
				}
				minLatency := metric(t, r, "", "http/latency-min")
				if size > 512<<10 && minLatency < float64(pause.Milliseconds()) {
					t.Errorf("http/latency-min = %vms, want at least the %v pause in every body", minLatency, pause)
				}
			})
		}
	}
}

func TestRunBrokenResponsesAreErrorsWithTheirReason(t *testing.T) {
	tests := []struct {
		name, answer, kind, example string
	}{
		{"short body", "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789", "short body", "got 10 of 1000 bytes"},
		{"cut chunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nabc", "short body", "chunk"},
		{"closed mid-headers", "HTTP/1.1 200 OK\r\nContent-Ty", "bad response", "headers"},
		{"closed without a response", "", "no response", "closed the connection"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := rawhttp.Answer(t, tt.answer).URL()
			f := mustDecode(t, fmt.Sprintf(`{url: %q, numRequests: 6, connections: 2}`, url), nil)
			r, err, log := f.runLogged(t)
			if got := metric(t, r, "", "http/error-count"); got != 6 {
				t.Errorf("http/error-count = %v, want all 6", got)
			}
			got := failures(r, "", "http")[tt.kind]
			if got.Count != 6 || !strings.Contains(got.Example, tt.example) {
				t.Errorf("failures %+v, want 6 of kind %q with %q", r.Version("").Failures, tt.kind, tt.example)
			}
			if n := strings.Count(log, "requests failed"); n != 1 || !strings.Contains(log, tt.kind) {
				t.Errorf("log has %d 'requests failed' lines, want 1 naming %q:\n%s", n, tt.kind, log)
			}
			// A response that was cut short still answered: the task does
			// not call the endpoint unreachable, it measures errors.
			if tt.kind == "no response" {
				if err == nil || !strings.Contains(err.Error(), "none of 6 requests got a response") {
					t.Errorf("Run error %v, want none of 6 requests got a response", err)
				}
			}
		})
	}
}

func TestRunRedirectsAreNotFollowed(t *testing.T) {
	srv := newServer(t, func(w nethttp.ResponseWriter, r *nethttp.Request, _ int64) {
		nethttp.Redirect(w, r, r.URL.Path, nethttp.StatusFound) // to itself, forever
	})
	f := mustDecode(t, fmt.Sprintf(`{url: %q, numRequests: 5, connections: 1}`, srv.URL+"/loop"), nil)
	r, err := f.run(t, t.Context())
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got := srv.count.Load(); got != 5 {
		t.Errorf("server got %d requests, want 5: a redirect is a response, not followed", got)
	}
	if got := metric(t, r, "", "http/error-count"); got != 0 {
		t.Errorf("http/error-count = %v, want 0: 3xx is not in the default error ranges", got)
	}
}

func TestRunSlowTargetTimesOutWithTheReason(t *testing.T) {
	srv := newServer(t, func(w nethttp.ResponseWriter, r *nethttp.Request, _ int64) { delay(r, 10*time.Second) })
	f := mustDecode(t, fmt.Sprintf(`{url: %q, numRequests: 4, connections: 2, timeout: 200ms}`, srv.URL), nil)
	r, err, _ := f.runLogged(t)
	if err == nil || !strings.Contains(err.Error(), "timeout: no complete response within 200ms") {
		t.Errorf("Run error %v, want the timeout named", err)
	}
	if got := failures(r, "", "http")["timeout"]; got.Count != 4 {
		t.Errorf("failures %+v, want 4 timeouts", r.Version("").Failures)
	}
}

func TestRunUnreachableTargetFailsEarly(t *testing.T) {
	good := newServer(t, nil)
	refused := "http://" + closedAddr(t) + "/"
	f := mustDecode(t, fmt.Sprintf(`{duration: 20s, connections: 4, endpoints: [{url: %q, version: good}, {url: %q, version: bad}]}`,
		good.URL, refused), []string{"good", "bad"})
	start := time.Now()
	r, err, log := f.runLogged(t)
	elapsed := time.Since(start)
	if err == nil {
		t.Fatal("Run succeeded against a closed port")
	}
	for _, want := range []string{"version bad " + refused, "20 connection attempts in a row failed", "connection refused"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	// 20 s of load would have run without the early stop.
	if elapsed > 10*time.Second {
		t.Errorf("Run took %v against a closed port, want it stopped early", elapsed)
	}
	t.Logf("stopped after %v", elapsed)
	if got := failures(r, "bad", "http")["connect"]; got.Count < 20 {
		t.Errorf("version bad failures %+v, want at least 20 connect failures", r.Version("bad").Failures)
	}
	if n := strings.Count(log, "requests failed"); n != 1 {
		t.Errorf("log has %d 'requests failed' lines, want 1 (the bad endpoint):\n%s", n, log)
	}
	// What good measured is kept: its count is what its server saw, but
	// for at most one request per connection cut by the stop (on a busy
	// machine the stop may come before any completes, so 0 can be right).
	if got, served := metric(t, r, "good", "http/request-count"), good.count.Load(); got > float64(served) || got < float64(served-4) {
		t.Errorf("version good: http/request-count = %v, want from %d to the %d requests its server saw", got, served-4, served)
	}
}
