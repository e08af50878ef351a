package stats

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// precision is the relative error that 3 significant figures allow: an HDR
// bucket at value v is at most v/1024 wide.
const precision = 0.001

// sample generates n latencies from a seeded source, so failures reproduce.
type sample struct {
	name string
	n    int
	gen  func(r *rand.Rand) time.Duration
}

var samples = []sample{
	{"uniform 2ms-20ms", 20000, func(r *rand.Rand) time.Duration {
		return 2*time.Millisecond + time.Duration(r.Int64N(int64(18*time.Millisecond)))
	}},
	{"exponential mean 5ms", 20000, func(r *rand.Rand) time.Duration {
		return time.Duration(r.ExpFloat64()*float64(5*time.Millisecond)) + time.Microsecond
	}},
	{"bimodal 1ms and 300ms", 10000, func(r *rand.Rand) time.Duration {
		if r.IntN(10) == 0 {
			return 300*time.Millisecond + time.Duration(r.Int64N(int64(50*time.Millisecond)))
		}
		return time.Millisecond + time.Duration(r.Int64N(int64(200*time.Microsecond)))
	}},
	{"constant 7ms", 1000, func(*rand.Rand) time.Duration { return 7 * time.Millisecond }},
	{"sub-microsecond 1ns-999ns", 5000, func(r *rand.Rand) time.Duration { return 1 + time.Duration(r.Int64N(999)) }},
	{"single value", 1, func(*rand.Rand) time.Duration { return 42 * time.Millisecond }},
}

func (s sample) draw(seed uint64) []time.Duration {
	r := rand.New(rand.NewPCG(seed, 2))
	out := make([]time.Duration, s.n)
	for i := range out {
		out[i] = s.gen(r)
	}
	return out
}

// exactPercentile is the value at HDR's rank for percentile p of a sorted
// sample: the ceiling-rounded p% observation, at least the first.
func exactPercentile(sorted []time.Duration, p float64) time.Duration {
	rank := int64(p/100*float64(len(sorted)) + 0.5)
	rank = min(max(rank, 1), int64(len(sorted)))
	return sorted[rank-1]
}

func within(got, want time.Duration, rel float64) bool {
	return math.Abs(float64(got-want)) <= rel*float64(want)+1 // +1ns: integer rounding
}

// epoch is the start of every test load: fake request times count from it.
var epoch = time.Unix(0, 0).UTC()

// record records values one millisecond apart from the epoch, none failed.
func record(highest time.Duration, values []time.Duration) *Recorder {
	r := NewRecorder(highest, epoch)
	for i, v := range values {
		r.Record(epoch.Add(time.Duration(i)*time.Millisecond), v, false)
	}
	return r
}

var testPercentiles = []float64{1, 10, 25, 50, 75, 90, 95, 99, 99.9, 99.99, 100}

func TestRecorderPercentilesMatchSample(t *testing.T) {
	for _, s := range samples {
		t.Run(s.name, func(t *testing.T) {
			values := s.draw(1)
			r := record(10*time.Second, values)
			if got, want := r.Count(), int64(len(values)); got != want {
				t.Errorf("Count() = %d, want %d", got, want)
			}
			if got := r.Dropped(); got != 0 {
				t.Errorf("Dropped() = %d, want 0 (all values are below highest)", got)
			}
			sorted := slices.Clone(values)
			slices.Sort(sorted)
			sum, err := r.Histogram().Summarize(testPercentiles)
			if err != nil {
				t.Fatalf("Summarize: %v", err)
			}
			if sum.Count != int64(len(values)) {
				t.Errorf("Summary.Count = %d, want %d", sum.Count, len(values))
			}
			for _, p := range testPercentiles {
				got, want := sum.Percentiles[p], exactPercentile(sorted, p)
				if !within(got, want, precision) {
					t.Errorf("p%v = %v, want %v within 0.1%% (off by %.4f%%)", p, got, want, 100*math.Abs(float64(got-want))/float64(want))
				}
			}
			if !within(sum.Min, sorted[0], precision) {
				t.Errorf("Min = %v, want %v within 0.1%%", sum.Min, sorted[0])
			}
			if !within(sum.Max, sorted[len(sorted)-1], precision) {
				t.Errorf("Max = %v, want %v within 0.1%%", sum.Max, sorted[len(sorted)-1])
			}
			var total float64
			for _, v := range values {
				total += float64(v)
			}
			mean := time.Duration(total / float64(len(values)))
			if !within(sum.Mean, mean, precision) {
				t.Errorf("Mean = %v, want %v within 0.1%%", sum.Mean, mean)
			}
		})
	}
}

