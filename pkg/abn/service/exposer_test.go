package service

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iter8-tools/iter8/pkg/abn/apps"
	"github.com/iter8-tools/iter8/pkg/abn/ledger"
	"github.com/iter8-tools/iter8/pkg/abn/ledger/ledgertest"
)

// stalledLedger holds every Expose until released, whatever its context
// says: the test, not the service's timeout, decides when it ends.
type stalledLedger struct {
	*ledgertest.Model
	released chan struct{}
	release  sync.Once
}

func (s *stalledLedger) Expose(ctx context.Context, xs []ledger.Exposure) error {
	<-s.released
	return s.Model.Expose(context.WithoutCancel(ctx), xs)
}

func (s *stalledLedger) releaseAll() { s.release.Do(func() { close(s.released) }) }

// lockedBuffer is a log destination that the test reads while the
// service writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestDroppedExposuresAreLoggedAndSentAgain: while the ledger lags, the
// exposures that do not fit the queue are counted and logged, and each of
// those users' next Lookup records theirs: none is lost to a user who
// comes back.
func TestDroppedExposuresAreLoggedAndSentAgain(t *testing.T) {
	l := &stalledLedger{Model: ledgertest.NewModel(ledger.Options{}), released: make(chan struct{})}
	svc, logs := runWithWarnings(t, l)
	t.Cleanup(l.releaseAll) // before the service stops, which waits for its ledger calls

	// More users than the queue and one batch hold: at least the last
	// 100 find the queue full.
	users := exposureBuffer + exposureBatch + 100
	lookUpAll := func() {
		for i := range users {
			if _, err := svc.Lookup("ns/shop", "user-"+strconv.Itoa(i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	lookUpAll()
	dropped := svc.DroppedExposures()
	if dropped < 100 {
		t.Fatalf("%d exposures dropped with the ledger stalled, want at least 100", dropped)
	}
	l.releaseAll()

	want := fmt.Sprintf("total=%d", dropped)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("no warning with %s within 10s; the log:\n%s", want, logs.String())
		}
		time.Sleep(20 * time.Millisecond) // polling interval
	}

	// Once the ledger has stored what was queued, the users come back.
	for exposedUsers(l) != int64(users)-int64(dropped) {
		if time.Now().After(deadline) {
			t.Fatalf("%d users exposed after the ledger was released, want the %d queued", exposedUsers(l), int64(users)-int64(dropped))
		}
		time.Sleep(20 * time.Millisecond) // polling interval
	}
	lookUpAll()
	for exposedUsers(l) != int64(users) {
		if time.Now().After(deadline) {
			t.Fatalf("%d users exposed after every user came back, want %d", exposedUsers(l), users)
		}
		time.Sleep(20 * time.Millisecond) // polling interval
	}
	if d := svc.DroppedExposures(); d != dropped {
		t.Errorf("%d exposures dropped in all, want only the %d of the stall", d, dropped)
	}
}

// runWithWarnings runs a service of ns/shop (all users on v1) over l until
// the test ends, its warnings logged to the buffer returned.
func runWithWarnings(t *testing.T, l ledger.Ledger) (*Service, *lockedBuffer) {
	var logs lockedBuffer
	svc, err := New(Options{Apps: apps.Static{"ns/shop": shop(100, 0, 0)}, Ledger: l, Namespace: "ns",
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatal(err)
	}
	runUntilCleanup(t, svc)
	return svc, &logs
}

// timedLedger notes when each Expose starts and how many it holds.
type timedLedger struct {
	*ledgertest.Model
	mu      sync.Mutex
	starts  []time.Time
	batches []int
}

func (l *timedLedger) Expose(ctx context.Context, xs []ledger.Exposure) error {
	l.mu.Lock()
	l.starts = append(l.starts, time.Now())
	l.batches = append(l.batches, len(xs))
	l.mu.Unlock()
	return l.Model.Expose(ctx, xs)
}

func (l *timedLedger) sizes() []int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.batches)
}

// exposedUsers is how many users the ledger holds as exposed to v1.
func exposedUsers(l ledger.Ledger) int64 {
	sum, _ := l.Summary(context.Background(), "ns/shop")
	if v := sum.Versions["v1"]; v != nil {
		return v.Users
	}
	return 0
}

// TestExposuresAreSentInPacedBatches: a batch is what was queued when the
// ledger is free, sent at most every exposureEvery (the constants' comment
// says why), so a lone exposure is stored at once and a steady trickle in
// few batches; every exposure is stored.
func TestExposuresAreSentInPacedBatches(t *testing.T) {
	l := &timedLedger{Model: ledgertest.NewModel(ledger.Options{})}
	svc, err := New(Options{Apps: apps.Static{"ns/shop": shop(100, 0, 0)}, Ledger: l, Namespace: "ns"})
	if err != nil {
		t.Fatal(err)
	}
	runUntilCleanup(t, svc)
	lookUp := func(user string) {
		if _, err := svc.Lookup("ns/shop", user); err != nil {
			t.Fatal(err)
		}
	}

	// Well before the first report tick, which once was the first flush.
	lookUp("lone")
	deadline := time.Now().Add(reportInterval / 2)
	for exposedUsers(l) != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("a lone exposure not stored within %v", reportInterval/2)
		}
		time.Sleep(5 * time.Millisecond) // polling interval
	}

	// A trickle, a Lookup every millisecond or so: unpaced, each would be
	// a batch of its own.
	const users = 300
	l.mu.Lock()
	first := len(l.batches)
	l.mu.Unlock()
	for i := range users {
		lookUp("user-" + strconv.Itoa(i))
		time.Sleep(time.Millisecond) // the trickle's pace
	}
	deadline = time.Now().Add(10 * time.Second)
	for exposedUsers(l) != users+1 {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d users exposed within 10s", exposedUsers(l), users+1)
		}
		time.Sleep(20 * time.Millisecond) // polling interval
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	starts := l.starts[first:]
	n := len(starts)
	// The exposer times its pace a little before the ledger sees the call:
	// 100 ms of slack for a machine that stalls the exposer there. Unpaced,
	// the trickle makes about 300 batches, 3 s of intervals.
	if span := starts[n-1].Sub(starts[0]); time.Duration(n-1)*exposureEvery-100*time.Millisecond > span {
		t.Errorf("%d batches sent within %v, want at most one every %v", n, span, exposureEvery)
	}
}

