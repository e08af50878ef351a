package grpc

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/iter8-tools/iter8/pkg/experiment"
	"github.com/iter8-tools/iter8/pkg/stats"
	"github.com/iter8-tools/iter8/pkg/task/load"
)

// Task is the decoded grpc task.
type Task struct {
	Config Config
}

// statusOK is how gRPC names the status of a call that succeeded.
const statusOK = "OK"

// EndpointResult is what the load on one endpoint measured.
type EndpointResult struct {
	Endpoint *Endpoint
	// Calls is the number of calls that ended, successful or not.
	Calls int64
	// Codes counts calls by status code name (OK, Unavailable, ...); ""
	// counts errors without a gRPC status.
	Codes map[string]int
	// Errors counts calls by error text.
	Errors map[string]int
	// Latency holds the latencies of the Kept calls: all of them.
	Latency *stats.Histogram
	Kept    int64
}

// Run sends the load to every endpoint at once, so that versions are
// measured under the same conditions, and records the metrics per version.
// With workers, each worker loads every endpoint with its share, in this
// process or, given a pool, in Pods of their own; what they measured is
// merged from their parts. Given a worker role, it sends that worker's
// share only and puts its part.
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
	// Every endpoint's time blocks count from here, so that versions can be
	// compared block by block, and the blocks of workers merge.
	ws := make([]int, workers)
	for w := range ws {
		ws[w] = w
	}
	measured, loadErrs, loadErr := t.measure(ctx, env, time.Now(), ws)
	results := measured[0]
	t.clearWorkers(env.Result)
	var mergeErr error
	if workers > 1 {
		results, mergeErr = t.mergeParts(env.Result, t.parts(measured, loadErrs))
	}
	return t.finish(ctx, env, results, cmp.Or(loadErr, mergeErr))
}

// finish records whatever was measured, even on failure or cancellation,
// and returns the task's error.
func (t *Task) finish(ctx context.Context, env *experiment.Env, results []*EndpointResult, loadErr error) error {
	recordErr := t.record(env.Result, results)
	if err := cmp.Or(loadErr, recordErr, ctx.Err()); err != nil {
		return err
	}
	return checkCalls(results)
}

// clearWorkers removes per-worker counts that an earlier loop recorded.
func (t *Task) clearWorkers(r *experiment.Result) {
	for i := range t.Config.Endpoints {
		r.SetWorkers(t.Config.Endpoints[i].Version, Name, nil)
	}
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
	env.Logger().Info("sending gRPC load from worker pods", "workers", t.Config.Workers)
	parts, err := load.RunPool(ctx, env, t.Config.Workers, len(t.Config.Endpoints))
	results, mergeErr := t.mergeParts(env.Result, parts)
	return t.finish(ctx, env, results, cmp.Or(err, mergeErr))
}

// measure runs the workers ws (of Config.Workers; all of them in one
// process, or one in a worker's own) with their time blocks counted from
// start, and returns what each measured on each endpoint and each one's
// errors, with the first error.
func (t *Task) measure(ctx context.Context, env *experiment.Env, start time.Time, ws []int) ([][]*EndpointResult, [][]error, error) {
	workers := max(t.Config.Workers, 1)
	eps := t.Config.Endpoints
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
			// Workers start in turn from start, so that their calls
			// interleave; each ends with the others.
			stagger := load.Stagger(eps[i].RPS, w)
			g.Go(func() (err error) {
				if err = load.Wait(ctx, time.Until(start.Add(stagger))); err == nil {
					// A worker's Pod that starts late ends with the others.
					d, ok := load.Remaining(t.Config.Duration, start, stagger)
					if !ok && workers > 1 {
						wenv.Logger().Warn("started after the load's window ended: sends nothing", "endpoint", eps[i].Label())
						return nil
					}
					wt := t.share(w, d)
					measured[k][i], err = wt.load(ctx, wt.endpointShare(&eps[i]), wenv, start)
				}
				if err != nil {
					err = fmt.Errorf("%s: %w", eps[i].Label(), err)
					if workers > 1 {
						err = fmt.Errorf("worker %d: %w", w, err)
					}
				}
				loadErrs[k][i] = err
				return err
			})
		}
	}
	return measured, loadErrs, g.Wait()
}

