package assess

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/iter8-tools/iter8/pkg/experiment"
	"github.com/iter8-tools/iter8/pkg/stats"
)

// comparisonOf returns the only comparison of metric against candidate.
func comparisonOf(t *testing.T, res *experiment.Result, metric, candidate string) experiment.Comparison {
	t.Helper()
	var found []experiment.Comparison
	for _, c := range res.Comparisons {
		if c.Metric == metric && c.Candidate == candidate {
			found = append(found, c)
		}
	}
	if len(found) != 1 {
		t.Fatalf("comparisons of %s for %s: %+v; want one", metric, candidate, res.Comparisons)
	}
	return found[0]
}

// A candidate whose share of requests above the baseline's p90 doubles
// (10% to 20%) is worse on m/latency-p90, compared through the tail of
// m/latency above a threshold near the baseline's p90.
func TestPercentileComparison(t *testing.T) {
	// Log-normal, σ 0.5: the p90 is median·e^(0.5·1.2816), 19ms for 10ms;
	// a median of 12.46ms puts 20% above it.
	const p90 = 18.97
	res := runComparisons(t, "{comparisons: [{metric: m/latency-p90, candidate: v2}]}", func(r *experiment.Result) {
		r.SetHistogram("v1", "m/latency", lognormal(1, 3000, 10*time.Millisecond))
		r.SetHistogram("v2", "m/latency", lognormal(2, 3000, 12460*time.Microsecond))
	})
	c := comparisonOf(t, res, "m/latency-p90", "v2")
	if c.Test != stats.TailShare || c.Verdict != experiment.VerdictWorse || c.Relative {
		t.Errorf("test %q verdict %s relative %v (reason %q); want tail-share, worse, an absolute difference", c.Test, c.Verdict, c.Relative, c.Reason)
	}
	// The threshold is the baseline's p90 rounded down to the edge of a
	// tail bucket, a quarter doubling (19%) wide.
	if !(c.Threshold > p90/math.Pow(2, 0.25)*0.97 && c.Threshold <= p90*1.03) {
		t.Errorf("threshold %v ms; want the baseline's p90 (%v ms) or up to a quarter doubling below", c.Threshold, p90)
	}
	// Above a threshold between 16 and 19ms: 10–17% of the baseline, 20–31%
	// of the candidate; the difference is about 0.1 to 0.14.
	if c.Effect == nil || *c.Effect < 0.07 || *c.Effect > 0.18 || *c.Low <= 0 || *c.High < *c.Effect {
		t.Errorf("effect %v [%v, %v]; want about +0.1 with an interval above 0", deref(c.Effect), deref(c.Low), deref(c.High))
	}
	if c.Blocks < 2 || c.Family != 0 || c.AdjustedPValue != nil {
		t.Errorf("blocks %d family %d adjusted %v; want paired blocks and no correction for a single comparison", c.Blocks, c.Family, deref(c.AdjustedPValue))
	}

	// The same tails are no different.
	res = runComparisons(t, "{comparisons: [{metric: m/latency-p90, candidate: v2}]}", func(r *experiment.Result) {
		r.SetHistogram("v1", "m/latency", lognormal(1, 3000, 10*time.Millisecond))
		r.SetHistogram("v2", "m/latency", lognormal(2, 3000, 10*time.Millisecond))
	})
	if c := comparisonOf(t, res, "m/latency-p90", "v2"); c.Test != stats.TailShare || c.Verdict != experiment.VerdictInconclusive || !strings.Contains(c.Reason, "a change of 0.05") {
		t.Errorf("A/A: test %q verdict %s reason %q; want tail-share, inconclusive, with the default minimum effect 0.05", c.Test, c.Verdict, c.Reason)
	}
}

