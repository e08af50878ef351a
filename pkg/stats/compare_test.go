package stats

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

func near(got, want, tol float64) bool { return math.Abs(got-want) <= tol }

// exact records values below 2048ns, which HDR keeps exactly.
func exact(values ...int64) *Histogram {
	r := NewRecorder(time.Second)
	for _, v := range values {
		r.Record(time.Duration(v))
	}
	return r.Histogram()
}

func TestCompareLatenciesMannWhitneyByHand(t *testing.T) {
	// U of the candidate: 200 beats 100 and ties two 200s (2), 300 beats
	// three and ties one (3.5), each 400 beats all four (8), 500 too (4):
	// U = 17.5 against a mean of mn/2 = 10. Ties in the pooled sample:
	// 200×3, 300×2, 400×2, so Σ(t³−t) = 24+6+6 = 36 and
	// var = mn/12·((N+1) − 36/(N(N−1))) = 20/12·(10 − 0.5) = 15.8333;
	// z = 7.5/3.97911 = 1.884843, two-sided p = 0.0594511.
	base := exact(100, 200, 200, 300)
	cand := exact(200, 300, 400, 400, 500)
	res, err := CompareLatencies(base, cand, 0.95, 0.1)
	if err != nil {
		t.Fatal(err)
	}
	if !near(res.PValue, 0.05945109331155366, 1e-9) || res.Significant {
		t.Errorf("p-value = %v (significant %v), want 0.0594511, not significant", res.PValue, res.Significant)
	}
	if res.BaselineCount != 4 || res.CandidateCount != 5 || res.Inflation != 1 {
		t.Errorf("counts %d, %d inflation %v; want 4, 5, 1", res.BaselineCount, res.CandidateCount, res.Inflation)
	}
	// Pairwise ratios: 2, 1, 1, 2/3 (for 200), 3, 1.5, 1.5, 1 (300), 4, 2,
	// 2, 4/3 (each 400), 5, 2.5, 2.5, 5/3 (500). The 10th and 11th of the 20
	// are 2 and 2: the estimate is 2. At 95% the lower bound falls on the
	// tied pairs' ratio 1 (W jumps from 19 to 16 across 1, around the bound
	// 10 + 1.96·3.979 = 17.8); the upper on 4.
	if !near(res.Ratio, 2, 1e-9) || !near(res.Low, 1, 1e-9) || !near(res.High, 4, 1e-9) {
		t.Errorf("ratio %v in [%v, %v], want 2 in [1, 4]", res.Ratio, res.Low, res.High)
	}
	// At 90% the same z is significant: the bound 16.5 lies between W
	// just above 1 (16) and W at 1 (17.5), so the interval starts just
	// above 1, at 1 itself as an infimum.
	res, err = CompareLatencies(base, cand, 0.90, 0.1)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Significant || res.Low < 1 || !near(res.High, 3, 1e-9) {
		t.Errorf("at 0.90: significant %v, interval [%v, %v]; want significant, [1, 3]", res.Significant, res.Low, res.High)
	}
	// Swapping the versions mirrors the result.
	back, err := CompareLatencies(cand, base, 0.90, 0.1)
	if err != nil {
		t.Fatal(err)
	}
	if !near(back.PValue, res.PValue, 1e-12) || !near(back.Ratio, 1/res.Ratio, 1e-6) || !near(back.Low, 1/res.High, 1e-6) {
		t.Errorf("swapped: p %v ratio %v low %v; want %v, %v, %v", back.PValue, back.Ratio, back.Low, res.PValue, 1/res.Ratio, 1/res.High)
	}
}

