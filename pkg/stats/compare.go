package stats

import (
	"errors"
	"fmt"
	"math"

	"gonum.org/v1/gonum/stat/distuv"
)

// power is the probability of detecting an effect of minEffect that every
// Needed sample size is planned for.
const power = 0.8

// Test names a two-sample test, as a result records it.
type Test string

// The tests: CompareLatencies runs MannWhitney, CompareRates TwoProportion
// and CompareMeans Welch.
const (
	MannWhitney   Test = "mann-whitney"
	TwoProportion Test = "two-proportion"
	Welch         Test = "welch"
)

// ShiftResult compares candidate latencies against baseline latencies.
type ShiftResult struct {
	BaselineCount, CandidateCount int64
	// Ratio is the Hodges–Lehmann estimate of the candidate/baseline
	// latency ratio, with its confidence interval [Low, High]: the ratios
	// by which dividing the candidate latencies leaves the test
	// insignificant. It is clamped to the range of observed ratios when the
	// samples are too small to bound it.
	Ratio, Low, High float64
	// PValue is the two-sided Mann–Whitney p-value (normal approximation,
	// tie-corrected, variance multiplied by Inflation).
	PValue float64
	// Significant is PValue < 1-confidence. The interval then excludes 1,
	// except that with tied values it may end exactly at 1: W jumps there,
	// and the bound is the jump's position.
	Significant bool
	// Inflation is the variance inflation applied for correlated
	// latencies (1 = none): the larger of the two histograms' Inflation.
	Inflation float64
	// Needed is the per-version number of requests that detects a relative
	// change of minEffect with 80% power, from the observed variance of log
	// latency and Inflation.
	Needed int64
}

// DifferenceResult compares the rates or the means of two versions.
type DifferenceResult struct {
	// Baseline and Candidate are the two rates or means.
	Baseline, Candidate float64
	// Difference is Candidate − Baseline, with its confidence interval.
	Difference, Low, High float64
	PValue                float64
	// Significant is PValue < 1-confidence.
	Significant bool
	// Needed is the per-version sample size that detects minEffect with
	// 80% power; 0 when it cannot be planned (a mean comparison with a
	// baseline mean of 0, against which a relative effect is undefined).
	Needed int64
}

// checkLevels validates the arguments every comparison shares.
func checkLevels(confidence, minEffect float64) error {
	if !(confidence > 0 && confidence < 1) {
		return fmt.Errorf("confidence %v: want a level between 0 and 1", confidence)
	}
	if !(minEffect > 0) || math.IsInf(minEffect, 1) {
		return fmt.Errorf("minimum effect %v: want a positive number", minEffect)
	}
	return nil
}

// quantiles returns the two-sided normal quantile at the confidence and the
// one for 80% power.
func quantiles(confidence float64) (zAlpha, zBeta float64) {
	return distuv.UnitNormal.Quantile(1 - (1-confidence)/2), distuv.UnitNormal.Quantile(power)
}

// twoSided is the two-sided normal p-value of z.
func twoSided(z float64) float64 {
	return min(1, 2*distuv.UnitNormal.Survival(math.Abs(z)))
}

// ceilCount rounds a planned sample size up to a count of at least lo,
// saturating instead of overflowing.
func ceilCount(n float64, lo int64) int64 {
	switch {
	case math.IsNaN(n):
		return lo
	case n >= math.MaxInt64:
		return math.MaxInt64
	}
	return max(int64(math.Ceil(n)), lo)
}

// bucket is one non-empty HDR bucket: its representative value, the log of
// it and its count.
type bucket struct {
	v    int64
	logv float64
	n    float64
}

// buckets lists h's non-empty buckets in increasing order, each at the
// middle of its range, and their total count. It checks what Load checks but
// works on the sparse pairs, without building the dense HDR counts: a
// comparison then costs in the number of non-empty buckets only.
func buckets(h *Histogram) ([]bucket, int64, error) {
	pairs, total, err := h.sparse()
	if err != nil {
		return nil, 0, err
	}
	if total == 0 {
		return nil, 0, errors.New("no latencies recorded")
	}
	g := newGeometry(h.Highest, h.SigFigs)
	out := make([]bucket, 0, len(pairs))
	for _, p := range pairs {
		v := g.middle(p.index)
		out = append(out, bucket{v: v, logv: math.Log(float64(v)), n: float64(p.count)})
	}
	return out, total, nil
}

