package boltledger

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"slices"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// The journal holds the users that Expose found new, until they are merged
// into their versions' users buckets: appending to it dirties its last
// pages, where putting random user IDs into a large users bucket dirties
// (reads, rewrites and fsyncs) a page per user. Merges put many users,
// sorted, into each page they dirty. See the package doc.

// journalBucket holds journal/<seq> → cohort time key, app, version, user.
var journalBucket = []byte("journal")

const (
	// mergeAt is how many hinted users the journal holds before a merge
	// round starts: the more, the more users share each page a merge
	// dirties, but the more memory: pending takes 10-20 bytes a user (a
	// map of 32-bit pairs), and a round's sorted runs 8 while it lasts.
	// 32,768, with merges of 4 times a call's users, took a pinned
	// service's Lookups of new users at 20,000/s to a p99 of 230-300 ms
	// (separate runs with 65,536: 5-9 ms).
	mergeAt = 65536
	// loadStep is how many entries one Expose call reads and sorts (or
	// trims) in a round, and mergeChunk how many users one merge
	// transaction puts (fewer at a call's or a round's end): each holds
	// the CPU for about a millisecond, since on one CPU Lookups wait
	// meanwhile. With 8192 and 256, a little less CPU a user, the service
	// pinned to one core answered Lookups of new users at 20,000/s with a
	// p99 of 11-16 ms instead of about 3 ms (scripts/bench/abn, user
	// names in sequence).
	loadStep   = 2048
	mergeChunk = 64
	// readCatchUp and mergeCatchUp: a step that reads or trims covers at
	// least 4 times the users its call added, one that merges twice as
	// many (merging costs the most), so that under a backlog a round adds
	// no more users than it holds (see merge).
	readCatchUp, mergeCatchUp = 4, 2
	// mergeTxs bounds the merge transactions of one Expose call: each
	// costs two fsyncs, and under a backlog 64 of them a call slowed the
	// exposer enough to drop exposures. A backlog makes them larger
	// instead of more.
	mergeTxs = 4
)

// journal is the Ledger's index of its journal. pending maps a hash of
// (app, version, user) to the journal entry that holds them: a hint that
// every lookup checks against the entry itself, so that an entry rolled
// back, forgotten or merged away, or another user with the same hash, is
// never taken for the user. Hints hold the low 32 bits of both hash and
// sequence, half the memory of whole ones: the entry is checked anyway,
// and the journal's live entries span far fewer than 2^32 sequence
// numbers, so the low bits tell the whole (hintSeq). That holds while
// rounds end; after a merge that kept failing (Check's error) for 2^32
// new users, an old hint would name a newer entry, and the user it stood
// for, not found, would be counted again.
type journal struct {
	// hash keys pending by user key (appendUserKey); tests make it
	// collide.
	hash func(userKey []byte) uint64
	// mergeAt, step and chunk are the constants; tests set smaller ones.
	mergeAt, step, chunk int

	mu      sync.Mutex
	pending map[uint32]uint32

	// A merge round covers the entries up to roundEnd (0: no round). It
	// reads them a step at a time (up to readTo), each step sorted by user
	// key into a run, then merges the runs' smallest entries first, then
	// trims them. Only Expose and Check touch these, under
	// Ledger.exposing.
	roundEnd, readTo uint64
	runs             []*run
}

// run is a step of a merge round: journal sequence numbers sorted by
// their entries' user keys. Only the head's key is held, read from the
// journal in each merge transaction, so that a round costs 8 bytes a user
// in memory rather than a copy of every key.
type run struct {
	seqs []uint64
	// head is the user key of seqs[0] and entry its journal entry, valid
	// only in the transaction that read them; empty until read.
	head, entry []byte
}

// mergeItem is an entry merged by a transaction: its hint is dropped once
// the transaction commits.
type mergeItem struct{ seq, hash uint64 }

