package stats

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// seriesDiff describes how two series differ: exactly on everything but the
// sums of milliseconds, which are floating point and may round differently
// when added in another order. "" when they agree.
func seriesDiff(got, want *Series) string {
	switch {
	case got == nil || want == nil:
		if got != want {
			return fmt.Sprintf("series %v, want %v", got, want)
		}
		return ""
	case !got.Start.Equal(want.Start) || got.Width != want.Width || len(got.Blocks) != len(want.Blocks):
		return fmt.Sprintf("start %v width %v %d blocks, want %v %v %d", got.Start, got.Width, len(got.Blocks), want.Start, want.Width, len(want.Blocks))
	}
	for i := range got.Blocks {
		g, w := got.Blocks[i], want.Blocks[i]
		closeTo := func(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(math.Abs(a), math.Abs(b)) }
		if g.Count != w.Count || g.Errors != w.Errors || g.LogSum != w.LogSum || g.LogSquares != w.LogSquares ||
			!slices.Equal(g.Tail, w.Tail) || !closeTo(g.Millis, w.Millis) || !closeTo(g.MillisSquares, w.MillisSquares) {
			return fmt.Sprintf("block %d: %+v, want %+v", i, g, w)
		}
	}
	return ""
}

// withoutMillis returns a copy of h with the sums of milliseconds of its
// series zeroed: what must merge exactly, in any order.
func withoutMillis(h *Histogram) *Histogram {
	c := *h
	if h.Series != nil {
		s := *h.Series
		s.Blocks = slices.Clone(s.Blocks)
		for i := range s.Blocks {
			s.Blocks[i].Millis, s.Blocks[i].MillisSquares = 0, 0
		}
		c.Series = &s
	}
	return &c
}

// request is one fake request of a test load.
type request struct {
	at     time.Time
	d      time.Duration
	failed bool
}

func recordAll(start time.Time, reqs []request) *Recorder {
	r := NewRecorder(10*time.Second, start)
	for _, q := range reqs {
		r.Record(q.at, q.d, q.failed)
	}
	return r
}

func TestSeriesCoarsens(t *testing.T) {
	rng := rand.New(rand.NewPCG(31, 2))
	// 20000 requests at random times over 10s, one at the very start and
	// one just before 10s, 3% failed, in the order of their times and
	// shuffled: the recorder must coarsen in steps and in jumps.
	reqs := []request{{at: epoch, d: time.Millisecond}, {at: epoch.Add(10*time.Second - 1), d: 3 * time.Millisecond, failed: true}}
	for range 20000 {
		reqs = append(reqs, request{
			at:     epoch.Add(time.Duration(rng.Int64N(int64(10 * time.Second)))),
			d:      time.Duration(5e6 * math.Exp(rng.NormFloat64())),
			failed: rng.Float64() < 0.03,
		})
	}
	sorted := slices.Clone(reqs)
	slices.SortFunc(sorted, func(a, b request) int { return a.at.Compare(b.at) })
	rng.Shuffle(len(reqs), func(i, j int) { reqs[i], reqs[j] = reqs[j], reqs[i] })

	var want *Series
	for _, order := range [][]request{sorted, reqs} {
		s := recordAll(epoch, order).Histogram().Series
		if s == nil {
			t.Fatal("no series")
		}
		k := s.Width / FirstBlockWidth
		if len(s.Blocks) > MaxBlocks || s.Width%FirstBlockWidth != 0 || k&(k-1) != 0 || !s.Start.Equal(epoch) {
			t.Fatalf("%d blocks of %v from %v; want at most %d, %v times a power of 2, from the epoch", len(s.Blocks), s.Width, s.Start, MaxBlocks, FirstBlockWidth)
		}
		// The finest width that holds 10s in 64 blocks: 10s/64 = 156ms,
		// so 256ms and 40 blocks.
		if s.Width != 256*time.Millisecond || len(s.Blocks) != 40 {
			t.Errorf("%d blocks of %v, want 40 of 256ms", len(s.Blocks), s.Width)
		}
		// Each request in block ⌊(at − start)/width⌋.
		counts, errs, logs := make([]int64, len(s.Blocks)), make([]int64, len(s.Blocks)), make([]int64, len(s.Blocks))
		var n, failed int64
		for _, q := range order {
			i := int(q.at.Sub(epoch) / s.Width)
			if i >= len(s.Blocks) {
				t.Fatalf("request at %v falls past %d blocks of %v", q.at.Sub(epoch), len(s.Blocks), s.Width)
			}
			counts[i]++
			logs[i] += logUnits(math.Log(float64(q.d)))
			n++
			if q.failed {
				errs[i]++
				failed++
			}
		}
		var gotN, gotFailed int64
		for i, b := range s.Blocks {
			if b.Count != counts[i] || b.Errors != errs[i] || b.LogSum != logs[i] {
				t.Errorf("block %d: %d requests, %d errors, log sum %d; want %d, %d, %d", i, b.Count, b.Errors, b.LogSum, counts[i], errs[i], logs[i])
			}
			var tail int64
			for j := 1; j < len(b.Tail); j += 2 {
				tail += b.Tail[j]
			}
			if tail != b.Count {
				t.Errorf("block %d: tail buckets hold %d of %d requests", i, tail, b.Count)
			}
			gotN += b.Count
			gotFailed += b.Errors
		}
		if gotN != n || gotFailed != failed {
			t.Errorf("series holds %d requests, %d errors; want %d, %d", gotN, gotFailed, n, failed)
		}
		if err := s.validate(); err != nil {
			t.Errorf("a recorded series does not validate: %v", err)
		}
		// The order of recording does not matter.
		if want == nil {
			want = s
		} else if diff := seriesDiff(s, want); diff != "" {
			t.Errorf("shuffled requests: %s", diff)
		}
	}

	// A single jump far past the blocks coarsens at once; a request
	// before the start counts in the first block.
	r := NewRecorder(time.Second, epoch)
	r.Record(epoch.Add(time.Millisecond/2), time.Millisecond, false)
	r.Record(epoch.Add(time.Hour), time.Millisecond, true)
	r.Record(epoch.Add(-time.Second), time.Millisecond, false)
	s := r.Histogram().Series
	// An hour in 64 blocks: 3600s/64 = 56.25s, so 2^16ms = 65.536s.
	if s.Width != 65536*time.Millisecond || len(s.Blocks) != 55 || s.Blocks[0].Count != 2 || s.Blocks[54].Count != 1 || s.Blocks[54].Errors != 1 {
		t.Errorf("requests at 0.5ms, 1h and -1s: %d blocks of %v, first %+v; want 55 of 65.536s, 2 requests in the first, 1 error in the last",
			len(s.Blocks), s.Width, s.Blocks[0])
	}
}

