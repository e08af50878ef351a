package stats

import (
	"errors"
	"math"
)

var errNoLatencies = errors.New("no latencies recorded")

// Batches is the most groups of consecutive time blocks whose spread gives a
// comparison's variance. Fewer, longer batches are less fooled by latencies
// correlated over longer spans; more give the variance more degrees of
// freedom. The acceptance simulations (make sim) chose it.
const Batches = 10

// cell is what one version measured in one block on one measure: the
// number of requests, the sum of their values and of their squares.
type cell struct{ n, s, q float64 }

func (c *cell) add(o cell) { c.n, c.s, c.q = c.n+o.n, c.s+o.s, c.q+o.q }

// within is the sum of squares about the cell's own mean.
func (c cell) within() float64 {
	if c.n == 0 {
		return 0
	}
	return max(c.q-c.s*c.s/c.n, 0)
}

// measure reads one value per request from a block: the cell of a measure.
type measure func(b *Block) cell

// logLatency is log latency, in natural units counted from 1ms.
func logLatency(b *Block) cell {
	return cell{float64(b.Count), float64(b.LogSum) / logScale, float64(b.LogSquares) / (logScale * logScale)}
}

// millis is latency in milliseconds.
func millis(b *Block) cell { return cell{float64(b.Count), b.Millis, b.MillisSquares} }

// errorsOf is 1 for a failed request, 0 otherwise.
func errorsOf(b *Block) cell {
	return cell{float64(b.Count), float64(b.Errors), float64(b.Errors)}
}

// tailAbove is 1 for a request in tail bucket k or above, 0 otherwise.
func tailAbove(k int) measure {
	return func(b *Block) cell {
		var above float64
		for j := 0; j < len(b.Tail); j += 2 {
			if int(b.Tail[j]) >= k {
				above += float64(b.Tail[j+1])
			}
		}
		return cell{float64(b.Count), above, above}
	}
}

// estimate is the effect of a comparison on its own scale, with what its
// variance rests on.
type estimate struct {
	// diff is the candidate's mean minus the baseline's.
	diff float64
	// variance of diff (see combine), with df its degrees of freedom (+Inf
	// for iid).
	variance, iid, df float64
	// base and cand total what was compared.
	base, cand cell
	// paired is the number of blocks where both versions ran (0 when the
	// series could not be aligned); batches the groups the variance used.
	paired, batches int
}

// cellsAt lists a series' blocks on one measure at a width of at least its
// own: blocks merge in groups of width/s.Width.
func cellsAt(s *Series, width int64, m measure) []cell {
	step := max(int(width/int64(s.Width)), 1)
	out := make([]cell, (len(s.Blocks)+step-1)/step)
	for i := range s.Blocks {
		out[i/step].add(m(&s.Blocks[i]))
	}
	return out
}

// contrast estimates the candidate's mean minus the baseline's on a measure.
//
// When both series share their start, blocks line up (the finer series is
// coarsened to the other's width) and each block where both versions ran
// gives a difference d_b; the estimate is their average weighted by
// n_b·n_c/(n_b+n_c), the weight that independent requests would give. A
// slowdown that both versions see in a block cancels in d_b, and a version
// that ran longer (fixed counts at full speed) is compared only while the
// other ran too. Blocks where one version did not run are left out.
//
// The variance comes from that of independent requests (within-block
// variances; for rates, each block's pooled rate), the spread of the
// weighted differences across batches of consecutive blocks (a
// cluster-robust estimate with batches as clusters) and the spread of the
// connections (see combine).
//
// Series that do not line up (different starts) are compared unpaired: each
// version's mean and batch variance on its own.
//
// pooledRate takes the variance of independent requests from the rate of
// both versions together, as a two-proportion test does under equal rates.
func contrast(bs, cs *Series, m measure, pooledRate bool) estimate {
	if !bs.Start.Equal(cs.Start) {
		return unpaired(bs, cs, m, pooledRate)
	}
	width := max(int64(bs.Width), int64(cs.Width))
	bc, cc := cellsAt(bs, width, m), cellsAt(cs, width, m)
	type pair struct {
		b, c cell
		w, d float64
	}
	var pairs []pair
	var e estimate
	var sw, swd float64
	for i := range min(len(bc), len(cc)) {
		b, c := bc[i], cc[i]
		if b.n == 0 || c.n == 0 {
			continue
		}
		p := pair{b: b, c: c, w: b.n * c.n / (b.n + c.n), d: c.s/c.n - b.s/b.n}
		pairs = append(pairs, p)
		sw += p.w
		swd += p.w * p.d
		e.base.add(b)
		e.cand.add(c)
	}
	if len(pairs) == 0 {
		return unpaired(bs, cs, m, pooledRate)
	}
	e.paired = len(pairs)
	e.diff = swd / sw

	// The variance of independent requests. For rates, each block's own
	// pooled rate: a rate that both versions see rise in some blocks (a
	// shared slowdown pushes requests above a tail threshold) makes the
	// rate of the whole run vary more than the requests of any block do.
	// For values, one variance per version within blocks.
	if pooledRate {
		for _, p := range pairs {
			m := p.b.n + p.c.n
			rate := (p.b.s + p.c.s) / m
			e.iid += p.w * p.w * rate * (1 - rate) * m / (m - 1) * (1/p.b.n + 1/p.c.n)
		}
	} else {
		var wb, wc float64
		for _, p := range pairs {
			wb += p.b.within()
			wc += p.c.within()
		}
		unitB := unitVariance(wb, e.base, len(pairs))
		unitC := unitVariance(wc, e.cand, len(pairs))
		for _, p := range pairs {
			e.iid += p.w * p.w * (unitB/p.b.n + unitC/p.c.n)
		}
	}
	e.iid /= sw * sw

	g := min(Batches, len(pairs))
	var cr float64
	if g >= 2 {
		u := make([]float64, g)
		for i, p := range pairs {
			u[i*g/len(pairs)] += p.w * (p.d - e.diff)
		}
		for _, x := range u {
			cr += x * x
		}
		cr *= float64(g) / float64(g-1) / (sw * sw)
	}
	connV, connDF, connOK := connectionVariance(bs, cs, m)
	e.combine(cr, g, connV, connDF, connOK)
	return e
}

