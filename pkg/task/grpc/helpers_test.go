package grpc

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	protobuf "google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/iter8-tools/iter8/pkg/experiment"
	"github.com/iter8-tools/iter8/pkg/experiment/experimenttest"
	"github.com/iter8-tools/iter8/test/greeter"
	"github.com/iter8-tools/iter8/test/sampleapp"
)

// withPath is where the task's `with` block sits in the helper's spec.
var withPath = experimenttest.WithPath

// greeterDir holds greeter.proto, the proto file that tests name.
const greeterDir = "../../../test/greeter"

// fixture is a decoded grpc task with the experiment around it.
type fixture struct {
	task    *Task
	catalog *experiment.Catalog
	plan    *experiment.Plan
}

// decode runs the real Decode on a YAML or JSON `with` block for an
// experiment with the given versions (nil: one unnamed version). The
// Catalog comes from experiment.Decode, so that it is the real one.
func decode(t *testing.T, with string, versions []string, readFile func(string) ([]byte, error)) (*fixture, field.ErrorList) {
	t.Helper()
	d, plan := experimenttest.Decoding(t, with, versions, readFile)
	task, errs := Decode(d)
	if len(errs) > 0 {
		if task != nil {
			t.Errorf("Decode(%s) returned a task along with errors %v", with, errs)
		}
		return nil, errs
	}
	typed, ok := task.(*Task)
	if !ok {
		t.Fatalf("Decode(%s) returned %T, want *Task", with, task)
	}
	return &fixture{task: typed, catalog: d.Metrics, plan: plan}, nil
}

// mustDecode is decode for inputs that must be valid; files are read from
// files.
func mustDecode(t *testing.T, with string, versions []string) *fixture {
	t.Helper()
	f, errs := decode(t, with, versions, readFile)
	if len(errs) > 0 {
		t.Fatalf("Decode(%s): %v", with, errs)
	}
	return f
}

// newEnv returns an Env with a fresh Result for the fixture's experiment;
// log lines go to the test's log.
func (f *fixture) newEnv(t *testing.T) *experiment.Env {
	return experimenttest.Env(f.plan, testWriter{t})
}

// run runs the task and returns its result.
func (f *fixture) run(t *testing.T, ctx context.Context) (*experiment.Result, error) {
	t.Helper()
	env := f.newEnv(t)
	err := f.task.Run(ctx, env)
	return env.Result, err
}

// metric returns a metric's value, failing the test when it is missing.
func metric(t *testing.T, r *experiment.Result, version, name string) float64 {
	t.Helper()
	v, ok := r.Value(version, name)
	if !ok {
		t.Fatalf("version %q has no metric %s; it has %v", version, name, resultMetrics(r, version))
	}
	return v
}

func resultMetrics(r *experiment.Result, version string) []string {
	v := r.Version(version)
	if v == nil {
		return nil
	}
	var names []string
	for n := range v.Metrics {
		names = append(names, n)
	}
	return names
}

// files is what readFile can read: the greeter's real proto file, a
// protoset of it, certificates and broken files. TestMain fills it.
var files fstest.MapFS

func TestMain(m *testing.M) {
	var err error
	if files, err = testFiles(); err != nil {
		fmt.Fprintln(os.Stderr, "test files:", err)
		os.Exit(2)
	}
	os.Exit(m.Run())
}

func testFiles() (fstest.MapFS, error) {
	protoset, err := greeter.Protoset()
	if err != nil {
		return nil, err
	}
	proto, err := os.ReadFile(greeterDir + "/" + greeter.ProtoFile)
	if err != nil {
		return nil, err
	}
	// A protoset that imports a file it does not hold, as protoc writes it
	// without --include_imports.
	needsImport, err := protobuf.Marshal(&descriptorpb.FileDescriptorSet{File: []*descriptorpb.FileDescriptorProto{{
		Name: protobuf.String("a.proto"), Dependency: []string{"b.proto"},
	}}})
	if err != nil {
		return nil, err
	}
	return fstest.MapFS{
		"greeter.proto":         {Data: proto},
		"protos/greeter.proto":  {Data: proto},
		"greeter.protoset":      {Data: protoset},
		"broken.proto":          {Data: []byte("syntax = \"proto3\";\nservice S {\n")},
		"garbage.protoset":      {Data: []byte("not a protoset")},
		"needs-import.protoset": {Data: needsImport},
		"big.proto":             {Data: make([]byte, 16<<20+1)},
		"big.protoset":          {Data: make([]byte, 16<<20+1)},
		"imports/main.proto": {Data: []byte(`syntax = "proto3";
package app;
import "common/types.proto";
import "google/protobuf/empty.proto";
service App { rpc Ping (common.Ping) returns (google.protobuf.Empty); }
`)},
		"shared/common/types.proto": {Data: []byte("syntax = \"proto3\";\npackage common;\nmessage Ping { int32 count = 1; }\n")},
		"not-a-cert.pem":            {Data: []byte("hello")},
	}, nil
}

func readFile(name string) ([]byte, error) { return fs.ReadFile(files, strings.TrimPrefix(name, "./")) }

// startGreeter starts a greeter on 127.0.0.1 for the test.
func startGreeter(t *testing.T, o greeter.Options) *greeter.Server {
	t.Helper()
	s, err := greeter.Start("127.0.0.1:0", o)
	if err != nil {
		t.Fatalf("start greeter: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("greeter: %v", err)
		}
	})
	if !strings.HasPrefix(s.Addr(), "127.0.0.1:") {
		t.Fatalf("greeter listens on %s, want 127.0.0.1", s.Addr())
	}
	return s
}

func latency(t *testing.T, spec string) sampleapp.Latency {
	t.Helper()
	l, err := sampleapp.ParseLatency(spec)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// observed collects the calls a greeter sees.
type observed struct {
	mu    sync.Mutex
	calls []greeter.Call
}

func (o *observed) observe(c greeter.Call) {
	o.mu.Lock()
	o.calls = append(o.calls, c)
	o.mu.Unlock()
}

func (o *observed) all() []greeter.Call {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]greeter.Call(nil), o.calls...)
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Logf("%s", strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
