package grpc

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"text/template"
	"time"

	"github.com/Masterminds/sprig/v3"
	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
)

// caller makes the calls of one endpoint: it knows the method, holds the
// request messages (encoded once, unless they are templates) and the
// metadata.
type caller struct {
	method   protoreflect.MethodDescriptor
	path     string // /package.Service/Method
	messages []message
	metadata metadata.MD          // nil when templated
	mdTmpl   []*template.Template // key and value templates, in pairs
}

// message is one message of the data: its wire form, or a template of its
// JSON form expanded per call.
type message struct {
	wire []byte
	tmpl *template.Template
}

// callData is what templates see, under the names ghz gives them, so that
// data written for ghz works unchanged.
type callData struct {
	WorkerID           string
	RequestNumber      int64
	FullyQualifiedName string
	MethodName         string
	ServiceName        string
	InputName          string
	OutputName         string
	IsClientStreaming  bool
	IsServerStreaming  bool
	Timestamp          string
	TimestampUnix      int64
	TimestampUnixMilli int64
	TimestampUnixNano  int64
	UUID               string
}

// templateFuncs are sprig's functions and ghz's own, without those that
// read the environment: in a cluster the task runs beside credentials.
var templateFuncs = func() template.FuncMap {
	fm := sprig.TxtFuncMap()
	delete(fm, "env")
	delete(fm, "expandenv")
	fm["newUUID"] = func() string { return uuid.NewString() }
	fm["randomString"] = randomString
	fm["randomInt"] = randomInt
	return fm
}()

// parseTemplate parses one template of data or metadata.
func parseTemplate(text string) (*template.Template, error) {
	return template.New("data").Funcs(templateFuncs).Option("missingkey=error").Parse(text)
}

const alphanumeric = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

// randomString is ghz's: n letters and digits, or 2 to 16 of them when n
// is not positive.
func randomString(n int) string {
	if n <= 0 {
		n = 2 + rand.IntN(15)
	}
	b := make([]byte, n)
	for i := range b {
		b[i] = alphanumeric[rand.IntN(len(alphanumeric))]
	}
	return string(b)
}

// randomInt is ghz's: an integer in [lo, hi), with lo at least 0 and hi at
// least 1.
func randomInt(lo, hi int) int {
	lo, hi = max(lo, 0), max(hi, 1)
	if hi <= lo {
		return lo
	}
	return lo + rand.IntN(hi-lo)
}

// findMethod looks up a package.Service/Method call among files.
func findMethod(files *protoregistry.Files, call string) (protoreflect.MethodDescriptor, error) {
	svc, name, _ := strings.Cut(call, "/")
	d, err := files.FindDescriptorByName(protoreflect.FullName(svc))
	sd, ok := d.(protoreflect.ServiceDescriptor)
	if err != nil || !ok {
		return nil, fmt.Errorf("no service %s", svc)
	}
	md := sd.Methods().ByName(protoreflect.Name(name))
	if md == nil {
		return nil, fmt.Errorf("service %s has no method %s", svc, name)
	}
	return md, nil
}

// filesOf parses a serialized FileDescriptorSet that Decode checked.
func filesOf(protoset []byte) (*protoregistry.Files, error) {
	set := new(descriptorpb.FileDescriptorSet)
	if err := proto.Unmarshal(protoset, set); err != nil {
		return nil, err
	}
	return protodesc.NewFiles(set)
}

