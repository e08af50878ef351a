package stats_test

import (
	"flag"
	"math"
	"math/rand/v2"
	"runtime/debug"
	"sync"
	"testing"
	"time"

	"github.com/iter8-tools/iter8/pkg/stats"
	"github.com/iter8-tools/iter8/pkg/task/http"
)

// sweep runs the simulations at several sample sizes and logs error rates
// and power, to choose http.DefaultNumRequests:
//
//	go test ./pkg/stats/ -run TestSimulationSweep -sweep -v
var sweep = flag.Bool("sweep", false, "log A/A error rates and power for several sample sizes")

const (
	simThreads    = 4
	simRuns       = 1000
	simConfidence = 0.95
	simMinEffect  = 0.1
)

// latency draws a request latency: lognormal with median 10ms and σ 0.5 of
// log latency, and 1% outliers 10 times slower (a retry, a GC pause).
func latency(r *rand.Rand, factor float64) time.Duration {
	d := 10e6 * math.Exp(0.5*r.NormFloat64()) * factor
	if r.Float64() < 0.01 {
		d *= 10
	}
	return time.Duration(d)
}

// loadRun records n requests the way the http task does: one Recorder per
// load thread, requests dealt round-robin, merged at the end.
func loadRun(r *rand.Rand, n int, factor float64) *stats.Histogram {
	var threads [simThreads]*stats.Recorder
	for i := range threads {
		threads[i] = stats.NewRecorder(10 * time.Second)
	}
	for i := range n {
		threads[i%simThreads].Record(latency(r, factor))
	}
	total := stats.NewRecorder(10 * time.Second)
	for _, t := range threads {
		total.Merge(t)
	}
	return total.Histogram()
}

// simLatencies returns the fraction of runs in which the candidate (latencies
// multiplied by factor) differs significantly from the baseline, and the
// fraction in which it does so with a ratio above 1. Runs are split over two
// goroutines, each with its own seeded source, so the result does not depend
// on scheduling.
func simLatencies(t *testing.T, runs, n int, factor float64, seed uint64) (significant, slower float64) {
	t.Helper()
	const workers = 2
	var mu sync.Mutex
	var sig, up int
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(seed, uint64(w)))
			var s, u int
			for range runs / workers {
				res, err := stats.CompareLatencies(loadRun(r, n, 1), loadRun(r, n, factor), simConfidence, simMinEffect)
				if err != nil {
					t.Error(err)
					return
				}
				if res.Significant {
					s++
					if res.Ratio > 1 {
						u++
					}
				}
			}
			mu.Lock()
			sig, up = sig+s, up+u
			mu.Unlock()
		})
	}
	wg.Wait()
	return float64(sig) / float64(runs), float64(up) / float64(runs)
}

// simRates is the fraction of significant comparisons of error rates p1 and p2 over n trials each.
func simRates(t *testing.T, n int, p1, p2 float64, seed uint64) float64 {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 7))
	draw := func(p float64) stats.Sample {
		var k int64
		for range n {
			if r.Float64() < p {
				k++
			}
		}
		return stats.RateSample(k, int64(n))
	}
	sig := 0
	for range simRuns {
		res, err := stats.CompareRates(draw(p1), draw(p2), simConfidence, 0.02)
		if err != nil {
			t.Fatal(err)
		}
		if res.Significant {
			sig++
		}
	}
	return float64(sig) / simRuns
}

