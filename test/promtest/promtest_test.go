package promtest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iter8-tools/iter8/test/sampleapp"
)

// version is one sample app version in the test.
type version struct {
	name    string
	latency string
	errRate float64
	srv     *httptest.Server
	ok      atomic.Int64 // answers seen by the client
	errs    atomic.Int64
}

// load sends n requests to v with a few workers and counts the answers.
func (v *version) load(t *testing.T, n, workers int) {
	t.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	c := &http.Client{Timeout: 10 * time.Second}
	errc := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				resp, err := c.Get(v.srv.URL + "/")
				if err != nil {
					errc <- err
					return
				}
				resp.Body.Close()
				switch resp.StatusCode {
				case http.StatusOK:
					v.ok.Add(1)
				case sampleapp.DefaultErrorCode:
					v.errs.Add(1)
				default:
					errc <- fmt.Errorf("%s: got status %d", v.name, resp.StatusCode)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
}

// TestSampleAppsScraped runs two versions of the sample app, lets a real
// Prometheus scrape them and checks what PromQL reads back.
func TestSampleAppsScraped(t *testing.T) {
	began := time.Now()
	const n = 200
	versions := []*version{
		{name: "v1", latency: "fixed:5ms"},
		{name: "v2", latency: "fixed:30ms", errRate: 0.1},
	}
	var targets []string
	for _, v := range versions {
		l, err := sampleapp.ParseLatency(v.latency)
		if err != nil {
			t.Fatal(err)
		}
		v.srv = httptest.NewServer(sampleapp.NewHandler(sampleapp.Options{
			Version: v.name, Latency: l, ErrorRate: v.errRate, Seed: 11,
		}))
		t.Cleanup(v.srv.Close)
		targets = append(targets, v.name+"="+v.srv.Listener.Addr().String())
	}
	prom := StartT(t, targets...)
	started := time.Since(began)

	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for _, v := range versions {
		wg.Go(func() { v.load(t, n, 4) })
	}
	wg.Wait()
	loaded := time.Since(began)

	for _, v := range versions {
		// Exact: every answered request is counted before it is answered,
		// and the wait ends at the first scrape after the load.
		q := fmt.Sprintf(`sum(%s{version=%q})`, sampleapp.MetricRequests, v.name)
		if _, err := prom.WaitFor(ctx, q, func(got float64) bool { return got == n }); err != nil {
			t.Fatalf("%s: want %d: %v", v.name, n, err)
		}
		q = fmt.Sprintf(`sum(%s{version=%q,error="true"})`, sampleapp.MetricRequests, v.name)
		got, err := prom.WaitFor(ctx, q, func(float64) bool { return true })
		if err != nil {
			t.Fatal(err)
		}
		if want := float64(v.errs.Load()); got != want {
			t.Errorf("%s: got %v errors in Prometheus, want %v as the client saw", v.name, got, want)
		}
	}
	scraped := time.Since(began)

	rate := fmt.Sprintf(`sum(%[1]s{version="v2",error="true"}) / sum(%[1]s{version="v2"})`, sampleapp.MetricRequests)
	got, err := prom.WaitFor(ctx, rate, func(float64) bool { return true })
	if err != nil {
		t.Fatal(err)
	}
	// 10% of 200 has a standard deviation of about 4 requests (2%); the
	// seed makes the draw the same on every run.
	if got < 0.05 || got > 0.15 {
		t.Errorf("v2 error rate: got %v, want 0.1 within sampling (0.05..0.15)", got)
	}
	t.Logf("v2 error rate %v (%d of %d)", got, versions[1].errs.Load(), n)
	if _, err := prom.WaitFor(ctx, fmt.Sprintf(`sum(%s{version="v1",error="true"})`, sampleapp.MetricRequests),
		func(v float64) bool { return v == 0 }); err != nil {
		t.Errorf("v1: want no errors: %v", err)
	}

	// The 95th percentile falls in the bucket above the injected latency;
	// the next bucket is allowed for a machine busy with other tests.
	for _, tt := range []struct {
		version string
		lo, hi  float64 // (lo, hi], seconds
	}{
		{"v1", 0.005, 0.02},
		{"v2", 0.02, 0.05},
	} {
		q := fmt.Sprintf(`histogram_quantile(0.95, sum by (le) (%s_bucket{version=%q}))`, sampleapp.MetricDuration, tt.version)
		got, err := prom.WaitFor(ctx, q, func(float64) bool { return true })
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s p95 %vs", tt.version, got)
		if got <= tt.lo || got > tt.hi {
			t.Errorf("%s: got p95 %vs, want in (%v, %v]", tt.version, got, tt.lo, tt.hi)
		}
	}
	t.Logf("prometheus ready after %v, load sent after %v, counts scraped after %v, done after %v",
		started.Round(time.Millisecond), loaded.Round(time.Millisecond),
		scraped.Round(time.Millisecond), time.Since(began).Round(time.Millisecond))
}

func TestConfigFor(t *testing.T) {
	tests := []struct {
		targets []string
		want    string // substring of the config or of the error
		wantErr bool
	}{
		{nil, "scrape_configs:\n", false},
		{[]string{"127.0.0.1:1"}, "  - job_name: \"t0\"\n    static_configs:\n      - targets: [\"127.0.0.1:1\"]\n", false},
		{[]string{"a=127.0.0.1:1", "127.0.0.1:2"}, "job_name: \"t1\"", false},
		{[]string{"127.0.0.1"}, `target "127.0.0.1": want host:port or JOB=host:port`, true},
		{[]string{"a=127.0.0.1:1", "a=127.0.0.1:2"}, `job name "a" empty or repeated`, true},
		{[]string{"=127.0.0.1:1"}, `job name "" empty or repeated`, true},
	}
	for _, tt := range tests {
		got, err := configFor(tt.targets)
		if tt.wantErr {
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("configFor(%q): got error %v, want one containing %q", tt.targets, err, tt.want)
			}
			continue
		}
		if err != nil || !strings.Contains(got, tt.want) || !strings.Contains(got, "scrape_interval: 1s") {
			t.Errorf("configFor(%q): got %q, %v; want it to contain %q and scrape_interval: 1s", tt.targets, got, err, tt.want)
		}
	}
}

