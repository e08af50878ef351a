package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/iter8-tools/iter8/pkg/experiment"
)

// decode decodes a `with` block on its own (no metrics catalog, so no dry
// run of templates).
func decode(t *testing.T, with string) (*Task, field.ErrorList) {
	t.Helper()
	task, errs := Decode(&experiment.Decoding{With: []byte(with), Path: field.NewPath("with"), Versions: []string{""}})
	if task == nil {
		return nil, errs
	}
	return task.(*Task), errs
}

// mustDecode decodes a `with` block that must be valid.
func mustDecode(t *testing.T, with string) *Task {
	t.Helper()
	task, errs := decode(t, with)
	if len(errs) > 0 {
		t.Fatalf("Decode(%s): %v", with, errs.ToAggregate())
	}
	return task
}

// describe joins field errors as "path: detail".
func describe(errs field.ErrorList) string {
	var s []string
	for _, e := range errs {
		s = append(s, e.Error())
	}
	return strings.Join(s, "\n")
}

// produce is a test task that declares metrics when decoded and sets values
// when run, so that notify sees a catalog and a result as after real tasks.
type produce struct {
	values map[string]map[string]float64
}

type produceInputs struct {
	// Declare lists the metrics the task says it produces, per version.
	Declare map[string][]string `json:"declare"`
	// Values are set when the task runs.
	Values map[string]map[string]float64 `json:"values"`
}

func decodeProduce(d *experiment.Decoding) (experiment.Task, field.ErrorList) {
	var in produceInputs
	if errs := d.Into(&in); len(errs) > 0 {
		return nil, errs
	}
	for v, ms := range in.Declare {
		for _, m := range ms {
			d.Metrics.Add(v, m)
		}
	}
	return &produce{values: in.Values}, nil
}

func (p *produce) Run(_ context.Context, env *experiment.Env) error {
	for v, ms := range p.values {
		for m, val := range ms {
			env.Result.SetMetric(v, m, val, "msec")
		}
	}
	return nil
}

func registry() *experiment.Registry {
	r := experiment.NewRegistry()
	r.Register("produce", decodeProduce)
	r.Register(Name, Decode)
	return r
}

// decodeSpec decodes a whole experiment spec with the produce and notify
// tasks.
func decodeSpec(spec string) (*experiment.Plan, error) {
	return experiment.Decode([]byte(spec), experiment.DecodeOptions{Registry: registry()})
}

// run is the outcome of a spec run through experiment.Runner.
type run struct {
	result *experiment.Result
	err    error
	log    string // everything the run logged
	json   string // the result as stored
}

// store keeps the last result written, as JSON, as a store would.
type store struct {
	mu   sync.Mutex
	last []byte
}

func (s *store) WriteResult(_ context.Context, r *experiment.Result) error {
	b, err := json.Marshal(r)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.last = b
	return err
}

// runSpec decodes and runs spec with the given secrets.
func runSpec(t *testing.T, spec string, secrets map[string]string) run {
	t.Helper()
	plan, err := decodeSpec(spec)
	if err != nil {
		t.Fatalf("decode spec: %v\n%s", err, spec)
	}
	var buf syncBuffer
	tail := experiment.NewLogTail(100)
	st := &store{}
	r := &experiment.Runner{
		Store:   st,
		Log:     slog.New(slog.NewTextHandler(io.MultiWriter(&buf, tail), nil)),
		LogTail: tail,
		Secret: func(name string) (string, bool) {
			v, ok := secrets[name]
			return v, ok
		},
	}
	res, err := r.Run(context.Background(), plan)
	return run{result: res, err: err, log: buf.String(), json: string(st.last)}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// request is what a test server received.
type request struct {
	Method, Path, RawPath, Query string
	Header                       http.Header
	Body                         []byte
}

// recorder is a loopback server that records requests and answers with a
// fixed status and body (which may be a func of the request).
type recorder struct {
	URL    string
	mu     sync.Mutex
	reqs   []request
	status int
	body   func(r *http.Request) string
}

func newRecorder(t *testing.T, status int, body func(r *http.Request) string) *recorder {
	t.Helper()
	rec := &recorder{status: status, body: body}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rec.mu.Lock()
		rec.reqs = append(rec.reqs, request{
			Method: r.Method, Path: r.URL.Path, RawPath: r.URL.EscapedPath(), Query: r.URL.RawQuery,
			Header: r.Header.Clone(), Body: b,
		})
		rec.mu.Unlock()
		w.WriteHeader(rec.status)
		if rec.body != nil {
			io.WriteString(w, rec.body(r))
		}
	}))
	srv.Config.ErrorLog = log.New(tLogger{t}, "server: ", 0)
	srv.Start()
	t.Cleanup(srv.Close)
	rec.URL = srv.URL
	return rec
}

// only returns the one request the server got.
func (r *recorder) only(t *testing.T) request {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.reqs) != 1 {
		t.Fatalf("server got %d requests, want 1", len(r.reqs))
	}
	return r.reqs[0]
}

type tLogger struct{ t *testing.T }

func (l tLogger) Write(p []byte) (int, error) {
	l.t.Logf("%s", bytes.TrimSpace(p))
	return len(p), nil
}

// refusedURL returns an http URL on 127.0.0.1 where nothing listens.
func refusedURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

// hangingURL returns the URL of a server that never answers (until the
// client gives up or the test ends).
func hangingURL(t *testing.T) string {
	t.Helper()
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-done:
		}
	}))
	t.Cleanup(func() { close(done); srv.Close() })
	return srv.URL
}

// env returns an Env over result with the given secrets, logging into buf.
func env(result *experiment.Result, secrets map[string]string, buf io.Writer) *experiment.Env {
	if buf == nil {
		buf = io.Discard
	}
	return &experiment.Env{
		Result: result,
		Log:    slog.New(slog.NewTextHandler(buf, nil)),
		Secret: func(name string) (string, bool) {
			v, ok := secrets[name]
			return v, ok
		},
	}
}

// sampleResult is a finished run with two versions and an SLO verdict.
func sampleResult() *experiment.Result {
	upper, val1, val2 := 100.0, 42.5, 120.0
	return &experiment.Result{
		Experiment: "checkout",
		Revision:   3,
		Tasks: []experiment.TaskResult{
			{Task: "http", State: experiment.TaskSucceeded},
			{Task: "assess", State: experiment.TaskSucceeded},
			{Task: "notify", State: experiment.TaskRunning},
		},
		Versions: []experiment.VersionResult{
			{Name: "v1", Metrics: map[string]experiment.Metric{"http/latency-p99": {Value: val1, Unit: "msec"}, "http/error-rate": {Value: 0}}},
			{Name: "v2", Metrics: map[string]experiment.Metric{"http/latency-p99": {Value: val2, Unit: "msec"}, "http/error-rate": {Value: 0.5}}},
		},
		SLOs: []experiment.SLOVerdict{
			{Metric: "http/latency-p99", Version: "v1", Upper: &upper, Value: &val1, Satisfied: true},
			{Metric: "http/latency-p99", Version: "v2", Upper: &upper, Value: &val2, Satisfied: false},
		},
		Winner: "v1",
	}
}

// jsonString quotes s as a JSON string, for building `with` blocks.
func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
