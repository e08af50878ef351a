package boltledger

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"slices"
	"strings"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// The journal holds the users that Expose found new, until they are merged
// into their versions' users buckets: appending to it dirties one page per
// transaction, where putting random user IDs into a large users bucket
// dirties (reads, rewrites and fsyncs) a page per user. Merges put many
// users, sorted, into each page they dirty. See the package doc.

// journalBucket holds journal/<seq> → cohort time key, app, version, user.
var journalBucket = []byte("journal")

const (
	// mergeAt is how many users the journal holds before a merge round
	// starts: the more, the more users share each page a merge dirties,
	// but the longer a round's sort and the larger pending (about 20 bytes
	// a user).
	mergeAt = 65536
	// mergeChunk is how many users one merge transaction puts, at least:
	// short enough that it holds the CPU for a few milliseconds.
	mergeChunk = 512
)

// journal is the Ledger's index of its journal. pending maps a hash of
// (app, version, user) to the journal entry that holds them: a hint that
// every lookup checks against the entry itself, so that an entry rolled
// back, forgotten or merged away, or another user with the same hash, is
// never taken for the user.
type journal struct {
	// hash keys pending by (app, version, user); tests make it collide.
	hash func(app, version, user string) uint64
	// mergeAt and chunk are the constants; tests set smaller ones.
	mergeAt, chunk int

	mu      sync.Mutex
	pending map[uint64]uint64
	// round is the journal's entries being merged, sorted by user key;
	// only Expose touches it, under Ledger.exposing.
	round []journalEntry
}

// journalEntry is an entry of a merge round.
type journalEntry struct {
	key string // app \x00 version \x00 user
	seq uint64
}

func newJournal() *journal {
	seed := maphash.MakeSeed() // pending lives in memory only
	hash := func(app, version, user string) uint64 {
		var h maphash.Hash
		h.SetSeed(seed)
		h.WriteString(app)
		h.WriteByte(0)
		h.WriteString(version)
		h.WriteByte(0)
		h.WriteString(user)
		return h.Sum64()
	}
	return &journal{hash: hash, mergeAt: mergeAt, chunk: mergeChunk, pending: map[uint64]uint64{}}
}

// userKey joins what identifies an exposed user; application and version
// names cannot hold a NUL byte (checkKeys), so it is unambiguous.
func userKey(app, version, user string) string { return app + "\x00" + version + "\x00" + user }

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(make([]byte, 0, 8), seq) }

func encodeEntry(cohort []byte, app, version, user string) []byte {
	b := make([]byte, 0, timeKeyLen+2*binary.MaxVarintLen16+len(app)+len(version)+len(user))
	b = append(b, cohort...)
	b = binary.AppendUvarint(b, uint64(len(app)))
	b = append(b, app...)
	b = binary.AppendUvarint(b, uint64(len(version)))
	b = append(b, version...)
	return append(b, user...)
}

// decodeEntry splits an entry; ok is false for one this code did not
// write.
func decodeEntry(b []byte) (cohort, app, version, user []byte, ok bool) {
	if len(b) < timeKeyLen {
		return nil, nil, nil, nil, false
	}
	cohort, b = b[:timeKeyLen], b[timeKeyLen:]
	field := func() []byte {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			ok = false
			return nil
		}
		f := b[k : k+int(n)]
		b = b[k+int(n):]
		return f
	}
	ok = true
	app = field()
	version = field()
	return cohort, app, version, b, ok
}

// lookup says where (app, version, user) stands in the journal: found
// (with the cohort), or not found and free to be added, or not found while
// another user's entry holds the hash (then the user goes straight to the
// users bucket).
type lookup int

const (
	absent lookup = iota
	found
	taken
)

func (j *journal) find(tx *bolt.Tx, h uint64, app, version, user string) (lookup, []byte) {
	j.mu.Lock()
	seq, ok := j.pending[h]
	j.mu.Unlock()
	if !ok {
		return absent, nil
	}
	e := tx.Bucket(journalBucket).Get(seqKey(seq))
	if e == nil {
		return absent, nil // rolled back, forgotten or merged: a stale hint
	}
	cohort, a, v, u, ok := decodeEntry(e)
	if ok && string(a) == app && string(v) == version && string(u) == user {
		return found, cohort
	}
	return taken, nil
}