func TestRecorderEmpty(t *testing.T) {
	r := NewRecorder(time.Second, epoch)
	if r.Count() != 0 || r.Dropped() != 0 {
		t.Fatalf("new recorder: Count %d Dropped %d, want 0 0", r.Count(), r.Dropped())
	}
	h := r.Histogram()
	if h.Count != 0 || len(h.Sparse) != 0 || h.Unit != "ns" || h.SigFigs != SignificantFigures || h.Series != nil {
		t.Errorf("empty Histogram() = %+v, want count 0, no buckets, no series, unit ns, sigFigs %d", h, SignificantFigures)
	}
	sum, err := h.Summarize([]float64{50, 99})
	if err != nil {
		t.Fatalf("Summarize of an empty histogram: %v", err)
	}
	if sum.Count != 0 || sum.Percentiles[50] != 0 || sum.Percentiles[99] != 0 {
		t.Errorf("empty Summarize = %+v, want zero count and percentiles", sum)
	}
	bars, err := h.Bars()
	if err != nil || len(bars) != 0 {
		t.Errorf("empty Bars() = %v, %v; want no bars, no error", bars, err)
	}
}

func TestRecorderNonPositiveLatenciesCountAsOneNanosecond(t *testing.T) {
	for _, d := range []time.Duration{0, -1, -time.Hour} {
		r := NewRecorder(time.Second, epoch)
		r.Record(epoch, d, false)
		h := r.Histogram()
		if r.Count() != 1 || r.Dropped() != 0 {
			t.Errorf("Record(%v): Count %d Dropped %d, want 1 0", d, r.Count(), r.Dropped())
		}
		if h.MinValue != 1 || h.MaxValue != 1 {
			t.Errorf("Record(%v): min %d max %d, want 1ns both", d, h.MinValue, h.MaxValue)
		}
	}
}

func TestRecorderDropsValuesAboveHighest(t *testing.T) {
	tests := []struct {
		highest     time.Duration
		values      []time.Duration
		wantCount   int64
		wantDropped int64
	}{
		// HDR rounds the range up to a power-of-two bucket, below twice
		// highest: highest is always kept and 2*highest never is.
		{10 * time.Millisecond, []time.Duration{time.Millisecond, 10 * time.Millisecond, 20 * time.Millisecond, time.Hour}, 2, 2},
		{10 * time.Second, []time.Duration{5 * time.Second, 10 * time.Second, 20 * time.Second, 21 * time.Second, 40 * time.Second}, 2, 3},
		// Below 1ms, highest is raised to 1ms.
		{0, []time.Duration{time.Microsecond, time.Millisecond, 2 * time.Millisecond}, 2, 1},
		{time.Nanosecond, []time.Duration{999 * time.Microsecond, time.Second}, 1, 1},
		{-time.Second, []time.Duration{time.Millisecond}, 1, 0},
	}
	for _, tt := range tests {
		r := record(tt.highest, tt.values)
		if got := r.Count(); got != tt.wantCount {
			t.Errorf("NewRecorder(%v) with %v: Count() = %d, want %d", tt.highest, tt.values, got, tt.wantCount)
		}
		if got := r.Dropped(); got != tt.wantDropped {
			t.Errorf("NewRecorder(%v) with %v: Dropped() = %d, want %d", tt.highest, tt.values, got, tt.wantDropped)
		}
		h := r.Histogram()
		if h.Dropped != tt.wantDropped || h.Count != tt.wantCount {
			t.Errorf("NewRecorder(%v) with %v: Histogram() count %d dropped %d, want %d %d", tt.highest, tt.values, h.Count, h.Dropped, tt.wantCount, tt.wantDropped)
		}
	}
}

