package http

import (
	"fmt"
	"math"
	"regexp"
	"testing"

	"github.com/iter8-tools/iter8/pkg/experiment"
)

// TestRunWorkersSendExactShares: 4 workers, 4000 requests to each of two
// versions: the merged counts are exact, every worker sent its 1000 to
// each version, and the merged histograms count every request.
func TestRunWorkersSendExactShares(t *testing.T) {
	v1, v2 := newServer(t, nil), newServer(t, nil)
	f := mustDecode(t, fmt.Sprintf(`{numRequests: 4000, workers: 4, connections: 2, endpoints: [{version: v1, url: %q}, {version: v2, url: %q}]}`,
		v1.URL, v2.URL), []string{"v1", "v2"})
	r, err := f.run(t, t.Context())
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	for v, srv := range map[string]*server{"v1": v1, "v2": v2} {
		if got := metric(t, r, v, "http/request-count"); got != 4000 || srv.count.Load() != 4000 {
			t.Errorf("%s: http/request-count %v, server saw %d; want 4000", v, got, srv.count.Load())
		}
		if h := r.Version(v).Histograms["http/latency"]; h == nil || h.Count != 4000 || h.Series == nil {
			t.Errorf("%s: merged histogram %+v, want 4000 requests with their time blocks", v, h)
		}
		checkLatencies(t, r, v, "http")
		workers := r.Version(v).Workers["http"]
		want := []experiment.WorkerCount{{Worker: 0, Requests: 1000}, {Worker: 1, Requests: 1000}, {Worker: 2, Requests: 1000}, {Worker: 3, Requests: 1000}}
		if fmt.Sprint(workers) != fmt.Sprint(want) {
			t.Errorf("%s: workers %v, want %v", v, workers, want)
		}
	}

	// Again without workers: a later loop's counts replace the workers'.
	f.task.Config.Workers = 1
	if err := f.task.Run(t.Context(), &experiment.Env{Result: r, Versions: []string{"v1", "v2"}}); err != nil {
		t.Fatal(err)
	}
	if w := r.Version("v1").Workers; len(w) != 0 {
		t.Errorf("workers after a run without them: %v, want none", w)
	}
}

// TestRunWorkersSplitTheRate: 4 workers at qps 200 for 10s send 200 ± 5%
// a second in all.
func TestRunWorkersSplitTheRate(t *testing.T) {
	srv := newServer(t, nil)
	f := mustDecode(t, fmt.Sprintf(`{url: %q, duration: 10s, qps: 200, workers: 4, connections: 2}`, srv.URL), nil)
	r, err := f.run(t, t.Context())
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	rate := metric(t, r, "", "http/request-count") / 10
	t.Logf("4 workers at qps 200 for 10s: %.1f requests/s", rate)
	if math.Abs(rate-200) > 10 {
		t.Errorf("4 workers at qps 200: %.1f requests/s, want 200 ±5%%", rate)
	}
	workers := r.Version("").Workers["http"]
	if len(workers) != 4 {
		t.Fatalf("workers %v, want 4", workers)
	}
	for _, w := range workers {
		if math.Abs(float64(w.Requests)/10-50) > 5 {
			t.Errorf("worker %d sent %d in 10s, want about 500 (its qps 50)", w.Worker, w.Requests)
		}
	}
}

// TestRunWorkerFailureNamesIt: the workers' load on an unreachable v2 fails
// the task naming the worker that found it and v2's endpoint; v2's rows
// count the failed requests as errors, v1's none.
func TestRunWorkerFailureNamesIt(t *testing.T) {
	v1 := newServer(t, nil)
	f := mustDecode(t, fmt.Sprintf(`{numRequests: 400, workers: 2, connections: 1, endpoints: [{version: v1, url: %q}, {version: v2, url: "http://%s/"}]}`,
		v1.URL, closedAddr(t)), []string{"v1", "v2"})
	r, err := f.run(t, t.Context())
	if err == nil || !regexp.MustCompile(`^worker [01]: .*v2.*connection attempts in a row failed`).MatchString(err.Error()) {
		t.Fatalf("Run: %v, want an error naming a worker and v2's endpoint", err)
	}
	rows := r.Version("v2").Workers["http"]
	if len(rows) != 2 {
		t.Fatalf("v2's workers %v, want 2 rows", rows)
	}
	var failed int64
	for _, row := range rows {
		if row.Errors != row.Requests {
			t.Errorf("v2's worker %d: %d errors of %d requests, want all", row.Worker, row.Errors, row.Requests)
		}
		failed += row.Errors
	}
	if failed == 0 {
		t.Errorf("v2's workers counted no failed request: %v", rows)
	}
	for _, row := range r.Version("v1").Workers["http"] {
		if row.Errors != 0 || row.Error != "" {
			t.Errorf("v1's worker %d: %d errors, error %q; want none", row.Worker, row.Errors, row.Error)
		}
	}
}
