package sampleapp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// mustLatency parses s or fails the test.
func mustLatency(t *testing.T, s string) Latency {
	t.Helper()
	l, err := ParseLatency(s)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// get fetches url and returns the response with its body read.
func get(t *testing.T, c *http.Client, url string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading body: %v", url, err)
	}
	return resp, string(b)
}

// serveInProcess calls h directly and returns the recorded response and how
// long ServeHTTP took, free of network noise.
func serveInProcess(ctx context.Context, h http.Handler, path string) (*httptest.ResponseRecorder, time.Duration) {
	req := httptest.NewRequestWithContext(ctx, http.MethodGet, path, nil)
	rec := httptest.NewRecorder()
	start := time.Now()
	h.ServeHTTP(rec, req)
	return rec, time.Since(start)
}

func TestHandlerResponse(t *testing.T) {
	tests := []struct {
		version  string
		path     string
		wantBody string
	}{
		{"v1", "/", `{"version":"v1"}`},
		{"v2", "/any/path?q=1", `{"version":"v2"}`},
		{"", "/", `{"version":""}`},
		{`a"b`, "/", `{"version":"a\"b"}`},
	}
	for _, tt := range tests {
		srv := httptest.NewServer(NewHandler(Options{Version: tt.version}))
		resp, body := get(t, srv.Client(), srv.URL+tt.path)
		srv.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("version %q GET %s: got status %d, want 200", tt.version, tt.path, resp.StatusCode)
		}
		if got := resp.Header.Get("X-Version"); got != tt.version {
			t.Errorf("version %q GET %s: got X-Version %q, want %q", tt.version, tt.path, got, tt.version)
		}
		if got := resp.Header.Get("Content-Type"); got != "application/json" {
			t.Errorf("version %q GET %s: got Content-Type %q, want application/json", tt.version, tt.path, got)
		}
		if body != tt.wantBody {
			t.Errorf("version %q GET %s: got body %s, want %s", tt.version, tt.path, body, tt.wantBody)
		}
	}
}

func TestHandlerErrorRate(t *testing.T) {
	const n = 2000
	tests := []struct {
		rate     float64
		code     int
		wantCode int
		lo, hi   int // accepted number of errors, about 5 standard deviations
	}{
		{0, 0, 503, 0, 0},
		{0.1, 500, 500, 133, 267},
		{0.5, 0, 503, 888, 1112},
		{1, 429, 429, n, n},
	}
	for _, tt := range tests {
		srv := httptest.NewServer(NewHandler(Options{Version: "v1", ErrorRate: tt.rate, ErrorCode: tt.code, Seed: 42}))
		c := srv.Client()
		errs := 0
		for range n {
			resp, body := get(t, c, srv.URL)
			switch resp.StatusCode {
			case http.StatusOK:
			case tt.wantCode:
				errs++
				if v := resp.Header.Get("X-Version"); v != "v1" || !strings.Contains(body, `"version":"v1"`) {
					t.Fatalf("rate %v: error response has X-Version %q, body %s; want v1 in both", tt.rate, v, body)
				}
			default:
				t.Fatalf("rate %v code %d: got status %d, want 200 or %d", tt.rate, tt.code, resp.StatusCode, tt.wantCode)
			}
		}
		srv.Close()
		if errs < tt.lo || errs > tt.hi {
			t.Errorf("rate %v: got %d errors in %d requests, want %d..%d", tt.rate, errs, n, tt.lo, tt.hi)
		}
	}
}

func TestHandlerSeedReproducible(t *testing.T) {
	// statuses returns the status of each of 200 sequential requests.
	statuses := func(seed uint64) []int {
		h := NewHandler(Options{ErrorRate: 0.5, Seed: seed})
		s := make([]int, 200)
		for i := range s {
			rec, _ := serveInProcess(context.Background(), h, "/")
			s[i] = rec.Code
		}
		return s
	}
	a, b, c := statuses(7), statuses(7), statuses(8)
	if !slices.Equal(a, b) {
		t.Errorf("seed 7 twice: got different outcomes\n%v\n%v", a, b)
	}
	if slices.Equal(a, c) {
		t.Errorf("seeds 7 and 8: got identical outcomes %v, want different", a)
	}
}

// retryTiming runs measure up to three times until it reports no problems.
// Wall-clock bounds on the slow side fail when the OS deschedules the test,
// for example while the go command compiles another package; a real defect
// fails every attempt, such noise hardly ever does.
func retryTiming(t *testing.T, measure func() []string) {
	t.Helper()
	const attempts = 3
	for i := 1; ; i++ {
		problems := measure()
		if len(problems) == 0 {
			return
		}
		if i == attempts {
			t.Errorf("%d attempts failed; the last:\n%s", attempts, strings.Join(problems, "\n"))
			return
		}
		t.Logf("attempt %d: %s; retrying", i, strings.Join(problems, "; "))
	}
}

