package assess_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"testing"

	"github.com/iter8-tools/iter8/pkg/experiment"
	"github.com/iter8-tools/iter8/pkg/task"
	"github.com/iter8-tools/iter8/test/sampleapp"
)

// compareOnce runs the http task's default load against two sample app
// versions on loopback, at once, and compares their latencies at 95%.
func compareOnce(t *testing.T, seed uint64, latency1, latency2 string) experiment.Comparison {
	t.Helper()
	var urls []string
	for i, l := range []string{latency1, latency2} {
		lat, err := sampleapp.ParseLatency(l)
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(sampleapp.NewHandler(sampleapp.Options{Version: fmt.Sprint("v", i+1), Latency: lat, Seed: seed*2 + uint64(i)}))
		defer srv.Close()
		urls = append(urls, srv.URL)
	}
	spec := fmt.Sprintf(`
apiVersion: iter8.tools/v1
kind: Experiment
metadata: {name: compare}
spec:
  versions: [v1, v2]
  tasks:
  - task: http
    with:
      endpoints:
      - {version: v1, url: %q}
      - {version: v2, url: %q}
  - task: assess
    with:
      comparisons: [{metric: http/latency}]
`, urls[0], urls[1])
	plan, err := experiment.Decode([]byte(spec), experiment.DecodeOptions{Registry: task.Registry()})
	if err != nil {
		t.Fatal(err)
	}
	res, err := (&experiment.Runner{}).Run(context.Background(), plan)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if len(res.Comparisons) != 1 {
		t.Fatalf("comparisons: %+v, want one", res.Comparisons)
	}
	return res.Comparisons[0]
}

// TestRealAA compares two identical versions on loopback 20 times. Latencies
// on one machine are correlated in time (the scheduler, the collector, the
// other version's load); the test's variance is widened by the inflation
// measured in blocks of consecutive requests, so that at 95% confidence at
// most a few runs in 20 may find a difference.
func TestRealAA(t *testing.T) {
	if testing.Short() {
		t.Skip("20 loads")
	}
	const runs = 20
	var inconclusive, inflated int
	var maxInflation float64
	for i := range runs {
		c := compareOnce(t, uint64(i), "lognormal:5ms,0.5", "lognormal:5ms,0.5")
		if c.Verdict == experiment.VerdictInconclusive {
			inconclusive++
		} else {
			t.Logf("run %d: %s, effect %+.3f [%+.3f, %+.3f], p %.4f, inflation %.2f", i, c.Verdict, *c.Effect, *c.Low, *c.High, *c.PValue, c.Inflation)
		}
		if c.Inflation > 1 {
			inflated++
			maxInflation = max(maxInflation, c.Inflation)
		}
	}
	t.Logf("A/A on loopback: %d of %d inconclusive; variance inflated in %d runs, at most ×%.2f", inconclusive, runs, inflated, maxInflation)
	if inconclusive < 18 {
		t.Errorf("A/A: %d of %d runs inconclusive, want at least 18", inconclusive, runs)
	}
}

// TestRealAB finds a version with 20% more latency worse.
func TestRealAB(t *testing.T) {
	const runs = 5
	var worse int
	for i := range runs {
		c := compareOnce(t, uint64(100+i), "lognormal:5ms,0.5", "lognormal:6ms,0.5")
		t.Logf("run %d: %s, effect %+.3f [%+.3f, %+.3f], p %.4f, n %d/%d, inflation %.2f", i, c.Verdict, deref(c.Effect), deref(c.Low), deref(c.High), deref(c.PValue), c.BaselineCount, c.CandidateCount, c.Inflation)
		switch c.Verdict {
		case experiment.VerdictWorse:
			worse++
		case experiment.VerdictBetter:
			t.Errorf("run %d: a version with 20%% more latency was found better", i)
		}
	}
	if worse < runs-1 {
		t.Errorf("A/B: 20%% more latency found worse in %d of %d runs, want at least %d", worse, runs, runs-1)
	}
}

func deref(f *float64) float64 {
	if f == nil {
		return 0
	}
	return *f
}