// hintSeq is the journal sequence number whose low 32 bits are low, among
// the 2^32 up to last (the journal's sequence now). The hint of a
// transaction rolled back, above last until undo drops it, names no
// entry: it wraps past any (last < 2^32) or names one 2^32 back, trimmed
// long before.
func hintSeq(low uint32, last uint64) uint64 { return last - uint64(uint32(last)-low) }

func newJournal() *journal {
	seed := maphash.MakeSeed() // pending lives in memory only
	hash := func(userKey []byte) uint64 { return maphash.Bytes(seed, userKey) }
	return &journal{hash: hash, mergeAt: mergeAt, step: loadStep, chunk: mergeChunk, pending: map[uint32]uint32{}}
}

// appendUserKey joins what identifies an exposed user, the order in which
// a round merges them; application and version names cannot hold a NUL
// byte (checkKeys), so it is unambiguous.
func appendUserKey[T string | []byte](b []byte, app, version, user T) []byte {
	b = append(append(b, app...), 0)
	b = append(append(b, version...), 0)
	return append(b, user...)
}

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(make([]byte, 0, 8), seq) }

// seqOf reads a journal key, as a number for errors and bounds.
func seqOf(k []byte) uint64 {
	if len(k) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(k)
}

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
	low, ok := j.pending[uint32(h)]
	j.mu.Unlock()
	if !ok {
		return absent, nil
	}
	b := tx.Bucket(journalBucket)
	e := b.Get(seqKey(hintSeq(low, b.Sequence())))
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
// the transactions after this one find it; it returns the entry's
// sequence for undo. A hint left by a transaction rolled back is stale,
// which find tells.
func (j *journal) add(tx *bolt.Tx, h uint64, cohort []byte, app, version, user string) (uint64, error) {
	b := tx.Bucket(journalBucket)
	b.FillPercent = 1 // appended to only: full pages
	seq, err := b.NextSequence()
	if err != nil {
		return 0, fmt.Errorf("journal user %s of %s/%s: next sequence: %w", user, app, version, err)
	}
	if err := b.Put(seqKey(seq), encodeEntry(cohort, app, version, user)); err != nil {
		return 0, fmt.Errorf("journal user %s of %s/%s: put entry %d: %w", user, app, version, seq, err)
	}
	j.mu.Lock()
	j.pending[uint32(h)] = uint32(seq)
	j.mu.Unlock()
	return seq, nil
}

// hint is a hash and the journal entry it points at.
type hint struct{ hash, seq uint64 }

// undo drops the hints of a transaction that rolled back.
func (j *journal) undo(hints []hint) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, h := range hints {
		if low, ok := j.pending[uint32(h.hash)]; ok && low == uint32(h.seq) {
			delete(j.pending, uint32(h.hash))
		}
	}
}

func (j *journal) size() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return len(j.pending)
}

// load points the hashes at the journal's entries, at Open.
func (j *journal) load(tx *bolt.Tx) error {
	return tx.Bucket(journalBucket).ForEach(func(k, e []byte) error {
		_, a, v, u, ok := decodeEntry(e)
		if !ok || len(k) != 8 {
			return fmt.Errorf("read journal entry %d: not an entry of this format", seqOf(k))
		}
		j.pending[uint32(j.hash(appendUserKey(nil, a, v, u)))] = uint32(binary.BigEndian.Uint64(k))
		return nil
	})
}

