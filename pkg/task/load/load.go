package load

import (
	"fmt"
	"math"
	"slices"
	"time"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/iter8-tools/iter8/pkg/experiment"
	"github.com/iter8-tools/iter8/pkg/stats"
)

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

// Declare records in the catalog the metrics that a load on endpoints
// produces: <family>/... per version, <family>-<name>/... per named
// endpoint, with the evidence behind them: the latency histogram (also
// behind the percentiles), and the samples of error-rate and latency-mean.
func Declare[E endpoint](c *experiment.Catalog, family string, endpoints []E, percentiles []float64) {
	declare := func(version, prefix string) {
		for _, m := range MetricNames(prefix, percentiles) {
			c.Add(version, m)
		}
		c.AddEvidence(version, prefix+"/latency", experiment.EvidenceHistogram)
		c.AddEvidence(version, prefix+"/error-rate", experiment.EvidenceRate)
		c.AddEvidence(version, prefix+"/latency-mean", experiment.EvidenceMean)
		for _, pc := range percentiles {
			c.AddEvidence(version, prefix+"/latency-"+experiment.Percentile(pc), experiment.EvidencePercentile)
		}
	}
	for _, e := range endpoints {
		t := e.target()
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
