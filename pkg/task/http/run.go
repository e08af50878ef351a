package http

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"fortio.org/fortio/periodic"
	"golang.org/x/sync/errgroup"

	"github.com/iter8-tools/iter8/pkg/experiment"
	"github.com/iter8-tools/iter8/pkg/h1client"
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
	// Codes counts complete responses by status code.
	Codes map[int]int64
	// Failures counts requests without a complete response (no connection,
	// a timeout, a broken response) by kind.
	Failures []experiment.RequestFailure
	// Answered counts the requests that got at least a status line.
	Answered int64
	Latency  *stats.Histogram
}

// unreachableAfter is how many connection attempts in a row, with no
// response between them, stop the load as unreachable; an endpoint with
// more connections than this gets one attempt per connection.
const unreachableAfter = 20

// unreachableError stops every endpoint's load when one cannot be reached:
// the task fails either way, so the rest of the load would tell nothing.
type unreachableError struct {
	endpoint string
	attempts int64
	last     error
}

func (e *unreachableError) Error() string {
	return fmt.Sprintf("%s: %d connection attempts in a row failed, the last with %v; the load was stopped", e.endpoint, e.attempts, e.last)
}

// Run sends the load to every endpoint at once, so that versions are measured
// under the same conditions, and records the metrics per version. With
// workers, each worker loads every endpoint with its share, in this process
// or, given a pool, in Pods of their own; what they measured is merged from
// their parts. Given a worker role, it sends that worker's share only and
// puts its part.
func (t *Task) Run(ctx context.Context, env *experiment.Env) error {
	workers := max(t.Config.Workers, 1)
	switch {
	case env.Worker != nil:
		return t.runWorker(ctx, env)
	case workers > 1 && env.Workers != nil:
		return t.runPool(ctx, env)
	}
	if err := load.CheckProcessWorkers(workers); err != nil {
		return err
	}
	// Every endpoint's time blocks count from here (fortio's clock, not
	// env's), so that versions can be compared block by block, and the
	// blocks of workers merge.
	ws := make([]int, workers)
	for w := range ws {
		ws[w] = w
	}
	measured, loadErrs, loadErr := t.measure(ctx, env, time.Now(), ws)
	results := measured[0]
	t.clearWorkers(env.Result)
	if workers > 1 {
		var err error
		if results, err = t.mergeParts(env.Result, t.parts(measured, loadErrs)); err != nil && loadErr == nil {
			loadErr = err
		}
	}
	return t.finish(ctx, env, results, loadErr)
}

