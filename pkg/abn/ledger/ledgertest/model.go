// Package ledgertest holds the contract that every ledger.Ledger meets,
// as a test suite, and the reference model it is checked against.
package ledgertest

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"

	"github.com/iter8-tools/iter8/pkg/abn/ledger"
)

// Model is an in-memory ledger, the plain statement of what a ledger
// computes: the suite compares every implementation with it. It is not
// durable.
type Model struct {
	opts ledger.Options

	mu   sync.Mutex
	seen map[string]bool
	apps map[string]*app
}

type app struct {
	versions map[string]*version
	// touched is when a write or an exposure was last recorded.
	touched time.Time
}

type version struct {
	cohort  map[string]time.Time // user → bucket of first exposure
	cohorts map[time.Time]int64
	metrics map[string]*metric
}

type metric struct {
	ledger.MetricSummary
	sums    map[string]float64 // user → sum of the user's writes
	buckets map[time.Time]*ledger.MetricBucket
}

// NewModel returns an empty model.
func NewModel(opts ledger.Options) *Model {
	return &Model{opts: opts.WithDefaults(), seen: map[string]bool{}, apps: map[string]*app{}}
}

func (m *Model) version(appName, name string) *version {
	a := m.apps[appName]
	if a == nil {
		a = &app{versions: map[string]*version{}}
		m.apps[appName] = a
	}
	a.touched = time.Now()
	v := a.versions[name]
	if v == nil {
		v = &version{cohort: map[string]time.Time{}, cohorts: map[time.Time]int64{}, metrics: map[string]*metric{}}
		a.versions[name] = v
	}
	return v
}

// expose puts a user in the cohort of at's bucket unless already exposed.
func (m *Model) expose(v *version, user string, at time.Time) time.Time {
	if c, ok := v.cohort[user]; ok {
		return c
	}
	c := m.opts.BucketOf(at)
	v.cohort[user] = c
	v.cohorts[c]++
	return c
}

// Record applies writes all or nothing.
func (m *Model) Record(_ context.Context, writes []ledger.Write) error {
	for i := range writes {
		if err := writes[i].Validate(); err != nil {
			return err
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, w := range writes {
		if key := w.App + "\x00" + w.ID; m.seen[key] {
			continue
		} else {
			m.seen[key] = true
		}
		v := m.version(w.App, w.Version)
		cohort := m.expose(v, w.User, w.At)
		mt := v.metrics[w.Metric]
		if mt == nil {
			mt = &metric{sums: map[string]float64{}, buckets: map[time.Time]*ledger.MetricBucket{}}
			v.metrics[w.Metric] = mt
		}
		mt.Transactions.Add(w.Value)
		mt.Histogram.Add(w.Value)
		old, had := mt.sums[w.User]
		mt.sums[w.User] = old + w.Value
		mt.Users.Replace(old, old+w.Value, !had)
		mt.bucket(m.opts.BucketOf(w.At)).Transactions.Add(w.Value)
		mt.bucket(cohort).Users.Replace(old, old+w.Value, !had)
	}
	return nil
}

func (mt *metric) bucket(start time.Time) *ledger.MetricBucket {
	b := mt.buckets[start]
	if b == nil {
		b = &ledger.MetricBucket{Start: start}
		mt.buckets[start] = b
	}
	return b
}

// Expose applies exposures.
func (m *Model) Expose(_ context.Context, exposures []ledger.Exposure) error {
	for i := range exposures {
		if err := exposures[i].Validate(); err != nil {
			return err
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range exposures {
		m.expose(m.version(e.App, e.Version), e.User, e.At)
	}
	return nil
}

// Summary reads one application.
func (m *Model) Summary(_ context.Context, appName string) (ledger.Summary, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := ledger.Summary{App: appName, BucketWidth: m.opts.BucketWidth, Versions: map[string]*ledger.VersionSummary{}}
	a := m.apps[appName]
	if a == nil {
		return s, nil
	}
	for name, v := range a.versions {
		vs := &ledger.VersionSummary{Users: int64(len(v.cohort))}
		for start, n := range v.cohorts {
			vs.Cohorts = append(vs.Cohorts, ledger.Cohort{Start: start, Users: n})
		}
		slices.SortFunc(vs.Cohorts, func(a, b ledger.Cohort) int { return a.Start.Compare(b.Start) })
		for mn, mt := range v.metrics {
			if vs.Metrics == nil {
				vs.Metrics = map[string]*ledger.MetricSummary{}
			}
			ms := mt.MetricSummary
			ms.Buckets = nil
			for _, b := range mt.buckets {
				ms.Buckets = append(ms.Buckets, *b)
			}
			slices.SortFunc(ms.Buckets, func(a, b ledger.MetricBucket) int { return cmp.Compare(a.Start.UnixNano(), b.Start.UnixNano()) })
			vs.Metrics[mn] = &ms
		}
		s.Versions[name] = vs
	}
	return s, nil
}

// Forget removes the applications untouched since before.
func (m *Model) Forget(_ context.Context, before time.Time) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var gone []string
	for name, a := range m.apps {
		if a.touched.Before(before) {
			delete(m.apps, name)
			gone = append(gone, name)
		}
	}
	slices.Sort(gone)
	return gone, nil
}

// Check always succeeds.
func (m *Model) Check(context.Context) error { return nil }

// Close does nothing.
func (m *Model) Close() error { return nil }
