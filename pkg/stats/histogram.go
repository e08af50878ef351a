// Package stats holds the math behind experiment results: latency histograms
// that merge exactly and stay small when stored, the comparison of a
// candidate version against a baseline, and the probability that each
// version is the best.
package stats

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
	"gonum.org/v1/gonum/stat/distuv"
)

// SignificantFigures is the precision of every latency histogram: values are
// kept within 0.1% of what was recorded.
const SignificantFigures = 3

// Recorder collects latencies for one load thread. It is not safe for
// concurrent use: give each thread its own and Merge them at the end, so that
// recording never takes a lock.
type Recorder struct {
	h       *hdr.Histogram
	dropped int64
	// blocks holds the closed blocks (and those merged in); run is the open
	// block of this recorder's own consecutive values.
	blocks Blocks
	run    struct{ sum, n int64 }
	// noBlocks is set when the sums could not be kept exactly (overflow);
	// the histogram then carries no blocks, as an old result does.
	noBlocks bool
}

// NewRecorder returns a Recorder that tracks latencies from 1ns up to at
// least highest. Choose highest above the request timeout so that a timed-out
// request is still recorded; values beyond the last bucket (which may reach
// somewhat above highest) are counted as dropped.
func NewRecorder(highest time.Duration) *Recorder {
	highest = max(highest, time.Millisecond)
	return &Recorder{h: hdr.New(1, int64(highest), SignificantFigures)}
}

// Record adds one latency. Besides the HDR bucket it adds the latency's log
// to the open block of consecutive values (see Blocks): a log, a rounding and
// a few integer additions, no allocation.
func (r *Recorder) Record(d time.Duration) {
	d = max(d, 1)
	if r.h.RecordValue(int64(d)) != nil {
		r.dropped++
	}
	q := logUnits(int64(d))
	r.blocks.Count++
	r.blocks.Sum += q
	r.blocks.SumSquares += q * q
	r.run.sum += q
	r.run.n++
	if r.run.n == BlockSize {
		r.blocks.closeBlock(r.run.sum, r.run.n)
		r.run.sum, r.run.n = 0, 0
	}
}

// Merge adds every value of other to r. Other's open block counts as a
// closed block of r (its values were consecutive in other's thread, not in
// r's), while r's own open block stays open.
func (r *Recorder) Merge(other *Recorder) {
	r.dropped += other.dropped + r.h.Merge(other.h)
	ob := other.closedBlocks()
	if other.noBlocks || !r.blocks.add(&ob) {
		r.noBlocks = true
	}
}

// closedBlocks returns r's sums with its open block closed.
func (r *Recorder) closedBlocks() Blocks {
	b := r.blocks
	if r.run.n > 0 {
		b.closeBlock(r.run.sum, r.run.n)
	}
	return b
}

// Count is the number of recorded latencies (drops excluded).
func (r *Recorder) Count() int64 { return r.h.TotalCount() }

// Dropped is the number of latencies too large to record.
func (r *Recorder) Dropped() int64 { return r.dropped }

// Histogram returns the stored form of what was recorded.
func (r *Recorder) Histogram() *Histogram {
	s := r.h.Export()
	out := &Histogram{
		Unit:    "ns",
		Highest: s.HighestTrackableValue,
		SigFigs: int(s.SignificantFigures),
		Dropped: r.dropped,
		Count:   r.h.TotalCount(),
		Sparse:  make([]int64, 0, 64),
	}
	// One pass over the counts gives the buckets and what hdr's Min, Max
	// and Mean would compute (each scans the counts again): the lowest
	// value of the first bucket, the highest of the last, and the mean of
	// bucket middles, summed in the same order so it is the same number.
	g := newGeometry(out.Highest, out.SigFigs)
	total := float64(out.Count)
	first, last := int64(-1), int64(-1)
	for i, c := range s.Counts {
		if c == 0 {
			continue
		}
		idx := int64(i)
		out.Sparse = append(out.Sparse, idx, c)
		if first < 0 {
			first = idx
		}
		last = idx
		out.ValueMean += float64(c) * float64(g.middle(idx)) / total
	}
	if first >= 0 {
		out.MinValue, _ = g.lowest(first)
		lo, size := g.lowest(last)
		out.MaxValue = lo + size - 1
	}
	if b := r.closedBlocks(); !r.noBlocks && b.Count > 0 {
		out.Blocks = &b
	}
	return out
}

