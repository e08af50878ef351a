// Package client is the Go SDK of Iter8's A/B/n service for frontends: it
// asks which version of a backend a user should get (Lookup) and records
// what the user did there (WriteMetric).
//
// It lives in its own module (github.com/iter8-tools/iter8/abn), which
// needs only gRPC and protobuf: a frontend's `go get` pulls in neither Helm
// nor Kubernetes.
//
// Concurrent Lookups share one stream of the service's Lookups call: the
// ones that wait while a batch is on its way go together in the next
// message, which costs the service and the frontend a fraction of a call
// each. Against a service without that call (Iter8 v1's) each Lookup is
// a unary call.
//
// Neither call ever breaks the frontend: Lookup answers the baseline when
// the service is slow or unreachable, and WriteMetric only queues the value
// (a bounded buffer; values that do not fit are counted as dropped) for a
// background sender that batches, retries with backoff and dedupes by a
// per-value ID. Close flushes.
package client

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	pb "github.com/iter8-tools/iter8/abn/grpc"
)

// Options configure a Client. The zero value of each field is its default.
type Options struct {
	// Target is the service's gRPC address, such as abn.iter8:50051.
	// Required.
	Target string
	// Application is the backend's name as namespace/name (or name, in the
	// service's namespace). Required.
	Application string
	// Baseline is the version that Lookup answers when the service cannot:
	// normally the release's first version. Required.
	Baseline string
	// LookupTimeout bounds each Lookup; default 100ms.
	LookupTimeout time.Duration
	// Buffer is how many values wait to be sent at most; default 10000.
	Buffer int
	// Batch is how many values go in one call at most; default 100.
	Batch int
	// InFlight is how many batches may wait for the service at once;
	// default 4.
	InFlight int
	// FlushInterval is how long a value waits for a fuller batch at most;
	// default 100ms.
	FlushInterval time.Duration
	// MaxBackoff caps the wait between retries of a batch; default 5s.
	// Retries start at 50ms and double, with jitter.
	MaxBackoff time.Duration
	// DialOptions replace the default (plain-text transport credentials).
	// They follow the client's reconnect backoff (100ms growing to 1s),
	// which a grpc.WithConnectParams among them replaces.
	DialOptions []grpc.DialOption
	// Now is the clock, for tests; default time.Now.
	Now func() time.Time
}

