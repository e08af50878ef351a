package stats

import (
	"fmt"
	"math"
	"slices"

	"gonum.org/v1/gonum/stat/distuv"
)

// Pooling says how sequential evidence grows from look to look.
type Pooling string

// The ways to pool.
const (
	// Pooled adds every look's estimate to the evidence (a growing sample,
	// weighted by information) and tests it with a mixture sequential
	// probability ratio test.
	Pooled Pooling = "pooled"
	// PerLoop tests each look on its own data, at a level that shrinks with
	// the look's number (α/(k(k+1)) at look k) so that the levels of all
	// looks sum to at most α.
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
	// Information and Weighted are Σ 1/V and Σ D/V over the looks (Pooled).
	Information float64 `json:"information,omitempty"`
	Weighted    float64 `json:"weighted,omitempty"`
	// PValue is the always-valid p-value: the smallest over the looks.
	PValue float64 `json:"pValue"`
}

// Look is the result of adding one look to sequential evidence.
type Look struct {
	Evidence Evidence
	// Estimate is the effect on the test's own scale with its interval at
	// the confidence asked for, valid at this look whatever came before: a
	// confidence sequence (Pooled) or this look's interval at its shrunken
	// level (PerLoop).
	Estimate, Low, High float64
}

// Add adds comparison c, one look made at confidence, to the evidence.
// scale is the effect a user cares about on the test's own scale (for
// latencies ln(1+minEffect)): the mixture test is most sensitive near it.
func (e Evidence) Add(c Comparison, confidence, scale float64) (Look, error) {
	if err := checkLevels(confidence, scale); err != nil {
		return Look{}, fmt.Errorf("sequential: %w", err)
	}
	if e.Pooling != Pooled && e.Pooling != PerLoop {
		return Look{}, fmt.Errorf("sequential: pooling %q: want %s or %s", e.Pooling, Pooled, PerLoop)
	}
	alpha := 1 - confidence
	if e.Looks == 0 {
		e.PValue = 1
	}
	e.Looks++
	k := float64(e.Looks)
	out := Look{}
	if e.Pooling == PerLoop {
		level := alpha / (k * (k + 1))
		est := estimate{diff: c.Estimate, variance: c.Variance, df: c.DF}
		p, lo, hi := est.judge(1 - level)
		e.PValue = min(e.PValue, min(1, p*k*(k+1)))
		out.Estimate, out.Low, out.High = c.Estimate, lo, hi
		out.Evidence = e
		return out, nil
	}
	if v := normalVariance(c.Variance, c.DF, confidence); v > 0 {
		e.Information += 1 / v
		e.Weighted += c.Estimate / v
	}
	if e.Information == 0 {
		// No look had any variation yet: nothing to test.
		out.Evidence = e
		return out, nil
	}
	d, v := e.Weighted/e.Information, 1/e.Information
	tau2 := scale * scale
	// The mixture likelihood ratio of a normal estimate d with variance v,
	// against 0, mixing the effect over N(0, τ²).
	logLR := 0.5*math.Log(v/(v+tau2)) + d*d*tau2/(2*v*(v+tau2))
	e.PValue = min(e.PValue, math.Exp(min(-logLR, 0)))
	half := math.Sqrt(v * (v + tau2) / tau2 * (2*math.Log(1/alpha) + math.Log((v+tau2)/v)))
	out.Estimate, out.Low, out.High = d, d-half, d+half
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
	r := distuv.StudentsT{Mu: 0, Sigma: 1, Nu: df}.Quantile(q) / distuv.UnitNormal.Quantile(q)
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
