package bandit

import (
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestTopTwoTwoVersions(t *testing.T) {
	// The challenger is always the other version: share = β·p + (1-β)(1-p).
	for _, beta := range []float64{0.5, 0.8} {
		for _, p := range []float64{0, 0.3, 0.5, 0.97, 1} {
			got, err := TopTwo([]float64{p, 1 - p}, beta)
			if err != nil {
				t.Fatal(err)
			}
			want := beta*p + (1-beta)*(1-p)
			if math.Abs(got[0]-want) > 1e-12 || math.Abs(got[0]+got[1]-1) > 1e-12 {
				t.Errorf("TopTwo([%v, %v], %v) = %v, want [%v, %v]", p, 1-p, beta, got, want, 1-want)
			}
		}
	}
}

// TestTopTwoMatchesTheProcedure: the closed form agrees with top-two
// sampling done draw by draw (a leader drawn from P(best), played with
// chance β, else a challenger drawn again until it differs).
func TestTopTwoMatchesTheProcedure(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, p := range [][]float64{{0.6, 0.3, 0.1}, {0.25, 0.25, 0.25, 0.25}, {0.9, 0.05, 0.05, 0}} {
		got, err := TopTwo(p, DefaultBeta)
		if err != nil {
			t.Fatal(err)
		}
		draw := func() int {
			u, acc := r.Float64(), 0.0
			for i, pi := range p {
				if acc += pi; u < acc {
					return i
				}
			}
			return len(p) - 1
		}
		const n = 200000
		counts := make([]float64, len(p))
		for range n {
			lead := draw()
			if r.Float64() < DefaultBeta {
				counts[lead]++
				continue
			}
			c := draw()
			for c == lead {
				c = draw()
			}
			counts[c]++
		}
		for i := range p {
			if sim := counts[i] / n; math.Abs(sim-got[i]) > 0.005 {
				t.Errorf("P(best) %v: share %d closed form %.4f, by the procedure %.4f", p, i, got[i], sim)
			}
		}
	}
	// Certainty: the others share the challenger's part.
	got, _ := TopTwo([]float64{0, 1, 0}, 0.8)
	if want := []float64{0.1, 0.8, 0.1}; math.Abs(got[0]-want[0]) > 1e-12 || math.Abs(got[1]-want[1]) > 1e-12 || math.Abs(got[2]-want[2]) > 1e-12 {
		t.Errorf("TopTwo of a certain leader = %v, want %v", got, want)
	}
}

func TestTopTwoErrors(t *testing.T) {
	for _, tt := range []struct {
		p    []float64
		beta float64
		want string
	}{
		{[]float64{1}, 0.5, "1 versions: want at least 2"},
		{[]float64{0.5, 0.5}, 1, "beta 1"},
		{[]float64{0.5, 0.5}, math.NaN(), "beta NaN"},
		{[]float64{0.7, 0.7}, 0.5, "sum to 1.4"},
		{[]float64{-0.1, 1.1}, 0.5, "probability -0.1 of version 0"},
		{[]float64{math.NaN(), 1}, 0.5, "probability NaN"},
	} {
		if _, err := TopTwo(tt.p, tt.beta); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("TopTwo(%v, %v): error %v, want one containing %q", tt.p, tt.beta, err, tt.want)
		}
	}
}

// TestNextKeepsEveryBound: for random weights, shares and holds, the next
// weights sum to 100, hold the floors, rise by at most MaxStep, never rise
// for a held version, and are the nearest such weights to the shares (for
// two versions, checked against every candidate).
func TestNextKeepsEveryBound(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	p := DefaultPolicy
	for run := range 20000 {
		n := 2 + r.IntN(3)
		steps := make([]Step, n)
		left, shareLeft := 100, 1.0
		for i := range steps {
			w, sh := left, shareLeft
			if i < n-1 {
				w = r.IntN(left + 1)
				sh = shareLeft * r.Float64()
			}
			left -= w
			shareLeft -= sh
			steps[i] = Step{Weight: w, Share: max(sh, 0), Sample: p.MinSample, Hold: r.IntN(8) == 0}
		}
		baseline := r.IntN(n)
		next, err := p.Next(steps, baseline)
		if err != nil {
			// Only held versions below their floors may leave no room.
			held := false
			for _, s := range steps {
				held = held || s.Hold
			}
			if !held || !errors.Is(err, ErrNoRoom) {
				t.Fatalf("run %d: Next(%+v, %d): %v", run, steps, baseline, err)
			}
			continue
		}
		sum := 0
		for i, w := range next {
			sum += w
			floor := p.Floor
			if i == baseline {
				floor = p.BaselineFloor
			}
			s := steps[i]
			switch {
			case w-s.Weight > p.MaxStep:
				t.Fatalf("run %d: version %d rose %d → %d, more than %d (steps %+v)", run, i, s.Weight, w, p.MaxStep, steps)
			case s.Hold && w > s.Weight:
				t.Fatalf("run %d: held version %d rose %d → %d", run, i, s.Weight, w)
			case w < floor && !(s.Hold && w >= s.Weight):
				t.Fatalf("run %d: version %d at %d, below its floor %d (steps %+v)", run, i, w, floor, steps)
			}
		}
		if sum != 100 {
			t.Fatalf("run %d: weights %v sum to %d", run, next, sum)
		}
		if n == 2 && !nearest(p, steps, baseline, next[0]) {
			t.Fatalf("run %d: Next(%+v) = %v is not the nearest to the shares within the bounds", run, steps, next)
		}
	}
}