// threadLoads records a load of n requests dealt round-robin over k threads,
// each thread running for its own span (thread i for (i+1)/k of 10s), so
// that the threads' series end up at different widths.
func threadLoads(seed uint64, k, n int, start time.Time) []*Recorder {
	rng := rand.New(rand.NewPCG(seed, 3))
	rs := make([]*Recorder, k)
	for i := range rs {
		rs[i] = NewRecorder(10*time.Second, start)
	}
	for i := range n {
		th := i % k
		span := time.Duration(th+1) * 10 * time.Second / time.Duration(k)
		at := start.Add(time.Duration(rng.Int64N(int64(span))))
		rs[th].Record(at, time.Duration(10e6*math.Exp(0.5*rng.NormFloat64())), rng.Float64() < 0.02)
	}
	return rs
}

func TestSeriesMerge(t *testing.T) {
	parts := threadLoads(7, 4, 4001, epoch)
	widths := map[time.Duration]bool{}
	hs := make([]*Histogram, len(parts))
	for i, r := range parts {
		hs[i] = r.Histogram()
		widths[hs[i].Series.Width] = true
	}
	if len(widths) < 3 {
		t.Fatalf("threads' widths %v: want the parts at different widths", widths)
	}
	forward, backward := NewRecorder(10*time.Second, epoch), NewRecorder(10*time.Second, epoch)
	for i := range parts {
		forward.Merge(parts[i])
		backward.Merge(parts[len(parts)-1-i])
	}
	f, b := forward.Histogram(), backward.Histogram()
	if f.Series == nil || f.Series.total() != 4001 {
		t.Fatalf("merged series %+v, want 4001 requests", f.Series)
	}
	if !reflect.DeepEqual(withoutMillis(f), withoutMillis(b)) {
		t.Errorf("merged in two orders differ beyond the sums of milliseconds: %s", seriesDiff(f.Series, b.Series))
	}
	if diff := seriesDiff(f.Series, b.Series); diff != "" {
		t.Errorf("merged in two orders: %s", diff)
	}
	if !reflect.DeepEqual(f, b) {
		// The sums of milliseconds are floating point: added in another
		// order, they may round differently in the last bit.
		t.Logf("merged in two orders: the sums of milliseconds differ in rounding")
	}
	// Into one of the parts.
	into := threadLoads(7, 4, 4001, epoch)
	into[2].Merge(into[0])
	into[2].Merge(into[3])
	into[2].Merge(into[1])
	if diff := seriesDiff(into[2].Histogram().Series, f.Series); diff != "" {
		t.Errorf("merged into a part: %s", diff)
	}
	// As one recorder fed every request.
	rng := rand.New(rand.NewPCG(7, 3))
	one := NewRecorder(10*time.Second, epoch)
	for i := range 4001 {
		span := time.Duration(i%4+1) * 10 * time.Second / 4
		at := epoch.Add(time.Duration(rng.Int64N(int64(span))))
		one.Record(at, time.Duration(10e6*math.Exp(0.5*rng.NormFloat64())), rng.Float64() < 0.02)
	}
	if diff := seriesDiff(one.Histogram().Series, f.Series); diff != "" {
		t.Errorf("merged parts against one recorder: %s", diff)
	}

	// MergeHistograms: the same, in any order.
	m1, err := MergeHistograms(hs...)
	if err != nil {
		t.Fatal(err)
	}
	m2, err := MergeHistograms(hs[3], hs[1], hs[0], hs[2])
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(withoutMillis(m1), withoutMillis(m2)) || seriesDiff(m1.Series, m2.Series) != "" {
		t.Errorf("MergeHistograms in two orders differ: %s", seriesDiff(m1.Series, m2.Series))
	}
	if diff := seriesDiff(m1.Series, f.Series); diff != "" {
		t.Errorf("MergeHistograms against Recorder.Merge: %s", diff)
	}

	// Through JSON and back.
	data, err := json.Marshal(m1)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `"series":{"start":"1970-01-01T00:00:00Z","widthNanos":`) {
		t.Errorf("JSON %.200s...: want the series", data)
	}
	var back Histogram
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&back, m1) {
		t.Errorf("JSON round trip: %s", seriesDiff(back.Series, m1.Series))
	}

	// Another start: the series would describe only part of the requests,
	// so it goes; the buckets still merge.
	other := threadLoads(8, 1, 100, epoch.Add(time.Second))[0]
	mixed := NewRecorder(10*time.Second, epoch)
	mixed.Merge(parts[0])
	mixed.Merge(other)
	mixed.Merge(parts[1])
	if h := mixed.Histogram(); h.Series != nil || h.Count != hs[0].Count+hs[1].Count+100 {
		t.Errorf("merge with another start: series %v, count %d; want none, %d", h.Series != nil, h.Count, hs[0].Count+hs[1].Count+100)
	}
	for _, order := range [][]*Histogram{{hs[0], other.Histogram(), hs[1]}, {other.Histogram(), hs[0]}} {
		m, err := MergeHistograms(order...)
		var want int64
		for _, h := range order {
			want += h.Count
		}
		if err != nil || m.Series != nil || m.Count != want {
			t.Errorf("MergeHistograms with another start: series %v, count %d, %v; want none, %d", m != nil && m.Series != nil, m.Count, err, want)
		}
	}
	// An old result without a series drops it too, unless it is empty.
	old := *hs[0]
	old.Series = nil
	data, _ = json.Marshal(&old)
	if strings.Contains(string(data), "series") {
		t.Errorf("JSON without a series: %s", data)
	}
	if _, err := old.Load(); err != nil {
		t.Errorf("Load without a series: %v", err)
	}
	if m, err := MergeHistograms(&old, hs[1]); err != nil || m.Series != nil {
		t.Errorf("merge with an old result: series %v, %v; want none", m.Series != nil, err)
	}
	m4, err := MergeHistograms(NewRecorder(time.Second, epoch).Histogram(), &Histogram{Unit: "ns", Highest: 1000, SigFigs: 3}, hs[1])
	if err != nil || !reflect.DeepEqual(m4.Series, hs[1].Series) {
		t.Errorf("merge with empty results: series %v, %v; want %+v's", m4.Series, err, hs[1].Series)
	}
}

