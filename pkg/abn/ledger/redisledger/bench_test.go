package redisledger

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iter8-tools/iter8/pkg/abn/ledger"
	"github.com/iter8-tools/iter8/test/redistest"
)

// BenchmarkRecord measures acknowledged (fsynced: appendfsync always)
// writes: "batched" is 8 goroutines recording batches of 100 writes, one
// op per batch, reported as values/s; "single" is one write per call, so
// ns/op is its latency.
func BenchmarkRecord(b *testing.B) {
	ctx := context.Background()
	srv := redistest.Start(b)
	l := open(b, srv, ledger.Options{})
	var seq atomic.Int64
	batch := func(n int) []ledger.Write {
		ws := make([]ledger.Write, n)
		for i := range ws {
			k := seq.Add(1)
			ws[i] = ledger.Write{
				ID: fmt.Sprint("b", k), App: "ns/shop", Version: fmt.Sprint("v", k%3), User: fmt.Sprint("user-", k%5000),
				Metric: "revenue", Value: float64(k % 100), At: t0.Add(time.Duration(k) * time.Millisecond),
			}
		}
		return ws
	}

	b.Run("batched", func(b *testing.B) {
		const writers, size = 8, 100
		var next atomic.Int64
		var wg sync.WaitGroup
		start := time.Now()
		for range writers {
			wg.Go(func() {
				for next.Add(1) <= int64(b.N) {
					if err := l.Record(ctx, batch(size)); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		b.ReportMetric(float64(b.N*size)/time.Since(start).Seconds(), "values/s")
	})

	b.Run("single", func(b *testing.B) {
		for b.Loop() {
			if err := l.Record(ctx, batch(1)); err != nil {
				b.Fatal(err)
			}
		}
	})
}