// BlockSize is the number of consecutive values of one load thread in a
// block of Blocks. Small enough that a short run (100 requests over a few
// threads) still has several blocks, large enough that a burst of slow
// requests (a GC pause, a noisy neighbour) mostly falls within one block.
const BlockSize = 32

// logOrigin and logScale define the unit of the sums in Blocks: a latency of
// d nanoseconds counts as round((ln d - ln 1e6) * 1024). Subtracting ln(1ms)
// keeps typical values near 0, so the squares stay small and the ANOVA's
// differences of sums do not cancel; F does not depend on the shift or the
// scale. Rounding to 1/1024 (about 0.1%, the HDR precision) makes every sum
// an integer, so merging is exact and independent of the order.
const (
	logOrigin = 13.815510557964274 // ln(1e6): 1ms in ns
	logScale  = 1024
)

func logUnits(ns int64) int64 {
	return int64(math.Round((math.Log(float64(ns)) - logOrigin) * logScale))
}

// Blocks holds additive sums over blocks of BlockSize consecutive latencies
// of one load thread (a thread's last, partial block counts as a block),
// enough for a one-way ANOVA of log latency between blocks. Latencies close in
// time are correlated, which makes a test that assumes independent values
// overconfident; the ANOVA's F estimates by how much (see Inflation). Sums are
// in the integer unit described at logOrigin. Only sums are kept so that
// merging recorders and stored histograms stays exact.
type Blocks struct {
	// Count is the number of values N, dropped ones included.
	Count int64 `json:"count"`
	// Blocks is the number of blocks K.
	Blocks int64 `json:"blocks"`
	// Sum and SumSquares are the sums of the values and of their squares.
	Sum        int64 `json:"sum"`
	SumSquares int64 `json:"sumSquares"`
	// SumBlockSquares is the sum over blocks of S²/n, each term rounded to
	// an integer, where S is the block's sum and n its size.
	SumBlockSquares int64 `json:"sumBlockSquares"`
}

func (b *Blocks) closeBlock(sum, n int64) {
	b.Blocks++
	b.SumBlockSquares += (sum*sum + n/2) / n
}

// add adds o to b, reporting false (and leaving b unspecified) if a sum
// overflows.
func (b *Blocks) add(o *Blocks) bool {
	ok := true
	sum := func(x *int64, y int64) {
		r := *x + y // wraps on overflow, which the comparison detects
		if (y > 0 && r < *x) || (y < 0 && r > *x) {
			ok = false
		}
		*x = r
	}
	sum(&b.Count, o.Count)
	sum(&b.Blocks, o.Blocks)
	sum(&b.Sum, o.Sum)
	sum(&b.SumSquares, o.SumSquares)
	sum(&b.SumBlockSquares, o.SumBlockSquares)
	return ok
}