// exceeding returns W(shift): the weight of pairs (b, c) with
// log c − log b > shift plus half that of pairs with equality, the
// weight of a pair being the product of the counts. W is non-increasing in
// shift and W(0) is the Mann–Whitney U of the candidate. One sweep over the
// sorted buckets, without listing the pairs.
func exceeding(base, cand []bucket, shift float64) float64 {
	var w, below, upTo float64 // weight of base values < and <= c − shift
	i, j := 0, 0
	for _, c := range cand {
		t := c.logv - shift
		for i < len(base) && base[i].logv < t {
			below += base[i].n
			i++
		}
		for j < len(base) && base[j].logv <= t {
			upTo += base[j].n
			j++
		}
		w += c.n * (below + (upTo-below)/2)
	}
	return w
}

// The differences of log latency searched by bisection lie between lo and hi
// (the extreme observed differences); bisection stops within bisectTolerance
// of the bound, far below the histograms' 0.1% resolution.
const bisectTolerance = 1e-7

// lowestAtMost is inf{δ : W(δ) ≤ target}, clamped to [lo, hi]. W changes
// only at pairwise differences, so the bound is one of them: bisection
// brackets it and nextDifference picks it exactly.
func lowestAtMost(base, cand []bucket, target, lo, hi float64) float64 {
	if exceeding(base, cand, lo) <= target {
		return lo
	}
	// Pairs at the largest difference hi count half in W(hi), which can
	// still exceed a small target.
	if exceeding(base, cand, hi) > target {
		return hi
	}
	lo, hi = bisect(lo, hi, func(mid float64) bool { return exceeding(base, cand, mid) <= target })
	return min(nextDifference(base, cand, lo), hi)
}

// highestAtLeast is sup{δ : W(δ) ≥ target}, clamped to [lo, hi].
func highestAtLeast(base, cand []bucket, target, lo, hi float64) float64 {
	if exceeding(base, cand, hi) >= target {
		return hi
	}
	if exceeding(base, cand, lo) < target {
		return lo
	}
	lo, hi = bisect(lo, hi, func(mid float64) bool { return exceeding(base, cand, mid) < target })
	return max(prevDifference(base, cand, hi), lo)
}

// bisect narrows [lo, hi] to within bisectTolerance (or to adjacent
// floats) around where above, false at lo and true at hi, turns true.
func bisect(lo, hi float64, above func(float64) bool) (float64, float64) {
	for hi-lo > bisectTolerance {
		mid := lo + (hi-lo)/2
		if mid <= lo || mid >= hi {
			break
		}
		if above(mid) {
			hi = mid
		} else {
			lo = mid
		}
	}
	return lo, hi
}

// nextDifference is the smallest pairwise difference log c − log b above x
// (+Inf if none): for each candidate bucket, the closest baseline bucket below
// c − x, found by a pointer that only moves forward.
func nextDifference(base, cand []bucket, x float64) float64 {
	best := math.Inf(1)
	i := 0
	for _, c := range cand {
		for i < len(base) && c.logv-base[i].logv > x {
			i++
		}
		// base[i-1] is the largest baseline value with a difference above x.
		if i > 0 {
			best = min(best, c.logv-base[i-1].logv)
		}
	}
	return best
}

// prevDifference is the largest pairwise difference below x (−Inf if none).
func prevDifference(base, cand []bucket, x float64) float64 {
	best := math.Inf(-1)
	i := 0
	for _, c := range cand {
		// The first baseline value whose difference is below x.
		for i < len(base) && c.logv-base[i].logv >= x {
			i++
		}
		if i < len(base) {
			best = max(best, c.logv-base[i].logv)
		}
	}
	return best
}

