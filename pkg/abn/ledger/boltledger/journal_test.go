package boltledger

import (
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
// 5 at least per merge, so that a test of a few hundred users sees many
// rounds.
func openSmallJournal(t *testing.T, path string) *Ledger {
	t.Helper()
	l, err := Open(path, ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	l.journal.mergeAt, l.journal.chunk = 16, 5
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// TestConformanceWhileMerging runs the shared suite with merges under way
// in every case.
func TestConformanceWhileMerging(t *testing.T) {
	ledgertest.Run(t, func(t *testing.T, opts ledger.Options) ledgertest.Opener {
		path := filepath.Join(t.TempDir(), "ledger.db")
		return func() (ledger.Ledger, error) {
			l, err := Open(path, opts)
			if err == nil {
				l.journal.mergeAt, l.journal.chunk = 16, 5
			}
			return l, err
		}
	}, ledgertest.Scale{Users: testUsers()})
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

func TestJournalMergesUsersOnceAndKeepsTheirCohorts(t *testing.T) {
	l := openSmallJournal(t, filepath.Join(t.TempDir(), "ledger.db"))
	m := ledgertest.NewModel(ledger.Options{})
	for from := 0; from < 300; from += 20 {
		es := exposures("ns/shop", from, from+20)
		ledgertest.Apply(t, l, m, es, nil)
		// Writes for users in the journal and merged, and exposures of
		// users seen before: none counts a user twice.
		ledgertest.Apply(t, l, m, exposures("ns/shop", from/2, from/2+20), writesOf(es[:10], fmt.Sprint(from)))
		if n := journaled(t, l); n > 16+20 {
			t.Fatalf("after %d users the journal holds %d: merges do not keep it bounded (16 + a batch)", from+20, n)
		}
	}
	ledgertest.Same(t, l, m, "ns/shop")
	if n := l.journal.size(); n > 16+20 {
		t.Errorf("pending holds %d hints, want at most 36", n)
	}
	if err := l.Check(context.Background()); err != nil {
		t.Errorf("Check after merges: %v", err)
	}
}

func TestJournaledUsersSurviveReopening(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	l := openSmallJournal(t, path)
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
	l.journal.mergeAt = 1000
	m := ledgertest.NewModel(ledger.Options{})
	ledgertest.Apply(t, l, m, exposures("ns/old", 0, 10), nil)
	ledgertest.Apply(t, l, m, exposures("ns/kept", 0, 10), nil)
	// Touch ns/kept later, then forget what is older.
	if err := l.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(appsBucket).Bucket([]byte("ns/kept")).Put(touchedKey, timeKey(time.Now().Add(time.Hour)))
	}); err != nil {
		t.Fatal(err)
	}
	cutoff := time.Now().Add(time.Minute)
	gone, err := l.Forget(context.Background(), cutoff)
	if err != nil || len(gone) != 1 || gone[0] != "ns/old" {
		t.Fatalf("Forget = %v, %v; want [ns/old]", gone, err)
	}
	_, _ = m.Forget(context.Background(), cutoff.Add(-2*time.Hour)) // the model forgets by its own clock
	if n := journaled(t, l); n != 10 {
		t.Errorf("journal holds %d users after forgetting ns/old, want ns/kept's 10", n)
	}
	// ns/old's users count anew; a merge round of both applications
	// goes through.
	l.journal.mergeAt = 16
	ledgertest.Apply(t, l, m, exposures("ns/old", 0, 10), nil)
	ledgertest.Apply(t, l, m, exposures("ns/kept", 10, 20), nil)
	ledgertest.Same(t, l, m, "ns/old", "ns/kept")
}

// TestUsersWithTheSameHashAreTold: with every hash alike, only the first
// new user goes to the journal; the others go straight to their users
// buckets, and no one is taken for another.
func TestUsersWithTheSameHashAreTold(t *testing.T) {
	l := openSmallJournal(t, filepath.Join(t.TempDir(), "ledger.db"))
	l.journal.hash = func(string, string, string) uint64 { return 7 }
	m := ledgertest.NewModel(ledger.Options{})
	for from := 0; from < 100; from += 10 {
		es := exposures("ns/shop", from, from+10)
		ledgertest.Apply(t, l, m, es, writesOf(es, fmt.Sprint(from)))
		ledgertest.Apply(t, l, m, exposures("ns/shop", 0, from+10), nil)
	}
	ledgertest.Same(t, l, m, "ns/shop")
	if n := journaled(t, l); n > 1 {
		t.Errorf("journal holds %d users, want at most 1 (one hash)", n)
	}
}

func TestAFailedMergeFailsCheck(t *testing.T) {
	l := openSmallJournal(t, filepath.Join(t.TempDir(), "ledger.db"))
	ledgertest.Apply(t, l, ledgertest.NewModel(ledger.Options{}), exposures("ns/shop", 0, 10), nil)
	if err := l.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(journalBucket).Put(seqKey(1<<40), []byte("short"))
	}); err != nil {
		t.Fatal(err)
	}
	// The next Expose stores its users, then starts a round, which
	// cannot read the bad entry.
	if err := l.Expose(context.Background(), exposures("ns/shop", 10, 20)); err != nil {
		t.Fatalf("Expose = %v, want nil: its users were stored", err)
	}
	err := l.Check(context.Background())
	if err == nil || !strings.Contains(err.Error(), "journal entry") {
		t.Errorf("Check = %v, want the merge's error naming the journal entry", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(l.path, ledger.Options{}); err == nil || !strings.Contains(err.Error(), "journal entry") {
		t.Errorf("Open = %v, want an error naming the journal entry", err)
	}
}

// TestFormatOneIsUpgraded: a file of the layout before the journal opens
// and keeps what it held.
func TestFormatOneIsUpgraded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	l := openSmallJournal(t, path)
	m := ledgertest.NewModel(ledger.Options{})
	l.journal.mergeAt = 1
	ledgertest.Apply(t, l, m, exposures("ns/shop", 0, 10), nil) // merged: the journal is empty, as format 1 had none
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
