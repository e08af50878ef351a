package client

import (
	"context"
	"errors"
	"io"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/iter8-tools/iter8/abn/grpc"
)

// maxLookupBatch is how many waiting Lookups go in one message at most
// (the service takes up to 1024).
const maxLookupBatch = 256

// pendingLookup is one Lookup waiting for its Session.
type pendingLookup struct {
	ctx  context.Context
	user string
	// answer has room for one result, so the receiver never waits for a
	// caller that stopped waiting.
	answer chan lookupResult
}

type lookupResult struct {
	session *pb.Session
	err     error
}

func (p *pendingLookup) done(s *pb.Session, err error) {
	p.answer <- lookupResult{s, err}
}

// lookups multiplexes the Client's concurrent Lookups onto one stream of
// the service's Lookups call: a sender takes whatever Lookups wait (up to
// maxLookupBatch) into one message, and the answers come back in order. A
// unary call per Lookup spends most of its time on gRPC's per-call work
// on both sides; a batch shares it.
type lookups struct {
	c *Client
	// queue holds Lookups not yet sent.
	queue chan *pendingLookup
	// current is the open stream, nil before the first Lookup and after a
	// stream failed; only the sender touches it.
	current *lookupStream
}

func newLookups(c *Client) *lookups {
	return &lookups{c: c, queue: make(chan *pendingLookup, 4*maxLookupBatch)}
}

// lookup queues one Lookup and waits for its Session until ctx is done.
func (l *lookups) lookup(ctx context.Context, user string) (*pb.Session, error) {
	closed := l.c.lookupsCtx.Done()
	if l.c.lookupsCtx.Err() != nil {
		return nil, ErrClosed
	}
	p := &pendingLookup{ctx: ctx, user: user, answer: make(chan lookupResult, 1)}
	select {
	case l.queue <- p:
	case <-ctx.Done():
		return nil, status.FromContextError(ctx.Err()).Err()
	case <-closed:
		return nil, ErrClosed
	}
	select {
	case r := <-p.answer:
		return r.session, r.err
	case <-ctx.Done():
		return nil, status.FromContextError(ctx.Err()).Err()
	case <-closed:
		// Closed after p was queued: the sender may have stopped before
		// taking it.
		select {
		case r := <-p.answer:
			return r.session, r.err
		default:
			return nil, ErrClosed
		}
	}
}

// send runs until the Client is closed: it batches queued Lookups and
// sends each batch on the current stream, opening one when needed.
func (l *lookups) send() {
	ctx := l.c.lookupsCtx
	batch := make([]*pendingLookup, 0, maxLookupBatch)
	for {
		batch = batch[:0]
		select {
		case p := <-l.queue:
			batch = append(batch, p)
		case <-ctx.Done():
			l.failQueued()
			if l.current != nil {
				l.current.fail(ErrClosed)
			}
			return
		}
	more:
		for len(batch) < maxLookupBatch {
			select {
			case p := <-l.queue:
				batch = append(batch, p)
			default:
				break more
			}
		}
		// Callers that stopped waiting are not sent for.
		live := batch[:0]
		for _, p := range batch {
			if p.ctx.Err() == nil {
				live = append(live, p)
			}
		}
		if len(live) == 0 {
			continue
		}
		if l.current != nil {
			l.current.failIfStalled(2 * l.c.opts.LookupTimeout)
		}
		if l.current == nil || l.current.failed() {
			s, err := l.open(ctx)
			if err != nil {
				for _, p := range live {
					p.done(nil, err)
				}
				continue
			}
			l.current = s
		}
		l.current.send(l.c.opts.Application, live)
	}
}

func (l *lookups) failQueued() {
	for {
		select {
		case p := <-l.queue:
			p.done(nil, ErrClosed)
		default:
			return
		}
	}
}

func (l *lookups) open(ctx context.Context) (*lookupStream, error) {
	sctx, cancel := context.WithCancel(ctx)
	st, err := l.c.abn.Lookups(sctx)
	if err != nil {
		cancel()
		return nil, err
	}
	s := &lookupStream{stream: st, cancel: cancel}
	go s.receive()
	return s, nil
}

// lookupStream is one open stream and the batches sent on it that wait
// for their answers, oldest first.
type lookupStream struct {
	stream pb.ABN_LookupsClient
	cancel context.CancelFunc

	mu      sync.Mutex
	waiting []sentBatch
	err     error
}

// sentBatch is a batch that waits for its answer.
type sentBatch struct {
	at      time.Time
	lookups []*pendingLookup
}

// failIfStalled fails the stream when its oldest batch has waited longer
// than limit: a service that stopped answering without closing the
// stream (a hung handler, a half-open connection) would otherwise hold
// every later Lookup until TCP gives up.
func (s *lookupStream) failIfStalled(limit time.Duration) {
	s.mu.Lock()
	stalled := len(s.waiting) > 0 && time.Since(s.waiting[0].at) > limit
	s.mu.Unlock()
	if stalled {
		s.fail(status.Errorf(codes.Unavailable, "abn lookup: no answer on the stream for %v: opening a new one", limit))
	}
}

func (s *lookupStream) failed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err != nil
}

// send records the batch as waiting before sending it, so that the
// receiver always finds the batch an answer belongs to.
func (s *lookupStream) send(application string, batch []*pendingLookup) {
	users := make([]string, len(batch))
	for i, p := range batch {
		users[i] = p.user
	}
	s.mu.Lock()
	if s.err != nil {
		err := s.err
		s.mu.Unlock()
		for _, p := range batch {
			p.done(nil, err)
		}
		return
	}
	s.waiting = append(s.waiting, sentBatch{time.Now(), append([]*pendingLookup(nil), batch...)})
	s.mu.Unlock()
	// io.EOF means the stream ended: the receiver's Recv returns its
	// cause (such as Unimplemented) and fails the waiting batches with it.
	if err := s.stream.Send(&pb.LookupBatch{Application: application, Users: users}); err != nil && !errors.Is(err, io.EOF) {
		s.fail(err)
	}
}

// receive hands each answer to its batch's callers until the stream ends.
func (s *lookupStream) receive() {
	for {
		out, err := s.stream.Recv()
		if errors.Is(err, io.EOF) {
			err = status.Error(codes.Unavailable, "abn lookup: the service ended the stream")
		}
		if err != nil {
			s.fail(err)
			return
		}
		s.mu.Lock()
		if len(s.waiting) == 0 {
			s.mu.Unlock()
			s.fail(status.Error(codes.Internal, "abn lookup: the service answered a batch that was not sent"))
			return
		}
		batch := s.waiting[0].lookups
		s.waiting = s.waiting[1:]
		s.mu.Unlock()
		sessions := out.GetSessions()
		if len(sessions) != len(batch) {
			err := status.Errorf(codes.Internal, "abn lookup: %d sessions for a batch of %d users", len(sessions), len(batch))
			s.fail(err)
			for _, p := range batch {
				p.done(nil, err)
			}
			return
		}
		for i, p := range batch {
			p.done(sessions[i], nil)
		}
	}
}

// fail ends the stream: every batch waiting on it gets err (the first
// cause, when it failed before), and the sender opens a new stream for
// the next batch.
func (s *lookupStream) fail(err error) {
	s.mu.Lock()
	if s.err == nil {
		s.err = err
	}
	err = s.err
	waiting := s.waiting
	s.waiting = nil
	s.mu.Unlock()
	s.cancel()
	for _, b := range waiting {
		for _, p := range b.lookups {
			p.done(nil, err)
		}
	}
}
