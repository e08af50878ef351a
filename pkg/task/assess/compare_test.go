package assess

import (
	"context"
	"log/slog"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/iter8-tools/iter8/pkg/experiment"
	"github.com/iter8-tools/iter8/pkg/stats"
)

// evidencePlan decodes a spec whose first task produces, for every version,
// a single value m/a, a histogram m/latency, a rate m/errors and a mean
// m/mean (plain samples), and what a load declares besides its latency
// histogram: m/error-rate, m/latency-mean and the percentile m/latency-p90;
// followed by an assess task with the given `with` block.
func evidencePlan(t *testing.T, versions, with string) (*experiment.Plan, error) {
	t.Helper()
	return planAfter(t, versions, with, func(c *experiment.Catalog, v string) {
		for _, m := range []string{"m/a", "m/errors", "m/mean", "m/error-rate", "m/latency-mean", "m/latency-p90"} {
			c.Add(v, m)
		}
		c.AddEvidence(v, "m/latency", experiment.EvidenceHistogram)
		c.AddEvidence(v, "m/errors", experiment.EvidenceRate)
		c.AddEvidence(v, "m/mean", experiment.EvidenceMean)
		c.AddEvidence(v, "m/error-rate", experiment.EvidenceRate)
		c.AddEvidence(v, "m/latency-mean", experiment.EvidenceMean)
		c.AddEvidence(v, "m/latency-p90", experiment.EvidencePercentile)
	})
}

func TestDecodeComparisonErrors(t *testing.T) {
	const p = "spec.tasks[1].with."
	tests := []struct{ versions, with, want string }{
		{"[v1, v2]", "{comparisons: [{metric: m/latency}], baseline: v9}", p + `baseline: Unsupported value: "v9": supported values: "v1", "v2"`},
		{"[v1, v2]", "{comparisons: [{metric: m/latency, candidate: v7}]}", p + `comparisons[0].candidate: Unsupported value: "v7": supported values: "v2"`},
		{"[v1, v2]", "{comparisons: [{metric: m/latency, candidate: v1}]}", p + `comparisons[0].candidate: Invalid value: "v1": is the baseline`},
		{"[v1, v2]", "{comparisons: [{metric: m/latency}], confidence: 1.5}", p + "confidence: Invalid value: 1.5: must be between 0 and 1"},
		{"[v1, v2]", "{comparisons: [{metric: m/latency}], confidence: 0}", p + "confidence: Invalid value: 0: must be between 0 and 1"},
		{"[v1, v2]", "{comparisons: [{metric: m/latency}], confidence: 1}", p + "confidence: Invalid value: 1: must be between 0 and 1"},
		{"[v1, v2]", "{comparisons: [{metric: m/a}]}", p + `comparisons[0].metric: Invalid value: "m/a": is a single value for version "v1"; a comparison needs per-request evidence`},
		{"[v1, v2]", "{comparisons: [{metric: m/nope}]}", p + `comparisons[0].metric: Invalid value: "m/nope": no earlier task produces it with per-request evidence; these do: m/error-rate, m/errors, m/latency, m/latency-mean, m/latency-p90, m/mean`},
		{"[v1, v2]", "{comparisons: [{metric: ''}]}", p + "comparisons[0].metric: Required value"},
		{"[v1, v2]", "{comparisons: [{metric: m/latency, better: sideways}]}", p + `comparisons[0].better: Unsupported value: "sideways"`},
		{"[v1, v2]", "{comparisons: [{metric: m/latency, minEffect: 0}]}", p + "comparisons[0].minEffect: Invalid value: 0"},
		{"[v1, v2]", "{comparisons: [{metric: m/errors, minEffect: 1}]}", p + "comparisons[0].minEffect: Invalid value: 1"},
		{"[v1]", "{comparisons: [{metric: m/latency}]}", p + "comparisons: comparisons need at least two versions"},
		{"[v1, v2]", "{comparisons: [{metric: m/latency, bogus: 1}]}", p + "comparisons[0].bogus: unknown field"},
	}
	for _, tc := range tests {
		_, err := evidencePlan(t, tc.versions, tc.with)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("with %s: error = %v\nwant it to contain %q", tc.with, err, tc.want)
		}
	}
	if _, err := evidencePlan(t, "[v1, v2, v3]", "{baseline: v2, confidence: 0.9, comparisons: [{metric: m/latency}, {metric: m/errors, candidate: v3, minEffect: 0.02}, {metric: m/mean, better: higher}]}"); err != nil {
		t.Errorf("a valid comparison: %v", err)
	}
}

// fakeStart is when every simulated load starts, so that the time blocks of
// versions line up.
var fakeStart = time.Unix(1_700_000_000, 0)

