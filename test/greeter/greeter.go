package greeter

import (
	"context"
	"crypto/tls"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bufbuild/protocompile"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/reflection"
	v1reflectiongrpc "google.golang.org/grpc/reflection/grpc_reflection_v1"
	v1alphareflectiongrpc "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/iter8-tools/iter8/test/sampleapp"
)

// ProtoFile is the name of the service's proto file, beside this package's
// sources.
const ProtoFile = "greeter.proto"

// Proto is the content of greeter.proto.
//
//go:embed greeter.proto
var Proto []byte

// Names of the service and its methods, as the grpc task's call field takes
// them.
const (
	Service    = "helloworld.Greeter"
	SayHello   = Service + "/SayHello"
	SayGoodbye = Service + "/SayGoodbye" // declared, not served
	// The streaming methods: client, server and bidirectional.
	SayHelloToAll  = Service + "/SayHelloToAll"
	SayHelloThrice = Service + "/SayHelloThrice"
	Chat           = Service + "/Chat"
)

// DefaultErrorCode is the code of injected errors when Options.ErrorCode is
// codes.OK.
const DefaultErrorCode = codes.Unavailable

// VersionHeader is the response header that names the server's version.
const VersionHeader = "x-version"

// Options configures a Server.
type Options struct {
	// Version is named in every greeting and in the VersionHeader.
	Version string
	// Latency is added before every answer; nil means none.
	Latency sampleapp.Latency
	// ErrorRate is the fraction, in [0, 1], of calls answered with ErrorCode.
	ErrorRate float64
	// ErrorCode is the code of injected errors; codes.OK means
	// DefaultErrorCode.
	ErrorCode codes.Code
	// Seed makes latencies and errors reproducible: with the same non-zero
	// seed the n-th call always gets the same latency and outcome. 0 picks a
	// random seed.
	Seed uint64
	// TLS, when set, makes the server accept TLS connections only, with this
	// configuration; nil serves plaintext.
	TLS *tls.Config
	// NoReflection leaves out the server reflection service, so that only
	// clients that have the proto can call.
	NoReflection bool
	// Require, when set, is a metadata key and value that every call,
	// reflection's included, must carry; others fail Unauthenticated.
	Require [2]string
	// Observe, when set, is called with every SayHello call as it arrives,
	// and with every message of a stream, from many goroutines at once.
	Observe func(Call)
}

// Call is what the server saw of one SayHello call.
type Call struct {
	// Name is the request's name field.
	Name string
	// Metadata is the call's incoming metadata.
	Metadata metadata.MD
}

// Validate reports whether o is usable by Start.
func (o Options) Validate() error {
	if math.IsNaN(o.ErrorRate) || o.ErrorRate < 0 || o.ErrorRate > 1 {
		return fmt.Errorf("error rate %v: want a fraction in [0, 1]", o.ErrorRate)
	}
	if o.ErrorCode > codes.Unauthenticated {
		return fmt.Errorf("error code %d: not a gRPC status code", o.ErrorCode)
	}
	return nil
}

// descriptors is the compiled greeter.proto.
type descriptors struct {
	files    *protoregistry.Files
	file     protoreflect.FileDescriptor
	request  protoreflect.MessageDescriptor
	reply    protoreflect.MessageDescriptor
	name     protoreflect.FieldDescriptor
	greeting protoreflect.FieldDescriptor
}

// compiled compiles the embedded proto once; it is immutable afterwards.
var compiled = sync.OnceValues(func() (*descriptors, error) {
	c := protocompile.Compiler{Resolver: protocompile.WithStandardImports(&protocompile.SourceResolver{
		Accessor: protocompile.SourceAccessorFromMap(map[string]string{ProtoFile: string(Proto)}),
	})}
	fds, err := c.Compile(context.Background(), ProtoFile)
	if err != nil {
		return nil, fmt.Errorf("compile %s: %w", ProtoFile, err)
	}
	d := &descriptors{files: new(protoregistry.Files), file: fds[0]}
	if err := d.files.RegisterFile(d.file); err != nil {
		return nil, err
	}
	d.request = d.file.Messages().ByName("HelloRequest")
	d.reply = d.file.Messages().ByName("HelloReply")
	if d.request == nil || d.reply == nil {
		return nil, fmt.Errorf("%s lacks HelloRequest or HelloReply", ProtoFile)
	}
	d.name = d.request.Fields().ByName("name")
	d.greeting = d.reply.Fields().ByName("message")
	if d.name == nil || d.greeting == nil {
		return nil, fmt.Errorf("%s: HelloRequest.name or HelloReply.message is missing", ProtoFile)
	}
	return d, nil
})

