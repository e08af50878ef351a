package boltledger

import (
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/iter8-tools/iter8/pkg/abn/ledger"
)

// Sub-bucket and key names inside a version's and a metric's bucket.
var (
	exposedKey = []byte("exposed")
	// touchedKey, in an application's bucket beside its versions' buckets,
	// holds when a write or an exposure was last recorded (a time key);
	// version names cannot start with a control character.
	touchedKey     = []byte("\x00touched")
	usersBucket    = []byte("users")
	cohortsBucket  = []byte("cohorts")
	metricsBucket  = []byte("metrics")
	summaryKey     = []byte("summary")
	histBucket     = []byte("histogram")
	bucketsBucket  = []byte("buckets")
	userSumsBucket = []byte("sums")
)

// txn applies writes and exposures in one write transaction, keeping the
// buckets it opened so that a batch of writes to one version and metric
// walks the tree once. It lives no longer than one transaction (one call
// of a Batch function, so that a re-run starts afresh).
type txn struct {
	tx      *bolt.Tx
	opts    ledger.Options
	journal *journal
	// journaling puts new users in the journal (Expose) instead of their
	// users buckets (Record, whose batches bbolt may run twice).
	journaling bool
	// hints are those the journal took in this transaction (undo).
	hints    []hint
	userKey  []byte // expose's buffer
	now      time.Time
	versions map[[2]string]*versionBuckets
	metrics  map[[3]string]*metricBuckets
	touched  map[string]bool
	// newUsers counts the users exposed in this transaction per version
	// and cohort; count puts them, once per key instead of once per user.
	newUsers map[newUsersKey]int64
}

type newUsersKey struct {
	app, version string
	cohort       [timeKeyLen]byte
}

type versionBuckets struct {
	b, users, cohorts, metrics *bolt.Bucket
}

type metricBuckets struct {
	b, hist, buckets, sums *bolt.Bucket
}

func newTxn(tx *bolt.Tx, opts ledger.Options, j *journal) *txn {
	return &txn{tx: tx, opts: opts, journal: j, now: time.Now(), versions: map[[2]string]*versionBuckets{},
		metrics: map[[3]string]*metricBuckets{}, touched: map[string]bool{}, newUsers: map[newUsersKey]int64{}}
}

// version opens (creating) the buckets of one version of an application.
func (t *txn) version(app, version string) (*versionBuckets, error) {
	k := [2]string{app, version}
	if v := t.versions[k]; v != nil {
		return v, nil
	}
	a, err := t.tx.Bucket(appsBucket).CreateBucketIfNotExists([]byte(app))
	if err != nil {
		return nil, fmt.Errorf("create bucket of application %s: %w", app, err)
	}
	if !t.touched[app] {
		if err := a.Put(touchedKey, timeKey(t.now)); err != nil {
			return nil, fmt.Errorf("mark application %s touched: %w", app, err)
		}
		t.touched[app] = true
	}
	b, err := a.CreateBucketIfNotExists([]byte(version))
	if err != nil {
		return nil, fmt.Errorf("create bucket of version %s/%s: %w", app, version, err)
	}
	v := &versionBuckets{b: b}
	for _, s := range []struct {
		name []byte
		to   **bolt.Bucket
	}{{usersBucket, &v.users}, {cohortsBucket, &v.cohorts}, {metricsBucket, &v.metrics}} {
		if *s.to, err = b.CreateBucketIfNotExists(s.name); err != nil {
			return nil, fmt.Errorf("create bucket %s of version %s/%s: %w", s.name, app, version, err)
		}
	}
	t.versions[k] = v
	return v, nil
}

// metric opens (creating) the buckets of one metric of a version.
func (t *txn) metric(app, version, metric string) (*metricBuckets, error) {
	k := [3]string{app, version, metric}
	if m := t.metrics[k]; m != nil {
		return m, nil
	}
	v, err := t.version(app, version)
	if err != nil {
		return nil, err
	}
	b, err := v.metrics.CreateBucketIfNotExists([]byte(metric))
	if err != nil {
		return nil, fmt.Errorf("create bucket of metric %s of %s/%s: %w", metric, app, version, err)
	}
	m := &metricBuckets{b: b}
	for _, s := range []struct {
		name []byte
		to   **bolt.Bucket
	}{{histBucket, &m.hist}, {bucketsBucket, &m.buckets}, {userSumsBucket, &m.sums}} {
		if *s.to, err = b.CreateBucketIfNotExists(s.name); err != nil {
			return nil, fmt.Errorf("create bucket %s of metric %s of %s/%s: %w", s.name, metric, app, version, err)
		}
	}
	t.metrics[k] = m
	return m, nil
}

