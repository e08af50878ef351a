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
	series  seriesRecorder
	// noSeries is set when a merged histogram had no series, or one with
	// another start: the series would then describe only part of the data.
	noSeries bool
}

// NewRecorder returns a Recorder that tracks latencies from 1ns up to at
// least highest, in time blocks from start (see Series). Choose highest above
// the request timeout so that a timed-out request is still recorded; values
// beyond the last bucket (which may reach somewhat above highest) are counted
// as dropped. Give every recorder of one task the same start, the start of
// its load, so that versions can be compared block by block.
func NewRecorder(highest time.Duration, start time.Time) *Recorder {
	highest = max(highest, time.Millisecond)
	return &Recorder{h: hdr.New(1, int64(highest), SignificantFigures), series: newSeriesRecorder(start)}
}

// Record adds one request that started at at, took d and failed or not.
// Besides the HDR bucket it adds the request to its time block: a log, a
// rounding and a few additions, no allocation once the block exists.
func (r *Recorder) Record(at time.Time, d time.Duration, failed bool) {
	d = max(d, 1)
	if r.h.RecordValue(int64(d)) != nil {
		r.dropped++
	}
	ln := math.Log(float64(d))
	r.series.record(at, d, logUnits(ln), ln, failed)
}

// Merge adds every value of other to r.
func (r *Recorder) Merge(other *Recorder) {
	r.dropped += other.dropped + mergeHDR(r.h, other.h)
	if other.noSeries || !other.series.start.Equal(r.series.start) {
		r.noSeries = true
		return
	}
	r.series.merge(&other.series)
}

// mergeHDR adds from's counts to into and returns how many values did not
// fit. hdr's own Merge walks every index of the counts (some 27,000 at 3
// significant figures) with the work of a lookup at each; a load's histogram
// has a hundred or so non-empty buckets, which this adds one call each.
func mergeHDR(into, from *hdr.Histogram) (dropped int64) {
	s := from.Export()
	g := newGeometry(s.HighestTrackableValue, int(s.SignificantFigures))
	if s.LowestTrackableValue != 1 || int64(len(s.Counts)) != g.width {
		return into.Merge(from)
	}
	for i, c := range s.Counts {
		if c == 0 {
			continue
		}
		v, _ := g.lowest(int64(i))
		if into.RecordValues(v, c) != nil {
			dropped += c
		}
	}
	return dropped
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
	if !r.noSeries && len(r.series.blocks) > 0 {
		out.Series = r.series.series()
	}
	return out
}

// logOrigin and logScale define the unit of the log sums in a Series: a
// latency of d nanoseconds counts as round((ln d - ln 1e6) * 1024).
// Subtracting ln(1ms) keeps typical values near 0, so the squares stay small
// and differences of sums do not cancel. Rounding to 1/1024 (about 0.1%, the
// HDR precision) makes every sum an integer, so merging is exact and
// independent of the order.
const (
	logOrigin = 13.815510557964274 // ln(1e6): 1ms in ns
	logScale  = 1024
)

func logUnits(lnNs float64) int64 {
	return int64(math.Round((lnNs - logOrigin) * logScale))
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
	// Series holds the same requests in time blocks, for comparisons that
	// pair versions block by block; nil in results written before it
	// existed, or when a merge mixed loads with different starts.
	Series *Series `json:"series,omitempty"`
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
	if h.Series != nil {
		if err := h.Series.validate(); err != nil {
			return nil, 0, err
		}
		if h.Dropped < 0 || total > math.MaxInt64-h.Dropped || h.Series.total() != total+h.Dropped {
			return nil, 0, fmt.Errorf("histogram series: %d requests, want the histogram's %d recorded and %d dropped", h.Series.total(), total, h.Dropped)
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
	started := false
	for _, h := range hs {
		hh, err := h.Load()
		if err != nil {
			return nil, err
		}
		total.dropped += h.Dropped + mergeHDR(total.h, hh)
		if h.Series == nil {
			total.noSeries = total.noSeries || hh.TotalCount()+h.Dropped > 0
			continue
		}
		part, err := h.Series.recorder()
		if err != nil {
			return nil, err
		}
		switch {
		case !started:
			total.series, started = part, true
		case !part.start.Equal(total.series.start):
			total.noSeries = true
		default:
			total.series.merge(&part)
		}
	}
	return total.Histogram(), nil
}