func TestRecorderMergeEqualsOneRecorder(t *testing.T) {
	const highest = 10 * time.Second
	var parts []*Recorder
	// One recorder fed every value at the time its part recorded it.
	want := NewRecorder(highest, epoch)
	for i, s := range samples {
		values := s.draw(uint64(10 + i))
		values = append(values, 30*time.Second) // one drop per part
		parts = append(parts, record(highest, values))
		for j, v := range values {
			want.Record(epoch.Add(time.Duration(j)*time.Millisecond), v, false)
		}
	}

	merged := NewRecorder(highest, epoch)
	for _, p := range parts {
		merged.Merge(p)
	}
	if merged.Count() != want.Count() || merged.Dropped() != want.Dropped() {
		t.Errorf("merged Count/Dropped = %d/%d, want %d/%d", merged.Count(), merged.Dropped(), want.Count(), want.Dropped())
	}
	if want.Dropped() != int64(len(samples)) {
		t.Errorf("single recorder Dropped() = %d, want %d", want.Dropped(), len(samples))
	}
	got, w := merged.Histogram(), want.Histogram()
	// The same requests at the same times: the same blocks, the integer
	// sums exactly, the sums of milliseconds to rounding.
	if diff := seriesDiff(got.Series, w.Series); diff != "" {
		t.Errorf("merged series differs from one recorder's: %s", diff)
	}
	if got.Series.total() != got.Count+got.Dropped {
		t.Errorf("merged series holds %d requests, want %d recorded and %d dropped", got.Series.total(), got.Count, got.Dropped)
	}
	got.Series, w.Series = nil, nil
	if !reflect.DeepEqual(got, w) {
		t.Errorf("merged Histogram() differs from one recorder fed everything:\n got %+v\nwant %+v", summary(got), summary(w))
	}

	// Merging into a part leaves the other parts as they were.
	before := parts[1].Histogram()
	parts[0].Merge(parts[1])
	if after := parts[1].Histogram(); !reflect.DeepEqual(before, after) {
		t.Errorf("Merge changed its argument")
	}
}

func TestRecorderMergeCountsValuesOutOfRangeAsDropped(t *testing.T) {
	small := record(10*time.Millisecond, []time.Duration{time.Millisecond, 2 * time.Millisecond})
	big := record(10*time.Second, []time.Duration{3 * time.Millisecond, time.Second, 2 * time.Second, 30 * time.Second})
	small.Merge(big)
	// big kept 3 and dropped 1; of its 3, the two above ~16.7ms do not fit.
	if got, want := small.Count(), int64(3); got != want {
		t.Errorf("Count() after merge = %d, want %d", got, want)
	}
	if got, want := small.Dropped(), int64(3); got != want {
		t.Errorf("Dropped() after merge = %d, want %d (1 dropped by big + 2 out of small's range)", got, want)
	}
}

func summary(h *Histogram) string {
	b, _ := json.Marshal(struct {
		Count, Dropped, Min, Max, Pairs int64
		Mean                            float64
	}{h.Count, h.Dropped, h.MinValue, h.MaxValue, int64(len(h.Sparse) / 2), h.ValueMean})
	return string(b)
}

func TestHistogramLoadRoundTrip(t *testing.T) {
	for _, s := range samples {
		t.Run(s.name, func(t *testing.T) {
			r := record(10*time.Second, s.draw(3))
			r.Record(epoch, time.Minute, true) // dropped
			stored := r.Histogram()
			data, err := json.Marshal(stored)
			if err != nil {
				t.Fatal(err)
			}
			var back Histogram
			if err := json.Unmarshal(data, &back); err != nil {
				t.Fatalf("unmarshal %s: %v", data, err)
			}
			if !reflect.DeepEqual(&back, stored) {
				t.Fatalf("JSON round trip changed the histogram: got %s, want %s", summary(&back), summary(stored))
			}
			loaded, err := back.Load()
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			orig := r.h
			if loaded.TotalCount() != orig.TotalCount() || loaded.TotalCount() != stored.Count {
				t.Errorf("count: loaded %d, recorder %d, stored %d", loaded.TotalCount(), orig.TotalCount(), stored.Count)
			}
			if loaded.Min() != orig.Min() || loaded.Min() != stored.MinValue {
				t.Errorf("min: loaded %d, recorder %d, stored %d", loaded.Min(), orig.Min(), stored.MinValue)
			}
			if loaded.Max() != orig.Max() || loaded.Max() != stored.MaxValue {
				t.Errorf("max: loaded %d, recorder %d, stored %d", loaded.Max(), orig.Max(), stored.MaxValue)
			}
			if loaded.Mean() != orig.Mean() || loaded.StdDev() != orig.StdDev() {
				t.Errorf("mean/stddev: loaded %v/%v, recorder %v/%v", loaded.Mean(), loaded.StdDev(), orig.Mean(), orig.StdDev())
			}
			for _, p := range testPercentiles {
				if got, want := loaded.ValueAtPercentile(p), orig.ValueAtPercentile(p); got != want {
					t.Errorf("p%v: loaded %d, recorder %d", p, got, want)
				}
			}
			if back.Dropped != 1 {
				t.Errorf("stored Dropped = %d, want 1", back.Dropped)
			}
		})
	}
}

