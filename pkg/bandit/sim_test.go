package bandit

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/iter8-tools/iter8/pkg/stats"
)

// The bandit's acceptance simulations, run by `make sim`: whole bandit
// runs as the bandit task makes them, loop by loop. Each loop new users
// arrive and are assigned by the weights; each converts once with its
// version's rate. Every loop compares each candidate with the baseline on
// the cumulative conversions (a sequential test whose looks replace the
// evidence, as assess does for A/B/n summaries, with Holm's correction),
// computes P(best), moves the weights (TopTwo within DefaultPolicy) and
// promotes a version when Promote says so.

const (
	simConfidence = 0.95
	simLevel      = 0.95
	simMinEffect  = 0.02
	// simDraws are P(best)'s draws: a quarter of the task's default
	// (standard error at most 0.007 instead of 0.0035), for time.
	simDraws = stats.DefaultDraws / 4
)

// banditRun is the outcome of one simulated bandit.
type banditRun struct {
	promoted int // -1: none within the budget
	loops    int
	// violation describes a step that broke a bound, or "".
	violation string
}

// simulate runs one bandit of len(rates) versions (0 the baseline) over
// at most loops loops of arrivals users. With late, rates are hazards: a
// user who has not bought yet buys in each loop with that chance, so old
// users keep changing the cumulative summaries.
func simulate(r *rand.Rand, rates []float64, loops, arrivals int, late bool) banditRun {
	k := len(rates)
	weights := make([]int, k)
	for i := range weights {
		weights[i] = 100 / k
	}
	weights[0] += 100 - k*(100/k)
	users, buyers, waiting := make([]int64, k), make([]int64, k), make([]int64, k)
	evidence := make([]stats.Evidence, k)
	for i := range evidence {
		evidence[i] = stats.Evidence{Pooling: stats.Pooled}
	}
	for loop := 1; loop <= loops; loop++ {
		for range arrivals {
			u, v := r.IntN(100), 0
			for acc := weights[0]; u >= acc; acc += weights[v] {
				v++
			}
			users[v]++
			if late {
				waiting[v]++
			} else if r.Float64() < rates[v] {
				buyers[v]++
			}
		}
		for v, n := range waiting {
			for range n {
				if r.Float64() < rates[v] {
					buyers[v]++
					waiting[v]--
				}
			}
		}
		samples := make([]stats.Sample, k)
		for i := range samples {
			samples[i] = stats.RateSample(buyers[i], users[i])
			samples[i].Cumulative = true
		}
		// Sequential comparisons of each candidate with the baseline.
		ps, effects := make([]float64, k), make([]float64, k)
		for i := 1; i < k; i++ {
			ps[i-1] = 1
			c, err := stats.CompareRates(samples[0], samples[i], simConfidence, simMinEffect)
			if err != nil {
				continue
			}
			look, err := evidence[i].Replace(c, simConfidence, simMinEffect, fmt.Sprint(loop))
			if err != nil {
				continue
			}
			evidence[i] = look.Evidence
			ps[i-1], effects[i] = look.Evidence.PValue, look.Estimate
		}
		adjusted := stats.Holm(ps[:k-1])
		better, worse := make([]bool, k), make([]bool, k)
		for i := 1; i < k; i++ {
			significant := adjusted[i-1] < 1-simConfidence
			better[i], worse[i] = significant && effects[i] > 0, significant && effects[i] < 0
		}
		best, err := stats.Best(samples, true, stats.BestOptions{Seed: uint64(loop), Draws: simDraws})
		if err != nil {
			continue // too few users yet for P(best)
		}
		if v := Promote(best.Probability, better, worse, 0, simLevel); v >= 0 {
			return banditRun{promoted: v, loops: loop}
		}
		shares, err := TopTwo(best.Probability, DefaultBeta)
		if err != nil {
			return banditRun{violation: err.Error()}
		}
		steps := make([]Step, k)
		for i := range steps {
			steps[i] = Step{Weight: weights[i], Share: shares[i], Sample: users[i]}
		}
		next, err := DefaultPolicy.Next(steps, 0)
		if err != nil && !errors.Is(err, ErrTooLittleEvidence) {
			return banditRun{violation: err.Error()}
		}
		for i, w := range next {
			floor := DefaultPolicy.Floor
			if i == 0 {
				floor = DefaultPolicy.BaselineFloor
			}
			if w-weights[i] > DefaultPolicy.MaxStep || w < floor {
				return banditRun{violation: fmt.Sprintf("loop %d: weights %v → %v", loop, weights, next)}
			}
		}
		weights = next
	}
	return banditRun{promoted: -1, loops: loops}
}