func TestSeriesLoadRejectsInconsistent(t *testing.T) {
	valid := recordAll(epoch, []request{
		{epoch, 2 * time.Millisecond, false},
		{epoch.Add(time.Millisecond), 3 * time.Millisecond, true},
		{epoch.Add(time.Millisecond), 40 * time.Millisecond, false},
		{epoch.Add(5 * time.Millisecond), time.Millisecond, false},
	}).Histogram()
	if err := valid.Series.validate(); err != nil || len(valid.Series.Blocks) != 6 {
		t.Fatalf("valid series: %+v, %v; want 6 blocks", valid.Series, err)
	}
	with := func(edit func(s *Series)) *Histogram {
		h := *valid
		s := *valid.Series
		s.Blocks = slices.Clone(s.Blocks)
		for i := range s.Blocks {
			s.Blocks[i].Tail = slices.Clone(s.Blocks[i].Tail)
		}
		edit(&s)
		h.Series = &s
		return &h
	}
	// Block 1 holds 2 requests, 1 failed, in two tail buckets.
	tests := []struct {
		name string
		h    *Histogram
		want string
	}{
		{"width 0", with(func(s *Series) { s.Width = 0 }), "block width 0s"},
		{"width below 1ms", with(func(s *Series) { s.Width = time.Millisecond / 2 }), "block width 500µs: want 1ms times a power of 2"},
		{"width 3ms", with(func(s *Series) { s.Width = 3 * time.Millisecond }), "block width 3ms"},
		{"width 1ms+1ns", with(func(s *Series) { s.Width = time.Millisecond + 1 }), "block width"},
		{"width negative", with(func(s *Series) { s.Width = -time.Millisecond }), "block width"},
		{"65 blocks", with(func(s *Series) { s.Blocks = append(s.Blocks, make([]Block, 59)...) }), "65 blocks, want at most 64"},
		{"errors above count", with(func(s *Series) { s.Blocks[1].Errors = 3 }), "block 1: 3 errors of 2 requests"},
		{"negative errors", with(func(s *Series) { s.Blocks[1].Errors = -1 }), "-1 errors"},
		{"negative count", with(func(s *Series) { s.Blocks[3].Count = -1 }), "block 3: 0 errors of -1 requests"},
		{"negative log squares", with(func(s *Series) { s.Blocks[1].LogSquares = -5 }), "sums of squares -5"},
		{"negative ms squares", with(func(s *Series) { s.Blocks[1].MillisSquares = -5 }), "sums of squares"},
		{"ms sum NaN", with(func(s *Series) { s.Blocks[1].Millis = math.NaN() }), "latency sums are not finite"},
		{"ms squares Inf", with(func(s *Series) { s.Blocks[1].MillisSquares = math.Inf(1) }), "latency sums are not finite"},
		{"odd tail", with(func(s *Series) { s.Blocks[1].Tail = s.Blocks[1].Tail[:3] }), "tail: want bucket, count pairs, got 3 numbers"},
		{"tail short of count", with(func(s *Series) { s.Blocks[1].Tail = s.Blocks[1].Tail[:2] }), "tail buckets hold 1 requests, want the block's 2"},
		{"tail above count", with(func(s *Series) { s.Blocks[1].Tail[1] = 2 }), "tail bucket"}, // the next bucket no longer fits,
		{"tail negative count", with(func(s *Series) { s.Blocks[1].Tail[1] = -1 }), "count -1 out of range"},
		{"tail bucket negative", with(func(s *Series) { s.Blocks[1].Tail[0] = -1 }), "tail bucket -1"},
		{"tail bucket past the last", with(func(s *Series) { s.Blocks[1].Tail[0] = tailBuckets }), fmt.Sprintf("tail bucket %d", tailBuckets)},
		{"log sums of no values", with(func(s *Series) { s.Blocks[1].LogSquares = 0 }), "log sums"},
		{"log sum too large", with(func(s *Series) { s.Blocks[1].LogSum = 1 << 40 }), "are not those of 2 values"},
		{"log sum in an empty block", with(func(s *Series) { s.Blocks[2].LogSum = 5 }), "block 2: log sums 5 and 0"},
		{"count not the histogram's", with(func(s *Series) {
			s.Blocks[2] = Block{Count: 1, LogSum: 0, Tail: []int64{0, 1}}
		}), "histogram series: 5 requests, want the histogram's 4 recorded and 0 dropped"},
		{"count overflows", with(func(s *Series) {
			s.Blocks[2] = Block{Count: math.MaxInt64, Tail: []int64{0, math.MaxInt64}}
		}), "counts sum past MaxInt64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.h.Load()
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "series") {
				t.Errorf("Load error = %v, want one about the series containing %q", err, tt.want)
			}
			if _, err := tt.h.Summarize([]float64{50}); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Summarize error = %v, want one containing %q", err, tt.want)
			}
			if _, err := MergeHistograms(valid, tt.h); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("MergeHistograms error = %v, want one containing %q", err, tt.want)
			}
			if _, err := CompareLatencies(valid, tt.h, 0.95, 0.1); err == nil || !strings.Contains(err.Error(), "candidate: ") {
				t.Errorf("CompareLatencies error = %v, want one naming the candidate", err)
			}
			if _, err := CompareErrorRates(tt.h, valid, 0.95, 0.01); err == nil || !strings.Contains(err.Error(), "baseline: ") {
				t.Errorf("CompareErrorRates error = %v, want one naming the baseline", err)
			}
		})
	}
	// Dropped requests count in the series.
	h := with(func(s *Series) { s.Blocks[2] = Block{Count: 1, LogSum: 0, Tail: []int64{0, 1}} })
	h.Dropped = 1
	if _, err := h.Load(); err != nil {
		t.Errorf("Load with a dropped request in the series: %v", err)
	}
	h.Dropped = -1
	if _, err := h.Load(); err == nil || !strings.Contains(err.Error(), "histogram series") {
		t.Errorf("Load with Dropped -1: %v, want an error", err)
	}
}

