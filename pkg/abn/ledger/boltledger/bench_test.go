package boltledger

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/iter8-tools/iter8/pkg/abn/ledger"
)

// BenchmarkRecord measures acknowledged (durable) values per second: 8
// goroutines recording batches of 100 writes (1000 users, 3 versions, 2
// metrics), coalesced by DB.Batch; and the latency of a lone 1-write
// Record, which pays a whole transaction and fsync.
func BenchmarkRecord(b *testing.B) {
	var ids atomic.Int64
	write := func() ledger.Write {
		n := ids.Add(1)
		u := n % 1000
		return ledger.Write{
			ID: fmt.Sprintf("w%d", n), App: "ns/shop", Version: fmt.Sprintf("v%d", u%3),
			User: fmt.Sprintf("user-%d", u), Metric: []string{"revenue", "items"}[n%2],
			Value: float64(n%50) + 0.25, At: time.Now(),
		}
	}
	openBench := func(b *testing.B) *Ledger {
		l, err := Open(filepath.Join(b.TempDir(), "ledger.db"), ledger.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = l.Close() })
		return l
	}

	b.Run("batches of 100 from 8 goroutines", func(b *testing.B) {
		const goroutines, size = 8, 100
		l := openBench(b)
		var calls atomic.Int64
		var wg sync.WaitGroup
		b.ResetTimer()
		for range goroutines {
			wg.Go(func() {
				for calls.Add(1) <= int64(b.N) {
					batch := make([]ledger.Write, size)
					for i := range batch {
						batch[i] = write()
					}
					if err := l.Record(context.Background(), batch); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "values/s")
	})

	b.Run("one write alone", func(b *testing.B) {
		l := openBench(b)
		for b.Loop() {
			if err := l.Record(context.Background(), []ledger.Write{write()}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/call")
	})
}

// BenchmarkExposeNewUsers measures what storing a new user's exposure
// costs, in CPU and wall time per user, in batches of 200 (about what the
// service's exposer sends at 20,000 new users a second, 256) into a
// ledger that already holds 10^4 or 10^6 users, named at random as real
// user IDs are.
func BenchmarkExposeNewUsers(b *testing.B) {
	for _, held := range []int{10_000, 1_000_000} {
		b.Run(fmt.Sprintf("%d users held", held), func(b *testing.B) {
			l, err := Open(filepath.Join(b.TempDir(), "ledger.db"), ledger.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			r := rand.New(rand.NewPCG(1, uint64(held)))
			exposures := func(n int) []ledger.Exposure {
				es := make([]ledger.Exposure, n)
				for i := range es {
					es[i] = ledger.Exposure{App: "ns/shop", Version: "v1", User: fmt.Sprintf("user-%016x", r.Uint64()), At: time.Now()}
				}
				return es
			}
			// In the exposer's largest batches, so that the journal is as
			// a service would leave it.
			for left := held; left > 0; left -= 2048 {
				if err := l.Expose(context.Background(), exposures(min(left, 2048))); err != nil {
					b.Fatal(err)
				}
			}
			const batch = 200
			cpu0 := cpuTime()
			b.ResetTimer()
			for n := 0; n < b.N; n += batch {
				if err := l.Expose(context.Background(), exposures(min(batch, b.N-n))); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/1e3/float64(b.N), "cpu-µs/user")
		})
	}
}

// cpuTime is the CPU time the process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