func TestHandlerLatencyUniform(t *testing.T) {
	const (
		n  = 300
		lo = 2 * time.Millisecond
		hi = 4 * time.Millisecond
		// maxOvershoot bounds the typical (median) lateness; the spin makes
		// it a few microseconds.
		maxOvershoot = 100 * time.Microsecond
		// grossSlack bounds the slowest request. A busy machine can
		// deschedule the test for tens of milliseconds, so the tight bound
		// on the maximum is checked on the sampled latencies instead.
		grossSlack = time.Second
	)
	opts := Options{Latency: mustLatency(t, "uniform:2ms-4ms"), Seed: 1}
	retryTiming(t, func() []string {
		h := NewHandler(opts)
		took := make([]time.Duration, n)
		over := make([]time.Duration, n)
		for i := range took {
			rec, d := serveInProcess(context.Background(), h, "/")
			if rec.Code != http.StatusOK {
				t.Fatalf("uniform:2ms-4ms request %d: got status %d, want 200", i, rec.Code)
			}
			// The seed makes request i+1's latency known in advance.
			want, _ := h.draw(uint64(i + 1))
			if want < lo || want >= hi {
				t.Fatalf("uniform:2ms-4ms request %d: sampled %v, want in [%v, %v)", i, want, lo, hi)
			}
			// Noise only ever adds time, so a short request is a real defect.
			if d < want {
				t.Fatalf("uniform:2ms-4ms request %d: took %v, want >= sampled %v", i, d, want)
			}
			took[i], over[i] = d, d-want
		}
		slices.Sort(took)
		slices.Sort(over)
		t.Logf("uniform:2ms-4ms over %d requests: min %v, median %v, max %v; overshoot median %v, max %v",
			n, took[0], took[n/2], took[n-1], over[n/2], over[n-1])
		var problems []string
		if over[n/2] > maxOvershoot {
			problems = append(problems, fmt.Sprintf("uniform:2ms-4ms: got median overshoot %v, want <= %v", over[n/2], maxOvershoot))
		}
		if took[n-1] >= hi+grossSlack {
			problems = append(problems, fmt.Sprintf("uniform:2ms-4ms: got max %v, want < %v", took[n-1], hi+grossSlack))
		}
		return problems
	})
}

func TestHandlerLatencyPrecision(t *testing.T) {
	const n = 50
	want := 3 * time.Millisecond
	h := NewHandler(Options{Latency: mustLatency(t, "fixed:3ms")})
	retryTiming(t, func() []string {
		over := make([]time.Duration, n)
		for i := range over {
			_, took := serveInProcess(context.Background(), h, "/")
			over[i] = took - want
		}
		slices.Sort(over)
		t.Logf("fixed:3ms overshoot over %d requests: min %v, median %v, max %v", n, over[0], over[n/2], over[n-1])
		if over[0] < 0 {
			t.Fatalf("fixed:3ms: got a request taking %v, want >= %v", want+over[0], want)
		}
		// The spin makes typical overshoot a few microseconds.
		if over[n/2] > 100*time.Microsecond {
			return []string{fmt.Sprintf("fixed:3ms: got median overshoot %v, want <= 100us", over[n/2])}
		}
		return nil
	})
}

func TestHandlerRequests(t *testing.T) {
	tests := []struct {
		paths []string
		want  int64
	}{
		{nil, 0},
		{[]string{"/"}, 1},
		{[]string{"/", "/a", "/b?c=d"}, 3},
		{[]string{"/healthz", "/healthz"}, 0},
		{[]string{"/", HealthPath, "/x"}, 2},
	}
	for _, tt := range tests {
		h := NewHandler(Options{ErrorRate: 0.5})
		srv := httptest.NewServer(h)
		for _, p := range tt.paths {
			get(t, srv.Client(), srv.URL+p)
		}
		srv.Close()
		if got := h.Requests(); got != tt.want {
			t.Errorf("paths %q: got Requests() %d, want %d", tt.paths, got, tt.want)
		}
	}
}

func TestHandlerRequestsConcurrent(t *testing.T) {
	const workers, each = 8, 50
	h := NewHandler(Options{ErrorRate: 0.5, Latency: mustLatency(t, "uniform:0s-100us")})
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				serveInProcess(context.Background(), h, "/")
			}
		})
	}
	wg.Wait()
	if got := h.Requests(); got != workers*each {
		t.Errorf("%d workers x %d requests: got Requests() %d, want %d", workers, each, got, workers*each)
	}
}

