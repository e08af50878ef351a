package greeter

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/iter8-tools/iter8/test/sampleapp"
)

func start(t *testing.T, o Options) *Server {
	t.Helper()
	s, err := Start("127.0.0.1:0", o)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	if !strings.HasPrefix(s.Addr(), "127.0.0.1:") {
		t.Fatalf("server listens on %s, want 127.0.0.1", s.Addr())
	}
	return s
}

func dial(t *testing.T, addr string, creds credentials.TransportCredentials) *grpc.ClientConn {
	t.Helper()
	if creds == nil {
		creds = insecure.NewCredentials()
	}
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

// call invokes method with the given name and returns the greeting and the
// version header.
func call(ctx context.Context, t *testing.T, cc *grpc.ClientConn, method, name string) (string, string, error) {
	t.Helper()
	d, err := compiled()
	if err != nil {
		t.Fatal(err)
	}
	in := dynamicpb.NewMessage(d.request)
	in.Set(d.name, protoreflect.ValueOfString(name))
	out := dynamicpb.NewMessage(d.reply)
	var header metadata.MD
	if err := cc.Invoke(ctx, "/"+method, in, out, grpc.Header(&header)); err != nil {
		return "", "", err
	}
	var version string
	if v := header.Get(VersionHeader); len(v) > 0 {
		version = v[0]
	}
	return out.Get(d.greeting).String(), version, nil
}

func TestSayHello(t *testing.T) {
	var mu sync.Mutex
	var seen []Call
	s := start(t, Options{Version: "v2", Observe: func(c Call) {
		mu.Lock()
		seen = append(seen, c)
		mu.Unlock()
	}})
	cc := dial(t, s.Addr(), nil)
	ctx := metadata.AppendToOutgoingContext(t.Context(), "x-user", "ann")
	got, version, err := call(ctx, t, cc, SayHello, "world")
	if err != nil {
		t.Fatalf("SayHello: %v", err)
	}
	if want := "Hello world from v2"; got != want {
		t.Errorf("SayHello = %q, want %q", got, want)
	}
	if version != "v2" {
		t.Errorf("%s header = %q, want v2", VersionHeader, version)
	}
	if n := s.Calls(); n != 1 {
		t.Errorf("Calls() = %d, want 1", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 1 || seen[0].Name != "world" || !slices.Equal(seen[0].Metadata.Get("x-user"), []string{"ann"}) {
		t.Errorf("Observe saw %+v, want one call with name world and x-user ann", seen)
	}
}

func TestSayGoodbyeIsUnimplemented(t *testing.T) {
	s := start(t, Options{})
	_, _, err := call(t.Context(), t, dial(t, s.Addr(), nil), SayGoodbye, "x")
	if status.Code(err) != codes.Unimplemented {
		t.Errorf("SayGoodbye: %v, want code Unimplemented", err)
	}
}

func TestInjectedErrors(t *testing.T) {
	tests := []struct {
		rate float64
		code codes.Code
		want codes.Code
	}{
		{1, codes.OK, DefaultErrorCode},
		{1, codes.ResourceExhausted, codes.ResourceExhausted},
		{0, codes.Internal, codes.OK},
	}
	for _, tt := range tests {
		s := start(t, Options{ErrorRate: tt.rate, ErrorCode: tt.code, Version: "v1"})
		cc := dial(t, s.Addr(), nil)
		for range 3 {
			_, _, err := call(t.Context(), t, cc, SayHello, "x")
			if got := status.Code(err); got != tt.want {
				t.Errorf("error rate %v code %v: call got %v (%v), want %v", tt.rate, tt.code, got, err, tt.want)
			}
		}
	}
}

func TestErrorRateIsReproducible(t *testing.T) {
	outcomes := func() []bool {
		s := start(t, Options{ErrorRate: 0.5, Seed: 7})
		cc := dial(t, s.Addr(), nil)
		var out []bool
		for range 40 {
			_, _, err := call(t.Context(), t, cc, SayHello, "x")
			out = append(out, err != nil)
		}
		return out
	}
	a, b := outcomes(), outcomes()
	if !slices.Equal(a, b) {
		t.Errorf("same seed, different outcomes:\n%v\n%v", a, b)
	}
	failed := 0
	for _, f := range a {
		if f {
			failed++
		}
	}
	if failed < 8 || failed > 32 {
		t.Errorf("error rate 0.5 failed %d of 40 calls", failed)
	}
}

func TestLatency(t *testing.T) {
	l, err := sampleapp.ParseLatency("fixed:30ms")
	if err != nil {
		t.Fatal(err)
	}
	s := start(t, Options{Latency: l})
	cc := dial(t, s.Addr(), nil)
	if _, _, err := call(t.Context(), t, cc, SayHello, "warm"); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	if _, _, err := call(t.Context(), t, cc, SayHello, "x"); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(began); took < 30*time.Millisecond {
		t.Errorf("call took %v, want at least the injected 30ms", took)
	}

	// A deadline shorter than the latency ends the call with
	// DeadlineExceeded, and the server does not wait for nothing.
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Millisecond)
	defer cancel()
	if _, _, err := call(ctx, t, cc, SayHello, "x"); status.Code(err) != codes.DeadlineExceeded {
		t.Errorf("call with a 5ms deadline: %v, want DeadlineExceeded", err)
	}
}

func TestTLS(t *testing.T) {
	cert, err := NewSelfSignedCertificate("127.0.0.1", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	s := start(t, Options{TLS: cert.ServerConfig(), Version: "tls"})
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(cert.PEM) {
		t.Fatal("the certificate's PEM does not parse")
	}
	cc := dial(t, s.Addr(), credentials.NewTLS(&tls.Config{RootCAs: pool}))
	if got, _, err := call(t.Context(), t, cc, SayHello, "tls"); err != nil || got != "Hello tls from tls" {
		t.Errorf("SayHello over TLS = %q, %v", got, err)
	}
	// Untrusted and plaintext clients are refused.
	untrusted := dial(t, s.Addr(), credentials.NewTLS(&tls.Config{}))
	if _, _, err := call(t.Context(), t, untrusted, SayHello, "x"); status.Code(err) != codes.Unavailable {
		t.Errorf("client without the root: %v, want Unavailable", err)
	}
	if _, _, err := call(t.Context(), t, dial(t, s.Addr(), nil), SayHello, "x"); status.Code(err) != codes.Unavailable {
		t.Errorf("plaintext client: %v, want Unavailable", err)
	}
}

func TestReflection(t *testing.T) {
	s := start(t, Options{})
	files := reflectFile(t, dial(t, s.Addr(), nil), Service)
	if len(files) == 0 {
		t.Fatalf("reflection found no file for %s", Service)
	}
	fd := files[0]
	if fd.GetPackage() != "helloworld" || len(fd.GetService()) != 1 || fd.GetService()[0].GetName() != "Greeter" {
		t.Fatalf("reflection gave file %s with package %q and services %v", fd.GetName(), fd.GetPackage(), fd.GetService())
	}
	var methods []string
	for _, m := range fd.GetService()[0].GetMethod() {
		methods = append(methods, m.GetName())
	}
	if !slices.Equal(methods, []string{"SayHello", "SayGoodbye", "SayHelloToAll", "SayHelloThrice", "Chat"}) {
		t.Errorf("reflected methods %v, want SayHello, SayGoodbye and the streaming ones", methods)
	}

	// The reflection service can describe itself too.
	if files := reflectFile(t, dial(t, s.Addr(), nil), "grpc.reflection.v1.ServerReflection"); len(files) == 0 {
		t.Error("reflection does not describe the reflection service")
	}
}

func TestNoReflection(t *testing.T) {
	s := start(t, Options{NoReflection: true})
	stream, err := reflectionpb.NewServerReflectionClient(dial(t, s.Addr(), nil)).ServerReflectionInfo(t.Context())
	if err == nil {
		_, err = stream.Recv()
	}
	if status.Code(err) != codes.Unimplemented {
		t.Errorf("reflection on a server without it: %v, want Unimplemented", err)
	}
}

func reflectFile(t *testing.T, cc *grpc.ClientConn, symbol string) []*descriptorpb.FileDescriptorProto {
	t.Helper()
	stream, err := reflectionpb.NewServerReflectionClient(cc).ServerReflectionInfo(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{
		MessageRequest: &reflectionpb.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: symbol},
	}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatalf("reflection: %v", err)
	}
	var out []*descriptorpb.FileDescriptorProto
	for _, b := range resp.GetFileDescriptorResponse().GetFileDescriptorProto() {
		fd := new(descriptorpb.FileDescriptorProto)
		if err := proto.Unmarshal(b, fd); err != nil {
			t.Fatal(err)
		}
		out = append(out, fd)
	}
	return out
}

func TestProtoset(t *testing.T) {
	b, err := Protoset()
	if err != nil {
		t.Fatal(err)
	}
	var set descriptorpb.FileDescriptorSet
	if err := proto.Unmarshal(b, &set); err != nil {
		t.Fatal(err)
	}
	if len(set.File) != 1 || set.File[0].GetName() != ProtoFile {
		t.Errorf("protoset holds %d files, want %s alone", len(set.File), ProtoFile)
	}
}

func TestValidate(t *testing.T) {
	for _, o := range []Options{{ErrorRate: -0.1}, {ErrorRate: 1.5}, {ErrorCode: 99}} {
		if _, err := Start("127.0.0.1:0", o); err == nil {
			t.Errorf("Start(%+v) succeeded, want an error", o)
		}
	}
}
