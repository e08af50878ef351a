package metrics_test

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iter8-tools/iter8/pkg/experiment"
	"github.com/iter8-tools/iter8/pkg/task"
	"github.com/iter8-tools/iter8/test/promtest"
	"github.com/iter8-tools/iter8/test/sampleapp"
)

// memStore keeps the last result the runner wrote.
type memStore struct{ last *experiment.Result }

func (m *memStore) WriteResult(_ context.Context, r *experiment.Result) error { m.last = r; return nil }

// TestRealPrometheus runs metrics and assess against Debian's Prometheus
// scraping two versions of the sample app: v1 answers in 2 ms, v2 in 150 ms
// with 10% errors. The p95 SLO of 20 ms sits three bucket widths above v1's
// latency (2 → 5 → 10 → 20 ms) and three below v2's (20 → 50 → 100 → 200 ms).
//
// The app's histogram records the latency it really gave, which on a loaded
// CI machine can exceed the configured one by a bucket or two; so the
// numbers are checked against the app's own histogram, and the configured
// latencies bound them from below and, through the verdicts, from above.
func TestRealPrometheus(t *testing.T) {
	urls := map[string]string{}
	apps := map[string]*sampleapp.Handler{}
	var targets []string
	for _, v := range []struct {
		name, latency string
		errors        float64
	}{{"v1", "fixed:2ms", 0}, {"v2", "fixed:150ms", 0.1}} {
		lat, err := sampleapp.ParseLatency(v.latency)
		if err != nil {
			t.Fatal(err)
		}
		h := sampleapp.NewHandler(sampleapp.Options{Version: v.name, Latency: lat, ErrorRate: v.errors, Seed: 7})
		apps[v.name] = h
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		targets = append(targets, v.name+"="+srv.Listener.Addr().String())
		urls[v.name] = srv.URL
	}
	prom := promtest.StartT(t, targets...)

	// A bounded load: 200 requests per version, 10 at a time.
	const perVersion, workers = 200, 10
	failed := map[string]*atomic.Int64{"v1": {}, "v2": {}}
	var wg sync.WaitGroup
	for name, u := range urls {
		for w := 0; w < workers; w++ {
			wg.Go(func() {
				for i := 0; i < perVersion/workers; i++ {
					resp, err := http.Get(u + "/")
					if err != nil {
						t.Error(err)
						return
					}
					resp.Body.Close()
					if resp.StatusCode >= 500 {
						failed[name].Add(1)
					}
				}
			})
		}
	}
	wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for name := range urls {
		q := fmt.Sprintf(`sum(sampleapp_requests_total{version=%q})`, name)
		if _, err := prom.WaitFor(ctx, q, func(v float64) bool { return v == perVersion }); err != nil {
			t.Fatalf("Prometheus never counted %d requests of %s: %v", perVersion, name, err)
		}
	}

	spec := fmt.Sprintf(`
apiVersion: iter8.tools/v1
kind: Experiment
metadata: {name: prom}
spec:
  versions: [v1, v2]
  tasks:
  - task: metrics
    with:
      provider: prometheus
      endpoint: %s
      window: 5m
      queries:
      - {name: request-count, query: 'sum(sampleapp_requests_total{version="{{.version}}"})'}
      - {name: error-rate, query: 'sum(sampleapp_requests_total{version="{{.version}}",error="true"}) / sum(sampleapp_requests_total{version="{{.version}}"})'}
      - {name: latency-p95, units: msec, query: 'histogram_quantile(0.95, sum by (le) (sampleapp_request_duration_seconds_bucket{version="{{.version}}"})) * 1000'}
  - task: assess
    with:
      slos:
      - {metric: prometheus/latency-p95, upper: 20}
      - {metric: prometheus/error-rate, upper: 0.05}
`, prom.URL)
	plan, err := experiment.Decode([]byte(spec), experiment.DecodeOptions{Registry: task.Registry()})
	if err != nil {
		t.Fatal(err)
	}
	store := &memStore{}
	if _, err := (&experiment.Runner{Store: store}).Run(ctx, plan); err != nil {
		t.Fatalf("run: %v", err)
	}
	r := store.last
	for _, c := range []struct {
		version, metric string
		lo, hi          float64 // the value lies in (lo, hi]
	}{
		{"v1", "prometheus/request-count", perVersion - 1, perVersion},
		{"v2", "prometheus/request-count", perVersion - 1, perVersion},
		{"v1", "prometheus/error-rate", -1, 0},
		{"v1", "prometheus/latency-p95", 2, 20},     // every request takes at least 2 ms
		{"v2", "prometheus/latency-p95", 100, 1000}, // and at least 150 ms
	} {
		v, ok := r.Value(c.version, c.metric)
		if !ok || v <= c.lo || v > c.hi {
			t.Errorf("%s %s = %v (found %v); want in (%v, %v]", c.version, c.metric, v, ok, c.lo, c.hi)
		}
	}
	for name, h := range apps {
		want := appQuantile(t, h, 0.95) * 1000
		if v, _ := r.Value(name, "prometheus/latency-p95"); math.Abs(v-want) > 1e-9*want {
			t.Errorf("%s prometheus/latency-p95 = %v; the app's own histogram gives %v", name, v, want)
		}
	}
	wantRate := float64(failed["v2"].Load()) / perVersion
	if v, _ := r.Value("v2", "prometheus/error-rate"); v != wantRate || wantRate == 0 {
		t.Errorf("v2 error-rate = %v; want %v, what the client saw", v, wantRate)
	}
	verdicts := map[string]bool{}
	for _, s := range r.SLOs {
		verdicts[s.Version+" "+s.Metric] = s.Satisfied
	}
	want := map[string]bool{
		"v1 prometheus/latency-p95": true, "v1 prometheus/error-rate": true,
		"v2 prometheus/latency-p95": false, "v2 prometheus/error-rate": false,
	}
	for k, w := range want {
		if got, ok := verdicts[k]; !ok || got != w {
			t.Errorf("SLO %s: satisfied=%v (found %v), want %v", k, got, ok, w)
		}
	}
}

// appQuantile computes the q-quantile of the app's duration histogram, all
// statuses together, as PromQL's histogram_quantile does: linear
// interpolation inside the bucket that holds the rank, the first bucket
// starting at 0.
func appQuantile(t *testing.T, h *sampleapp.Handler, q float64) float64 {
	t.Helper()
	mfs, err := h.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	cumulative, total := map[float64]float64{}, 0.0
	for _, mf := range mfs {
		if mf.GetName() != sampleapp.MetricDuration {
			continue
		}
		for _, m := range mf.GetMetric() {
			total += float64(m.GetHistogram().GetSampleCount())
			for _, b := range m.GetHistogram().GetBucket() {
				cumulative[b.GetUpperBound()] += float64(b.GetCumulativeCount())
			}
		}
	}
	bounds := make([]float64, 0, len(cumulative))
	for le := range cumulative {
		bounds = append(bounds, le)
	}
	sort.Float64s(bounds)
	if len(bounds) == 0 {
		t.Fatalf("the app exports no %s buckets", sampleapp.MetricDuration)
	}
	rank := q * total
	lower, below := 0.0, 0.0
	for _, le := range bounds {
		if c := cumulative[le]; c >= rank {
			return lower + (le-lower)*(rank-below)/(c-below)
		}
		lower, below = le, cumulative[le]
	}
	t.Fatalf("rank %v lies above the last finite bucket; the test's latencies are meant to stay below %vs", rank, bounds[len(bounds)-1])
	return 0
}