// lognormal returns a histogram of n latencies around median, recorded as
// the load tasks do, from fakeStart.
func lognormal(seed uint64, n int, median time.Duration) *stats.Histogram {
	return closedLoop(seed, n, median, 0, fakeStart)
}

// closedLoop returns a histogram of n log-normal latencies (σ 0.5) around
// median, sent by one connection from start, each request as soon as the
// previous one returned; a share errRate of them (at random) failed.
func closedLoop(seed uint64, n int, median time.Duration, errRate float64, start time.Time) *stats.Histogram {
	rng := rand.New(rand.NewPCG(seed, 1))
	rec, at := stats.NewRecorder(10*time.Second, start), start
	for range n {
		d := time.Duration(float64(median) * math.Exp(0.5*rng.NormFloat64()))
		rec.Record(at, d, rng.Float64() < errRate)
		at = at.Add(d)
	}
	return rec.Histogram()
}

func runComparisons(t *testing.T, with string, fill func(r *experiment.Result)) *experiment.Result {
	t.Helper()
	p, err := evidencePlan(t, "[v1, v2, v3]", with)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	res := experiment.NewResult(p, 1, time.Time{})
	fill(res)
	env := &experiment.Env{Result: res, Versions: []string{"v1", "v2", "v3"}, Log: slog.New(slog.DiscardHandler)}
	if err := p.Tasks[1].Task.Run(context.Background(), env); err != nil {
		t.Fatalf("Run: %v", err)
	}
	return res
}

func TestComparisons(t *testing.T) {
	res := runComparisons(t, "{comparisons: [{metric: m/latency}, {metric: m/errors}, {metric: m/mean, better: higher}]}", func(r *experiment.Result) {
		r.SetHistogram("v1", "m/latency", lognormal(1, 2000, 10*time.Millisecond))
		r.SetHistogram("v2", "m/latency", lognormal(2, 2000, 13*time.Millisecond)) // 30% slower
		r.SetHistogram("v3", "m/latency", lognormal(3, 50, 10*time.Millisecond))   // too few to tell
		r.SetSample("v1", "m/errors", stats.RateSample(100, 2000))
		r.SetSample("v2", "m/errors", stats.RateSample(20, 2000)) // 1% against 5%: better
		r.SetSample("v3", "m/errors", stats.RateSample(101, 2000))
		r.SetSample("v1", "m/mean", stats.MeanSample(1000, 10, 2))
		r.SetSample("v2", "m/mean", stats.MeanSample(1000, 9, 2)) // lower, and higher is better: worse
		// v3 has no m/mean.
	})
	got := map[string]experiment.Comparison{}
	for _, c := range res.Comparisons {
		if c.Baseline != "v1" || c.Confidence != DefaultConfidence {
			t.Errorf("%s %s: baseline %s confidence %v, want v1 and %v", c.Candidate, c.Metric, c.Baseline, c.Confidence, DefaultConfidence)
		}
		got[c.Candidate+" "+c.Metric] = c
	}
	if len(got) != 6 {
		t.Fatalf("got %d comparisons, want 6 (3 metrics × 2 candidates): %+v", len(got), res.Comparisons)
	}
	for key, want := range map[string]struct {
		verdict experiment.Verdict
		test    stats.Test
		reason  string
	}{
		"v2 m/latency": {experiment.VerdictWorse, "log-ratio", ""},
		"v3 m/latency": {experiment.VerdictInconclusive, "log-ratio", "more requests per version to detect a change of 10%"},
		"v2 m/errors":  {experiment.VerdictBetter, "two-proportion", ""},
		"v3 m/errors":  {experiment.VerdictInconclusive, "two-proportion", ""},
		"v2 m/mean":    {experiment.VerdictWorse, "welch", ""},
		"v3 m/mean":    {experiment.VerdictInconclusive, "", "no evidence of m/mean for version v3"},
	} {
		c := got[key]
		if c.Verdict != want.verdict || c.Test != want.test || !strings.Contains(c.Reason, want.reason) {
			t.Errorf("%s: verdict %s test %q reason %q; want %s, %q, reason with %q", key, c.Verdict, c.Test, c.Reason, want.verdict, want.test, want.reason)
		}
	}
	lat := got["v2 m/latency"]
	if !lat.Relative || lat.Effect == nil || math.Abs(*lat.Effect-0.3) > 0.05 || *lat.Low > *lat.Effect || *lat.High < *lat.Effect || *lat.Low <= 0 {
		t.Errorf("v2 m/latency: relative %v effect %v [%v, %v]; want about +30%% with an interval above 0", lat.Relative, deref(lat.Effect), deref(lat.Low), deref(lat.High))
	}
	// Closed loops: v2, 30% slower, sends fewer requests while v1 runs, and
	// only blocks where both ran are paired.
	if lat.BaselineCount != 2000 || lat.CandidateCount < 1400 || lat.CandidateCount > 1700 || lat.Blocks < 2 || lat.PValue == nil || *lat.PValue >= 0.05 {
		t.Errorf("v2 m/latency: n %d/%d in %d blocks, p %v; want 2000 and about 1540 (20s of 13ms requests), paired blocks, and p < 0.05", lat.BaselineCount, lat.CandidateCount, lat.Blocks, deref(lat.PValue))
	}
	// Six comparisons were planned and are corrected together; the one
	// not made (v3 has no m/mean) counts with a p-value of 1, so that a
	// failure does not weaken the others' correction, and has no p-value
	// of its own.
	for key, c := range got {
		if key == "v3 m/mean" {
			if c.Family != 0 || c.AdjustedPValue != nil {
				t.Errorf("%s: family %d adjusted p %v; a comparison not made has no adjusted p-value", key, c.Family, deref(c.AdjustedPValue))
			}
			continue
		}
		if c.Family != 6 || c.AdjustedPValue == nil || c.PValue == nil || *c.AdjustedPValue < *c.PValue {
			t.Errorf("%s: family %d p %v adjusted %v; want 6 and an adjusted p-value at least p", key, c.Family, deref(c.PValue), deref(c.AdjustedPValue))
		}
	}
	if e := got["v2 m/errors"]; e.Relative || e.Effect == nil || math.Abs(*e.Effect-(-0.04)) > 1e-9 {
		t.Errorf("v2 m/errors: effect %v relative %v; want the difference -0.04", deref(e.Effect), e.Relative)
	}
	if n := got["v3 m/latency"].Needed; n <= 50 {
		t.Errorf("v3 m/latency: needs %d per version; want more than the 50 it has", n)
	}
}

