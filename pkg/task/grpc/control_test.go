package grpc

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

func TestScheduleLimits(t *testing.T) {
	tests := []struct {
		name    string
		s       *schedule
		elapsed time.Duration // since start, when the call is taken
		next    int64         // the number the call would get
		ok      bool
	}{
		{"no limits", &schedule{}, time.Hour, 1 << 40, true},
		{"below the total", &schedule{total: 5}, 0, 4, true},
		{"the total", &schedule{total: 5}, 0, 5, false},
		{"before the end", &schedule{duration: time.Second}, 999 * time.Millisecond, 7, true},
		{"the end", &schedule{duration: time.Second}, time.Second, 7, false},
		{"the end before any call", &schedule{duration: time.Second}, 2 * time.Second, 0, true},
		{"a rate whose next turn is after the end", &schedule{duration: 1500 * time.Millisecond, rate: 1}, time.Second, 2, false},
		{"a rate behind schedule", &schedule{rate: 10}, time.Second, 3, true},
		{"a rate too slow to tell", &schedule{rate: 1e-300, duration: time.Hour}, time.Second, 5, false},
	}
	for _, tt := range tests {
		tt.s.start = time.Now().Add(-tt.elapsed)
		tt.s.next.Store(tt.next)
		var timer *time.Timer
		n, ok := tt.s.take(t.Context(), &timer)
		if ok != tt.ok || (ok && n != tt.next) {
			t.Errorf("%s: take() = %d, %v; want %d, %v", tt.name, n, ok, tt.next, tt.ok)
		}
	}
}

func TestScheduleWaitsForTheNextTurn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &schedule{start: time.Now(), rate: 4}
		var timer *time.Timer
		for want := range int64(5) {
			n, ok := s.take(t.Context(), &timer)
			if !ok || n != want {
				t.Fatalf("take() = %d, %v; want %d, true", n, ok, want)
			}
			if at := time.Duration(want) * 250 * time.Millisecond; time.Since(s.start) != at {
				t.Errorf("call %d handed out at %v, want %v", n, time.Since(s.start), at)
			}
		}
	})
}

func TestScheduleCancelEndsTheWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &schedule{start: time.Now(), rate: 0.001} // one call every 1000s
		ctx, cancel := context.WithCancel(t.Context())
		var timer *time.Timer
		if _, ok := s.take(ctx, &timer); !ok {
			t.Fatal("the first call was not handed out at once")
		}
		done := make(chan bool, 1)
		go func() {
			_, ok := s.take(ctx, &timer)
			done <- ok
		}()
		time.Sleep(time.Second)
		cancel()
		synctest.Wait()
		select {
		case ok := <-done:
			if ok {
				t.Error("take handed out a call after the cancel")
			}
		default:
			t.Error("take did not return at the cancel")
		}
	})
}

// TestScheduleCountsExactly has many workers share a total: every number
// below it is handed out once, and none above it.
func TestScheduleCountsExactly(t *testing.T) {
	const total, workers = 1000, 16
	s := &schedule{start: time.Now(), total: total}
	var mu sync.Mutex
	seen := map[int64]int{}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			var timer *time.Timer
			for {
				n, ok := s.take(t.Context(), &timer)
				if !ok {
					return
				}
				mu.Lock()
				seen[n]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(seen) != total {
		t.Fatalf("%d distinct calls handed out, want %d", len(seen), total)
	}
	for n, k := range seen {
		if n < 0 || n >= total || k != 1 {
			t.Fatalf("call %d handed out %d times", n, k)
		}
	}
}
