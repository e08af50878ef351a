package stats

import (
	"fmt"
	"math"
	"slices"
)

// Pooling says how sequential evidence grows from look to look.
type Pooling string

// The ways to pool.
const (
	// Pooled adds every look's estimate to the evidence (a growing sample,
	// weighted by information) and tests it with a mixture sequential
	// probability ratio test.
	Pooled Pooling = "pooled"
	// PerLoop judges each look on its own data and combines the looks'
	// test statistics with equal weight (each loop's z, as Stouffer's
	// method does) in the same mixture test: loops that differ in size or
	// noise count alike.
	PerLoop Pooling = "per-loop"
)

// Evidence is what a sequential comparison carries from one look (a loop of
// an experiment) to the next. Its p-value is valid whenever a user looks and
// stops: the chance that it ever falls below α for versions that do not
// differ is at most α, however many looks there are.
type Evidence struct {
	Pooling Pooling `json:"pooling"`
	// Looks is the number of looks so far.
	Looks int `json:"looks"`
	// Information and Weighted are Σ 1/V and Σ D/V over the looks
	// (Pooled), or the number of looks with a statistic and the sum of
	// their z (PerLoop); after Replace, the latest look's 1/V and D/V
	// whatever the pooling.
	Information float64 `json:"information,omitempty"`
	Weighted    float64 `json:"weighted,omitempty"`
	// PValue is the always-valid p-value: the smallest over the looks.
	PValue float64 `json:"pValue"`
	// Mixture is the variance τ² of the effects the mixture test averages
	// over, on the scale of Weighted/Information, fixed at the first look
	// with variation: a mixture that changed from look to look would not
	// keep the p-value valid.
	Mixture float64 `json:"mixture,omitempty"`
	// Data names the data of the last look (its caller's choice, such as
	// the loads' start), so that the same data are not added twice.
	Data string `json:"data,omitempty"`
}

// Look is the result of adding one look to sequential evidence.
type Look struct {
	Evidence Evidence
	// Estimate is the effect of all looks so far on the test's own scale,
	// with its confidence sequence at the confidence asked for (PerLoop:
	// the mean z and its sequence, times this look's standard error).
	Estimate, Low, High float64
}

// Add adds comparison c, one look made at confidence on the data named
// data, to the evidence. scale is the effect a user cares about on the
// test's own scale (for latencies ln(1+minEffect)): the mixture test is
// tuned to it at the first look. A look on the same data as the last adds
// nothing: the evidence and its estimate stay as they were.
func (e Evidence) Add(c Comparison, confidence, scale float64, data string) (Look, error) {
	return e.add(c, confidence, scale, data, false)
}

// Replace is Add for a comparison of everything measured so far, which holds
// the data of every earlier look (a growing sample, such as an A/B/n
// service's summaries): the look's estimate replaces the evidence instead
// of adding to it. When looks only add new values, the mixture test on the
// latest cumulative estimate is the one that Pooled computes from
// increments, and its p-value, the minimum over the looks, stays valid
// whenever a user stops. A/B/n summaries also change old values (users keep
// buying), which that argument does not cover: the simulations
// (TestPeekingCumulativeAcceptance, the bandit's) find the test
// conservative there, at a cost in power. Both poolings judge a growing
// sample this way: weighting loops equally (PerLoop) has no meaning when
// every look holds all the earlier ones.
func (e Evidence) Replace(c Comparison, confidence, scale float64, data string) (Look, error) {
	return e.add(c, confidence, scale, data, true)
}

func (e Evidence) add(c Comparison, confidence, scale float64, data string, replace bool) (Look, error) {
	if err := checkLevels(confidence, scale); err != nil {
		return Look{}, fmt.Errorf("sequential: %w", err)
	}
	if e.Pooling != Pooled && e.Pooling != PerLoop {
		return Look{}, fmt.Errorf("sequential: pooling %q: want %s or %s", e.Pooling, Pooled, PerLoop)
	}
	if e.Looks == 0 {
		e.PValue = 1
	}
	perLoop := e.Pooling == PerLoop && !replace
	v := normalVariance(c.Variance, c.DF, confidence)
	if data == "" || data != e.Data {
		e.Looks++
		e.Data = data
		switch {
		case !(v > 0):
			// No variation in this look: it adds nothing.
		case replace:
			e.Information, e.Weighted = 1/v, c.Estimate/v
		case perLoop:
			e.Information++
			e.Weighted += c.Estimate / math.Sqrt(v)
		default:
			e.Information += 1 / v
			e.Weighted += c.Estimate / v
		}
	}
	out := Look{Evidence: e, Estimate: c.Estimate, Low: c.Estimate, High: c.Estimate}
	if e.Information == 0 {
		return out, nil
	}
	if e.Mixture == 0 {
		// On the effect's scale (Pooled), or on the scale of z, where the
		// minimum effect is scale/SE (PerLoop).
		e.Mixture = scale * scale
		if perLoop {
			e.Mixture = scale * scale / v
		}
	}
	// The mixture test of a normal estimate d with variance w against 0,
	// mixing the effect over N(0, τ²).
	d, w, tau2 := e.Weighted/e.Information, 1/e.Information, e.Mixture
	logLR := 0.5*math.Log(w/(w+tau2)) + d*d*tau2/(2*w*(w+tau2))
	e.PValue = min(e.PValue, math.Exp(min(-logLR, 0)))
	half := math.Sqrt(w * (w + tau2) / tau2 * (2*math.Log(1/(1-confidence)) + math.Log((w+tau2)/w)))
	out.Estimate, out.Low, out.High = d, d-half, d+half
	if perLoop && v > 0 {
		// The sequence is on the mean z: back to the effect's scale with
		// this look's standard error (exact when the loops are alike).
		se := math.Sqrt(v)
		out.Estimate, out.Low, out.High = d*se, (d-half)*se, (d+half)*se
	}
	out.Evidence = e
	return out, nil
}

// normalVariance widens a variance with df degrees of freedom so that a
// normal quantile at confidence gives the interval Student's t would: the
// mixture test assumes a known variance.
func normalVariance(v, df, confidence float64) float64 {
	if math.IsInf(df, 1) || !(df > 0) {
		return v
	}
	q := 1 - (1-confidence)/2
	r := studentTQuantile(q, df) / normalQuantile(q)
	return v * r * r
}

// Holm adjusts p-values for testing them together with Holm's step-down
// method: rejecting those whose adjusted p-value is below α keeps the chance
// of any false rejection among them at most α, whatever their dependence.
// The result is in the input's order.
func Holm(p []float64) []float64 {
	order := make([]int, len(p))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		switch {
		case p[a] < p[b]:
			return -1
		case p[a] > p[b]:
			return 1
		}
		return 0
	})
	out := make([]float64, len(p))
	running := 0.0
	for rank, i := range order {
		running = max(running, min(1, float64(len(p)-rank)*p[i]))
		out[i] = running
	}
	return out
}
