package http

import (
	"context"
	"errors"
	"fmt"
	"io"
	nethttp "net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"fortio.org/fortio/fhttp"
	"fortio.org/fortio/periodic"
	"golang.org/x/sync/errgroup"

	"github.com/iter8-tools/iter8/pkg/experiment"
	"github.com/iter8-tools/iter8/pkg/progress"
	"github.com/iter8-tools/iter8/pkg/stats"
	"github.com/iter8-tools/iter8/pkg/task/load"
)

// Task is the decoded http task.
type Task struct {
	Config Config
}

// EndpointResult is what the load on one endpoint measured.
type EndpointResult struct {
	Endpoint *Endpoint
	// Codes counts responses by status code; -1 counts requests that got no
	// response (connection errors, timeouts).
	Codes   map[int]int64
	Latency *stats.Histogram
}

// Run sends the load to every endpoint at once, so that versions are measured
// under the same conditions, and records the metrics per version.
func (t *Task) Run(ctx context.Context, env *experiment.Env) error {
	recorders := make([]*latencyRecorder, len(t.Config.Endpoints))
	for i, ep := range t.Config.Endpoints {
		recorders[i] = newLatencyRecorder(ep.Connections, 2*t.Config.Timeout, t.isError)
	}
	stopProgress := t.showProgress(ctx, env, recorders)
	results := make([]*EndpointResult, len(t.Config.Endpoints))
	var g errgroup.Group
	for i := range t.Config.Endpoints {
		ep := &t.Config.Endpoints[i]
		g.Go(func() error {
			r, err := t.load(ctx, ep, recorders[i], env)
			results[i] = r
			if err != nil {
				return fmt.Errorf("%s: %w", ep.Label(), err)
			}
			return nil
		})
	}
	loadErr := g.Wait()
	stopProgress()
	// Record whatever was measured, even on failure or interrupt.
	if err := t.record(env.Result, results); err != nil && loadErr == nil {
		loadErr = err
	}
	if loadErr != nil {
		return loadErr
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return t.checkResponses(ctx, results)
}

// showProgress draws the load's progress on env.Progress until the returned
// function is called; that function returns once the last line is drawn.
func (t *Task) showProgress(ctx context.Context, env *experiment.Env, recorders []*latencyRecorder) func() {
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	opts := progress.Options{
		Label:    Name,
		Total:    t.Config.NumRequests * int64(len(recorders)),
		Duration: t.Config.Duration,
	}
	read := func() progress.Snapshot {
		var s progress.Snapshot
		for _, r := range recorders {
			p := r.progress()
			s.Requests += p.Requests
			s.Errors += p.Errors
		}
		return s
	}
	go func() {
		defer close(done)
		progress.Show(ctx, env.Progress, read, opts)
	}()
	return func() {
		cancel()
		<-done
	}
}

// load runs the warmup, then the measured load, on one endpoint.
func (t *Task) load(ctx context.Context, ep *Endpoint, rec *latencyRecorder, env *experiment.Env) (*EndpointResult, error) {
	if t.Config.WarmupNumRequests > 0 || t.Config.WarmupDuration > 0 {
		env.Log.Info("warming up", "endpoint", ep.Label())
		if _, err := t.fortio(ctx, ep, t.Config.WarmupNumRequests, t.Config.WarmupDuration, nil); err != nil {
			return nil, fmt.Errorf("warmup: %w", err)
		}
	}
	env.Log.Info("sending load", "endpoint", ep.Label(), "qps", qpsLabel(ep.QPS), "connections", ep.Connections)
	res, err := t.fortio(ctx, ep, t.Config.NumRequests, t.Config.Duration, rec)
	out := &EndpointResult{Endpoint: ep, Latency: rec.histogram(), Codes: map[int]int64{}}
	if res != nil {
		for code, n := range res.RetCodes {
			out.Codes[code] += n
		}
	}
	return out, err
}

func qpsLabel(q float64) string {
	if q == 0 {
		return "max"
	}
	return fmt.Sprint(q)
}

// fortio runs fortio's periodic runner with its fast client. Its output goes
// nowhere and its Stop is ours, so that it neither prints nor installs a
// process-wide signal handler.
func (t *Task) fortio(ctx context.Context, ep *Endpoint, n int64, d time.Duration, logger periodic.AccessLogger) (*fhttp.HTTPRunnerResults, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	qps := ep.QPS
	if qps == 0 {
		qps = -1 // fortio: 0 means its default of 8; -1 is full speed
	}
	threads := ep.Connections
	if n > 0 {
		// fortio's runner sends at least one request per thread: use no
		// more threads than requests, so that exactly n are sent.
		threads = int(min(int64(threads), n))
	}
	// Keep our own reference: fortio's NewPeriodicRunner moves Stop out of
	// the options (sets o.Stop to nil), so o.Stop cannot be used to abort.
	aborter := periodic.NewAborter()
	o := &fhttp.HTTPRunnerOptions{
		RunnerOptions: periodic.RunnerOptions{
			QPS:          qps,
			NumThreads:   threads,
			Exactly:      n,
			Duration:     d,
			Out:          io.Discard,
			Stop:         aborter,
			AccessLogger: logger,
			Percentiles:  []float64{50},
		},
		// Connection errors during warm-up are measured, not fatal: they
		// show as errors in the metrics.
		AllowInitialErrors: true,
	}
	o.HTTPOptions.InitHeaders()
	if err := o.AddAndValidateExtraHeader("User-Agent: iter8"); err != nil {
		return nil, err
	}
	for k, v := range ep.Headers {
		if err := o.AddAndValidateExtraHeader(k + ": " + v); err != nil {
			return nil, fmt.Errorf("header %s: %w", k, err)
		}
	}
	o.URL = ep.URL.String()
	o.HTTPReqTimeOut = t.Config.Timeout
	o.Payload = ep.Payload
	o.ContentType = ep.ContentType
	o.MethodOverride = ep.Method

	stop := context.AfterFunc(ctx, func() { aborter.Abort(false) })
	defer stop()
	res, err := fhttp.RunHTTPTest(o)
	if err != nil {
		return nil, fmt.Errorf("start load: %w", err)
	}
	return res, nil
}

// record writes the version and endpoint metrics.
func (t *Task) record(r *experiment.Result, results []*EndpointResult) error {
	measured := make([]*load.Measured, len(results))
	for i, er := range results {
		if er == nil {
			continue
		}
		m := &load.Measured{Target: load.Target{Name: er.Endpoint.Name, Version: er.Endpoint.Version}, Latency: er.Latency}
		for code, n := range er.Codes {
			m.Requests += n
			if t.isError(code) {
				m.Errors += n
			}
		}
		measured[i] = m
	}
	return load.Record(r, Name, measured, t.Config.Percentiles)
}

func (t *Task) isError(code int) bool {
	if code < 100 {
		return true // no response: connection error or timeout
	}
	for _, r := range t.Config.ErrorRanges {
		if r.Contains(code) {
			return true
		}
	}
	return false
}

// checkResponses fails the task for an endpoint where no request got any
// response at all: that is an unreachable target, not a measurement. One
// probe request finds the reason to report.
func (t *Task) checkResponses(ctx context.Context, results []*EndpointResult) error {
	var errs []error
	for _, er := range results {
		var answered, total int64
		for code, n := range er.Codes {
			total += n
			if code >= 100 {
				answered += n
			}
		}
		if answered > 0 {
			continue
		}
		if total == 0 {
			errs = append(errs, fmt.Errorf("%s: no request was sent", er.Endpoint.Label()))
			continue
		}
		errs = append(errs, fmt.Errorf("%s: none of %d requests got a response (%s)",
			er.Endpoint.Label(), total, t.probe(ctx, er.Endpoint)))
	}
	return errors.Join(errs...)
}

// probe sends one request to learn why an endpoint does not answer.
func (t *Task) probe(ctx context.Context, ep *Endpoint) string {
	ctx, cancel := context.WithTimeout(ctx, t.Config.Timeout)
	defer cancel()
	req, err := nethttp.NewRequestWithContext(ctx, ep.Method, ep.URL.String(), nil)
	if err != nil {
		return err.Error()
	}
	if req.Method == "" {
		req.Method = nethttp.MethodGet
	}
	resp, err := nethttp.DefaultClient.Do(req)
	if err != nil {
		var ue interface{ Unwrap() error }
		if errors.As(err, &ue) && ue.Unwrap() != nil {
			err = ue.Unwrap() // drop the URL that url.Error repeats
		}
		return err.Error()
	}
	resp.Body.Close()
	return fmt.Sprintf("a probe request got status %d", resp.StatusCode)
}

// latencyRecorder is fortio's per-request hook: fortio calls it from every
// load thread at once, so each thread has its own histogram and counters and
// no lock is taken on the hot path.
type latencyRecorder struct {
	threads  []threadRecorder
	isError  func(code int) bool
	mu       sync.Mutex // guards overflow
	overflow threadRecorder
}

// threadRecorder is one load thread's share. The counters are read by the
// progress display while the thread writes them; the padding keeps threads
// off each other's cache lines.
type threadRecorder struct {
	latency  *stats.Recorder
	requests atomic.Int64
	errors   atomic.Int64
	_        [48]byte
}

func newLatencyRecorder(threads int, highest time.Duration, isError func(int) bool) *latencyRecorder {
	l := &latencyRecorder{threads: make([]threadRecorder, threads), isError: isError}
	l.overflow.latency = stats.NewRecorder(highest)
	for i := range l.threads {
		l.threads[i].latency = stats.NewRecorder(highest)
	}
	return l
}

// Start implements periodic.AccessLogger.
func (l *latencyRecorder) Start(ctx context.Context, _ periodic.ThreadID, _ int64, _ time.Time) context.Context {
	return ctx
}

// Report implements periodic.AccessLogger. fortio passes the status code as
// details; it is parsed only for responses that are not 2xx.
func (l *latencyRecorder) Report(_ context.Context, thread periodic.ThreadID, _ int64, _ time.Time, latency float64, ok bool, details string) {
	d := time.Duration(latency * float64(time.Second))
	isErr := false
	if !ok {
		code, err := strconv.Atoi(details)
		isErr = err != nil || l.isError(code)
	}
	if int(thread) >= 0 && int(thread) < len(l.threads) {
		l.threads[thread].record(d, isErr)
		return
	}
	l.mu.Lock()
	l.overflow.record(d, isErr)
	l.mu.Unlock()
}

func (r *threadRecorder) record(d time.Duration, isErr bool) {
	r.latency.Record(d)
	r.requests.Add(1)
	if isErr {
		r.errors.Add(1)
	}
}

// Info implements periodic.AccessLogger.
func (l *latencyRecorder) Info() string { return "iter8 latency histograms" }

// progress sums the counters of all threads.
func (l *latencyRecorder) progress() progress.Snapshot {
	s := progress.Snapshot{Requests: l.overflow.requests.Load(), Errors: l.overflow.errors.Load()}
	for i := range l.threads {
		s.Requests += l.threads[i].requests.Load()
		s.Errors += l.threads[i].errors.Load()
	}
	return s
}

// histogram merges the threads' latencies; call it once the load is over.
func (l *latencyRecorder) histogram() *stats.Histogram {
	total := l.overflow.latency
	for i := range l.threads {
		total.Merge(l.threads[i].latency)
	}
	return total.Histogram()
}
