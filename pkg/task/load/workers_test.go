package load

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/iter8-tools/iter8/pkg/experiment"
	"github.com/iter8-tools/iter8/pkg/stats"
)

func TestShareAddsUp(t *testing.T) {
	for _, n := range []int64{1, 3, 4, 7, 1000, 4001, 1_000_000_007} {
		for _, w := range []int{1, 2, 3, 4, 7, 1000} {
			if n < int64(w) {
				continue
			}
			var sum int64
			lo, hi := n, int64(0)
			for i := range w {
				s := Share(n, w, i)
				sum += s
				lo, hi = min(lo, s), max(hi, s)
			}
			if sum != n || hi-lo > 1 || lo < 1 {
				t.Errorf("Share(%d, %d, ·): sum %d, from %d to %d; want sum %d, shares differing by at most 1, none 0", n, w, sum, lo, hi, n)
			}
		}
	}
}

// TestMergePartsIsExact: requests recorded by 4 workers (with the same
// start) and merged from their stored parts, in any order, give bucket for
// bucket the histogram that one recorder of all the requests gives, and
// block for block and connection for connection the series that merging
// the workers' recorders in one process gives. Only the blocks' float sums
// of milliseconds may differ, in their last bits, with the order of
// addition.
func TestMergePartsIsExact(t *testing.T) {
	start := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	rng := rand.New(rand.NewPCG(1, 2))
	one := stats.NewRecorder(10*time.Second, start)
	workers := make([]*stats.Recorder, 4)
	for i := range workers {
		workers[i] = stats.NewRecorder(10*time.Second, start)
	}
	counts := make([]int64, 4)
	for range 4000 {
		at := start.Add(time.Duration(rng.Int64N(int64(20 * time.Second))))
		d := time.Duration(rng.ExpFloat64() * float64(3*time.Millisecond))
		failed := rng.IntN(50) == 0
		w := rng.IntN(4)
		one.Record(at, d, failed)
		workers[w].Record(at, d, failed)
		counts[w]++
	}
	var parts []*Part
	for i, rec := range workers {
		p := &Part{Worker: i, Endpoints: []*PartEndpoint{{Requests: counts[i], Answered: counts[i], Codes: map[string]int64{"200": counts[i]}, Latency: rec.Histogram()}}}
		// Through JSON, as parts travel between pods.
		b, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		var back Part
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		parts = append(parts, &back)
	}
	inProcess := stats.NewRecorder(10*time.Second, start)
	for _, rec := range workers {
		inProcess.Merge(rec)
	}
	buckets, series := one.Histogram(), inProcess.Histogram().Series
	for _, order := range [][]int{{0, 1, 2, 3}, {3, 1, 0, 2}} {
		ordered := make([]*Part, len(order))
		for i, j := range order {
			ordered[i] = parts[j]
		}
		merged, err := MergeParts(ordered, 1)
		if err != nil {
			t.Fatal(err)
		}
		m := merged[0]
		if m.Requests != 4000 || m.Codes["200"] != 4000 || m.Answered != 4000 {
			t.Errorf("order %v: %d requests, codes %v, %d answered; want 4000", order, m.Requests, m.Codes, m.Answered)
		}
		h := m.Latency
		if h.Count != buckets.Count || h.MinValue != buckets.MinValue || h.MaxValue != buckets.MaxValue || h.ValueMean != buckets.ValueMean ||
			h.Dropped != buckets.Dropped || !reflect.DeepEqual(h.Sparse, buckets.Sparse) {
			t.Errorf("order %v: merged buckets differ from one recorder's: count %d min %d max %d mean %v, want %d %d %d %v",
				order, h.Count, h.MinValue, h.MaxValue, h.ValueMean, buckets.Count, buckets.MinValue, buckets.MaxValue, buckets.ValueMean)
		}
		if diff := seriesDiff(h.Series, series); diff != "" {
			t.Errorf("order %v: merged series differs from the in-process merge's: %s", order, diff)
		}
	}
}

// seriesDiff says where got differs from want: anything but the float sums
// of milliseconds, which may differ by a rounding of their additions.
func seriesDiff(got, want *stats.Series) string {
	if got == nil || want == nil {
		return fmt.Sprintf("series present %v, want %v", got != nil, want != nil)
	}
	if !got.Start.Equal(want.Start) || got.Width != want.Width || len(got.Blocks) != len(want.Blocks) || len(got.Connections) != len(want.Connections) {
		return fmt.Sprintf("start %v width %v, %d blocks, %d connections; want %v %v %d %d", got.Start, got.Width, len(got.Blocks),
			len(got.Connections), want.Start, want.Width, len(want.Blocks), len(want.Connections))
	}
	near := func(a, b float64) bool { return math.Abs(a-b) <= 1e-12*math.Max(math.Abs(a), math.Abs(b)) }
	block := func(what string, g, w stats.Block) string {
		gf, wf := g, w
		gf.Millis, gf.MillisSquares, wf.Millis, wf.MillisSquares = 0, 0, 0, 0
		if !reflect.DeepEqual(gf, wf) || !near(g.Millis, w.Millis) || !near(g.MillisSquares, w.MillisSquares) {
			return fmt.Sprintf("%s: %+v, want %+v", what, g, w)
		}
		return ""
	}
	for i := range got.Blocks {
		if d := block(fmt.Sprintf("block %d", i), got.Blocks[i], want.Blocks[i]); d != "" {
			return d
		}
	}
	for i := range got.Connections {
		g, w := got.Connections[i], want.Connections[i]
		if d := block(fmt.Sprintf("connection %d", i), g.Block, w.Block); d != "" || !reflect.DeepEqual(g.PerBlock, w.PerBlock) {
			return fmt.Sprintf("connection %d: %s %v, want %v", i, d, g.PerBlock, w.PerBlock)
		}
	}
	return ""
}

