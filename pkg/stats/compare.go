package stats

import (
	"errors"
	"fmt"
	"math"
)

// power is the probability of detecting an effect of minEffect that every
// Needed sample size is planned for.
const power = 0.8

// Test names a comparison's statistic, as a result records it.
type Test string

// The tests.
const (
	// LogRatio compares latencies by the ratio of their geometric means:
	// the mean difference of log latency, paired by time block.
	LogRatio Test = "log-ratio"
	// MeanDifference compares mean latencies, paired by time block.
	MeanDifference Test = "mean-difference"
	// TwoProportion compares rates: error rates paired by time block, or
	// plain samples of successes.
	TwoProportion Test = "two-proportion"
	// TailShare compares the shares of requests at or above the baseline's
	// percentile, paired by time block.
	TailShare Test = "tail-share"
	// Welch compares the means of plain samples (no time blocks).
	Welch Test = "welch"
	// MeanRatio compares the means of plain samples by their ratio (the
	// difference of log means, delta-method variance): what stays the
	// same across the looks of a growing sample whose values grow too.
	MeanRatio Test = "mean-ratio"
)

// Comparison is a candidate compared with a baseline on one measure.
type Comparison struct {
	Test Test
	// Baseline and Candidate are the two versions' values: geometric mean
	// latency in ms (LogRatio), mean latency in ms, a rate, or the share of
	// requests above Threshold.
	Baseline, Candidate           float64
	BaselineCount, CandidateCount int64
	// Effect is the candidate's change, with its confidence interval [Low,
	// High]: relative (0.2 is 20% slower) when Relative, else a difference.
	Effect, Low, High float64
	Relative          bool
	PValue            float64
	// Significant is PValue < 1-confidence.
	Significant bool
	// Needed is the per-version sample size that detects minEffect with
	// 80% power under the same variance model; 0 when it cannot be
	// planned (no variation was seen, or a relative effect of a mean of 0).
	Needed int64
	// Estimate and Variance are the effect on the test's own scale (the
	// difference of log latency, of means or of rates) and its variance,
	// which sequential verdicts accumulate over loops.
	Estimate, Variance float64
	// DF is the degrees of freedom behind Variance: +Inf when it is the
	// variance of independent requests, else those of the batches' or the
	// connections' estimate that raised it, grown towards +Inf the less
	// it raised it (see combine).
	DF float64
	// Blocks is how many time blocks paired the versions (0: not paired),
	// and Batches how many groups of blocks the variance came from.
	Blocks, Batches int
	// DesignEffect is Variance over the variance that independent
	// requests would give (at least 1): how much correlation and bursts
	// widened the interval.
	DesignEffect float64
	// Threshold is the latency a TailShare test counts requests above.
	Threshold float64
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
	return normalQuantile(1 - (1-confidence)/2), normalQuantile(power)
}

// twoSided is the two-sided normal p-value of z.
func twoSided(z float64) float64 {
	return min(1, 2*normalSurvival(math.Abs(z)))
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

// judge fills in the p-value, significance and interval of e's estimate at
// confidence: Student's t with e.df degrees of freedom (normal when
// infinite). The interval is on the test's own scale.
func (e estimate) judge(confidence float64) (p, low, high float64) {
	if !(e.variance > 0) {
		p = 1 // no variation: no evidence of a difference
		if e.diff != 0 {
			p = 0
		}
		return p, e.diff, e.diff
	}
	se := math.Sqrt(e.variance)
	var crit float64
	if math.IsInf(e.df, 1) {
		p = twoSided(e.diff / se)
		crit = normalQuantile(1 - (1-confidence)/2)
	} else {
		p = min(1, 2*studentTSurvival(math.Abs(e.diff)/se, e.df))
		crit = studentTQuantile(1-(1-confidence)/2, e.df)
	}
	return p, e.diff - crit*se, e.diff + crit*se
}

// needed is the per-version sample size at which the comparison's standard
// error is delta/(zAlpha+zBeta), scaling its variance from the counts it
// came from; 0 when there was no variance to scale.
func (e estimate) needed(confidence, delta float64) int64 {
	if !(e.variance > 0) || !(delta > 0) {
		return 0
	}
	zAlpha, zBeta := quantiles(confidence)
	perUnit := e.variance / (1/e.base.n + 1/e.cand.n) // the variance of one request, design effect included
	return ceilCount(2*perUnit*(zAlpha+zBeta)*(zAlpha+zBeta)/(delta*delta), 2)
}

// fill copies what every series comparison reports from e.
func (e estimate) fill(c *Comparison) {
	c.BaselineCount, c.CandidateCount = int64(e.base.n), int64(e.cand.n)
	c.Estimate, c.Variance, c.DF = e.diff, e.variance, e.df
	c.Blocks, c.Batches = e.paired, e.batches
	c.DesignEffect = 1
	if e.iid > 0 {
		c.DesignEffect = max(e.variance/e.iid, 1)
	}
}

// seriesPair checks two latency histograms for a comparison and returns
// their series (one block each for histograms without one).
func seriesPair(op string, baseline, candidate *Histogram, confidence, minEffect float64) (*Series, *Series, error) {
	if err := checkLevels(confidence, minEffect); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", op, err)
	}
	out := [2]*Series{}
	for i, h := range []*Histogram{baseline, candidate} {
		s, err := seriesOf(h)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %s: %w", op, [...]string{"baseline", "candidate"}[i], err)
		}
		out[i] = s
	}
	return out[0], out[1], nil
}

