package ledgertest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/iter8-tools/iter8/pkg/abn/ledger"
)

// Opener opens the same storage each time it is called, so that the suite
// can check that what was acknowledged survives closing and reopening.
type Opener func() (ledger.Ledger, error)

// Storage makes fresh, empty storage for one test and returns its opener.
type Storage func(t *testing.T, opts ledger.Options) Opener

// Scale sets how many users the concurrent test writes for: Users users ×
// 10 writes from 8 goroutines. The acceptance figure is 1000 users.
type Scale struct{ Users int }

// Run checks an implementation against the model.
func Run(t *testing.T, storage Storage, scale Scale) {
	su := &suite{storage: storage, scale: scale, opts: ledger.Options{BucketWidth: time.Minute},
		t0: time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)}
	t.Run("an application with nothing recorded has no versions", su.empty)
	t.Run("summaries equal the model's", su.model)
	t.Run("a write retried with its ID counts once", su.retried)
	t.Run("a batch with an invalid write stores nothing", su.refusedBatch)
	t.Run("what was acknowledged survives reopening", su.reopened)
	t.Run("concurrent writers: counts and sums exact", su.concurrent)
	t.Run("applications untouched since a time are forgotten", su.forgotten)
}

// suite holds what every case of Run shares.
type suite struct {
	storage Storage
	scale   Scale
	opts    ledger.Options
	t0      time.Time
}

