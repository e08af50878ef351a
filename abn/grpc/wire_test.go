package grpc

import (
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// TestWireCompatibleWithIter8V1 pins what clients built against Iter8 v1
// depend on: the package, service and method names (the gRPC paths), and
// the numbers and types of v1's fields. Renaming a field is harmless on
// the wire; changing any of these breaks those clients.
func TestWireCompatibleWithIter8V1(t *testing.T) {
	fd := File_abn_grpc_abn_proto
	if fd.Package() != "main" {
		t.Fatalf("package = %s, want main (Iter8 v1's)", fd.Package())
	}
	svc := fd.Services().ByName("ABN")
	if svc == nil {
		t.Fatal("no service ABN")
	}
	for _, m := range []struct{ method, in, out string }{
		{"Lookup", "main.Application", "main.Session"},
		{"WriteMetric", "main.MetricValue", "google.protobuf.Empty"},
	} {
		md := svc.Methods().ByName(protoreflect.Name(m.method))
		if md == nil || string(md.Input().FullName()) != m.in || string(md.Output().FullName()) != m.out || md.IsStreamingClient() || md.IsStreamingServer() {
			t.Errorf("method %s: %v, want unary %s → %s", m.method, md, m.in, m.out)
		}
	}
	for _, f := range []struct {
		message string
		number  protowire.Number
	}{
		{"Application", 1}, {"Application", 2}, // name, user
		{"Session", 1},                                                                 // versionNumber (track before v0.14)
		{"MetricValue", 1}, {"MetricValue", 2}, {"MetricValue", 3}, {"MetricValue", 4}, // name, value, application, user
		{"MetricRequest", 1},      // application
		{"ApplicationMetrics", 1}, // applicationJson
	} {
		md := fd.Messages().ByName(protoreflect.Name(f.message))
		fld := md.Fields().ByNumber(f.number)
		if fld == nil || fld.Kind() != protoreflect.StringKind || fld.Cardinality() != protoreflect.Optional {
			t.Errorf("%s field %d: %v, want a singular string", f.message, f.number, fld)
		}
	}
}

// TestDecodesAnIter8V1MetricValue decodes bytes laid out as Iter8 v1's
// client encodes a MetricValue, field by field.
func TestDecodesAnIter8V1MetricValue(t *testing.T) {
	var b []byte
	for _, f := range []struct {
		n protowire.Number
		v string
	}{{1, "revenue"}, {2, "12.5"}, {3, "default/backend"}, {4, "ann"}} {
		b = protowire.AppendTag(b, f.n, protowire.BytesType)
		b = protowire.AppendString(b, f.v)
	}
	var m MetricValue
	if err := proto.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if m.GetName() != "revenue" || m.GetValue() != "12.5" || m.GetApplication() != "default/backend" || m.GetUser() != "ann" || m.GetVersion() != "" {
		t.Errorf("decoded %v", &m)
	}
	// And a Session as this service sends it reads as v1's versionNumber.
	out, _ := proto.Marshal(&Session{VersionNumber: "1", Version: "v2"})
	n, typ, l := protowire.ConsumeTag(out)
	s, _ := protowire.ConsumeString(out[l:])
	if n != 1 || typ != protowire.BytesType || s != "1" {
		t.Errorf("Session's first field = %d/%v %q, want 1/bytes \"1\"", n, typ, s)
	}
}
