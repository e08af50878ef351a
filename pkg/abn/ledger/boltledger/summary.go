package boltledger

import (
	"context"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/iter8-tools/iter8/pkg/abn/ledger"
)

// Summary reads the running summaries of one application in one read
// transaction: O(versions × metrics × (buckets + histogram bins)) keys.
func (l *Ledger) Summary(ctx context.Context, app string) (ledger.Summary, error) {
	s := ledger.Summary{App: app, BucketWidth: l.opts.BucketWidth, Versions: map[string]*ledger.VersionSummary{}}
	if err := l.usable(ctx); err != nil {
		return s, fmt.Errorf("read summary of %s in ledger %s: %w", app, l.path, err)
	}
	err := l.db.View(func(tx *bolt.Tx) error {
		a := tx.Bucket(appsBucket).Bucket([]byte(app))
		if a == nil {
			return nil
		}
		return a.ForEachBucket(func(name []byte) error {
			vs, err := readVersion(a.Bucket(name))
			if err != nil {
				return fmt.Errorf("read version %s: %w", name, err)
			}
			s.Versions[string(name)] = vs
			return nil
		})
	})
	if err != nil {
		return ledger.Summary{}, fmt.Errorf("read summary of %s in ledger %s: %w", app, l.path, err)
	}
	return s, nil
}

// readVersion reads a version's bucket; keys come in time order, so
// cohorts and buckets need no sort.
func readVersion(v *bolt.Bucket) (*ledger.VersionSummary, error) {
	users, cohorts, metrics := v.Bucket(usersBucket), v.Bucket(cohortsBucket), v.Bucket(metricsBucket)
	if users == nil || cohorts == nil || metrics == nil {
		return nil, fmt.Errorf("read buckets: missing")
	}
	vs := &ledger.VersionSummary{Users: decodeInt(v.Get(exposedKey))}
	_ = cohorts.ForEach(func(k, n []byte) error {
		vs.Cohorts = append(vs.Cohorts, ledger.Cohort{Start: parseTime(k), Users: decodeInt(n)})
		return nil
	})
	err := metrics.ForEachBucket(func(name []byte) error {
		ms, err := readMetric(metrics.Bucket(name))
		if err != nil {
			return fmt.Errorf("read metric %s: %w", name, err)
		}
		if vs.Metrics == nil {
			vs.Metrics = map[string]*ledger.MetricSummary{}
		}
		vs.Metrics[string(name)] = ms
		return nil
	})
	return vs, err
}

func readMetric(m *bolt.Bucket) (*ledger.MetricSummary, error) {
	hist, buckets := m.Bucket(histBucket), m.Bucket(bucketsBucket)
	if hist == nil || buckets == nil {
		return nil, fmt.Errorf("read buckets: missing")
	}
	rec := decodeMetric(m.Get(summaryKey))
	ms := &ledger.MetricSummary{Transactions: rec.Transactions, Users: rec.Users}
	_ = hist.ForEach(func(k, n []byte) error {
		switch {
		case k[0] == 'z':
			ms.Histogram.Zero = decodeInt(n)
		case k[0] == 'p':
			if ms.Histogram.Positive == nil {
				ms.Histogram.Positive = map[int32]int64{}
			}
			ms.Histogram.Positive[binIndex(k)] = decodeInt(n)
		case k[0] == 'n':
			if ms.Histogram.Negative == nil {
				ms.Histogram.Negative = map[int32]int64{}
			}
			ms.Histogram.Negative[binIndex(k)] = decodeInt(n)
		}
		return nil
	})
	_ = buckets.ForEach(func(k, b []byte) error {
		ms.Buckets = append(ms.Buckets, decodeBucket(parseTime(k), b))
		return nil
	})
	return ms, nil
}