// Protoset returns greeter.proto compiled into a serialized
// FileDescriptorSet, as `protoc --descriptor_set_out` writes it.
func Protoset() ([]byte, error) {
	d, err := compiled()
	if err != nil {
		return nil, err
	}
	set := &descriptorpb.FileDescriptorSet{File: []*descriptorpb.FileDescriptorProto{protodesc.ToFileDescriptorProto(d.file)}}
	return proto.Marshal(set)
}

// Server is a running greeter.
type Server struct {
	opts  Options
	desc  *descriptors
	grpc  *grpc.Server
	lis   net.Listener
	calls atomic.Int64
	fails atomic.Int64
	done  chan struct{}
	err   error // of Serve, set before done is closed
}

// Start listens on addr (such as 127.0.0.1:0) and serves in the background
// until Stop or GracefulStop.
func Start(addr string, o Options) (*Server, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	d, err := compiled()
	if err != nil {
		return nil, err
	}
	if o.Latency == nil {
		o.Latency, _ = sampleapp.ParseLatency("")
	}
	if o.ErrorCode == codes.OK {
		o.ErrorCode = DefaultErrorCode
	}
	if o.Seed == 0 {
		o.Seed = rand.Uint64()
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	// Messages of any size, so that clients' limits can be tested.
	opts := []grpc.ServerOption{grpc.MaxRecvMsgSize(math.MaxInt32), grpc.MaxSendMsgSize(math.MaxInt32)}
	if o.TLS != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(o.TLS)))
	}
	if o.Require[0] != "" {
		check := func(ctx context.Context) error {
			md, _ := metadata.FromIncomingContext(ctx)
			if v := md.Get(o.Require[0]); len(v) != 1 || v[0] != o.Require[1] {
				return status.Errorf(codes.Unauthenticated, "want metadata %s", o.Require[0])
			}
			return nil
		}
		opts = append(opts,
			grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
				if err := check(ctx); err != nil {
					return nil, err
				}
				return h(ctx, req)
			}),
			grpc.StreamInterceptor(func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
				if err := check(ss.Context()); err != nil {
					return err
				}
				return h(srv, ss)
			}))
	}
	s := &Server{opts: o, desc: d, grpc: grpc.NewServer(opts...), lis: lis, done: make(chan struct{})}
	s.grpc.RegisterService(&grpc.ServiceDesc{
		ServiceName: Service,
		HandlerType: (*greeterService)(nil),
		Methods:     []grpc.MethodDesc{{MethodName: "SayHello", Handler: sayHelloHandler}},
		Streams: []grpc.StreamDesc{
			{StreamName: "SayHelloToAll", Handler: streamHandler(toAll), ClientStreams: true},
			{StreamName: "SayHelloThrice", Handler: streamHandler(thrice), ServerStreams: true},
			{StreamName: "Chat", Handler: streamHandler(chat), ClientStreams: true, ServerStreams: true},
		},
		Metadata: ProtoFile,
	}, s)
	if !o.NoReflection {
		// The server's own registry first, so that reflection describes
		// this service; the process-wide one for the reflection service's
		// own descriptors.
		ro := reflection.ServerOptions{Services: s.grpc, DescriptorResolver: resolvers{d.files, protoregistry.GlobalFiles}}
		v1 := reflection.NewServerV1(ro)
		v1reflectiongrpc.RegisterServerReflectionServer(s.grpc, v1)
		v1alphareflectiongrpc.RegisterServerReflectionServer(s.grpc, reflection.NewServer(ro))
	}
	go func() {
		err := s.grpc.Serve(lis)
		if errors.Is(err, grpc.ErrServerStopped) {
			err = nil
		}
		s.err = err
		close(s.done)
	}()
	return s, nil
}

// Addr is the host:port the server listens on.
func (s *Server) Addr() string { return s.lis.Addr().String() }

// Calls is the number of calls received so far, counted as each arrives; a
// stream is one call.
func (s *Server) Calls() int64 { return s.calls.Load() }

// Failures is the number of calls answered with an injected error so far.
func (s *Server) Failures() int64 { return s.fails.Load() }

// Stop closes the listener and every connection at once, failing calls in
// flight, and returns Serve's error, if any.
func (s *Server) Stop() error {
	s.grpc.Stop()
	<-s.done
	return s.err
}

// GracefulStop stops accepting connections and waits for calls in flight to
// finish, and returns Serve's error, if any.
func (s *Server) GracefulStop() error {
	s.grpc.GracefulStop()
	<-s.done
	return s.err
}

// greeterService is the handler type that grpc checks Server against.
type greeterService interface {
	sayHello(ctx context.Context, in *dynamicpb.Message) (*dynamicpb.Message, error)
}