// share is worker w's copy of the task: its part of Total, and d of the
// Duration (load.Remaining).
func (t *Task) share(w int, d time.Duration) *Task {
	if t.Config.Workers <= 1 {
		return t
	}
	s := &Task{Config: t.Config}
	s.Config.Total = load.Share(t.Config.Total, t.Config.Workers, w)
	s.Config.Duration = d
	return s
}

// endpointShare is a worker's copy of endpoint ep: its part of the rate.
func (t *Task) endpointShare(ep *Endpoint) *Endpoint {
	if t.Config.Workers <= 1 {
		return ep
	}
	s := *ep
	s.RPS = ep.RPS / float64(t.Config.Workers)
	return &s
}

// parts turns each worker's results and errors into its part. A call's
// error texts travel as the parts' failures, by text.
func (t *Task) parts(measured [][]*EndpointResult, loadErrs [][]error) []*load.Part {
	parts := make([]*load.Part, len(measured))
	for w, results := range measured {
		parts[w] = t.part(w, results, loadErrs[w])
	}
	return parts
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
		pe.Requests, pe.Errors, pe.Answered = er.Calls, er.Calls-int64(er.Codes[statusOK]), er.Calls-int64(er.Codes[""])
		pe.Kept, pe.Codes, pe.Latency = er.Kept, map[string]int64{}, er.Latency
		for code, n := range er.Codes {
			pe.Codes[code] = int64(n)
		}
		for _, text := range slices.Sorted(maps.Keys(er.Errors)) {
			pe.Failures = append(pe.Failures, experiment.RequestFailure{Kind: text, Count: int64(er.Errors[text])})
		}
	}
	return p
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
		er := &EndpointResult{Endpoint: &t.Config.Endpoints[i], Calls: m.Requests, Kept: m.Kept, Latency: m.Latency,
			Codes: map[string]int{}, Errors: map[string]int{}}
		for code, n := range m.Codes {
			er.Codes[code] = int(n)
		}
		for _, f := range m.Failures {
			er.Errors[f.Kind] = int(f.Count)
		}
		out[i] = er
	}
	return out, nil
}

// load sends the calls of one endpoint until it has made them all, its
// duration has passed or ctx is done. Each of the endpoint's Concurrency
// workers makes one call at a time over its share of the Connections
// connections, and records what it measured in one of a few shards.
func (t *Task) load(ctx context.Context, ep *Endpoint, env *experiment.Env, start time.Time) (*EndpointResult, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	conns := make([]*grpc.ClientConn, ep.Connections)
	defer func() {
		for _, cc := range conns {
			if cc != nil {
				cc.Close()
			}
		}
	}()
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(transportCredentials(t.Config.TLS)),
		// Messages of any size, as ghz allowed: grpc-go's default
		// refuses answers above 4 MiB.
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(math.MaxInt32), grpc.MaxCallSendMsgSize(math.MaxInt32)),
	}
	for i := range conns {
		// passthrough: the host is dialled as written, as ghz did,
		// rather than resolved once into addresses.
		cc, err := grpc.NewClient("passthrough:///"+ep.Host, opts...)
		if err != nil {
			return nil, fmt.Errorf("connect: %w", err)
		}
		conns[i] = cc
	}
	c, err := t.prepare(ctx, ep, conns[0])
	if err != nil {
		return nil, err
	}

	rps := "max"
	if ep.RPS != 0 {
		rps = fmt.Sprint(ep.RPS)
	}
	env.Logger().Info("sending gRPC load", "endpoint", ep.Label(), "rps", rps,
		"concurrency", ep.Concurrency, "connections", ep.Connections)
	sched := &schedule{start: time.Now(), rate: ep.RPS, total: t.Config.Total, duration: t.Config.Duration}
	shards := make([]*shard, min(ep.Concurrency, maxShards))
	for i := range shards {
		// The highest trackable latency is above the call timeout, so
		// that calls that time out are still recorded.
		shards[i] = &shard{rec: stats.NewRecorder(2*t.Config.Timeout, start), codes: map[string]int{}, errors: map[string]int{}}
	}
	var wg sync.WaitGroup
	for w := range ep.Concurrency {
		cc, sh := conns[w%len(conns)], shards[w%len(shards)]
		id := fmt.Sprintf("g%dc%d", w%len(conns), w)
		wg.Go(func() {
			var timer *time.Timer
			for {
				n, ok := sched.take(ctx, &timer)
				if !ok {
					return
				}
				callCtx, cancel := context.WithTimeout(ctx, t.Config.Timeout)
				began := time.Now()
				err := c.call(callCtx, cc, id, n)
				took := time.Since(began)
				cancel()
				if err != nil && ctx.Err() != nil {
					return // cut short by the cancel: not measured
				}
				sh.record(began, took, err)
			}
		})
	}
	wg.Wait()
	return t.result(ep, shards), nil
}

