package client

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"

	pb "github.com/iter8-tools/iter8/abn/grpc"
)

// fakeABN is an A/B/n service in the test: it answers Lookup with a fixed
// session (optionally late), and records every value WriteMetrics receives,
// storing each ID once as the real service does.
type fakeABN struct {
	pb.UnimplementedABNServer

	// session answers Lookup.
	session *pb.Session
	// lookupDelay delays Lookup's answer (or until the caller gives up),
	// and each batch's answer on the Lookups stream.
	lookupDelay time.Duration
	// unaryOnly makes Lookups answer Unimplemented, as Iter8 v1's service.
	unaryOnly bool
	// perUser answers each user of a batch with the user's name as the
	// version, so that a test sees which answer went to whom.
	perUser bool
	// endStreamAfter ends each Lookups stream with Unavailable after that
	// many batches (0: never).
	endStreamAfter int
	// lastBatchShort answers a batch with one session too few.
	lastBatchShort bool
	// stallFirstStream never answers on the first Lookups stream.
	stallFirstStream bool
	// failFirst fails that many WriteMetrics calls with Unavailable
	// before storing anything.
	failFirst int
	// loseAnswers makes that many WriteMetrics calls (after failFirst)
	// store the batch and then fail with Unavailable, as when the answer
	// is lost: the client must retry with the same IDs.
	loseAnswers int
	// refuse, when it returns true, makes WriteMetrics refuse the batch
	// with InvalidArgument.
	refuse func(*pb.MetricValues) bool
	// block, when not nil, holds every WriteMetrics call until it is
	// closed; entered receives a value (without blocking) when a call
	// starts waiting.
	block   chan struct{}
	entered chan struct{}
	// storeThenHang makes every WriteMetrics call store its batch and
	// then wait for the caller to give up, answering nothing.
	storeThenHang bool

	mu       sync.Mutex
	calls    int                        // WriteMetrics calls
	refused  int                        // calls refused with InvalidArgument
	batches  []int                      // sizes of the batches received
	received int                        // values received in stored batches, duplicates included
	stored   map[string]*pb.MetricValue // by ID
	lookups  int                        // unary Lookup calls
	streams  int                        // Lookups streams opened
	lbatches []int                      // sizes of the batches Lookups received
}

func (f *fakeABN) Lookups(stream pb.ABN_LookupsServer) error {
	if f.unaryOnly {
		return status.Error(codes.Unimplemented, "fake: no Lookups")
	}
	f.mu.Lock()
	f.streams++
	stall := f.stallFirstStream && f.streams == 1
	f.mu.Unlock()
	if stall {
		<-stream.Context().Done()
		return nil
	}
	for n := 1; ; n++ {
		in, err := stream.Recv()
		if err != nil {
			return nil
		}
		f.mu.Lock()
		f.lbatches = append(f.lbatches, len(in.GetUsers()))
		f.mu.Unlock()
		if f.endStreamAfter > 0 && n > f.endStreamAfter {
			return status.Error(codes.Unavailable, "fake: stream ended")
		}
		if f.lookupDelay > 0 {
			select {
			case <-time.After(f.lookupDelay):
			case <-stream.Context().Done():
				return nil
			}
		}
		f.mu.Lock()
		session := f.session
		f.mu.Unlock()
		out := &pb.SessionBatch{}
		for _, u := range in.GetUsers() {
			s := &pb.Session{}
			switch {
			case f.perUser:
				s = &pb.Session{VersionNumber: "1", Version: u}
			case session != nil:
				s = proto.Clone(session).(*pb.Session)
			}
			out.Sessions = append(out.Sessions, s)
		}
		if f.lastBatchShort {
			out.Sessions = out.Sessions[1:]
		}
		if err := stream.Send(out); err != nil {
			return nil
		}
	}
}

func (f *fakeABN) Lookup(ctx context.Context, a *pb.Application) (*pb.Session, error) {
	f.mu.Lock()
	f.lookups++
	f.mu.Unlock()
	if f.lookupDelay > 0 {
		select {
		case <-time.After(f.lookupDelay):
		case <-ctx.Done():
			return nil, status.FromContextError(ctx.Err()).Err()
		}
	}
	if f.session == nil {
		return &pb.Session{}, nil
	}
	return proto.Clone(f.session).(*pb.Session), nil
}

