package stats

import (
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

func near(got, want, tol float64) bool { return math.Abs(got-want) <= tol }

// exact records values below 2048ns, which HDR keeps exactly, all at the
// epoch: one time block.
func exact(values ...int64) *Histogram {
	r := NewRecorder(time.Second, epoch)
	for _, v := range values {
		r.Record(epoch, time.Duration(v), false)
	}
	return r.Histogram()
}

// lognormalLoad records n requests spread evenly over span from the epoch,
// with log latency normal about ln(median) with deviation sigma.
func lognormalLoad(rng *rand.Rand, n int, span time.Duration, median time.Duration, sigma float64) *Histogram {
	r := NewRecorder(10*time.Second, epoch)
	for i := range n {
		at := epoch.Add(span * time.Duration(i) / time.Duration(n))
		r.Record(at, time.Duration(float64(median)*math.Exp(sigma*rng.NormFloat64())), false)
	}
	return r.Histogram()
}

func TestCompareLatenciesConstant(t *testing.T) {
	// Every latency the same on each side: no variation, so the ratio is
	// exact (to the 1/1024 of the log sums) and the p-value 0 or 1.
	res, err := CompareLatencies(exact(1000, 1000, 1000), exact(1500, 1500), 0.95, 0.1)
	if err != nil {
		t.Fatal(err)
	}
	if res.Test != LogRatio || !res.Relative || !near(res.Effect, 0.5, 2e-3) || res.PValue != 0 || !res.Significant ||
		!near(res.Low, res.Effect, 1e-12) || !near(res.High, res.Effect, 1e-12) {
		t.Errorf("constant 1000ns against 1500ns: %+v; want effect 0.5, p 0, interval [0.5, 0.5]", res)
	}
	if res.BaselineCount != 3 || res.CandidateCount != 2 || res.Blocks != 1 || res.Needed != 0 || res.DesignEffect != 1 {
		t.Errorf("counts %d, %d, blocks %d, Needed %d, design effect %v; want 3, 2, 1, 0 (nothing to plan from), 1",
			res.BaselineCount, res.CandidateCount, res.Blocks, res.Needed, res.DesignEffect)
	}
	// Geometric means in ms.
	if !near(res.Baseline, 0.001, 1e-6) || !near(res.Candidate, 0.0015, 2e-6) {
		t.Errorf("geometric means %v, %v ms; want 0.001, 0.0015", res.Baseline, res.Candidate)
	}

	res, err = CompareLatencies(exact(700, 700), exact(700, 700), 0.95, 0.1)
	if err != nil {
		t.Fatal(err)
	}
	if res.PValue != 1 || res.Significant || res.Effect != 0 || res.Low != 0 || res.High != 0 {
		t.Errorf("all values equal: %+v; want p 1, effect and interval 0", res)
	}
	// One value of a version: no variance can be estimated, and a
	// difference would look exact. That is an error, not a verdict.
	for _, pair := range [][2]*Histogram{{exact(500), exact(1000, 1000)}, {exact(500, 500), exact(1000)}} {
		if _, err := CompareLatencies(pair[0], pair[1], 0.95, 0.1); err == nil || !strings.Contains(err.Error(), "want at least 2 of each") {
			t.Errorf("one request of a version: error %v, want one asking for at least 2 of each", err)
		}
	}
}

func TestCompareLatenciesLogRatio(t *testing.T) {
	// A multiplicative shift of 25% on lognormal latencies, σ 0.5 of log
	// latency, independent requests over 10s.
	rng := rand.New(rand.NewPCG(11, 2))
	b := lognormalLoad(rng, 20000, 10*time.Second, 10*time.Millisecond, 0.5)
	c := lognormalLoad(rng, 20000, 10*time.Second, 12500*time.Microsecond, 0.5)
	res, err := CompareLatencies(b, c, 0.95, 0.1)
	if err != nil {
		t.Fatal(err)
	}
	// The standard error of the log ratio is 0.5·sqrt(2/20000) = 0.5%,
	// and the batch variance (9 degrees of freedom) can be twice as large
	// in a few runs of 100; this seed's is 2.3 times.
	if !near(res.Effect, 0.25, 0.02) || res.Low > 0.25 || res.High < 0.25 || !res.Significant || res.PValue > 1e-6 {
		t.Errorf("25%% shift: effect %v in [%v, %v], p %v; want 0.25 inside, significant", res.Effect, res.Low, res.High, res.PValue)
	}
	if w := (1 + res.High) / (1 + res.Low); w > 1.05 {
		t.Errorf("25%% shift: interval [%v, %v] wider than 5%% at n=20000", res.Low, res.High)
	}
	if res.BaselineCount != 20000 || res.CandidateCount != 20000 || res.Blocks < 32 || res.DesignEffect > 3 {
		t.Errorf("counts %d, %d, %d blocks, design effect %v; want 20000 each, paired blocks, about 1",
			res.BaselineCount, res.CandidateCount, res.Blocks, res.DesignEffect)
	}
	if !near(res.Baseline, 10, 0.2) || !near(res.Candidate, 12.5, 0.25) {
		t.Errorf("geometric means %v, %v ms; want 10, 12.5", res.Baseline, res.Candidate)
	}

	// The same histogram on both sides: effect 0, p-value 1.
	res, err = CompareLatencies(b, b, 0.95, 0.1)
	if err != nil {
		t.Fatal(err)
	}
	if res.Effect != 0 || !near(res.PValue, 1, 1e-12) || res.Significant || res.Low >= 0 || res.High <= 0 {
		t.Errorf("A against itself: effect %v in [%v, %v], p %v; want 0 inside, p 1", res.Effect, res.Low, res.High, res.PValue)
	}
	// Needed for σ = 0.5 of log latency and a 10% change:
	// 2·(1.96+0.8416)²·0.25/ln(1.1)² = 431.
	if res.Needed < 400 || res.Needed > 460 {
		t.Errorf("Needed = %d, want about 431", res.Needed)
	}
	// Swapping the versions mirrors the ratio.
	ab, err := CompareLatencies(b, c, 0.95, 0.1)
	if err != nil {
		t.Fatal(err)
	}
	ba, err := CompareLatencies(c, b, 0.95, 0.1)
	if err != nil {
		t.Fatal(err)
	}
	if !near(ba.PValue, ab.PValue, 1e-9) || !near(1+ba.Effect, 1/(1+ab.Effect), 1e-9) || !near(1+ba.Low, 1/(1+ab.High), 1e-9) {
		t.Errorf("swapped: p %v effect %v low %v; want %v, %v, %v", ba.PValue, ba.Effect, ba.Low, ab.PValue, 1/(1+ab.Effect)-1, 1/(1+ab.High)-1)
	}
}

func TestCompareLatencyMeans(t *testing.T) {
	// Latencies 10ms ± U(-2, 2) against 11ms ± the same, independent.
	rng := rand.New(rand.NewPCG(14, 2))
	load := func(mean time.Duration) *Histogram {
		r := NewRecorder(10*time.Second, epoch)
		for i := range 10000 {
			r.Record(epoch.Add(time.Duration(i)*time.Millisecond), mean+time.Duration((rng.Float64()*4-2)*1e6), false)
		}
		return r.Histogram()
	}
	b, c := load(10*time.Millisecond), load(11*time.Millisecond)
	res, err := CompareLatencyMeans(b, c, 0.95, 0.05)
	if err != nil {
		t.Fatal(err)
	}
	// SE = sqrt(2·(4/3)/10000) = 0.0163ms.
	if res.Test != MeanDifference || res.Relative || !near(res.Effect, 1, 0.06) || !res.Significant ||
		!near(res.Baseline, 10, 0.05) || !near(res.Candidate, 11, 0.05) || res.Low > 1 || res.High < 1 {
		t.Errorf("10ms against 11ms: %+v; want an effect of 1ms, significant", res)
	}
	// Needed for 5% of 10ms with σ² = 4/3: 2·(4/3)·7.849/0.25 = 84.
	if res.Needed < 75 || res.Needed > 95 {
		t.Errorf("Needed = %d, want about 84", res.Needed)
	}
}

func TestCompareLatenciesErrors(t *testing.T) {
	valid := exact(100, 200)
	empty := NewRecorder(time.Second, epoch).Histogram()
	bad := &Histogram{Highest: 1000, SigFigs: 3, Sparse: []int64{1, -1}}
	tests := []struct {
		name       string
		b, c       *Histogram
		conf, min  float64
		wantSubstr string
	}{
		{"nil baseline", nil, valid, 0.95, 0.1, "baseline: no histogram"},
		{"nil candidate", valid, nil, 0.95, 0.1, "candidate: no histogram"},
		{"empty baseline", empty, valid, 0.95, 0.1, "baseline: no latencies"},
		{"malformed candidate", valid, bad, 0.95, 0.1, "candidate: histogram bucket"},
		{"confidence 0", valid, valid, 0, 0.1, "confidence 0"},
		{"confidence 1", valid, valid, 1, 0.1, "confidence 1"},
		{"confidence NaN", valid, valid, math.NaN(), 0.1, "confidence NaN"},
		{"minEffect 0", valid, valid, 0.95, 0, "minimum effect 0"},
		{"minEffect negative", valid, valid, 0.95, -0.1, "minimum effect"},
		{"minEffect NaN", valid, valid, 0.95, math.NaN(), "minimum effect"},
		{"minEffect Inf", valid, valid, 0.95, math.Inf(1), "minimum effect"},
	}
	for _, tt := range tests {
		_, err := CompareLatencies(tt.b, tt.c, tt.conf, tt.min)
		if err == nil || !strings.Contains(err.Error(), tt.wantSubstr) || !strings.Contains(err.Error(), "compare latencies") {
			t.Errorf("CompareLatencies(%s) error = %v, want one containing %q", tt.name, err, tt.wantSubstr)
		}
		_, err = CompareLatencyMeans(tt.b, tt.c, tt.conf, tt.min)
		if err == nil || !strings.Contains(err.Error(), tt.wantSubstr) || !strings.Contains(err.Error(), "compare mean latencies") {
			t.Errorf("CompareLatencyMeans(%s) error = %v, want one containing %q", tt.name, err, tt.wantSubstr)
		}
		_, err = ComparePercentiles(tt.b, tt.c, 90, tt.conf, tt.min)
		if err == nil || !strings.Contains(err.Error(), tt.wantSubstr) || !strings.Contains(err.Error(), "compare percentiles") {
			t.Errorf("ComparePercentiles(%s) error = %v, want one containing %q", tt.name, err, tt.wantSubstr)
		}
		_, err = CompareErrorRates(tt.b, tt.c, tt.conf, tt.min)
		if err == nil || !strings.Contains(err.Error(), tt.wantSubstr) || !strings.Contains(err.Error(), "compare error rates") {
			t.Errorf("CompareErrorRates(%s) error = %v, want one containing %q", tt.name, err, tt.wantSubstr)
		}
	}
	// What only rates and percentiles check.
	old := *valid
	old.Series = nil // a result written before series
	for _, tt := range []struct {
		name string
		err  error
		want string
	}{
		{"percentile 0", second(ComparePercentiles(valid, valid, 0, 0.95, 0.1)), "percentile 0"},
		{"percentile 100", second(ComparePercentiles(valid, valid, 100, 0.95, 0.1)), "percentile 100"},
		{"percentile NaN", second(ComparePercentiles(valid, valid, math.NaN(), 0.95, 0.1)), "percentile NaN"},
		{"share effect 1", second(ComparePercentiles(valid, valid, 90, 0.95, 1)), "below 1"},
		{"rate effect 1", second(CompareErrorRates(valid, valid, 0.95, 1)), "below 1"},
		{"rates without series", second(CompareErrorRates(&old, valid, 0.95, 0.01)), "without time blocks"},
	} {
		if tt.err == nil || !strings.Contains(tt.err.Error(), tt.want) {
			t.Errorf("%s: error = %v, want one containing %q", tt.name, tt.err, tt.want)
		}
	}
	// Latencies of an old result still compare, as one block.
	if res, err := CompareLatencies(&old, valid, 0.95, 0.1); err != nil || res.BaselineCount != 2 {
		t.Errorf("CompareLatencies with a result without series: %+v, %v", res, err)
	}
}

func second(_ Comparison, err error) error { return err }

func TestCompareRatesByHand(t *testing.T) {
	// 30/300 = 0.10 against 45/300 = 0.15. Pooled 75/600 = 0.125,
	// SE0 = sqrt(0.125·0.875·2/300) = 0.0270031, z = 1.851640,
	// p = 0.0640775. Wilson 95% intervals: 30/300 [0.0709479, 0.1391665],
	// 45/300 [0.1140325, 0.1948176]; Newcombe's interval of the difference
	// is 0.05 − hypot(0.15−0.1140325, 0.1391665−0.10) = −0.0031759 to
	// 0.05 + hypot(0.1948176−0.15, 0.10−0.0709479) = 0.1034101 (the Wald
	// interval would be [−0.0027736, 0.1027736]). Needed for 0.05 from
	// 0.10: (1.959964·sqrt(2·0.125·0.875) + 0.841621·sqrt(0.09+0.1275))² /
	// 0.05² = 685.6, so 686 (the usual tables' figure).
	res, err := CompareRates(RateSample(30, 300), RateSample(45, 300), 0.95, 0.05)
	if err != nil {
		t.Fatal(err)
	}
	want := Comparison{Test: TwoProportion, Baseline: 0.1, Candidate: 0.15, Effect: 0.05, Low: -0.003175888170201639, High: 0.10341012951821443, PValue: 0.0640775064510596, Needed: 686}
	if res.Test != want.Test || res.Relative || !near(res.Baseline, want.Baseline, 1e-12) || !near(res.Candidate, want.Candidate, 1e-12) || !near(res.Effect, want.Effect, 1e-12) ||
		!near(res.Low, want.Low, 1e-9) || !near(res.High, want.High, 1e-9) || !near(res.PValue, want.PValue, 1e-9) ||
		res.Significant || res.Needed != want.Needed {
		t.Errorf("CompareRates(30/300, 45/300) = %+v, want %+v", res, want)
	}
	if res.BaselineCount != 300 || res.CandidateCount != 300 || res.Blocks != 0 || res.DesignEffect != 1 || !math.IsInf(res.DF, 1) {
		t.Errorf("CompareRates: counts %d, %d, blocks %d, design effect %v, df %v; want 300, 300, 0, 1, +Inf",
			res.BaselineCount, res.CandidateCount, res.Blocks, res.DesignEffect, res.DF)
	}
	// The estimate and variance that sequential verdicts accumulate.
	if !near(res.Estimate, 0.05, 1e-12) || !near(res.Variance, 0.125*0.875*2/300, 1e-15) {
		t.Errorf("estimate %v variance %v, want 0.05 and %v", res.Estimate, res.Variance, 0.125*0.875*2/300)
	}
}

func TestCompareRatesDegenerate(t *testing.T) {
	// With no events the interval still spans what the trials cannot rule
	// out: the Wilson upper bounds z²/(n+z²) of 0/100 (0.0369935) and 0/200
	// (0.0188453), and for all events their mirror images.
	for _, tt := range []struct {
		name      string
		b, c      Sample
		low, high float64
	}{
		{"both 0", RateSample(0, 100), RateSample(0, 200), -0.03699349820698566, 0.018845326377266564},
		{"both 1", RateSample(100, 100), RateSample(50, 50), -0.07134759913335864, 0.03699349820698572},
	} {
		res, err := CompareRates(tt.b, tt.c, 0.95, 0.02)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if res.Significant || res.PValue != 1 || res.Effect != 0 || !near(res.Low, tt.low, 1e-9) || !near(res.High, tt.high, 1e-9) {
			t.Errorf("%s: %+v, want p 1 and the interval [%v, %v]", tt.name, res, tt.low, tt.high)
		}
		// Planned for 0 → 0.02 (or 1 → 0.98): p̄ = 0.01,
		// (1.959964·sqrt(2·0.01·0.99) + 0.841621·sqrt(0.0196))² / 0.0004
		// = (0.275791 + 0.117827)² / 0.0004 = 387.3, so 388.
		if res.Needed != 388 {
			t.Errorf("%s: Needed = %d, want 388", tt.name, res.Needed)
		}
	}
	// 0 of 100 against 100 of 100 is as clear as it gets.
	res, err := CompareRates(RateSample(0, 100), RateSample(100, 100), 0.95, 0.02)
	if err != nil || !res.Significant || res.Effect != 1 || res.High != 1 {
		t.Errorf("0/100 against 100/100: %+v, %v; want significant, difference 1", res, err)
	}
}

// TestCompareRatesNewcombeCoverage checks that Newcombe's interval keeps its
// coverage with few events, where the Wald interval falls short.
func TestCompareRatesNewcombeCoverage(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 2))
	binomial := func(n int, p float64) int64 {
		var k int64
		for range n {
			if rng.Float64() < p {
				k++
			}
		}
		return k
	}
	const runs = 2000
	for _, tt := range []struct {
		n      int
		p1, p2 float64
	}{{200, 0.01, 0.02}, {100, 0.05, 0.05}, {500, 0.002, 0.01}} {
		covered, wald := 0, 0
		for range runs {
			k1, k2 := binomial(tt.n, tt.p1), binomial(tt.n, tt.p2)
			res, err := CompareRates(RateSample(k1, int64(tt.n)), RateSample(k2, int64(tt.n)), 0.95, 0.01)
			if err != nil {
				t.Fatal(err)
			}
			d := tt.p2 - tt.p1
			if res.Low <= d && d <= res.High {
				covered++
			}
			q1, q2 := float64(k1)/float64(tt.n), float64(k2)/float64(tt.n)
			se := math.Sqrt((q1*(1-q1) + q2*(1-q2)) / float64(tt.n))
			if math.Abs(q2-q1-d) <= 1.959964*se {
				wald++
			}
		}
		// 2000 runs: the coverage's standard error is 0.5%.
		if c := float64(covered) / runs; c < 0.93 {
			t.Errorf("n %d, %v against %v: Newcombe coverage %v, want at least 0.93 (Wald %v)", tt.n, tt.p1, tt.p2, c, float64(wald)/runs)
		}
		if covered <= wald {
			t.Errorf("n %d, %v against %v: Newcombe covers %d of %d, no more than Wald's %d", tt.n, tt.p1, tt.p2, covered, runs, wald)
		}
	}
}

