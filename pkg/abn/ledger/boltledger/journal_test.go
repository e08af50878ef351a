package boltledger

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/iter8-tools/iter8/pkg/abn/ledger"
	"github.com/iter8-tools/iter8/pkg/abn/ledger/ledgertest"
)

// openSmallJournal opens a ledger whose journal merges from 16 users on,
// reading a round in one step and merging 5 users a transaction, so that a
// test of a few hundred users sees many rounds.
func openSmallJournal(t *testing.T, path string) *Ledger {
	t.Helper()
	l, err := Open(path, ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	l.journal.mergeAt, l.journal.step, l.journal.chunk = 16, 1000, 5
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// TestConformanceWhileMerging runs the shared suite with a merge round
// started by every Expose (mergeAt 1).
func TestConformanceWhileMerging(t *testing.T) {
	ledgertest.Run(t, func(t *testing.T, opts ledger.Options) ledgertest.Opener {
		path := filepath.Join(t.TempDir(), "ledger.db")
		return func() (ledger.Ledger, error) {
			l, err := Open(path, opts)
			if err == nil {
				l.journal.mergeAt, l.journal.step, l.journal.chunk = 1, 3, 5
			}
			return l, err
		}
	}, ledgertest.Scale{Users: testUsers()})
}

// finishRound runs the merge round under way to its end, in at most 20
// steps.
func finishRound(t *testing.T, l *Ledger) {
	t.Helper()
	for range 20 {
		if l.journal.roundEnd == 0 {
			return
		}
		if err := l.merge(0); err != nil {
			t.Fatal(err)
		}
	}
	if l.journal.roundEnd != 0 {
		t.Fatal("the merge round did not end within 20 steps")
	}
}

// journaled counts the journal's entries.
func journaled(t *testing.T, l *Ledger) int {
	t.Helper()
	n := 0
	if err := l.db.View(func(tx *bolt.Tx) error { n = tx.Bucket(journalBucket).Stats().KeyN; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

var t0 = time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)

// exposures of users from..to-1 of two versions, a minute apart in turns,
// so that users fall in two cohorts.
func exposures(app string, from, to int) []ledger.Exposure {
	var es []ledger.Exposure
	for i := from; i < to; i++ {
		es = append(es, ledger.Exposure{App: app, Version: fmt.Sprintf("v%d", i%2), User: fmt.Sprintf("u%03d", (i*37)%1000),
			At: t0.Add(time.Duration(i%2) * time.Minute)})
	}
	return es
}

// writesOf makes one write for each exposure's user, an hour later (so
// that a user's cohort and the write's bucket differ).
func writesOf(es []ledger.Exposure, id string) []ledger.Write {
	ws := make([]ledger.Write, len(es))
	for i, e := range es {
		ws[i] = ledger.Write{ID: fmt.Sprintf("%s-%d", id, i), App: e.App, Version: e.Version, User: e.User, Metric: "revenue",
			Value: float64(i%7) + 0.5, At: t0.Add(time.Hour)}
	}
	return ws
}

// merged counts the users in one version's users bucket.
func mergedUsers(t *testing.T, l *Ledger, app, version string) int {
	t.Helper()
	n := 0
	_ = l.db.View(func(tx *bolt.Tx) error {
		if b := nestedBucket(tx.Bucket(appsBucket), []byte(app), []byte(version), usersBucket); b != nil {
			n = b.Stats().KeyN
		}
		return nil
	})
	return n
}

// startJournalAt sets the journal's sequence: hints hold its low 32 bits,
// which the tests near 2^32 see carry.
func startJournalAt(t *testing.T, l *Ledger, seq uint64) {
	t.Helper()
	if err := l.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(journalBucket).SetSequence(seq) }); err != nil {
		t.Fatal(err)
	}
}

// journalStarts are where the tests start the journal's sequence: at 0,
// and short of 2^32, so that hints' 32 bits carry in the middle.
var journalStarts = []uint64{0, 1<<32 - 20}

func TestJournalMergesUsersOnceAndKeepsTheirCohorts(t *testing.T) {
	for _, start := range journalStarts {
		t.Run(fmt.Sprintf("from sequence %d", start), func(t *testing.T) { testJournalMergesUsersOnce(t, start) })
	}
}

func testJournalMergesUsersOnce(t *testing.T, start uint64) {
	l := openSmallJournal(t, filepath.Join(t.TempDir(), "ledger.db"))
	startJournalAt(t, l, start)
	m := ledgertest.NewModel(ledger.Options{})
	const batch = 7 // fewer than mergeAt: rounds span several calls
	for from := 0; from < 300; from += batch {
		es := exposures("ns/shop", from, from+batch)
		ledgertest.Apply(t, l, m, es, nil)
		if journaled(t, l) == 0 {
			t.Fatalf("after %d users the journal is empty: the batch just exposed should be in it", from+batch)
		}
		// Writes for users in the journal (this batch) and merged (the
		// first ones), and exposures, an hour later, of users seen
		// before: none counts a user twice or moves their cohort.
		again := exposures("ns/shop", from/2, from/2+batch)
		for i := range again {
			again[i].At = again[i].At.Add(time.Hour)
		}
		ledgertest.Apply(t, l, m, again, writesOf(append(es, exposures("ns/shop", 0, 3)...), fmt.Sprint(from)))
		// A round starts at 16 users; reading it, merging it (at least 2
		// batches a call) and trimming it take about 4 calls of a batch
		// each.
		if n := journaled(t, l); n > 16+6*batch {
			t.Fatalf("after %d users the journal holds %d, want at most %d: merges do not keep up", from+batch, n, 16+6*batch)
		}
		if n, most := l.journal.size(), journaled(t, l); n > most {
			t.Fatalf("pending holds %d hints, more than the journal's %d entries", n, most)
		}
	}
	ledgertest.Same(t, l, m, "ns/shop")
	if n := mergedUsers(t, l, "ns/shop", "v0") + mergedUsers(t, l, "ns/shop", "v1"); n < 300-16-6*batch {
		t.Errorf("%d of 300 users merged into the users buckets, want all but those still in the journal", n)
	}
	if err := l.Check(context.Background()); err != nil {
		t.Errorf("Check after merges: %v", err)
	}
}

// TestJournalStaysBoundedUnderLargeBatches: batches larger than a step
// (a backlog) make the steps larger, so rounds do not grow from one to
// the next.
func TestJournalStaysBoundedUnderLargeBatches(t *testing.T) {
	l := openSmallJournal(t, filepath.Join(t.TempDir(), "ledger.db"))
	l.journal.step, l.journal.chunk = 4, 2
	largest := 0
	for from := 0; from < 1000; from += 20 {
		if err := l.Expose(context.Background(), exposures("ns/shop", from, from+20)); err != nil {
			t.Fatal(err)
		}
		largest = max(largest, journaled(t, l))
	}
	if largest > 100 {
		t.Errorf("the journal grew to %d users with mergeAt 16 and batches of 20, want at most 100", largest)
	}
}

func TestJournaledUsersSurviveReopening(t *testing.T) {
	for _, start := range journalStarts {
		t.Run(fmt.Sprintf("from sequence %d", start), func(t *testing.T) { testJournaledUsersSurviveReopening(t, start) })
	}
}

func testJournaledUsersSurviveReopening(t *testing.T, start uint64) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	l := openSmallJournal(t, path)
	startJournalAt(t, l, start)
	l.journal.mergeAt = 1000 // nothing merges: every user stays in the journal
	m := ledgertest.NewModel(ledger.Options{})
	es := exposures("ns/shop", 0, 30)
	ledgertest.Apply(t, l, m, es, nil)
	if n := journaled(t, l); n != 30 {
		t.Fatalf("journal holds %d users, want 30", n)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	l = openSmallJournal(t, path)
	if n := l.journal.size(); n != 30 {
		t.Fatalf("reopened: pending holds %d hints, want the journal's 30", n)
	}
	// Exposed again later, and written for: still in their first cohort.
	later := exposures("ns/shop", 0, 30)
	for i := range later {
		later[i].At = later[i].At.Add(2 * time.Hour)
	}
	ledgertest.Apply(t, l, m, later, writesOf(es, "w"))
	ledgertest.Same(t, l, m, "ns/shop")
}

func TestForgottenApplicationsLeaveTheJournal(t *testing.T) {
	l := openSmallJournal(t, filepath.Join(t.TempDir(), "ledger.db"))
	l.journal.step = 4 // with users exposed one a call, a round is read over several calls
	m := ledgertest.NewModel(ledger.Options{})
	ledgertest.Apply(t, l, m, exposures("ns/kept", 0, 10), nil)
	// The 16th user starts a round of entries 1-16 (ns/kept's 10 and
	// ns/old's first 6), read 4 a call: entries 13-16 are not read yet.
	for i := range 8 {
		ledgertest.Apply(t, l, m, exposures("ns/old", i, i+1), nil)
	}
	if j := l.journal; j.roundEnd != 16 || j.readTo != 12 {
		t.Fatalf("round end %d, read to %d after 18 users: want a round of 16 read to 12 (mergeAt 16)", j.roundEnd, j.readTo)
	}
	// Touch ns/kept later, then forget what is older.
	if err := l.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(appsBucket).Bucket([]byte("ns/kept")).Put(touchedKey, timeKey(time.Now().Add(time.Hour)))
	}); err != nil {
		t.Fatal(err)
	}
	gone, err := l.Forget(context.Background(), time.Now().Add(time.Minute))
	if err != nil || len(gone) != 1 || gone[0] != "ns/old" {
		t.Fatalf("Forget = %v, %v; want [ns/old]", gone, err)
	}
	if n := journaled(t, l); n != 10 {
		t.Errorf("journal holds %d users after forgetting ns/old, want ns/kept's 10", n)
	}
	// ns/old starts anew with other users, in a later cohort, while the
	// round goes on and ends.
	fresh := ledgertest.NewModel(ledger.Options{})
	later := exposures("ns/old", 10, 20)
	for i := range later {
		later[i].At = later[i].At.Add(2 * time.Hour)
	}
	ledgertest.Apply(t, l, fresh, later, nil)
	finishRound(t, l)
	ledgertest.Same(t, l, fresh, "ns/old")
	ledgertest.Same(t, l, m, "ns/kept")
	if n := mergedUsers(t, l, "ns/kept", "v0") + mergedUsers(t, l, "ns/kept", "v1"); n != 10 {
		t.Errorf("%d of ns/kept's 10 users in its users buckets after the round, want all", n)
	}
	// No hint outlives the round that covered its entry: those of
	// forgotten entries the round never read would count towards
	// mergeAt for good.
	last := uint64(0)
	if err := l.db.View(func(tx *bolt.Tx) error { last = tx.Bucket(journalBucket).Sequence(); return nil }); err != nil {
		t.Fatal(err)
	}
	for h, low := range l.journal.pending {
		if seq := hintSeq(low, last); seq <= 16 {
			t.Errorf("hint %x points at entry %d after the round of 16 ended", h, seq)
		}
	}
}

