package stats

import (
	"math"

	"gonum.org/v1/gonum/mathext"
)

// The standard normal and Student's t (location 0, scale 1) functions the
// comparisons need, over gonum's mathext rather than its stat/distuv: distuv
// links gonum's matrix, LAPACK, BLAS and optimisation packages into the
// binary (about 2 MB) for these four functions. Each computes what distuv's
// UnitNormal and StudentsT{Mu: 0, Sigma: 1, Nu: df} do, with the same
// formulas in the same order, so that the results are bit for bit the same
// (dist_test.go checks this against distuv). They return NaN for a
// probability outside [0, 1] where distuv panics; no caller passes one.

// normalQuantile is the standard normal's quantile at p: -Inf at 0, +Inf
// at 1, 0 at 0.5.
func normalQuantile(p float64) float64 {
	if !(p >= 0 && p <= 1) {
		return math.NaN()
	}
	q := mathext.NormalQuantile(p)
	if q == 0 {
		return 0 // distuv adds its Mu of +0, which turns -0 into +0
	}
	return q
}

// normalSurvival is the standard normal's upper tail P(Z > x). distuv's
// 0.5*(1-erf(x/√2)), not erfc: the same bits, at the cost of 0 beyond
// x ≈ 8.3 where erfc would still resolve the tail.
func normalSurvival(x float64) float64 {
	return 0.5 * (1 - math.Erf(x/math.Sqrt2))
}

// studentTSurvival is the upper tail P(T > x) of Student's t with nu
// degrees of freedom: half the regularised incomplete beta function
// I_{ν/(x²+ν)}(ν/2, 1/2) above 0, one minus that below.
func studentTSurvival(x, nu float64) float64 {
	if x == 0 {
		return 0.5
	}
	t := nu / (x*x + nu)
	if x > 0 {
		return 0.5 * mathext.RegIncBeta(nu/2, 0.5, t)
	}
	return 1 - 0.5*mathext.RegIncBeta(nu/2, 0.5, t)
}

// studentTQuantile is the quantile at p of Student's t with nu degrees of
// freedom, inverting the incomplete beta function on the nearer tail:
// -Inf at 0, +Inf at 1, 0 at 0.5.
func studentTQuantile(p, nu float64) float64 {
	if !(p >= 0 && p <= 1) {
		return math.NaN()
	}
	if p == 0.5 {
		return 0
	}
	var y float64
	if p > 0.5 {
		t := mathext.InvRegIncBeta(nu/2, 0.5, 2*(1-p))
		y = math.Sqrt(nu * (1 - t) / t)
	} else {
		t := mathext.InvRegIncBeta(nu/2, 0.5, 2*p)
		y = -math.Sqrt(nu * (1 - t) / t)
	}
	if y == 0 {
		return 0 // distuv adds its Mu of +0, which turns -0 into +0
	}
	return y
}