func TestQueryErrors(t *testing.T) {
	prom := StartT(t)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	// A query Prometheus rejects fails at once, naming the query.
	_, err := prom.WaitFor(ctx, "sum(", func(float64) bool { return true })
	if err == nil || !strings.Contains(err.Error(), `query "sum("`) || !strings.Contains(err.Error(), "bad_data") {
		t.Errorf(`WaitFor("sum("): got %v, want a bad_data error naming the query`, err)
	}
	// Several samples are ambiguous.
	_, err = prom.WaitFor(ctx, "vector(1) or label_replace(vector(2), \"x\", \"y\", \"\", \"\")", func(float64) bool { return true })
	if err == nil || !strings.Contains(err.Error(), "got 2 samples") {
		t.Errorf("WaitFor of two samples: got %v, want \"got 2 samples\"", err)
	}
	// A scalar is one sample.
	if v, err := prom.WaitFor(ctx, "scalar(vector(3))", func(v float64) bool { return v == 3 }); err != nil || v != 3 {
		t.Errorf("WaitFor(scalar(vector(3))): got %v, %v; want 3", v, err)
	}
	// A condition that never holds ends with ctx, giving the last value.
	short, cancelShort := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancelShort()
	_, err = prom.WaitFor(short, "vector(1)", func(v float64) bool { return v == 2 })
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "last value: 1") {
		t.Errorf("WaitFor never true: got %v, want deadline exceeded with last value 1", err)
	}
}

func TestStop(t *testing.T) {
	prom := StartT(t)
	if err := prom.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := prom.Stop(); err != nil {
		t.Errorf("second Stop: got %v, want nil", err)
	}
	if _, err := http.Get(prom.URL + "/-/ready"); err == nil {
		t.Errorf("GET %s/-/ready after Stop: got an answer, want a connection error", prom.URL)
	}
}