func deref(f *float64) any {
	if f == nil {
		return nil
	}
	return *f
}

func TestComparisonsAgainstChosenBaseline(t *testing.T) {
	res := runComparisons(t, "{baseline: v2, confidence: 0.99, comparisons: [{metric: m/errors, candidate: v3}]}", func(r *experiment.Result) {
		for _, v := range []string{"v1", "v2", "v3"} {
			r.SetSample(v, "m/errors", stats.RateSample(10, 1000))
		}
	})
	if len(res.Comparisons) != 1 {
		t.Fatalf("got %+v, want one comparison", res.Comparisons)
	}
	c := res.Comparisons[0]
	if c.Baseline != "v2" || c.Candidate != "v3" || c.Confidence != 0.99 || c.Verdict != experiment.VerdictInconclusive || c.Reason == "" {
		t.Errorf("got %+v; want v3 against v2 at 0.99, inconclusive with a reason", c)
	}
}

func TestRewardProbabilities(t *testing.T) {
	res := runComparisons(t, "{rewards: {min: [m/errors], max: [m/a]}}", func(r *experiment.Result) {
		r.SetSample("v1", "m/errors", stats.RateSample(50, 1000))
		r.SetSample("v2", "m/errors", stats.RateSample(10, 1000))
		r.SetSample("v3", "m/errors", stats.RateSample(52, 1000))
		for i, v := range []string{"v1", "v2", "v3"} {
			r.SetMetric(v, "m/a", float64(i), "")
			r.SetMetric(v, "m/errors", 0, "")
		}
	})
	var errs, a *experiment.RewardResult
	for i := range res.Rewards {
		switch res.Rewards[i].Metric {
		case "m/errors":
			errs = &res.Rewards[i]
		case "m/a":
			a = &res.Rewards[i]
		}
	}
	if errs == nil || a == nil {
		t.Fatalf("rewards %+v; want m/errors and m/a", res.Rewards)
	}
	if p := errs.ProbabilityBest["v2"]; p < 0.99 {
		t.Errorf("P(v2 best by fewest errors) = %v, want above 0.99 (1%% against 5%%)", p)
	}
	var sum float64
	for _, p := range errs.ProbabilityBest {
		sum += p
	}
	if math.Abs(sum-1) > 1e-9 || errs.ExpectedLoss["v2"] > errs.ExpectedLoss["v1"] {
		t.Errorf("probabilities %v (sum %v), losses %v; want a sum of 1 and the least loss for v2", errs.ProbabilityBest, sum, errs.ExpectedLoss)
	}
	if a.ProbabilityBest != nil || !strings.Contains(a.Reason, "no sample of m/a for version v1") {
		t.Errorf("m/a: probabilities %v reason %q; want none, and why", a.ProbabilityBest, a.Reason)
	}
}
