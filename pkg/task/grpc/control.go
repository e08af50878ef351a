package grpc

import (
	"math"
	"sync"
	"time"

	"github.com/bojand/ghz/load"
)

// control starts, paces and stops one ghz Requester in place of runner.Run
// (see the package documentation). Requester.Stop is what
// aborts calls in flight (it closes the connections), but it sends on a
// channel that Requester.Run closes as it returns: a Stop that comes too late
// panics, and so would a second one once the first has been read. control
// therefore calls Stop at most once, and only while Run provably cannot have
// returned:
//
//   - The requester's pacer loop calls Pace before every call it hands to a
//     worker. Pace called with hits >= 1 shows that a call was handed to a
//     worker (the loop only comes back to Pace after a hand-off, and Stop
//     has not been called before that). From then on Run waits for that
//     worker, which is stopped only after the loop has called the worker
//     ticker's Finish: so Finish happens before Run returns.
//   - Finish marks the load finished. Stop is called only when a call has
//     been handed off and the load is not finished, under the same lock as
//     Finish, so it always comes before Run closes the channel.
//
// Cancellation also ends the pacer loop itself (Pace returns stop, and wakes
// from any wait for the next call's turn at once), so a load that has not
// yet handed off a call ends cleanly without Stop.
type control struct {
	mu        sync.Mutex
	delivered bool // a call has been handed to a worker
	finished  bool // the pacer loop has ended, or Run has returned
	cancelled bool
	stop      func() // Requester.Stop: set before the load starts, nil once called

	cancelCh chan struct{} // closed on cancel
}

func newControl() *control {
	return &control{cancelCh: make(chan struct{})}
}

// cancel ends the load as soon as it safely can.
func (c *control) cancel() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.cancelled {
		c.cancelled = true
		close(c.cancelCh)
	}
	c.maybeStop()
}

// markDelivered records that a call has been handed to a worker.
func (c *control) markDelivered() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.delivered = true
	c.maybeStop()
}

// finish records that Run is returning or about to.
func (c *control) finish() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.finished = true
}

// maybeStop stops the requester if a cancel is pending and it is safe; c.mu
// is held.
func (c *control) maybeStop() {
	if c.cancelled && c.delivered && !c.finished && c.stop != nil {
		c.stop()
		c.stop = nil
	}
}

// pacer is the requester's load.Pacer: it hands out calls at a constant
// rate (or as fast as workers take them), up to max calls or until duration
// has passed, and stops at once when the load is cancelled.
type pacer struct {
	ctl      *control
	rate     float64       // calls per second; 0 means no limit
	max      uint64        // 0 means no limit
	duration time.Duration // 0 means no limit

	// Used by the pacer loop's goroutine only.
	delivered bool
	timer     *time.Timer
}

// Pace implements load.Pacer. Unlike ghz's pacers it waits for the next
// call's turn itself and returns no wait, so that a cancel ends the wait.
func (p *pacer) Pace(elapsed time.Duration, hits uint64) (time.Duration, bool) {
	if hits >= 1 && !p.delivered {
		p.delivered = true
		p.ctl.markDelivered()
	}
	select {
	case <-p.ctl.cancelCh:
		return 0, true
	default:
	}
	if p.max > 0 && hits >= p.max {
		return 0, true
	}
	// A timed load hands off at least one call, so that its end always
	// comes through a worker (see control).
	ended := func(t time.Duration) bool { return p.duration > 0 && t >= p.duration && hits > 0 }
	if ended(elapsed) {
		return 0, true
	}
	if p.rate <= 0 {
		return 0, false
	}
	due := time.Duration(math.MaxInt64) // a turn too far to tell
	if secs := float64(hits) / p.rate; secs < float64(math.MaxInt64/time.Second) {
		due = time.Duration(secs * float64(time.Second))
	}
	if ended(due) {
		return 0, true // the next call's turn comes after the end
	}
	if wait := due - elapsed; wait > 0 {
		if p.timer == nil {
			p.timer = time.NewTimer(wait)
		} else {
			p.timer.Reset(wait)
		}
		select {
		case <-p.timer.C:
		case <-p.ctl.cancelCh:
			p.timer.Stop()
			return 0, true
		}
	}
	return 0, false
}

// Rate implements load.Pacer.
func (p *pacer) Rate(time.Duration) float64 { return p.rate }

// ticker is the requester's load.WorkerTicker: ghz's constant number of
// workers, with Finish recorded in control. Finish also waits for Run to
// have handed over the number of workers, as closing the channel first
// would make Run send on a closed channel.
type ticker struct {
	*load.ConstWorkerTicker
	ctl *control
	ran chan struct{}
}

func newTicker(ctl *control, workers int) *ticker {
	inner := &load.ConstWorkerTicker{N: uint(workers), C: make(chan load.TickValue)}
	return &ticker{ConstWorkerTicker: inner, ctl: ctl, ran: make(chan struct{})}
}

// Run implements load.WorkerTicker.
func (t *ticker) Run() {
	t.ConstWorkerTicker.Run()
	close(t.ran)
}

// Finish implements load.WorkerTicker.
func (t *ticker) Finish() {
	<-t.ran
	t.ctl.finish()
	t.ConstWorkerTicker.Finish()
}