func TestCompareLatenciesHodgesLehmann(t *testing.T) {
	// Every pairwise ratio is 1.5: the estimate is 1.5 exactly.
	res, err := CompareLatencies(exact(1000, 1000, 1000), exact(1500, 1500), 0.95, 0.1)
	if err != nil {
		t.Fatal(err)
	}
	if !near(res.Ratio, 1.5, 1e-6) {
		t.Errorf("ratio of constant 1000ns and 1500ns = %v, want 1.5", res.Ratio)
	}

	// A multiplicative shift of 25% on lognormal latencies.
	rng := rand.New(rand.NewPCG(11, 2))
	b, c := NewRecorder(10*time.Second), NewRecorder(10*time.Second)
	for range 20000 {
		d := 10e6 * math.Exp(0.5*rng.NormFloat64())
		b.Record(time.Duration(d))
		c.Record(time.Duration(1.25 * 10e6 * math.Exp(0.5*rng.NormFloat64())))
	}
	res, err = CompareLatencies(b.Histogram(), c.Histogram(), 0.95, 0.1)
	if err != nil {
		t.Fatal(err)
	}
	// The estimate's standard error is about 0.5·sqrt(2/20000)·1.02 = 0.5%.
	if !near(res.Ratio, 1.25, 0.02) || res.Low > 1.25 || res.High < 1.25 || !res.Significant || res.PValue > 1e-10 {
		t.Errorf("25%% shift: ratio %v in [%v, %v], p %v; want 1.25 inside, significant", res.Ratio, res.Low, res.High, res.PValue)
	}
	if w := res.High / res.Low; w > 1.04 {
		t.Errorf("25%% shift: interval [%v, %v] wider than 4%% at n=20000", res.Low, res.High)
	}

	// The same histogram on both sides: ratio 1, p-value 1.
	h := b.Histogram()
	res, err = CompareLatencies(h, h, 0.95, 0.1)
	if err != nil {
		t.Fatal(err)
	}
	if !near(res.Ratio, 1, 1e-6) || !near(res.PValue, 1, 1e-12) || res.Significant || res.Low >= 1 || res.High <= 1 {
		t.Errorf("A against itself: ratio %v in [%v, %v], p %v; want 1 inside, p 1", res.Ratio, res.Low, res.High, res.PValue)
	}
	// Needed for σ = 0.5 of log latency and a 10% change:
	// 2·(1.96+0.8416)²·0.25/ln(1.1)² = 431.
	if res.Needed < 400 || res.Needed > 460 {
		t.Errorf("Needed = %d, want about 431", res.Needed)
	}
}

func TestCompareLatenciesAllTied(t *testing.T) {
	res, err := CompareLatencies(exact(700, 700), exact(700), 0.95, 0.1)
	if err != nil {
		t.Fatal(err)
	}
	if res.PValue != 1 || res.Significant || !near(res.Ratio, 1, 1e-9) || !near(res.Low, 1, 1e-9) || !near(res.High, 1, 1e-9) {
		t.Errorf("all values equal: %+v; want p 1, ratio and interval 1", res)
	}
	// One value each: the interval cannot be bounded and is clamped to the
	// observed ratio.
	res, err = CompareLatencies(exact(500), exact(1000), 0.95, 0.1)
	if err != nil {
		t.Fatal(err)
	}
	if res.Significant || !near(res.Ratio, 2, 1e-6) || !near(res.Low, 2, 1e-6) || !near(res.High, 2, 1e-6) || math.IsInf(res.High, 0) {
		t.Errorf("one value each: %+v; want ratio 2, clamped interval, not significant", res)
	}
}