func TestCompareMeansByHand(t *testing.T) {
	// Welch: 20 ± 4 (n 10) against 23 ± 6 (n 12). v1 = 1.6, v2 = 3,
	// SE = sqrt(4.6) = 2.144761, t = 1.398757, df = 4.6²/(1.6²/9 + 3²/11)
	// = 19.19055; p = 0.177840 and t(0.975, df) = 2.091618 by numerical
	// integration of the t density, so CI = 3 ± 4.486022. Needed for 10%
	// of 20, from the variance of one value that 4.6 implies at these
	// counts, 4.6/(1/10+1/12) = 25.0909: 2·25.0909·(1.959964+0.841621)²/2²
	// = 98.47, so 99.
	res, err := CompareMeans(MeanSample(10, 20, 4), MeanSample(12, 23, 6), 0.95, 0.1)
	if err != nil {
		t.Fatal(err)
	}
	if res.Test != Welch || !near(res.Effect, 3, 1e-12) || !near(res.PValue, 0.17783984843231967, 1e-6) ||
		!near(res.Low, -1.4860216106079758, 1e-5) || !near(res.High, 7.486021610607976, 1e-5) || res.Significant || res.Needed != 99 {
		t.Errorf("CompareMeans(20±4 n10, 23±6 n12) = %+v", res)
	}
	if !near(res.DF, 19.19055, 1e-4) || !near(res.Variance, 4.6, 1e-12) || res.Baseline != 20 || res.Candidate != 23 {
		t.Errorf("CompareMeans: df %v variance %v means %v, %v; want 19.19055, 4.6, 20, 23", res.DF, res.Variance, res.Baseline, res.Candidate)
	}
	// No variation: the difference is exact, and there is no variance to
	// plan a size from.
	res, err = CompareMeans(MeanSample(5, 1, 0), MeanSample(5, 2, 0), 0.95, 0.1)
	if err != nil || !res.Significant || res.PValue != 0 || res.Low != 1 || res.High != 1 || res.Needed != 0 {
		t.Errorf("constant 1 against constant 2: %+v, %v; want p 0, interval [1, 1], Needed 0", res, err)
	}
	res, err = CompareMeans(MeanSample(5, 1, 0), MeanSample(5, 1, 0), 0.95, 0.1)
	if err != nil || res.Significant || res.PValue != 1 {
		t.Errorf("constant 1 against itself: %+v, %v; want p 1", res, err)
	}
	// A baseline mean of 0 leaves a relative effect undefined.
	res, err = CompareMeans(MeanSample(5, 0, 1), MeanSample(5, 1, 1), 0.95, 0.1)
	if err != nil || res.Needed != 0 {
		t.Errorf("baseline mean 0: %+v, %v; want Needed 0", res, err)
	}
}