// stepLoad records n requests evenly over span from the epoch: lognormal
// latencies (median 10ms, σ 0.3 of log latency) times factor, and twice as
// slow from step on, a slowdown that every version sees.
func stepLoad(rng *rand.Rand, n int, span, step time.Duration, factor float64) *Histogram {
	r := NewRecorder(10*time.Second, epoch)
	for i := range n {
		off := span * time.Duration(i) / time.Duration(n)
		d := 10e6 * math.Exp(0.3*rng.NormFloat64()) * factor
		if off >= step {
			d *= 2
		}
		r.Record(epoch.Add(off), time.Duration(d), false)
	}
	return r.Histogram()
}

func TestSeriesPairingCancelsSharedSlowdown(t *testing.T) {
	rng := rand.New(rand.NewPCG(41, 2))
	const n = 10000
	b := stepLoad(rng, n, 10*time.Second, 5*time.Second, 1)
	c := stepLoad(rng, n, 10*time.Second, 5*time.Second, 1.2)
	res, err := CompareLatencies(b, c, 0.95, 0.1)
	if err != nil {
		t.Fatal(err)
	}
	// The log ratio's standard error is 0.3·sqrt(2/10000) = 0.4%.
	if !near(res.Effect, 0.2, 0.03) || !res.Significant || res.Low > 0.2 || res.High < 0.2 || res.Blocks < 32 {
		t.Errorf("same slowdown, candidate 20%% slower: %+v; want effect 0.2±0.03, significant, paired", res)
	}
	// The step is the same on both sides: it cancels in every block and
	// does not widen the interval.
	if res.DesignEffect > 2 {
		t.Errorf("same slowdown: design effect %v, want about 1", res.DesignEffect)
	}

	// The candidate handles the same count at the same speed, but over
	// twice the time: its second half is all in the slow phase.
	c = stepLoad(rng, n, 20*time.Second, 5*time.Second, 1.2)
	res, err = CompareLatencies(b, c, 0.95, 0.1)
	if err != nil {
		t.Fatal(err)
	}
	if !near(res.Effect, 0.2, 0.03) || !res.Significant || res.Low > 0.2 || res.High < 0.2 {
		t.Errorf("candidate running twice as long: %+v; want effect 0.2±0.03, significant", res)
	}
	// Only the blocks both ran in count: all of the baseline, half of the
	// candidate (the blocks of 512ms hold 9.728s of 20s and the block from
	// 9.728s to 10.24s).
	if res.BaselineCount != n || res.CandidateCount < n/2 || res.CandidateCount > n/2+n/40 || res.Blocks != 20 {
		t.Errorf("candidate running twice as long: counts %d, %d in %d blocks; want %d, about %d, in 20",
			res.BaselineCount, res.CandidateCount, res.Blocks, n, n/2)
	}
	// Unpaired, the candidate's longer slow phase would pass for a larger
	// effect: 1.2·2^(1/4) − 1 = 0.43.
	bs, cs, err := seriesPair("test", b, c, 0.95, 0.1)
	if err != nil {
		t.Fatal(err)
	}
	if e := unpaired(bs, cs, logLatency, false); math.Expm1(e.diff) < 0.35 {
		t.Errorf("unpaired effect %v, want about 0.43 (else this test shows nothing)", math.Expm1(e.diff))
	}
}

