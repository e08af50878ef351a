// Package stats holds the math behind experiment results: latency histograms
// that merge exactly and stay small when stored.
package stats

import (
	"errors"
	"fmt"
	"math"
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
}

// NewRecorder returns a Recorder that tracks latencies from 1ns up to at
// least highest. Choose highest above the request timeout so that a timed-out
// request is still recorded; values beyond the last bucket (which may reach
// somewhat above highest) are counted as dropped.
func NewRecorder(highest time.Duration) *Recorder {
	if highest < time.Millisecond {
		highest = time.Millisecond
	}
	return &Recorder{h: hdr.New(1, int64(highest), SignificantFigures)}
}

// Record adds one latency.
func (r *Recorder) Record(d time.Duration) {
	if d < 1 {
		d = 1
	}
	if r.h.RecordValue(int64(d)) != nil {
		r.dropped++
	}
}

// Merge adds every value of other to r.
func (r *Recorder) Merge(other *Recorder) {
	r.dropped += other.dropped + r.h.Merge(other.h)
}

// Count is the number of recorded latencies (drops excluded).
func (r *Recorder) Count() int64 { return r.h.TotalCount() }

// Dropped is the number of latencies too large to record.
func (r *Recorder) Dropped() int64 { return r.dropped }

// Histogram returns the stored form of what was recorded.
func (r *Recorder) Histogram() *Histogram {
	s := r.h.Export()
	out := &Histogram{
		Unit:      "ns",
		Highest:   s.HighestTrackableValue,
		SigFigs:   int(s.SignificantFigures),
		Dropped:   r.dropped,
		Count:     r.h.TotalCount(),
		Sparse:    make([]int64, 0, 64),
		MinValue:  r.h.Min(),
		MaxValue:  r.h.Max(),
		ValueMean: r.h.Mean(),
	}
	for i, c := range s.Counts {
		if c != 0 {
			out.Sparse = append(out.Sparse, int64(i), c)
		}
	}
	return out
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

// Load rebuilds the in-memory histogram, checking that the stored form is
// consistent (it may come from a file that a person edited).
func (h *Histogram) Load() (*hdr.Histogram, error) {
	if h == nil {
		return nil, errors.New("no histogram")
	}
	if len(h.Sparse)%2 != 0 {
		return nil, fmt.Errorf("histogram buckets: want index, count pairs, got %d numbers", len(h.Sparse))
	}
	if h.Highest < 2 || h.SigFigs < 1 || h.SigFigs > 5 {
		return nil, fmt.Errorf("histogram geometry: highest %d, sigFigs %d out of range", h.Highest, h.SigFigs)
	}
	// An empty snapshot of the exact geometry: its Counts has one entry per
	// bucket, so an index is checked against the real number of buckets and
	// a stored index cannot make Load allocate more than the geometry needs.
	snap := hdr.New(1, h.Highest, h.SigFigs).Export()
	width := int64(len(snap.Counts))
	for i := 0; i < len(h.Sparse); i += 2 {
		idx, c := h.Sparse[i], h.Sparse[i+1]
		if idx < 0 || idx >= width || c < 0 {
			return nil, fmt.Errorf("histogram bucket %d: index %d count %d out of range", i/2, idx, c)
		}
		snap.Counts[idx] += c
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
	}
	return total.Histogram(), nil
}