// TestUsersWithTheSameHashAreTold: with every hash alike, only the first
// new user goes to the journal; the others go straight to their users
// buckets, and no one is taken for another.
func TestUsersWithTheSameHashAreTold(t *testing.T) {
	l := openSmallJournal(t, filepath.Join(t.TempDir(), "ledger.db"))
	l.journal.hash = func([]byte) uint64 { return 7 }
	l.journal.mergeAt = 1 // merges free the hash again
	m := ledgertest.NewModel(ledger.Options{})
	for from := 0; from < 100; from += 10 {
		es := exposures("ns/shop", from, from+10)
		ledgertest.Apply(t, l, m, es, writesOf(es, fmt.Sprint(from)))
		ledgertest.Apply(t, l, m, exposures("ns/shop", 0, from+10), nil)
	}
	ledgertest.Same(t, l, m, "ns/shop")
	if n := mergedUsers(t, l, "ns/shop", "v0") + mergedUsers(t, l, "ns/shop", "v1"); n != 100 {
		t.Errorf("%d users in the users buckets, want all 100", n)
	}
}

func TestAFailedMergeFailsCheckUntilRepaired(t *testing.T) {
	l := openSmallJournal(t, filepath.Join(t.TempDir(), "ledger.db"))
	ledgertest.Apply(t, l, ledgertest.NewModel(ledger.Options{}), exposures("ns/shop", 0, 10), nil)
	var bad []byte
	putBad := func(tx *bolt.Tx) error {
		b := tx.Bucket(journalBucket)
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		bad = seqKey(seq)
		return b.Put(bad, []byte("short"))
	}
	if err := l.db.Update(putBad); err != nil {
		t.Fatal(err)
	}
	// The next Expose stores its users, then starts a round, which
	// cannot read the bad entry.
	if err := l.Expose(context.Background(), exposures("ns/shop", 10, 20)); err != nil {
		t.Fatalf("Expose = %v, want nil: its users were stored", err)
	}
	err := l.Check(context.Background())
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("journal entry %d", seqOf(bad))) {
		t.Fatalf("Check = %v, want the merge's error naming journal entry %d", err, seqOf(bad))
	}
	// Repaired, Check retries the merge and passes.
	if err := l.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(journalBucket).Delete(bad) }); err != nil {
		t.Fatal(err)
	}
	if err := l.Check(context.Background()); err != nil {
		t.Errorf("Check after the bad entry was removed = %v, want nil", err)
	}
	// The round goes on from the step that failed: every user reaches
	// the users buckets, none is trimmed unmerged.
	finishRound(t, l)
	if n := mergedUsers(t, l, "ns/shop", "v0") + mergedUsers(t, l, "ns/shop", "v1"); n != 20 {
		t.Errorf("%d users in the users buckets after the round, want all 20", n)
	}

	if err := l.db.Update(putBad); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := Open(l.path, ledger.Options{})
	if err == nil {
		_ = again.Close()
		t.Fatal("Open of a ledger with a bad journal entry succeeded")
	}
	if !strings.Contains(err.Error(), fmt.Sprintf("journal entry %d", seqOf(bad))) {
		t.Errorf("Open = %v, want an error naming journal entry %d", err, seqOf(bad))
	}
}

