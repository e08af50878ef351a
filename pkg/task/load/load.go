// Package load holds what the load tasks (http, grpc) share, so that they
// check endpoints and report metrics the same way: how endpoints name their
// versions, and how a load's counts and latencies become metrics. It is a
// library for tasks, not a task.
package load

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/iter8-tools/iter8/pkg/experiment"
	"github.com/iter8-tools/iter8/pkg/stats"
)

// Target is an endpoint as the shared checks see it.
type Target struct {
	// Name gives the endpoint metrics of its own (<family>-<name>/...).
	Name    string
	Version string
}

// SingleVersion finds the version of a task's single target (a url or host
// given without endpoints): the version field when set, else the only
// version. what names the target field in messages ("url", "host").
func SingleVersion(p *field.Path, versions []string, version *string, what string) (string, *field.Error) {
	switch {
	case version != nil:
		if !slices.Contains(versions, *version) {
			return "", field.NotSupported(p.Child("version"), *version, versions)
		}
		return *version, nil
	case len(versions) > 1:
		return "", field.Required(p.Child("version"),
			fmt.Sprintf("the experiment has versions %s: name the version of %s, or use endpoints", strings.Join(versions, ", "), what))
	}
	return versions[0], nil
}

// EndpointChecker checks the versions and names of a task's endpoints.
type EndpointChecker struct {
	family     string
	versions   []string
	perVersion map[string]int
	names      map[string]map[string]bool
}

// NewEndpointChecker prepares the checks of all of a task's endpoints;
// family is the metric family (http, grpc).
func NewEndpointChecker(family string, versions []string, targets []Target) *EndpointChecker {
	c := &EndpointChecker{family: family, versions: versions, perVersion: map[string]int{}, names: map[string]map[string]bool{}}
	for _, t := range targets {
		c.perVersion[t.Version]++
	}
	return c
}

// Check checks one endpoint at path p. When ok is false its version is
// unknown and there is no point in checking the rest of it.
func (c *EndpointChecker) Check(p *field.Path, t Target) (ok bool, errs field.ErrorList) {
	if t.Version == "" && len(c.versions) > 1 {
		return false, field.ErrorList{field.Required(p.Child("version"), "one of "+strings.Join(c.versions, ", "))}
	}
	if !slices.Contains(c.versions, t.Version) {
		return false, field.ErrorList{field.NotSupported(p.Child("version"), t.Version, c.versions)}
	}
	if t.Name == "" {
		if c.perVersion[t.Version] > 1 {
			errs = append(errs, field.Required(p.Child("name"),
				fmt.Sprintf("a version with several endpoints needs a name for each (its metrics are %s-<name>/...)", c.family)))
		}
		return true, errs
	}
	if !ValidName(t.Name) {
		errs = append(errs, field.Invalid(p.Child("name"), t.Name, "use letters, digits, '-' and '_' only"))
	}
	if c.names[t.Version] == nil {
		c.names[t.Version] = map[string]bool{}
	}
	if c.names[t.Version][t.Name] {
		errs = append(errs, field.Duplicate(p.Child("name"), t.Name))
	}
	c.names[t.Version][t.Name] = true
	return true, errs
}

// ValidName reports whether s is a usable endpoint name (or HTTP method).
func ValidName(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return s != ""
}

// MetricNames lists the metrics of a load under prefix (http or
// http-<endpoint>).
func MetricNames(prefix string, percentiles []float64) []string {
	names := []string{
		prefix + "/request-count", prefix + "/error-count", prefix + "/error-rate",
		prefix + "/latency-mean", prefix + "/latency-stddev", prefix + "/latency-min", prefix + "/latency-max",
	}
	for _, pc := range percentiles {
		names = append(names, prefix+"/latency-"+experiment.Percentile(pc))
	}
	return names
}

