// Package bandit turns the evidence of an A/B/n test into the next traffic
// weights of its versions: top-two Thompson sampling over the reward's
// posterior, bounded by a floor per version, a floor for the baseline, a cap
// on each step's increase, and a minimum sample before anything moves. It
// is pure arithmetic; reading the evidence and applying the weights (a helm
// upgrade of the app's release) are the bandit task's.
package bandit

import (
	"errors"
	"fmt"
	"math"
	"slices"
)

// DefaultBeta is top-two Thompson sampling's chance of playing the leader.
// One half identifies the best version fastest (Russo, 2020), but with two
// versions it is an even split whatever the evidence, since the challenger
// is always the other one: 0.8 moves traffic to a clear leader (up to 80%
// before it is promoted) while the challenger keeps the rest.
const DefaultBeta = 0.8

// TopTwo returns the share of traffic that top-two Thompson sampling gives
// each version, from each version's probability of being best (summing to
// 1): with chance beta a user goes to a draw's leader, else to the leader
// of a fresh draw that differs from it. For independent draws that
// challenger is version i with chance p_i/(1-p_j) when j led, so
//
//	share_i = beta·p_i + (1-beta)·p_i·Σ_{j≠i} p_j/(1-p_j).
//
// A version certain to be best (p_j = 1) has no challenger among draws;
// the others then share its challenger's part equally.
func TopTwo(pBest []float64, beta float64) ([]float64, error) {
	k := len(pBest)
	switch {
	case k < 2:
		return nil, fmt.Errorf("top-two sampling: %d versions: want at least 2", k)
	case !(beta > 0 && beta < 1):
		return nil, fmt.Errorf("top-two sampling: beta %v: want a share between 0 and 1", beta)
	}
	total := 0.0
	for i, p := range pBest {
		if !(p >= 0 && p <= 1) {
			return nil, fmt.Errorf("top-two sampling: probability %v of version %d: want one from 0 to 1", p, i)
		}
		total += p
	}
	if math.Abs(total-1) > 1e-6 {
		return nil, fmt.Errorf("top-two sampling: probabilities of being best sum to %v, want 1", total)
	}
	share := make([]float64, k)
	for i, pi := range pBest {
		share[i] = beta * pi / total
	}
	for j, pj := range pBest {
		lead := (1 - beta) * pj / total
		rest := 1 - pj/total
		for i, pi := range pBest {
			switch {
			case i == j:
			case rest > 1e-12:
				share[i] += lead * (pi / total) / rest
			default:
				share[i] += lead / float64(k-1)
			}
		}
	}
	return share, nil
}

// Policy bounds how weights move. Weights are whole percentages that sum
// to 100, as charts/release takes them.
type Policy struct {
	// Floor is the weight every version keeps, in percent, so that
	// evidence keeps coming from each (exploration).
	Floor int
	// BaselineFloor is the weight the baseline keeps, at least Floor: a
	// safe share while candidates are judged.
	BaselineFloor int
	// MaxStep caps each version's increase per step, in points.
	MaxStep int
	// MinSample is the sample (users) every version needs before any
	// weight moves.
	MinSample int64
}

// Defaults of a Policy.
const (
	DefaultFloor         = 5
	DefaultBaselineFloor = 10
	DefaultMaxStep       = 20
	DefaultMinSample     = 100
)

// DefaultPolicy is the policy unless a spec says otherwise.
var DefaultPolicy = Policy{Floor: DefaultFloor, BaselineFloor: DefaultBaselineFloor, MaxStep: DefaultMaxStep, MinSample: DefaultMinSample}

// Check says what is wrong with the policy for n versions: each bound in
// range, and floors that fit (n-1 floors and the baseline's at most 100)
// and that a version below its floor can reach in one step.
func (p Policy) Check(n int) error {
	var errs []error
	switch {
	case p.Floor < 0 || p.Floor > 50:
		errs = append(errs, fmt.Errorf("floor %d: want 0 to 50 (percent)", p.Floor))
	case p.BaselineFloor < p.Floor || p.BaselineFloor > 100:
		errs = append(errs, fmt.Errorf("baseline floor %d: want from the floor (%d) to 100", p.BaselineFloor, p.Floor))
	case n > 0 && (n-1)*p.Floor+p.BaselineFloor > 100:
		errs = append(errs, fmt.Errorf("floors: %d versions at %d%% and the baseline at %d%% make %d%%, more than 100", n-1, p.Floor, p.BaselineFloor, (n-1)*p.Floor+p.BaselineFloor))
	}
	switch {
	case p.MaxStep < 1 || p.MaxStep > 100:
		errs = append(errs, fmt.Errorf("max step %d: want 1 to 100 (points)", p.MaxStep))
	case p.MaxStep < p.BaselineFloor:
		errs = append(errs, fmt.Errorf("max step %d: want at least the floors (%d, baseline %d), so that a version below its floor reaches it in one step", p.MaxStep, p.Floor, p.BaselineFloor))
	}
	if p.MinSample < 0 {
		errs = append(errs, fmt.Errorf("min sample %d: want 0 or more", p.MinSample))
	}
	return errors.Join(errs...)
}

// Step is one version's part in a move.
type Step struct {
	// Weight now, in percent.
	Weight int
	// Share is the traffic the evidence asks for (TopTwo), from 0 to 1.
	Share float64
	// Sample is the version's sample so far (users).
	Sample int64
	// Hold keeps the version from gaining weight (it is not ready).
	Hold bool
}

