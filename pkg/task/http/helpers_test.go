package http

import (
	"context"
	"io"
	"log"
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

	"github.com/iter8-tools/iter8/pkg/experiment"
	"github.com/iter8-tools/iter8/pkg/experiment/experimenttest"
)

func TestMain(m *testing.M) {
	// fortio logs every run at Info level through its own global logger.
	fortiolog.SetLogLevelQuiet(fortiolog.Error)
	os.Exit(m.Run())
}

// withPath is where the task's `with` block sits in the helper's spec.
var withPath = experimenttest.WithPath

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

// mustDecode is decode for inputs that must be valid.
func mustDecode(t *testing.T, with string, versions []string) *fixture {
	t.Helper()
	f, errs := decode(t, with, versions, nil)
	if len(errs) > 0 {
		t.Fatalf("Decode(%s): %v", with, errs)
	}
	return f
}

// newEnv returns an Env with a fresh Result for the fixture's experiment.
func (f *fixture) newEnv() *experiment.Env {
	return experimenttest.Env(f.plan, nil)
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