// CompareLatencies compares latencies by the ratio of the candidate's
// geometric mean latency to the baseline's: the mean difference of log
// latency, with the versions paired by time block (see Series), so that a
// slowdown both versions see cancels, and a variance from how batches of
// blocks vary, so that correlated latencies widen the interval in
// proportion. Log latency tames the long tail: a request 10 times slower
// adds ln 10, not 10 times as much. confidence is the level of the interval
// (say 0.95) and minEffect the relative change Needed is planned for (say
// 0.1 for 10%).
func CompareLatencies(baseline, candidate *Histogram, confidence, minEffect float64) (Comparison, error) {
	bs, cs, err := seriesPair("compare latencies", baseline, candidate, confidence, minEffect)
	if err != nil {
		return Comparison{}, err
	}
	e := contrast(bs, cs, logLatency, false)
	if err := enough("compare latencies", e); err != nil {
		return Comparison{}, err
	}
	c := Comparison{Test: LogRatio, Relative: true}
	e.fill(&c)
	p, lo, hi := e.judge(confidence)
	c.PValue, c.Significant = p, p < 1-confidence
	c.Effect, c.Low, c.High = math.Expm1(e.diff), math.Expm1(lo), math.Expm1(hi)
	c.Baseline, c.Candidate = geometricMeanMs(e.base), geometricMeanMs(e.cand)
	c.Needed = e.needed(confidence, math.Log1p(minEffect))
	return c, nil
}

// enough checks that an estimate rests on at least two requests of each
// version: with one, no variance can be estimated, and a difference would
// look exact.
func enough(op string, e estimate) error {
	if e.base.n < 2 || e.cand.n < 2 {
		return fmt.Errorf("%s: %v and %v requests of the baseline and the candidate in the time both ran: want at least 2 of each", op, e.base.n, e.cand.n)
	}
	return nil
}

// geometricMeanMs is the geometric mean latency, in ms, of a total of log
// latencies.
func geometricMeanMs(t cell) float64 {
	return math.Exp(t.s / t.n) // log latencies count from 1ms
}

// CompareLatencyMeans compares mean latencies (in ms), paired by time block
// like CompareLatencies. minEffect is relative to the baseline's mean.
func CompareLatencyMeans(baseline, candidate *Histogram, confidence, minEffect float64) (Comparison, error) {
	bs, cs, err := seriesPair("compare mean latencies", baseline, candidate, confidence, minEffect)
	if err != nil {
		return Comparison{}, err
	}
	e := contrast(bs, cs, millis, false)
	if err := enough("compare mean latencies", e); err != nil {
		return Comparison{}, err
	}
	c := Comparison{Test: MeanDifference}
	e.fill(&c)
	p, lo, hi := e.judge(confidence)
	c.PValue, c.Significant = p, p < 1-confidence
	c.Effect, c.Low, c.High = e.diff, lo, hi
	c.Baseline, c.Candidate = e.base.s/e.base.n, e.cand.s/e.cand.n
	c.Needed = e.needed(confidence, minEffect*math.Abs(c.Baseline))
	return c, nil
}

// CompareErrorRates compares the error rates of two loads, paired by time
// block, so that a burst of errors in one version widens the interval
// instead of passing for a difference. minEffect is an absolute difference
// of rates, below 1.
func CompareErrorRates(baseline, candidate *Histogram, confidence, minEffect float64) (Comparison, error) {
	if minEffect >= 1 {
		return Comparison{}, fmt.Errorf("compare error rates: minimum effect %v: a difference of rates is below 1", minEffect)
	}
	bs, cs, err := seriesPair("compare error rates", baseline, candidate, confidence, minEffect)
	if err != nil {
		return Comparison{}, err
	}
	if baseline.Series == nil || candidate.Series == nil {
		return Comparison{}, errors.New("compare error rates: a histogram without time blocks has no errors to compare")
	}
	e := contrast(bs, cs, errorsOf, true)
	if err := enough("compare error rates", e); err != nil {
		return Comparison{}, err
	}
	return shares(e, TwoProportion, confidence, minEffect), nil
}