func TestCompareMeanRatioByHand(t *testing.T) {
	// 20 ± 4 (n 10) against 23 ± 6 (n 12) by the ratio of means: the
	// estimate ln(23/20) = 0.139762, variance 0.2²/10 + (6/23)²/12 =
	// 0.00967108, Welch's df on that scale 19.8935, t = 1.421188 (p
	// about 0.17). Needed for +10%: the variance of one value at these
	// counts, 0.00967108/(1/10+1/12) = 0.0527513, times
	// 2·(1.959964+0.841621)²/ln(1.1)² = 91.16, so 92.
	res, err := CompareMeanRatio(MeanSample(10, 20, 4), MeanSample(12, 23, 6), 0.95, 0.1)
	if err != nil {
		t.Fatal(err)
	}
	if res.Test != MeanRatio || !res.Relative || !near(res.Effect, 0.15, 1e-12) || !near(res.Estimate, math.Log(1.15), 1e-12) ||
		!near(res.Variance, 0.004+math.Pow(6.0/23, 2)/12, 1e-12) || !near(res.DF, 19.8935, 1e-4) || res.Needed != 92 {
		t.Errorf("CompareMeanRatio(20±4 n10, 23±6 n12) = %+v", res)
	}
	if res.Significant || res.PValue < 0.16 || res.PValue > 0.18 {
		t.Errorf("p-value %v: want about 0.17, not significant", res.PValue)
	}
	// The interval is symmetric around the estimate on the log scale.
	if mid := (math.Log1p(res.Low) + math.Log1p(res.High)) / 2; !near(mid, math.Log(1.15), 1e-9) || !(res.Low < 0 && res.High > 0.15) {
		t.Errorf("interval [%v, %v]: want one around +15%% spanning 0, symmetric in logs", res.Low, res.High)
	}
	for _, tt := range []struct {
		b, c Sample
		want string
	}{
		{MeanSample(10, 0, 1), MeanSample(10, 1, 1), "baseline mean 0: a ratio needs means above 0"},
		{MeanSample(10, 1, 1), MeanSample(10, -1, 1), "candidate mean -1"},
		{RateSample(1, 10), MeanSample(10, 1, 1), `sample kind "rate", want "mean"`},
	} {
		if _, err := CompareMeanRatio(tt.b, tt.c, 0.95, 0.1); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("CompareMeanRatio(%+v, %+v): error %v, want one containing %q", tt.b, tt.c, err, tt.want)
		}
	}
}