// validate checks what a hand-edited file could break; n is the number of
// values of the histogram (recorded and dropped).
func (b *Blocks) validate(n int64) error {
	switch {
	case b.Count < 0 || b.Blocks < 0 || b.SumSquares < 0 || b.SumBlockSquares < 0:
		return fmt.Errorf("histogram blocks: negative count or sum of squares in %+v", *b)
	case b.Count != n:
		return fmt.Errorf("histogram blocks: %d values, want the histogram's %d (recorded and dropped)", b.Count, n)
	case b.Blocks > b.Count:
		return fmt.Errorf("histogram blocks: %d blocks of %d values", b.Blocks, b.Count)
	case b.Count/BlockSize+min(b.Count%BlockSize, 1) > b.Blocks:
		return fmt.Errorf("histogram blocks: %d values do not fit in %d blocks of at most %d", b.Count, b.Blocks, BlockSize)
	}
	// Cauchy–Schwarz, with slack for the rounding of each block's term: a
	// block's S²/n is at most the sum of its squares, and (ΣS)²/N at most
	// the sum of the blocks' terms.
	sb, sxx, sx, nn := float64(b.SumBlockSquares), float64(b.SumSquares), float64(b.Sum), float64(b.Count)
	if sb > sxx+float64(b.Blocks) || sx*sx > nn*(sb+float64(b.Blocks))*(1+1e-9) {
		return fmt.Errorf("histogram blocks: sums %+v are not those of any values", *b)
	}
	return nil
}

// anova returns the F ratio of the between-block to the within-block mean
// square of log latency and its degrees of freedom; ok is false when F is
// undefined (fewer than two blocks, no value left within blocks, or no
// variation within blocks).
func (b *Blocks) anova() (f, d1, d2 float64, ok bool) {
	if b == nil || b.Blocks < 2 || b.Count <= b.Blocks {
		return 0, 0, 0, false
	}
	n, k := float64(b.Count), float64(b.Blocks)
	sx := float64(b.Sum)
	ssBetween := float64(b.SumBlockSquares) - sx*sx/n
	ssWithin := float64(b.SumSquares) - float64(b.SumBlockSquares)
	if ssWithin <= 0 {
		return 0, 0, 0, false
	}
	d1, d2 = k-1, n-k
	return max(ssBetween, 0) / d1 / (ssWithin / d2), d1, d2, true
}

// inflationLevel is the level of the F pre-test in Inflation.
const inflationLevel = 0.99

// Inflation is the factor by which correlation between consecutive latencies
// inflates the variance of a statistic that assumes independence: the
// between-block F of h's Blocks when an F-test finds it above 1 at the 0.99
// level, else 1. The pre-test keeps the inflation off for independent data
// (it applies by chance to 1% of them), so that a test does not lose power or
// become conservative without cause. F is capped at the mean block size, the
// design effect of blocks whose values are all alike. A histogram without
// blocks (an older result) gets 1.
func Inflation(h *Histogram) float64 {
	if h == nil {
		return 1
	}
	f, d1, d2, ok := h.Blocks.anova()
	if !ok {
		// Values constant within blocks but not across them are as
		// correlated as can be.
		if b := h.Blocks; b != nil && b.Blocks >= 2 && float64(b.SumBlockSquares)*float64(b.Count) > float64(b.Sum)*float64(b.Sum)+float64(b.Count) {
			return float64(b.Count) / float64(b.Blocks)
		}
		return 1
	}
	if !(f > 1) || (distuv.F{D1: d1, D2: d2}).CDF(f) <= inflationLevel {
		return 1
	}
	return min(f, float64(h.Blocks.Count)/float64(h.Blocks.Blocks))
}

// Histogram is the stored form of a latency histogram: HDR buckets with their
// counts listed sparsely as index, count pairs, so that an experiment result
// stays small enough for a Kubernetes Secret and can be merged or queried again
// without losing precision.
type Histogram struct {
	// Unit of the recorded values; always "ns".
	Unit string `json:"unit"`
	// Highest is the highest trackable value.
	Highest int64 `json:"highest"`
	// SigFigs is the number of significant decimal digits kept.
	SigFigs int `json:"sigFigs"`
	// Count is the number of recorded values.
	Count int64 `json:"count"`
	// Dropped is the number of values above Highest, not recorded.
	Dropped int64 `json:"dropped,omitempty"`
	// MinValue, MaxValue and ValueMean summarise the recorded values.
	MinValue  int64   `json:"min"`
	MaxValue  int64   `json:"max"`
	ValueMean float64 `json:"mean"`
	// Sparse holds pairs of bucket index and count, for non-empty buckets.
	Sparse []int64 `json:"buckets"`
	// Blocks summarises the correlation of consecutive latencies; nil in
	// results written before it existed, or when a merge mixed such
	// results with newer ones.
	Blocks *Blocks `json:"blocks,omitempty"`
}