func TestHistogramSparseIsCompact(t *testing.T) {
	const n = 100000
	// highest as the http task sets it: twice its default 5s timeout.
	r := NewRecorder(10*time.Second, epoch)
	rng := rand.New(rand.NewPCG(4, 2))
	for i := range n {
		at := epoch.Add(time.Duration(i) * 100 * time.Microsecond) // 10s
		r.Record(at, 2*time.Millisecond+time.Duration(rng.Int64N(int64(18*time.Millisecond))), i%100 == 0)
	}
	h := r.Histogram()
	dense := len(r.h.Export().Counts)
	pairs := len(h.Sparse) / 2
	// Between 2ms and 20ms there are about 3,360 distinct HDR buckets at 3
	// significant figures (1,024 per power of two above 1.05ms), however
	// many values are recorded.
	if pairs > 3500 {
		t.Errorf("%d values in 2ms-20ms gave %d sparse pairs, want at most 3500", n, pairs)
	}
	if pairs*4 > dense {
		t.Errorf("%d sparse pairs against %d dense counts, want under a quarter", pairs, dense)
	}
	data, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) >= 64<<10 {
		t.Errorf("JSON of %d values is %d bytes, want < 64 KiB", n, len(data))
	}
	for i := 0; i+2 < len(h.Sparse); i += 2 {
		if h.Sparse[i] >= h.Sparse[i+2] {
			t.Fatalf("sparse indexes not strictly increasing at pair %d: %d then %d", i/2, h.Sparse[i], h.Sparse[i+2])
		}
		if h.Sparse[i+1] <= 0 {
			t.Fatalf("sparse pair %d has count %d, want only non-empty buckets", i/2, h.Sparse[i+1])
		}
	}
	t.Logf("%d values: %d pairs (dense %d), %d JSON bytes", n, pairs, dense, len(data))
}