// newCaller prepares the calls of ep to method md.
func newCaller(md protoreflect.MethodDescriptor, ep *Endpoint) (*caller, error) {
	c := &caller{method: md, path: "/" + string(md.Parent().FullName()) + "/" + string(md.Name())}
	msgs, err := splitData(ep.Data)
	if err != nil {
		return nil, err
	}
	for i, m := range msgs {
		var r message
		if bytes.Contains(m, []byte("{{")) {
			r.tmpl, err = parseTemplate(string(m))
		} else {
			r.wire, err = encode(md.Input(), m)
		}
		if err != nil {
			return nil, fmt.Errorf("data message %d: %w", i, err)
		}
		c.messages = append(c.messages, r)
	}
	if !templated(ep.Metadata) {
		c.metadata, err = outgoing(ep.Metadata)
		return c, err
	}
	for k, v := range ep.Metadata {
		kt, err := parseTemplate(k)
		if err != nil {
			return nil, fmt.Errorf("metadata key %q: %w", k, err)
		}
		vt, err := parseTemplate(v)
		if err != nil {
			return nil, fmt.Errorf("metadata %q: %w", k, err)
		}
		c.mdTmpl = append(c.mdTmpl, kt, vt)
	}
	return c, nil
}

// splitData returns the messages of compact JSON data: one object, or a
// list of them.
func splitData(data []byte) ([]json.RawMessage, error) {
	if len(data) > 0 && data[0] == '[' {
		var msgs []json.RawMessage
		err := json.Unmarshal(data, &msgs)
		return msgs, err
	}
	return []json.RawMessage{data}, nil
}

// encode turns a JSON message of type input into its wire form.
func encode(input protoreflect.MessageDescriptor, js []byte) ([]byte, error) {
	m := dynamicpb.NewMessage(input)
	if err := protojson.Unmarshal(js, m); err != nil {
		return nil, errors.New("does not fit " + string(input.FullName()) + ": " + protoPrefix.ReplaceAllString(err.Error(), ""))
	}
	return proto.Marshal(m)
}

// outgoing turns metadata into what gRPC sends; values of keys ending in
// -bin are base64, as ghz takes them, and sent decoded.
func outgoing(md map[string]string) (metadata.MD, error) {
	if len(md) == 0 {
		return nil, nil
	}
	out := metadata.MD{}
	for k, v := range md {
		if strings.HasSuffix(strings.ToLower(k), "-bin") {
			b, err := base64.StdEncoding.DecodeString(v)
			if err != nil {
				return nil, fmt.Errorf("metadata %s: a -bin value must be base64: %w", k, err)
			}
			v = string(b)
		}
		out.Append(k, v)
	}
	return out, nil
}

// callData returns what templates see for call n of worker.
func (c *caller) callData(worker string, n int64) *callData {
	now := time.Now()
	md := c.method
	return &callData{
		WorkerID:           worker,
		RequestNumber:      n,
		FullyQualifiedName: string(md.FullName()),
		MethodName:         string(md.Name()),
		ServiceName:        string(md.Parent().Name()),
		InputName:          string(md.Input().Name()),
		OutputName:         string(md.Output().Name()),
		IsClientStreaming:  md.IsStreamingClient(),
		IsServerStreaming:  md.IsStreamingServer(),
		Timestamp:          now.Format(time.RFC3339),
		TimestampUnix:      now.Unix(),
		TimestampUnixMilli: now.UnixMilli(),
		TimestampUnixNano:  now.UnixNano(),
		UUID:               uuid.NewString(),
	}
}

// message returns the wire form of message i for the call cd describes.
func (c *caller) message(i int, cd func() *callData) ([]byte, error) {
	r := c.messages[i]
	if r.tmpl == nil {
		return r.wire, nil
	}
	var buf bytes.Buffer
	if err := r.tmpl.Execute(&buf, cd()); err != nil {
		return nil, fmt.Errorf("data message %d: %w", i, err)
	}
	w, err := encode(c.method.Input(), buf.Bytes())
	if err != nil {
		return nil, fmt.Errorf("data message %d as expanded: %w", i, err)
	}
	return w, nil
}

// outgoingMetadata returns the metadata of the call cd describes.
func (c *caller) outgoingMetadata(cd func() *callData) (metadata.MD, error) {
	if c.mdTmpl == nil {
		return c.metadata, nil
	}
	md := map[string]string{}
	for i := 0; i < len(c.mdTmpl); i += 2 {
		var k, v strings.Builder
		if err := c.mdTmpl[i].Execute(&k, cd()); err != nil {
			return nil, fmt.Errorf("metadata: %w", err)
		}
		if err := c.mdTmpl[i+1].Execute(&v, cd()); err != nil {
			return nil, fmt.Errorf("metadata %s: %w", k.String(), err)
		}
		md[k.String()] = v.String()
	}
	return outgoing(md)
}