// ErrTooLittleEvidence is returned, with the weights unchanged, while a
// version's sample is below MinSample.
var ErrTooLittleEvidence = errors.New("too little evidence")

// ErrNoRoom is returned, with the weights unchanged, when the bounds leave
// no weights that sum to 100: held (unready) versions below their floors.
var ErrNoRoom = errors.New("no weights within the bounds")

// Next returns the weights closest to the shares (in the least-squares
// sense) within the bounds: at least the floors (the baseline's for
// version baseline), at most the weight now plus MaxStep (or the weight
// now for a held version), summing to 100. Until every version has
// MinSample, it returns the weights unchanged with an error wrapping
// ErrTooLittleEvidence; when held versions leave no room, wrapping
// ErrNoRoom.
func (p Policy) Next(steps []Step, baseline int) ([]int, error) {
	n := len(steps)
	if err := p.Check(n); err != nil {
		return nil, err
	}
	if baseline < 0 || baseline >= n {
		return nil, fmt.Errorf("baseline %d of %d versions", baseline, n)
	}
	now := make([]int, n)
	sum := 0
	for i, s := range steps {
		if s.Weight < 0 || s.Weight > 100 || !(s.Share >= 0 && s.Share <= 1) {
			return nil, fmt.Errorf("version %d: weight %d, share %v: want 0 to 100 and 0 to 1", i, s.Weight, s.Share)
		}
		now[i] = s.Weight
		sum += s.Weight
	}
	if sum != 100 {
		return nil, fmt.Errorf("weights %v sum to %d, want 100", now, sum)
	}
	for i, s := range steps {
		if s.Sample < p.MinSample {
			return now, fmt.Errorf("%w: version %d has a sample of %d, below the %d every version needs before weights move", ErrTooLittleEvidence, i, s.Sample, p.MinSample)
		}
	}
	lo, hi := make([]float64, n), make([]float64, n)
	for i, s := range steps {
		floor := p.Floor
		if i == baseline {
			floor = p.BaselineFloor
		}
		top := s.Weight + p.MaxStep
		if s.Hold {
			top = s.Weight
			floor = min(floor, s.Weight)
		}
		lo[i], hi[i] = float64(floor), float64(min(top, 100))
	}
	if sumOf(lo) > 100 || sumOf(hi) < 100 {
		// Held versions below their floors can make the box miss 100;
		// nothing moves then.
		return now, fmt.Errorf("%w: bounds from %v to %v leave no weights summing to 100", ErrNoRoom, lo, hi)
	}
	target := make([]float64, n)
	for i, s := range steps {
		target[i] = 100 * s.Share
	}
	return round(project(target, lo, hi), lo, hi), nil
}

func sumOf(x []float64) float64 {
	s := 0.0
	for _, v := range x {
		s += v
	}
	return s
}

// project is the point of {x: lo ≤ x ≤ hi, Σx = 100} nearest target:
// x_i = clamp(target_i + λ) with λ found by bisection (the sum is
// monotone in λ).
func project(target, lo, hi []float64) []float64 {
	at := func(l float64) ([]float64, float64) {
		x := make([]float64, len(target))
		for i := range x {
			x[i] = min(max(target[i]+l, lo[i]), hi[i])
		}
		return x, sumOf(x)
	}
	a, b := -200.0, 200.0
	for range 200 {
		m := (a + b) / 2
		if _, s := at(m); s < 100 {
			a = m
		} else {
			b = m
		}
	}
	x, _ := at(b)
	return x
}

// round turns x (within [lo, hi], summing to 100, lo and hi whole) into
// whole percentages within the same bounds that sum to 100: each rounded
// down, then the points left go to the largest remainders.
func round(x, lo, hi []float64) []int {
	out := make([]int, len(x))
	left := 100
	for i, v := range x {
		out[i] = int(math.Floor(v + 1e-9))
		left -= out[i]
	}
	order := make([]int, len(x))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		ra, rb := x[a]-float64(out[a]), x[b]-float64(out[b])
		switch {
		case ra > rb:
			return -1
		case ra < rb:
			return 1
		}
		return 0
	})
	for left > 0 {
		moved := false
		for _, i := range order {
			if left > 0 && float64(out[i]+1) <= hi[i] {
				out[i]++
				left--
				moved = true
			}
		}
		if !moved {
			break
		}
	}
	return out
}

// Promote returns the version to promote, or -1 for none yet: the version
// most likely best, once its probability of being best reaches level and
// the sequential comparisons with the baseline back it (a candidate judged
// better than the baseline; the baseline when every candidate is judged
// worse). better and worse are indexed by version; the baseline's entries
// are not read.
func Promote(pBest []float64, better, worse []bool, baseline int, level float64) int {
	if len(pBest) == 0 || len(better) != len(pBest) || len(worse) != len(pBest) || baseline < 0 || baseline >= len(pBest) || !(level > 0 && level <= 1) {
		return -1
	}
	leader := 0
	for i, p := range pBest {
		if p > pBest[leader] {
			leader = i
		}
	}
	if !(pBest[leader] >= level) { // NaN promotes nothing
		return -1
	}
	if leader != baseline {
		if better[leader] {
			return leader
		}
		return -1
	}
	for i, w := range worse {
		if i != baseline && !w {
			return -1
		}
	}
	return baseline
}