// add appends an entry in tx and points the hash at it at once, so that
// the transactions after this one find it. Should tx roll back, the hint
// is stale, which find tells.
func (j *journal) add(tx *bolt.Tx, h uint64, cohort []byte, app, version, user string) error {
	b := tx.Bucket(journalBucket)
	seq, err := b.NextSequence()
	if err != nil {
		return fmt.Errorf("journal user %s of %s/%s: %w", user, app, version, err)
	}
	if err := b.Put(seqKey(seq), encodeEntry(cohort, app, version, user)); err != nil {
		return fmt.Errorf("journal user %s of %s/%s: %w", user, app, version, err)
	}
	j.mu.Lock()
	j.pending[h] = seq
	j.mu.Unlock()
	return nil
}

func (j *journal) size() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return len(j.pending)
}

// load points the hashes at the journal's entries and nothing else
// (dropping stale hints), and returns the entries when a merge round is
// wanted. It runs at Open and, to start a round, under Expose's lock: no
// entry is added meanwhile.
func (j *journal) load(tx *bolt.Tx, round bool) ([]journalEntry, error) {
	pending := make(map[uint64]uint64, len(j.pending))
	var entries []journalEntry
	err := tx.Bucket(journalBucket).ForEach(func(k, e []byte) error {
		_, a, v, u, ok := decodeEntry(e)
		if !ok || len(k) != 8 {
			return fmt.Errorf("read journal entry %x: not an entry of this format", k)
		}
		seq := binary.BigEndian.Uint64(k)
		pending[j.hash(string(a), string(v), string(u))] = seq
		if round {
			entries = append(entries, journalEntry{key: userKey(string(a), string(v), string(u)), seq: seq})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	j.mu.Lock()
	j.pending = pending
	j.mu.Unlock()
	slices.SortFunc(entries, func(x, y journalEntry) int { return strings.Compare(x.key, y.key) })
	return entries, nil
}

// mergeInto puts the next users of the round into their users buckets
// and deletes their entries, in tx. An entry that is gone was forgotten
// with its application.
func (j *journal) mergeInto(tx *bolt.Tx, chunk []journalEntry) error {
	jb, apps := tx.Bucket(journalBucket), tx.Bucket(appsBucket)
	for _, e := range chunk {
		sk := seqKey(e.seq)
		entry := jb.Get(sk)
		if entry == nil {
			continue
		}
		cohort, a, v, u, ok := decodeEntry(entry)
		if !ok {
			return fmt.Errorf("read journal entry %d: not an entry of this format", e.seq)
		}
		users := nestedBucket(apps, a, v, usersBucket)
		if users == nil {
			return fmt.Errorf("merge user %s of %s/%s: the version's users bucket is missing", u, a, v)
		}
		// No user in the journal is in its users bucket too: expose
		// looks in both before it adds one to either. Put keeps the
		// slices until the transaction ends, and the entry's bytes are
		// deleted below: copies.
		if err := users.Put(bytes.Clone(u), bytes.Clone(cohort)); err != nil {
			return fmt.Errorf("merge user %s of %s/%s: %w", u, a, v, err)
		}
		if err := jb.Delete(sk); err != nil {
			return fmt.Errorf("delete journal entry %d: %w", e.seq, err)
		}
	}
	return nil
}

// merged drops the hints of merged entries (unless the hash points at a
// newer entry now).
func (j *journal) merged(chunk []journalEntry) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, e := range chunk {
		app, rest, _ := strings.Cut(e.key, "\x00")
		version, user, _ := strings.Cut(rest, "\x00")
		if h := j.hash(app, version, user); j.pending[h] == e.seq {
			delete(j.pending, h)
		}
	}
}

// forget deletes, in tx, the entries of the applications given.
func (j *journal) forget(tx *bolt.Tx, gone map[string]bool) error {
	b := tx.Bucket(journalBucket)
	var doomed [][]byte
	err := b.ForEach(func(k, e []byte) error {
		if _, a, _, _, ok := decodeEntry(e); ok && gone[string(a)] {
			doomed = append(doomed, bytes.Clone(k))
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range doomed {
		if err := b.Delete(k); err != nil {
			return fmt.Errorf("delete journal entry %x: %w", k, err)
		}
	}
	return nil
}

// nestedBucket walks bucket names from b; nil when one is missing.
func nestedBucket(b *bolt.Bucket, names ...[]byte) *bolt.Bucket {
	for _, n := range names {
		if b = b.Bucket(n); b == nil {
			return nil
		}
	}
	return b
}