// levelLoad records n requests evenly over 10s: lognormal latencies (median
// 10ms, σ 0.3) times a level of its own that changes every period (σ of
// the level's log: levelSigma), as a noisy neighbour of one version would.
func levelLoad(rng *rand.Rand, n int, period time.Duration, levelSigma float64) *Histogram {
	r := NewRecorder(10*time.Second, epoch)
	level, until := 1.0, time.Duration(0)
	for i := range n {
		off := 10 * time.Second * time.Duration(i) / time.Duration(n)
		if off >= until {
			level, until = math.Exp(levelSigma*rng.NormFloat64()), until+period
		}
		r.Record(epoch.Add(off), time.Duration(10e6*math.Exp(0.3*rng.NormFloat64())*level), false)
	}
	return r.Histogram()
}

func TestSeriesCorrelationWidensInterval(t *testing.T) {
	const runs = 20
	var correlatedSig, iidSig int
	var iidDesign []float64
	minP := 1.0
	for seed := range uint64(runs) {
		rng := rand.New(rand.NewPCG(seed, 51))
		// A/A with levels of σ 0.3 changing every 500ms: the variance of
		// the log ratio is about 2·0.09/20 = 0.009, against 2·0.18/5000
		// = 0.00007 for independent requests.
		res, err := CompareLatencies(levelLoad(rng, 5000, 500*time.Millisecond, 0.3), levelLoad(rng, 5000, 500*time.Millisecond, 0.3), 0.95, 0.1)
		if err != nil {
			t.Fatal(err)
		}
		// The batch estimate dominates: its df, raised a little for the
		// part of the variance that iid accounts for.
		if res.DesignEffect < 10 || res.DF < float64(Batches-1) || res.DF > float64(Batches-1)*1.1 || res.Batches != Batches {
			t.Errorf("seed %d, correlated: design effect %v, df %v, %d batches; want well above 1, %d batches, df just above %d",
				seed, res.DesignEffect, res.DF, res.Batches, Batches, Batches-1)
		}
		if res.Significant {
			correlatedSig++
		}
		// The same without levels.
		res, err = CompareLatencies(levelLoad(rng, 5000, time.Hour, 0), levelLoad(rng, 5000, time.Hour, 0), 0.95, 0.1)
		if err != nil {
			t.Fatal(err)
		}
		iidDesign = append(iidDesign, res.DesignEffect)
		minP = min(minP, res.PValue)
		if res.Significant {
			iidSig++
		}
		if res.DesignEffect < 1 {
			t.Errorf("seed %d: design effect %v below 1", seed, res.DesignEffect)
		}
	}
	// At 95%, about 1 of 20 A/A runs is significant; 4 or more happens
	// with probability 1.6% for a test that holds its level.
	if correlatedSig > 3 || iidSig > 3 {
		t.Errorf("A/A significant in %d of %d correlated runs and %d of %d independent ones, want at most 3", correlatedSig, runs, iidSig, runs)
	}
	slices.Sort(iidDesign)
	// The batch variance rests on 9 degrees of freedom: it exceeds the
	// iid one about half the time, by a factor below 2 in 95% of runs.
	if med, top := iidDesign[runs/2], iidDesign[runs-1]; med > 1.3 || top > 2.5 {
		t.Errorf("independent requests: design effects %v, want a median near 1 and none above 2.5", iidDesign)
	}
	if minP < 1e-3 {
		t.Errorf("independent A/A: smallest p-value %v of %d runs, want none tiny", minP, runs)
	}
}