// unitVariance is the variance of one value from the sum of squares within k
// blocks holding t; with no degree of freedom left within blocks, the
// variance of all the values.
func unitVariance(withinSS float64, t cell, k int) float64 {
	if t.n-float64(k) >= 1 {
		return withinSS / (t.n - float64(k))
	}
	if t.n >= 2 {
		return t.within() / (t.n - 1)
	}
	return 0
}

// connectionVariance is the variance of the difference of the versions'
// means from how their connections spread, connections taken as
// independent clusters, with Welch's degrees of freedom; ok is false unless
// both versions have two connections or more. Each connection is measured
// against its own version's block means (block fixed effects), so that a
// slowdown every connection sees, in some blocks, is no difference between
// them. Measuring against those means takes, from independent requests,
// the share H/n of the spread, H = Σ_b Σ_i n_ib²/n_b (n_ib: connection i's
// requests in block b); dividing by n − H instead of n gives, for
// independent requests of equal variance, the variance of each version's
// mean over its own blocks exactly, however the requests fall into blocks
// (a CR1 correction, k/(k−1)·(n−1)/(n−B), ran 15–33% high when paced
// connections share many small blocks).
func connectionVariance(bs, cs *Series, m measure) (v, df float64, ok bool) {
	var dfDenominator float64
	for _, s := range []*Series{bs, cs} {
		k := len(s.Connections)
		if k < 2 {
			return 0, 0, false
		}
		means := make([]float64, len(s.Blocks))
		counts := make([]float64, len(s.Blocks))
		var n float64
		for b := range s.Blocks {
			if c := m(&s.Blocks[b]); c.n > 0 {
				means[b], counts[b] = c.s/c.n, c.n
				n += c.n
			}
		}
		var ss, h float64
		for i := range s.Connections {
			c := &s.Connections[i]
			r := m(&c.Block).s
			for b, count := range c.PerBlock {
				if b >= len(counts) || counts[b] == 0 {
					continue
				}
				r -= float64(count) * means[b]
				h += float64(count) * float64(count) / counts[b]
			}
			ss += r * r
		}
		if n-h < 1 {
			return 0, 0, false
		}
		vs := ss / (n - h) / n
		v += vs
		dfDenominator += vs * vs / float64(k-1)
	}
	df = math.Inf(1)
	if dfDenominator > 0 {
		df = v * v / dfDenominator
	}
	return v, df, true
}

