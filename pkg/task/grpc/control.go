package grpc

import (
	"context"
	"math"
	"sync/atomic"
	"time"
)

// schedule hands out the numbers of a load's calls to its workers: at a
// constant rate from start (or as fast as workers take them), up to total
// calls, until duration has passed. Numbers are taken atomically, so that a
// counted load makes exactly total calls however many workers share it.
type schedule struct {
	start    time.Time
	rate     float64       // calls per second; 0 means no limit
	total    int64         // 0 means no limit
	duration time.Duration // 0 means no limit
	next     atomic.Int64
}

// take returns the number of the next call once its turn has come, or false
// when the load has made its calls, its time is up or ctx is done. timer is
// the worker's own, reused between calls.
func (s *schedule) take(ctx context.Context, timer **time.Timer) (int64, bool) {
	if ctx.Err() != nil {
		return 0, false
	}
	n := s.next.Add(1) - 1
	if s.total > 0 && n >= s.total {
		return 0, false
	}
	due, ok := s.due(n)
	if !ok || s.ended(n, due) {
		return 0, false
	}
	if wait := time.Until(s.start.Add(due)); wait > 0 {
		if *timer == nil {
			*timer = time.NewTimer(wait)
		} else {
			(*timer).Reset(wait)
		}
		select {
		case <-(*timer).C:
		case <-ctx.Done():
			(*timer).Stop()
			return 0, false
		}
	}
	if s.ended(n, time.Since(s.start)) {
		return 0, false
	}
	return n, true
}

// due is when call n's turn comes, from start; false when it is too far to
// tell.
func (s *schedule) due(n int64) (time.Duration, bool) {
	if s.rate <= 0 {
		return 0, true
	}
	secs := float64(n) / s.rate
	if secs >= float64(math.MaxInt64/time.Second) {
		return 0, false
	}
	return time.Duration(secs * float64(time.Second)), true
}

// ended says whether a timed load is over at t from start for call n. The
// first call is always made, so that a load that starts late still
// measures something.
func (s *schedule) ended(n int64, t time.Duration) bool {
	return s.duration > 0 && t >= s.duration && n > 0
}