// finish records whatever was measured, even on failure or interrupt, and
// returns the task's error: the load's, the record's, an interrupt, or an
// endpoint that never answered.
func (t *Task) finish(ctx context.Context, env *experiment.Env, results []*EndpointResult, loadErr error) error {
	if err := t.record(env.Result, results); err != nil && loadErr == nil {
		loadErr = err
	}
	t.logFailures(env, results)
	if loadErr != nil {
		return loadErr
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return checkResponses(results)
}

// runWorker sends the share of the worker env.Worker and puts its part,
// also when its load failed.
func (t *Task) runWorker(ctx context.Context, env *experiment.Env) error {
	role := env.Worker
	measured, loadErrs, loadErr := t.measure(ctx, env, role.Start, []int{role.Index})
	p := t.part(role.Index, measured[0], loadErrs[0])
	if loadErr != nil && !p.Failed() {
		p.Error = loadErr.Error()
	}
	return load.WorkerDone(ctx, env, role, p)
}

// runPool has env.Workers run the workers and merges their parts.
func (t *Task) runPool(ctx context.Context, env *experiment.Env) error {
	t.clearWorkers(env.Result)
	env.Logger().Info("sending load from worker pods", "workers", t.Config.Workers)
	parts, err := load.RunPool(ctx, env, t.Config.Workers, len(t.Config.Endpoints))
	results, mergeErr := t.mergeParts(env.Result, parts)
	return t.finish(ctx, env, results, cmp.Or(err, mergeErr))
}

// measure runs the workers ws (of Config.Workers; all of them in one
// process, or one in a worker's own) with their time blocks counted from
// start, and returns what each measured on each endpoint and each one's
// errors, with the error that ends the task, an unreachable endpoint's
// first.
func (t *Task) measure(ctx context.Context, env *experiment.Env, start time.Time, ws []int) ([][]*EndpointResult, [][]error, error) {
	loadCtx, stopLoad := context.WithCancelCause(ctx)
	defer stopLoad(nil)
	workers := max(t.Config.Workers, 1)
	eps := t.Config.Endpoints
	recorders := make([][]*latencyRecorder, len(ws))
	var all []*latencyRecorder
	for k, w := range ws {
		recorders[k] = make([]*latencyRecorder, len(eps))
		for i := range eps {
			recorders[k][i] = t.newRecorder(&eps[i], start, stopLoad)
			if workers > 1 {
				// An unreachable endpoint's error names the worker that found it.
				recorders[k][i].label = fmt.Sprintf("worker %d: %s", w, recorders[k][i].label)
			}
			all = append(all, recorders[k][i])
		}
	}
	total := int64(0)
	for _, w := range ws {
		total += load.Share(t.Config.NumRequests, workers, w)
	}
	stopProgress := t.showProgress(ctx, env, all, total*int64(len(eps)))
	measured := make([][]*EndpointResult, len(ws))
	loadErrs := make([][]error, len(ws))
	var g errgroup.Group
	for k, w := range ws {
		measured[k] = make([]*EndpointResult, len(eps))
		loadErrs[k] = make([]error, len(eps))
		wenv := env
		if workers > 1 {
			wenv = &experiment.Env{Result: env.Result, Versions: env.Versions, Log: env.Logger().With("worker", w)}
		}
		for i := range eps {
			ep := t.share(&eps[i])
			g.Go(func() error {
				// Workers start in turn from start, so that their requests
				// interleave; each ends with the others.
				stagger := load.Stagger(eps[i].QPS, w)
				var r *EndpointResult
				err := load.Wait(loadCtx, time.Until(start.Add(stagger)))
				d := t.Config.Duration
				if err == nil && workers > 1 {
					// A worker's Pod that starts late ends with the others.
					var ok bool
					if d, ok = load.Remaining(d, start, stagger); !ok {
						wenv.Logger().Warn("started after the load's window ended: sends nothing", "endpoint", ep.Label())
						return nil
					}
				}
				if err == nil {
					r, err = t.load(loadCtx, ep, load.Share(t.Config.NumRequests, workers, w),
						load.Share(t.Config.WarmupNumRequests, workers, w), d, recorders[k][i], wenv)
				}
				measured[k][i] = r
				var unreachable *unreachableError
				if err != nil && ctx.Err() == nil && errors.As(context.Cause(loadCtx), &unreachable) {
					// Stopped because an endpoint could not be reached: the
					// error is that endpoint's (its message names it), not
					// every stopped endpoint's.
					if unreachable.endpoint != recorders[k][i].label {
						return nil
					}
					loadErrs[k][i] = unreachable
					return unreachable
				}
				if err != nil {
					err = fmt.Errorf("%s: %w", ep.Label(), err)
					if workers > 1 {
						err = fmt.Errorf("worker %d: %w", w, err)
					}
				}
				loadErrs[k][i] = err
				return err
			})
		}
	}
	loadErr := g.Wait()
	stopProgress()
	var unreachable *unreachableError
	if cause := context.Cause(loadCtx); errors.As(cause, &unreachable) {
		loadErr = unreachable
	}
	return measured, loadErrs, loadErr
}

// share is a worker's copy of endpoint ep: its part of the rate.
func (t *Task) share(ep *Endpoint) *Endpoint {
	if t.Config.Workers <= 1 {
		return ep
	}
	s := *ep
	s.QPS = ep.QPS / float64(t.Config.Workers)
	return &s
}

// parts turns each worker's results and errors into its part.
func (t *Task) parts(measured [][]*EndpointResult, loadErrs [][]error) []*load.Part {
	parts := make([]*load.Part, len(measured))
	for w, results := range measured {
		parts[w] = t.part(w, results, loadErrs[w])
	}
	return parts
}

// mergeParts merges the workers' parts and records what each worker sent
// to each version.
func (t *Task) mergeParts(r *experiment.Result, parts []*load.Part) ([]*EndpointResult, error) {
	merged, err := load.MergeParts(parts, len(t.Config.Endpoints))
	if err != nil {
		return nil, err
	}
	load.RecordWorkers(r, Name, parts, t.Config.Endpoints)
	out := make([]*EndpointResult, len(merged))
	for i, m := range merged {
		if m == nil {
			continue
		}
		er := &EndpointResult{Endpoint: &t.Config.Endpoints[i], Codes: map[int]int64{}, Failures: m.Failures, Answered: m.Answered, Latency: m.Latency}
		for code, n := range m.Codes {
			c, err := strconv.Atoi(code)
			if err != nil {
				return nil, fmt.Errorf("merge: endpoint %d: status %q is not a number", i, code)
			}
			er.Codes[c] = n
		}
		out[i] = er
	}
	return out, nil
}

// part is worker w's measurement as a load.Part, with its errors by
// endpoint.
func (t *Task) part(w int, results []*EndpointResult, errs []error) *load.Part {
	p := &load.Part{Worker: w, Endpoints: make([]*load.PartEndpoint, len(results))}
	for i, er := range results {
		pe := &load.PartEndpoint{}
		if errs[i] != nil {
			pe.Error = errs[i].Error()
		}
		p.Endpoints[i] = pe
		if er == nil {
			continue
		}
		pe.Answered, pe.Codes, pe.Failures, pe.Latency = er.Answered, map[string]int64{}, er.Failures, er.Latency
		for code, n := range er.Codes {
			pe.Codes[strconv.Itoa(code)] = n
			pe.Requests += n
			if t.isError(code) {
				pe.Errors += n
			}
		}
		for _, f := range er.Failures {
			pe.Requests += f.Count
			pe.Errors += f.Count
		}
	}
	return p
}

// clearWorkers removes per-worker counts that an earlier loop recorded.
func (t *Task) clearWorkers(r *experiment.Result) {
	for i := range t.Config.Endpoints {
		r.SetWorkers(t.Config.Endpoints[i].Version, Name, nil)
	}
}

// showProgress draws the load's progress on env.Progress until the returned
// function is called; that function returns once the last line is drawn.
func (t *Task) showProgress(ctx context.Context, env *experiment.Env, recorders []*latencyRecorder, total int64) func() {
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	opts := progress.Options{
		Label:    Name,
		Total:    total,
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

// load runs the warmup (warmup requests, or WarmupDuration), then the
// measured load (n requests, or d), on one endpoint.
func (t *Task) load(ctx context.Context, ep *Endpoint, n, warmup int64, d time.Duration, rec *latencyRecorder, env *experiment.Env) (*EndpointResult, error) {
	if warmup > 0 || t.Config.WarmupDuration > 0 {
		env.Logger().Info("warming up", "endpoint", ep.Label())
		// Its own recorder, thrown away: warm-up is not measured, but an
		// unreachable endpoint stops it as it would the load.
		if err := t.send(ctx, ep, warmup, t.Config.WarmupDuration, t.newRecorder(ep, rec.start, rec.stopLoad)); err != nil {
			return nil, fmt.Errorf("warmup: %w", err)
		}
	}
	env.Logger().Info("sending load", "endpoint", ep.Label(), "qps", qpsLabel(ep.QPS), "connections", ep.Connections)
	err := t.send(ctx, ep, n, d, rec)
	return rec.result(ep), err
}

func qpsLabel(q float64) string {
	if q == 0 {
		return "max"
	}
	return fmt.Sprint(q)
}

// send runs fortio's periodic runner, which paces the requests, with one
// h1client per thread, which sends them and reads every response whole.
// The runner's output goes nowhere and its Stop is ours, so that it neither
// prints nor installs a process-wide signal handler.
func (t *Task) send(ctx context.Context, ep *Endpoint, n int64, d time.Duration, rec *latencyRecorder) error {
	if err := ctx.Err(); err != nil {
		return err
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
	runner := periodic.NewPeriodicRunner(&periodic.RunnerOptions{
		QPS:          qps,
		NumThreads:   threads,
		Exactly:      n,
		Duration:     d,
		Out:          io.Discard,
		Stop:         aborter,
		AccessLogger: rec,
		Percentiles:  []float64{50},
	})
	opts := runner.Options()
	clients := make([]*h1client.Client, opts.NumThreads)
	defer func() {
		for _, c := range clients {
			if c != nil {
				c.Close()
			}
		}
	}()
	for i := range clients {
		c, err := h1client.New(ctx, h1client.Options{
			URL:         ep.URL,
			Method:      ep.Method,
			Header:      ep.Headers,
			UserAgent:   "iter8",
			Body:        ep.Payload,
			ContentType: contentType(ep),
			Timeout:     t.Config.Timeout,
		})
		if err != nil {
			opts.Abort()
			return fmt.Errorf("start load: %w", err)
		}
		clients[i] = c
		opts.Runners[i] = &loadThread{client: c, rec: &rec.threads[i]}
	}
	stop := context.AfterFunc(ctx, func() { aborter.Abort(false) })
	defer stop()
	runner.Run()
	return nil
}

// contentType is the endpoint's, or for a payload without one the generic
// type for bytes.
func contentType(ep *Endpoint) string {
	if ep.ContentType == "" && len(ep.Payload) > 0 {
		return "application/octet-stream"
	}
	return ep.ContentType
}

// loadThread is one load thread: fortio calls its Run, then the recorder's
// Report, in the thread's own goroutine, so the outcome passes between
// them through the thread's recorder without a lock.
type loadThread struct {
	client *h1client.Client
	rec    *threadRecorder
}

// Run implements periodic.Runnable.
func (l *loadThread) Run(context.Context, periodic.ThreadID) (bool, string) {
	r := l.client.Do()
	l.rec.last = r
	return r.Err == nil && r.Status < 400, ""
}

// record writes the version and endpoint metrics.
func (t *Task) record(r *experiment.Result, results []*EndpointResult) error {
	measured := make([]*load.Measured, len(results))
	for i, er := range results {
		if er == nil {
			continue
		}
		m := &load.Measured{Target: er.Endpoint.Target, Latency: er.Latency, Failures: er.Failures}
		for code, n := range er.Codes {
			m.Requests += n
			if t.isError(code) {
				m.Errors += n
			}
		}
		for _, f := range er.Failures {
			m.Requests += f.Count
			m.Errors += f.Count
		}
		measured[i] = m
	}
	return load.Record(r, Name, measured, t.Config.Percentiles)
}

func (t *Task) isError(code int) bool {
	for _, r := range t.Config.ErrorRanges {
		if r.Contains(code) {
			return true
		}
	}
	return false
}

// logFailures writes one line per endpoint whose requests failed without a
// response, with how many failed in which way.
func (t *Task) logFailures(env *experiment.Env, results []*EndpointResult) {
	for _, er := range results {
		if er == nil || len(er.Failures) == 0 {
			continue
		}
		var failed int64
		kinds := make([]string, len(er.Failures))
		for i, f := range er.Failures {
			failed += f.Count
			kinds[i] = fmt.Sprintf("%d %s (%s)", f.Count, f.Kind, f.Example)
		}
		env.Logger().Warn("requests failed", "endpoint", er.Endpoint.Label(), "failed", failed, "why", strings.Join(kinds, "; "))
	}
}

// checkResponses fails the task for an endpoint where no request got any
// response at all: that is an unreachable target, not a measurement.
func checkResponses(results []*EndpointResult) error {
	var errs []error
	for _, er := range results {
		if er == nil {
			continue // its load never started; that error is reported
		}
		var failed int64
		for _, f := range er.Failures {
			failed += f.Count
		}
		switch {
		case er.Answered > 0:
		case failed == 0:
			errs = append(errs, fmt.Errorf("%s: no request was sent", er.Endpoint.Label()))
		default:
			errs = append(errs, fmt.Errorf("%s: none of %d requests got a response (%s: %s)",
				er.Endpoint.Label(), failed, er.Failures[0].Kind, er.Failures[0].Example))
		}
	}
	return errors.Join(errs...)
}

// latencyRecorder is fortio's per-request hook for one endpoint: fortio
// calls it from every load thread at once, so each thread has its own
// histogram and counters and no lock is taken on the hot path.
type latencyRecorder struct {
	threads []threadRecorder
	isError func(code int) bool
	// connectFailures counts connection attempts that failed since the last
	// response; at unreachableAt the whole task's load stops.
	connectFailures atomic.Int64
	unreachableAt   int64
	label           string
	start           time.Time
	stopLoad        context.CancelCauseFunc
}

// threadRecorder is one load thread's share. The counters are read by the
// progress display while the thread writes them; the padding keeps threads
// off each other's cache lines.
type threadRecorder struct {
	latency  *stats.Recorder
	requests atomic.Int64
	errors   atomic.Int64
	// last is the outcome of the request that Report is about to record.
	last     h1client.Response
	codes    map[int]int64
	failures map[h1client.Kind]*experiment.RequestFailure
	answered int64
	_        [48]byte
}

func (t *Task) newRecorder(ep *Endpoint, start time.Time, stopLoad context.CancelCauseFunc) *latencyRecorder {
	l := &latencyRecorder{
		threads:       make([]threadRecorder, ep.Connections),
		isError:       t.isError,
		unreachableAt: max(unreachableAfter, int64(ep.Connections)),
		label:         ep.Label(),
		start:         start,
		stopLoad:      stopLoad,
	}
	for i := range l.threads {
		l.threads[i].latency = stats.NewRecorder(2*t.Config.Timeout, start)
		l.threads[i].codes = map[int]int64{}
		l.threads[i].failures = map[h1client.Kind]*experiment.RequestFailure{}
	}
	return l
}

// Start implements periodic.AccessLogger.
func (l *latencyRecorder) Start(ctx context.Context, _ periodic.ThreadID, _ int64, _ time.Time) context.Context {
	return ctx
}

// Report implements periodic.AccessLogger: it records the outcome that the
// thread's Run left, with the latency that fortio measured around it.
func (l *latencyRecorder) Report(_ context.Context, thread periodic.ThreadID, _ int64, started time.Time, latency float64, _ bool, _ string) {
	if int(thread) < 0 || int(thread) >= len(l.threads) {
		return // fortio numbers threads from 0 up to the ones we made
	}
	r := &l.threads[thread]
	out := r.last
	if out.Err != nil && out.Err.Kind == h1client.Interrupted {
		return // cut short by the end of the load: not a measurement
	}
	r.latency.Record(started, time.Duration(latency*float64(time.Second)), out.Err != nil || l.isError(out.Status))
	r.requests.Add(1)
	if out.Status != 0 {
		r.answered++
	}
	if out.Err == nil {
		r.codes[out.Status]++
		if l.isError(out.Status) {
			r.errors.Add(1)
		}
		if l.connectFailures.Load() != 0 {
			l.connectFailures.Store(0)
		}
		return
	}
	r.errors.Add(1)
	f := r.failures[out.Err.Kind]
	if f == nil {
		f = &experiment.RequestFailure{Kind: out.Err.Kind.String(), Example: out.Err.Err.Error()}
		r.failures[out.Err.Kind] = f
	}
	f.Count++
	switch {
	case out.Err.Kind != h1client.Connect:
		if out.Status != 0 && l.connectFailures.Load() != 0 {
			l.connectFailures.Store(0)
		}
	case l.connectFailures.Add(1) == l.unreachableAt:
		l.stopLoad(&unreachableError{endpoint: l.label, attempts: l.unreachableAt, last: out.Err})
	}
}

// Info implements periodic.AccessLogger.
func (l *latencyRecorder) Info() string { return "iter8 latency histograms" }

// progress sums the counters of all threads.
func (l *latencyRecorder) progress() progress.Snapshot {
	var s progress.Snapshot
	for i := range l.threads {
		s.Requests += l.threads[i].requests.Load()
		s.Errors += l.threads[i].errors.Load()
	}
	return s
}

// result merges the threads' latencies, codes and failures; call it once
// the load is over.
func (l *latencyRecorder) result(ep *Endpoint) *EndpointResult {
	total := l.threads[0].latency
	out := &EndpointResult{Endpoint: ep, Codes: map[int]int64{}}
	for i := range l.threads {
		th := &l.threads[i]
		if i > 0 {
			total.Merge(th.latency)
		}
		for code, n := range th.codes {
			out.Codes[code] += n
		}
		out.Answered += th.answered
		for _, kind := range slices.Sorted(maps.Keys(th.failures)) {
			out.Failures = load.MergeFailures(out.Failures, []experiment.RequestFailure{*th.failures[kind]})
		}
	}
	out.Latency = total.Histogram()
	return out
}

// Workers implements experiment.Spreader.
func (t *Task) Workers() int { return max(t.Config.Workers, 1) }
