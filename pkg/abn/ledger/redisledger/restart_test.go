package redisledger

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/iter8-tools/iter8/pkg/abn/ledger"
	"github.com/iter8-tools/iter8/pkg/abn/ledger/ledgertest"
	"github.com/iter8-tools/iter8/test/redistest"
)

// TestRedisRestarts: a ledger left open while Redis restarts works on at
// once: calls that meet a pooled connection of the old server retry on a
// new one, and the scripts Redis forgot are loaded again (NOSCRIPT).
func TestRedisRestarts(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	opts := ledger.Options{}
	l := open(t, srv, opts)
	m := ledgertest.NewModel(opts)
	write := func(n int) []ledger.Write {
		return []ledger.Write{{ID: fmt.Sprint(n), App: "ns/shop", Version: "v1", User: fmt.Sprint("u", n%7), Metric: "m", Value: float64(n), At: t0}}
	}
	// Concurrent calls leave several connections in the pool.
	var wg sync.WaitGroup
	for n := range 16 {
		wg.Go(func() {
			if err := l.Record(ctx, write(n)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for n := range 16 {
		_ = m.Record(ctx, write(n))
	}

	srv.Restart() // SIGKILL, then the same port
	for n := 16; n < 48; n++ {
		if err := l.Record(ctx, write(n)); err != nil {
			t.Fatalf("Record %d after the restart: %v", n, err)
		}
		_ = m.Record(ctx, write(n))
	}
	sameAsModel(t, l, m, "ns/shop")

	// A flushed script cache is reloaded the same way.
	if _, err := l.client.Do(ctx, "SCRIPT", "FLUSH"); err != nil {
		t.Fatal(err)
	}
	if err := l.Record(ctx, write(48)); err != nil {
		t.Fatalf("Record after SCRIPT FLUSH: %v", err)
	}
	_ = m.Record(ctx, write(48))
	sameAsModel(t, l, m, "ns/shop")
}