// readStep reads the round's next n entries (fewer at its end) into a run
// sorted by user key.
func (j *journal) readStep(tx *bolt.Tx, n int) error {
	// The step's keys share one buffer, dropped with the step.
	type entry struct {
		seq        uint64
		start, end int
	}
	var keys []byte
	read := make([]entry, 0, n)
	c := tx.Bucket(journalBucket).Cursor()
	// readTo moves only once the whole step is read: a step that fails is
	// read again from its start, since the round trims what it read.
	readTo := j.readTo
	k, e := c.Seek(seqKey(readTo + 1))
	for ; k != nil && len(read) < n; k, e = c.Next() {
		seq := seqOf(k)
		if seq > j.roundEnd {
			break
		}
		_, a, v, u, ok := decodeEntry(e)
		if !ok || len(k) != 8 {
			return fmt.Errorf("read journal entry %d: not an entry of this format", seq)
		}
		start := len(keys)
		keys = appendUserKey(keys, a, v, u)
		read = append(read, entry{seq, start, len(keys)})
		readTo = seq
	}
	if k == nil || len(read) < n {
		readTo = j.roundEnd // nothing more up to the end
	}
	j.readTo = readTo
	if len(read) == 0 {
		return nil
	}
	slices.SortFunc(read, func(x, y entry) int { return bytes.Compare(keys[x.start:x.end], keys[y.start:y.end]) })
	r := &run{seqs: make([]uint64, len(read))}
	for i, e := range read {
		r.seqs[i] = e.seq
	}
	j.runs = append(j.runs, r)
	return nil
}

// mergeStep puts up to n of the round's smallest users into their users
// buckets, in tx, and returns the entries it took from the runs. An entry
// that is gone was forgotten with its application. The entries stay until
// the round trims them, oldest first: deleted in the order merged they
// would dirty a journal page each.
func (j *journal) mergeStep(tx *bolt.Tx, n int) ([]mergeItem, error) {
	jb, apps := tx.Bucket(journalBucket), tx.Bucket(appsBucket)
	for _, r := range j.runs {
		r.head, r.entry = r.head[:0], nil // read in an earlier transaction
	}
	var done []mergeItem
	for len(done) < n {
		least := -1
		for i, r := range j.runs {
			if err := j.readHead(jb, r); err != nil {
				return done, err
			}
			if len(r.seqs) > 0 && (least < 0 || bytes.Compare(r.head, j.runs[least].head) < 0) {
				least = i
			}
		}
		if least < 0 {
			break
		}
		r := j.runs[least]
		seq, hash := r.seqs[0], j.hash(r.head)
		cohort, a, v, u, _ := decodeEntry(r.entry) // readHead decoded it
		r.seqs, r.head, r.entry = r.seqs[1:], r.head[:0], nil
		done = append(done, mergeItem{seq: seq, hash: hash})
		users := nestedBucket(apps, a, v, usersBucket)
		if users == nil {
			return done, fmt.Errorf("merge journal entry %d (user %s of %s/%s): the version's users bucket is missing", seq, u, a, v)
		}
		// A user merged before (a round cut short by a crash) is put
		// again with the same cohort. Put keeps the slices until the
		// transaction ends: copies, as bbolt's own may move.
		if err := users.Put(bytes.Clone(u), bytes.Clone(cohort)); err != nil {
			return done, fmt.Errorf("merge journal entry %d (user %s of %s/%s): %w", seq, u, a, v, err)
		}
	}
	return done, nil
}

// readHead reads the entry and user key of a run's head unless they are
// held, dropping heads whose entries are gone (forgotten).
func (j *journal) readHead(jb *bolt.Bucket, r *run) error {
	for len(r.head) == 0 && len(r.seqs) > 0 {
		e := jb.Get(seqKey(r.seqs[0]))
		if e == nil {
			r.seqs = r.seqs[1:]
			continue
		}
		_, a, v, u, ok := decodeEntry(e)
		if !ok {
			return fmt.Errorf("read journal entry %d: not an entry of this format", r.seqs[0])
		}
		r.head, r.entry = appendUserKey(r.head, a, v, u), e
	}
	return nil
}

// unmerge puts back entries that mergeStep took in a transaction that
// failed, as a run of their own (they are in order): a later call merges
// them.
func (j *journal) unmerge(items []mergeItem) {
	if len(items) == 0 {
		return
	}
	r := &run{seqs: make([]uint64, len(items))}
	for i, it := range items {
		r.seqs[i] = it.seq
	}
	j.runs = append(j.runs, r)
}