// CompareLatencies tests whether candidate latencies are shifted against
// baseline latencies, with a Mann–Whitney test and the Hodges–Lehmann
// estimate of the shift. Both work on log latency: the test does not depend on
// the transform, and a shift of logs is a ratio, which is how a latency change
// is felt. Every value of an HDR bucket counts at the bucket's middle, so
// values in one bucket tie. The variance of the statistic is multiplied by
// the larger Inflation of the two histograms, since latencies close in time
// are correlated. confidence is the level of the interval (say 0.95) and
// minEffect the relative change Needed is planned for (say 0.1 for 10%).
func CompareLatencies(baseline, candidate *Histogram, confidence, minEffect float64) (ShiftResult, error) {
	if err := checkLevels(confidence, minEffect); err != nil {
		return ShiftResult{}, fmt.Errorf("compare latencies: %w", err)
	}
	base, m, err := buckets(baseline)
	if err != nil {
		return ShiftResult{}, fmt.Errorf("compare latencies: baseline: %w", err)
	}
	cand, n, err := buckets(candidate)
	if err != nil {
		return ShiftResult{}, fmt.Errorf("compare latencies: candidate: %w", err)
	}
	res := ShiftResult{
		BaselineCount:  m,
		CandidateCount: n,
		Inflation:      max(Inflation(baseline), Inflation(candidate)),
	}
	mf, nf := float64(m), float64(n)
	total := mf + nf
	variance := mf * nf / 12 * ((total + 1) - tieCorrection(base, cand)/(total*(total-1))) * res.Inflation
	sd := math.Sqrt(max(variance, 0))

	pairs := mf * nf
	res.PValue = 1 // with every value tied, sd is 0: no evidence of a shift
	if sd > 0 {
		res.PValue = twoSided((exceeding(base, cand, 0) - pairs/2) / sd)
	}
	res.Significant = res.PValue < 1-confidence

	zAlpha, zBeta := quantiles(confidence)
	lo := cand[0].logv - base[len(base)-1].logv
	hi := cand[len(cand)-1].logv - base[0].logv
	half := zAlpha * sd
	res.Low = math.Exp(lowestAtMost(base, cand, pairs/2+half, lo, hi))
	res.High = math.Exp(highestAtLeast(base, cand, pairs/2-half, lo, hi))
	mid := (lowestAtMost(base, cand, pairs/2, lo, hi) + highestAtLeast(base, cand, pairs/2, lo, hi)) / 2
	res.Ratio = math.Exp(mid)

	// Needed: as for a t-test on log latency with the pooled variance (for
	// latencies, with their heavy tails, Mann–Whitney is at least about as
	// efficient), times the inflation.
	delta := math.Log1p(minEffect)
	res.Needed = ceilCount(2*(zAlpha+zBeta)*(zAlpha+zBeta)*pooledLogVariance(base, cand)/(delta*delta)*res.Inflation, 2)
	return res, nil
}

// tieCorrection is Σ(t³ − t) over the distinct values of both samples, t
// being how many values tie at each.
func tieCorrection(base, cand []bucket) float64 {
	var ties float64
	for i, j := 0, 0; i < len(base) || j < len(cand); {
		var t float64
		switch {
		case j == len(cand) || (i < len(base) && base[i].v < cand[j].v):
			t = base[i].n
			i++
		case i == len(base) || cand[j].v < base[i].v:
			t = cand[j].n
			j++
		default:
			t = base[i].n + cand[j].n
			i++
			j++
		}
		ties += t*t*t - t
	}
	return ties
}

// pooledLogVariance is the pooled variance of log latency of two samples;
// 0 when they hold two values or fewer.
func pooledLogVariance(base, cand []bucket) float64 {
	var ss, total float64
	for _, bs := range [][]bucket{base, cand} {
		var s, c float64
		for _, b := range bs {
			s += b.n * b.logv
			c += b.n
		}
		mean := s / c
		for _, b := range bs {
			ss += b.n * (b.logv - mean) * (b.logv - mean)
		}
		total += c
	}
	if total <= 2 {
		return 0
	}
	return ss / (total - 2)
}

// checkSamples validates the two samples of a comparison of a kind: a rate
// needs a trial, a mean what checkMoments checks.
func checkSamples(baseline, candidate Sample, kind SampleKind) error {
	for i, s := range []Sample{baseline, candidate} {
		err := s.Validate()
		switch {
		case err != nil: // reported as it is
		case s.Kind != kind:
			err = fmt.Errorf("sample kind %q, want %q", s.Kind, kind)
		case kind == KindRate && s.Trials == 0:
			err = errors.New("no trials")
		case kind == KindMean:
			err = s.checkMoments()
		}
		if err != nil {
			return fmt.Errorf("%s: %w", [...]string{"baseline", "candidate"}[i], err)
		}
	}
	return nil
}