// Bar is one non-empty bucket of a histogram: values in [From, To] were
// counted Count times.
type Bar struct {
	From, To time.Duration
	Count    int64
}

// Summary holds the usual statistics of a latency distribution.
type Summary struct {
	Count       int64
	Min, Max    time.Duration
	Mean, Stdev time.Duration
	// Percentiles maps a percentile (such as 99.9) to its value.
	Percentiles map[float64]time.Duration
}

// geometry is the layout of HDR counts for a lowest value of 1, as
// hdrhistogram-go lays them out (TestGeometryMatchesHDR checks it): index i
// of the counts holds the values of one bucket, and buckets double in width
// every half sub-bucket count of indices. It lets a stored histogram be
// read from its sparse pairs without building the dense counts.
type geometry struct {
	halfMag uint  // log2 of the half sub-bucket count
	width   int64 // number of counts
}

// newGeometry returns the geometry of New(1, highest, sigFigs), for highest
// of at least 2 and sigFigs in 1..5.
func newGeometry(highest int64, sigFigs int) geometry {
	// Unit resolution up to 2·10^sigFigs, rounded up to a power of 2.
	mag := uint(math.Ceil(math.Log2(2 * math.Pow10(sigFigs))))
	buckets := int64(1)
	for untrackable := int64(1) << mag; untrackable <= highest; untrackable <<= 1 {
		buckets++
		if untrackable > math.MaxInt64/2 {
			break
		}
	}
	return geometry{halfMag: mag - 1, width: (buckets + 1) << (mag - 1)}
}

// lowest and size give the values of counts index i: [lowest, lowest+size).
func (g geometry) lowest(i int64) (lowest, size int64) {
	b := max((i>>g.halfMag)-1, 0)
	sub := i - ((b + 1) << g.halfMag) + 1<<g.halfMag
	return sub << b, 1 << b
}

// middle is the value that stands for every value of counts index i: the
// middle of its range, as HDR's median-equivalent value.
func (g geometry) middle(i int64) int64 {
	lo, size := g.lowest(i)
	return lo + size>>1
}

// indexCount is one non-empty bucket of a stored histogram.
type indexCount struct{ index, count int64 }

// sparse checks the stored form as Load does and returns its non-empty
// buckets in increasing order (a hand-edited file may repeat or reorder
// indices), with the total count.
func (h *Histogram) sparse() ([]indexCount, int64, error) {
	if h == nil {
		return nil, 0, errors.New("no histogram")
	}
	if len(h.Sparse)%2 != 0 {
		return nil, 0, fmt.Errorf("histogram buckets: want index, count pairs, got %d numbers", len(h.Sparse))
	}
	if h.Highest < 2 || h.SigFigs < 1 || h.SigFigs > 5 {
		return nil, 0, fmt.Errorf("histogram geometry: highest %d, sigFigs %d out of range", h.Highest, h.SigFigs)
	}
	width := newGeometry(h.Highest, h.SigFigs).width
	out := make([]indexCount, 0, len(h.Sparse)/2)
	var total int64
	sorted := true
	for i := 0; i < len(h.Sparse); i += 2 {
		idx, c := h.Sparse[i], h.Sparse[i+1]
		if idx < 0 || idx >= width || c < 0 {
			return nil, 0, fmt.Errorf("histogram bucket %d: index %d count %d out of range", i/2, idx, c)
		}
		if c > math.MaxInt64-total {
			return nil, 0, fmt.Errorf("histogram: counts sum past MaxInt64 at bucket %d", i/2)
		}
		total += c
		if c == 0 {
			continue
		}
		if n := len(out); n > 0 && out[n-1].index >= idx {
			sorted = false
		}
		out = append(out, indexCount{idx, c})
	}
	if !sorted {
		slices.SortStableFunc(out, func(a, b indexCount) int { return cmp.Compare(a.index, b.index) })
		merged := out[:0]
		for _, p := range out {
			if n := len(merged); n > 0 && merged[n-1].index == p.index {
				merged[n-1].count += p.count
				continue
			}
			merged = append(merged, p)
		}
		out = merged
	}
	if h.Blocks != nil {
		if h.Dropped < 0 || total > math.MaxInt64-h.Dropped {
			return nil, 0, fmt.Errorf("histogram: dropped %d out of range", h.Dropped)
		}
		if err := h.Blocks.validate(total + h.Dropped); err != nil {
			return nil, 0, err
		}
	}
	return out, total, nil
}

