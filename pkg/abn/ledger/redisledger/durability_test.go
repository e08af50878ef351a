package redisledger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iter8-tools/iter8/pkg/abn/ledger"
	"github.com/iter8-tools/iter8/pkg/abn/ledger/ledgertest"
	"github.com/iter8-tools/iter8/test/redistest"
)

var t0 = time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)

// sameAsModel compares summaries as JSON, as ledgertest does.
func sameAsModel(t *testing.T, l ledger.Ledger, m *ledgertest.Model, app string) {
	t.Helper()
	ctx := context.Background()
	got, err := l.Summary(ctx, app)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := m.Summary(ctx, app)
	g, _ := json.MarshalIndent(got, "", " ")
	w, _ := json.MarshalIndent(want, "", " ")
	if string(g) != string(w) {
		t.Errorf("Summary(%s):\n%s\nwant (the model's):\n%s", app, g, w)
	}
}

// TestAcknowledgedWritesSurviveSIGKILL: every write Record acknowledged is
// there, once, after Redis is killed with SIGKILL and restarted from its
// AOF; retrying them all afterwards counts nothing new.
func TestAcknowledgedWritesSurviveSIGKILL(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	opts := ledger.Options{BucketWidth: time.Minute}
	l := open(t, srv, opts)
	m := ledgertest.NewModel(opts)

	// Users are exposed first, so that their cohorts do not depend on
	// which concurrent batch reaches Redis first.
	var exposures []ledger.Exposure
	for v := range 2 {
		for u := range 37 {
			exposures = append(exposures, ledger.Exposure{App: "ns/shop", Version: fmt.Sprintf("v%d", v), User: fmt.Sprintf("u%d", u), At: t0})
		}
	}
	if err := l.Expose(ctx, exposures); err != nil {
		t.Fatal(err)
	}
	_ = m.Expose(ctx, exposures)

	// Values with fractions (exact in binary, so that sums do not depend on
	// the order in which Redis applied the batches), so that the summary
	// equals the model's only if every digit survives the AOF.
	var all []ledger.Write
	var mu sync.Mutex
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for b := range 10 {
				var batch []ledger.Write
				for k := range 25 {
					n := (g*10+b)*25 + k
					batch = append(batch, ledger.Write{
						ID: fmt.Sprintf("w%d", n), App: "ns/shop", Version: fmt.Sprintf("v%d", n%2),
						User: fmt.Sprintf("u%d", n%37), Metric: "revenue", Value: float64(n%13)*0.25 - 0.75,
						At: t0.Add(time.Duration(n) * time.Second),
					})
				}
				if err := l.Record(ctx, batch); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				all = append(all, batch...)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	if err := m.Record(ctx, all); err != nil {
		t.Fatal(err)
	}
	before, err := l.Summary(ctx, "ns/shop")
	if err != nil {
		t.Fatal(err)
	}
	_ = l.Close()

	srv.Kill()
	srv.Restart()
	l = open(t, srv, opts)
	after, err := l.Summary(ctx, "ns/shop")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(before)
	a, _ := json.Marshal(after)
	if string(a) != string(b) {
		t.Errorf("after SIGKILL and restart:\n%s\nbefore:\n%s", a, b)
	}
	sameAsModel(t, l, m, "ns/shop")
	if err := l.Record(ctx, all); err != nil {
		t.Fatal(err)
	}
	sameAsModel(t, l, m, "ns/shop") // nothing new counted
}

// TestAppsWithBraces: an application whose name would break a hash tag
// gets a tag of its own and stays apart from other applications.
func TestAppsWithBraces(t *testing.T) {
	ctx := context.Background()
	opts := ledger.Options{}
	l := open(t, redistest.Start(t), opts)
	m := ledgertest.NewModel(opts)
	apps := []string{"ns/{x}", "}ns/a", "{ns/a", "ns/a"}
	var writes []ledger.Write
	for i, app := range apps {
		writes = append(writes, ledger.Write{ID: fmt.Sprint(i), App: app, Version: "v1", User: "ann", Metric: "m", Value: float64(i + 1), At: t0})
	}
	if err := l.Record(ctx, writes); err != nil {
		t.Fatal(err)
	}
	_ = m.Record(ctx, writes)
	for _, app := range apps {
		sameAsModel(t, l, m, app)
	}
}

// TestRefusesUndurableRedis: Open wants appendonly yes and appendfsync
// always and names the setting it found otherwise.
func TestRefusesUndurableRedis(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"--appendfsync", "everysec"}, []string{"appendfsync is everysec", "appendfsync always"}},
		{[]string{"--appendfsync", "no"}, []string{"appendfsync is no", "appendfsync always"}},
		{[]string{"--appendonly", "no"}, []string{"appendonly is no", "appendonly yes"}},
		{[]string{"--maxmemory-policy", "volatile-lru"}, []string{"maxmemory-policy is volatile-lru", "maxmemory-policy noeviction"}},
		{[]string{"--rename-command", "CONFIG", ""}, []string{"CONFIG is disabled"}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			srv := redistest.Start(t, tc.args...)
			l, err := Open(context.Background(), Options{Addr: srv.Addr(), Password: "s3cret-pw"})
			if err == nil {
				l.Close()
				t.Fatal("Open succeeded, want an error")
			}
			msg := err.Error()
			for _, w := range append(tc.want, "open ledger redis://"+srv.Addr()+": ") {
				if !strings.Contains(msg, w) {
					t.Errorf("Open: %v; want it to say %q", err, w)
				}
			}
			if strings.Contains(msg, "s3cret-pw") {
				t.Errorf("Open: %v; it prints the password", err)
			}
		})
	}
}

