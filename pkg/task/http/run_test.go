package http

import (
	"context"
	"errors"
	"fmt"
	"net"
	nethttp "net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iter8-tools/iter8/pkg/experiment"
)

// orderedLatencies are the latency metrics of one prefix, in the order in
// which their values must not decrease.
var orderedLatencies = []string{"latency-min", "latency-p50", "latency-p75", "latency-p90", "latency-p95", "latency-p99", "latency-p99.9", "latency-max"}

// checkLatencies checks that the latency metrics of prefix are present, in
// msec, ordered, with the mean inside [min, max].
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

func TestRunCountsExactlyNumRequests(t *testing.T) {
	tests := []struct {
		numRequests, connections int
		qps                      float64 // 0: full speed
	}{
		{1, 1, 0}, {1, 4, 0}, {2, 1, 0}, {2, 4, 0}, {7, 4, 0}, {40, 4, 0}, {25, 3, 0}, {5, 16, 0},
		// fortio paces differently: at least 2 requests and 2 per thread.
		{1, 4, 500}, {3, 4, 500}, {5, 4, 500}, {9, 2, 500},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d requests on %d connections at qps %v", tt.numRequests, tt.connections, tt.qps), func(t *testing.T) {
			srv := newServer(t, nil)
			f := mustDecode(t, fmt.Sprintf(`{url: %q, numRequests: %d, connections: %d, qps: %v}`,
				srv.URL+"/x", tt.numRequests, tt.connections, tt.qps), nil)
			r, err := f.run(t, t.Context())
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if got := metric(t, r, "", "http/request-count"); got != float64(tt.numRequests) {
				t.Errorf("http/request-count = %v, want %d", got, tt.numRequests)
			}
			if got := srv.count.Load(); got != int64(tt.numRequests) {
				t.Errorf("server got %d requests, want %d", got, tt.numRequests)
			}
			if got := metric(t, r, "", "http/error-count"); got != 0 {
				t.Errorf("http/error-count = %v, want 0", got)
			}
			if got := metric(t, r, "", "http/error-rate"); got != 0 {
				t.Errorf("http/error-rate = %v, want 0", got)
			}
			checkLatencies(t, r, "", "http")
		})
	}
}

func TestRunProducesEveryDeclaredMetric(t *testing.T) {
	a, b := newServer(t, nil), newServer(t, nil)
	f := mustDecode(t, fmt.Sprintf(`
numRequests: 6
connections: 2
percentiles: [42, 99.99]
endpoints:
- {name: home, url: %q, version: v1}
- {name: other, url: %q, version: v1}
- {url: %q, version: v2}
`, a.URL, b.URL+"/other", b.URL), []string{"v1", "v2"})
	r, err := f.run(t, t.Context())
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	known := f.catalog.Known()
	if len(known) == 0 {
		t.Fatal("the Catalog lists no metrics")
	}
	for _, v := range []string{"v1", "v2"} {
		for _, m := range known {
			_, declared := r.Value(v, m)
			if f.catalog.Has(v, m) != declared {
				t.Errorf("version %s metric %s: declared %v, in the result %v", v, m, f.catalog.Has(v, m), declared)
			}
		}
		for _, m := range resultMetrics(r, v) {
			if !f.catalog.Has(v, m) {
				t.Errorf("version %s: the result has %s, which Decode did not declare", v, m)
			}
		}
	}
}

func TestRunServerErrorsAreMetricsNotFailures(t *testing.T) {
	for _, code := range []int{nethttp.StatusInternalServerError, nethttp.StatusServiceUnavailable, nethttp.StatusNotFound} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			srv := newServer(t, func(w nethttp.ResponseWriter, _ *nethttp.Request, _ int64) {
				nethttp.Error(w, "nope", code)
			})
			f := mustDecode(t, fmt.Sprintf(`{url: %q, numRequests: 10, connections: 2}`, srv.URL), nil)
			r, err := f.run(t, t.Context())
			if err != nil {
				t.Fatalf("Run against a server answering %d: %v, want success (errors are metrics)", code, err)
			}
			if got := metric(t, r, "", "http/error-rate"); got != 1 {
				t.Errorf("status %d: http/error-rate = %v, want 1", code, got)
			}
			if got := metric(t, r, "", "http/error-count"); got != 10 {
				t.Errorf("status %d: http/error-count = %v, want 10", code, got)
			}
			checkLatencies(t, r, "", "http")
		})
	}
}