// TestFormatOneIsUpgraded: a file of the layout before the journal opens
// and keeps what it held.
func TestFormatOneIsUpgraded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	l := openSmallJournal(t, path)
	m := ledgertest.NewModel(ledger.Options{})
	ledgertest.Apply(t, l, m, exposures("ns/shop", 0, 10), nil)
	// Merged: the journal is empty, as format 1 had none.
	l.journal.mergeAt = 1
	for range 10 {
		if journaled(t, l) == 0 {
			break
		}
		if err := l.merge(0); err != nil {
			t.Fatal(err)
		}
	}
	if n := journaled(t, l); n != 0 {
		t.Fatalf("journal holds %d users after 10 merge steps, want 0", n)
	}
	if err := l.db.Update(func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket(journalBucket); err != nil {
			return err
		}
		return tx.Bucket(metaBucket).Put(formatKey, []byte("1"))
	}); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openSmallJournal(t, path)
	ledgertest.Apply(t, l, m, exposures("ns/shop", 0, 20), nil)
	ledgertest.Same(t, l, m, "ns/shop")
	var f string
	_ = l.db.View(func(tx *bolt.Tx) error { f = string(tx.Bucket(metaBucket).Get(formatKey)); return nil })
	if f != format {
		t.Errorf("format after Open = %q, want %q", f, format)
	}
}

