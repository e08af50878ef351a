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
// fast, and an exposure only says that a user was shown a version, which
// the ledger records idempotently, so a lost or repeated one changes no
// count that a write depends on (a write exposes its user too).
const (
	exposureBuffer   = 4096
	exposureBatch    = 500
	exposureInterval = time.Second
	// recentUsers bounds the set of exposures sent lately, so that a user
	// looked up on every request is sent once, and memory stays flat
	// however many users there are.
	recentUsers = 1 << 16
)

type exposer struct {
	ledger ledger.Ledger
	log    *slog.Logger
	queue  chan ledger.Exposure
	seed   maphash.Seed

	mu     sync.Mutex
	recent map[uint64]struct{}

	dropped atomic.Uint64
}

func newExposer(l ledger.Ledger, log *slog.Logger) *exposer {
	return &exposer{ledger: l, log: log, queue: make(chan ledger.Exposure, exposureBuffer),
		seed: maphash.MakeSeed(), recent: make(map[uint64]struct{}, recentUsers)}
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
	case e.queue <- x:
	default:
		e.dropped.Add(1)
	}
}

// run sends queued exposures in batches until ctx is done, then flushes.
func (e *exposer) run(ctx context.Context) {
	tick := time.NewTicker(exposureInterval)
	defer tick.Stop()
	var batch []ledger.Exposure
	flush := func(ctx context.Context) {
		if len(batch) == 0 {
			return
		}
		if err := e.ledger.Expose(ctx, batch); err != nil {
			e.log.Warn("record exposures", "count", len(batch), "error", err)
		}
		batch = batch[:0]
	}
	for {
		select {
		case x := <-e.queue:
			batch = append(batch, x)
			if len(batch) >= exposureBatch {
				flush(ctx)
			}
		case <-tick.C:
			flush(ctx)
		case <-ctx.Done():
			for {
				select {
				case x := <-e.queue:
					batch = append(batch, x)
				default:
					flushCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					flush(flushCtx)
					cancel()
					return
				}
			}
		}
	}
}
