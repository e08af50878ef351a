package boltledger

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/iter8-tools/iter8/pkg/abn/ledger"
)

// LockTimeout is how long Open waits for the file lock that another
// process holds before it fails: a second replica on the same volume gets
// a clear error instead of hanging.
const LockTimeout = 5 * time.Second

// ErrClosed is returned by every call on a closed Ledger.
var ErrClosed = errors.New("ledger is closed")

// ErrInUse is returned by Open when another process (or another Open in
// this one) holds the file.
var ErrInUse = errors.New("in use by another process")

// format is the layout's version (see the package doc), kept in meta so
// that a later layout can recognize an older file. Format 1 had no
// journal; Open upgrades it by adding one.
const format = "2"

// Bucket and key names of the layout.
var (
	metaBucket    = []byte("meta")
	idsBucket     = []byte("ids")
	idTimesBucket = []byte("idtimes")
	appsBucket    = []byte("apps")

	formatKey = []byte("format")
	checkKey  = []byte("check")
)

// Ledger is the ledger.Ledger kept in one bbolt file.
type Ledger struct {
	path    string
	opts    ledger.Options
	db      *bolt.DB
	closed  atomic.Bool
	journal *journal
	// exposing serializes Expose calls, which add to the journal and merge
	// it.
	exposing sync.Mutex
	// mergeFailed holds the last merge's error (nil when it worked).
	mergeFailed atomic.Pointer[error]
}

var _ ledger.Ledger = (*Ledger)(nil)

// Open opens (or creates) the ledger file at path. It fails within
// LockTimeout when another process has the file open.
func Open(path string, opts ledger.Options) (*Ledger, error) {
	return open(path, opts, LockTimeout)
}

func open(path string, opts ledger.Options, lockTimeout time.Duration) (*Ledger, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: lockTimeout})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("open ledger %s: %w (no file lock within %v)", path, ErrInUse, lockTimeout)
	}
	if err != nil {
		return nil, fmt.Errorf("open ledger %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{metaBucket, idsBucket, idTimesBucket, appsBucket, journalBucket} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		meta := tx.Bucket(metaBucket)
		switch f := meta.Get(formatKey); {
		case f == nil, string(f) == "1":
			return meta.Put(formatKey, []byte(format))
		case string(f) != format:
			return fmt.Errorf("read format: %q, want %q", f, format)
		}
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open ledger %s: %w", path, err)
	}
	j := newJournal()
	if err := db.View(j.load); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open ledger %s: %w (the journal must be repaired before the ledger opens)", path, err)
	}
	db.MaxBatchDelay = batchDelay
	return &Ledger{path: path, opts: opts.WithDefaults(), db: db, journal: j}, nil
}

// Check says whether the ledger can store writes: it commits a small write
// transaction, so that a full disk or a read-only volume fails readiness.
func (l *Ledger) Check(ctx context.Context) error {
	if err := l.usable(ctx); err != nil {
		return fmt.Errorf("check ledger %s: %w", l.path, err)
	}
	err := l.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(metaBucket).Put(checkKey, timeKey(time.Now()))
	})
	if err != nil {
		return fmt.Errorf("check ledger %s: %w", l.path, err)
	}
	if l.mergeError() != nil { // retry: Expose does not while it failed
		l.exposing.Lock()
		l.noteMerge(l.merge(0))
		l.exposing.Unlock()
	}
	if err := l.mergeError(); err != nil {
		return fmt.Errorf("check ledger %s: %w", l.path, err)
	}
	return nil
}

// noteMerge keeps a merge step's outcome for Check.
func (l *Ledger) noteMerge(err error) {
	if err != nil {
		err = fmt.Errorf("merge the journal into the users buckets: %w", err)
	}
	l.mergeFailed.Store(&err)
}

// mergeError is the last merge step's error, nil if it worked.
func (l *Ledger) mergeError() error {
	if failed := l.mergeFailed.Load(); failed != nil {
		return *failed
	}
	return nil
}

// Close closes the file; it waits for transactions under way. Calls after
// it return ErrClosed.
func (l *Ledger) Close() error {
	if l.closed.Swap(true) {
		return fmt.Errorf("close ledger %s: %w", l.path, ErrClosed)
	}
	if err := l.db.Close(); err != nil {
		return fmt.Errorf("close ledger %s: %w", l.path, err)
	}
	return nil
}

// usable refuses calls on a closed ledger or with a done context before
// any work starts; a transaction once started runs to its end.
func (l *Ledger) usable(ctx context.Context) error {
	if l.closed.Load() {
		return ErrClosed
	}
	return ctx.Err()
}

// batchDelay is how long a Record waits for others to share its
// transaction and fsync. bbolt's 10 ms default doubles a lone write's
// latency; while one batch commits the next one fills anyway, so a short
// delay costs little throughput.
const batchDelay = 2 * time.Millisecond