func TestCompareSamplesErrors(t *testing.T) {
	rate, mean := RateSample(1, 10), MeanSample(10, 1, 1)
	tests := []struct {
		name       string
		f          func(b, c Sample, conf, min float64) (Comparison, error)
		b, c       Sample
		conf, min  float64
		wantSubstr string
	}{
		{"rates of means", CompareRates, mean, mean, 0.95, 0.01, `baseline: sample kind "mean", want "rate"`},
		{"rates mixed", CompareRates, rate, mean, 0.95, 0.01, `candidate: sample kind "mean"`},
		{"rates invalid", CompareRates, RateSample(5, 3), rate, 0.95, 0.01, "baseline: rate sample: 5 successes of 3 trials"},
		{"rates no trials", CompareRates, rate, RateSample(0, 0), 0.95, 0.01, "candidate: no trials"},
		{"rates effect 1", CompareRates, rate, rate, 0.95, 1, "below 1"},
		{"rates confidence", CompareRates, rate, rate, 1.5, 0.01, "confidence 1.5"},
		{"rates unknown kind", CompareRates, Sample{Kind: "p99"}, rate, 0.95, 0.01, `sample kind "p99"`},
		{"means of rates", CompareMeans, rate, mean, 0.95, 0.1, `baseline: sample kind "rate", want "mean"`},
		{"means invalid", CompareMeans, mean, MeanSample(10, 1, -1), 0.95, 0.1, "candidate: mean sample"},
		{"means one value", CompareMeans, MeanSample(1, 1, 0), mean, 0.95, 0.1, "baseline: count 1: want at least 2"},
		{"means NaN", CompareMeans, MeanSample(3, math.NaN(), 0), mean, 0.95, 0.1, "baseline: mean NaN"},
		{"means stdev Inf", CompareMeans, mean, MeanSample(3, 1, math.Inf(1)), 0.95, 0.1, "candidate: stdev +Inf"},
		{"means effect", CompareMeans, mean, mean, 0.95, 0, "minimum effect 0"},
		{"means effect Inf", CompareMeans, mean, mean, 0.95, math.Inf(1), "minimum effect"},
	}
	for _, tt := range tests {
		_, err := tt.f(tt.b, tt.c, tt.conf, tt.min)
		if err == nil || !strings.Contains(err.Error(), tt.wantSubstr) {
			t.Errorf("%s: error = %v, want one containing %q", tt.name, err, tt.wantSubstr)
		}
	}
}