func TestRunErrorRanges(t *testing.T) {
	// Odd requests get 404, even ones 500: 10 of each.
	handler := func(w nethttp.ResponseWriter, _ *nethttp.Request, n int64) {
		if n%2 == 1 {
			w.WriteHeader(nethttp.StatusNotFound)
			return
		}
		w.WriteHeader(nethttp.StatusInternalServerError)
	}
	tests := []struct {
		ranges    string
		wantCount float64
	}{
		{"", 20},                           // default 400-599
		{"[{lower: 500, upper: 599}]", 10}, // 404 is not an error
		{"[{lower: 500}]", 10},             // upper defaults to 599
		{"[{upper: 404}]", 10},             // lower defaults to 100
		{"[{lower: 405, upper: 499}]", 0},  // neither
		{"[{lower: 404, upper: 404}, {lower: 500, upper: 500}]", 20},
		{"[{lower: 200, upper: 299}]", 0},
	}
	for _, tt := range tests {
		t.Run(tt.ranges, func(t *testing.T) {
			srv := newServer(t, handler)
			with := fmt.Sprintf(`{url: %q, numRequests: 20, connections: 1}`, srv.URL)
			if tt.ranges != "" {
				with = fmt.Sprintf(`{url: %q, numRequests: 20, connections: 1, errorRanges: %s}`, srv.URL, tt.ranges)
			}
			r, err := mustDecode(t, with, nil).run(t, t.Context())
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if got := metric(t, r, "", "http/error-count"); got != tt.wantCount {
				t.Errorf("errorRanges %s on 10x404 + 10x500: http/error-count = %v, want %v", tt.ranges, got, tt.wantCount)
			}
			if got, want := metric(t, r, "", "http/error-rate"), tt.wantCount/20; got != want {
				t.Errorf("errorRanges %s: http/error-rate = %v, want %v", tt.ranges, got, want)
			}
		})
	}
}

// closedAddr returns the address of a loopback listener that is closed, so
// that connecting to it is refused.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

func TestRunConnectionRefusedFailsNamingTheEndpoint(t *testing.T) {
	tests := []struct{ name, load string }{
		{"numRequests", "numRequests: 6"},
		{"duration", "duration: 200ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := "http://" + closedAddr(t) + "/refused"
			f := mustDecode(t, fmt.Sprintf("{url: %q, %s, connections: 2, timeout: 1s}", url, tt.load), nil)
			start := time.Now()
			r, err := f.run(t, t.Context())
			if err == nil {
				t.Fatalf("Run against %s succeeded, want an error", url)
			}
			for _, want := range []string{url, "connection refused"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Run against %s: error %q does not contain %q", url, err, want)
				}
			}
			if elapsed := time.Since(start); elapsed > 10*time.Second {
				t.Errorf("Run against a refused port took %v", elapsed)
			}
			t.Logf("error: %v", err)
			// What was measured is kept: every request failed.
			count := metric(t, r, "", "http/request-count")
			if count == 0 {
				t.Errorf("http/request-count = 0, want the failed requests counted")
			}
			if got := metric(t, r, "", "http/error-count"); got != count {
				t.Errorf("http/error-count = %v, want all %v requests", got, count)
			}
		})
	}
}

func TestRunConnectionRefusedOnOneOfTwoVersions(t *testing.T) {
	srv := newServer(t, nil)
	refused := "http://" + closedAddr(t) + "/"
	f := mustDecode(t, fmt.Sprintf(`{numRequests: 6, connections: 2, endpoints: [{url: %q, version: good}, {url: %q, version: bad}]}`,
		srv.URL, refused), []string{"good", "bad"})
	r, err := f.run(t, t.Context())
	if err == nil {
		t.Fatal("Run succeeded, want an error for version bad")
	}
	if msg := err.Error(); !strings.Contains(msg, "version bad "+refused) || strings.Contains(msg, srv.URL) {
		t.Errorf("error %q: want it to name version bad and %s, and not the good endpoint", msg, refused)
	}
	if got := metric(t, r, "good", "http/request-count"); got != 6 {
		t.Errorf("version good: http/request-count = %v, want 6", got)
	}
	if got := metric(t, r, "bad", "http/error-rate"); got != 1 {
		t.Errorf("version bad: http/error-rate = %v, want 1", got)
	}
}