func TestCompareLatenciesErrors(t *testing.T) {
	valid := exact(100, 200)
	empty := NewRecorder(time.Second).Histogram()
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
	}
	for _, tt := range tests {
		_, err := CompareLatencies(tt.b, tt.c, tt.conf, tt.min)
		if err == nil || !strings.Contains(err.Error(), tt.wantSubstr) {
			t.Errorf("CompareLatencies(%s) error = %v, want one containing %q", tt.name, err, tt.wantSubstr)
		}
	}
}

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
	want := DifferenceResult{Baseline: 0.1, Candidate: 0.15, Difference: 0.05, Low: -0.003175888170201639, High: 0.10341012951821443, PValue: 0.0640775064510596, Needed: 686}
	if !near(res.Baseline, want.Baseline, 1e-12) || !near(res.Candidate, want.Candidate, 1e-12) || !near(res.Difference, want.Difference, 1e-12) ||
		!near(res.Low, want.Low, 1e-9) || !near(res.High, want.High, 1e-9) || !near(res.PValue, want.PValue, 1e-9) ||
		res.Significant || res.Needed != want.Needed {
		t.Errorf("CompareRates(30/300, 45/300) = %+v, want %+v", res, want)
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
		if res.Significant || res.PValue != 1 || res.Difference != 0 || !near(res.Low, tt.low, 1e-9) || !near(res.High, tt.high, 1e-9) {
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
	if err != nil || !res.Significant || res.Difference != 1 || res.High != 1 {
		t.Errorf("0/100 against 100/100: %+v, %v; want significant, difference 1", res, err)
	}
}

func TestCompareMeansByHand(t *testing.T) {
	// Welch: 20 ± 4 (n 10) against 23 ± 6 (n 12). v1 = 1.6, v2 = 3,
	// SE = sqrt(4.6) = 2.144761, t = 1.398757, df = 4.6²/(1.6²/9 + 3²/11)
	// = 19.19055; p = 0.177840 and t(0.975, df) = 2.091618 by numerical
	// integration of the t density, so CI = 3 ± 4.486022. Needed for 10%
	// of 20: (1.959964+0.841621)²·(16+36)/2² = 102.04, so 103.
	res, err := CompareMeans(MeanSample(10, 20, 4), MeanSample(12, 23, 6), 0.95, 0.1)
	if err != nil {
		t.Fatal(err)
	}
	if !near(res.Difference, 3, 1e-12) || !near(res.PValue, 0.17783984843231967, 1e-6) ||
		!near(res.Low, -1.4860216106079758, 1e-5) || !near(res.High, 7.486021610607976, 1e-5) || res.Significant || res.Needed != 103 {
		t.Errorf("CompareMeans(20±4 n10, 23±6 n12) = %+v", res)
	}
	// No variation: the difference is exact.
	res, err = CompareMeans(MeanSample(5, 1, 0), MeanSample(5, 2, 0), 0.95, 0.1)
	if err != nil || !res.Significant || res.PValue != 0 || res.Low != 1 || res.High != 1 || res.Needed != 2 {
		t.Errorf("constant 1 against constant 2: %+v, %v; want p 0, interval [1, 1], Needed 2", res, err)
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

func TestCompareSamplesErrors(t *testing.T) {
	rate, mean := RateSample(1, 10), MeanSample(10, 1, 1)
	tests := []struct {
		name       string
		f          func(b, c Sample, conf, min float64) (DifferenceResult, error)
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

// directF returns the F ratio computed directly from values dealt into
// blocks, to check the sums.
func directF(blocks [][]float64) float64 {
	var n, k, grand float64
	for _, b := range blocks {
		for _, x := range b {
			grand += x
			n++
		}
		k++
	}
	grand /= n
	var between, within float64
	for _, b := range blocks {
		var m float64
		for _, x := range b {
			m += x
		}
		m /= float64(len(b))
		between += float64(len(b)) * (m - grand) * (m - grand)
		for _, x := range b {
			within += (x - m) * (x - m)
		}
	}
	return between / (k - 1) / (within / (n - k))
}

func TestBlocksANOVA(t *testing.T) {
	rng := rand.New(rand.NewPCG(12, 2))
	r := NewRecorder(10 * time.Second)
	var blocks [][]float64
	for i := range 1000 { // 31 full blocks and one of 8
		if i%BlockSize == 0 {
			blocks = append(blocks, nil)
		}
		d := time.Duration(10e6 * math.Exp(0.5*rng.NormFloat64()) * float64(1+i/BlockSize%3))
		r.Record(d)
		blocks[len(blocks)-1] = append(blocks[len(blocks)-1], math.Log(float64(d)))
	}
	b := r.Histogram().Blocks
	if b.Count != 1000 || b.Blocks != 32 {
		t.Fatalf("blocks %+v, want 1000 values in 32 blocks", b)
	}
	f, d1, d2, ok := b.anova()
	want := directF(blocks)
	if !ok || d1 != 31 || d2 != 968 || !near(f, want, 1e-3*want) {
		t.Errorf("anova() = %v (%v, %v, %v), want F %v with (31, 968)", f, d1, d2, ok, want)
	}
}

// threads records values dealt round-robin over k recorders, optionally with
// bursts: runs of 16 consecutive requests of a thread 4 times slower.
func threads(seed uint64, k, n int, bursts bool) []*Recorder {
	rng := rand.New(rand.NewPCG(seed, 3))
	rs := make([]*Recorder, k)
	slow := make([]int, k)
	for i := range rs {
		rs[i] = NewRecorder(10 * time.Second)
	}
	for i := range n {
		th := i % k
		f := 1.0
		if bursts {
			if slow[th] == 0 && rng.Float64() < 0.01 {
				slow[th] = 16
			}
			if slow[th] > 0 {
				f = 4
				slow[th]--
			}
		}
		rs[th].Record(time.Duration(10e6 * math.Exp(0.5*rng.NormFloat64()) * f))
	}
	return rs
}

func TestInflation(t *testing.T) {
	merge := func(rs []*Recorder) *Histogram {
		total := NewRecorder(10 * time.Second)
		for _, r := range rs {
			total.Merge(r)
		}
		return total.Histogram()
	}
	iid := 0
	for seed := range uint64(20) {
		h := merge(threads(seed, 4, 4000, false))
		if Inflation(h) == 1 {
			iid++
		}
		f, _, _, _ := h.Blocks.anova()
		if f > 2 {
			t.Errorf("seed %d: F = %v for independent values, want about 1", seed, f)
		}
	}
	// The pre-test lets through 1% of independent runs.
	if iid < 18 {
		t.Errorf("inflation applied to %d of 20 independent runs, want at most 2", 20-iid)
	}
	for seed := range uint64(5) {
		h := merge(threads(seed, 4, 4000, true))
		if got := Inflation(h); got < 2 {
			t.Errorf("seed %d: Inflation = %v with bursts of slow requests, want well above 1", seed, got)
		}
	}
	if got := Inflation(&Histogram{Count: 5}); got != 1 {
		t.Errorf("Inflation without blocks = %v, want 1", got)
	}
	if got := Inflation(nil); got != 1 {
		t.Errorf("Inflation(nil) = %v, want 1", got)
	}
	// Constant within blocks, different across: the cap, the block size.
	r := NewRecorder(10 * time.Second)
	for i := range 4 * BlockSize {
		r.Record(time.Duration(1+i/BlockSize) * time.Millisecond)
	}
	if got := Inflation(r.Histogram()); got != BlockSize {
		t.Errorf("Inflation of blocks constant within = %v, want %d", got, BlockSize)
	}
}

func TestBlocksMergeExactly(t *testing.T) {
	rs := threads(7, 4, 1001, true)
	hs := make([]*Histogram, len(rs))
	for i, r := range rs {
		hs[i] = r.Histogram()
	}
	forward, backward := NewRecorder(10*time.Second), NewRecorder(10*time.Second)
	for i := range rs {
		forward.Merge(rs[i])
		backward.Merge(rs[len(rs)-1-i])
	}
	f, b := forward.Histogram(), backward.Histogram()
	if !reflect.DeepEqual(f, b) {
		t.Errorf("merged in two orders: blocks %+v and %+v", f.Blocks, b.Blocks)
	}
	// Into one of the parts, which keeps its own block open.
	into := threads(7, 4, 1001, true)
	into[2].Merge(into[0])
	into[2].Merge(into[3])
	into[2].Merge(into[1])
	if got := into[2].Histogram(); !reflect.DeepEqual(got.Blocks, f.Blocks) {
		t.Errorf("merged into a part: blocks %+v, want %+v", got.Blocks, f.Blocks)
	}
	var want Blocks
	for _, h := range hs {
		want.add(h.Blocks)
	}
	if *f.Blocks != want || want.Count != 1001 || want.Blocks != 4*((250+BlockSize-1)/BlockSize) {
		t.Errorf("merged blocks %+v, want the sum of the parts %+v (8 blocks per thread)", *f.Blocks, want)
	}
	m1, err := MergeHistograms(hs...)
	if err != nil {
		t.Fatal(err)
	}
	m2, err := MergeHistograms(hs[3], hs[1], hs[0], hs[2])
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(m1, m2) || !reflect.DeepEqual(m1.Blocks, f.Blocks) {
		t.Errorf("MergeHistograms blocks %+v and %+v, want %+v", m1.Blocks, m2.Blocks, f.Blocks)
	}

	// Through JSON and back.
	data, err := json.Marshal(m1)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `"blocks":{"count":1001,"blocks":32,`) {
		t.Errorf("JSON %s: want the blocks", data)
	}
	var back Histogram
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&back, m1) {
		t.Errorf("JSON round trip: blocks %+v, want %+v", back.Blocks, m1.Blocks)
	}

	// An old result, without blocks, loads and merges without them.
	old := *hs[0]
	old.Blocks = nil
	data, _ = json.Marshal(&old)
	if strings.Contains(string(data), "blocks") {
		t.Errorf("JSON without blocks: %s", data)
	}
	if _, err := old.Load(); err != nil {
		t.Errorf("Load without blocks: %v", err)
	}
	m3, err := MergeHistograms(&old, hs[1])
	if err != nil || m3.Blocks != nil {
		t.Errorf("merge with an old result: blocks %+v, %v; want none", m3.Blocks, err)
	}
	// An empty old result does not matter.
	m4, err := MergeHistograms(NewRecorder(time.Second).Histogram(), &Histogram{Unit: "ns", Highest: 1000, SigFigs: 3}, hs[1])
	if err != nil || !reflect.DeepEqual(m4.Blocks, hs[1].Blocks) {
		t.Errorf("merge with empty results: blocks %+v, %v; want %+v", m4.Blocks, err, hs[1].Blocks)
	}
}

func TestHistogramLoadRejectsInconsistentBlocks(t *testing.T) {
	valid := threads(8, 1, 100, false)[0].Histogram() // 100 values, 4 blocks
	with := func(edit func(b *Blocks), dropped int64) *Histogram {
		h := *valid
		b := *valid.Blocks
		edit(&b)
		h.Blocks = &b
		h.Dropped = dropped
		return &h
	}
	tests := []struct {
		name string
		h    *Histogram
	}{
		{"negative count", with(func(b *Blocks) { b.Count = -1 }, 0)},
		{"negative blocks", with(func(b *Blocks) { b.Blocks = -4 }, 0)},
		{"more blocks than values", with(func(b *Blocks) { b.Blocks = 101 }, 0)},
		{"too few blocks", with(func(b *Blocks) { b.Blocks = 3 }, 0)},
		{"count not the histogram's", with(func(b *Blocks) { b.Count = 99 }, 0)},
		{"negative sum of squares", with(func(b *Blocks) { b.SumSquares = -1 }, 0)},
		{"negative block squares", with(func(b *Blocks) { b.SumBlockSquares = -1 }, 0)},
		{"block squares above squares", with(func(b *Blocks) { b.SumBlockSquares = b.SumSquares + 1000 }, 0)},
		{"sum too large", with(func(b *Blocks) { b.Sum = math.MaxInt64 }, 0)},
		{"negative dropped", with(func(*Blocks) {}, -1)},
		{"dropped overflows", with(func(*Blocks) {}, math.MaxInt64)},
	}
	for _, tt := range tests {
		if _, err := tt.h.Load(); err == nil {
			t.Errorf("Load(%s) = nil error, want one", tt.name)
		}
		if _, err := CompareLatencies(tt.h, valid, 0.95, 0.1); err == nil {
			t.Errorf("CompareLatencies(%s) = nil error, want one", tt.name)
		}
		if _, err := MergeHistograms(valid, tt.h); err == nil {
			t.Errorf("MergeHistograms(valid, %s) = nil error, want one", tt.name)
		}
		_ = Inflation(tt.h) // must not panic
	}
	// Dropped values count among the blocks' values.
	ok := with(func(b *Blocks) { b.Count = 101; b.Blocks = 5 }, 1)
	if _, err := ok.Load(); err != nil {
		t.Errorf("Load with a dropped value in the blocks: %v", err)
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
		r := NewRecorder(10 * time.Second)
		for range 1_000_000 {
			r.Record(time.Duration(10e6 * math.Exp(0.5*rng.NormFloat64())))
		}
		hs[i] = r.Histogram()
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := CompareLatencies(hs[0], hs[1], 0.95, 0.1); err != nil {
			b.Fatal(err)
		}
	}
}
