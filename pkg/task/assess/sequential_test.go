package assess

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/iter8-tools/iter8/pkg/experiment"
	"github.com/iter8-tools/iter8/pkg/stats"
)

// runLoops runs an assess task comparing m/latency of v2 with v1 over loops
// of an experiment of 10 loops, each with fresh histograms of n requests
// per version from fill (baseline and candidate medians), leaving each
// loop's comparisons in the result for the next as the runner does. It
// returns the comparison after each loop.
func runLoops(t *testing.T, with string, loops, n int, seed uint64, base, cand time.Duration) []experiment.Comparison {
	t.Helper()
	p, err := evidencePlan(t, "[v1, v2]", with)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	res := experiment.NewResult(p, 1, time.Time{})
	res.Loops = 10
	env := &experiment.Env{Result: res, Versions: []string{"v1", "v2"}, Log: slog.New(slog.DiscardHandler)}
	var out []experiment.Comparison
	for loop := range loops {
		res.Loop = loop + 1
		start := fakeStart.Add(time.Duration(loop) * time.Hour)
		s := seed + uint64(10*loop)
		res.SetHistogram("v1", "m/latency", closedLoop(s, n, base, 0, start))
		res.SetHistogram("v2", "m/latency", closedLoop(s+1, n, cand, 0, start))
		if err := p.Tasks[1].Task.Run(context.Background(), env); err != nil {
			t.Fatalf("loop %d: Run: %v", loop+1, err)
		}
		if len(res.Comparisons) != 1 {
			t.Fatalf("loop %d: comparisons %+v; want one", loop+1, res.Comparisons)
		}
		out = append(out, res.Comparisons[0])
	}
	return out
}