// nearest says whether w0 is, within rounding, the allowed first weight of
// two versions closest to the first share.
func nearest(p Policy, steps []Step, baseline, w0 int) bool {
	best, bestDist := -1, math.Inf(1)
	for w := 0; w <= 100; w++ {
		ws := []int{w, 100 - w}
		ok := true
		for i, s := range steps {
			floor := p.Floor
			if i == baseline {
				floor = p.BaselineFloor
			}
			hi := s.Weight + p.MaxStep
			if s.Hold {
				hi, floor = s.Weight, min(floor, s.Weight)
			}
			ok = ok && ws[i] >= floor && ws[i] <= hi
		}
		if d := math.Abs(float64(w) - 100*steps[0].Share); ok && d < bestDist {
			best, bestDist = w, d
		}
	}
	return math.Abs(float64(w0-best)) <= 1
}

func TestNextWaitsForEvidence(t *testing.T) {
	steps := []Step{{Weight: 50, Share: 0.1, Sample: 500}, {Weight: 50, Share: 0.9, Sample: 99}}
	next, err := DefaultPolicy.Next(steps, 0)
	if !errors.Is(err, ErrTooLittleEvidence) || next[0] != 50 || next[1] != 50 || !strings.Contains(err.Error(), "version 1 has a sample of 99, below the 100") {
		t.Errorf("Next with a small sample = %v, %v; want 50/50 unchanged and ErrTooLittleEvidence naming version 1", next, err)
	}
	steps[1].Sample = 100
	next, err = DefaultPolicy.Next(steps, 0)
	if err != nil || next[0] != 30 || next[1] != 70 {
		t.Errorf("Next once every version has 100 = %v, %v; want 30/70 (v2 up by the step of 20)", next, err)
	}
}

func TestPolicyCheck(t *testing.T) {
	for _, tt := range []struct {
		p    Policy
		n    int
		want string
	}{
		{Policy{Floor: -1, BaselineFloor: 10, MaxStep: 20}, 2, "floor -1: want 0 to 50"},
		{Policy{Floor: 60, BaselineFloor: 60, MaxStep: 60}, 2, "floor 60"},
		{Policy{Floor: 10, BaselineFloor: 5, MaxStep: 20}, 2, "baseline floor 5: want from the floor (10) to 100"},
		{Policy{Floor: 30, BaselineFloor: 50, MaxStep: 50}, 3, "floors: 2 versions at 30% and the baseline at 50% make 110%"},
		{Policy{Floor: 5, BaselineFloor: 10, MaxStep: 0}, 2, "max step 0: want 1 to 100"},
		{Policy{Floor: 5, BaselineFloor: 30, MaxStep: 20}, 2, "max step 20: want at least the floors (5, baseline 30)"},
		{Policy{Floor: 5, BaselineFloor: 10, MaxStep: 20, MinSample: -1}, 2, "min sample -1"},
	} {
		if err := tt.p.Check(tt.n); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v.Check(%d) = %v, want an error containing %q", tt.p, tt.n, err, tt.want)
		}
	}
	if err := DefaultPolicy.Check(10); err != nil {
		t.Errorf("the default policy for 10 versions: %v", err)
	}
}

func TestPromote(t *testing.T) {
	no := []bool{false, false, false}
	for _, tt := range []struct {
		name          string
		p             []float64
		better, worse []bool
		level         float64
		want          int
	}{
		{"a better candidate sure enough", []float64{0.01, 0.97, 0.02}, []bool{false, true, false}, no, 0.95, 1},
		{"not sure enough", []float64{0.05, 0.94, 0.01}, []bool{false, true, false}, no, 0.95, -1},
		{"sure but not judged better", []float64{0.01, 0.97, 0.02}, no, no, 0.95, -1},
		{"the baseline once every candidate is worse", []float64{0.98, 0.01, 0.01}, no, []bool{false, true, true}, 0.95, 0},
		{"the baseline while a candidate is undecided", []float64{0.98, 0.01, 0.01}, no, []bool{false, true, false}, 0.95, -1},
		{"NaN", []float64{math.NaN(), 0.5, 0.5}, []bool{false, true, true}, no, 0.95, -1},
		{"NaN level", []float64{0.01, 0.97, 0.02}, []bool{false, true, false}, no, math.NaN(), -1},
		{"lengths differ", []float64{0.01, 0.99}, []bool{false, true, false}, no, 0.95, -1},
	} {
		if got := Promote(tt.p, tt.better, tt.worse, 0, tt.level); got != tt.want {
			t.Errorf("%s: Promote = %d, want %d", tt.name, got, tt.want)
		}
	}
}
