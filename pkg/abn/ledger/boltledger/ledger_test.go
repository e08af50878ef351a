package boltledger

import (
	"context"
	"errors"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/iter8-tools/iter8/pkg/abn/ledger"
	"github.com/iter8-tools/iter8/pkg/abn/ledger/ledgertest"
)

// testUsers is the suite's scale: the acceptance figure of 1000 users,
// fewer in short mode.
func testUsers() int {
	if testing.Short() {
		return 200
	}
	return 1000
}

func TestConformance(t *testing.T) {
	ledgertest.Run(t, func(t *testing.T, opts ledger.Options) ledgertest.Opener {
		path := filepath.Join(t.TempDir(), "ledger.db")
		return func() (ledger.Ledger, error) { return Open(path, opts) }
	}, ledgertest.Scale{Users: testUsers()})
}

func TestSecondOpenFailsClearly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	l, err := Open(path, ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	const timeout = 200 * time.Millisecond
	start := time.Now()
	second, err := open(path, ledger.Options{}, timeout)
	took := time.Since(start)
	if err == nil {
		second.Close()
		t.Fatal("second Open of a file in use succeeded")
	}
	if !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), path) {
		t.Errorf("second Open = %v, want ErrInUse naming %s", err, path)
	}
	if took > timeout+2*time.Second {
		t.Errorf("second Open took %v, want about %v", took, timeout)
	}
}

func TestCallsAfterClose(t *testing.T) {
	l, err := Open(filepath.Join(t.TempDir(), "ledger.db"), ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Check(context.Background()); err != nil {
		t.Fatalf("Check on an open ledger: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	w := ledger.Write{ID: "1", App: "ns/a", Version: "v1", User: "u", Metric: "m", Value: 1, At: time.Now()}
	for name, err := range map[string]error{
		"Record":  l.Record(ctx, []ledger.Write{w}),
		"Expose":  l.Expose(ctx, []ledger.Exposure{{App: "ns/a", Version: "v1", User: "u", At: time.Now()}}),
		"Check":   l.Check(ctx),
		"Close":   l.Close(),
		"Summary": func() error { _, err := l.Summary(ctx, "ns/a"); return err }(),
	} {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", name, err)
		}
	}
}

func TestBadWritesStoreNothing(t *testing.T) {
	l, err := Open(filepath.Join(t.TempDir(), "ledger.db"), ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	at := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	good := ledger.Write{ID: "good", App: "ns/shop", Version: "v1", User: "ann", Metric: "revenue", Value: 2, At: at}
	for _, c := range []struct {
		name, field string
		change      func(w *ledger.Write)
	}{
		{"empty user", "user", func(w *ledger.Write) { w.User = "" }},
		{"empty app", "application", func(w *ledger.Write) { w.App = "" }},
		{"empty ID", "id", func(w *ledger.Write) { w.ID = "" }},
		{"NaN", "value", func(w *ledger.Write) { w.Value = math.NaN() }},
		{"+Inf", "value", func(w *ledger.Write) { w.Value = math.Inf(1) }},
		{"1e300", "value", func(w *ledger.Write) { w.Value = 1e300 }},
		{"10 KB metric name", "metric", func(w *ledger.Write) { w.Metric = strings.Repeat("m", 10<<10) }},
		{"metric name with a space", "metric", func(w *ledger.Write) { w.Metric = "no spaces" }},
		{"control character in version", "version", func(w *ledger.Write) { w.Version = "v\n1" }},
		{"missing At", "at", func(w *ledger.Write) { w.At = time.Time{} }},
	} {
		t.Run(c.name, func(t *testing.T) {
			bad := good
			bad.ID = "bad"
			c.change(&bad)
			// The good write first: all or nothing means it is not stored
			// either.
			err := l.Record(ctx, []ledger.Write{good, bad})
			var fe *ledger.FieldError
			if !errors.As(err, &fe) || fe.Field != c.field {
				t.Fatalf("Record = %v, want a FieldError on %s", err, c.field)
			}
			s, err := l.Summary(ctx, "ns/shop")
			if err != nil || len(s.Versions) != 0 {
				t.Errorf("after a refused batch: %+v, %v; want nothing stored", s.Versions, err)
			}
		})
	}
	// Nor was the good write's ID remembered: recording it now counts it.
	if err := l.Record(ctx, []ledger.Write{good}); err != nil {
		t.Fatal(err)
	}
	s, _ := l.Summary(ctx, "ns/shop")
	if n := s.Versions["v1"].Metrics["revenue"].Transactions.Count; n != 1 {
		t.Errorf("good write after the refused batches counted %d times, want 1", n)
	}
}

func TestExpiredIDsAreForgotten(t *testing.T) {
	l, err := Open(filepath.Join(t.TempDir(), "ledger.db"), ledger.Options{DedupeWindow: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	w := ledger.Write{ID: "x", App: "ns/a", Version: "v1", User: "u", Metric: "m", Value: 1, At: time.Now()}
	for range 3 {
		if err := l.Record(ctx, []ledger.Write{w}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
	s, _ := l.Summary(ctx, "ns/a")
	// Past the window a retry counts again (ledger.Options.DedupeWindow).
	if n := s.Versions["v1"].Metrics["m"].Transactions.Count; n != 3 {
		t.Errorf("count of a write retried past the dedupe window = %d, want 3", n)
	}
}