// Declare records in the catalog the metrics that a load on targets
// produces: <family>/... per version, <family>-<name>/... per named target,
// with the evidence behind them: the latency histogram, and the samples of
// error-rate and latency-mean.
func Declare(c *experiment.Catalog, family string, targets []Target, percentiles []float64) {
	declare := func(version, prefix string) {
		for _, m := range MetricNames(prefix, percentiles) {
			c.Add(version, m)
		}
		c.AddEvidence(version, prefix+"/latency", experiment.EvidenceHistogram)
		c.AddEvidence(version, prefix+"/error-rate", string(stats.KindRate))
		c.AddEvidence(version, prefix+"/latency-mean", string(stats.KindMean))
	}
	for _, t := range targets {
		declare(t.Version, family)
		if t.Name != "" {
			declare(t.Version, family+"-"+t.Name)
		}
	}
}

// Measured is what the load on one target measured.
type Measured struct {
	Target   Target
	Requests int64
	Errors   int64
	Latency  *stats.Histogram
	// Failures are the errors without a complete response, by kind; they
	// are counted in Errors too.
	Failures []experiment.RequestFailure
}

// Record writes the metrics of each named target and of each version (all
// its targets together). Nil entries (a load that never started) are
// skipped.
func Record(r *experiment.Result, family string, measured []*Measured, percentiles []float64) error {
	byVersion := map[string][]*Measured{}
	var order []string
	for _, m := range measured {
		if m == nil {
			continue
		}
		v := m.Target.Version
		if _, seen := byVersion[v]; !seen {
			order = append(order, v)
		}
		byVersion[v] = append(byVersion[v], m)
		if m.Target.Name != "" {
			if err := record(r, v, family+"-"+m.Target.Name, m.Requests, m.Errors, m.Latency, percentiles); err != nil {
				return err
			}
			r.SetFailures(v, family+"-"+m.Target.Name, m.Failures)
		}
	}
	for _, v := range order {
		var requests, errs int64
		var failures []experiment.RequestFailure
		hs := make([]*stats.Histogram, 0, len(byVersion[v]))
		for _, m := range byVersion[v] {
			requests += m.Requests
			errs += m.Errors
			hs = append(hs, m.Latency)
			failures = MergeFailures(failures, m.Failures)
		}
		r.SetFailures(v, family, failures)
		merged, err := stats.MergeHistograms(hs...)
		if err != nil {
			return fmt.Errorf("merge latencies of version %q: %w", v, err)
		}
		if err := record(r, v, family, requests, errs, merged, percentiles); err != nil {
			return err
		}
	}
	return nil
}

// Dedupe drops repeated errors: a bad task-level default is inherited by
// every endpoint but reported once, at its own path.
func Dedupe(errs field.ErrorList) field.ErrorList {
	seen := map[string]bool{}
	out := errs[:0]
	for _, e := range errs {
		if k := e.Error(); !seen[k] {
			seen[k] = true
			out = append(out, e)
		}
	}
	return out
}

// MergeFailures adds the counts of b to a, kind by kind, keeping a's
// example where both have one.
func MergeFailures(a, b []experiment.RequestFailure) []experiment.RequestFailure {
	for _, f := range b {
		i := slices.IndexFunc(a, func(g experiment.RequestFailure) bool { return g.Kind == f.Kind })
		if i < 0 {
			a = append(a, f)
			continue
		}
		a[i].Count += f.Count
	}
	return a
}