func TestRunTimeouts(t *testing.T) {
	// Slow answers take 10s, or until the client gives up.
	slow := func(w nethttp.ResponseWriter, r *nethttp.Request, _ int64) { delay(r, 10*time.Second) }
	t.Run("no request answered", func(t *testing.T) {
		srv := newServer(t, slow)
		f := mustDecode(t, fmt.Sprintf(`{url: %q, numRequests: 4, connections: 2, timeout: 100ms}`, srv.URL), nil)
		start := time.Now()
		r, err := f.run(t, t.Context())
		if err == nil {
			t.Fatal("Run succeeded though every request timed out")
		}
		for _, want := range []string{srv.URL, "none of 4 requests got a response"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not contain %q", err, want)
			}
		}
		if got := metric(t, r, "", "http/error-count"); got != 4 {
			t.Errorf("http/error-count = %v, want 4", got)
		}
		if got := metric(t, r, "", "http/error-rate"); got != 1 {
			t.Errorf("http/error-rate = %v, want 1", got)
		}
		// Without the timeout, two rounds of 10s answers would take 20s.
		if elapsed := time.Since(start); elapsed > 5*time.Second {
			t.Errorf("4 requests on 2 connections with a 100ms timeout took %v, want well under 5s", elapsed)
		}
		t.Logf("error: %v", err)
	})
	t.Run("some requests answered", func(t *testing.T) {
		// Every second request is slow; one connection sends them in turn.
		// The server closes each connection after answering: fortio's fast
		// client retries a request once, unseen, when a reused keep-alive
		// connection times out before any byte arrives, and that retry
		// would land on the next, fast, answer.
		srv := newServer(t, func(w nethttp.ResponseWriter, r *nethttp.Request, n int64) {
			w.Header().Set("Connection", "close")
			if n%2 == 0 {
				delay(r, 10*time.Second)
			}
		})
		f := mustDecode(t, fmt.Sprintf(`{url: %q, numRequests: 10, connections: 1, timeout: 100ms}`, srv.URL), nil)
		r, err := f.run(t, t.Context())
		if err != nil {
			t.Fatalf("Run: %v, want success with errors counted", err)
		}
		if got := metric(t, r, "", "http/request-count"); got != 10 {
			t.Errorf("http/request-count = %v, want 10", got)
		}
		if got := metric(t, r, "", "http/error-count"); got != 5 {
			t.Errorf("http/error-count = %v, want 5 (the slow half)", got)
		}
		if got := srv.count.Load(); got != 10 {
			t.Errorf("server got %d requests, want 10 (no retries)", got)
		}
		// Timed-out requests are recorded, at the timeout or later.
		if got := metric(t, r, "", "http/latency-max"); got < 100 {
			t.Errorf("http/latency-max = %vms, want at least the 100ms timeout", got)
		}
		if h := r.Version("").Histograms["http/latency"]; h.Count+h.Dropped != 10 {
			t.Errorf("http/latency histogram: %d recorded + %d dropped, want 10", h.Count, h.Dropped)
		}
	})
}

func TestRunSlowServerLatency(t *testing.T) {
	const d = 20 * time.Millisecond
	srv := newServer(t, func(w nethttp.ResponseWriter, r *nethttp.Request, _ int64) { delay(r, d) })
	r, err := mustDecode(t, fmt.Sprintf(`{url: %q, numRequests: 8, connections: 2}`, srv.URL), nil).run(t, t.Context())
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	for _, m := range []string{"http/latency-min", "http/latency-p50", "http/latency-mean"} {
		if got := metric(t, r, "", m); got < 20 {
			t.Errorf("server delaying 20ms: %s = %vms, want >= 20", m, got)
		}
	}
	if got := metric(t, r, "", "http/latency-p50"); got > 500 {
		t.Errorf("server delaying 20ms: http/latency-p50 = %vms, want well under 500", got)
	}
	checkLatencies(t, r, "", "http")
}

