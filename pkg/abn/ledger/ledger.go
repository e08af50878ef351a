// Package ledger stores the business metrics of A/B/n tests: each value a
// user produced on the version that served them, and which users each
// version was shown to. A write is acknowledged only once it is durable,
// and counts once however often a client retries it. The ledger keeps
// running summaries (aggregation on write), so reading an application
// costs O(versions × metrics × buckets), never O(writes).
//
// Two implementations share the contract that ledgertest checks: bbolt for
// a single replica, Redis for several.
package ledger

import (
	"context"
	"fmt"
	"math"
	"time"
)

// Ledger is where the A/B/n service keeps metrics and exposures.
type Ledger interface {
	// Record stores writes; when it returns nil every one of them is
	// durable. A write whose ID was recorded before for the same
	// application (within Options.DedupeWindow) is acknowledged again and
	// not counted twice. Every write is validated (Write.Validate) before
	// any is stored; a batch that fails later may be stored in part, per
	// application, and a retry with the same IDs completes it.
	Record(ctx context.Context, writes []Write) error
	// Expose records that users were assigned to versions: a user counts
	// once per version, in the bucket of their first exposure.
	Expose(ctx context.Context, exposures []Exposure) error
	// Summary reads the running summaries of one application; an
	// application with nothing recorded has no versions.
	Summary(ctx context.Context, app string) (Summary, error)
	// Forget removes every application whose last write or exposure was
	// recorded before the time given, and returns their names: the
	// service's retention. Nothing expires unless Forget is called.
	Forget(ctx context.Context, before time.Time) ([]string, error)
	// Check says whether the ledger can store writes now (readiness).
	Check(ctx context.Context) error
	// Close releases the ledger's files or connections.
	Close() error
}

// Options are the settings both implementations share.
type Options struct {
	// BucketWidth is the width of the time buckets of summaries; default
	// DefaultBucketWidth. Buckets start at whole multiples of it since the
	// Unix epoch, so that every replica agrees on them.
	BucketWidth time.Duration
	// DedupeWindow is how long a write's ID is remembered; a client that
	// retries later than this counts twice. Default DefaultDedupeWindow.
	DedupeWindow time.Duration
}

const (
	// DefaultBucketWidth is one minute: a test of an hour has 60 buckets,
	// about the 64 blocks that comparisons use (see stats.Series).
	DefaultBucketWidth = time.Minute
	// DefaultDedupeWindow outlasts any client's retries by far.
	DefaultDedupeWindow = 24 * time.Hour
)

// WithDefaults fills unset options.
func (o Options) WithDefaults() Options {
	if o.BucketWidth <= 0 {
		o.BucketWidth = DefaultBucketWidth
	}
	if o.DedupeWindow <= 0 {
		o.DedupeWindow = DefaultDedupeWindow
	}
	return o
}

// BucketOf is the start of the bucket that holds t, counted from the Unix
// epoch (time.Truncate counts from year 1, which agrees only for widths
// that divide a day).
func (o Options) BucketOf(t time.Time) time.Time {
	ns, w := t.UnixNano(), int64(o.BucketWidth)
	start := ns / w * w
	if start > ns { // before the epoch, division rounds towards zero
		start -= w
	}
	return time.Unix(0, start).UTC()
}

// Write is one value of one metric that one user produced on one version.
type Write struct {
	// ID identifies the write across retries (the SDK makes one per
	// value); IDs are unique per application.
	ID string `json:"id"`
	// App is the application as namespace/name.
	App string `json:"app"`
	// Version served the user.
	Version string  `json:"version"`
	User    string  `json:"user"`
	Metric  string  `json:"metric"`
	Value   float64 `json:"value"`
	// At is when the value was measured: it selects the write's bucket.
	At time.Time `json:"at"`
}

// Exposure is one user assigned to one version.
type Exposure struct {
	App     string    `json:"app"`
	Version string    `json:"version"`
	User    string    `json:"user"`
	At      time.Time `json:"at"`
}

// Limits on what a write may hold, so that one client cannot grow the
// ledger's keys without bound or make sums lose their exactness.
const (
	MaxIDLength      = 128
	MaxAppLength     = 253 + 1 + 63 // namespace/name
	MaxVersionLength = 63
	MaxUserLength    = 512
	MaxMetricLength  = 128
	// MaxValue bounds a value's magnitude: sums of a million such values
	// of whole units stay exact in a float64 (below 2^53 ≈ 9·10^15).
	MaxValue = 1e9
)

// FieldError names the field of a write or exposure that is not valid.
type FieldError struct {
	Field, Reason string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

// Validate checks a write before anything is stored.
func (w *Write) Validate() error {
	if err := checkName("id", w.ID, MaxIDLength); err != nil {
		return err
	}
	if err := checkKeys(w.App, w.Version, w.User); err != nil {
		return err
	}
	if err := CheckMetricName(w.Metric); err != nil {
		return err
	}
	if math.IsNaN(w.Value) || math.IsInf(w.Value, 0) {
		return &FieldError{"value", fmt.Sprintf("%v is not a finite number", w.Value)}
	}
	if math.Abs(w.Value) > MaxValue {
		return &FieldError{"value", fmt.Sprintf("%g is larger in magnitude than %g", w.Value, float64(MaxValue))}
	}
	if w.At.IsZero() {
		return &FieldError{"at", "is not set"}
	}
	return nil
}

// Validate checks an exposure before anything is stored.
func (e *Exposure) Validate() error {
	if err := checkKeys(e.App, e.Version, e.User); err != nil {
		return err
	}
	if e.At.IsZero() {
		return &FieldError{"at", "is not set"}
	}
	return nil
}

func checkKeys(app, version, user string) error {
	if err := checkName("application", app, MaxAppLength); err != nil {
		return err
	}
	if err := checkName("version", version, MaxVersionLength); err != nil {
		return err
	}
	return checkName("user", user, MaxUserLength)
}

// checkName refuses empty and overlong names and control characters (the
// Redis implementation joins names into keys with a separator below 0x20).
func checkName(field, s string, limit int) error {
	switch {
	case s == "":
		return &FieldError{field, "is empty"}
	case len(s) > limit:
		return &FieldError{field, fmt.Sprintf("is %d bytes long, more than %d", len(s), limit)}
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return &FieldError{field, fmt.Sprintf("holds the control character %U", r)}
		}
	}
	return nil
}

// CheckMetricName refuses a metric name other than letters, digits, '_', '-' and '.', starting with a
// letter, as metric names in experiments (abn/<name>) are written.
func CheckMetricName(s string) error {
	if err := checkName("metric", s, MaxMetricLength); err != nil {
		return err
	}
	for i, r := range s {
		letter := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
		if i == 0 && !letter {
			return &FieldError{"metric", fmt.Sprintf("%q does not start with a letter", s)}
		}
		if !letter && !(r >= '0' && r <= '9') && r != '_' && r != '-' && r != '.' {
			return &FieldError{"metric", fmt.Sprintf("%q holds %q: want letters, digits, '_', '-' or '.'", s, r)}
		}
	}
	return nil
}