// TestBadWrites: each invalid write fails Record with a FieldError naming
// its field, and nothing of its batch is stored.
func TestBadWrites(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	l := open(t, srv, ledger.Options{})
	good := ledger.Write{ID: "g", App: "ns/shop", Version: "v1", User: "ann", Metric: "revenue", Value: 2, At: t0}
	for _, tc := range []struct {
		name  string
		field string
		spoil func(*ledger.Write)
	}{
		{"empty user", "user", func(w *ledger.Write) { w.User = "" }},
		{"NaN", "value", func(w *ledger.Write) { w.Value = nan() }},
		{"+Inf", "value", func(w *ledger.Write) { w.Value = inf() }},
		{"1e300", "value", func(w *ledger.Write) { w.Value = 1e300 }},
		{"10 KB metric name", "metric", func(w *ledger.Write) { w.Metric = "m" + strings.Repeat("x", 10<<10) }},
		{"missing at", "at", func(w *ledger.Write) { w.At = time.Time{} }},
		{"empty id", "id", func(w *ledger.Write) { w.ID = "" }},
		{"control character in version", "version", func(w *ledger.Write) { w.Version = "v\x1f1" }},
		{"empty application", "application", func(w *ledger.Write) { w.App = "" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := good
			bad.ID = "bad"
			tc.spoil(&bad)
			err := l.Record(ctx, []ledger.Write{good, bad})
			var fe *ledger.FieldError
			if !errors.As(err, &fe) || fe.Field != tc.field {
				t.Fatalf("Record = %v, want a FieldError on %s", err, tc.field)
			}
			s, err := l.Summary(ctx, "ns/shop")
			if err != nil || len(s.Versions) != 0 {
				t.Errorf("after a refused batch: %+v, %v; want nothing stored", s.Versions, err)
			}
		})
	}
	if n, err := l.client.Do(ctx, "DBSIZE"); err != nil || n != int64(0) {
		t.Errorf("keys after refused batches = %d, %v; want 0", n, err)
	}
}

// TestCheck: ready while Redis takes writes, not once it is gone.
func TestCheck(t *testing.T) {
	srv := redistest.Start(t)
	l := open(t, srv, ledger.Options{})
	if err := l.Check(context.Background()); err != nil {
		t.Fatalf("Check on a running server: %v", err)
	}
	srv.Kill()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := l.Check(ctx); err == nil {
		t.Fatal("Check succeeded with the server killed")
	}
}
