package boltledger

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"time"
)

// purgeBase is the least number of expired IDs a Record transaction may
// forget, so that a ledger receiving small batches still catches up.
const purgeBase = 64

// seen reports whether a write's ID was recorded for its application (and
// not yet forgotten), and otherwise remembers it as recorded now. Within one
// transaction an ID seen twice counts once, as across transactions. The key
// is app NUL id: names hold no control characters.
func (t *txn) seen(app, id string, now time.Time) (bool, error) {
	ids := t.tx.Bucket(idsBucket)
	k := []byte(app + "\x00" + id)
	if ids.Get(k) != nil {
		return true, nil
	}
	at := binary.BigEndian.AppendUint64(make([]byte, 0, 8), uint64(now.UnixNano()))
	if err := ids.Put(k, at); err != nil {
		return false, fmt.Errorf("put write ID %q: %w", id, err)
	}
	if err := t.tx.Bucket(idTimesBucket).Put(append(at[:8:8], k...), nil); err != nil {
		return false, fmt.Errorf("put write ID %q by time: %w", id, err)
	}
	return false, nil
}

// purge forgets at most limit IDs recorded before cutoff, oldest first:
// bounded work per transaction.
func (t *txn) purge(cutoff time.Time, limit int) error {
	ids, times := t.tx.Bucket(idsBucket), t.tx.Bucket(idTimesBucket)
	end := binary.BigEndian.AppendUint64(nil, uint64(cutoff.UnixNano()))
	// Collect first: deleting under a bbolt cursor may skip keys.
	var expired [][]byte
	c := times.Cursor()
	for k, _ := c.First(); k != nil && len(expired) < limit && bytes.Compare(k[:8], end) < 0; k, _ = c.Next() {
		expired = append(expired, bytes.Clone(k))
	}
	for _, k := range expired {
		if err := times.Delete(k); err != nil {
			return fmt.Errorf("delete expired write ID %q by time: %w", k[8:], err)
		}
		if err := ids.Delete(k[8:]); err != nil {
			return fmt.Errorf("delete expired write ID %q: %w", k[8:], err)
		}
	}
	return nil
}