func TestRunTwoVersions(t *testing.T) {
	fast := newServer(t, func(w nethttp.ResponseWriter, r *nethttp.Request, _ int64) { delay(r, 2*time.Millisecond) })
	slow := newServer(t, func(w nethttp.ResponseWriter, r *nethttp.Request, _ int64) { delay(r, 30*time.Millisecond) })
	f := mustDecode(t, fmt.Sprintf(`
numRequests: 12
connections: 2
endpoints:
- {url: %q, version: fast}
- {url: %q, version: slow, connections: 3}
`, fast.URL, slow.URL), []string{"fast", "slow"})
	r, err := f.run(t, t.Context())
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	for _, v := range []string{"fast", "slow"} {
		if got := metric(t, r, v, "http/request-count"); got != 12 {
			t.Errorf("version %s: http/request-count = %v, want 12", v, got)
		}
		checkLatencies(t, r, v, "http")
	}
	if fast.count.Load() != 12 || slow.count.Load() != 12 {
		t.Errorf("servers got %d (fast) and %d (slow) requests, want 12 each", fast.count.Load(), slow.count.Load())
	}
	fm, sm := metric(t, r, "fast", "http/latency-mean"), metric(t, r, "slow", "http/latency-mean")
	if !(sm > fm) {
		t.Errorf("latency-mean: slow %vms, fast %vms; want slow higher", sm, fm)
	}
	if got := metric(t, r, "slow", "http/latency-min"); got < 30 {
		t.Errorf("version slow: http/latency-min = %vms, want >= 30", got)
	}
}

// TestRunLoadsEndpointsConcurrently: each server holds its first request
// until the other server has seen one, which only happens when both
// endpoints are loaded at the same time; otherwise it answers 503 after 5s.
func TestRunLoadsEndpointsConcurrently(t *testing.T) {
	aSeen, bSeen := make(chan struct{}), make(chan struct{})
	var aOnce, bOnce sync.Once
	barrier := func(mine chan struct{}, once *sync.Once, other chan struct{}) func(nethttp.ResponseWriter, *nethttp.Request, int64) {
		return func(w nethttp.ResponseWriter, r *nethttp.Request, _ int64) {
			once.Do(func() { close(mine) })
			select {
			case <-other:
			case <-time.After(5 * time.Second):
				w.WriteHeader(nethttp.StatusServiceUnavailable)
			case <-r.Context().Done():
			}
		}
	}
	a := newServer(t, barrier(aSeen, &aOnce, bSeen))
	b := newServer(t, barrier(bSeen, &bOnce, aSeen))
	f := mustDecode(t, fmt.Sprintf(`{numRequests: 4, connections: 2, timeout: 10s, endpoints: [{url: %q, version: a}, {url: %q, version: b}]}`,
		a.URL, b.URL), []string{"a", "b"})
	r, err := f.run(t, t.Context())
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	for _, v := range []string{"a", "b"} {
		if got := metric(t, r, v, "http/error-count"); got != 0 {
			t.Errorf("version %s: http/error-count = %v, want 0 (the endpoints were not loaded at the same time)", v, got)
		}
	}
}

func TestRunNamedEndpoints(t *testing.T) {
	home := newServer(t, nil)
	search := newServer(t, func(w nethttp.ResponseWriter, r *nethttp.Request, n int64) {
		delay(r, 20*time.Millisecond)
		if n <= 2 {
			w.WriteHeader(nethttp.StatusBadGateway)
		}
	})
	other := newServer(t, nil)
	f := mustDecode(t, fmt.Sprintf(`
connections: 2
numRequests: 6
endpoints:
- {name: home, url: %q, version: v1}
- {name: search, url: %q, version: v1, connections: 1}
- {name: home, url: %q, version: v2}
`, home.URL, search.URL+"/search", other.URL), []string{"v1", "v2"})
	r, err := f.run(t, t.Context())
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	tests := []struct {
		version, metric string
		want            float64
	}{
		{"v1", "http-home/request-count", 6},
		{"v1", "http-search/request-count", 6},
		{"v1", "http/request-count", 12},
		{"v1", "http-home/error-count", 0},
		{"v1", "http-search/error-count", 2},
		{"v1", "http/error-count", 2},
		{"v1", "http/error-rate", 2.0 / 12},
		{"v1", "http-search/error-rate", 2.0 / 6},
		{"v2", "http-home/request-count", 6},
		{"v2", "http/request-count", 6},
	}
	for _, tt := range tests {
		if got := metric(t, r, tt.version, tt.metric); got != tt.want {
			t.Errorf("version %s: %s = %v, want %v", tt.version, tt.metric, got, tt.want)
		}
	}
	if _, ok := r.Value("v2", "http-search/request-count"); ok {
		t.Errorf("version v2 has http-search/request-count, want only v1")
	}
	for _, p := range []string{"http", "http-home", "http-search"} {
		checkLatencies(t, r, "v1", p)
	}
	// The version's histogram merges both endpoints'.
	hs := r.Version("v1").Histograms
	if got, want := hs["http/latency"].Count, hs["http-home/latency"].Count+hs["http-search/latency"].Count; got != want || got != 12 {
		t.Errorf("v1 http/latency counts %d, endpoints %d together, want 12", got, want)
	}
	if got := metric(t, r, "v1", "http-search/latency-min"); got < 20 {
		t.Errorf("http-search/latency-min = %vms, want >= 20", got)
	}
	if h, s := metric(t, r, "v1", "http-home/latency-p50"), metric(t, r, "v1", "http-search/latency-p50"); !(h < s) {
		t.Errorf("http-home/latency-p50 %vms, http-search/latency-p50 %vms; want home faster", h, s)
	}
	if got := metric(t, r, "v1", "http/latency-max"); got < 20 {
		t.Errorf("v1 http/latency-max = %vms, want >= 20 (it covers search)", got)
	}
	if got := search.seen()[0].Path; got != "/search" {
		t.Errorf("search server got path %q, want /search", got)
	}
}