// mixtureLoad records n requests evenly over 10s: lognormal about 2ms (σ
// 0.3) and, with probability slow, about 50ms.
func mixtureLoad(rng *rand.Rand, n int, slow float64) (*Histogram, []time.Duration) {
	r := NewRecorder(10*time.Second, epoch)
	ds := make([]time.Duration, n)
	for i := range n {
		median := 2e6
		if rng.Float64() < slow {
			median = 50e6
		}
		ds[i] = time.Duration(median * math.Exp(0.3*rng.NormFloat64()))
		r.Record(epoch.Add(10*time.Second*time.Duration(i)/time.Duration(n)), ds[i], false)
	}
	return r.Histogram(), ds
}

func TestComparePercentilesMixture(t *testing.T) {
	const runs = 20
	var detected, aaSig int
	for seed := range uint64(runs) {
		rng := rand.New(rand.NewPCG(seed, 61))
		b, bd := mixtureLoad(rng, 1000, 0.10)
		c, cd := mixtureLoad(rng, 1000, 0.15)
		res, err := ComparePercentiles(b, c, 90, 0.95, 0.05)
		if err != nil {
			t.Fatal(err)
		}
		if res.Significant && res.Effect > 0 {
			detected++
		}
		// The threshold is the baseline's 90th percentile rounded down to
		// a tail bucket's edge (a quarter doubling).
		sum, err := b.Summarize([]float64{90})
		if err != nil {
			t.Fatal(err)
		}
		p90 := float64(sum.Percentiles[90]) / 1e6
		if res.Test != TailShare || res.Threshold > p90 || res.Threshold*math.Pow(2, 0.25)*1.001 < p90 {
			t.Errorf("seed %d: threshold %vms, want the baseline's p90 %vms rounded down to a quarter doubling", seed, res.Threshold, p90)
		}
		// The shares are those of the requests above the threshold.
		above := func(ds []time.Duration) float64 {
			var k int
			for _, d := range ds {
				if float64(d)/1e6 >= res.Threshold {
					k++
				}
			}
			return float64(k) / float64(len(ds))
		}
		if !near(res.Baseline, above(bd), 1.5e-3) || !near(res.Candidate, above(cd), 1.5e-3) || !near(res.Effect, res.Candidate-res.Baseline, 1e-12) {
			t.Errorf("seed %d: shares %v, %v above %vms; counted %v, %v", seed, res.Baseline, res.Candidate, res.Threshold, above(bd), above(cd))
		}
		if res.Low > res.Effect || res.High < res.Effect || res.Low < -1 || res.High > 1 {
			t.Errorf("seed %d: effect %v outside its interval [%v, %v]", seed, res.Effect, res.Low, res.High)
		}

		a1, _ := mixtureLoad(rng, 1000, 0.10)
		a2, _ := mixtureLoad(rng, 1000, 0.10)
		res, err = ComparePercentiles(a1, a2, 90, 0.95, 0.05)
		if err != nil {
			t.Fatal(err)
		}
		if res.Significant {
			aaSig++
		}
	}
	// The share above the threshold is about 10% against 14%: a
	// difference of about 3 standard errors, detected in about 80% of
	// runs.
	if detected < 14 {
		t.Errorf("slow share 10%% against 15%%: detected in %d of %d runs, want at least 14", detected, runs)
	}
	if aaSig > 3 {
		t.Errorf("A/A: significant in %d of %d runs, want at most 3", aaSig, runs)
	}
	t.Logf("detected %d of %d; A/A significant %d of %d", detected, runs, aaSig, runs)
}