func TestHistogramLoadRejectsMalformed(t *testing.T) {
	valid := record(time.Second, []time.Duration{time.Millisecond, 5 * time.Millisecond}).Histogram()
	width := int64(len(hdr.New(1, int64(time.Second), SignificantFigures).Export().Counts))
	geom := func(sparse ...int64) *Histogram {
		return &Histogram{Unit: "ns", Highest: int64(time.Second), SigFigs: 3, Sparse: sparse}
	}
	tests := []struct {
		name    string
		h       *Histogram
		wantErr string
	}{
		{"nil", nil, "no histogram"},
		{"odd number of entries", geom(1, 2, 3), "want index, count pairs, got 3 numbers"},
		{"one entry", geom(5), "got 1 numbers"},
		{"negative index", geom(-1, 1), "index -1 count 1 out of range"},
		{"negative count", geom(10, -3), "index 10 count -3 out of range"},
		{"index at the geometry's end", geom(width, 1), "out of range"},
		{"empty index at the geometry's end", geom(width, 0), "out of range"},
		{"index far beyond the geometry", geom(1<<40, 1), "out of range"},
		{"index MaxInt64", geom(math.MaxInt64, 1), "out of range"},
		{"counts overflow", geom(10, math.MaxInt64, 10, math.MaxInt64), "histogram:"},
		{"total overflows", geom(10, math.MaxInt64, 11, 1), "histogram:"},
		{"sigFigs 0", &Histogram{Highest: 1000, SigFigs: 0}, "sigFigs 0 out of range"},
		{"sigFigs 6", &Histogram{Highest: 1000, SigFigs: 6}, "sigFigs 6 out of range"},
		{"sigFigs negative", &Histogram{Highest: 1000, SigFigs: -3}, "out of range"},
		{"highest 1", &Histogram{Highest: 1, SigFigs: 3}, "highest 1, sigFigs 3 out of range"},
		{"highest 0", &Histogram{Highest: 0, SigFigs: 3}, "highest 0"},
		{"highest negative", &Histogram{Highest: -100, SigFigs: 3, Sparse: []int64{0, 1}}, "highest -100"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.h.Load()
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Load(%s) error = %v, want one containing %q", tt.name, err, tt.wantErr)
			}
			if _, err := tt.h.Summarize([]float64{50}); err == nil {
				t.Errorf("Summarize(%s) = nil error, want one", tt.name)
			}
			if _, err := tt.h.Bars(); err == nil {
				t.Errorf("Bars(%s) = nil error, want one", tt.name)
			}
			if _, err := MergeHistograms(valid, tt.h); err == nil {
				t.Errorf("MergeHistograms(valid, %s) = nil error, want one", tt.name)
			}
		})
	}
}

func TestHistogramLoadAcceptsEdges(t *testing.T) {
	width := int64(len(hdr.New(1, 1000, 2).Export().Counts))
	tests := []struct {
		name      string
		h         *Histogram
		wantCount int64
	}{
		{"no buckets", &Histogram{Highest: 2, SigFigs: 1}, 0},
		{"last bucket", &Histogram{Highest: 1000, SigFigs: 2, Sparse: []int64{width - 1, 4}}, 4},
		{"repeated index adds up", &Histogram{Highest: 1000, SigFigs: 2, Sparse: []int64{3, 4, 3, 5, 7, 0}}, 9},
		{"sigFigs 5", &Histogram{Highest: int64(time.Second), SigFigs: 5, Sparse: []int64{100, 1}}, 1},
	}
	for _, tt := range tests {
		hh, err := tt.h.Load()
		if err != nil {
			t.Errorf("Load(%s) error: %v", tt.name, err)
			continue
		}
		if got := hh.TotalCount(); got != tt.wantCount {
			t.Errorf("Load(%s) count = %d, want %d", tt.name, got, tt.wantCount)
		}
	}
}

func TestMergeHistogramsDifferentHighest(t *testing.T) {
	fast := samples[0].draw(5)                 // 2ms-20ms
	slow := samples[2].draw(6)                 // 1ms and 300ms
	small := record(50*time.Millisecond, fast) // fits
	large := record(10*time.Second, slow)      // fits
	large.Record(epoch, time.Minute, false)    // dropped in large
	want := record(10*time.Second, append(slices.Clone(fast), slow...))

	merged, err := MergeHistograms(small.Histogram(), large.Histogram())
	if err != nil {
		t.Fatalf("MergeHistograms: %v", err)
	}
	if merged.Highest != large.Histogram().Highest {
		t.Errorf("merged Highest = %d, want the larger %d", merged.Highest, large.Histogram().Highest)
	}
	if merged.Count != int64(len(fast)+len(slow)) || merged.Dropped != 1 {
		t.Errorf("merged count/dropped = %d/%d, want %d/1", merged.Count, merged.Dropped, len(fast)+len(slow))
	}
	got, err := merged.Summarize(testPercentiles)
	if err != nil {
		t.Fatal(err)
	}
	w, err := want.Histogram().Summarize(testPercentiles)
	if err != nil {
		t.Fatal(err)
	}
	// The merged buckets are the buckets of one recorder fed everything.
	if !reflect.DeepEqual(got, w) {
		t.Errorf("merged summary = %+v, want %+v", got, w)
	}

	// The order of the arguments does not matter.
	other, err := MergeHistograms(large.Histogram(), small.Histogram())
	if err != nil {
		t.Fatal(err)
	}
	// (The series' sums of milliseconds are floating point, and may round
	// differently in another order.)
	if !reflect.DeepEqual(withoutMillis(other), withoutMillis(merged)) || seriesDiff(other.Series, merged.Series) != "" {
		t.Errorf("MergeHistograms(large, small) = %s, want %s; series: %s", summary(other), summary(merged), seriesDiff(other.Series, merged.Series))
	}
}