func TestRunSendsMethodHeadersAndPayload(t *testing.T) {
	tests := []struct {
		name       string
		with       string // after url
		wantMethod string
		wantBody   string
		wantType   string
		wantHeader map[string]string
	}{
		{name: "GET by default", with: `headers: {X-Test: a}`, wantMethod: "GET",
			wantHeader: map[string]string{"X-Test": "a"}},
		{name: "POST with a payload", with: `payload: hello, contentType: text/plain`, wantMethod: "POST",
			wantBody: "hello", wantType: "text/plain"},
		{name: "payload without contentType", with: `payload: raw`, wantMethod: "POST",
			wantBody: "raw", wantType: "application/octet-stream"},
		{name: "PUT with a payload file", with: `method: put, payloadFile: payload.json, contentType: application/json`,
			wantMethod: "PUT", wantBody: `{"hello":"world"}`, wantType: "application/json"},
		{name: "DELETE", with: `method: DELETE`, wantMethod: "DELETE"},
		{name: "endpoint overrides", with: `headers: {X-Env: task, X-Team: t}, endpoints: [{url: URL, headers: {X-Env: ep}, method: patch, payload: p}]`,
			wantMethod: "PATCH", wantBody: "p", wantHeader: map[string]string{"X-Env": "ep", "X-Team": "t"}},
		{name: "authorization header", with: `headers: {Authorization: "Bearer abc"}`, wantMethod: "GET",
			wantHeader: map[string]string{"Authorization": "Bearer abc"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, nil)
			with := strings.Replace(tt.with, "URL", fmt.Sprintf("%q", srv.URL+"/p"), 1)
			if !strings.Contains(tt.with, "endpoints") {
				with = fmt.Sprintf("url: %q, %s", srv.URL+"/p", with)
			}
			f, errs := decode(t, "{numRequests: 4, connections: 2, "+with+"}", nil, readFile)
			if len(errs) > 0 {
				t.Fatalf("Decode: %v", errs)
			}
			if _, err := f.run(t, t.Context()); err != nil {
				t.Fatalf("Run: %v", err)
			}
			reqs := srv.seen()
			if len(reqs) != 4 {
				t.Fatalf("server got %d requests, want 4", len(reqs))
			}
			for i, got := range reqs {
				if got.Method != tt.wantMethod || got.Body != tt.wantBody || got.Path != "/p" {
					t.Errorf("request %d: %s %s body %q, want %s /p body %q", i, got.Method, got.Path, got.Body, tt.wantMethod, tt.wantBody)
				}
				if tt.wantType != "" && got.ContentType != tt.wantType {
					t.Errorf("request %d: Content-Type %q, want %q", i, got.ContentType, tt.wantType)
				}
				if got.UserAgent != "iter8" {
					t.Errorf("request %d: User-Agent %q, want iter8", i, got.UserAgent)
				}
				for k, v := range tt.wantHeader {
					if h := got.Header.Values(k); len(h) != 1 || h[0] != v {
						t.Errorf("request %d: header %s = %q, want [%q]", i, k, h, v)
					}
				}
			}
		})
	}
}