// TestABurstIsNotHeldBackByThePace: once exposureSoon exposures wait, they
// are sent at once, however long the pace. What follows them in the same
// burst may wait for the pace, by design.
func TestABurstIsNotHeldBackByThePace(t *testing.T) {
	l := &timedLedger{Model: ledgertest.NewModel(ledger.Options{})}
	svc, err := New(Options{Apps: apps.Static{"ns/shop": shop(100, 0, 0)}, Ledger: l, Namespace: "ns"})
	if err != nil {
		t.Fatal(err)
	}
	svc.exposed.every = time.Hour
	runUntilCleanup(t, svc)
	waitForUsers := func(want int64) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for exposedUsers(l) < want {
			if time.Now().After(deadline) {
				t.Fatalf("%d users exposed within 10s, want at least %d (batches: %v)", exposedUsers(l), want, l.sizes())
			}
			time.Sleep(5 * time.Millisecond) // polling interval
		}
	}
	// The first batch goes at once and starts the hour's pace; then a burst
	// of twice exposureSoon, of which at least exposureSoon go at once.
	for i := range 1 + 2*exposureSoon {
		if _, err := svc.Lookup("ns/shop", "user-"+strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			waitForUsers(1)
		}
	}
	waitForUsers(1 + exposureSoon)
}

// refusingLedger refuses every Expose and counts them.
type refusingLedger struct {
	*ledgertest.Model
	calls atomic.Int64
}

func (l *refusingLedger) Expose(context.Context, []ledger.Exposure) error {
	l.calls.Add(1)
	return errors.New("ledger down")
}

// TestLedgerFailuresAreLoggedTogether: a ledger that fails every batch is
// reported once per reportInterval with the exposures it refused, not once
// per batch.
func TestLedgerFailuresAreLoggedTogether(t *testing.T) {
	l := &refusingLedger{Model: ledgertest.NewModel(ledger.Options{})}
	svc, logs := runWithWarnings(t, l)
	const batches, perBatch = 5, 10
	deadline := time.Now().Add(10 * time.Second)
	for b := range batches {
		for i := range perBatch {
			if _, err := svc.Lookup("ns/shop", fmt.Sprintf("user-%d-%d", b, i)); err != nil {
				t.Fatal(err)
			}
		}
		for l.calls.Load() <= int64(b) {
			if time.Now().After(deadline) {
				t.Fatalf("%d batches sent to the ledger within 10s, want %d", l.calls.Load(), b+1)
			}
			time.Sleep(time.Millisecond) // polling interval
		}
	}
	line := regexp.MustCompile(`the ledger failed.* count=(\d+) batches=(\d+) error="ledger down"`)
	refused := 0
	var lines [][]string
	for refused < batches*perBatch {
		if time.Now().After(deadline) {
			t.Fatalf("%d refused exposures logged within 10s, want %d; the log:\n%s", refused, batches*perBatch, logs.String())
		}
		time.Sleep(20 * time.Millisecond) // polling interval
		lines = line.FindAllStringSubmatch(logs.String(), -1)
		refused = 0
		for _, m := range lines {
			n, _ := strconv.Atoi(m[1])
			refused += n
		}
	}
	if refused != batches*perBatch || len(lines) >= batches {
		t.Errorf("%d refused exposures logged in %d lines, want %d in fewer lines than the %d batches; the log:\n%s",
			refused, len(lines), batches*perBatch, batches, logs.String())
	}
}