func sayHelloHandler(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
	s := srv.(*Server)
	in := dynamicpb.NewMessage(s.desc.request)
	if err := dec(in); err != nil {
		return nil, err
	}
	if interceptor == nil {
		return s.sayHello(ctx, in)
	}
	info := &grpc.UnaryServerInfo{Server: srv, FullMethod: "/" + SayHello}
	return interceptor(ctx, in, info, func(ctx context.Context, req any) (any, error) {
		return s.sayHello(ctx, req.(*dynamicpb.Message))
	})
}

func (s *Server) sayHello(ctx context.Context, in *dynamicpb.Message) (*dynamicpb.Message, error) {
	start := time.Now()
	name := in.Get(s.desc.name).String()
	s.observe(ctx, name)
	if err := s.delayOrFail(ctx, start); err != nil {
		return nil, err
	}
	// A failed SetHeader only means that the client has gone.
	_ = grpc.SetHeader(ctx, metadata.Pairs(VersionHeader, s.opts.Version))
	return s.greeting(name), nil
}

// observe passes a name that arrived to Options.Observe.
func (s *Server) observe(ctx context.Context, name string) {
	if s.opts.Observe != nil {
		md, _ := metadata.FromIncomingContext(ctx)
		s.opts.Observe(Call{Name: name, Metadata: md})
	}
}

// delayOrFail counts a call that began at start, waits out its latency and
// returns its injected error, if it draws one.
func (s *Server) delayOrFail(ctx context.Context, start time.Time) error {
	d, fail := s.draw(uint64(s.calls.Add(1)))
	if d > 0 {
		t := time.NewTimer(time.Until(start.Add(d)))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return status.FromContextError(ctx.Err()).Err()
		}
	}
	if fail {
		s.fails.Add(1)
		return status.Errorf(s.opts.ErrorCode, "injected error (version %s)", s.opts.Version)
	}
	return nil
}

// greeting is the answer to name.
func (s *Server) greeting(name string) *dynamicpb.Message {
	out := dynamicpb.NewMessage(s.desc.reply)
	out.Set(s.desc.greeting, protoreflect.ValueOfString("Hello "+name+" from "+s.opts.Version))
	return out
}

// streamHandler serves a streaming method with serve: the stream is one
// call, with its latency and error drawn as it begins.
func streamHandler(serve func(*Server, grpc.ServerStream) error) grpc.StreamHandler {
	return func(srv any, stream grpc.ServerStream) error {
		s := srv.(*Server)
		if err := s.delayOrFail(stream.Context(), time.Now()); err != nil {
			return err
		}
		_ = stream.SetHeader(metadata.Pairs(VersionHeader, s.opts.Version))
		return serve(s, stream)
	}
}

// recvName reads the next name of a stream; io.EOF at its end.
func (s *Server) recvName(stream grpc.ServerStream) (string, error) {
	in := dynamicpb.NewMessage(s.desc.request)
	if err := stream.RecvMsg(in); err != nil {
		return "", err
	}
	name := in.Get(s.desc.name).String()
	s.observe(stream.Context(), name)
	return name, nil
}

func toAll(s *Server, stream grpc.ServerStream) error {
	var names []string
	for {
		name, err := s.recvName(stream)
		if errors.Is(err, io.EOF) {
			return stream.SendMsg(s.greeting(strings.Join(names, ", ")))
		}
		if err != nil {
			return err
		}
		names = append(names, name)
	}
}

func thrice(s *Server, stream grpc.ServerStream) error {
	name, err := s.recvName(stream)
	if err != nil {
		return err
	}
	for range 3 {
		if err := stream.SendMsg(s.greeting(name)); err != nil {
			return err
		}
	}
	return nil
}

func chat(s *Server, stream grpc.ServerStream) error {
	for {
		name, err := s.recvName(stream)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := stream.SendMsg(s.greeting(name)); err != nil {
			return err
		}
	}
}

// draw returns the latency and whether to fail for the call with sequence
// number n. A generator per call, seeded by n, needs no lock and makes the
// n-th call's draws independent of scheduling.
func (s *Server) draw(n uint64) (time.Duration, bool) {
	r := rand.New(rand.NewPCG(s.opts.Seed, mix(n)))
	return s.opts.Latency.Sample(r), r.Float64() < s.opts.ErrorRate
}

// mix is the SplitMix64 finaliser: neighbouring sequence numbers get
// unrelated PCG states.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// resolvers looks descriptors up in each registry in turn.
type resolvers []*protoregistry.Files

func (rs resolvers) FindFileByPath(path string) (protoreflect.FileDescriptor, error) {
	for _, r := range rs {
		if fd, err := r.FindFileByPath(path); err == nil {
			return fd, nil
		}
	}
	return nil, protoregistry.NotFound
}

func (rs resolvers) FindDescriptorByName(name protoreflect.FullName) (protoreflect.Descriptor, error) {
	for _, r := range rs {
		if d, err := r.FindDescriptorByName(name); err == nil {
			return d, nil
		}
	}
	return nil, protoregistry.NotFound
}