// runMany simulates runs bandits on two workers and counts promotions per
// version (the last count: none) and the loops of promoted runs.
func runMany(t *testing.T, runs int, seed uint64, rates []float64, loops, arrivals int, late bool) (promoted []int, meanLoops float64) {
	t.Helper()
	promoted = make([]int, len(rates)+1)
	var mu sync.Mutex
	var wg sync.WaitGroup
	total := 0
	for w := range 2 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(seed, uint64(w)))
			for i := w; i < runs; i += 2 {
				b := simulate(r, rates, loops, arrivals, late)
				mu.Lock()
				if b.violation != "" {
					t.Errorf("a step broke a bound: %s", b.violation)
				}
				if b.promoted >= 0 {
					promoted[b.promoted]++
					total += b.loops
				} else {
					promoted[len(rates)]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if n := runs - promoted[len(rates)]; n > 0 {
		meanLoops = float64(total) / float64(n)
	}
	return promoted, meanLoops
}

// TestBanditAAAcceptance: bandits over identical versions (1000 runs of 2
// converting at arrival, 500 of 3, 500 of 2 whose users convert later)
// promote a version in at most 5% of runs, and no step breaks a floor or
// the cap. 20 loops of 200 users.
func TestBanditAAAcceptance(t *testing.T) {
	for ci, cell := range []struct {
		name  string
		rates []float64
		runs  int
		late  bool
	}{
		{"2 versions converting 10% at arrival", []float64{0.1, 0.1}, 1000, false},
		{"3 versions converting 10% at arrival", []float64{0.1, 0.1, 0.1}, 500, false},
		{"2 versions converting 2% per loop, later", []float64{0.02, 0.02}, 500, true},
	} {
		rates, runs := cell.rates, cell.runs
		if raceEnabled {
			runs = 4
		}
		promoted, _ := runMany(t, runs, uint64(10+ci), rates, 20, 200, cell.late)
		rate := float64(runs-promoted[len(rates)]) / float64(runs)
		t.Logf("A/A, %s, 20 loops of 200 users: promoted in %.3f ± %.3f of %d runs (by version %v, none %d)",
			cell.name, rate, math.Sqrt(rate*(1-rate)/float64(runs)), runs, promoted[:len(rates)], promoted[len(rates)])
		if !raceEnabled && rate > 0.05 {
			t.Errorf("A/A, %s: promotion rate %.3f, want at most 0.05", cell.name, rate)
		}
	}
}

// TestBanditPowerAcceptance reports how often and how fast a bandit
// promotes a better version: 20% against 10%, and 12% against 10%.
func TestBanditPowerAcceptance(t *testing.T) {
	runs := 200
	if raceEnabled {
		runs = 4
	}
	for ci, rates := range [][]float64{{0.1, 0.2}, {0.1, 0.12}, {0.1, 0.1, 0.2}} {
		promoted, loops := runMany(t, runs, uint64(20+ci), rates, 20, 200, false)
		best := len(rates) - 1
		rate := float64(promoted[best]) / float64(runs)
		t.Logf("rates %v, 20 loops of 200 users: the best promoted in %.3f ± %.3f of %d runs, after %.1f loops on average (by version %v, none %d)",
			rates, rate, math.Sqrt(rate*(1-rate)/float64(runs)), runs, loops, promoted[:len(rates)], promoted[len(rates)])
		if !raceEnabled && rates[best] == 0.2 && rate < 0.9 {
			t.Errorf("rates %v: the best promoted in %.3f of runs, want at least 0.9", rates, rate)
		}
	}
}
