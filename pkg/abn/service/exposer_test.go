package service

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
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
	var logs lockedBuffer
	svc, err := New(Options{Apps: apps.Static{"ns/shop": shop(100, 0, 0)}, Ledger: l, Namespace: "ns",
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatal(err)
	}
	runUntilCleanup(t, svc)
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

	exposed := func() int64 {
		sum, _ := l.Summary(context.Background(), "ns/shop")
		if v := sum.Versions["v1"]; v != nil {
			return v.Users
		}
		return 0
	}
	// Once the ledger has stored what was queued, the users come back.
	for exposed() != int64(users)-int64(dropped) {
		if time.Now().After(deadline) {
			t.Fatalf("%d users exposed after the ledger was released, want the %d queued", exposed(), int64(users)-int64(dropped))
		}
		time.Sleep(20 * time.Millisecond) // polling interval
	}
	lookUpAll()
	for exposed() != int64(users) {
		if time.Now().After(deadline) {
			t.Fatalf("%d users exposed after every user came back, want %d", exposed(), users)
		}
		time.Sleep(20 * time.Millisecond) // polling interval
	}
	if d := svc.DroppedExposures(); d != dropped {
		t.Errorf("%d exposures dropped in all, want only the %d of the stall", d, dropped)
	}
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

// TestExposuresAreSentInPacedBatches: batches are what was queued, sent
// at most every exposureEvery, so that storing one holds a core briefly
// (the constants' comment says why); every exposure is stored.
func TestExposuresAreSentInPacedBatches(t *testing.T) {
	l := &timedLedger{Model: ledgertest.NewModel(ledger.Options{})}
	svc, err := New(Options{Apps: apps.Static{"ns/shop": shop(100, 0, 0)}, Ledger: l, Namespace: "ns"})
	if err != nil {
		t.Fatal(err)
	}
	runUntilCleanup(t, svc)
	const users = 3 * exposureBatch
	for i := range users {
		if _, err := svc.Lookup("ns/shop", "user-"+strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		sum, _ := l.Summary(context.Background(), "ns/shop")
		if v := sum.Versions["v1"]; v != nil && v.Users == users {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not every one of %d users exposed within 10s: %+v", users, sum.Versions["v1"])
		}
		time.Sleep(20 * time.Millisecond) // polling interval
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, n := range l.batches {
		if n > exposureBatch {
			t.Errorf("batch %d holds %d exposures, want at most %d", i, n, exposureBatch)
		}
	}
	// The exposer times its pace a little before the ledger sees the call:
	// one interval of slack over all the batches.
	n := len(l.batches)
	if span := l.starts[n-1].Sub(l.starts[0]); span < time.Duration(n-2)*exposureEvery {
		t.Errorf("%d batches sent within %v, want at most one every %v", n, span, exposureEvery)
	}
}