// combine sets e's variance from three estimates: iid (the variance of
// independent requests, known), by batches of time blocks (cr on g
// batches: errors in bursts, slow spells of a version) and by connections
// (latencies correlated along one kept connection). Each of the two
// dependence-robust estimates is first lowered by half its own standard
// error under independence (iid·√(2/df)), then the variance is the largest
// of the three. Taking the largest of noisy estimates as they are runs
// high when requests are independent (by about a third in make sim, false
// alarms as low as 0.019 at 95%); lowering them first takes most of that back
// while correlation that a robust estimate sees clearly still raises the
// variance. No pre-test switches an estimate on or off.
//
// Its degrees of freedom treat the variance as iid plus an excess
// estimated on the winning estimate's own degrees of freedom: when an
// estimate barely passes iid the quantile stays close to normal, when it
// dominates it tends to its own Student's t. This is a heuristic (the
// estimate's noise scales with all of it, not only the excess), and the
// simulations of make sim check it at design effects from about 1.2 to 19.
func (e *estimate) combine(cr float64, g int, connV, connDF float64, connOK bool) {
	iid := e.iid
	e.variance, e.df, e.batches = iid, math.Inf(1), 0
	raise := func(v, df float64) {
		v -= robustShrink * iid * math.Sqrt(2/df)
		if v > e.variance {
			excess := v - iid
			e.variance, e.df = v, df*(v/excess)*(v/excess)
		}
	}
	if g >= 2 {
		e.batches = g
		raise(cr, float64(g-1))
	}
	if connOK {
		raise(connV, connDF)
	}
	if e.df > maxFiniteDF {
		e.df = math.Inf(1) // Student's t is normal there; its quantile is not computable
	}
}

// maxFiniteDF is the most degrees of freedom kept as a number: an excess
// barely above iid gives a heuristic df of any size, and gonum's Student's t
// quantile fails far above this.
const maxFiniteDF = 1e6

// robustShrink is how many of its standard errors under independence a
// dependence-robust variance estimate is lowered by before the largest is
// taken: the make sim acceptance chose it, trading the false alarms of mild
// correlation (phi 0.2–0.5, which the estimates see only in part) against
// those of independent requests.
const robustShrink = 0.5

// unpaired compares two series that do not line up: the difference of
// their means, each with its own batch variance.
func unpaired(bs, cs *Series, m measure, pooledRate bool) estimate {
	var e estimate
	bc, cc := cellsAt(bs, int64(bs.Width), m), cellsAt(cs, int64(cs.Width), m)
	for _, c := range bc {
		e.base.add(c)
	}
	for _, c := range cc {
		e.cand.add(c)
	}
	if e.base.n == 0 || e.cand.n == 0 {
		return e
	}
	e.diff = e.cand.s/e.cand.n - e.base.s/e.base.n
	var pooled float64
	if pooledRate {
		p := (e.base.s + e.cand.s) / (e.base.n + e.cand.n)
		pooled = p * (1 - p)
	}
	var cr, iid float64
	g := math.MaxInt
	for _, side := range []struct {
		cells []cell
		t     cell
	}{{bc, e.base}, {cc, e.cand}} {
		mean := side.t.s / side.t.n
		var ss float64
		var used []cell
		for _, c := range side.cells {
			if c.n > 0 {
				ss += c.within()
				used = append(used, c)
			}
		}
		unit := unitVariance(ss, side.t, len(used))
		if pooledRate {
			unit = pooled
		}
		iid += unit / side.t.n
		k := min(Batches, len(used))
		g = min(g, k)
		if k >= 2 {
			u := make([]float64, k)
			for i, c := range used {
				u[i*k/len(used)] += c.s - mean*c.n
			}
			var s float64
			for _, x := range u {
				s += x * x
			}
			cr += s * float64(k) / float64(k-1) / (side.t.n * side.t.n)
		}
	}
	if g < 2 {
		cr = 0
	}
	e.iid = iid
	connV, connDF, connOK := connectionVariance(bs, cs, m)
	e.combine(cr, g, connV, connDF, connOK)
	return e
}

// seriesOf returns a histogram's series, or for a histogram without one (an
// older result) a single block built from its buckets, each value at its
// bucket's middle, with no errors.
func seriesOf(h *Histogram) (*Series, error) {
	pairs, total, err := h.sparse()
	if err != nil {
		return nil, err
	}
	if total == 0 {
		return nil, errNoLatencies
	}
	if h.Series != nil {
		return h.Series, nil
	}
	g := newGeometry(h.Highest, h.SigFigs)
	var b Block
	tail := make(map[int]int64)
	for _, p := range pairs {
		v := max(g.middle(p.index), 1) // index 0 holds only 0, never recorded
		ln := math.Log(float64(v))
		q := logUnits(ln)
		b.Count += p.count
		b.LogSum += q * p.count
		b.LogSquares += q * q * p.count
		ms := float64(v) / 1e6
		b.Millis += ms * float64(p.count)
		b.MillisSquares += ms * ms * float64(p.count)
		tail[tailBucket(ln)] += p.count
	}
	for k := range tailBuckets {
		if c := tail[k]; c > 0 {
			b.Tail = append(b.Tail, int64(k), c)
		}
	}
	return &Series{Width: FirstBlockWidth, Blocks: []Block{b}}, nil
}