func (o *Options) withDefaults() {
	if o.LookupTimeout <= 0 {
		o.LookupTimeout = 100 * time.Millisecond
	}
	if o.Buffer <= 0 {
		o.Buffer = 10000
	}
	if o.Batch <= 0 {
		o.Batch = 100
	}
	if o.InFlight <= 0 {
		o.InFlight = 4
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = 100 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 5 * time.Second
	}
	if o.DialOptions == nil {
		o.DialOptions = []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// reconnect is how the client retries a lost connection: gRPC's default
// backoff grows to two minutes, and every Lookup meanwhile falls back to the
// baseline, so a restarted service would go unused long after it is back.
// Here retries start at 100ms and grow to 1s at most.
var reconnect = grpc.ConnectParams{
	Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
	MinConnectTimeout: 5 * time.Second,
}

// Client talks to the A/B/n service for one application. It is safe for
// concurrent use.
type Client struct {
	opts   Options
	conn   *grpc.ClientConn
	abn    pb.ABNClient
	queue  chan *pb.MetricValue
	done   chan struct{}
	closed atomic.Bool
	// closing guards sends on queue against Close closing it.
	closing sync.RWMutex

	// stop ends the sender's retries once Close's deadline has passed.
	stopCtx context.Context
	stop    context.CancelFunc

	dropped atomic.Uint64
	inDoubt atomic.Uint64
	sent    atomic.Uint64
	// gaveUp is set when the sender gave values up because Close's
	// deadline passed.
	gaveUp  atomic.Bool
	lastErr atomic.Pointer[error]

	lookups *lookups
	// lookupsCtx ends the Lookups stream on Close.
	lookupsCtx  context.Context
	stopLookups context.CancelFunc
	// unaryLookups is set once the service answered the stream with
	// Unimplemented.
	unaryLookups atomic.Bool
}

// New connects lazily (the first call dials) and starts the sender.
func New(opts Options) (*Client, error) {
	switch {
	case opts.Target == "":
		return nil, errors.New("abn client: Target is empty: want the service's host:port")
	case opts.Application == "":
		return nil, errors.New("abn client: Application is empty: want namespace/name")
	case opts.Baseline == "":
		return nil, errors.New("abn client: Baseline is empty: want the version to answer when the service cannot")
	}
	opts.withDefaults()
	// The default reconnect first, so that DialOptions can replace it.
	dial := append([]grpc.DialOption{grpc.WithConnectParams(reconnect)}, opts.DialOptions...)
	conn, err := grpc.NewClient(opts.Target, dial...)
	if err != nil {
		return nil, fmt.Errorf("abn client: target %s: %w", opts.Target, err)
	}
	c := &Client{
		opts: opts, conn: conn, abn: pb.NewABNClient(conn),
		queue: make(chan *pb.MetricValue, opts.Buffer), done: make(chan struct{}),
	}
	c.stopCtx, c.stop = context.WithCancel(context.Background())
	c.lookupsCtx, c.stopLookups = context.WithCancel(context.Background())
	c.lookups = newLookups(c)
	go c.send()
	go c.lookups.send()
	return c, nil
}

// Assignment is the version a user should get.
type Assignment struct {
	// Version is the version's name.
	Version string
	// Number is its position in the application's versions (0: baseline).
	Number int
	// Header and HeaderValue route a request to this version through the
	// Gateway, when the release renders per-version header matches.
	Header, HeaderValue string
	// Fallback is true when this is the baseline because no version was
	// ready with weight, or the service did not answer (then Err says why).
	Fallback bool
	Err      error
}

// Lookup returns the user's version, or the baseline (with Fallback and
// Err set) when the service fails or does not answer within LookupTimeout.
func (c *Client) Lookup(ctx context.Context, user string) Assignment {
	ctx, cancel := context.WithTimeout(ctx, c.opts.LookupTimeout)
	defer cancel()
	// A user the service would refuse is refused here: on the stream it
	// would fail the batch it is sent in.
	if err := checkName("user", user, maxUserLength, true); err != nil {
		return Assignment{Version: c.opts.Baseline, Fallback: true, Err: status.Error(codes.InvalidArgument, "abn lookup: "+err.Error())}
	}
	s, err := c.lookup(ctx, user)
	if err != nil {
		return Assignment{Version: c.opts.Baseline, Fallback: true, Err: err}
	}
	if e := s.GetError(); e != "" {
		return Assignment{Version: c.opts.Baseline, Fallback: true, Err: status.Error(codes.InvalidArgument, e)}
	}
	n, err := strconv.Atoi(s.GetVersionNumber())
	if err != nil || n < 0 || s.GetVersion() == "" {
		return Assignment{Version: c.opts.Baseline, Fallback: true,
			Err: fmt.Errorf("abn lookup: answer without a version (number %q, name %q)", s.GetVersionNumber(), s.GetVersion())}
	}
	return Assignment{Version: s.GetVersion(), Number: n, Header: s.GetHeader(), HeaderValue: s.GetHeaderValue(), Fallback: s.GetFallback()}
}

// lookup asks over the Lookups stream, or by unary calls when the service
// does not have that call (Iter8 v1's, or one older than the stream).
func (c *Client) lookup(ctx context.Context, user string) (*pb.Session, error) {
	if !c.unaryLookups.Load() {
		s, err := c.lookups.lookup(ctx, user)
		if status.Code(err) != codes.Unimplemented {
			return s, err
		}
		c.unaryLookups.Store(true)
	}
	if c.closed.Load() {
		return nil, ErrClosed
	}
	return c.abn.Lookup(ctx, &pb.Application{Name: c.opts.Application, User: user})
}

// ErrClosed is returned by WriteMetric and Lookup's Err after Close.
var ErrClosed = errors.New("abn client: closed")

// WriteMetric queues one value of a metric for the user, credited to the
// version that served them (the Assignment's Version; empty means the
// user's current assignment). It never blocks: when the buffer is full the
// value is dropped and counted (Dropped). It returns an error only for a
// value the service would refuse, or after Close.
func (c *Client) WriteMetric(user, version, metric string, value float64) error {
	if err := checkValue(user, version, metric, value); err != nil {
		return fmt.Errorf("abn write metric: %w", err)
	}
	v := &pb.MetricValue{
		Name: metric, Value: strconv.FormatFloat(value, 'g', -1, 64), Application: c.opts.Application,
		User: user, Version: version, Id: newID(), AtUnixNano: c.opts.Now().UnixNano(),
	}
	c.closing.RLock()
	defer c.closing.RUnlock()
	if c.closed.Load() {
		return ErrClosed
	}
	select {
	case c.queue <- v:
	default:
		c.dropped.Add(1)
	}
	return nil
}

// newID is 128 random bits: the service counts a value once per ID, so a
// batch retried after a lost answer is not counted twice.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

// Stats are what the sender did so far.
type Stats struct {
	// Sent values were acknowledged by the service (durable).
	Sent uint64
	// Dropped values were not: the buffer was full, the service refused
	// them (as invalid, or with another status a retry cannot change),
	// or Close gave up on them before any call that may have carried them
	// was cut off.
	Dropped uint64
	// InDoubt values were not acknowledged after this client cut off a
	// call that may have carried them (Close's deadline, or the call's own
	// timeout of 10 s), then gave them up (Close) or had them refused: the
	// service may hold them. A call whose connection was lost after the
	// service stored its values, not acknowledged again before Close gave
	// up, counts them as dropped: the client cannot tell it from a
	// connection that never carried them.
	InDoubt uint64
	// LastError is the last error of a call that failed, if any.
	LastError error
}

// Stats returns the sender's counters.
func (c *Client) Stats() Stats {
	s := Stats{Sent: c.sent.Load(), Dropped: c.dropped.Load(), InDoubt: c.inDoubt.Load()}
	if e := c.lastErr.Load(); e != nil {
		s.LastError = *e
	}
	return s
}

// Close stops taking values, sends what is queued (retrying until ctx is
// done) and closes the connection. Values still unsent when ctx ends are
// counted as dropped or in doubt (Stats), and Close returns ctx's error.
// When everything was sent, Close returns nil even if ctx ended meanwhile.
func (c *Client) Close(ctx context.Context) error {
	c.closing.Lock()
	if c.closed.Swap(true) {
		c.closing.Unlock()
		return ErrClosed
	}
	close(c.queue)
	c.closing.Unlock()
	c.stopLookups()
	var err error
	select {
	case <-c.done:
	case <-ctx.Done():
		c.stop()
		<-c.done
		// The sender may have finished just as ctx ended: ctx's error
		// only when values were given up on.
		if c.gaveUp.Load() {
			err = ctx.Err()
		}
	}
	c.stop()
	return errors.Join(err, c.conn.Close())
}

// retryable says whether a failed batch may succeed if sent again: not when
// the service refused it as invalid or the call cannot work at all.
func retryable(err error) bool {
	switch status.Code(err) {
	case codes.InvalidArgument, codes.NotFound, codes.PermissionDenied, codes.Unauthenticated,
		codes.Unimplemented, codes.FailedPrecondition, codes.OutOfRange:
		return false
	}
	return true
}
