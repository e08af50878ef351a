package boltledger

import (
	"context"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/iter8-tools/iter8/pkg/abn/ledger"
)

// Record stores writes all or nothing and returns nil once they are
// durable. Every write is validated first: the first invalid one's
// *ledger.FieldError is returned and nothing is stored. A write whose ID
// was recorded within the dedupe window is acknowledged and not counted.
func (l *Ledger) Record(ctx context.Context, writes []ledger.Write) error {
	for i := range writes {
		if err := writes[i].Validate(); err != nil {
			return err
		}
	}
	if err := l.usable(ctx); err != nil {
		return fmt.Errorf("record in ledger %s: %w", l.path, err)
	}
	if len(writes) == 0 {
		return nil
	}
	// Batch may call this again alone: it keeps no state between calls
	// and reads everything (the IDs too) inside the transaction.
	err := l.db.Batch(func(tx *bolt.Tx) error {
		now := time.Now()
		t := newTxn(tx, l.opts, l.journal)
		if err := t.purge(now.Add(-l.opts.DedupeWindow), 2*len(writes)+purgeBase); err != nil {
			return err
		}
		for i := range writes {
			w := &writes[i]
			seen, err := t.seen(w.App, w.ID, now)
			if err != nil {
				return err
			}
			if seen {
				continue
			}
			if err := t.record(w); err != nil {
				return err
			}
		}
		return t.count()
	})
	if err != nil {
		return fmt.Errorf("record in ledger %s: %w", l.path, err)
	}
	return nil
}

// Expose records users' exposures, all or nothing: a user counts once per
// version, in the cohort of their first exposure, so retries are harmless.
// New users go to the journal; once it holds enough, each call also merges
// a part of it into the users buckets (a failed merge is Check's error,
// and Check retries it).
func (l *Ledger) Expose(ctx context.Context, exposures []ledger.Exposure) error {
	for i := range exposures {
		if err := exposures[i].Validate(); err != nil {
			return err
		}
	}
	if err := l.usable(ctx); err != nil {
		return fmt.Errorf("expose in ledger %s: %w", l.path, err)
	}
	if len(exposures) == 0 {
		return nil
	}
	l.exposing.Lock()
	defer l.exposing.Unlock()
	// Update, not Batch: the exposer sends batches already, and a journal
	// transaction is never run twice.
	var t *txn
	err := l.db.Update(func(tx *bolt.Tx) error {
		t = newTxn(tx, l.opts, l.journal)
		t.journaling = true
		for _, e := range exposures {
			if _, err := t.expose(e.App, e.Version, e.User, e.At); err != nil {
				return err
			}
		}
		return t.count()
	})
	if err != nil {
		if t != nil {
			l.journal.undo(t.hints)
		}
		return fmt.Errorf("expose in ledger %s: %w", l.path, err)
	}
	// After a failed merge, Check retries it (readiness probes call
	// it): a failing step is not repeated with every batch.
	if l.mergeError() == nil {
		l.noteMerge(l.merge(len(exposures)))
	}
	return nil
}
