package stats

import (
	"math"
	"testing"

	"gonum.org/v1/gonum/stat/distuv"
)

// distProbabilities is a grid over [0, 1]: both ends, the middle, the far
// tails down to 1e-300 and up to 1-1e-16, the levels the comparisons use,
// and a fine even grid in between.
func distProbabilities() []float64 {
	ps := []float64{0, 1, 0.5, 0.8, 0.9, 0.95, 0.975, 0.99, 0.995, 0.9995,
		math.SmallestNonzeroFloat64, 1e-300, 1e-100, 1e-20, 1e-16,
		math.Nextafter(0.5, 0), math.Nextafter(0.5, 1), math.Nextafter(1, 0)}
	for e := 1; e <= 12; e++ {
		q := math.Pow(10, -float64(e))
		ps = append(ps, q, 1-q, 2.5*q, 1-2.5*q, 5*q, 1-5*q)
	}
	for i := 1; i < 1000; i++ {
		ps = append(ps, float64(i)/1000)
	}
	return ps
}

// distDegrees is a grid of degrees of freedom from 1 to 1e6, whole and
// fractional (Welch's df are not whole numbers), and a few below 1.
func distDegrees() []float64 {
	dfs := []float64{0.5, 0.9, 1, 1.5, 2, 2.5, 3, 4, 5, 7, 9.3, 10, 15, 20,
		29, 30, 31.7, 50, 100, 123.456, 1000, 1e4, 99999.5, 1e5, 1e6}
	for df := 1.0; df < 1e6; df *= 1.7 {
		dfs = append(dfs, df)
	}
	return dfs
}

// sameFloat is exact equality that also holds between NaNs and tells -0
// from +0.
func sameFloat(a, b float64) bool {
	return math.Float64bits(a) == math.Float64bits(b) || (math.IsNaN(a) && math.IsNaN(b))
}

// TestDistMatchesDistuv: normalQuantile, normalSurvival, studentTQuantile
// and studentTSurvival give distuv's results bit for bit, so that leaving
// distuv changed no statistic.
func TestDistMatchesDistuv(t *testing.T) {
	ps := distProbabilities()
	dfs := distDegrees()
	var xs []float64
	for _, x := range []float64{0, math.Copysign(0, -1), 1e-300, 1e-10, 0.1, 0.5,
		1, 1.2815515655446004, 1.6448536269514722, 1.959963984540054, 2,
		2.5758293035489004, 3, 5, 8, 8.3, 9, 10, 20, 38, 40, 1e10, 1e300,
		math.Inf(1)} {
		xs = append(xs, x, -x)
	}
	for i := 1; i <= 600; i++ {
		xs = append(xs, float64(i)/100, -float64(i)/100)
	}

	for _, p := range ps {
		if got, want := normalQuantile(p), distuv.UnitNormal.Quantile(p); !sameFloat(got, want) {
			t.Errorf("normalQuantile(%v) = %v, distuv %v", p, got, want)
		}
	}
	for _, x := range append(xs, math.NaN()) {
		if got, want := normalSurvival(x), distuv.UnitNormal.Survival(x); !sameFloat(got, want) {
			t.Errorf("normalSurvival(%v) = %v, distuv %v", x, got, want)
		}
	}
	for _, df := range dfs {
		d := distuv.StudentsT{Mu: 0, Sigma: 1, Nu: df}
		for _, p := range ps {
			if got, want := studentTQuantile(p, df), d.Quantile(p); !sameFloat(got, want) {
				t.Errorf("studentTQuantile(%v, %v) = %v, distuv %v", p, df, got, want)
			}
		}
		for _, x := range xs {
			if got, want := studentTSurvival(x, df), d.Survival(x); !sameFloat(got, want) {
				t.Errorf("studentTSurvival(%v, %v) = %v, distuv %v", x, df, got, want)
			}
		}
	}
}

// TestDistEnds: the ends and the middle, and NaN (not distuv's panic) for
// a probability outside [0, 1].
func TestDistEnds(t *testing.T) {
	for _, tc := range []struct {
		name      string
		got, want float64
	}{
		{"normalQuantile(0)", normalQuantile(0), math.Inf(-1)},
		{"normalQuantile(1)", normalQuantile(1), math.Inf(1)},
		{"normalQuantile(0.5)", normalQuantile(0.5), 0},
		{"normalQuantile(-0.1)", normalQuantile(-0.1), math.NaN()},
		{"normalQuantile(1.1)", normalQuantile(1.1), math.NaN()},
		{"normalQuantile(NaN)", normalQuantile(math.NaN()), math.NaN()},
		{"normalSurvival(0)", normalSurvival(0), 0.5},
		{"normalSurvival(+Inf)", normalSurvival(math.Inf(1)), 0},
		{"normalSurvival(-Inf)", normalSurvival(math.Inf(-1)), 1},
		{"studentTQuantile(0, 5)", studentTQuantile(0, 5), math.Inf(-1)},
		{"studentTQuantile(1, 5)", studentTQuantile(1, 5), math.Inf(1)},
		{"studentTQuantile(0.5, 5)", studentTQuantile(0.5, 5), 0},
		{"studentTQuantile(-0.1, 5)", studentTQuantile(-0.1, 5), math.NaN()},
		{"studentTQuantile(1.1, 5)", studentTQuantile(1.1, 5), math.NaN()},
		{"studentTQuantile(NaN, 5)", studentTQuantile(math.NaN(), 5), math.NaN()},
		{"studentTSurvival(0, 5)", studentTSurvival(0, 5), 0.5},
		{"studentTSurvival(+Inf, 5)", studentTSurvival(math.Inf(1), 5), 0},
		{"studentTSurvival(-Inf, 5)", studentTSurvival(math.Inf(-1), 5), 1},
	} {
		if !sameFloat(tc.got, tc.want) {
			t.Errorf("%s = %v, want %v", tc.name, tc.got, tc.want)
		}
	}
	// Values from mpmath at 30 digits, as a check on the reference itself.
	for _, tc := range []struct {
		p, df, want float64
	}{
		{0.975, 1, 12.706204736174705},
		{0.975, 10, 2.2281388519862747},
		{0.975, 30, 2.0422724563012383},
	} {
		if got := studentTQuantile(tc.p, tc.df); math.Abs(got-tc.want) > 1e-12*tc.want {
			t.Errorf("studentTQuantile(%v, %v) = %v, want %v", tc.p, tc.df, got, tc.want)
		}
	}
	if got := normalQuantile(0.975); math.Abs(got-1.959963984540054) > 1e-15 {
		t.Errorf("normalQuantile(0.975) = %v, want 1.959963984540054", got)
	}
}