// expose puts a user in the cohort of at's bucket unless they were exposed
// to the version before, and returns their cohort.
func (t *txn) expose(app, version, user string, at time.Time) (time.Time, error) {
	v, err := t.version(app, version)
	if err != nil {
		return time.Time{}, err
	}
	if c := v.users.Get([]byte(user)); c != nil {
		return parseTime(c), nil
	}
	t.userKey = appendUserKey(t.userKey[:0], app, version, user)
	h := t.journal.hash(t.userKey)
	in, c := t.journal.find(t.tx, h, app, version, user)
	if in == found {
		return parseTime(c), nil
	}
	cohort := t.opts.BucketOf(at)
	ck := timeKey(cohort)
	if t.journaling && in == absent {
		seq, err := t.journal.add(t.tx, h, ck, app, version, user)
		if err != nil {
			return time.Time{}, err
		}
		t.hints = append(t.hints, hint{h, seq})
	} else if err := v.users.Put([]byte(user), ck); err != nil {
		return time.Time{}, fmt.Errorf("put user %s of %s/%s: %w", user, app, version, err)
	}
	k := newUsersKey{app: app, version: version}
	copy(k.cohort[:], ck)
	t.newUsers[k]++
	return cohort, nil
}

// count adds the users exposed in this transaction to their versions'
// and cohorts' counts; every transaction that exposes calls it last.
func (t *txn) count() error {
	for k, n := range t.newUsers {
		v, err := t.version(k.app, k.version)
		if err != nil {
			return err
		}
		ck := k.cohort[:]
		if err := v.cohorts.Put(ck, encodeInt(decodeInt(v.cohorts.Get(ck))+n)); err != nil {
			return fmt.Errorf("put cohort of %s/%s: %w", k.app, k.version, err)
		}
		if err := v.b.Put(exposedKey, encodeInt(decodeInt(v.b.Get(exposedKey))+n)); err != nil {
			return fmt.Errorf("put exposed users of %s/%s: %w", k.app, k.version, err)
		}
	}
	return nil
}

// record counts one write, in the model's order of operations so that the
// sums agree with it bit for bit. The caller has checked its ID.
func (t *txn) record(w *ledger.Write) error {
	cohort, err := t.expose(w.App, w.Version, w.User, w.At)
	if err != nil {
		return err
	}
	m, err := t.metric(w.App, w.Version, w.Metric)
	if err != nil {
		return err
	}
	where := func(err error, what string) error {
		return fmt.Errorf("put %s of metric %s of %s/%s: %w", what, w.Metric, w.App, w.Version, err)
	}

	rec := decodeMetric(m.b.Get(summaryKey))
	rec.Transactions.Add(w.Value)
	user := []byte(w.User)
	oldBits := m.sums.Get(user)
	had, old := oldBits != nil, 0.0
	if had {
		old = readFloat(oldBits)
	}
	sum := old + w.Value
	rec.Users.Replace(old, sum, !had)
	if err := m.b.Put(summaryKey, rec.encode()); err != nil {
		return where(err, "summary")
	}
	if err := m.sums.Put(user, appendFloat(make([]byte, 0, 8), sum)); err != nil {
		return where(err, "user sum")
	}
	if err := t.histogram(m, w.Value); err != nil {
		return where(err, "histogram")
	}

	// The write's bucket takes the value; the user's cohort bucket the
	// change of the user's sum. Both may be one bucket.
	start := t.opts.BucketOf(w.At)
	sk := timeKey(start)
	b := decodeBucket(start, m.buckets.Get(sk))
	b.Transactions.Add(w.Value)
	if cohort.Equal(start) {
		b.Users.Replace(old, sum, !had)
	}
	if err := m.buckets.Put(sk, encodeBucket(b)); err != nil {
		return where(err, "bucket")
	}
	if !cohort.Equal(start) {
		ck := timeKey(cohort)
		c := decodeBucket(cohort, m.buckets.Get(ck))
		c.Users.Replace(old, sum, !had)
		if err := m.buckets.Put(ck, encodeBucket(c)); err != nil {
			return where(err, "cohort bucket")
		}
	}
	return nil
}

// histogram counts v in its bin; ledger.Histogram.Add picks the bin, so
// that the bins are the model's.
func (t *txn) histogram(m *metricBuckets, v float64) error {
	var h ledger.Histogram
	h.Add(v)
	add := func(k []byte, n int64) error {
		return m.hist.Put(k, encodeInt(decodeInt(m.hist.Get(k))+n))
	}
	if h.Zero > 0 {
		if err := add(zeroBin, h.Zero); err != nil {
			return err
		}
	}
	for i, n := range h.Positive {
		if err := add(binKey('p', i), n); err != nil {
			return err
		}
	}
	for i, n := range h.Negative {
		if err := add(binKey('n', i), n); err != nil {
			return err
		}
	}
	return nil
}
