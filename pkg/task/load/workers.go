package load

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/iter8-tools/iter8/pkg/experiment"
	"github.com/iter8-tools/iter8/pkg/stats"
)

// MaxWorkers is the most workers one load task may spread its load over:
// in a cluster, each is a Pod of an Indexed Job that writes its part as a
// Secret of its own, and the experiment's Pod reads and merges them all
// (README: "Load from many Pods" has the size plan).
const MaxWorkers = 1000

// MaxProcessWorkers is the most workers in one process (a local run, or a
// cluster run not given Pods for them): each has its own connections and
// histograms (some 200 KB per connection), so more would cost memory and
// sockets for no more load than one process can send.
const MaxProcessWorkers = 100

// CheckProcessWorkers refuses more workers than one process runs.
func CheckProcessWorkers(workers int) error {
	if workers > MaxProcessWorkers {
		return fmt.Errorf("workers: %d in one process, at most %d: run the experiment in a cluster (charts/iter8), where each worker is a Pod, or use fewer workers", workers, MaxProcessWorkers)
	}
	return nil
}

// Failed tells whether the worker or one of its endpoints' loads failed.
func (p *Part) Failed() bool {
	if p.Error != "" {
		return true
	}
	for _, e := range p.Endpoints {
		if e != nil && e.Error != "" {
			return true
		}
	}
	return false
}