// merged drops the hints of merged entries (unless the hash points at a
// newer entry now): lookups find those users in their users buckets.
func (j *journal) merged(items []mergeItem) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, it := range items {
		if low, ok := j.pending[uint32(it.hash)]; ok && low == uint32(it.seq) {
			delete(j.pending, uint32(it.hash))
		}
	}
}

// trim deletes up to n of the round's entries, oldest first, and says
// whether any is left.
func (j *journal) trim(tx *bolt.Tx, n int) (bool, error) {
	b := tx.Bucket(journalBucket)
	var done [][]byte
	c := b.Cursor()
	for k, _ := c.First(); k != nil && len(done) < n && seqOf(k) <= j.roundEnd; k, _ = c.Next() {
		done = append(done, bytes.Clone(k))
	}
	for _, k := range done {
		if err := b.Delete(k); err != nil {
			return false, fmt.Errorf("delete journal entry %d: %w", seqOf(k), err)
		}
	}
	return len(done) == n, nil
}

// merge does one step of a merge round, which starts once the journal
// holds mergeAt users: it reads and sorts a step of the round's entries,
// then merges them into the users buckets a chunk a transaction, then
// deletes them a step at a time. Each step covers several times as many
// users as were just added: a round's three passes over its entries then
// add no more than it holds (a quarter, a half and a quarter), so rounds
// do not grow from one to the next. The caller holds l.exposing.
func (l *Ledger) merge(added int) error {
	j := l.journal
	if j.roundEnd == 0 {
		if j.size() < j.mergeAt {
			return nil
		}
		if err := l.db.View(func(tx *bolt.Tx) error { j.roundEnd = tx.Bucket(journalBucket).Sequence(); return nil }); err != nil {
			return err
		}
		j.readTo, j.runs = 0, nil
	}
	if j.readTo < j.roundEnd {
		return l.db.View(func(tx *bolt.Tx) error { return j.readStep(tx, max(j.step, readCatchUp*added)) })
	}
	left := max(j.chunk, mergeCatchUp*added)
	size := max(j.chunk, (left+mergeTxs-1)/mergeTxs)
	for left > 0 {
		j.runs = slices.DeleteFunc(j.runs, func(r *run) bool { return len(r.seqs) == 0 })
		if len(j.runs) == 0 {
			break // no transaction (and fsync) for nothing
		}
		var done []mergeItem
		err := l.db.Update(func(tx *bolt.Tx) (err error) {
			done, err = j.mergeStep(tx, min(size, left))
			return err
		})
		if err != nil {
			j.unmerge(done)
			return err
		}
		if len(done) == 0 {
			break
		}
		j.merged(done)
		left -= len(done)
	}
	if left <= 0 {
		return nil
	}
	j.runs = nil
	var more bool
	var last uint64
	err := l.db.Update(func(tx *bolt.Tx) (err error) {
		more, err = j.trim(tx, max(j.step, readCatchUp*added))
		last = tx.Bucket(journalBucket).Sequence()
		return err
	})
	if err == nil && !more {
		j.ended(last)
	}
	return err
}

// ended closes a round, dropping every hint to an entry it covered: those
// entries are merged and trimmed, or were forgotten (Forget leaves their
// hints, which would count towards mergeAt for good).
func (j *journal) ended(last uint64) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for h, low := range j.pending {
		if hintSeq(low, last) <= j.roundEnd {
			delete(j.pending, h)
		}
	}
	j.roundEnd = 0
}

// forget deletes, in tx, the entries of the applications given.
func (j *journal) forget(tx *bolt.Tx, gone map[string]bool) error {
	if len(gone) == 0 {
		return nil
	}
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
			return fmt.Errorf("delete journal entry %d: %w", seqOf(k), err)
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