func TestMergeHistogramsErrors(t *testing.T) {
	valid := record(time.Second, []time.Duration{time.Millisecond}).Histogram()
	tests := []struct {
		name    string
		hs      []*Histogram
		wantErr string
	}{
		{"none", nil, "no histograms"},
		{"nil entry", []*Histogram{valid, nil}, "histogram 1: no histogram"},
		{"only invalid highest", []*Histogram{{Highest: 0, SigFigs: 3}}, "histogram geometry"},
		{"only negative highest", []*Histogram{{Highest: -5, SigFigs: 3}}, "histogram geometry"},
	}
	for _, tt := range tests {
		_, err := MergeHistograms(tt.hs...)
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("MergeHistograms(%s) error = %v, want one containing %q", tt.name, err, tt.wantErr)
		}
	}
}

func TestMergeHistogramsOfOneIsACopy(t *testing.T) {
	h := record(time.Second, samples[1].draw(7)).Histogram()
	merged, err := MergeHistograms(h)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(merged, h) {
		t.Errorf("MergeHistograms(h) = %s, want %s", summary(merged), summary(h))
	}
	merged.Sparse[1]++
	merged.Series.Blocks[0].Count++
	merged.Series.Blocks[0].Tail[1]++
	if !reflect.DeepEqual(h, record(time.Second, samples[1].draw(7)).Histogram()) {
		t.Errorf("MergeHistograms(h) shares its buckets or blocks with h")
	}
}

func TestHistogramBarsCoverAllCounts(t *testing.T) {
	for _, s := range samples {
		t.Run(s.name, func(t *testing.T) {
			values := s.draw(8)
			h := record(10*time.Second, values).Histogram()
			bars, err := h.Bars()
			if err != nil {
				t.Fatalf("Bars: %v", err)
			}
			var total int64
			for i, b := range bars {
				total += b.Count
				if b.Count <= 0 || b.From > b.To {
					t.Errorf("bar %d = %+v, want a positive count and From <= To", i, b)
				}
				if i > 0 && b.From <= bars[i-1].To {
					t.Errorf("bar %d = %+v overlaps or precedes bar %d = %+v", i, b, i-1, bars[i-1])
				}
			}
			if total != int64(len(values)) {
				t.Errorf("bars count %d values, want %d", total, len(values))
			}
			if len(bars) != len(h.Sparse)/2 {
				t.Errorf("%d bars for %d non-empty buckets", len(bars), len(h.Sparse)/2)
			}
			for _, v := range values {
				i, _ := slices.BinarySearchFunc(bars, v, func(b Bar, v time.Duration) int {
					switch {
					case b.To < v:
						return -1
					case b.From > v:
						return 1
					}
					return 0
				})
				if i >= len(bars) || v < bars[i].From || v > bars[i].To {
					t.Fatalf("value %v is in no bar", v)
				}
			}
		})
	}
}

func TestRecorderRecordDoesNotAllocate(t *testing.T) {
	r := NewRecorder(10*time.Second, epoch)
	// Only values in range: a dropped value allocates the error that
	// hdrhistogram-go's RecordValue returns, which is rare (a request times
	// out before its latency reaches highest) and leaves nothing live.
	for _, d := range []time.Duration{0, time.Microsecond, 3 * time.Millisecond, 10 * time.Second} {
		allocs := testing.AllocsPerRun(1000, func() { r.Record(epoch, d, false) })
		if allocs != 0 {
			t.Errorf("Record(%v) allocates %v times per call, want 0", d, allocs)
		}
	}
	// Nor once the blocks of a long run exist, coarsened or not: only a
	// new block allocates (its tail buckets).
	for i := range 2000 {
		r.Record(epoch.Add(time.Duration(i)*10*time.Millisecond), time.Millisecond, false)
	}
	i := 0
	allocs := testing.AllocsPerRun(1000, func() {
		r.Record(epoch.Add(time.Duration(i%2000)*10*time.Millisecond), 5*time.Millisecond, i%3 == 0)
		i++
	})
	if allocs != 0 {
		t.Errorf("Record in existing blocks allocates %v times per call, want 0", allocs)
	}
	if r.Dropped() != 0 {
		t.Errorf("Dropped() = %d, want 0", r.Dropped())
	}
}