// raceEnabled reports whether the test binary was built with -race, which
// makes the HDR histograms about 20 times slower to build and merge.
func raceEnabled() bool {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range info.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

// TestCompareLatenciesAcceptance is the acceptance of the comparison at the
// http task's default number of requests: a nominal false-positive rate for
// identical versions, and a 20% slowdown detected in 90% of runs. Under the
// race detector 1000 runs would take minutes; it runs 100, enough to
// exercise the concurrency, and checks only bounds that 100 runs can show.
func TestCompareLatenciesAcceptance(t *testing.T) {
	n := http.DefaultNumRequests
	runs, aaLow, aaHigh, minPower := simRuns, 0.03, 0.07, 0.9
	if raceEnabled() {
		runs, aaLow, aaHigh, minPower = 100, 0, 0.15, 0.75
	}
	aa, _ := simLatencies(t, runs, n, 1, 1)
	if aa < aaLow || aa > aaHigh {
		t.Errorf("A/A at n=%d: %.3f of %d runs significant, want within [%v, %v]", n, aa, runs, aaLow, aaHigh)
	}
	_, ab := simLatencies(t, runs, n, 1.2, 2)
	if ab < minPower {
		t.Errorf("A/B (+20%%) at n=%d: %.3f of %d runs significant and slower, want at least %v", n, ab, runs, minPower)
	}
	t.Logf("n=%d, %d runs: A/A %.3f, A/B power %.3f", n, runs, aa, ab)
}

// TestCompareRatesAcceptance checks the two-proportion test at the http
// task's default number of requests: identical 1% error rates are rarely
// flagged. Its power against 3% depends strongly on n and is only logged.
func TestCompareRatesAcceptance(t *testing.T) {
	n := http.DefaultNumRequests
	aa := simRates(t, n, 0.01, 0.01, 3)
	// With so few errors the z-test is conservative: well below 5%.
	if aa > 0.07 {
		t.Errorf("rates A/A 1%% vs 1%% at n=%d: %.3f significant, want at most 0.07", n, aa)
	}
	ab := simRates(t, n, 0.01, 0.03, 4)
	if ab < aa {
		t.Errorf("rates 1%% vs 3%% at n=%d: %.3f significant, below the A/A rate %.3f", n, ab, aa)
	}
	t.Logf("rates at n=%d: A/A 1%% vs 1%% %.3f, 1%% vs 3%% %.3f", n, aa, ab)
}

func TestSimulationSweep(t *testing.T) {
	if !*sweep {
		t.Skip("run with -sweep")
	}
	for _, n := range sweepSizes {
		aa, _ := simLatencies(t, simRuns, n, 1, 1)
		_, ab := simLatencies(t, simRuns, n, 1.2, 2)
		raa := simRates(t, n, 0.01, 0.01, 3)
		rab := simRates(t, n, 0.01, 0.03, 4)
		t.Logf("n=%d: latency A/A %.3f, +20%% power %.3f; rates 1%%/1%% %.3f, 1%%/3%% power %.3f", n, aa, ab, raa, rab)
	}
}

var sweepSizes = []int{100, 200, 250, 300, 400}

// TestCompareRatesCoverageAcceptance: the interval of a difference of error
// rates covers the true difference in at least 93% of runs, from rare errors
// in small samples to even odds, and does not waste width (at most 97%)
// where both samples expect at least 5 events. 2000 runs per cell: the
// standard error of a coverage near 0.95 is 0.005.
func TestCompareRatesCoverageAcceptance(t *testing.T) {
	runs := 2000
	if raceEnabled() {
		runs = 400
	}
	r := rand.New(rand.NewPCG(11, 13))
	binomial := func(p float64, n int) stats.Sample {
		var k int64
		for range n {
			if r.Float64() < p {
				k++
			}
		}
		return stats.RateSample(k, int64(n))
	}
	for _, p := range []float64{0.001, 0.01, 0.05, 0.2, 0.5} {
		for _, size := range [][2]int{{50, 400}, {400, 400}, {400, 4000}} {
			covered := 0
			for range runs {
				res, err := stats.CompareRates(binomial(p, size[0]), binomial(p, size[1]), simConfidence, 0.02)
				if err != nil {
					t.Fatal(err)
				}
				if res.Low <= 0 && 0 <= res.High {
					covered++
				}
			}
			c := float64(covered) / float64(runs)
			high := 1.0
			if p*float64(min(size[0], size[1])) >= 5 && !raceEnabled() {
				high = 0.97
			}
			if c < 0.93 || c > high {
				t.Errorf("rate %v, %d vs %d trials: coverage %.3f of %d runs, want from 0.93 to %v", p, size[0], size[1], c, runs, high)
			}
			t.Logf("rate %v, %d vs %d trials: coverage %.3f", p, size[0], size[1], c)
		}
	}
}