func (f *fakeABN) WriteMetrics(ctx context.Context, vs *pb.MetricValues) (*emptypb.Empty, error) {
	if f.block != nil {
		select {
		case f.entered <- struct{}{}:
		default:
		}
		select {
		case <-f.block:
		case <-ctx.Done():
			return nil, status.FromContextError(ctx.Err()).Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.calls <= f.failFirst {
		return nil, status.Error(codes.Unavailable, "fake: unavailable")
	}
	if f.refuse != nil && f.refuse(vs) {
		f.refused++
		return nil, status.Error(codes.InvalidArgument, "fake: invalid batch")
	}
	f.batches = append(f.batches, len(vs.GetValues()))
	for _, v := range vs.GetValues() {
		f.received++
		if _, ok := f.stored[v.GetId()]; !ok {
			f.stored[v.GetId()] = v
		}
	}
	if f.calls <= f.failFirst+f.loseAnswers {
		return nil, status.Error(codes.Unavailable, "fake: answer lost")
	}
	if f.storeThenHang {
		f.mu.Unlock()
		<-ctx.Done()
		f.mu.Lock() // for the deferred Unlock
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	return &emptypb.Empty{}, nil
}

func (f *fakeABN) snapshot() (calls, refused, received int, batches []int, stored map[string]*pb.MetricValue) {
	f.mu.Lock()
	defer f.mu.Unlock()
	stored = make(map[string]*pb.MetricValue, len(f.stored))
	for k, v := range f.stored {
		stored[k] = v
	}
	return f.calls, f.refused, f.received, append([]int(nil), f.batches...), stored
}

// start serves f on a fresh 127.0.0.1 port and returns the address.
func (f *fakeABN) start(t *testing.T) string {
	t.Helper()
	f.stored = map[string]*pb.MetricValue{}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	pb.RegisterABNServer(s, f)
	go func() { _ = s.Serve(lis) }()
	t.Cleanup(s.Stop)
	return lis.Addr().String()
}

// closedPort is an address on 127.0.0.1 where nothing listens.
func closedPort(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	_ = lis.Close()
	return addr
}

// newClient makes a client with fast test settings, overridden by set.
func newClient(t *testing.T, target string, set func(*Options)) *Client {
	t.Helper()
	o := Options{
		Target: target, Application: "default/backend", Baseline: "v0",
		LookupTimeout: 100 * time.Millisecond, FlushInterval: 5 * time.Millisecond,
		MaxBackoff: 10 * time.Millisecond,
	}
	if set != nil {
		set(&o)
	}
	c, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

func closeClient(t *testing.T, c *Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestLookup: over the Lookups stream, and by unary calls against a
// service without it (Iter8 v1's).
func TestLookup(t *testing.T) {
	for _, unaryOnly := range []bool{false, true} {
		t.Run(fmt.Sprintf("unary only %v", unaryOnly), func(t *testing.T) {
			f := &fakeABN{unaryOnly: unaryOnly, session: &pb.Session{VersionNumber: "2", Version: "v2", Header: "x-version", HeaderValue: "v2", Fallback: true}}
			c := newClient(t, f.start(t), func(o *Options) { o.LookupTimeout = 5 * time.Second })
			got := c.Lookup(context.Background(), "alice")
			want := Assignment{Version: "v2", Number: 2, Header: "x-version", HeaderValue: "v2", Fallback: true}
			if got != want {
				t.Fatalf("Lookup = %+v, want %+v", got, want)
			}

			f.mu.Lock()
			f.session = &pb.Session{VersionNumber: "1", Version: "candidate"}
			f.mu.Unlock()
			got = c.Lookup(context.Background(), "bob")
			want = Assignment{Version: "candidate", Number: 1}
			if got != want {
				t.Fatalf("Lookup = %+v, want %+v", got, want)
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			if unaryOnly && f.lookups != 2 {
				t.Errorf("%d unary Lookups, want 2 (the stream was refused)", f.lookups)
			}
			if !unaryOnly && (f.lookups != 0 || f.streams != 1) {
				t.Errorf("%d unary Lookups and %d streams, want 0 and 1", f.lookups, f.streams)
			}
		})
	}
}

// slowSend makes each message a stream sends take 2ms, as when the
// connection is busy: the sender cannot keep up with 64 callers.
func slowSend(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	s, err := streamer(ctx, desc, cc, method, opts...)
	return slowStream{s}, err
}

type slowStream struct{ grpc.ClientStream }

func (s slowStream) SendMsg(m any) error {
	time.Sleep(2 * time.Millisecond) // the cost being simulated
	return s.ClientStream.SendMsg(m)
}

// TestLookupsConcurrent: 64 callers' Lookups share one stream, the ones
// that wait while a batch is sent go together in the next, and each
// caller gets its own user's answer.
func TestLookupsConcurrent(t *testing.T) {
	f := &fakeABN{perUser: true}
	c := newClient(t, f.start(t), func(o *Options) {
		o.LookupTimeout = 10 * time.Second
		o.DialOptions = []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithStreamInterceptor(slowSend)}
	})
	var wg sync.WaitGroup
	for g := range 64 {
		wg.Go(func() {
			for k := range 50 {
				user := fmt.Sprintf("u%d-%d", g, k)
				if got := c.Lookup(context.Background(), user); got.Version != user || got.Err != nil {
					t.Errorf("Lookup(%s) = %+v, want version %s", user, got, user)
					return
				}
			}
		})
	}
	wg.Wait()
	f.mu.Lock()
	defer f.mu.Unlock()
	users, largest := 0, 0
	for _, b := range f.lbatches {
		users += b
		largest = max(largest, b)
	}
	if users != 64*50 || f.streams != 1 || f.lookups != 0 {
		t.Errorf("%d users in %d batches on %d streams, %d unary calls; want %d users on 1 stream, no unary call", users, len(f.lbatches), f.streams, f.lookups, 64*50)
	}
	if largest < 32 || largest > maxLookupBatch {
		t.Errorf("largest batch %d users, want 32..%d (waiting Lookups go in one message)", largest, maxLookupBatch)
	}
}

// TestLookupsStreamEnds: a stream that fails fails only the Lookups sent
// on it (baseline, with the cause); the next Lookup opens a new stream.
func TestLookupsStreamEnds(t *testing.T) {
	f := &fakeABN{perUser: true, endStreamAfter: 1}
	c := newClient(t, f.start(t), func(o *Options) { o.LookupTimeout = 5 * time.Second })
	if got := c.Lookup(context.Background(), "ann"); got.Version != "ann" {
		t.Fatalf("first Lookup = %+v, want version ann", got)
	}
	got := c.Lookup(context.Background(), "bob")
	if got.Version != "v0" || !got.Fallback || status.Code(got.Err) != codes.Unavailable {
		t.Fatalf("Lookup on the ended stream = %+v, want the baseline with Unavailable", got)
	}
	if got := c.Lookup(context.Background(), "cy"); got.Version != "cy" || got.Err != nil {
		t.Fatalf("Lookup after the stream ended = %+v, want version cy on a new stream", got)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.streams != 2 {
		t.Errorf("%d streams, want 2", f.streams)
	}
}

// TestLookupRefusesABadUser: a user the service would refuse (here one
// protobuf cannot even send) falls back at once, and nothing is sent; the
// Lookups beside it are answered.
func TestLookupRefusesABadUser(t *testing.T) {
	f := &fakeABN{perUser: true}
	c := newClient(t, f.start(t), func(o *Options) { o.LookupTimeout = 5 * time.Second })
	for _, user := range []string{"", "bad\xff", "tab\there", strings.Repeat("u", 513)} {
		got := c.Lookup(context.Background(), user)
		if got.Version != "v0" || !got.Fallback || status.Code(got.Err) != codes.InvalidArgument || !strings.Contains(got.Err.Error(), "user:") {
			t.Errorf("Lookup(%.20q) = %+v, want the baseline with InvalidArgument naming user", user, got)
		}
	}
	if got := c.Lookup(context.Background(), "ann"); got.Version != "ann" || got.Err != nil {
		t.Fatalf("Lookup(ann) = %+v", got)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if fmt.Sprint(f.lbatches) != "[1]" {
		t.Errorf("batches sent %v, want only ann's", f.lbatches)
	}
}

// TestLookupsStalledStreamIsReplaced: a stream on which the service never
// answers (nor closes it) is given up once a batch has waited twice
// LookupTimeout, and the next Lookups go on a new stream.
func TestLookupsStalledStreamIsReplaced(t *testing.T) {
	const timeout = 50 * time.Millisecond
	f := &fakeABN{perUser: true, stallFirstStream: true}
	c := newClient(t, f.start(t), func(o *Options) { o.LookupTimeout = timeout })
	if got := c.Lookup(context.Background(), "ann"); status.Code(got.Err) != codes.DeadlineExceeded {
		t.Fatalf("Lookup on the stalled stream = %+v, want DeadlineExceeded", got)
	}
	waitFor(t, "a Lookup answered on a new stream", func() bool {
		return c.Lookup(context.Background(), "bob").Version == "bob"
	})
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.streams != 2 {
		t.Errorf("%d streams, want 2", f.streams)
	}
}

func TestLookupAfterClose(t *testing.T) {
	f := &fakeABN{perUser: true}
	c := newClient(t, f.start(t), nil)
	closeClient(t, c)
	if got := c.Lookup(context.Background(), "ann"); got.Version != "v0" || !got.Fallback || !errors.Is(got.Err, ErrClosed) {
		t.Fatalf("Lookup after Close = %+v, want the baseline with ErrClosed", got)
	}
}

func TestLookupFallsBack(t *testing.T) {
	const timeout = 100 * time.Millisecond
	slow := &fakeABN{session: &pb.Session{VersionNumber: "1", Version: "v1"}, lookupDelay: time.Minute}
	slowAddr := slow.start(t)
	malformed := func(s *pb.Session) string { return (&fakeABN{session: s}).start(t) }
	cases := []struct {
		name, target string
		code         codes.Code // expected gRPC code of Err, or OK for a malformed answer
	}{
		{"slower than LookupTimeout", slowAddr, codes.DeadlineExceeded},
		{"unreachable", "", codes.Unavailable},
		{"empty version number", malformed(&pb.Session{Version: "v1"}), codes.OK},
		{"non-numeric version number", malformed(&pb.Session{VersionNumber: "one", Version: "v1"}), codes.OK},
		{"negative version number", malformed(&pb.Session{VersionNumber: "-1", Version: "v1"}), codes.OK},
		{"empty version", malformed(&pb.Session{VersionNumber: "1"}), codes.OK},
		{"empty answer", malformed(&pb.Session{}), codes.OK},
		{"user refused", malformed(&pb.Session{Error: "user: is empty"}), codes.InvalidArgument},
		{"a session missing in the batch", (&fakeABN{perUser: true, lastBatchShort: true}).start(t), codes.Internal},
	}
	// Closed after the other servers started, so that none of them is
	// given its port.
	cases[1].target = closedPort(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newClient(t, tc.target, func(o *Options) { o.LookupTimeout = timeout })
			start := time.Now()
			got := c.Lookup(context.Background(), "alice")
			took := time.Since(start)
			if got.Version != "v0" || got.Number != 0 || !got.Fallback || got.Err == nil || got.Header != "" || got.HeaderValue != "" {
				t.Fatalf("Lookup = %+v, want the baseline v0 with Fallback and Err", got)
			}
			if tc.code != codes.OK && status.Code(got.Err) != tc.code {
				t.Errorf("Err = %v, want code %v", got.Err, tc.code)
			}
			if took > 10*timeout {
				t.Errorf("Lookup took %v, want about %v", took, timeout)
			}
		})
	}
}

func TestWriteMetricConcurrent(t *testing.T) {
	const users, perUser, workers, batch = 1000, 10, 8, 64
	f := &fakeABN{}
	at := time.Unix(1700000000, 42)
	c := newClient(t, f.start(t), func(o *Options) {
		o.Buffer = users * perUser
		o.Batch = batch
		o.Now = func() time.Time { return at }
	})
	key := func(user, version, metric, value string) string {
		return strings.Join([]string{user, version, metric, value}, "|")
	}
	want := map[string]bool{}
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for u := w; u < users; u += workers {
				user, version := fmt.Sprintf("user-%d", u), fmt.Sprintf("v%d", u%3)
				for j := range perUser {
					if err := c.WriteMetric(user, version, fmt.Sprintf("m%d", j%2), float64(u*perUser+j)+0.25); err != nil {
						errs <- err
						return
					}
				}
			}
		}()
	}
	for u := range users {
		for j := range perUser {
			want[key(fmt.Sprintf("user-%d", u), fmt.Sprintf("v%d", u%3), fmt.Sprintf("m%d", j%2),
				strconv.FormatFloat(float64(u*perUser+j)+0.25, 'g', -1, 64))] = true
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("WriteMetric: %v", err)
	}
	closeClient(t, c)

	_, _, received, batches, stored := f.snapshot()
	if len(stored) != users*perUser || received != users*perUser {
		t.Fatalf("stored %d distinct IDs of %d values received, want %d", len(stored), received, users*perUser)
	}
	for id, v := range stored {
		k := key(v.GetUser(), v.GetVersion(), v.GetName(), v.GetValue())
		if !want[k] {
			t.Fatalf("stored unexpected or duplicate value %s (%v)", k, v)
		}
		delete(want, k)
		if v.GetApplication() != "default/backend" || v.GetAtUnixNano() != at.UnixNano() || len(id) != 32 {
			t.Fatalf("stored value %v: want application default/backend, at %d and a 128-bit hex ID", v, at.UnixNano())
		}
	}
	for _, n := range batches {
		if n < 1 || n > batch {
			t.Fatalf("a batch had %d values, want 1..%d", n, batch)
		}
	}
	if s := c.Stats(); s.Sent != users*perUser || s.Dropped != 0 || s.LastError != nil {
		t.Fatalf("Stats = %+v, want %d sent, none dropped, no error", s, users*perUser)
	}
	t.Logf("%d batches", len(batches))
}

func TestWriteMetricRetries(t *testing.T) {
	for _, tc := range []struct {
		name                   string
		failFirst, loseAnswers int
	}{
		{"unavailable", 3, 0},
		{"answers lost", 0, 3},
		{"both", 2, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const n = 25
			f := &fakeABN{failFirst: tc.failFirst, loseAnswers: tc.loseAnswers}
			c := newClient(t, f.start(t), func(o *Options) { o.Batch = 10 })
			for i := range n {
				if err := c.WriteMetric(fmt.Sprintf("user-%d", i), "v1", "clicks", float64(i)); err != nil {
					t.Fatal(err)
				}
			}
			closeClient(t, c)
			calls, _, received, _, stored := f.snapshot()
			if len(stored) != n {
				t.Fatalf("stored %d distinct values, want %d", len(stored), n)
			}
			seen := map[string]bool{}
			for _, v := range stored {
				if seen[v.GetUser()] {
					t.Fatalf("user %s stored twice under different IDs", v.GetUser())
				}
				seen[v.GetUser()] = true
			}
			if tc.loseAnswers > 0 && received <= n {
				t.Errorf("received %d values, want retries of stored batches (> %d)", received, n)
			}
			if calls < tc.failFirst+tc.loseAnswers+1 {
				t.Errorf("%d calls, want at least %d", calls, tc.failFirst+tc.loseAnswers+1)
			}
			s := c.Stats()
			if s.Sent != n || s.Dropped != 0 {
				t.Errorf("Stats = %+v, want %d sent, none dropped", s, n)
			}
			if status.Code(s.LastError) != codes.Unavailable {
				t.Errorf("LastError = %v, want Unavailable", s.LastError)
			}
		})
	}
}

func TestWriteMetricRefusedBatchIsDropped(t *testing.T) {
	f := &fakeABN{refuse: func(vs *pb.MetricValues) bool {
		for _, v := range vs.GetValues() {
			if v.GetName() == "bad" {
				return true
			}
		}
		return false
	}}
	c := newClient(t, f.start(t), nil)
	if err := c.WriteMetric("alice", "v1", "bad", 1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the refused value to be dropped", func() bool { return c.Stats().Dropped == 1 })
	if s := c.Stats(); status.Code(s.LastError) != codes.InvalidArgument {
		t.Fatalf("LastError = %v, want InvalidArgument", s.LastError)
	}
	for i := range 5 {
		if err := c.WriteMetric("bob", "v1", "good", float64(i)); err != nil {
			t.Fatal(err)
		}
	}
	closeClient(t, c)
	calls, refused, _, _, stored := f.snapshot()
	if refused != 1 {
		t.Errorf("the service refused %d calls, want 1 (a refused batch is not retried)", refused)
	}
	if len(stored) != 5 {
		t.Errorf("stored %d values, want the 5 good ones", len(stored))
	}
	for _, v := range stored {
		if v.GetName() != "good" {
			t.Errorf("stored %v", v)
		}
	}
	if s := c.Stats(); s.Sent != 5 || s.Dropped != 1 {
		t.Errorf("Stats = %+v, want 5 sent, 1 dropped", s)
	}
	t.Logf("%d calls", calls)
}

func TestWriteMetricBufferFull(t *testing.T) {
	const n, buffer, batch = 100, 10, 5
	f := &fakeABN{block: make(chan struct{}), entered: make(chan struct{}, 1)}
	const inFlight = 2
	c := newClient(t, f.start(t), func(o *Options) { o.Buffer = buffer; o.Batch = batch; o.InFlight = inFlight })
	unblock := sync.OnceFunc(func() { close(f.block) })
	t.Cleanup(unblock)

	start := time.Now()
	for i := range n {
		if err := c.WriteMetric(fmt.Sprintf("user-%d", i), "v1", "clicks", float64(i)); err != nil {
			t.Fatal(err)
		}
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("writing %d values took %v: WriteMetric blocked", n, took)
	}
	// At most InFlight batches are being sent, one more is being filled
	// and Buffer values wait; the rest did not fit.
	if d, fit := c.Stats().Dropped, buffer+(inFlight+1)*batch; d < uint64(n-fit) {
		t.Errorf("Dropped = %d, want at least %d", d, n-fit)
	}
	select {
	case <-f.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the sender never called the service")
	}
	unblock()
	closeClient(t, c)
	s := c.Stats()
	if s.Sent+s.Dropped != n {
		t.Errorf("Stats = %+v: sent + dropped = %d, want %d", s, s.Sent+s.Dropped, n)
	}
	if _, _, _, _, stored := f.snapshot(); uint64(len(stored)) != s.Sent {
		t.Errorf("stored %d values, Sent = %d", len(stored), s.Sent)
	}
	t.Logf("%+v", s)
}

func TestCloseDeadlineWhileServiceDown(t *testing.T) {
	const n = 7
	c := newClient(t, closedPort(t), nil)
	for i := range n {
		if err := c.WriteMetric("alice", "v1", "clicks", float64(i)); err != nil {
			t.Fatal(err)
		}
	}
	const deadline = 200 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	start := time.Now()
	err := c.Close(ctx)
	took := time.Since(start)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close = %v, want context.DeadlineExceeded", err)
	}
	if took > 10*deadline {
		t.Errorf("Close took %v, want about %v", took, deadline)
	}
	s := c.Stats()
	// In doubt when the deadline cut off a call still connecting.
	if s.Sent != 0 || s.Dropped+s.InDoubt != n {
		t.Errorf("Stats = %+v, want none sent, %d dropped or in doubt", s, n)
	}
	if status.Code(s.LastError) != codes.Unavailable {
		t.Errorf("LastError = %v, want Unavailable", s.LastError)
	}
	if err := c.WriteMetric("alice", "v1", "clicks", 1); !errors.Is(err, ErrClosed) {
		t.Errorf("WriteMetric after Close = %v, want ErrClosed", err)
	}
	if err := c.Close(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("second Close = %v, want ErrClosed", err)
	}
	if s2 := c.Stats(); s2.Sent != s.Sent || s2.Dropped != s.Dropped || s2.InDoubt != s.InDoubt {
		t.Errorf("Stats changed after Close: %+v, then %+v", s, s2)
	}
}

func TestCloseWithDoneContext(t *testing.T) {
	// Nothing to send: nothing given up, so no error even though ctx is
	// already done.
	c := newClient(t, (&fakeABN{}).start(t), nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.Close(ctx); err != nil {
		t.Errorf("Close with nothing queued = %v, want nil", err)
	}

	// Values queued: each is sent, dropped, or in doubt (a call carrying
	// it was cut off), and Close reports ctx's error exactly when some
	// were not sent. The service holds every value sent, and no dropped
	// one.
	const n = 20
	f := &fakeABN{}
	c = newClient(t, f.start(t), nil)
	for i := range n {
		if err := c.WriteMetric("alice", "v1", "clicks", float64(i)); err != nil {
			t.Fatal(err)
		}
	}
	err := c.Close(ctx)
	s := c.Stats()
	if s.Sent+s.Dropped+s.InDoubt != n || (err != nil) != (s.Dropped+s.InDoubt > 0) {
		t.Errorf("Close = %v with Stats %+v: want sent + dropped + in doubt = %d, and an error exactly when some were not sent", err, s, n)
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("Close = %v, want context.Canceled", err)
	}
	if _, _, _, _, stored := f.snapshot(); uint64(len(stored)) < s.Sent || uint64(len(stored)) > s.Sent+s.InDoubt {
		t.Errorf("stored %d values with Stats %+v: want at least those sent and at most those sent or in doubt", len(stored), s)
	}
}

// TestCloseCountsACutOffCallInDoubt: values whose call Close cut off after
// the service stored them are in doubt, not dropped.
func TestCloseCountsACutOffCallInDoubt(t *testing.T) {
	const n = 5
	f := &fakeABN{storeThenHang: true}
	c := newClient(t, f.start(t), func(o *Options) { o.Batch = n; o.FlushInterval = time.Hour }) // one call
	for i := range n {
		if err := c.WriteMetric("alice", "v1", "clicks", float64(i)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the service to store the values", func() bool {
		_, _, _, _, stored := f.snapshot()
		return len(stored) == n
	})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.Close(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Close = %v, want context.Canceled", err)
	}
	if s := c.Stats(); s.Sent != 0 || s.Dropped != 0 || s.InDoubt != n {
		t.Errorf("Stats = %+v, want %d in doubt, none sent or dropped", s, n)
	}
}

func TestWriteMetricRefusesInvalidValues(t *testing.T) {
	f := &fakeABN{}
	c := newClient(t, f.start(t), nil)
	for _, tc := range []struct {
		name, user, metric string
		value              float64
	}{
		{"empty user", "", "clicks", 1},
		{"user not UTF-8", "bad\xff", "clicks", 1},
		{"empty metric", "alice", "", 1},
		{"NaN", "alice", "clicks", math.NaN()},
		{"+Inf", "alice", "clicks", math.Inf(1)},
		{"-Inf", "alice", "clicks", math.Inf(-1)},
	} {
		if err := c.WriteMetric(tc.user, "v1", tc.metric, tc.value); err == nil {
			t.Errorf("%s: WriteMetric accepted it", tc.name)
		}
	}
	closeClient(t, c)
	if calls, _, _, _, stored := f.snapshot(); calls != 0 || len(stored) != 0 {
		t.Errorf("%d calls stored %d values, want none", calls, len(stored))
	}
	if s := c.Stats(); s.Sent != 0 || s.Dropped != 0 || s.InDoubt != 0 {
		t.Errorf("Stats = %+v, want nothing sent, dropped or in doubt", s)
	}
}

func TestNewRefusesMissingOptions(t *testing.T) {
	ok := Options{Target: "127.0.0.1:1", Application: "default/backend", Baseline: "v0"}
	for _, tc := range []struct {
		option string
		clear  func(*Options)
	}{
		{"Target", func(o *Options) { o.Target = "" }},
		{"Application", func(o *Options) { o.Application = "" }},
		{"Baseline", func(o *Options) { o.Baseline = "" }},
	} {
		o := ok
		tc.clear(&o)
		c, err := New(o)
		if err == nil {
			_ = c.Close(context.Background())
			t.Errorf("New accepted an empty %s", tc.option)
			continue
		}
		if !strings.Contains(err.Error(), tc.option) {
			t.Errorf("New without %s: error %q does not name the option", tc.option, err)
		}
	}
}

// TestRefusedValueInABatchDropsOnlyItself: a batch refused for one value is
// split until the value stands alone; the others are stored.
func TestRefusedValueInABatchDropsOnlyItself(t *testing.T) {
	f := &fakeABN{refuse: func(vs *pb.MetricValues) bool {
		for _, v := range vs.GetValues() {
			if v.GetName() == "bad" {
				return true
			}
		}
		return false
	}}
	c := newClient(t, f.start(t), func(o *Options) { o.Batch = 100; o.FlushInterval = time.Hour })
	for i := range 15 {
		metric := "good"
		if i == 7 {
			metric = "bad"
		}
		if err := c.WriteMetric(fmt.Sprintf("user-%d", i), "v1", metric, 1); err != nil {
			t.Fatal(err)
		}
	}
	closeClient(t, c)
	_, refused, _, _, stored := f.snapshot()
	if len(stored) != 14 {
		t.Errorf("stored %d values, want the 14 good ones", len(stored))
	}
	if s := c.Stats(); s.Sent != 14 || s.Dropped != 1 {
		t.Errorf("Stats = %+v, want 14 sent and 1 dropped", s)
	}
	// 15 → 7|8 → 8 splits into 4|4 → 4|... : about log2(15) refusals.
	if refused > 5 {
		t.Errorf("the service refused %d calls, want at most 5 (bisection)", refused)
	}
}

// TestWriteMetricAppliesTheServicesRules: values the service would refuse
// are refused at WriteMetric, so they never fail a batch of others.
func TestWriteMetricAppliesTheServicesRules(t *testing.T) {
	c := newClient(t, (&fakeABN{}).start(t), nil)
	for _, tt := range []struct {
		user, version, metric string
		value                 float64
		want                  string
	}{
		{"u", "v1", "total revenue", 1, "metric"},
		{"u", "v1", "1st", 1, "does not start with a letter"},
		{"u", "v1", strings.Repeat("m", 129), 1, "metric: is 129 bytes"},
		{"u", "v1", "revenue", 2e9, "larger in magnitude"},
		{"u\n", "v1", "revenue", 1, "control character"},
		{"u", strings.Repeat("v", 64), "revenue", 1, "version: is 64 bytes"},
	} {
		if err := c.WriteMetric(tt.user, tt.version, tt.metric, tt.value); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("WriteMetric(%q, %q, %q, %v) = %v, want an error with %q", tt.user, tt.version, tt.metric, tt.value, err, tt.want)
		}
	}
}

// TestReconnectsSoonAfterARestart: while the service is down the client
// keeps trying to connect at most a second apart (gRPC's default backoff
// grows to two minutes), and it is used again soon after it is back.
func TestReconnectsSoonAfterARestart(t *testing.T) {
	f := &fakeABN{session: &pb.Session{VersionNumber: "1", Version: "v1"}}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	c := newClient(t, addr, nil)

	// Down: a listener that hangs up on every connection, counting them.
	var attempts atomic.Int64
	accepting := make(chan struct{})
	go func() {
		defer close(accepting)
		for {
			conn, err := lis.Accept()
			if err != nil {
				return
			}
			attempts.Add(1)
			_ = conn.Close()
		}
	}()
	const down = 6 * time.Second
	for start := time.Now(); time.Since(start) < down; {
		if got := c.Lookup(context.Background(), "ann"); !got.Fallback {
			t.Fatalf("Lookup = %+v while the service is down, want the fallback", got)
		}
		time.Sleep(50 * time.Millisecond) // the frontend's pace of requests
	}
	_ = lis.Close()
	<-accepting
	// 100ms growing by 1.6 to 1s: about 9 attempts in 6s; gRPC's default
	// (1s growing by 1.6) makes 3 or 4.
	if n := attempts.Load(); n < 6 {
		t.Errorf("the client tried to connect %d times in %v, want 6 or more", n, down)
	}

	// Back, on the same address.
	s := grpc.NewServer()
	pb.RegisterABNServer(s, f)
	relis, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s again: %v", addr, err)
	}
	go func() { _ = s.Serve(relis) }()
	t.Cleanup(s.Stop)
	back := time.Now()
	waitFor(t, "a Lookup answered by the restarted service", func() bool {
		return !c.Lookup(context.Background(), "ann").Fallback
	})
	if took := time.Since(back); took > 3*time.Second {
		t.Errorf("the restarted service was used again after %v, want within about a second", took)
	}
}