func BenchmarkRecorderRecord(b *testing.B) {
	r := NewRecorder(10*time.Second, epoch)
	rng := rand.New(rand.NewPCG(9, 2))
	values := make([]time.Duration, 1<<12)
	for i := range values {
		values[i] = time.Duration(rng.ExpFloat64() * float64(5*time.Millisecond))
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		r.Record(epoch.Add(time.Duration(i)*time.Microsecond), values[i&(len(values)-1)], false)
		i++
	}
}

// FuzzHistogramLoad feeds arbitrary stored forms to Load and what uses it;
// none may panic, and an accepted form must be self-consistent.
func FuzzHistogramLoad(f *testing.F) {
	valid := record(10*time.Second, samples[0].draw(9)[:50]).Histogram()
	f.Add(valid.Highest, valid.SigFigs, encodeSparse(valid.Sparse))
	f.Add(int64(1000), 3, encodeSparse([]int64{1, 2, 3}))
	f.Add(int64(1000), 2, encodeSparse([]int64{-1, 5}))
	f.Add(int64(1000), 2, encodeSparse([]int64{5, -1}))
	f.Add(int64(1000), 2, encodeSparse([]int64{1 << 40, 1}))
	f.Add(int64(1000), 2, encodeSparse([]int64{3, math.MaxInt64, 3, math.MaxInt64}))
	f.Add(int64(1), 3, []byte{})
	f.Add(int64(math.MaxInt64), 1, encodeSparse([]int64{0, 1}))
	f.Add(int64(1000), 0, []byte{})
	f.Add(int64(1000), 9, []byte{})
	f.Fuzz(func(t *testing.T, highest int64, sigFigs int, raw []byte) {
		if sigFigs > 3 && highest > 1<<32 {
			// A legitimate geometry of this size takes tens of MB per
			// call; it says nothing new about malformed input.
			t.Skip()
		}
		h := &Histogram{Unit: "ns", Highest: highest, SigFigs: sigFigs, Sparse: decodeSparse(raw)}
		hh, err := h.Load()
		if err != nil {
			if hh != nil {
				t.Errorf("Load returned a histogram with error %v", err)
			}
			return
		}
		var want int64
		for i := 1; i < len(h.Sparse); i += 2 {
			want += h.Sparse[i]
		}
		if hh.TotalCount() != want {
			t.Errorf("loaded count %d, sum of stored counts %d", hh.TotalCount(), want)
		}
		if _, err := h.Summarize(fuzzPercentiles); err != nil {
			t.Errorf("Summarize after a successful Load: %v", err)
		}
		bars, err := h.Bars()
		if err != nil {
			t.Errorf("Bars after a successful Load: %v", err)
		}
		var total int64
		for _, b := range bars {
			total += b.Count
		}
		if total != want {
			t.Errorf("bars count %d, want %d", total, want)
		}
		if _, err := MergeHistograms(h, h); err != nil && want <= math.MaxInt64/2 {
			t.Errorf("MergeHistograms(h, h): %v", err)
		}
	})
}

// fuzzPercentiles are queried in FuzzHistogramLoad.
var fuzzPercentiles = []float64{0, 50, 99.9, 100}

func encodeSparse(v []int64) []byte {
	out := make([]byte, 0, 8*len(v))
	for _, x := range v {
		out = binary.LittleEndian.AppendUint64(out, uint64(x))
	}
	return out
}

// decodeSparse reads 8 bytes per number; a short tail becomes one more
// number, so odd lengths are reachable.
func decodeSparse(b []byte) []int64 {
	var out []int64
	for len(b) > 0 {
		var buf [8]byte
		n := copy(buf[:], b)
		out = append(out, int64(binary.LittleEndian.Uint64(buf[:])))
		b = b[n:]
	}
	return out
}