// ComparePercentiles compares the tails of two loads: the share of requests
// at or above T, T being the baseline's percentile (say 90), rounded down to
// the edge of a tail bucket (a quarter doubling), so about 10% of the
// baseline's requests. A candidate whose p90 is higher has more than that
// above T, even when its mean barely moves. The threshold is itself an
// estimate, but its noise enters as that of the baseline's share, which the
// variance counts. Paired by time block like the others. minEffect is an
// absolute difference of shares.
func ComparePercentiles(baseline, candidate *Histogram, percentile, confidence, minEffect float64) (Comparison, error) {
	if !(percentile > 0 && percentile < 100) {
		return Comparison{}, fmt.Errorf("compare percentiles: percentile %v: want a number between 0 and 100", percentile)
	}
	if minEffect >= 1 {
		return Comparison{}, fmt.Errorf("compare percentiles: minimum effect %v: a difference of shares is below 1", minEffect)
	}
	bs, cs, err := seriesPair("compare percentiles", baseline, candidate, confidence, minEffect)
	if err != nil {
		return Comparison{}, err
	}
	hh, err := baseline.Load()
	if err != nil {
		return Comparison{}, fmt.Errorf("compare percentiles: baseline: %w", err)
	}
	above := tailBucket(math.Log(float64(max(hh.ValueAtPercentile(percentile), 1))))
	e := contrast(bs, cs, tailAbove(above), true)
	if err := enough("compare percentiles", e); err != nil {
		return Comparison{}, err
	}
	c := shares(e, TailShare, confidence, minEffect)
	c.Threshold = float64(tailFloor(above)) / 1e6
	return c, nil
}

// shares finishes a comparison of two rates (errors, or requests above a
// threshold) from its estimate. The p-value is e's; the interval is
// Newcombe's hybrid score interval from Wilson intervals at the effective
// sample sizes (the counts divided by the design effect), centred on the
// paired estimate: it keeps its coverage with few events, where a normal
// interval falls short, and 0 against 0 events still spans what so few
// requests cannot rule out.
func shares(e estimate, test Test, confidence, minEffect float64) Comparison {
	c := Comparison{Test: test}
	e.fill(&c)
	p, _, _ := e.judge(confidence)
	c.PValue, c.Significant = p, p < 1-confidence
	p1, p2 := e.base.s/e.base.n, e.cand.s/e.cand.n
	c.Baseline, c.Candidate, c.Effect = p1, p2, e.diff
	zAlpha, _ := quantiles(confidence)
	if !math.IsInf(e.df, 1) {
		zAlpha = studentTQuantile(1-(1-confidence)/2, e.df)
	}
	scale := binomialScale(e)
	l1, u1 := wilson(p1, e.base.n/scale, zAlpha)
	l2, u2 := wilson(p2, e.cand.n/scale, zAlpha)
	c.Low = max(e.diff-math.Hypot(p2-l2, u1-p1), -1)
	c.High = min(e.diff+math.Hypot(u2-p2, p1-l1), 1)
	c.Needed = neededRate(p1, minEffect, confidence, scale)
	return c
}

// binomialScale is e's variance over that of a plain two-proportion
// comparison of the whole run's counts: what the interval's and the plan's
// binomial variances are scaled by, so that they agree with the test. It
// differs from the design effect when the rate varies across blocks:
// independent requests then vary less within a block than over the run.
// With no event at all (or nothing else) it is the design effect.
func binomialScale(e estimate) float64 {
	pooled := (e.base.s + e.cand.s) / (e.base.n + e.cand.n)
	binomial := pooled * (1 - pooled) * (1/e.base.n + 1/e.cand.n)
	if !(binomial > 0) || !(e.variance > 0) {
		if e.iid > 0 {
			return max(e.variance/e.iid, 1)
		}
		return 1
	}
	return e.variance / binomial
}