func TestRunCancelStopsLongLoad(t *testing.T) {
	srv := newServer(t, func(w nethttp.ResponseWriter, r *nethttp.Request, _ int64) { delay(r, time.Millisecond) })
	f := mustDecode(t, fmt.Sprintf(`{url: %q, duration: 30s, connections: 2}`, srv.URL), nil)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	env := f.newEnv()
	done := make(chan error, 1)
	go func() { done <- f.task.Run(ctx, env) }()

	// Wait until the load is under way.
	deadline := time.Now().Add(10 * time.Second)
	for srv.count.Load() < 20 {
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("the server got %d requests in 10s, want 20", srv.count.Load())
		}
		select {
		case err := <-done:
			t.Fatalf("Run returned %v before it was cancelled", err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	cancelled := time.Now()
	cancel()
	var err error
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return within 10s of its context being cancelled")
	}
	if elapsed := time.Since(cancelled); elapsed > 2*time.Second {
		t.Errorf("Run returned %v after cancel, want within 2s", elapsed)
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Run error = %v, want context.Canceled", err)
	}
	count, ok := env.Result.Value("", "http/request-count")
	if !ok || count < 1 {
		t.Fatalf("after cancel: http/request-count = %v (present %v), want the requests sent so far", count, ok)
	}
	if sent := float64(srv.count.Load()); count > sent {
		t.Errorf("http/request-count = %v, but the server got only %v requests", count, sent)
	}
	checkLatencies(t, env.Result, "", "http")
}

func TestRunAlreadyCancelled(t *testing.T) {
	srv := newServer(t, nil)
	f := mustDecode(t, fmt.Sprintf(`{url: %q, numRequests: 10}`, srv.URL), nil)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := f.run(t, ctx)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Run with a cancelled context: error = %v, want context.Canceled", err)
	}
	if n := srv.count.Load(); n != 0 {
		t.Errorf("Run with a cancelled context sent %d requests, want 0", n)
	}
}

func TestRunWarmupIsNotRecorded(t *testing.T) {
	tests := []struct{ warmup, connections int }{{6, 2}, {1, 4}, {3, 8}}
	for _, tt := range tests {
		srv := newServer(t, nil)
		f := mustDecode(t, fmt.Sprintf(`{url: %q, numRequests: 10, warmupNumRequests: %d, connections: %d}`,
			srv.URL, tt.warmup, tt.connections), nil)
		r, err := f.run(t, t.Context())
		if err != nil {
			t.Fatalf("warmup %d on %d connections: Run: %v", tt.warmup, tt.connections, err)
		}
		if got := metric(t, r, "", "http/request-count"); got != 10 {
			t.Errorf("warmup %d on %d connections: http/request-count = %v, want 10 (warm-up excluded)", tt.warmup, tt.connections, got)
		}
		if got, want := srv.count.Load(), int64(10+tt.warmup); got != want {
			t.Errorf("warmup %d on %d connections: server got %d requests, want %d", tt.warmup, tt.connections, got, want)
		}
	}
}

func TestRunDuration(t *testing.T) {
	srv := newServer(t, nil)
	f := mustDecode(t, fmt.Sprintf(`{url: %q, duration: 300ms, connections: 2}`, srv.URL), nil)
	start := time.Now()
	r, err := f.run(t, t.Context())
	elapsed := time.Since(start)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if elapsed < 300*time.Millisecond {
		t.Errorf("duration 300ms: Run took %v", elapsed)
	}
	count := metric(t, r, "", "http/request-count")
	if count < 2 {
		t.Errorf("http/request-count = %v in 300ms at full speed, want several", count)
	}
	// Every request sent is measured: no hidden warm-up request.
	if sent := srv.count.Load(); float64(sent) != count {
		t.Errorf("server got %d requests, want http/request-count %v", sent, count)
	}
}

func TestRunQPS(t *testing.T) {
	srv := newServer(t, nil)
	// 10 requests at 50/s on one connection are spread over about 200ms.
	f := mustDecode(t, fmt.Sprintf(`{url: %q, numRequests: 10, qps: 50, connections: 1}`, srv.URL), nil)
	start := time.Now()
	r, err := f.run(t, t.Context())
	elapsed := time.Since(start)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if elapsed < 150*time.Millisecond {
		t.Errorf("10 requests at qps 50 took %v, want at least 150ms", elapsed)
	}
	if got := metric(t, r, "", "http/request-count"); got != 10 {
		t.Errorf("http/request-count = %v, want 10", got)
	}
}
