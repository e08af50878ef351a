package boltledger

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
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
