package http

import (
	"context"
	"io"
	"log"
	"log/slog"
	nethttp "net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	fortiolog "fortio.org/log"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"

	"github.com/iter8-tools/iter8/pkg/experiment"
)

func TestMain(m *testing.M) {
	// fortio logs every run at Info level through its own global logger.
	fortiolog.SetLogLevelQuiet(fortiolog.Error)
	os.Exit(m.Run())
}

// withPath is where the task's `with` block sits in the helper's spec.
var withPath = field.NewPath("spec", "tasks").Index(0).Child("with")

// fixture is a decoded http task with the experiment around it.
type fixture struct {
	task    *Task
	catalog *experiment.Catalog
	plan    *experiment.Plan
}

// decode runs the real Decode on a YAML or JSON `with` block for an
// experiment with the given versions (nil: one unnamed version). The
// Catalog comes from experiment.Decode, so that it is the real one; a
// stand-in task captures it.
func decode(t *testing.T, with string, versions []string, readFile func(string) ([]byte, error)) (*fixture, field.ErrorList) {
	t.Helper()
	withJSON, err := yaml.YAMLToJSON([]byte(with))
	if err != nil {
		t.Fatalf("with block %q is not YAML: %v", with, err)
	}
	catalog, plan := newExperiment(t, versions)
	task, errs := Decode(&experiment.Decoding{
		With:     withJSON,
		Path:     withPath,
		Versions: plan.Experiment.Spec.VersionNames(),
		Metrics:  catalog,
		ReadFile: readFile,
	})
	if len(errs) > 0 {
		if task != nil {
			t.Errorf("Decode(%s) returned a task along with errors %v", with, errs)
		}
		return nil, errs
	}
	ht, ok := task.(*Task)
	if !ok {
		t.Fatalf("Decode(%s) returned %T, want *Task", with, task)
	}
	return &fixture{task: ht, catalog: catalog, plan: plan}, nil
}

// mustDecode is decode for inputs that must be valid.
func mustDecode(t *testing.T, with string, versions []string) *fixture {
	t.Helper()
	f, errs := decode(t, with, versions, nil)
	if len(errs) > 0 {
		t.Fatalf("Decode(%s): %v", with, errs)
	}
	return f
}

// newExperiment decodes a minimal spec with the given versions, capturing
// the Catalog that experiment.Decode hands to task decoders.
func newExperiment(t *testing.T, versions []string) (*experiment.Catalog, *experiment.Plan) {
	t.Helper()
	var catalog *experiment.Catalog
	reg := experiment.NewRegistry()
	reg.Register("capture", func(d *experiment.Decoding) (experiment.Task, field.ErrorList) {
		catalog = d.Metrics
		return nopTask{}, nil
	})
	spec := map[string]any{
		"apiVersion": experiment.APIVersion,
		"kind":       experiment.Kind,
		"metadata":   map[string]any{"name": "http-test"},
		"spec":       map[string]any{"versions": versions, "tasks": []any{map[string]any{"task": "capture"}}},
	}
	data, err := yaml.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := experiment.Decode(data, experiment.DecodeOptions{Registry: reg})
	if err != nil {
		t.Fatalf("decode the test experiment: %v", err)
	}
	if catalog == nil {
		t.Fatal("the capture task was not decoded")
	}
	return catalog, plan
}

type nopTask struct{}

func (nopTask) Run(context.Context, *experiment.Env) error { return nil }

// newEnv returns an Env with a fresh Result for the fixture's experiment.
func (f *fixture) newEnv() *experiment.Env {
	return &experiment.Env{
		Result:   experiment.NewResult(f.plan, 1, time.Now()),
		Versions: f.plan.Experiment.Spec.VersionNames(),
		Log:      slog.New(slog.DiscardHandler),
		Progress: io.Discard,
		Secret:   func(string) (string, bool) { return "", false },
		Now:      time.Now,
	}
}

// run runs the task and returns its result.
func (f *fixture) run(t *testing.T, ctx context.Context) (*experiment.Result, error) {
	t.Helper()
	env := f.newEnv()
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

// server is a loopback HTTP server that records what it received.
type server struct {
	*httptest.Server
	count atomic.Int64

	mu       sync.Mutex
	requests []seen
}

// seen is what the server kept of one request.
type seen struct {
	Method, Path, ContentType, UserAgent string
	Header                               nethttp.Header
	Body                                 string
}

// newServer starts a server on 127.0.0.1 that records every request and
// then calls handle (nil answers 200 "ok"); n is the request's 1-based
// arrival number.
func newServer(t *testing.T, handle func(w nethttp.ResponseWriter, r *nethttp.Request, n int64)) *server {
	t.Helper()
	s := &server{}
	s.Server = httptest.NewUnstartedServer(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		body, _ := io.ReadAll(r.Body)
		n := s.count.Add(1)
		s.mu.Lock()
		s.requests = append(s.requests, seen{
			Method: r.Method, Path: r.URL.Path, ContentType: r.Header.Get("Content-Type"),
			UserAgent: r.UserAgent(), Header: r.Header.Clone(), Body: string(body),
		})
		s.mu.Unlock()
		if handle == nil {
			_, _ = io.WriteString(w, "ok")
			return
		}
		handle(w, r, n)
	}))
	s.Config.ErrorLog = log.New(testWriter{t}, "server: ", 0)
	s.Start()
	if !strings.HasPrefix(s.URL, "http://127.0.0.1:") {
		t.Fatalf("test server listens at %s, want 127.0.0.1", s.URL)
	}
	t.Cleanup(s.Close)
	return s
}

func (s *server) seen() []seen {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]seen(nil), s.requests...)
}

// delay waits d, or less when the client goes away, so that closing the
// server never waits for a request nobody reads.
func delay(r *nethttp.Request, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.Context().Done():
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Logf("%s", strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