func record(r *experiment.Result, version, prefix string, requests, errs int64, h *stats.Histogram, percentiles []float64) error {
	r.SetMetric(version, prefix+"/request-count", float64(requests), "")
	r.SetMetric(version, prefix+"/error-count", float64(errs), "")
	if requests > 0 {
		r.SetMetric(version, prefix+"/error-rate", float64(errs)/float64(requests), "")
		r.SetSample(version, prefix+"/error-rate", stats.RateSample(errs, requests))
	}
	if h.Count == 0 {
		return nil
	}
	s, err := h.Summarize(percentiles)
	if err != nil {
		return fmt.Errorf("latencies of version %q: %w", version, err)
	}
	r.SetMetric(version, prefix+"/latency-mean", Msec(s.Mean), "msec")
	r.SetSample(version, prefix+"/latency-mean", stats.MeanSample(s.Count, Msec(s.Mean), Msec(s.Stdev)))
	r.SetMetric(version, prefix+"/latency-stddev", Msec(s.Stdev), "msec")
	r.SetMetric(version, prefix+"/latency-min", Msec(s.Min), "msec")
	r.SetMetric(version, prefix+"/latency-max", Msec(s.Max), "msec")
	for _, pc := range percentiles {
		r.SetMetric(version, prefix+"/latency-"+experiment.Percentile(pc), Msec(s.Percentiles[pc]), "msec")
	}
	r.SetHistogram(version, prefix+"/latency", h)
	return nil
}

// Msec converts a duration to milliseconds, rounded to the microsecond.
func Msec(d time.Duration) float64 {
	return math.Round(float64(d)/1e3) / 1e3
}

// Bounds of a load's rate and size, shared by the http and grpc tasks.
const (
	// MinRate is the lowest rate (qps, rps) apart from 0, which means as
	// fast as possible: below one request in ten seconds a load measures
	// too little to be worth a load task, and a rate such as 0.001 is more
	// likely a mistake than a plan.
	MinRate = 0.1
	// MaxRate is the highest rate: well above what one load generator can
	// send (tens of thousands per second on a core), where a paced runner
	// would round its interval to nothing (fortio ends after a couple of
	// requests at 1e308).
	MaxRate = 1e6
	// MaxRequests bounds a number of requests or calls (numRequests,
	// warmupNumRequests, total): at full speed on a fast target, a few
	// hours.
	MaxRequests = 1_000_000_000
	// MaxPlan bounds how long a load may be planned to take: a count of
	// requests at a rate, plus a duration.
	MaxPlan = experiment.MaxDuration
)

// CheckRate checks a rate (qps, rps) at path.
func CheckRate(path *field.Path, rate float64) *field.Error {
	if rate == 0 || rate >= MinRate && rate <= MaxRate {
		return nil
	}
	return field.Invalid(path, rate, fmt.Sprintf("must be 0 (as fast as possible) or from %v to %v per second", MinRate, formatRate(MaxRate)))
}

// CheckCount checks a number of requests or calls at path.
func CheckCount(path *field.Path, n int64) *field.Error {
	if n >= 0 && n <= MaxRequests {
		return nil
	}
	return field.Invalid(path, n, fmt.Sprintf("must be from 0 to %d", int64(MaxRequests)))
}

// Planned is how long n requests at rate (0: as fast as possible, which
// has no planned time) take, plus a duration d.
func Planned(n int64, rate float64, d time.Duration) time.Duration {
	if rate <= 0 || n <= 0 {
		return d
	}
	secs := float64(n) / rate
	if secs >= MaxPlan.Seconds()*2 {
		// Avoid overflowing a Duration; anything this long is refused.
		return 2 * MaxPlan
	}
	return d + time.Duration(secs*float64(time.Second))
}

// CheckPlan refuses a load whose plan (n requests at rate, after a warm-up
// of wn requests at the same rate or of wd) takes longer than MaxPlan.
// path names the rate field; count names the count field in the message.
func CheckPlan(path *field.Path, rate float64, n int64, count string, wn int64, wd, d time.Duration) *field.Error {
	total := Planned(n, rate, d) + Planned(wn, rate, wd)
	if total <= MaxPlan {
		return nil
	}
	return field.Invalid(path, rate, fmt.Sprintf("%s %d at %v per second (with warm-up) would take %s, more than %s: raise the rate, lower %s, or set a duration",
		count, n, rate, total.Round(time.Minute), experiment.FormatDuration(MaxPlan), count))
}

// formatRate writes 1e6 as 1000000, not 1e+06.
func formatRate(r float64) string { return fmt.Sprintf("%.0f", r) }
