package stats

import (
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"

	"gonum.org/v1/gonum/stat/distuv"
)

// calibBin is one decile of predicted probability of being best.
type calibBin struct {
	pairs   int     // (run, version) pairs whose prediction fell in the bin
	sumPred float64 // sum of their predicted probabilities
	wins    int     // how many of them truly were the best
}

func (b calibBin) predicted() float64 { return b.sumPred / float64(b.pairs) }
func (b calibBin) observed() float64  { return float64(b.wins) / float64(b.pairs) }

// simulateRun draws one A/B/n run's true values and samples; it returns the
// samples and the index of the version whose true value is the highest.
type simulateRun func(r *rand.Rand) ([]Sample, int)

// calibrate runs Best (maximising) on runs simulated runs and bins every
// (run, version) prediction by decile. Run i uses its own random source and
// Best seed, so the result does not depend on how runs are spread over
// goroutines.
func calibrate(t *testing.T, runs, draws int, seed uint64, sim simulateRun) [10]calibBin {
	t.Helper()
	type outcome struct {
		prob []float64
		best int
		err  error
	}
	out := make([]outcome, runs)
	workers := runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < runs; i += workers {
				r := rand.New(rand.NewPCG(seed, uint64(i)))
				samples, best := sim(r)
				res, err := Best(samples, true, BestOptions{Draws: draws, Seed: uint64(i)})
				out[i] = outcome{prob: res.Probability, best: best, err: err}
			}
		})
	}
	wg.Wait()

	var bins [10]calibBin
	for i, o := range out {
		if o.err != nil {
			t.Fatalf("run %d: %v", i, o.err)
		}
		for v, p := range o.prob {
			d := min(int(p*10), 9)
			bins[d].pairs++
			bins[d].sumPred += p
			if v == o.best {
				bins[d].wins++
			}
		}
	}
	return bins
}

// checkCalibration logs every decile and fails when one with at least
// minPairs pairs is off by more than tolerance and by more than 3 standard
// errors of its observed frequency.
func checkCalibration(t *testing.T, bins [10]calibBin, minPairs int, tolerance float64) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "%-9s %6s %9s %8s %7s\n", "decile", "pairs", "predicted", "observed", "diff")
	for d, bin := range bins {
		if bin.pairs == 0 {
			fmt.Fprintf(&b, "[%.1f,%.1f) %6d\n", float64(d)/10, float64(d+1)/10, 0)
			continue
		}
		diff := bin.observed() - bin.predicted()
		fmt.Fprintf(&b, "[%.1f,%.1f) %6d %9.4f %8.4f %+7.4f\n", float64(d)/10, float64(d+1)/10,
			bin.pairs, bin.predicted(), bin.observed(), diff)
	}
	t.Log("\n" + b.String())
	for d, bin := range bins {
		o := bin.observed()
		allowed := max(tolerance, 3*math.Sqrt(o*(1-o)/float64(bin.pairs)))
		if bin.pairs >= minPairs && math.Abs(o-bin.predicted()) > allowed {
			t.Errorf("decile %d (%d pairs): predicted %.4f, observed %.4f: off by more than %.3f",
				d, bin.pairs, bin.predicted(), o, allowed)
		}
	}
}

func BenchmarkBest(b *testing.B) {
	samples := []Sample{RateSample(100, 1000), RateSample(110, 1000), RateSample(120, 1000)}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := Best(samples, true, BestOptions{Seed: uint64(i)}); err != nil {
			b.Fatal(err)
		}
	}
}

func TestBestKnownCases(t *testing.T) {
	tests := []struct {
		name     string
		samples  []Sample
		maximize bool
		want     []float64 // probabilities
		tol      float64
	}{
		{"identical rates", []Sample{RateSample(100, 1000), RateSample(100, 1000)}, true, []float64{0.5, 0.5}, 0.02},
		{"identical means", []Sample{MeanSample(50, 3, 1), MeanSample(50, 3, 1)}, true, []float64{0.5, 0.5}, 0.02},
		{"three identical", []Sample{RateSample(30, 300), RateSample(30, 300), RateSample(30, 300)}, true,
			[]float64{1.0 / 3, 1.0 / 3, 1.0 / 3}, 0.02},
		{"clearly better rate", []Sample{RateSample(100, 1000), RateSample(200, 1000)}, true, []float64{0, 1}, 0.001},
		{"clearly lower rate", []Sample{RateSample(100, 1000), RateSample(200, 1000)}, false, []float64{1, 0}, 0.001},
		{"clearly better mean", []Sample{MeanSample(1000, 12, 1), MeanSample(1000, 10, 1)}, true, []float64{1, 0}, 0.001},
		// Point masses: ties split the win exactly.
		{"equal points", []Sample{MeanSample(30, 5, 0), MeanSample(30, 5, 0)}, true, []float64{0.5, 0.5}, 0},
		{"points, two tied best", []Sample{MeanSample(30, 5, 0), MeanSample(30, 3, 0), MeanSample(30, 5, 0)}, true,
			[]float64{0.5, 0, 0.5}, 0},
		{"points, minimise", []Sample{MeanSample(30, 5, 0), MeanSample(30, 3, 0), MeanSample(30, 5, 0)}, false,
			[]float64{0, 1, 0}, 0},
		{"point against normal", []Sample{MeanSample(30, 5, 0), MeanSample(100, 5, 2)}, true, []float64{0.5, 0.5}, 0.02},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Best(tt.samples, tt.maximize, BestOptions{Seed: 7})
			if err != nil {
				t.Fatalf("Best(%v): %v", tt.samples, err)
			}
			checkResult(t, got, len(tt.samples))
			for v, want := range tt.want {
				if math.Abs(got.Probability[v]-want) > tt.tol {
					t.Errorf("Best(%v, maximize=%v): probability[%d] = %.4f, want %.4f ± %v",
						tt.samples, tt.maximize, v, got.Probability[v], want, tt.tol)
				}
			}
		})
	}
}

