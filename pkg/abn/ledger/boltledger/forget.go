package boltledger

import (
	"context"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Forget removes, in one transaction, every application whose last write
// or exposure was recorded before the time given. Write IDs stay until
// their dedupe window ends, so a late retry of a forgotten write counts
// nothing.
func (l *Ledger) Forget(ctx context.Context, before time.Time) ([]string, error) {
	if err := l.usable(ctx); err != nil {
		return nil, fmt.Errorf("forget in ledger %s: %w", l.path, err)
	}
	var gone []string
	err := l.db.Update(func(tx *bolt.Tx) error {
		gone = gone[:0]
		apps := tx.Bucket(appsBucket)
		err := apps.ForEachBucket(func(name []byte) error {
			touched := apps.Bucket(name).Get(touchedKey)
			if touched == nil || parseTime(touched).Before(before) {
				gone = append(gone, string(name))
			}
			return nil
		})
		if err != nil {
			return err
		}
		forgotten := map[string]bool{}
		for _, name := range gone {
			if err := apps.DeleteBucket([]byte(name)); err != nil {
				return fmt.Errorf("delete application %s: %w", name, err)
			}
			forgotten[name] = true
		}
		return l.journal.forget(tx, forgotten)
	})
	if err != nil {
		return nil, fmt.Errorf("forget in ledger %s: %w", l.path, err)
	}
	return gone, nil
}