// open opens fresh storage for one case, closed when the case ends.
func (su *suite) open(t *testing.T) ledger.Ledger {
	t.Helper()
	l, err := su.storage(t, su.opts)()
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// empty: an application with nothing recorded has no versions.
func (su *suite) empty(t *testing.T) {
	l := su.open(t)
	s, err := l.Summary(context.Background(), "default/nothing")
	if err != nil {
		t.Fatal(err)
	}
	if s.App != "default/nothing" || len(s.Versions) != 0 || s.BucketWidth != su.opts.BucketWidth {
		t.Errorf("summary = %+v, want app default/nothing, no versions, bucket width %v", s, su.opts.BucketWidth)
	}
}

// model: summaries equal the model's.
func (su *suite) model(t *testing.T) {
	l, m := su.open(t), NewModel(su.opts)
	exposures := []ledger.Exposure{
		{App: "ns/shop", Version: "v1", User: "ann", At: su.t0},
		{App: "ns/shop", Version: "v1", User: "bob", At: su.t0.Add(90 * time.Second)},
		{App: "ns/shop", Version: "v2", User: "cid", At: su.t0.Add(30 * time.Second)},
		{App: "ns/shop", Version: "v1", User: "ann", At: su.t0.Add(5 * time.Minute)}, // seen: stays in her first cohort
	}
	writes := []ledger.Write{
		{ID: "1", App: "ns/shop", Version: "v1", User: "ann", Metric: "revenue", Value: 20, At: su.t0.Add(10 * time.Second)},
		{ID: "2", App: "ns/shop", Version: "v1", User: "ann", Metric: "revenue", Value: 5, At: su.t0.Add(3 * time.Minute)},
		{ID: "3", App: "ns/shop", Version: "v1", User: "bob", Metric: "revenue", Value: -7.5, At: su.t0.Add(2 * time.Minute)},
		{ID: "4", App: "ns/shop", Version: "v1", User: "bob", Metric: "clicks", Value: 1, At: su.t0.Add(2 * time.Minute)},
		{ID: "5", App: "ns/shop", Version: "v2", User: "cid", Metric: "revenue", Value: 0, At: su.t0.Add(time.Minute)},
		// not exposed before: exposed in the bucket of this write
		{ID: "6", App: "ns/shop", Version: "v2", User: "dee", Metric: "revenue", Value: 1e9, At: su.t0.Add(4 * time.Minute)},
		{ID: "7", App: "ns/other", Version: "v1", User: "ann", Metric: "revenue", Value: 3, At: su.t0},
	}
	Apply(t, l, m, exposures, writes)
	Same(t, l, m, "ns/shop", "ns/other")
}

// retried: a write retried with its ID counts once.
func (su *suite) retried(t *testing.T) {
	l, m := su.open(t), NewModel(su.opts)
	w := ledger.Write{ID: "same", App: "ns/shop", Version: "v1", User: "ann", Metric: "revenue", Value: 2, At: su.t0}
	Apply(t, l, m, nil, []ledger.Write{w, w})
	Apply(t, l, m, nil, []ledger.Write{w})
	Same(t, l, m, "ns/shop")
	s, _ := l.Summary(context.Background(), "ns/shop")
	if got := s.Versions["v1"].Metrics["revenue"].Transactions.Count; got != 1 {
		t.Errorf("count after three tries of one write = %d, want 1", got)
	}
}

// refusedBatch: a batch with an invalid write stores nothing.
func (su *suite) refusedBatch(t *testing.T) {
	l := su.open(t)
	good := ledger.Write{ID: "g", App: "ns/shop", Version: "v1", User: "ann", Metric: "revenue", Value: 2, At: su.t0}
	bad := good
	bad.ID, bad.Metric = "b", "no spaces"
	err := l.Record(context.Background(), []ledger.Write{good, bad})
	var fe *ledger.FieldError
	if !errors.As(err, &fe) || fe.Field != "metric" {
		t.Fatalf("Record = %v, want a FieldError on metric", err)
	}
	s, err := l.Summary(context.Background(), "ns/shop")
	if err != nil || len(s.Versions) != 0 {
		t.Errorf("after a refused batch: %+v, %v; want nothing stored", s.Versions, err)
	}
}

// reopened: what was acknowledged survives reopening.
func (su *suite) reopened(t *testing.T) {
	openAgain := su.storage(t, su.opts)
	l, err := openAgain()
	if err != nil {
		t.Fatal(err)
	}
	m := NewModel(su.opts)
	Apply(t, l, m, []ledger.Exposure{{App: "ns/a", Version: "v1", User: "u", At: su.t0}},
		[]ledger.Write{{ID: "x", App: "ns/a", Version: "v1", User: "u", Metric: "m", Value: 4, At: su.t0}})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l, err = openAgain()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	Same(t, l, m, "ns/a")
	// The ID is remembered across reopening too.
	Apply(t, l, m, nil, []ledger.Write{{ID: "x", App: "ns/a", Version: "v1", User: "u", Metric: "m", Value: 4, At: su.t0}})
	Same(t, l, m, "ns/a")
}

// concurrent: concurrent writers: counts and sums exact.
func (su *suite) concurrent(t *testing.T) {
	l, m := su.open(t), NewModel(su.opts)
	const writers, perUser = 8, 10
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for g := range writers {
		wg.Go(func() {
			var batch []ledger.Write
			for u := g; u < su.scale.Users; u += writers {
				for k := range perUser {
					batch = append(batch, ledger.Write{
						ID: fmt.Sprintf("u%d-%d", u, k), App: "ns/shop", Version: fmt.Sprintf("v%d", u%3),
						User: fmt.Sprintf("user-%d", u), Metric: "revenue", Value: float64(u%7 + k),
						At: su.t0.Add(time.Duration(u*perUser+k) * time.Second),
					})
				}
				if len(batch) >= 50 {
					if err := record(l, m, batch); err != nil {
						errs <- err
						return
					}
					batch = nil
				}
			}
			if err := record(l, m, batch); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	Same(t, l, m, "ns/shop")
}

// forgotten: Forget removes only applications untouched since the time
// given, entirely, and they can start again.
func (su *suite) forgotten(t *testing.T) {
	l, m := su.open(t), NewModel(su.opts)
	ctx := context.Background()
	Apply(t, l, m, []ledger.Exposure{{App: "ns/idle", Version: "v1", User: "ann", At: su.t0}},
		[]ledger.Write{{ID: "1", App: "ns/idle", Version: "v1", User: "ann", Metric: "revenue", Value: 2, At: su.t0},
			{ID: "2", App: "ns/busy", Version: "v1", User: "bob", Metric: "revenue", Value: 3, At: su.t0}})
	gone, err := l.Forget(ctx, time.Now().Add(-time.Hour))
	if err != nil || len(gone) != 0 {
		t.Fatalf("Forget(an hour ago) = %v, %v; want nothing forgotten", gone, err)
	}
	Same(t, l, m, "ns/idle", "ns/busy")
	gone, err = l.Forget(ctx, time.Now().Add(time.Hour))
	slices.Sort(gone)
	if err != nil || !slices.Equal(gone, []string{"ns/busy", "ns/idle"}) {
		t.Fatalf("Forget(in an hour) = %v, %v; want [ns/busy ns/idle]", gone, err)
	}
	_, _ = m.Forget(ctx, time.Now().Add(time.Hour))
	Same(t, l, m, "ns/idle", "ns/busy")
	// The application starts again; IDs are remembered for their window
	// still, so a late retry of a forgotten write counts nothing.
	Apply(t, l, m, nil, []ledger.Write{{ID: "3", App: "ns/idle", Version: "v1", User: "ann", Metric: "revenue", Value: 5, At: su.t0},
		{ID: "1", App: "ns/idle", Version: "v1", User: "ann", Metric: "revenue", Value: 2, At: su.t0}})
	Same(t, l, m, "ns/idle")
}

func record(l ledger.Ledger, m *Model, writes []ledger.Write) error {
	if len(writes) == 0 {
		return nil
	}
	if err := l.Record(context.Background(), writes); err != nil {
		return err
	}
	return m.Record(context.Background(), writes)
}

// Apply exposes and records in both the ledger and the model.
func Apply(t *testing.T, l ledger.Ledger, m *Model, exposures []ledger.Exposure, writes []ledger.Write) {
	t.Helper()
	ctx := context.Background()
	if len(exposures) > 0 {
		if err := l.Expose(ctx, exposures); err != nil {
			t.Fatalf("Expose: %v", err)
		}
		_ = m.Expose(ctx, exposures)
	}
	if len(writes) > 0 {
		if err := l.Record(ctx, writes); err != nil {
			t.Fatalf("Record: %v", err)
		}
		_ = m.Record(ctx, writes)
	}
}

// Same compares the ledger's summaries with the model's, as JSON (whose
// map keys are sorted), so that a difference shows where it is.
func Same(t *testing.T, l ledger.Ledger, m *Model, apps ...string) {
	t.Helper()
	for _, a := range apps {
		got, err := l.Summary(context.Background(), a)
		if err != nil {
			t.Fatalf("Summary(%s): %v", a, err)
		}
		want, _ := m.Summary(context.Background(), a)
		g, _ := json.MarshalIndent(got, "", " ")
		w, _ := json.MarshalIndent(want, "", " ")
		if string(g) != string(w) {
			t.Errorf("Summary(%s):\n%s\nwant (the model's):\n%s", a, g, w)
		}
	}
}