func TestHealthz(t *testing.T) {
	// Latency and errors on every request must not affect the health check.
	h := NewHandler(Options{Version: "v9", Latency: mustLatency(t, "fixed:1h"), ErrorRate: 1})
	srv := httptest.NewServer(h)
	defer srv.Close()
	c := srv.Client()
	c.Timeout = 5 * time.Second
	resp, body := get(t, c, srv.URL+HealthPath)
	if resp.StatusCode != http.StatusOK || body != "ok" {
		t.Errorf("GET %s: got %d %q, want 200 \"ok\"", HealthPath, resp.StatusCode, body)
	}
	if got := resp.Header.Get("X-Version"); got != "v9" {
		t.Errorf("GET %s: got X-Version %q, want v9", HealthPath, got)
	}
	if got := h.Requests(); got != 0 {
		t.Errorf("GET %s: got Requests() %d, want 0", HealthPath, got)
	}
}

func TestHandlerCancel(t *testing.T) {
	// An hour of latency: only cancellation can end these requests in time.
	h := NewHandler(Options{Latency: mustLatency(t, "fixed:1h")})

	t.Run("in process", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		rec, took := serveInProcess(ctx, h, "/")
		if took > time.Second {
			t.Errorf("context timeout 20ms: got ServeHTTP taking %v, want about 20ms", took)
		}
		if rec.Body.Len() != 0 {
			t.Errorf("context timeout 20ms: got body %q, want none", rec.Body)
		}
	})

	t.Run("client gives up", func(t *testing.T) {
		returned := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer close(returned)
			h.ServeHTTP(w, r)
		}))
		defer srv.Close()
		c := srv.Client()
		c.Timeout = 20 * time.Millisecond
		if resp, err := c.Get(srv.URL); err == nil {
			resp.Body.Close()
			t.Fatalf("GET with 20ms timeout: got status %d, want a timeout", resp.StatusCode)
		}
		select {
		case <-returned:
		case <-time.After(5 * time.Second):
			t.Fatal("client timed out but the handler was still waiting 5s later")
		}
	})
}

func TestWaitUntil(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name  string
		ctx   context.Context
		after time.Duration
		want  error
	}{
		{"past deadline", context.Background(), -time.Millisecond, nil},
		{"spin only", context.Background(), 500 * time.Microsecond, nil},
		{"timer then spin", context.Background(), 3 * time.Millisecond, nil},
		{"cancelled, timer phase", cancelled, time.Hour, context.Canceled},
		{"cancelled, spin phase", cancelled, 500 * time.Microsecond, context.Canceled},
	}
	for _, tt := range tests {
		deadline := time.Now().Add(tt.after)
		err := waitUntil(tt.ctx, deadline)
		now := time.Now()
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: got error %v, want %v", tt.name, err, tt.want)
		}
		if err == nil && now.Before(deadline) {
			t.Errorf("%s: returned %v before the deadline", tt.name, deadline.Sub(now))
		}
	}
}

func TestOptionsValidate(t *testing.T) {
	tests := []struct {
		o       Options
		wantErr string
	}{
		{Options{}, ""},
		{Options{ErrorRate: 1, ErrorCode: 599}, ""},
		{Options{ErrorRate: 0.3, ErrorCode: 400}, ""},
		{Options{ErrorRate: -0.1}, "error rate -0.1: want a fraction in [0, 1]"},
		{Options{ErrorRate: 1.5}, "error rate 1.5: want a fraction in [0, 1]"},
		{Options{ErrorRate: math.NaN()}, "error rate NaN: want a fraction in [0, 1]"},
		{Options{ErrorCode: 200}, "error code 200: want 0 (meaning 503) or 400-599"},
		{Options{ErrorCode: 600}, "error code 600: want 0 (meaning 503) or 400-599"},
		{Options{Conversion: 1}, ""},
		{Options{Conversion: 0.2}, ""},
		{Options{Conversion: -0.1}, "conversion -0.1: want a fraction in [0, 1]"},
		{Options{Conversion: 1.5}, "conversion 1.5: want a fraction in [0, 1]"},
		{Options{Conversion: math.NaN()}, "conversion NaN: want a fraction in [0, 1]"},
	}
	for _, tt := range tests {
		err := tt.o.Validate()
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tt.wantErr {
			t.Errorf("%+v.Validate(): got %q, want %q", tt.o, got, tt.wantErr)
		}
	}
}

func TestNewHandlerPanicsOnBadOptions(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("NewHandler(Options{ErrorRate: 2}): got no panic, want one")
		}
	}()
	NewHandler(Options{ErrorRate: 2})
}

func BenchmarkHandler(b *testing.B) {
	h := NewHandler(Options{Version: "v1", ErrorRate: 0.1})
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			h.ServeHTTP(httptest.NewRecorder(), req)
		}
	})
}