func TestGeometryMatchesHDR(t *testing.T) {
	for sig := 1; sig <= 5; sig++ {
		for _, highest := range []int64{2, 1000, 2047, 2048, 1 << 20, int64(10 * time.Second), math.MaxInt64 / 3} {
			if sig >= 4 && highest > 1<<20 {
				continue // MBs of counts, and nothing new to learn
			}
			g := newGeometry(highest, sig)
			ref := hdr.New(1, highest, sig)
			if w := int64(len(ref.Export().Counts)); g.width != w {
				t.Errorf("sigFigs %d highest %d: width %d, hdr has %d", sig, highest, g.width, w)
				continue
			}
			if g.width > 1<<17 {
				continue // the layout repeats; iterating it is slow under -race
			}
			// One value in every step-th bucket, all in one histogram:
			// its non-empty bars are then those buckets, in order.
			step := max(g.width/997, 1)
			h := hdr.New(1, highest, sig)
			var want []int64
			for i := int64(0); i < g.width; i += step {
				lo, _ := g.lowest(i)
				if h.RecordValue(lo) == nil { // the last bucket may reach past highest
					want = append(want, i)
				}
			}
			counts := h.Export().Counts
			var bars []hdr.Bar
			for _, b := range h.Distribution() {
				if b.Count > 0 {
					bars = append(bars, b)
				}
			}
			if len(bars) != len(want) {
				t.Errorf("sigFigs %d highest %d: %d buckets recorded, hdr has %d", sig, highest, len(want), len(bars))
				continue
			}
			for k, i := range want {
				lo, size := g.lowest(i)
				if b := bars[k]; b.From != lo || b.To != lo+size-1 || counts[i] != 1 {
					t.Errorf("sigFigs %d highest %d index %d: [%d, %d], hdr has [%d, %d] count %d", sig, highest, i, lo, lo+size-1, b.From, b.To, counts[i])
				}
			}
		}
	}
}