// neededRate is the per-version sample size that detects a change of a rate
// p by minEffect with 80% power, times scale (see binomialScale).
func neededRate(p, minEffect, confidence, scale float64) int64 {
	zAlpha, zBeta := quantiles(confidence)
	q := p + minEffect
	if q > 1 {
		q = p - minEffect
	}
	avg := (p + q) / 2
	root := zAlpha*math.Sqrt(2*avg*(1-avg)) + zBeta*math.Sqrt(p*(1-p)+q*(1-q))
	return ceilCount(root*root/(minEffect*minEffect)*scale, 1)
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
func CompareRates(baseline, candidate Sample, confidence, minEffect float64) (Comparison, error) {
	if err := checkLevels(confidence, minEffect); err != nil {
		return Comparison{}, fmt.Errorf("compare rates: %w", err)
	}
	if minEffect >= 1 {
		return Comparison{}, fmt.Errorf("compare rates: minimum effect %v: a difference of rates is below 1", minEffect)
	}
	if err := checkSamples(baseline, candidate, KindRate); err != nil {
		return Comparison{}, fmt.Errorf("compare rates: %w", err)
	}
	n1, n2 := float64(baseline.Trials), float64(candidate.Trials)
	p1, p2 := float64(baseline.Successes)/n1, float64(candidate.Successes)/n2
	// One block of independent trials: the pooled variance under equal
	// rates for the test, Newcombe's interval (in shares) around it.
	pooled := float64(baseline.Successes+candidate.Successes) / (n1 + n2)
	v := pooled * (1 - pooled) * (1/n1 + 1/n2)
	e := estimate{
		diff: p2 - p1, variance: v, iid: v, df: math.Inf(1), paired: 0,
		base: cell{n: n1, s: float64(baseline.Successes)}, cand: cell{n: n2, s: float64(candidate.Successes)},
	}
	c := shares(e, TwoProportion, confidence, minEffect)
	c.Blocks = 0
	return c, nil
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
// Needed uses normal quantiles and the observed variance.
func CompareMeans(baseline, candidate Sample, confidence, minEffect float64) (Comparison, error) {
	if err := checkLevels(confidence, minEffect); err != nil {
		return Comparison{}, fmt.Errorf("compare means: %w", err)
	}
	if err := checkSamples(baseline, candidate, KindMean); err != nil {
		return Comparison{}, fmt.Errorf("compare means: %w", err)
	}
	n1, n2 := float64(baseline.Count), float64(candidate.Count)
	e := welch(candidate.Mean-baseline.Mean, baseline.Stdev*baseline.Stdev/n1, candidate.Stdev*candidate.Stdev/n2, n1, n2)
	c := Comparison{Test: Welch, Baseline: baseline.Mean, Candidate: candidate.Mean}
	e.fill(&c)
	c.PValue, c.Low, c.High = e.judge(confidence)
	c.Significant = c.PValue < 1-confidence
	c.Effect = e.diff
	c.Needed = e.needed(confidence, minEffect*math.Abs(baseline.Mean))
	return c, nil
}

// CompareMeanRatio compares the means of two versions by their ratio, for
// cumulative samples such as an A/B/n service's revenue per user: per-user
// sums grow as users keep buying, so the difference of means drifts from
// look to look while their ratio stays put, and a sequential test can be
// tuned to a relative minEffect from the start. The estimate is the
// difference of log means with the delta method's variance,
// s²/(n·mean²) per version, and Welch's degrees of freedom on that scale.
// Both means must be above 0.
func CompareMeanRatio(baseline, candidate Sample, confidence, minEffect float64) (Comparison, error) {
	if err := checkLevels(confidence, minEffect); err != nil {
		return Comparison{}, fmt.Errorf("compare mean ratio: %w", err)
	}
	if err := checkSamples(baseline, candidate, KindMean); err != nil {
		return Comparison{}, fmt.Errorf("compare mean ratio: %w", err)
	}
	for i, s := range []Sample{baseline, candidate} {
		if !(s.Mean > 0) {
			return Comparison{}, fmt.Errorf("compare mean ratio: %s mean %v: a ratio needs means above 0", [...]string{"baseline", "candidate"}[i], s.Mean)
		}
	}
	n1, n2 := float64(baseline.Count), float64(candidate.Count)
	cv1, cv2 := baseline.Stdev/baseline.Mean, candidate.Stdev/candidate.Mean
	e := welch(math.Log(candidate.Mean/baseline.Mean), cv1*cv1/n1, cv2*cv2/n2, n1, n2)
	c := Comparison{Test: MeanRatio, Relative: true, Baseline: baseline.Mean, Candidate: candidate.Mean}
	e.fill(&c)
	c.PValue, c.Low, c.High = e.judge(confidence)
	c.Significant = c.PValue < 1-confidence
	c.Effect, c.Low, c.High = math.Expm1(e.diff), math.Expm1(c.Low), math.Expm1(c.High)
	c.Needed = e.needed(confidence, math.Log1p(minEffect))
	return c, nil
}

// welch is the estimate of a difference diff of two means whose variances
// are v1 and v2 (from n1 and n2 values), with Welch–Satterthwaite's degrees
// of freedom (infinite when there is no variance).
func welch(diff, v1, v2, n1, n2 float64) estimate {
	e := estimate{diff: diff, variance: v1 + v2, iid: v1 + v2, base: cell{n: n1}, cand: cell{n: n2}, df: math.Inf(1)}
	if v1+v2 > 0 {
		e.df = (v1 + v2) * (v1 + v2) / (v1*v1/(n1-1) + v2*v2/(n2-1))
	}
	return e
}
