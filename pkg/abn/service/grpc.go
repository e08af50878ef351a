package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	pb "github.com/iter8-tools/iter8/abn/grpc"
)

// NewGRPCServer returns a gRPC server with the Service registered, tuned
// for many small unary calls: a fixed pool of stream workers (one per core)
// instead of a goroutine per call, and write buffers shared between
// connections.
func NewGRPCServer(s *Service, opts ...grpc.ServerOption) *grpc.Server {
	opts = append([]grpc.ServerOption{
		grpc.NumStreamWorkers(uint32(runtime.GOMAXPROCS(0))),
		grpc.SharedWriteBuffer(true),
	}, opts...)
	gs := grpc.NewServer(opts...)
	pb.RegisterABNServer(gs, &GRPC{S: s})
	return gs
}

// GRPC serves the Service over gRPC.
type GRPC struct {
	pb.UnimplementedABNServer
	S *Service
}

// Lookup implements pb.ABNServer.
func (g *GRPC) Lookup(_ context.Context, in *pb.Application) (*pb.Session, error) {
	a, err := g.S.Lookup(in.GetName(), in.GetUser())
	if err != nil {
		return nil, grpcError(err)
	}
	return session(a), nil
}

// MaxLookupBatch is how many users one LookupBatch may hold.
const MaxLookupBatch = 1024

// Lookups implements pb.ABNServer: batches of Lookups over one stream,
// each answered in order. A refused user is answered with the error in its
// Session; a batch too large, the ledger failing or EndStreams end the
// stream.
func (g *GRPC) Lookups(stream pb.ABN_LookupsServer) error {
	batches := make(chan *pb.LookupBatch)
	received := make(chan error, 1)
	// Recv blocks: it runs apart, so that EndStreams ends a stream that
	// waits for its next batch.
	go func() {
		for {
			in, err := stream.Recv()
			if err != nil {
				received <- err
				return
			}
			select {
			case batches <- in:
			case <-stream.Context().Done():
				return
			}
		}
	}()
	for {
		var in *pb.LookupBatch
		select {
		case <-g.S.streamsEnded:
			return status.Error(codes.Unavailable, "the service is shutting down: open a new stream")
		case err := <-received:
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		case in = <-batches:
		}
		users := in.GetUsers()
		if len(users) > MaxLookupBatch {
			return status.Error(codes.InvalidArgument, fmt.Sprintf("users: %d in one batch: want at most %d", len(users), MaxLookupBatch))
		}
		out := &pb.SessionBatch{Sessions: make([]*pb.Session, len(users))}
		for i, u := range users {
			a, err := g.S.Lookup(in.GetApplication(), u)
			var ie *InputError
			switch {
			case errors.As(err, &ie):
				out.Sessions[i] = &pb.Session{Error: err.Error()}
			case err != nil:
				return grpcError(err)
			default:
				out.Sessions[i] = session(a)
			}
		}
		if err := stream.Send(out); err != nil {
			return err
		}
	}
}

func session(a Assignment) *pb.Session {
	s := &pb.Session{Version: a.Version, Header: a.Header, HeaderValue: a.HeaderValue, Fallback: a.Fallback}
	if a.Number >= 0 {
		s.VersionNumber = strconv.Itoa(a.Number)
	}
	return s
}

// WriteMetric implements pb.ABNServer.
func (g *GRPC) WriteMetric(ctx context.Context, in *pb.MetricValue) (*emptypb.Empty, error) {
	if err := g.S.WriteMetrics(ctx, []Value{value(in)}); err != nil {
		return nil, grpcError(err)
	}
	return &emptypb.Empty{}, nil
}

// WriteMetrics implements pb.ABNServer.
func (g *GRPC) WriteMetrics(ctx context.Context, in *pb.MetricValues) (*emptypb.Empty, error) {
	vs := make([]Value, len(in.GetValues()))
	for i, v := range in.GetValues() {
		vs[i] = value(v)
	}
	if err := g.S.WriteMetrics(ctx, vs); err != nil {
		return nil, grpcError(err)
	}
	return &emptypb.Empty{}, nil
}

func value(in *pb.MetricValue) Value {
	v := Value{Application: in.GetApplication(), User: in.GetUser(), Metric: in.GetName(), Value: in.GetValue(),
		Version: in.GetVersion(), ID: in.GetId()}
	if ns := in.GetAtUnixNano(); ns != 0 {
		v.At = time.Unix(0, ns)
	}
	return v
}

// GetMetrics implements pb.ABNServer: the summary as JSON.
func (g *GRPC) GetMetrics(ctx context.Context, in *pb.MetricRequest) (*pb.ApplicationMetrics, error) {
	s, err := g.S.Summary(ctx, in.GetApplication())
	if err != nil {
		return nil, grpcError(err)
	}
	b, err := json.Marshal(s)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "encode summary: %v", err)
	}
	return &pb.ApplicationMetrics{ApplicationJson: string(b)}, nil
}

// grpcError maps refused input to InvalidArgument (naming the field), a
// cancelled call to its code, and anything else (the ledger failing) to
// Unavailable, which clients retry.
func grpcError(err error) error {
	var ie *InputError
	switch {
	case errors.As(err, &ie):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	}
	return status.Error(codes.Unavailable, err.Error())
}