func TestSparseAgreesWithLoad(t *testing.T) {
	// Repeated and unordered indices, as Load accepts them.
	h := &Histogram{Unit: "ns", Highest: int64(time.Second), SigFigs: 3, Sparse: []int64{3000, 2, 10, 1, 3000, 3, 5, 0, 10, 4}}
	got, total, err := h.sparse()
	if err != nil {
		t.Fatal(err)
	}
	want := []indexCount{{10, 5}, {3000, 5}}
	if !reflect.DeepEqual(got, want) || total != 10 {
		t.Errorf("sparse() = %v, %d; want %v, 10", got, total, want)
	}
	for _, p := range []*Histogram{
		{Highest: 1000, SigFigs: 3, Sparse: []int64{1}},
		{Highest: 1000, SigFigs: 6},
		{Highest: 1, SigFigs: 3},
		{Highest: 1000, SigFigs: 3, Sparse: []int64{1 << 40, 1}},
		{Highest: 1000, SigFigs: 3, Sparse: []int64{10, math.MaxInt64, 11, 1}},
	} {
		_, errLoad := p.Load()
		_, _, errSparse := p.sparse()
		if (errLoad == nil) != (errSparse == nil) {
			t.Errorf("%+v: Load error %v, sparse error %v; want both or neither", p, errLoad, errSparse)
		}
	}
}

func BenchmarkCompareLatencies(b *testing.B) {
	rng := rand.New(rand.NewPCG(13, 2))
	hs := make([]*Histogram, 2)
	for i := range hs {
		hs[i] = lognormalLoad(rng, 1_000_000, time.Minute, 10*time.Millisecond, 0.5)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := CompareLatencies(hs[0], hs[1], 0.95, 0.1); err != nil {
			b.Fatal(err)
		}
	}
}