// TestAFailedMergeStepPutsItsUsersBack: a merge transaction that fails
// part-way (an entry the round read is bad when merged) rolls back, and
// the users it had taken from the round's runs are merged by a later step:
// none is trimmed unmerged.
func TestAFailedMergeStepPutsItsUsersBack(t *testing.T) {
	l := openSmallJournal(t, filepath.Join(t.TempDir(), "ledger.db"))
	l.journal.mergeAt = 1 << 30 // no round while the users are exposed
	ledgertest.Apply(t, l, ledgertest.NewModel(ledger.Options{}), exposures("ns/shop", 0, 20), nil)
	l.journal.mergeAt = 16
	if err := l.merge(0); err != nil || len(l.journal.runs) != 1 || len(l.journal.runs[0].seqs) != 20 {
		t.Fatalf("merge = %v with %d runs, want one run of the 20 users read", err, len(l.journal.runs))
	}
	// The third user in merge order goes bad: the step of 5 takes two
	// before it fails.
	bad := seqKey(l.journal.runs[0].seqs[2])
	var good []byte
	if err := l.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(journalBucket)
		good = bytes.Clone(b.Get(bad))
		return b.Put(bad, []byte("short"))
	}); err != nil {
		t.Fatal(err)
	}
	err := l.merge(0)
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("journal entry %d", seqOf(bad))) {
		t.Fatalf("merge = %v, want an error naming journal entry %d", err, seqOf(bad))
	}
	if n := mergedUsers(t, l, "ns/shop", "v0") + mergedUsers(t, l, "ns/shop", "v1"); n != 0 {
		t.Fatalf("%d users in the users buckets after the failed step, want none (rolled back)", n)
	}
	if err := l.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(journalBucket).Put(bad, good) }); err != nil {
		t.Fatal(err)
	}
	finishRound(t, l)
	if n := mergedUsers(t, l, "ns/shop", "v0") + mergedUsers(t, l, "ns/shop", "v1"); n != 20 {
		t.Errorf("%d users in the users buckets after the round, want all 20", n)
	}
	if n := journaled(t, l); n != 0 {
		t.Errorf("%d entries left in the journal after the round, want none", n)
	}
}

// TestHintSeqRestoresTheWholeSequence: a hint's 32 bits name the entry
// among the 2^32 up to the journal's sequence, across a carry.
func TestHintSeqRestoresTheWholeSequence(t *testing.T) {
	for _, c := range []struct{ seq, last uint64 }{
		{1, 1}, {3, 10}, {1<<32 - 3, 1<<32 + 5}, {1 << 32, 1<<32 + 5}, {1<<33 + 7, 1<<33 + 7}, {1<<40 - 1, 1<<40 + 1<<31},
	} {
		if got := hintSeq(uint32(c.seq), c.last); got != c.seq {
			t.Errorf("hintSeq(%d, %d) = %d, want %d", uint32(c.seq), c.last, got, c.seq)
		}
	}
	// A rolled-back transaction's hint, above the sequence, names no
	// entry there could be.
	if got := hintSeq(12, 10); got <= 1<<32 {
		t.Errorf("hintSeq(12, 10) = %d, want past every entry", got)
	}
}