// CompareRates compares the success rates of two versions with a
// two-proportion z-test (pooled standard error under the hypothesis of
// equal rates) and Newcombe's score interval for the difference. minEffect
// is an absolute difference of rates, below 1. When both rates are 0 (or
// both 1) there is no variation to test: the result is not significant, and
// the interval spans the differences that so few trials cannot rule out.
//
// Needed is planned around the baseline's observed rate p, for a change to
// p+minEffect (or p−minEffect when that would pass 1), so that a baseline
// without any success still gets a finite, sensible size.
func CompareRates(baseline, candidate Sample, confidence, minEffect float64) (DifferenceResult, error) {
	if err := checkLevels(confidence, minEffect); err != nil {
		return DifferenceResult{}, fmt.Errorf("compare rates: %w", err)
	}
	if minEffect >= 1 {
		return DifferenceResult{}, fmt.Errorf("compare rates: minimum effect %v: a difference of rates is below 1", minEffect)
	}
	if err := checkSamples(baseline, candidate, KindRate); err != nil {
		return DifferenceResult{}, fmt.Errorf("compare rates: %w", err)
	}
	n1, n2 := float64(baseline.Trials), float64(candidate.Trials)
	p1, p2 := float64(baseline.Successes)/n1, float64(candidate.Successes)/n2
	res := DifferenceResult{Baseline: p1, Candidate: p2, Difference: p2 - p1}

	pooled := float64(baseline.Successes+candidate.Successes) / (n1 + n2)
	res.PValue = 1
	if se0 := math.Sqrt(pooled * (1 - pooled) * (1/n1 + 1/n2)); se0 > 0 {
		res.PValue = twoSided(res.Difference / se0)
	}
	res.Significant = res.PValue < 1-confidence

	zAlpha, zBeta := quantiles(confidence)
	// Newcombe's hybrid score interval (his method 10) from the two Wilson
	// intervals: it keeps its coverage with few events and small samples,
	// where the Wald interval falls far short, and 0 of n against 0 of m
	// still spans what the samples cannot rule out, not [0, 0].
	l1, u1 := wilson(p1, n1, zAlpha)
	l2, u2 := wilson(p2, n2, zAlpha)
	res.Low = max(res.Difference-math.Hypot(p2-l2, u1-p1), -1)
	res.High = min(res.Difference+math.Hypot(u2-p2, p1-l1), 1)

	q1 := p1 + minEffect
	if q1 > 1 {
		q1 = p1 - minEffect
	}
	avg := (p1 + q1) / 2
	root := zAlpha*math.Sqrt(2*avg*(1-avg)) + zBeta*math.Sqrt(p1*(1-p1)+q1*(1-q1))
	res.Needed = ceilCount(root*root/(minEffect*minEffect), 1)
	return res, nil
}

// wilson is the Wilson score interval of a proportion p observed in n
// trials, at the normal quantile z.
func wilson(p, n, z float64) (lo, hi float64) {
	z2n := z * z / n
	centre := (p + z2n/2) / (1 + z2n)
	half := z / (1 + z2n) * math.Sqrt(p*(1-p)/n+z2n/(4*n))
	return max(centre-half, 0), min(centre+half, 1)
}

// CompareMeans compares the means of two versions with Welch's t-test, which
// does not assume equal variances. minEffect is relative to |baseline mean|.
// Each sample needs at least 2 values. With both standard deviations 0 the
// difference is exact: the p-value is 1 if the means are equal, else 0.
//
// Needed uses normal quantiles and the two observed variances.
func CompareMeans(baseline, candidate Sample, confidence, minEffect float64) (DifferenceResult, error) {
	if err := checkLevels(confidence, minEffect); err != nil {
		return DifferenceResult{}, fmt.Errorf("compare means: %w", err)
	}
	if err := checkSamples(baseline, candidate, KindMean); err != nil {
		return DifferenceResult{}, fmt.Errorf("compare means: %w", err)
	}
	n1, n2 := float64(baseline.Count), float64(candidate.Count)
	v1, v2 := baseline.Stdev*baseline.Stdev/n1, candidate.Stdev*candidate.Stdev/n2
	res := DifferenceResult{Baseline: baseline.Mean, Candidate: candidate.Mean, Difference: candidate.Mean - baseline.Mean}
	if se := math.Sqrt(v1 + v2); se > 0 {
		df := (v1 + v2) * (v1 + v2) / (v1*v1/(n1-1) + v2*v2/(n2-1))
		t := distuv.StudentsT{Mu: 0, Sigma: 1, Nu: df}
		res.PValue = min(1, 2*t.Survival(math.Abs(res.Difference)/se))
		half := t.Quantile(1-(1-confidence)/2) * se
		res.Low, res.High = res.Difference-half, res.Difference+half
	} else {
		res.PValue = 1
		if res.Difference != 0 {
			res.PValue = 0
		}
		res.Low, res.High = res.Difference, res.Difference
	}
	res.Significant = res.PValue < 1-confidence

	if delta := minEffect * math.Abs(baseline.Mean); delta > 0 {
		zAlpha, zBeta := quantiles(confidence)
		s2 := baseline.Stdev*baseline.Stdev + candidate.Stdev*candidate.Stdev
		res.Needed = ceilCount((zAlpha+zBeta)*(zAlpha+zBeta)*s2/(delta*delta), 2)
	}
	return res, nil
}
