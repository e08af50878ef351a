package load

import (
	"fmt"
	"maps"
	"slices"

	"github.com/iter8-tools/iter8/pkg/experiment"
	"github.com/iter8-tools/iter8/pkg/stats"
)

// MaxWorkers is the most workers one load task may spread its load over
// (README's size plan: parts of about 10 KB each stay far below the API
// server's request limits at this count).
const MaxWorkers = 1000

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

// Part is what one worker of a load task measured, per endpoint in the
// task's order: counts and histograms, never percentiles, so that parts
// merge exactly, whichever order they come in.
type Part struct {
	Worker    int             `json:"worker"`
	Endpoints []*PartEndpoint `json:"endpoints"`
	// Error is the worker's own failure, if any; what it measured before
	// it is kept.
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
	// generator keeps fewer than all (ghz keeps at most 10^6 calls').
	Kept     int64                       `json:"kept,omitempty"`
	Failures []experiment.RequestFailure `json:"failures,omitempty"`
	Latency  *stats.Histogram            `json:"latency,omitempty"`
}

// MergeParts adds the parts' endpoints together, endpoint by endpoint; each
// part must have endpoints entries (nil ones, a load that never started,
// are skipped). An endpoint no part measured is nil in the result.
func MergeParts(parts []*Part, endpoints int) ([]*PartEndpoint, error) {
	out := make([]*PartEndpoint, endpoints)
	latencies := make([][]*stats.Histogram, endpoints)
	seen := map[int]bool{}
	for _, p := range parts {
		if seen[p.Worker] {
			return nil, fmt.Errorf("merge: worker %d's part appears twice", p.Worker)
		}
		seen[p.Worker] = true
		if len(p.Endpoints) != endpoints {
			return nil, fmt.Errorf("merge: worker %d's part has %d endpoints, want %d", p.Worker, len(p.Endpoints), endpoints)
		}
		for i, e := range p.Endpoints {
			if e == nil {
				continue
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
			if e.Latency != nil {
				latencies[i] = append(latencies[i], e.Latency)
			}
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

// WorkerCounts are each worker's requests and errors on the endpoints of
// each version, for the result (experiment.Result.SetWorkers).
func WorkerCounts(parts []*Part, targets []Target) map[string][]experiment.WorkerCount {
	out := map[string][]experiment.WorkerCount{}
	for _, p := range parts {
		byVersion := map[string]*experiment.WorkerCount{}
		var order []string
		for i, e := range p.Endpoints {
			if e == nil || i >= len(targets) {
				continue
			}
			v := targets[i].Version
			c := byVersion[v]
			if c == nil {
				c = &experiment.WorkerCount{Worker: p.Worker, Error: p.Error}
				byVersion[v] = c
				order = append(order, v)
			}
			c.Requests += e.Requests
			c.Errors += e.Errors
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
