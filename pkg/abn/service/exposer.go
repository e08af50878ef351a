package service

import (
	"context"
	"hash/maphash"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/iter8-tools/iter8/pkg/abn/ledger"
)

// Exposures are recorded off Lookup's path, in batches: Lookup must stay
// fast. They are the denominator of conversion rates (users shown a
// version), so one that cannot be queued or stored is forgotten by the set
// of recent exposures too, and the user's next Lookup tries again.
//
// The queue and the batch are sized for new users at full speed: each
// ledger call costs a transaction, or more with a merge step, each with
// two fsyncs (bbolt), or a round trip (Redis). With batches of 500 in a
// queue of 4096, 17-23% of the exposures were dropped on 2 cores when
// every Lookup was a new user's, at up to 100,000 a second (`make
// bench-abn`); with these sizes none were with the service pinned to one
// core: new users beyond what the ledger stores on the service's cores
// are dropped whatever the sizes (docs/abn-figures.md).
// The queue's buffer, about 1.3 MB, is allocated up front.
//
// A batch is what is queued when the ledger is free, sent at most every
// exposureEvery unless exposureSoon wait in the queue: it grows with the
// load and no more. In a process with one CPU (pinned, or limited to one
// by its cgroup, so GOMAXPROCS=1), Lookups wait while a batch is stored:
//   - Storing is mostly CPU in bbolt (boltledger's journal and its merges),
//     until Go's scheduler preempts it, every 10 ms: batches filled to 2048
//     made that the tail of Lookup's latency at 20,000 new users a second
//     (before the journal, when each new user cost 26-60 µs). Hence
//     exposureSoon: under a stream of new users, batches of about 256.
//   - A goroutine in a system call keeps Go's one processor until the
//     runtime's monitor thread hands it on, at times milliseconds later:
//     in a trace of new users at 20,000 a second, with batches every 10
//     ms, fdatasync held it for 0.3-7 ms, 6% of the time. Sent every 10
//     ms, batches lifted the Lookups stream's p99 at 20,000 Lookups a
//     second, one in 20 or 100 a new user's, to 1.25-2.05 ms; every 100
//     ms, it was 0.53-0.97 ms (docs/abn-figures.md).
const (
	exposureBuffer = 16384
	exposureBatch  = 2048
	exposureEvery  = 100 * time.Millisecond
	exposureSoon   = 256
	// reportInterval is how often exposures not recorded (dropped, or
	// refused by the ledger) are logged, at most.
	reportInterval = time.Second
	// exposureTimeout bounds one call to the ledger.
	exposureTimeout = 5 * time.Second
	// recentUsers bounds the set of exposures sent lately, so that a user
	// looked up on every request is sent once, and memory stays flat
	// however many users there are.
	recentUsers = 1 << 16
)

type exposer struct {
	ledger ledger.Ledger
	log    *slog.Logger
	queue  chan exposure
	seed   maphash.Seed
	// every is exposureEvery; tests set a longer one. soon tells run that
	// exposureSoon exposures are queued.
	every time.Duration
	soon  chan struct{}

	mu     sync.Mutex
	recent map[uint64]struct{}

	dropped atomic.Uint64
}

// exposure is a queued exposure with its key in the recent set.
type exposure struct {
	ledger.Exposure
	key uint64
}

func newExposer(l ledger.Ledger, log *slog.Logger) *exposer {
	return &exposer{ledger: l, log: log, queue: make(chan exposure, exposureBuffer),
		seed: maphash.MakeSeed(), every: exposureEvery, soon: make(chan struct{}, 1), recent: make(map[uint64]struct{}, recentUsers)}
}

// add queues an exposure unless it was queued lately; it never blocks.
func (e *exposer) add(x ledger.Exposure) {
	var h maphash.Hash
	h.SetSeed(e.seed)
	h.WriteString(x.App)
	h.WriteByte(0)
	h.WriteString(x.Version)
	h.WriteByte(0)
	h.WriteString(x.User)
	k := h.Sum64()
	e.mu.Lock()
	if _, seen := e.recent[k]; seen {
		e.mu.Unlock()
		return
	}
	if len(e.recent) >= recentUsers {
		clear(e.recent)
	}
	e.recent[k] = struct{}{}
	e.mu.Unlock()
	select {
	case e.queue <- exposure{x, k}:
		if len(e.queue) >= exposureSoon {
			select {
			case e.soon <- struct{}{}:
			default:
			}
		}
	default:
		e.dropped.Add(1)
		e.forget(k)
	}
}

// forget removes keys from the recent set, so that those users' next
// Lookups queue their exposures again.
func (e *exposer) forget(keys ...uint64) {
	e.mu.Lock()
	for _, k := range keys {
		delete(e.recent, k)
	}
	e.mu.Unlock()
}

// run sends queued exposures in batches until ctx is done, then sends what
// is queued. Every call to the ledger has a context of its own: a batch is
// not lost to the cancellation that ends run.
func (e *exposer) run(ctx context.Context) {
	tick := time.NewTicker(reportInterval)
	defer tick.Stop()
	pace := time.NewTimer(time.Hour) // Reset before each wait
	pace.Stop()
	defer pace.Stop()
	var next time.Time // when the next batch may be sent
	var batch []exposure
	var reported uint64 // drops already logged
	// Batches the ledger refused since the last report: a ledger that
	// fails fast would otherwise log up to one line per batch.
	var failedBatches, failedExposures int
	var lastFailure error
	report := func() {
		if d := e.dropped.Load(); d > reported {
			e.log.Warn("exposures not recorded: the queue to the ledger was full; each of those users' next Lookup queues theirs again",
				"count", d-reported, "total", d)
			reported = d
		}
		if failedBatches > 0 {
			e.log.Warn("exposures not recorded: the ledger failed; each of those users' next Lookup queues theirs again",
				"count", failedExposures, "batches", failedBatches, "error", lastFailure)
			failedBatches, failedExposures = 0, 0
		}
	}
	flush := func() {
		if len(batch) == 0 {
			return
		}
		xs := make([]ledger.Exposure, len(batch))
		for i := range batch {
			xs[i] = batch[i].Exposure
		}
		callCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), exposureTimeout)
		err := e.ledger.Expose(callCtx, xs)
		cancel()
		if err != nil {
			failedBatches++
			failedExposures += len(batch)
			lastFailure = err
			keys := make([]uint64, len(batch))
			for i := range batch {
				keys[i] = batch[i].key
			}
			e.forget(keys...)
		}
		batch = batch[:0]
	}
	for {
		select {
		case x := <-e.queue:
			batch = append(batch, x)
			if wait := time.Until(next); wait > 0 {
				select {
				case <-e.soon: // left from before this batch
				default:
				}
				if len(e.queue) < exposureSoon { // as add counts
					pace.Reset(wait)
					select {
					case <-pace.C:
					case <-e.soon:
						pace.Stop()
					case <-ctx.Done():
					}
				}
			}
		gather:
			for len(batch) < exposureBatch {
				select {
				case x := <-e.queue:
					batch = append(batch, x)
				default:
					break gather
				}
			}
			next = time.Now().Add(e.every)
			flush()
		case <-tick.C:
			report()
		case <-ctx.Done():
			for {
				select {
				case x := <-e.queue:
					batch = append(batch, x)
					if len(batch) >= exposureBatch {
						flush()
					}
				default:
					flush()
					report()
					return
				}
			}
		}
	}
}