// Err is the part's failures as one error naming the worker, or nil.
func (p *Part) Err() error {
	var msgs []string
	if p.Error != "" {
		msgs = append(msgs, p.Error)
	}
	for _, e := range p.Endpoints {
		if e != nil && e.Error != "" && !strings.Contains(p.Error, e.Error) {
			msgs = append(msgs, e.Error)
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	text := strings.Join(msgs, "; ")
	if prefix := fmt.Sprintf("worker %d: ", p.Worker); !strings.HasPrefix(text, prefix) {
		text = prefix + text
	}
	return errors.New(text)
}

// putTimeout bounds storing a part once the load is over, also after an
// interrupt: what was measured is kept if it can be.
const putTimeout = 30 * time.Second

// Remaining is what is left of a load's duration (0: none, a count of
// requests instead) for a worker that was to begin stagger after start
// and begins now: all workers end together, also one whose Pod started
// late. It is false when the window has ended: the worker sends nothing.
func Remaining(duration time.Duration, start time.Time, stagger time.Duration) (time.Duration, bool) {
	if duration <= 0 {
		return 0, true
	}
	d := duration - max(stagger, time.Since(start))
	return d, d > 0
}

// WorkerDone puts a worker's part. A worker whose load failed has done its
// part once the part, which says why, is stored: the run fails the task
// naming it, and a retry would only send the share again. It fails (so
// that its Pod is retried) when interrupted or when the part could not be
// stored.
func WorkerDone(ctx context.Context, env *experiment.Env, role *experiment.WorkerRole, part *Part) error {
	putErr := PutPart(ctx, role, part)
	if err := ctx.Err(); err != nil {
		return errors.Join(err, putErr)
	}
	if putErr == nil && part.Failed() {
		env.Logger().Warn("the worker's load failed; its part, which says why, is stored", "error", part.Err().Error())
	}
	return putErr
}

// PutPart stores part through role.
func PutPart(ctx context.Context, role *experiment.WorkerRole, part *Part) error {
	data, err := json.Marshal(part)
	if err != nil {
		return fmt.Errorf("worker %d: encode its part: %w", part.Worker, err)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), putTimeout)
	defer cancel()
	if err := role.Put(ctx, data); err != nil {
		return fmt.Errorf("worker %d: store its part: %w", part.Worker, err)
	}
	return nil
}

// RunPool has env.Workers run workers of the running task and decodes
// their parts, checked against endpoints. Every worker gets a part: one
// with no part of its own (it failed, or stored none) gets an empty one
// holding why, so that the result lists it; the error names every worker
// that failed.
func RunPool(ctx context.Context, env *experiment.Env, workers, endpoints int) ([]*Part, error) {
	out, runErr := env.Workers.Run(ctx, experiment.Work{Task: env.Task, Loop: env.Result.Loop, Workers: workers, Log: env.Logger()})
	errs := []error{runErr}
	if runErr == nil && len(out) != workers {
		errs = append(errs, fmt.Errorf("workers: the pool ran %d workers, want %d", len(out), workers))
	}
	var parts []*Part
	for w, o := range out[:min(len(out), workers)] {
		p, err := decodePart(w, o, endpoints)
		if err != nil {
			errs = append(errs, err)
			p = &Part{Worker: w, Endpoints: make([]*PartEndpoint, endpoints), Error: err.Error()}
		} else if err := p.Err(); err != nil {
			errs = append(errs, err)
		}
		parts = append(parts, p)
	}
	return parts, errors.Join(errs...)
}

// decodePart is worker w's part from its outcome.
func decodePart(w int, o experiment.WorkerOutcome, endpoints int) (*Part, error) {
	if o.Err != nil {
		return nil, o.Err
	}
	if o.Part == nil {
		return nil, fmt.Errorf("worker %d has no part", w)
	}
	p := &Part{}
	switch err := json.Unmarshal(o.Part, p); {
	case err != nil:
		return nil, fmt.Errorf("worker %d: its part is not a part: %w", w, err)
	case p.Worker != w:
		return nil, fmt.Errorf("worker %d: its part is worker %d's", w, p.Worker)
	case len(p.Endpoints) != endpoints:
		return nil, fmt.Errorf("worker %d: its part has %d endpoints, want %d", w, len(p.Endpoints), endpoints)
	}
	return p, nil
}

// Share is worker i's part (from 0) of n: the quotient, and one more for
// each of the first n mod workers, so that the shares add up to n.
func Share(n int64, workers, i int) int64 {
	w := int64(workers)
	s := n / w
	if int64(i) < n%w {
		s++
	}
	return s
}

// Stagger is how long worker w waits before its load at rate (all
// workers' together; 0 is as fast as possible, without a wait), so that
// the workers' requests interleave rather than all start at once: w/rate.
func Stagger(rate float64, w int) time.Duration {
	if rate <= 0 {
		return 0
	}
	return time.Duration(float64(w) / rate * float64(time.Second))
}

// Part is what one worker of a load task measured, per endpoint in the
// task's order: counts and histograms, never percentiles, so that parts
// merge exactly (the time blocks' float sums of milliseconds to the
// rounding of their additions), whichever order they come in.
type Part struct {
	Worker    int             `json:"worker"`
	Endpoints []*PartEndpoint `json:"endpoints"`
	// Error is the worker's own failure apart from its endpoints', if any.
	Error string `json:"error,omitempty"`
}

// PartEndpoint is one endpoint's share of a Part.
type PartEndpoint struct {
	Requests int64 `json:"requests"`
	Errors   int64 `json:"errors"`
	// Answered counts requests that got a response (a status line, a
	// status code), erroneous or not.
	Answered int64 `json:"answered"`
	// Codes counts responses by status (an HTTP code, a gRPC code name).
	Codes map[string]int64 `json:"codes,omitempty"`
	// Kept counts the requests whose latencies Latency holds, when a load
	// generator keeps fewer than all.
	Kept     int64                       `json:"kept,omitempty"`
	Failures []experiment.RequestFailure `json:"failures,omitempty"`
	Latency  *stats.Histogram            `json:"latency,omitempty"`
	// Error is why the worker's load on the endpoint failed; what it
	// measured before is kept.
	Error string `json:"error,omitempty"`
}

// MergeParts adds the parts' endpoints together, endpoint by endpoint; each
// part must have endpoints entries (nil ones, and ones that only hold an
// error, are loads that never started). An endpoint no part measured is
// nil in the result. Each worker's part comes once: whoever collects
// parts keeps one per worker, the last.
func MergeParts(parts []*Part, endpoints int) ([]*PartEndpoint, error) {
	out := make([]*PartEndpoint, endpoints)
	latencies := make([][]*stats.Histogram, endpoints)
	seen := map[int]bool{}
	for _, p := range parts {
		if seen[p.Worker] {
			return nil, fmt.Errorf("merge: worker %d's part appears twice", p.Worker)
		}
		seen[p.Worker] = true
		if p.Worker < 0 {
			return nil, fmt.Errorf("merge: worker %d: a worker's index is not negative", p.Worker)
		}
		if len(p.Endpoints) != endpoints {
			return nil, fmt.Errorf("merge: worker %d's part has %d endpoints, want %d", p.Worker, len(p.Endpoints), endpoints)
		}
		for i, e := range p.Endpoints {
			switch {
			case e == nil || e.Requests == 0 && e.Latency == nil:
				continue
			case e.Latency == nil:
				return nil, fmt.Errorf("merge: worker %d, endpoint %d: %d requests without their latencies", p.Worker, i, e.Requests)
			}
			m := out[i]
			if m == nil {
				m = &PartEndpoint{Codes: map[string]int64{}}
				out[i] = m
			}
			m.Requests += e.Requests
			m.Errors += e.Errors
			m.Answered += e.Answered
			m.Kept += e.Kept
			for _, code := range slices.Sorted(maps.Keys(e.Codes)) {
				m.Codes[code] += e.Codes[code]
			}
			m.Failures = MergeFailures(m.Failures, e.Failures)
			latencies[i] = append(latencies[i], e.Latency)
		}
	}
	for i, m := range out {
		if m == nil || len(latencies[i]) == 0 {
			continue
		}
		h, err := stats.MergeHistograms(latencies[i]...)
		if err != nil {
			return nil, fmt.Errorf("merge: endpoint %d: %w", i, err)
		}
		m.Latency = h
	}
	return out, nil
}

// RecordWorkers records in r what each worker of parts sent to each
// version of endpoints (see WorkerCounts) under the load's family.
func RecordWorkers[E endpoint](r *experiment.Result, family string, parts []*Part, endpoints []E) {
	targets := make([]Target, len(endpoints))
	for i, e := range endpoints {
		targets[i] = e.target()
	}
	for v, counts := range WorkerCounts(parts, targets) {
		r.SetWorkers(v, family, counts)
	}
}

// Wait waits d (a worker's Stagger), or until ctx ends.
func Wait(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}

// WorkerCounts are each worker's requests and errors on the endpoints of
// each version, with the worker's errors on them, for the result
// (experiment.Result.SetWorkers). Every version of targets gets a row per
// worker, a worker that sent nothing included.
func WorkerCounts(parts []*Part, targets []Target) map[string][]experiment.WorkerCount {
	out := map[string][]experiment.WorkerCount{}
	for _, p := range parts {
		byVersion := map[string]*experiment.WorkerCount{}
		var order []string
		for i, t := range targets {
			v := t.Version
			c := byVersion[v]
			if c == nil {
				c = &experiment.WorkerCount{Worker: p.Worker, Error: p.Error}
				byVersion[v] = c
				order = append(order, v)
			}
			if i >= len(p.Endpoints) || p.Endpoints[i] == nil {
				continue
			}
			e := p.Endpoints[i]
			c.Requests += e.Requests
			c.Errors += e.Errors
			if e.Error != "" {
				c.Error = strings.TrimPrefix(c.Error+"; "+e.Error, "; ")
			}
		}
		for _, v := range order {
			out[v] = append(out[v], *byVersion[v])
		}
	}
	for v := range out {
		slices.SortFunc(out[v], func(a, b experiment.WorkerCount) int { return a.Worker - b.Worker })
	}
	return out
}
