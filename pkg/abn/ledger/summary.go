package ledger

import (
	"math"
	"time"
)

// Summary is what a ledger knows of one application.
type Summary struct {
	App string `json:"app"`
	// BucketWidth is the width of every bucket below.
	BucketWidth time.Duration `json:"bucketWidth"`
	// Versions by name.
	Versions map[string]*VersionSummary `json:"versions"`
}

// Totals is the summary without its per-bucket parts and histograms, which
// grow with the test's length: what is left costs O(versions × metrics).
func (s Summary) Totals() Summary {
	out := s
	out.Versions = make(map[string]*VersionSummary, len(s.Versions))
	for name, v := range s.Versions {
		vt := &VersionSummary{Users: v.Users, Metrics: make(map[string]*MetricSummary, len(v.Metrics))}
		for m, ms := range v.Metrics {
			vt.Metrics[m] = &MetricSummary{Transactions: ms.Transactions, Users: ms.Users}
		}
		out.Versions[name] = vt
	}
	return out
}

// VersionSummary is what a ledger knows of one version of an application.
type VersionSummary struct {
	// Users is the number of users exposed to the version: assigned to it
	// by Lookup, or crediting it with a write.
	Users int64 `json:"users"`
	// Cohorts count the users by the bucket of their first exposure.
	Cohorts []Cohort `json:"cohorts,omitempty"`
	// Metrics by name.
	Metrics map[string]*MetricSummary `json:"metrics,omitempty"`
}

// Cohort is the number of users first exposed in one bucket.
type Cohort struct {
	Start time.Time `json:"start"`
	Users int64     `json:"users"`
}

// MetricSummary summarizes one metric of one version, over writes
// (transactions) and over users; users are the independent unit of a
// comparison, and the share of users with the metric (Users.Count over
// VersionSummary.Users) is its conversion rate.
type MetricSummary struct {
	// Transactions: one value per write.
	Transactions Transactions `json:"transactions"`
	// Histogram of the writes' values.
	Histogram Histogram `json:"histogram"`
	// Users: one value per user with the metric, the sum of the user's
	// writes.
	Users Moments `json:"users"`
	// Buckets in time order: writes by the bucket they were measured in,
	// users by the bucket of their first exposure (their cohort), so that
	// users stay independent units within and across buckets.
	Buckets []MetricBucket `json:"buckets,omitempty"`
}

// MetricBucket is one bucket of a metric's summary.
type MetricBucket struct {
	Start        time.Time `json:"start"`
	Transactions Moments   `json:"transactions"`
	Users        Moments   `json:"users"`
}

// Moments are the count, sum and sum of squares of some values.
type Moments struct {
	Count      int64   `json:"count"`
	Sum        float64 `json:"sum"`
	SumSquares float64 `json:"sumSquares"`
}

// Mean of the values; 0 for none.
func (m Moments) Mean() float64 {
	if m.Count == 0 {
		return 0
	}
	return m.Sum / float64(m.Count)
}

// SD is the sample standard deviation of the values; 0 for fewer than two.
func (m Moments) SD() float64 {
	if m.Count < 2 {
		return 0
	}
	n := float64(m.Count)
	return math.Sqrt(max(m.SumSquares-m.Sum*m.Sum/n, 0) / (n - 1))
}

// Add counts one more value.
func (m *Moments) Add(v float64) {
	m.Count++
	m.Sum += v
	// float64() forces rounding of the product: Go may otherwise fuse a
	// multiply-add (arm64), and the Redis ledger, whose Lua does not, would
	// differ in the last bit.
	m.SumSquares += float64(v * v)
}

// Replace changes one counted value from old to new, as a user's sum
// changes with each write; first counts the value (old is then 0).
func (m *Moments) Replace(old, new float64, first bool) {
	if first {
		m.Count++
	}
	m.Sum += new - old
	m.SumSquares += float64(new*new) - float64(old*old)
}

// Transactions are the moments of a metric's writes with their extremes.
type Transactions struct {
	Moments
	Min float64 `json:"min"`
	Max float64 `json:"max"`
}

// Add counts one more write.
func (t *Transactions) Add(v float64) {
	if t.Count == 0 || v < t.Min {
		t.Min = v
	}
	if t.Count == 0 || v > t.Max {
		t.Max = v
	}
	t.Moments.Add(v)
}

// HistogramGamma is the ratio of a histogram bucket's upper to its lower
// bound: any value is known within 1% of its magnitude.
const HistogramGamma = 1.02

// HistogramZero is the magnitude below which a value counts as zero.
const HistogramZero = 1e-9

// Histogram is a mergeable log-bucketed histogram of values of either
// sign: bucket i of a sign holds magnitudes in (γ^(i-1), γ^i].
type Histogram struct {
	Positive map[int32]int64 `json:"positive,omitempty"`
	Negative map[int32]int64 `json:"negative,omitempty"`
	Zero     int64           `json:"zero,omitempty"`
}

// HistogramBucket is the bucket index of a magnitude above HistogramZero.
func HistogramBucket(magnitude float64) int32 {
	return int32(math.Ceil(math.Log(magnitude) / math.Log(HistogramGamma)))
}

// Add counts one value.
func (h *Histogram) Add(v float64) {
	switch a := math.Abs(v); {
	case a < HistogramZero:
		h.Zero++
	case v > 0:
		if h.Positive == nil {
			h.Positive = map[int32]int64{}
		}
		h.Positive[HistogramBucket(a)]++
	default:
		if h.Negative == nil {
			h.Negative = map[int32]int64{}
		}
		h.Negative[HistogramBucket(a)]++
	}
}

// Merge adds o's counts to h.
func (h *Histogram) Merge(o Histogram) {
	h.Zero += o.Zero
	for i, n := range o.Positive {
		if h.Positive == nil {
			h.Positive = map[int32]int64{}
		}
		h.Positive[i] += n
	}
	for i, n := range o.Negative {
		if h.Negative == nil {
			h.Negative = map[int32]int64{}
		}
		h.Negative[i] += n
	}
}

// Count is the number of values counted.
func (h Histogram) Count() int64 {
	n := h.Zero
	for _, c := range h.Positive {
		n += c
	}
	for _, c := range h.Negative {
		n += c
	}
	return n
}