// A load's error rate and mean latency are compared through the time blocks
// of its latency histogram when both versions have them, and through their
// plain samples otherwise. The samples here say the versions are the same;
// the series say they differ.
func TestLoadMetricsUseSeries(t *testing.T) {
	const with = "{comparisons: [{metric: m/error-rate, candidate: v2}, {metric: m/latency-mean, candidate: v2}]}"
	fill := func(series bool) func(r *experiment.Result) {
		return func(r *experiment.Result) {
			hb := closedLoop(1, 3000, 10*time.Millisecond, 0.05, fakeStart)
			hc := closedLoop(2, 3000, 13*time.Millisecond, 0.01, fakeStart) // 30% slower, 1% errors against 5%
			if !series {
				hc.Series = nil // as in a result recorded before series
			}
			r.SetHistogram("v1", "m/latency", hb)
			r.SetHistogram("v2", "m/latency", hc)
			for _, v := range []string{"v1", "v2"} {
				r.SetSample(v, "m/error-rate", stats.RateSample(90, 3000))
				r.SetSample(v, "m/latency-mean", stats.MeanSample(3000, 11, 6))
			}
		}
	}
	res := runComparisons(t, with, fill(true))
	rate := comparisonOf(t, res, "m/error-rate", "v2")
	if rate.Test != stats.TwoProportion || rate.Verdict != experiment.VerdictBetter || rate.Blocks < 2 {
		t.Errorf("m/error-rate: test %q verdict %s blocks %d (reason %q); want two-proportion on the series' errors: better, paired blocks", rate.Test, rate.Verdict, rate.Blocks, rate.Reason)
	}
	if rate.Effect == nil || math.Abs(*rate.Effect-(-0.04)) > 0.015 {
		t.Errorf("m/error-rate: effect %v; want about -0.04 (1%% against 5%%), not the samples' 0", deref(rate.Effect))
	}
	mean := comparisonOf(t, res, "m/latency-mean", "v2")
	if mean.Test != stats.MeanDifference || mean.Verdict != experiment.VerdictWorse || mean.Blocks < 2 {
		t.Errorf("m/latency-mean: test %q verdict %s blocks %d (reason %q); want mean-difference on the series: worse, paired blocks", mean.Test, mean.Verdict, mean.Blocks, mean.Reason)
	}
	// The mean of a log-normal of median m and σ 0.5 is m·e^(0.125): 11.3ms
	// and 14.7ms.
	if mean.Effect == nil || math.Abs(*mean.Effect-3.4) > 0.8 || mean.Relative {
		t.Errorf("m/latency-mean: effect %v relative %v; want about +3.4 ms, a difference", deref(mean.Effect), mean.Relative)
	}

	// Without the candidate's series, the samples decide.
	res = runComparisons(t, with, fill(false))
	for metric, test := range map[string]stats.Test{"m/error-rate": stats.TwoProportion, "m/latency-mean": stats.Welch} {
		c := comparisonOf(t, res, metric, "v2")
		if c.Test != test || c.Verdict != experiment.VerdictInconclusive || c.Blocks != 0 || c.Effect == nil || *c.Effect != 0 {
			t.Errorf("%s without series: test %q verdict %s blocks %d effect %v; want %s on the equal samples: inconclusive, effect 0", metric, c.Test, c.Verdict, c.Blocks, deref(c.Effect), test)
		}
	}
}

// Comparisons made together are corrected with Holm's method: a p-value
// below 0.05 on its own is not enough among three.
func TestHolm(t *testing.T) {
	fill := func(r *experiment.Result) {
		// Welch with 1000 requests each and a standard deviation of 1: a
		// difference of 0.0984 is t = 2.2, p ≈ 0.028.
		r.SetSample("v1", "m/mean", stats.MeanSample(1000, 10, 1))
		r.SetSample("v2", "m/mean", stats.MeanSample(1000, 10.0984, 1))
		r.SetSample("v3", "m/mean", stats.MeanSample(1000, 10.02, 1))
		r.SetSample("v1", "m/errors", stats.RateSample(50, 1000))
		r.SetSample("v2", "m/errors", stats.RateSample(52, 1000))
	}
	// Alone, v2's higher mean is worse.
	res := runComparisons(t, "{comparisons: [{metric: m/mean, candidate: v2}]}", fill)
	alone := comparisonOf(t, res, "m/mean", "v2")
	if alone.Verdict != experiment.VerdictWorse || alone.PValue == nil || math.Abs(*alone.PValue-0.028) > 0.003 || alone.Family != 0 || alone.AdjustedPValue != nil {
		t.Fatalf("alone: verdict %s p %v family %d adjusted %v; want worse at p ≈ 0.028, uncorrected", alone.Verdict, deref(alone.PValue), alone.Family, deref(alone.AdjustedPValue))
	}

	res = runComparisons(t, "{comparisons: [{metric: m/mean}, {metric: m/errors, candidate: v2}]}", fill)
	if len(res.Comparisons) != 3 {
		t.Fatalf("comparisons %+v; want three", res.Comparisons)
	}
	var ps []float64
	for _, c := range res.Comparisons {
		if c.PValue == nil || c.AdjustedPValue == nil || c.Family != 3 || *c.AdjustedPValue < *c.PValue || *c.AdjustedPValue > 1 {
			t.Errorf("%s %s: p %v adjusted %v family %d; want both, adjusted in [p, 1], family 3", c.Candidate, c.Metric, deref(c.PValue), deref(c.AdjustedPValue), c.Family)
			continue
		}
		ps = append(ps, *c.PValue)
	}
	c := comparisonOf(t, res, "m/mean", "v2")
	// The smallest of three p-values is multiplied by 3.
	if c.PValue == nil || c.AdjustedPValue == nil || *c.PValue >= 0.05 || math.Abs(*c.AdjustedPValue-3**c.PValue) > 1e-12 {
		t.Errorf("v2 m/mean: p %v adjusted %v; want p < 0.05 adjusted to 3p", deref(c.PValue), deref(c.AdjustedPValue))
	}
	if c.Verdict != experiment.VerdictInconclusive || c.Reason == "" {
		t.Errorf("v2 m/mean: verdict %s reason %q; want inconclusive after the correction, with a reason", c.Verdict, c.Reason)
	}
	if got, want := len(ps), 3; got == want {
		adjusted := stats.Holm(ps)
		for i, cmp := range res.Comparisons {
			if math.Abs(*cmp.AdjustedPValue-adjusted[i]) > 1e-12 {
				t.Errorf("%s %s: adjusted %v, want Holm's %v", cmp.Candidate, cmp.Metric, *cmp.AdjustedPValue, adjusted[i])
			}
		}
	}
}