// errorLoad records n requests evenly over 10s, failed with probability p,
// and all failed in [from, to).
func errorLoad(rng *rand.Rand, n int, p float64, from, to time.Duration) *Histogram {
	r := NewRecorder(10*time.Second, epoch)
	for i := range n {
		off := 10 * time.Second * time.Duration(i) / time.Duration(n)
		failed := rng.Float64() < p || (off >= from && off < to)
		r.Record(epoch.Add(off), time.Duration(10e6*math.Exp(0.3*rng.NormFloat64())), failed)
	}
	return r.Histogram()
}

func TestCompareErrorRates(t *testing.T) {
	rng := rand.New(rand.NewPCG(71, 2))
	// No errors on either side: nothing to test, but 1000 requests each
	// cannot rule out a difference of a few tenths of a percent.
	res, err := CompareErrorRates(errorLoad(rng, 1000, 0, 0, 0), errorLoad(rng, 1000, 0, 0, 0), 0.95, 0.01)
	if err != nil {
		t.Fatal(err)
	}
	if res.Test != TwoProportion || res.PValue != 1 || res.Significant || res.Effect != 0 || !(res.Low < 0) || !(res.High > 0) || res.High > 0.01 || res.Needed == 0 {
		t.Errorf("0 against 0 errors: %+v; want p 1, an interval around 0 of a few tenths of a percent, a size planned", res)
	}

	// A/A at 1% errors, except a burst in the baseline: every request
	// failed for half a second.
	const n = 5000
	b := errorLoad(rng, n, 0.01, 3*time.Second, 3500*time.Millisecond)
	c := errorLoad(rng, n, 0.01, 0, 0)
	res, err = CompareErrorRates(b, c, 0.95, 0.01)
	if err != nil {
		t.Fatal(err)
	}
	if res.Significant || res.DesignEffect <= 2 || math.IsInf(res.DF, 1) || res.Effect > -0.03 {
		t.Errorf("burst of errors in the baseline: %+v; want a difference near -5%%, not significant, design effect above 2", res)
	}
	// Taken as independent requests, the same difference would be
	// overwhelming: the batch variance is what holds it back.
	if z := res.Estimate / math.Sqrt(res.Variance/res.DesignEffect); twoSided(z) > 1e-6 {
		t.Errorf("burst: p-value as independent requests %v, want tiny (else this test shows nothing)", twoSided(z))
	}

	// A difference spread over the whole run is found: 1% against 3%.
	res, err = CompareErrorRates(errorLoad(rng, n, 0.01, 0, 0), errorLoad(rng, n, 0.03, 0, 0), 0.95, 0.01)
	if err != nil {
		t.Fatal(err)
	}
	// The standard error is sqrt(2·0.02·0.98/5000) = 0.28%.
	if !res.Significant || !near(res.Effect, 0.02, 0.009) || res.Low > res.Effect || res.High < res.Effect || res.DesignEffect > 2.5 {
		t.Errorf("1%% against 3%% errors: %+v; want an effect of 0.02, significant", res)
	}
}