// Load rebuilds the in-memory histogram, checking that the stored form is
// consistent (it may come from a file that a person edited).
func (h *Histogram) Load() (*hdr.Histogram, error) {
	pairs, _, err := h.sparse()
	if err != nil {
		return nil, err
	}
	// sparse checked every index against the geometry's width, which is
	// that of these counts (TestGeometryMatchesHDR): a stored index cannot
	// make Load allocate more than the geometry needs.
	snap := hdr.New(1, h.Highest, h.SigFigs).Export()
	for _, p := range pairs {
		snap.Counts[p.index] += p.count
	}
	if err := snap.Validate(); err != nil {
		return nil, fmt.Errorf("histogram: %w", err)
	}
	return hdr.Import(snap), nil
}

// Summarize computes count, extremes, mean, standard deviation and the given
// percentiles.
func (h *Histogram) Summarize(percentiles []float64) (Summary, error) {
	hh, err := h.Load()
	if err != nil {
		return Summary{}, err
	}
	s := Summary{
		Count:       hh.TotalCount(),
		Min:         time.Duration(hh.Min()),
		Max:         time.Duration(hh.Max()),
		Mean:        time.Duration(math.Round(hh.Mean())),
		Stdev:       time.Duration(math.Round(hh.StdDev())),
		Percentiles: make(map[float64]time.Duration, len(percentiles)),
	}
	for _, p := range percentiles {
		s.Percentiles[p] = time.Duration(hh.ValueAtPercentile(p))
	}
	return s, nil
}

// Bars lists the non-empty buckets in order of value.
func (h *Histogram) Bars() ([]Bar, error) {
	hh, err := h.Load()
	if err != nil {
		return nil, err
	}
	var bars []Bar
	for _, b := range hh.Distribution() {
		if b.Count > 0 {
			bars = append(bars, Bar{From: time.Duration(b.From), To: time.Duration(b.To), Count: b.Count})
		}
	}
	return bars, nil
}

// MergeHistograms adds stored histograms together (for example the endpoints
// of one version).
func MergeHistograms(hs ...*Histogram) (*Histogram, error) {
	if len(hs) == 0 {
		return nil, errors.New("merge: no histograms")
	}
	var highest int64
	for i, h := range hs {
		if h == nil {
			return nil, fmt.Errorf("merge: histogram %d: no histogram", i)
		}
		highest = max(highest, h.Highest)
	}
	total := &Recorder{h: hdr.New(1, highest, SignificantFigures)}
	for _, h := range hs {
		hh, err := h.Load()
		if err != nil {
			return nil, err
		}
		total.dropped += h.Dropped + total.h.Merge(hh)
		// Blocks that do not cover every value would describe only part
		// of the data: keep them only if all inputs have them.
		switch {
		case h.Blocks != nil:
			if !total.blocks.add(h.Blocks) {
				total.noBlocks = true
			}
		case hh.TotalCount()+h.Dropped > 0:
			total.noBlocks = true
		}
	}
	return total.Histogram(), nil
}
