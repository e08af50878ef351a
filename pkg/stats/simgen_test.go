package stats_test

import (
	"cmp"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/iter8-tools/iter8/pkg/stats"
)

// This file generates the loads that the acceptance simulations compare:
// conditions real runs have, recorded through the production Recorder the
// way the load tasks record (one recorder per connection, merged).

// simConnections is the number of connections per version.
const simConnections = 4

// load describes the simulated load of both versions of one run.
type load struct {
	// n and nCand are the requests of the baseline and the candidate.
	n, nCand int
	// qps is each version's rate; 0 is a closed loop at full speed.
	qps float64
	// phi is the AR(1) coefficient of log latency within a connection.
	phi float64
	// drift makes every latency (1+drift·t/T) times longer at time t of a
	// run of nominal length T; step makes it (1+step) times longer after
	// a random time within T. Both versions see the same slowdown.
	drift, step float64
	// factor multiplies the candidate's latencies (1 for A/A).
	factor float64
	// errors is each request's chance of failing, unless bursts is set.
	errors float64
	bursts *bursts
	// outage fails every request of a version that starts within a window
	// of a random length in [outage[0], outage[1]] at a random time, one
	// per version.
	outage [2]time.Duration
	// mixture, when set, replaces the latency model (tail comparisons).
	mixture *mixture
}

// bursts is a two-state Markov process of a version's errors: the bad
// state holds share of its requests, in runs of meanRun requests on
// average, and a request fails in it with chance failBad.
type bursts struct {
	share, meanRun, failBad float64
}

// mixture draws fast or slow latencies: slow with chance slowBase (slowCand
// for the candidate).
type mixture struct {
	fast, slow         time.Duration
	slowBase, slowCand float64
}

// median and sigma of log latency, and the outliers, as the issue sets them.
const (
	simMedian       = 5 * time.Millisecond
	simSigma        = 0.5
	simOutlierShare = 0.01
	simOutlierScale = 10
)

// nominal is the nominal length T of a run of n requests per version, for
// the shared drift and step: the time a closed loop takes at the mean
// latency, or n/qps.
func (l *load) nominal() time.Duration {
	if l.qps > 0 {
		return time.Duration(float64(l.n) / l.qps * float64(time.Second))
	}
	mean := float64(simMedian) * math.Exp(simSigma*simSigma/2) * (1 + simOutlierShare*(simOutlierScale-1))
	return time.Duration(float64(l.n) / simConnections * mean)
}

// origin is the start of every simulated load.
var origin = time.Unix(1_700_000_000, 0)

// run simulates one run and returns both versions' histograms.
func (l *load) run(r *rand.Rand) (base, cand *stats.Histogram) {
	T := l.nominal()
	stepAt := time.Duration(r.Float64() * float64(T))
	shared := func(at time.Duration) float64 {
		g := 1 + l.drift*float64(at)/float64(T)
		if l.step > 0 && at >= stepAt {
			g *= 1 + l.step
		}
		return g
	}
	base = l.version(r, l.n, 1, false, shared)
	cand = l.version(r, l.nCand, l.factor, true, shared)
	return base, cand
}

// request is one simulated request of a version.
type request struct {
	at      time.Duration
	latency float64
	conn    int
	failed  bool
}

// version simulates one version's connections and records them the way the
// load tasks do: one recorder per connection, merged.
func (l *load) version(r *rand.Rand, n int, factor float64, candidate bool, shared func(time.Duration) float64) *stats.Histogram {
	reqs := make([]request, 0, n)
	for c := range simConnections {
		requests := n / simConnections
		if c < n%simConnections {
			requests++
		}
		x := simSigma * r.NormFloat64() // AR(1) state, marginal sd simSigma
		innovation := simSigma * math.Sqrt(1-l.phi*l.phi)
		var now time.Duration
		for i := range requests {
			if l.qps > 0 {
				// fortio paces each connection at qps/connections,
				// staggered, and a slow response delays the next.
				due := time.Duration((float64(i*simConnections) + float64(c)) / l.qps * float64(time.Second))
				now = max(now, due)
			}
			x = l.phi*x + innovation*r.NormFloat64()
			d := l.latency(r, x, candidate) * factor * shared(now)
			reqs = append(reqs, request{at: now, latency: d, conn: c, failed: r.Float64() < l.errors})
			now += time.Duration(d)
		}
	}
	l.fail(r, reqs)
	recs := make([]*stats.Recorder, simConnections)
	for c := range recs {
		recs[c] = stats.NewRecorder(time.Minute, origin)
	}
	for _, q := range reqs {
		recs[q.conn].Record(origin.Add(q.at), time.Duration(q.latency), q.failed)
	}
	for _, rec := range recs[1:] {
		recs[0].Merge(rec)
	}
	return recs[0].Histogram()
}

// fail applies the version's error bursts and outage: trouble on the
// server's side, which every connection of the version sees, so the Markov
// process steps through the version's requests in the order they start.
func (l *load) fail(r *rand.Rand, reqs []request) {
	if l.bursts != nil {
		slices.SortStableFunc(reqs, func(a, b request) int { return cmp.Compare(a.at, b.at) })
		b := l.bursts
		bad := r.Float64() < b.share
		for i := range reqs {
			reqs[i].failed = bad && r.Float64() < b.failBad
			// Leave the bad state after meanRun requests on average; enter
			// it at the rate that gives it its share.
			if bad {
				bad = r.Float64() >= 1/b.meanRun
			} else {
				bad = r.Float64() < b.share/(b.meanRun*(1-b.share))
			}
		}
	}
	if l.outage[1] > 0 {
		length := l.outage[0] + time.Duration(r.Float64()*float64(l.outage[1]-l.outage[0]))
		from := time.Duration(r.Float64() * float64(max(l.nominal()-length, 0)))
		for i := range reqs {
			if reqs[i].at >= from && reqs[i].at < from+length {
				reqs[i].failed = true
			}
		}
	}
}

// latency draws one latency in ns from the AR(1) state x.
func (l *load) latency(r *rand.Rand, x float64, candidate bool) float64 {
	if m := l.mixture; m != nil {
		slow := m.slowBase
		if candidate {
			slow = m.slowCand
		}
		d := m.fast
		if r.Float64() < slow {
			d = m.slow
		}
		return float64(d) * math.Exp(0.25*r.NormFloat64())
	}
	d := float64(simMedian) * math.Exp(x)
	if r.Float64() < simOutlierShare {
		d *= simOutlierScale
	}
	return d
}

// parallel runs reps repetitions of one over two goroutines, each with its
// own seeded source and a fixed share of the repetitions, so that results
// do not depend on scheduling, and sums what they count.
func parallel(reps int, seed uint64, one func(r *rand.Rand, counts []float64), width int) []float64 {
	const workers = 2
	sums := make([]float64, width)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(seed, uint64(w)))
			counts := make([]float64, width)
			for i := w; i < reps; i += workers {
				one(r, counts)
			}
			mu.Lock()
			for i, c := range counts {
				sums[i] += c
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	return sums
}

// se is the standard error of a proportion p estimated from reps runs.
func se(p float64, reps int) float64 {
	return math.Sqrt(p * (1 - p) / float64(reps))
}

// raceEnabled reports whether the test binary was built with -race, which
// makes the simulations about 20 times slower: they then run few
// repetitions and check only loose bounds.
var raceEnabled = stats.RaceEnabled