func TestMergePartsRefusesMismatches(t *testing.T) {
	p := func(w, endpoints int) *Part {
		return &Part{Worker: w, Endpoints: make([]*PartEndpoint, endpoints)}
	}
	for _, tc := range []struct {
		name  string
		parts []*Part
		want  string
	}{
		{"a worker twice", []*Part{p(0, 1), p(1, 1), p(0, 1)}, "worker 0's part appears twice"},
		{"endpoints differ", []*Part{p(0, 1), p(1, 2)}, "worker 1's part has 2 endpoints, want 1"},
		{"a negative index", []*Part{p(-1, 1)}, "worker -1: a worker's index is not negative"},
	} {
		if _, err := MergeParts(tc.parts, 1); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestWorkerCountsByVersion(t *testing.T) {
	targets := []Target{{Version: "v1"}, {Version: "v2", Name: "a"}, {Version: "v2", Name: "b"}}
	parts := []*Part{
		{Worker: 1, Endpoints: []*PartEndpoint{{Requests: 5, Errors: 1}, {Requests: 2}, {Requests: 3, Errors: 3, Error: "b: refused"}}},
		{Worker: 0, Endpoints: []*PartEndpoint{{Requests: 6}, nil, {Requests: 4}}},
		{Worker: 2, Endpoints: []*PartEndpoint{{Error: "v1: no connection"}, nil, nil}},
	}
	got := WorkerCounts(parts, targets)
	want := map[string][]experiment.WorkerCount{
		"v1": {{Worker: 0, Requests: 6}, {Worker: 1, Requests: 5, Errors: 1}, {Worker: 2, Error: "v1: no connection"}},
		"v2": {{Worker: 0, Requests: 4}, {Worker: 1, Requests: 5, Errors: 3, Error: "b: refused"}, {Worker: 2}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("WorkerCounts: %v, want %v", got, want)
	}
}

func TestMergePartsSkipsLoadsThatNeverStarted(t *testing.T) {
	parts := []*Part{
		{Worker: 0, Endpoints: []*PartEndpoint{{Error: "never started"}}},
		{Worker: 1, Endpoints: []*PartEndpoint{nil}},
	}
	merged, err := MergeParts(parts, 1)
	if err != nil || merged[0] != nil {
		t.Errorf("MergeParts of loads that never started: %+v, %v; want nothing measured", merged[0], err)
	}
	if _, err := MergeParts([]*Part{{Worker: 0, Endpoints: []*PartEndpoint{{Requests: 3}}}}, 1); err == nil ||
		!strings.Contains(err.Error(), "worker 0, endpoint 0: 3 requests without their latencies") {
		t.Errorf("a part without latencies: %v", err)
	}
}

// BenchmarkMergeParts merges the stored parts of n workers, each of which
// sent 10,000 requests over 60s to one endpoint (latencies spread over some
// 200 buckets), and reports a part's JSON size and the merged result's.
func BenchmarkMergeParts(b *testing.B) {
	// 1000 as the Indexed Jobs of issue 19's cluster half would give.
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("workers=%d", n), func(b *testing.B) {
			start := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
			rng := rand.New(rand.NewPCG(uint64(n), 7))
			raw := make([][]byte, n)
			for w := range n {
				rec := stats.NewRecorder(10*time.Second, start)
				for range 10_000 {
					at := start.Add(time.Duration(rng.Int64N(int64(60 * time.Second))))
					rec.Record(at, time.Duration((1+rng.ExpFloat64())*float64(2*time.Millisecond)), rng.IntN(100) == 0)
				}
				p := &Part{Worker: w, Endpoints: []*PartEndpoint{{Requests: 10_000, Answered: 10_000, Codes: map[string]int64{"200": 9_900, "503": 100}, Errors: 100, Latency: rec.Histogram()}}}
				var err error
				if raw[w], err = json.Marshal(p); err != nil {
					b.Fatal(err)
				}
			}
			var merged []*PartEndpoint
			b.ResetTimer()
			for b.Loop() {
				parts := make([]*Part, n)
				for w := range n {
					parts[w] = &Part{}
					if err := json.Unmarshal(raw[w], parts[w]); err != nil {
						b.Fatal(err)
					}
				}
				var err error
				if merged, err = MergeParts(parts, 1); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			out, err := json.Marshal(merged)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(len(raw[0])), "part-bytes")
			b.ReportMetric(float64(len(out)), "merged-bytes")
		})
	}
}

func TestCheckWorkerRate(t *testing.T) {
	p := field.NewPath("qps")
	for _, tc := range []struct {
		rate    float64
		workers int
		d       time.Duration
		ok      bool
	}{
		{0.3, 3, 0, true}, {0.2, 4, 0, false}, {2, 4, time.Second, false}, {200, 4, 10 * time.Second, true},
		{0, 4, time.Second, true}, {0.05, 1, 0, true},
	} {
		if err := CheckWorkerRate(p, tc.rate, tc.workers, tc.d); (err == nil) != tc.ok {
			t.Errorf("CheckWorkerRate(%v, %d, %v): %v, want ok %v", tc.rate, tc.workers, tc.d, err, tc.ok)
		}
	}
}