// checkResult checks what every result must satisfy: one entry per sample,
// probabilities in [0, 1] that sum to 1, finite non-negative losses.
func checkResult(t *testing.T, got BestResult, n int) {
	t.Helper()
	if len(got.Probability) != n || len(got.ExpectedLoss) != n {
		t.Fatalf("got %d probabilities and %d losses, want %d each", len(got.Probability), len(got.ExpectedLoss), n)
	}
	sum := 0.0
	for v := range n {
		p, l := got.Probability[v], got.ExpectedLoss[v]
		if !(p >= 0 && p <= 1) {
			t.Errorf("probability[%d] = %v, want in [0, 1]", v, p)
		}
		if !(l >= 0) || math.IsInf(l, 0) {
			t.Errorf("expected loss[%d] = %v, want finite and ≥ 0", v, l)
		}
		sum += p
	}
	if math.Abs(sum-1) > 1e-9 {
		t.Errorf("probabilities %v sum to %v, want 1", got.Probability, sum)
	}
}

func TestBestExpectedLoss(t *testing.T) {
	// Posterior sd of each mean is 1/√1000 ≈ 0.03, so the versions never
	// swap: the loss of the best is 0 and that of the worse is the gap.
	samples := []Sample{MeanSample(1000, 10, 1), MeanSample(1000, 12, 1)}
	for _, maximize := range []bool{true, false} {
		got, err := Best(samples, maximize, BestOptions{Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		checkResult(t, got, 2)
		best, worse := 1, 0
		if !maximize {
			best, worse = 0, 1
		}
		if got.ExpectedLoss[best] > 1e-9 {
			t.Errorf("maximize=%v: loss of best = %v, want ≈ 0", maximize, got.ExpectedLoss[best])
		}
		if l := got.ExpectedLoss[worse]; math.Abs(l-2) > 0.01 {
			t.Errorf("maximize=%v: loss of worse = %v, want ≈ 2 (the gap in means)", maximize, l)
		}
	}

	// Rates 0.10 and 0.20 of 1000: the loss of the worse is ≈ 0.10.
	got, err := Best([]Sample{RateSample(100, 1000), RateSample(200, 1000)}, true, BestOptions{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	// The gap is 10 standard errors: pooling barely shrinks it.
	if got.ExpectedLoss[1] > 1e-6 || math.Abs(got.ExpectedLoss[0]-0.1) > 0.005 {
		t.Errorf("rates 0.1 and 0.2: losses %v, want ≈ [0.1 0]", got.ExpectedLoss)
	}

	// Identical estimates: without pooling each loss would be
	// E[max(X,Y) − X] = σ/√π for independent N(μ, σ²), σ = 1/√50; pooling
	// shrinks both towards their common mean, so the losses are equal and
	// smaller.
	got, err = Best([]Sample{MeanSample(50, 3, 1), MeanSample(50, 3, 1)}, true, BestOptions{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	unpooled := 1 / math.Sqrt(50) / math.Sqrt(math.Pi)
	l0, l1 := got.ExpectedLoss[0], got.ExpectedLoss[1]
	if !(l0 > 0 && l0 < unpooled && math.Abs(l0-l1) < 0.003) {
		t.Errorf("identical means: losses %.4f and %.4f, want equal and between 0 and the unpooled %.4f", l0, l1, unpooled)
	}
}

func TestBestMinimizeMirrorsMaximize(t *testing.T) {
	// With two versions and the same draws, the version that wins when
	// minimising is the one that loses when maximising, and its loss
	// θ_v − min θ is the other's max θ − θ_u.
	two := []Sample{RateSample(48, 500), RateSample(55, 500)}
	maxRes, err := Best(two, true, BestOptions{Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	minRes, err := Best(two, false, BestOptions{Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	for v := range 2 {
		if math.Abs(minRes.Probability[v]-maxRes.Probability[1-v]) > 1e-12 ||
			math.Abs(minRes.ExpectedLoss[v]-maxRes.ExpectedLoss[1-v]) > 1e-12 {
			t.Errorf("%v: minimise %+v does not mirror maximise %+v", two, minRes, maxRes)
		}
	}

	// Three means: minimising means μ is maximising −μ.
	means := []Sample{MeanSample(40, 10, 3), MeanSample(40, 10.5, 3), MeanSample(40, 11, 3)}
	negated := make([]Sample, len(means))
	for i, s := range means {
		negated[i] = MeanSample(s.Count, -s.Mean, s.Stdev)
	}
	minRes, err = Best(means, false, BestOptions{Seed: 4})
	if err != nil {
		t.Fatal(err)
	}
	maxRes, err = Best(negated, true, BestOptions{Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	for v := range means {
		if math.Abs(minRes.Probability[v]-maxRes.Probability[v]) > 0.02 ||
			math.Abs(minRes.ExpectedLoss[v]-maxRes.ExpectedLoss[v]) > 0.01 {
			t.Errorf("version %d: minimise %v gives %.4f (loss %.4f), maximise negated gives %.4f (loss %.4f)", v, means,
				minRes.Probability[v], minRes.ExpectedLoss[v], maxRes.Probability[v], maxRes.ExpectedLoss[v])
		}
	}
	if !(minRes.Probability[0] > minRes.Probability[1] && minRes.Probability[1] > minRes.Probability[2]) {
		t.Errorf("minimise %v: probabilities %v, want decreasing with the mean", means, minRes.Probability)
	}
}

func TestBestReproducible(t *testing.T) {
	samples := []Sample{RateSample(48, 500), RateSample(55, 500), RateSample(51, 500)}
	opt := BestOptions{Draws: 5000, Seed: 42}
	a, err := Best(samples, true, opt)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Best(samples, true, opt)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, b) {
		t.Errorf("seed %d: %+v then %+v, want equal", opt.Seed, a, b)
	}
	opt.Seed++
	c, err := Best(samples, true, opt)
	if err != nil {
		t.Fatal(err)
	}
	if reflect.DeepEqual(a, c) {
		t.Errorf("seeds %d and %d both give %+v, want different draws", opt.Seed-1, opt.Seed, a)
	}
	checkResult(t, c, 3)
}

func TestBestAllocationsDoNotGrowWithDraws(t *testing.T) {
	samples := []Sample{RateSample(48, 500), RateSample(55, 500)}
	allocs := func(draws int) float64 {
		return testing.AllocsPerRun(5, func() {
			if _, err := Best(samples, true, BestOptions{Draws: draws}); err != nil {
				t.Fatal(err)
			}
		})
	}
	if few, many := allocs(10), allocs(10000); many > few {
		t.Errorf("allocations: %v with 10 draws, %v with 10000: want no per-draw allocation", few, many)
	}
}

func TestBestErrors(t *testing.T) {
	tests := []struct {
		name    string
		samples []Sample
		opt     BestOptions
		want    []string // substrings of the error
	}{
		{"none", nil, BestOptions{}, []string{"0 samples", "at least 2"}},
		{"one", []Sample{RateSample(1, 10)}, BestOptions{}, []string{"1 samples", "at least 2"}},
		{"mixed kinds", []Sample{RateSample(1, 10), MeanSample(10, 1, 1)}, BestOptions{},
			[]string{"sample 1", "kind mean", "sample 0's rate"}},
		{"successes > trials", []Sample{RateSample(1, 10), RateSample(11, 10)}, BestOptions{},
			[]string{"sample 1", "11 successes of 10 trials"}},
		{"negative trials", []Sample{RateSample(0, -1), RateSample(1, 10)}, BestOptions{},
			[]string{"sample 0", "of -1 trials"}},
		{"count < 2", []Sample{MeanSample(10, 1, 1), MeanSample(1, 1, 0)}, BestOptions{},
			[]string{"sample 1", "count 1", "at least 2"}},
		{"negative stdev", []Sample{MeanSample(10, 1, -1), MeanSample(10, 1, 1)}, BestOptions{},
			[]string{"sample 0", "stdev -1"}},
		{"NaN mean", []Sample{MeanSample(10, 1, 1), MeanSample(10, math.NaN(), 1)}, BestOptions{},
			[]string{"sample 1", "mean NaN"}},
		{"infinite stdev", []Sample{MeanSample(10, 1, math.Inf(1)), MeanSample(10, 1, 1)}, BestOptions{},
			[]string{"sample 0", "stdev +Inf"}},
		{"unknown kind", []Sample{{Kind: "median"}, {Kind: "median"}}, BestOptions{},
			[]string{"sample 0", `kind "median"`, "sample 1"}},
		{"every bad sample", []Sample{RateSample(1, 10), RateSample(11, 10), MeanSample(10, 1, 1)}, BestOptions{},
			[]string{"sample 1", "sample 2"}},
		{"negative draws", []Sample{RateSample(1, 10), RateSample(1, 10)}, BestOptions{Draws: -1},
			[]string{"draws -1"}},
		{"no trials", []Sample{RateSample(0, 0), RateSample(0, 0)}, BestOptions{},
			[]string{"sample 0", "0 trials", "at least 30", "sample 1"}},
		{"too few values", []Sample{MeanSample(29, 1, 1), MeanSample(30, 1, 1)}, BestOptions{},
			[]string{"sample 0", "29 values", "at least 30"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Best(tt.samples, true, tt.opt)
			if err == nil {
				t.Fatalf("Best(%v, %+v) = %+v, want error", tt.samples, tt.opt, got)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Best(%v, %+v) error %q, want it to contain %q", tt.samples, tt.opt, err, w)
				}
			}
		})
	}
}

func TestBestOverflowIsAnError(t *testing.T) {
	// Draws near ±MaxFloat64 overflow; the result must be an error, never
	// NaN or a panic.
	samples := []Sample{MeanSample(30, math.MaxFloat64, math.MaxFloat64), MeanSample(30, -math.MaxFloat64, math.MaxFloat64)}
	got, err := Best(samples, true, BestOptions{Draws: 100})
	if err == nil {
		t.Fatalf("Best(%v) = %+v, want an overflow error", samples, got)
	}
	if !strings.Contains(err.Error(), "overflows") {
		t.Errorf("Best(%v) error %q, want it to say the loss overflows", samples, err)
	}
}

// Calibration: among all (run, version) pairs given probability p of being
// best, a fraction p should truly be best. The acceptance of issue 15: 3
// versions of 200 and 2000 users; true rates uniform in [0.05, 0.15], true
// means uniform in [8, 12] with per-user values normal with sd 10 or
// exponential (sd = mean); every decile with at least 500 pairs within 0.05
// of its prediction, or 3 standard errors of its observed frequency. A flat
// prior per version was overconfident by up to 0.08 at 200 users; the pooled
// prior of Best is not.
//
// 10,000 runs per cell (3 pairs each); Draws = 500 keeps the run short
// under -race: its Monte Carlo error (≤ 0.022 per prediction) averages out
// over a decile's pairs and only moves pairs across bin edges. Under the
// race detector each cell runs 1000 runs and only logs.
const (
	calibRuns  = 10000
	calibDraws = 500
	calibSeed  = 1
	calibK     = 3
)

func TestCalibrationAcceptance(t *testing.T) {
	runs := calibRuns
	if raceEnabled() {
		runs = 1000
	}
	rates := func(users int) simulateRun {
		return func(r *rand.Rand) ([]Sample, int) {
			samples := make([]Sample, calibK)
			best, bestP := 0, -1.0
			for v := range calibK {
				p := 0.05 + 0.1*r.Float64()
				if p > bestP {
					best, bestP = v, p
				}
				successes := distuv.Binomial{N: float64(users), P: p, Src: r}.Rand()
				samples[v] = RateSample(int64(successes), int64(users))
			}
			return samples, best
		}
	}
	means := func(users int, exponential bool) simulateRun {
		return func(r *rand.Rand) ([]Sample, int) {
			samples := make([]Sample, calibK)
			best, bestMu := 0, math.Inf(-1)
			for v := range calibK {
				mu := 8 + 4*r.Float64()
				if mu > bestMu {
					best, bestMu = v, mu
				}
				var sum, squares float64
				for range users {
					x := mu + 10*r.NormFloat64()
					if exponential {
						x = mu * r.ExpFloat64()
					}
					sum += x
					squares += x * x
				}
				n := float64(users)
				mean := sum / n
				samples[v] = MeanSample(int64(users), mean, math.Sqrt(max(squares-n*mean*mean, 0)/(n-1)))
			}
			return samples, best
		}
	}
	for _, users := range []int{200, 2000} {
		for _, cell := range []struct {
			name string
			sim  simulateRun
		}{
			{"rates", rates(users)},
			{"normal means", means(users, false)},
			{"exponential means", means(users, true)},
		} {
			t.Run(fmt.Sprintf("%s, %d users", cell.name, users), func(t *testing.T) {
				bins := calibrate(t, runs, calibDraws, calibSeed, cell.sim)
				if raceEnabled() {
					checkCalibration(t, bins, math.MaxInt, 0)
					return
				}
				checkCalibration(t, bins, 500, 0.05)
			})
		}
	}
}
