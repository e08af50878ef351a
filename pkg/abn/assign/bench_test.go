package assign

import (
	"fmt"
	"testing"
	"time"
)

// benchUsers is a pool of user IDs so that benchmarks hash varied inputs.
var benchUsers = func() []string {
	u := make([]string, 4096)
	for i := range u {
		u[i] = fmt.Sprintf("3f8c2a1e-9b7d-4c55-8e2f-%012d", i) // UUID-sized
	}
	return u
}()

// versions returns n candidates of equal weight.
func versions(n int) []Candidate {
	c := make([]Candidate, n)
	for i := range c {
		c[i] = Candidate{Name: fmt.Sprint("v", i+1), Weight: 1}
	}
	return c
}

var sink string

func BenchmarkPick(b *testing.B) {
	for _, n := range []int{2, 3, 10} {
		c := versions(n)
		b.Run(fmt.Sprint(n, "-versions"), func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				sink, _ = Pick("default/my-app", benchUsers[i&4095], c)
				i++
			}
		})
	}
}

// BenchmarkPickLatency times every single Pick call (3 versions) and
// reports the percentiles of the per-call latency, which is what a request
// waiting on an assignment sees; ns/op averages hide the tail. Samples go
// into a 1 ns histogram up to 128 µs (plus an overflow bucket) so memory
// stays fixed whatever b.N. Run with -benchtime=1000000x for exactly 1e6
// calls. The figures include the cost of reading the clock (tens of ns).
func BenchmarkPickLatency(b *testing.B) {
	c := versions(3)
	const buckets = 1 << 17
	hist := make([]uint64, buckets+1)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		sink, _ = Pick("default/my-app", benchUsers[i&4095], c)
		d := time.Since(t0)
		if d < 0 || d >= buckets {
			d = buckets
		}
		hist[d]++
	}
	b.StopTimer()
	pct := func(p float64) float64 {
		rank := uint64(p * float64(b.N))
		var seen uint64
		for ns, n := range hist {
			seen += n
			if seen > rank {
				return float64(ns)
			}
		}
		return buckets
	}
	b.ReportMetric(pct(0.50), "p50-ns")
	b.ReportMetric(pct(0.99), "p99-ns")
	b.ReportMetric(pct(0.999), "p99.9-ns")
	b.ReportMetric(float64(b.N), "calls")
}