// call makes call number n and returns its error; the call is a unary call
// or one whole stream. A unary or server-streaming call sends message
// n mod len(messages); a client-streaming or bidirectional one sends them
// all in turn.
func (c *caller) call(ctx context.Context, cc *grpc.ClientConn, worker string, n int64) error {
	var cd *callData
	data := func() *callData {
		if cd == nil {
			cd = c.callData(worker, n)
		}
		return cd
	}
	md, err := c.outgoingMetadata(data)
	if err != nil {
		return err
	}
	if md != nil {
		ctx = metadata.NewOutgoingContext(ctx, md)
	}
	m := c.method
	if !m.IsStreamingClient() && !m.IsStreamingServer() {
		req, err := c.message(int(n%int64(len(c.messages))), data)
		if err != nil {
			return err
		}
		return cc.Invoke(ctx, c.path, &frame{req}, &frame{}, grpc.ForceCodecV2(frameCodec{}))
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	desc := &grpc.StreamDesc{ClientStreams: m.IsStreamingClient(), ServerStreams: m.IsStreamingServer()}
	stream, err := cc.NewStream(ctx, desc, c.path, grpc.ForceCodecV2(frameCodec{}))
	if err != nil {
		return err
	}
	send := func() error {
		if !m.IsStreamingClient() {
			req, err := c.message(int(n%int64(len(c.messages))), data)
			if err == nil {
				err = stream.SendMsg(&frame{req})
			}
			return err
		}
		for i := range c.messages {
			req, err := c.message(i, data)
			if err != nil {
				return err
			}
			if err := stream.SendMsg(&frame{req}); err != nil {
				return err
			}
		}
		return nil
	}
	// A bidirectional stream sends while it receives, as the server may
	// answer each message before it reads the next.
	sent := make(chan error, 1)
	go func() {
		err := send()
		if err == nil {
			err = stream.CloseSend()
		}
		if err != nil && !errors.Is(err, io.EOF) {
			// io.EOF from SendMsg means that the stream ended; its status
			// comes from RecvMsg.
			cancel()
		}
		sent <- err
	}()
	var recvErr error
	for recvErr == nil {
		recvErr = stream.RecvMsg(&frame{})
		if recvErr == nil && !m.IsStreamingServer() {
			// A client-streaming call's one answer: gRPC has checked
			// that the stream ended after it.
			recvErr = io.EOF
		}
	}
	sendErr := <-sent
	if sendErr != nil && !errors.Is(sendErr, io.EOF) {
		return sendErr
	}
	if !errors.Is(recvErr, io.EOF) {
		return recvErr
	}
	return nil
}

// frame is a message in its wire form: the task never decodes answers.
type frame struct{ b []byte }

// frameCodec sends frames as they are and drops what it receives.
type frameCodec struct{}

func (frameCodec) Marshal(v any) (mem.BufferSlice, error) {
	f, ok := v.(*frame)
	if !ok {
		return nil, fmt.Errorf("frameCodec: cannot send %T", v)
	}
	return mem.BufferSlice{mem.SliceBuffer(f.b)}, nil
}

func (frameCodec) Unmarshal(mem.BufferSlice, any) error { return nil }

// Name is proto's, so that servers see application/grpc+proto.
func (frameCodec) Name() string { return "proto" }

// transportCredentials turns the task's TLS settings into gRPC's.
func transportCredentials(t TLS) credentials.TransportCredentials {
	if t.Insecure {
		return insecure.NewCredentials()
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: t.SkipVerify} //nolint:gosec // skipVerify is the user's choice
	if t.RootCert != nil {
		cfg.RootCAs = x509.NewCertPool()
		cfg.RootCAs.AppendCertsFromPEM(t.RootCert)
	}
	return credentials.NewTLS(cfg)
}