// TestHeavyLoadFitsARevision: a heavy load (300,000 requests over 64
// connections and ten minutes, lognormal latencies) keeps its histogram with
// series small enough that three versions fit a revision's 256 KiB with room
// to spare: 64 blocks at most, 16 connection groups.
func TestHeavyLoadFitsARevision(t *testing.T) {
	const n, conns = 300000, 64
	rng := rand.New(rand.NewPCG(8, 1))
	recs := make([]*Recorder, conns)
	for i := range recs {
		recs[i] = NewRecorder(10*time.Second, epoch)
	}
	for i := range n {
		at := epoch.Add(10 * time.Minute * time.Duration(i) / n)
		recs[i%conns].Record(at, time.Duration(5e6*math.Exp(0.5*rng.NormFloat64())), i%97 == 0)
	}
	for _, r := range recs[1:] {
		recs[0].Merge(r)
	}
	h := recs[0].Histogram()
	if s := h.Series; s == nil || len(s.Blocks) > MaxBlocks || len(s.Connections) != MaxConnections {
		t.Fatalf("series %+v: want at most %d blocks and %d connection groups", s, MaxBlocks, MaxConnections)
	}
	data, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) > 80<<10 {
		t.Errorf("histogram of a heavy load is %d bytes, want at most 80 KiB (three versions in 256 KiB)", len(data))
	}
	t.Logf("histogram of %d requests over %d connections: %d bytes", n, conns, len(data))
}

// pacedVersion records n requests over four connections paced like fortio
// at qps (each connection every 4/qps, staggered), each failing with the
// chance failAt gives for its time: one recorder per connection, merged.
func pacedVersion(rng *rand.Rand, n int, qps float64, failAt func(time.Duration) float64) *Series {
	const conns = 4
	recs := make([]*Recorder, conns)
	for c := range recs {
		recs[c] = NewRecorder(time.Second, epoch)
	}
	for i := range n {
		at := time.Duration(float64(i) / qps * float64(time.Second))
		d := time.Duration(5e6 * math.Exp(0.5*rng.NormFloat64()))
		recs[i%conns].Record(epoch.Add(at), d, rng.Float64() < failAt(at))
	}
	for _, r := range recs[1:] {
		recs[0].Merge(r)
	}
	return recs[0].Histogram().Series
}

// TestConnectionVarianceExactAcceptance (make sim): paced connections
// share many small blocks, and measuring each against its version's block
// means takes a share of their spread that depends on how the requests fall
// into blocks. The connections' variance corrects for it exactly: on
// independent requests it averages the variance of the difference of the
// means (CR1's correction, k/(k−1)·(n−1)/(n−B), ran 33% high here).
func TestConnectionVarianceExactAcceptance(t *testing.T) {
	const n = 200
	runs := 1000
	if raceEnabled() {
		runs = 20 // only that every path runs: the bound needs the full count
	}
	never := func(time.Duration) float64 { return 0 }
	var sum float64
	for seed := range uint64(runs) {
		rng := rand.New(rand.NewPCG(seed, 61))
		v, _, ok := connectionVariance(pacedVersion(rng, n, 200, never), pacedVersion(rng, n, 200, never), logLatency)
		if !ok {
			t.Fatalf("seed %d: no connections' variance", seed)
		}
		sum += v
	}
	// log latency has sd 0.5: the difference of two means of n has
	// variance 0.25·2/n; the mean of the runs' estimates has a relative
	// standard error of about 0.018 (each rests on about 6 df).
	ratio := sum / float64(runs) / (0.25 * 2 / n)
	t.Logf("connections' variance over the true variance: %.3f (%d runs)", ratio, runs)
	if !raceEnabled() && math.Abs(ratio-1) > 0.06 {
		t.Errorf("connections' variance averages %.3f times the true variance, want 1 ± 0.06", ratio)
	}
}

// TestRateVarianceFromEachBlockAcceptance (make sim): when the rate that both versions see
// jumps during the run (from 2% to 40%), the variance of independent
// requests comes from each block's own rate; the rate of the whole run
// would count the jump as noise (about 28% high here).
func TestRateVarianceFromEachBlockAcceptance(t *testing.T) {
	const n = 400
	runs := 2000
	if raceEnabled() {
		runs = 20
	}
	jump := func(at time.Duration) float64 {
		if at < time.Second {
			return 0.02
		}
		return 0.4
	}
	var iid, squares float64
	for seed := range uint64(runs) {
		rng := rand.New(rand.NewPCG(seed, 62))
		e := contrast(pacedVersion(rng, n, 200, jump), pacedVersion(rng, n, 200, jump), errorsOf, true)
		iid += e.iid
		squares += e.diff * e.diff
	}
	// The mean square of A/A differences is the true variance, within a
	// relative standard error of about √(2/2000) = 0.032.
	ratio := iid / squares
	t.Logf("variance of independent requests over the true variance: %.3f (%d runs)", ratio, runs)
	if !raceEnabled() && math.Abs(ratio-1) > 0.1 {
		t.Errorf("variance of independent requests averages %.3f times the true variance, want 1 ± 0.1", ratio)
	}
}