// maxShards bounds the recorders of an endpoint: enough that workers seldom
// wait for each other's lock, few enough that their histograms stay small.
const maxShards = 8

// shard is what some of an endpoint's workers measured.
type shard struct {
	mu     sync.Mutex
	rec    *stats.Recorder
	calls  int64
	codes  map[string]int
	errors map[string]int
}

func (s *shard) record(began time.Time, took time.Duration, err error) {
	code, text := statusOK, ""
	if err != nil {
		text = err.Error()
		code = ""
		if st, ok := status.FromError(err); ok {
			code = st.Code().String()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	s.codes[code]++
	if text != "" {
		addError(s.errors, text, 1)
	}
	s.rec.Record(began, took, err != nil)
}

// maxErrorTexts bounds the distinct error texts kept per endpoint: texts
// that quote a request ID would otherwise grow with the calls.
const maxErrorTexts = 100

// otherErrors counts the errors whose texts are not kept.
const otherErrors = "other errors (their texts are not kept beyond 100 distinct ones)"

// addError counts n errors with text in errs, under otherErrors once errs
// holds maxErrorTexts texts.
func addError(errs map[string]int, text string, n int) {
	if _, ok := errs[text]; !ok && len(errs) >= maxErrorTexts {
		text = otherErrors
	}
	errs[text] += n
}

// prepare finds the endpoint's method, in the protoset or by server
// reflection over cc, and prepares its calls.
func (t *Task) prepare(ctx context.Context, ep *Endpoint, cc *grpc.ClientConn) (*caller, error) {
	svc, _, _ := strings.Cut(ep.Call, "/")
	var files *protoregistry.Files
	var err error
	if t.Config.Protoset != nil {
		files, err = filesOf(t.Config.Protoset)
	} else {
		// Reflection is bounded by the call timeout, as ghz bounded it,
		// and carries the endpoint's metadata, which a server may need
		// (templates expanded as for a first call).
		rctx, cancel := context.WithTimeout(ctx, t.Config.Timeout)
		if md := reflectionMetadata(ep.Metadata); md != nil {
			rctx = metadata.NewOutgoingContext(rctx, md)
		}
		files, err = reflectFiles(rctx, cc, svc)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("prepare the calls with server reflection: %s", describe(err))
		}
	}
	if err != nil {
		return nil, fmt.Errorf("prepare the calls: %w", err)
	}
	md, err := findMethod(files, ep.Call)
	if err == nil {
		var c *caller
		if c, err = newCaller(md, ep); err == nil {
			return c, nil
		}
	}
	if t.Config.Protoset == nil {
		return nil, fmt.Errorf("prepare the calls with server reflection: %w", err)
	}
	return nil, fmt.Errorf("prepare the calls: %w", err)
}

// reflectionMetadata is the metadata sent with reflection requests: the
// endpoint's, with templates expanded as for a first call; entries that
// cannot be sent are left out.
func reflectionMetadata(md map[string]string) metadata.MD {
	out := metadata.MD{}
	for k, v := range md {
		if templated(map[string]string{k: v}) {
			ek, err := expandSample(k, nil)
			ev, verr := expandSample(v, nil)
			if err != nil || verr != nil {
				continue
			}
			k, v = string(ek), string(ev)
		}
		if m, err := outgoing(map[string]string{k: v}); err == nil {
			for mk, mv := range m {
				out.Append(mk, mv...)
			}
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// templated reports whether metadata holds template actions, such as
// {{.RequestNumber}}.
func templated(md map[string]string) bool {
	for k, v := range md {
		if strings.Contains(k, "{{") || strings.Contains(v, "{{") {
			return true
		}
	}
	return false
}

// result merges the shards of an endpoint's load.
func (t *Task) result(ep *Endpoint, shards []*shard) *EndpointResult {
	out := &EndpointResult{Endpoint: ep, Codes: map[string]int{}, Errors: map[string]int{}}
	rec := shards[0].rec
	for i, s := range shards {
		out.Calls += s.calls
		for k, n := range s.codes {
			out.Codes[k] += n
		}
		for k, n := range s.errors {
			addError(out.Errors, k, n)
		}
		if i > 0 {
			rec.Merge(s.rec)
		}
	}
	out.Kept = out.Calls
	out.Latency = rec.Histogram()
	return out
}

// record writes the version and endpoint metrics.
func (t *Task) record(r *experiment.Result, results []*EndpointResult) error {
	measured := make([]*load.Measured, len(results))
	for i, er := range results {
		if er == nil {
			continue
		}
		measured[i] = &load.Measured{
			Target:   er.Endpoint.Target,
			Requests: er.Calls,
			Errors:   er.Calls - int64(er.Codes[statusOK]),
			Latency:  er.Latency,
		}
	}
	return load.Record(r, Name, measured, t.Config.Percentiles)
}

// checkCalls fails the task for an endpoint that could not be reached: no
// call succeeded and every one failed with Unavailable (see Errors in the
// package documentation).
func checkCalls(results []*EndpointResult) error {
	var errs []error
	for _, er := range results {
		switch {
		case er.Codes[statusOK] > 0:
			continue
		case er.Calls == 0:
			errs = append(errs, fmt.Errorf("%s: no call was made", er.Endpoint.Label()))
		case int64(er.Codes["Unavailable"]) == er.Calls:
			errs = append(errs, fmt.Errorf("%s: none of %d calls succeeded, all Unavailable: %s",
				er.Endpoint.Label(), er.Calls, commonError(er.Errors)))
		}
	}
	return errors.Join(errs...)
}

// describe words an error: a gRPC status as "Code: message", and joined
// errors once each, with how often they happened.
func describe(err error) string {
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	counts := map[string]int{}
	var order []string
	for _, e := range errs {
		msg := e.Error()
		if s, ok := status.FromError(e); ok {
			msg = s.Code().String() + ": " + s.Message()
		}
		if counts[msg] == 0 {
			order = append(order, msg)
		}
		counts[msg]++
	}
	const shown = 3
	for i, msg := range order[:min(len(order), shown)] {
		if n := counts[msg]; n > 1 {
			order[i] = fmt.Sprintf("%s (%d times)", msg, n)
		}
	}
	if len(order) > shown {
		order = append(order[:shown], fmt.Sprintf("and %d other errors", len(order)-shown))
	}
	return strings.Join(order, "; ")
}

// commonError returns the most frequent error text, without the
// "rpc error: code = Unavailable desc =" that every one repeats.
func commonError(errs map[string]int) string {
	msgs := slices.SortedFunc(maps.Keys(errs), func(a, b string) int {
		return cmp.Or(cmp.Compare(errs[b], errs[a]), cmp.Compare(a, b))
	})
	if len(msgs) == 0 {
		return "no error text"
	}
	_, desc, found := strings.Cut(msgs[0], " desc = ")
	if !found || !strings.HasPrefix(msgs[0], "rpc error: code = ") {
		return msgs[0]
	}
	return desc
}

// Workers implements experiment.Spreader.
func (t *Task) Workers() int { return max(t.Config.Workers, 1) }