// checkSequence checks what every sequential look must show: looks counted
// up, a p-value that never rises and is the result's, and the reason of a
// look without a verdict.
func checkSequence(t *testing.T, looks []experiment.Comparison, pooling stats.Pooling) {
	t.Helper()
	prev := 1.0
	for i, c := range looks {
		s := c.Sequential
		if s == nil {
			t.Fatalf("loop %d: no sequential evidence: %+v", i+1, c)
		}
		if s.Pooling != pooling || s.Looks != i+1 {
			t.Errorf("loop %d: pooling %q looks %d; want %q and %d", i+1, s.Pooling, s.Looks, pooling, i+1)
		}
		if s.PValue > prev || c.PValue == nil || *c.PValue != s.PValue {
			t.Errorf("loop %d: p-value %v (result %v) after %v; want it never to rise, and the result's to be it", i+1, s.PValue, deref(c.PValue), prev)
		}
		prev = s.PValue
		if c.Effect == nil || c.Low == nil || c.High == nil || *c.Low > *c.Effect || *c.High < *c.Effect {
			t.Errorf("loop %d: effect %v [%v, %v]; want an estimate within its interval", i+1, deref(c.Effect), deref(c.Low), deref(c.High))
		}
		if c.Verdict == experiment.VerdictInconclusive {
			want := "no verdict yet after " + itoa(i+1) + " loops (" + string(pooling) + " sequential test at 95% confidence)"
			if c.Reason != want {
				t.Errorf("loop %d: reason %q; want %q", i+1, c.Reason, want)
			}
		}
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestSequential(t *testing.T) {
	for _, tc := range []struct {
		name, with string
		pooling    stats.Pooling
	}{
		{"default with loops", "{comparisons: [{metric: m/latency}]}", stats.Pooled},
		{"pooled", "{sequential: pooled, comparisons: [{metric: m/latency}]}", stats.Pooled},
		{"per-loop", "{sequential: per-loop, comparisons: [{metric: m/latency}]}", stats.PerLoop},
	} {
		t.Run(tc.name, func(t *testing.T) {
			aa := runLoops(t, tc.with, 10, 300, 1, 10*time.Millisecond, 10*time.Millisecond)
			checkSequence(t, aa, tc.pooling)
			for i, c := range aa {
				if c.Verdict != experiment.VerdictInconclusive {
					t.Errorf("A/A loop %d: verdict %s (p %v, effect %v); want none in 10 loops", i+1, c.Verdict, deref(c.PValue), deref(c.Effect))
				}
			}
			ab := runLoops(t, tc.with, 5, 300, 1, 10*time.Millisecond, 13*time.Millisecond)
			checkSequence(t, ab, tc.pooling)
			first := 0
			for i, c := range ab {
				if c.Verdict == experiment.VerdictWorse && first == 0 {
					first = i + 1
				}
				if first > 0 && c.Verdict != experiment.VerdictWorse {
					t.Errorf("A/B loop %d: verdict %s after worse at loop %d; an always-valid p-value never rises back", i+1, c.Verdict, first)
				}
			}
			if first == 0 || first > 3 {
				t.Errorf("A/B: 30%% slower first found worse at loop %d; want within 3 loops (verdicts %v)", first, verdictsOf(ab))
			}
			if e := ab[len(ab)-1].Effect; e == nil || *e < 0.15 || *e > 0.45 {
				t.Errorf("A/B: pooled effect %v; want about +30%%", deref(e))
			}
		})
	}
}

func verdictsOf(cs []experiment.Comparison) []experiment.Verdict {
	var out []experiment.Verdict
	for _, c := range cs {
		out = append(out, c.Verdict)
	}
	return out
}

func TestSequentialOff(t *testing.T) {
	looks := runLoops(t, "{sequential: fixed, comparisons: [{metric: m/latency}]}", 3, 300, 1, 10*time.Millisecond, 13*time.Millisecond)
	for i, c := range looks {
		if c.Sequential != nil || c.Verdict != experiment.VerdictWorse {
			t.Errorf("loop %d: sequential %+v verdict %s; want no sequential evidence and a fixed-sample verdict (worse)", i+1, c.Sequential, c.Verdict)
		}
	}
}

// A single run (Loops 1) without a sequential setting is judged on its own.
func TestSequentialDefaultSingleRun(t *testing.T) {
	res := runComparisons(t, "{comparisons: [{metric: m/latency, candidate: v2}]}", func(r *experiment.Result) {
		r.SetHistogram("v1", "m/latency", lognormal(1, 300, 10*time.Millisecond))
		r.SetHistogram("v2", "m/latency", lognormal(2, 300, 10*time.Millisecond))
	})
	if c := comparisonOf(t, res, "m/latency", "v2"); c.Sequential != nil {
		t.Errorf("sequential %+v; want none for a single run", c.Sequential)
	}
}

func TestDecodeSequential(t *testing.T) {
	_, err := evidencePlan(t, "[v1, v2]", "{sequential: bogus, comparisons: [{metric: m/latency}]}")
	want := `spec.tasks[1].with.sequential: Unsupported value: "bogus": supported values: "pooled", "per-loop", "fixed"`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error = %v\nwant it to contain %q", err, want)
	}
	for _, mode := range []string{"pooled", "per-loop", "fixed"} {
		if _, err := evidencePlan(t, "[v1, v2]", "{sequential: "+mode+", comparisons: [{metric: m/latency}]}"); err != nil {
			t.Errorf("sequential %s: %v", mode, err)
		}
	}
}

// TestCumulativeSamplesReplaceTheEvidence: samples that hold every earlier
// loop's data (A/B/n summaries) are compared by the ratio of means, and
// each loop's look replaces the sequential evidence: after two loops the
// information is the second look's alone, where fresh samples would add up.
func TestCumulativeSamplesReplaceTheEvidence(t *testing.T) {
	p, err := evidencePlan(t, "[v1, v2]", "{sequential: pooled, comparisons: [{metric: m/mean, better: higher}, {metric: m/errors, better: higher}]}")
	if err != nil {
		t.Fatal(err)
	}
	res := experiment.NewResult(p, 1, time.Time{})
	res.Loops = 10
	env := &experiment.Env{Result: res, Versions: []string{"v1", "v2"}, Log: slog.New(slog.DiscardHandler)}
	cumulative := func(s stats.Sample) stats.Sample { s.Cumulative = true; return s }
	var info [2]float64
	var firstP [2]float64
	for loop, users := range []int64{200, 400} {
		res.Loop = loop + 1
		res.SetSample("v1", "m/mean", cumulative(stats.MeanSample(users, 10, 20)))
		res.SetSample("v2", "m/mean", cumulative(stats.MeanSample(users, 11, 20)))
		res.SetSample("v1", "m/errors", cumulative(stats.RateSample(users/10, users)))
		res.SetSample("v2", "m/errors", cumulative(stats.RateSample(users/8, users)))
		if err := p.Tasks[1].Task.Run(context.Background(), env); err != nil {
			t.Fatal(err)
		}
		for i, c := range res.Comparisons {
			if c.Sequential == nil || c.Sequential.Looks != loop+1 {
				t.Fatalf("loop %d: %s has no sequential evidence of %d looks: %+v", loop+1, c.Metric, loop+1, c)
			}
			info[i] = c.Sequential.Information
			if loop == 0 {
				firstP[i] = c.Sequential.PValue
			} else if c.Sequential.PValue > firstP[i] {
				t.Errorf("%s: p-value rose from %v to %v: the earlier look's evidence was lost", c.Metric, firstP[i], c.Sequential.PValue)
			}
		}
		if c := res.Comparisons[0]; c.Test != stats.MeanRatio || !c.Relative {
			t.Errorf("loop %d: m/mean compared by %s (relative %v), want %s", loop+1, c.Test, c.Relative, stats.MeanRatio)
		}
	}
	// Each look's information is about 1/variance of that look alone: the
	// second look (twice the users) about twice the first's, never their
	// sum (three times).
	c, err := stats.CompareMeanRatio(stats.MeanSample(400, 10, 20), stats.MeanSample(400, 11, 20), 0.95, 0.1)
	if err != nil {
		t.Fatal(err)
	}
	if got := info[0] * c.Variance; got < 0.9 || got > 1 {
		t.Errorf("m/mean information after two looks × the second look's variance = %v, want about 1 (the t widening aside)", got)
	}
	r, err := stats.CompareRates(stats.RateSample(40, 400), stats.RateSample(50, 400), 0.95, 0.01)
	if err != nil {
		t.Fatal(err)
	}
	if got := info[1] * r.Variance; got < 0.99 || got > 1.01 {
		t.Errorf("m/errors information × the second look's variance = %v, want 1", got)
	}
}
