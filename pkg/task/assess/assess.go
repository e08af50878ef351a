// Package assess is the `assess` task: it judges each version against SLOs,
// compares candidates with the baseline with stated confidence, and picks
// the best version by reward metrics, with the probability that each
// version is the best.
package assess

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/iter8-tools/iter8/pkg/experiment"
	"github.com/iter8-tools/iter8/pkg/stats"
)

// Name is the task's name in a spec.
const Name = "assess"

// SLO is one objective: a metric's value must stay at or below Upper and at
// or above Lower.
type SLO struct {
	Metric string   `json:"metric"`
	Upper  *float64 `json:"upper,omitempty"`
	Lower  *float64 `json:"lower,omitempty"`
	// Version limits the SLO to one version; empty means every version.
	Version *string `json:"version,omitempty"`
}

// Rewards name metrics to maximise or minimise when picking a winner.
type Rewards struct {
	Max []string `json:"max,omitempty"`
	Min []string `json:"min,omitempty"`
}

// Comparison asks whether candidates differ from the baseline in a metric
// that has per-request evidence: a latency histogram (http/latency), or the
// sample behind a rate (http/error-rate) or a mean (http/latency-mean).
type Comparison struct {
	Metric string `json:"metric"`
	// Candidate limits the comparison to one version; empty means every
	// version but the baseline.
	Candidate *string `json:"candidate,omitempty"`
	// Better is "lower" (the default: latencies, error rates) or "higher".
	Better string `json:"better,omitempty"`
	// MinEffect is the smallest change worth detecting, from which the
	// sample size needed is computed: relative for latencies and means
	// (default 0.1, 10%), absolute for rates (default 0.01).
	MinEffect *float64 `json:"minEffect,omitempty"`
}

type inputs struct {
	SLOs    []SLO    `json:"slos,omitempty"`
	Rewards *Rewards `json:"rewards,omitempty"`
	// Baseline is the version candidates are compared with; the first
	// version when unset.
	Baseline *string `json:"baseline,omitempty"`
	// Confidence of comparisons, in (0, 1); DefaultConfidence when unset.
	Confidence  *float64     `json:"confidence,omitempty"`
	Comparisons []Comparison `json:"comparisons,omitempty"`
	// Sequential is how comparisons judge loops: pooled (evidence of all
	// loops so far, a growing sample), per-loop (each loop on its own, the
	// loops' statistics combined with equal weight) or fixed (each loop at
	// the full level, which is only valid if nobody acts on any loop but
	// the last). Unset: pooled when the experiment loops, fixed otherwise.
	Sequential *string `json:"sequential,omitempty"`
}

// sequentialFixed is the spec's name for fixed-sample verdicts, besides
// stats.Pooled and stats.PerLoop.
const sequentialFixed = "fixed"

// DefaultConfidence is the confidence of comparisons unless the spec sets one.
const DefaultConfidence = 0.95

// Default smallest effects worth detecting, by the kind of evidence: a
// relative change of latency or mean, an absolute change of a rate, and an
// absolute change of the share of requests above a percentile.
const (
	DefaultMinEffectRelative = 0.1
	DefaultMinEffectRate     = 0.01
	DefaultMinEffectShare    = 0.05
)

// bestSeed makes probabilities of being best the same in every run on the
// same data.
const bestSeed = 8

// comparison is one planned candidate-against-baseline test.
type comparison struct {
	metric, candidate string
	kind              experiment.EvidenceKind
	higherIsBetter    bool
	minEffect         float64
}

// reward is one reward metric with its direction.
type reward struct {
	metric    string
	direction experiment.Direction
}

// Task is the decoded assess task.
type Task struct {
	SLOs        []SLO
	rewards     []reward
	baseline    string
	confidence  float64
	comparisons []comparison
	// sequential is stats.Pooled, stats.PerLoop, sequentialFixed, or empty
	// for the default.
	sequential string
}

// Decode validates the task's `with` block against the metrics that earlier
// tasks produce.
func Decode(d *experiment.Decoding) (experiment.Task, field.ErrorList) {
	var in inputs
	if errs := d.Into(&in); len(errs) > 0 {
		return nil, errs
	}
	var errs field.ErrorList
	if len(in.SLOs) == 0 && len(in.Comparisons) == 0 && (in.Rewards == nil || len(in.Rewards.Max)+len(in.Rewards.Min) == 0) {
		errs = append(errs, field.Required(d.Path.Child("slos"), "give slos, comparisons, rewards or a mix"))
	}
	for i, s := range in.SLOs {
		p := d.Path.Child("slos").Index(i)
		if s.Upper == nil && s.Lower == nil {
			errs = append(errs, field.Required(p.Child("upper"), "an SLO needs upper, lower or both"))
		}
		// JSON has no NaN or infinity, but a spec built in Go (or a
		// future decoder) could carry one, and no value meets a NaN limit.
		for _, l := range []struct {
			name string
			v    *float64
		}{{"upper", s.Upper}, {"lower", s.Lower}} {
			if l.v != nil && (math.IsNaN(*l.v) || math.IsInf(*l.v, 0)) {
				errs = append(errs, field.Invalid(p.Child(l.name), *l.v, "must be a finite number"))
			}
		}
		if s.Upper != nil && s.Lower != nil && *s.Lower > *s.Upper {
			errs = append(errs, field.Invalid(p.Child("lower"), *s.Lower, fmt.Sprintf("above upper (%v): no value can meet it", *s.Upper)))
		}
		version := ""
		if s.Version != nil {
			version = *s.Version
			if !slices.Contains(d.Versions, version) {
				errs = append(errs, field.NotSupported(p.Child("version"), version, d.Versions))
				continue
			}
		}
		if fe := checkMetric(d, p.Child("metric"), s.Metric, s.Version); fe != nil {
			errs = append(errs, fe)
		}
	}
	t := &Task{SLOs: in.SLOs}
	errs = append(errs, t.decodeComparisons(d, in)...)
	if in.Rewards != nil {
		// max before min, each in spec order: the first reward decides the winner.
		for _, dir := range []struct {
			name    experiment.Direction
			metrics []string
		}{{experiment.DirectionMax, in.Rewards.Max}, {experiment.DirectionMin, in.Rewards.Min}} {
			for i, m := range dir.metrics {
				if fe := checkMetric(d, d.Path.Child("rewards", string(dir.name)).Index(i), m, nil); fe != nil {
					errs = append(errs, fe)
				}
				t.rewards = append(t.rewards, reward{metric: m, direction: dir.name})
			}
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return t, nil
}

// decodeComparisons checks baseline, confidence and comparisons, and plans
// one test per comparison and candidate.
func (t *Task) decodeComparisons(d *experiment.Decoding, in inputs) field.ErrorList {
	var errs field.ErrorList
	t.baseline, t.confidence = d.Versions[0], DefaultConfidence
	if in.Confidence != nil {
		t.confidence = *in.Confidence
		if !(t.confidence > 0 && t.confidence < 1) {
			errs = append(errs, field.Invalid(d.Path.Child("confidence"), t.confidence, "must be between 0 and 1 (exclusive), such as 0.95"))
		}
	}
	if in.Baseline != nil {
		t.baseline = *in.Baseline
		if !slices.Contains(d.Versions, t.baseline) {
			// Candidates are the other versions: none can be checked.
			return append(errs, field.NotSupported(d.Path.Child("baseline"), t.baseline, d.Versions))
		}
	}
	if in.Sequential != nil {
		t.sequential = *in.Sequential
		modes := []string{string(stats.Pooled), string(stats.PerLoop), sequentialFixed}
		if !slices.Contains(modes, t.sequential) {
			errs = append(errs, field.NotSupported(d.Path.Child("sequential"), t.sequential, modes))
		}
	}
	if len(in.Comparisons) > 0 && len(d.Versions) < 2 {
		errs = append(errs, field.Invalid(d.Path.Child("comparisons"), field.OmitValueType{},
			"comparisons need at least two versions in spec.versions: a baseline and a candidate"))
		return errs
	}
	for i, c := range in.Comparisons {
		p := d.Path.Child("comparisons").Index(i)
		candidates := slices.DeleteFunc(slices.Clone(d.Versions), func(v string) bool { return v == t.baseline })
		if c.Candidate != nil {
			switch {
			case !slices.Contains(d.Versions, *c.Candidate):
				errs = append(errs, field.NotSupported(p.Child("candidate"), *c.Candidate, candidates))
				continue
			case *c.Candidate == t.baseline:
				errs = append(errs, field.Invalid(p.Child("candidate"), *c.Candidate, "is the baseline: compare another version with it"))
				continue
			}
			candidates = []string{*c.Candidate}
		}
		higher := false
		switch c.Better {
		case "", "lower":
		case "higher":
			higher = true
		default:
			errs = append(errs, field.NotSupported(p.Child("better"), c.Better, []string{"lower", "higher"}))
		}
		kind, fe := evidenceOf(d, p.Child("metric"), c.Metric, append([]string{t.baseline}, candidates...))
		if fe != nil {
			errs = append(errs, fe)
			continue
		}
		minEffect := DefaultMinEffectRelative
		switch kind {
		case experiment.EvidenceRate:
			minEffect = DefaultMinEffectRate
		case experiment.EvidencePercentile:
			minEffect = DefaultMinEffectShare
		}
		if c.MinEffect != nil {
			minEffect = *c.MinEffect
			absolute := kind == experiment.EvidenceRate || kind == experiment.EvidencePercentile
			if !(minEffect > 0) || (absolute && minEffect >= 1) {
				errs = append(errs, field.Invalid(p.Child("minEffect"), minEffect, "must be above 0 (and below 1 for a rate or a percentile's share)"))
			}
		}
		for _, cand := range candidates {
			t.comparisons = append(t.comparisons, comparison{metric: c.Metric, candidate: cand, kind: kind, higherIsBetter: higher, minEffect: minEffect})
		}
	}
	return errs
}

// evidenceOf finds what stands behind metric for every one of versions. An
// incomplete catalog (an earlier task did not decode, so the spec will not
// run) proves nothing and gives no error of its own.
func evidenceOf(d *experiment.Decoding, p *field.Path, metric string, versions []string) (experiment.EvidenceKind, *field.Error) {
	if metric == "" {
		return "", field.Required(p, "a metric with per-request evidence, such as http/latency or http/error-rate")
	}
	if d.Metrics.Incomplete() {
		return "", nil
	}
	var kind experiment.EvidenceKind
	for _, v := range versions {
		k, ok := d.Metrics.Evidence(v, metric)
		if !ok {
			return "", field.Invalid(p, metric, noEvidence(d, metric, v))
		}
		kind = k
	}
	return kind, nil
}

func noEvidence(d *experiment.Decoding, metric, version string) string {
	known := d.Metrics.KnownEvidence()
	list := "no earlier task produces any"
	if len(known) > 0 {
		list = "these do: " + strings.Join(known, ", ")
	}
	switch {
	case d.Metrics.Has(version, metric):
		return fmt.Sprintf("is a single value for version %q; a comparison needs per-request evidence (a latency histogram, or the sample behind a rate or a mean): %s", version, list)
	case len(d.Metrics.Producers(metric)) > 0:
		return fmt.Sprintf("no earlier task produces it for version %q; %s", version, list)
	}
	return "no earlier task produces it with per-request evidence; " + list
}

func checkMetric(d *experiment.Decoding, p *field.Path, metric string, version *string) *field.Error {
	if metric == "" {
		return field.Required(p, "a metric name such as http/latency-p99")
	}
	if d.Metrics.Incomplete() {
		return nil
	}
	if version != nil {
		if d.Metrics.Has(*version, metric) {
			return nil
		}
		return field.Invalid(p, metric, fmt.Sprintf("no earlier task produces it for version %q; %s", *version, known(d)))
	}
	if len(d.Metrics.Producers(metric)) > 0 {
		return nil
	}
	return field.Invalid(p, metric, "no earlier task produces it; "+known(d))
}

func known(d *experiment.Decoding) string {
	k := d.Metrics.Known()
	if len(k) == 0 {
		return "no earlier task produces metrics"
	}
	return "known metrics: " + strings.Join(k, ", ")
}

// Run records a verdict per SLO and version, the best version per reward, and
// the winner. It replaces verdicts of an earlier assess task.
func (t *Task) Run(_ context.Context, env *experiment.Env) error {
	r := env.Result
	r.SLOs = nil
	for _, s := range t.SLOs {
		versions := env.Versions
		if s.Version != nil {
			versions = []string{*s.Version}
		}
		for _, v := range versions {
			r.SLOs = append(r.SLOs, verdict(r, s, v))
		}
	}
	r.Rewards, r.Winner = nil, ""
	for _, rw := range t.rewards {
		r.Rewards = append(r.Rewards, experiment.RewardResult{
			Metric: rw.metric, Direction: rw.direction, Best: best(r, env.Versions, rw, nil),
		})
	}
	for i, rw := range t.rewards {
		probabilities(r, env.Versions, rw, &r.Rewards[i])
	}
	if len(t.rewards) > 0 {
		r.Winner = best(r, env.Versions, t.rewards[0], func(v string) bool { return meetsSLOs(r, v) })
	}
	earlier := r.Comparisons
	r.Comparisons = nil
	pooling := t.pooling(r)
	var looks []look
	for i, c := range t.comparisons {
		l := t.compare(r, c)
		if pooling != "" {
			t.addLook(&l, i, c, pooling, earlier)
		}
		looks = append(looks, l)
	}
	t.judge(looks)
	for _, l := range looks {
		r.Comparisons = append(r.Comparisons, l.out)
	}
	return nil
}

// pooling is how this run's comparisons pool loops; empty for fixed-sample
// verdicts.
func (t *Task) pooling(r *experiment.Result) stats.Pooling {
	switch {
	case t.sequential == sequentialFixed:
		return ""
	case t.sequential != "":
		return stats.Pooling(t.sequential)
	case r.Loops > 1:
		return stats.Pooled
	}
	return ""
}

// probabilities adds to out the probability that each version is the best
// by the reward, when every version has a sample of its metric.
func probabilities(r *experiment.Result, versions []string, rw reward, out *experiment.RewardResult) {
	if len(versions) < 2 {
		return
	}
	samples := make([]stats.Sample, len(versions))
	for i, v := range versions {
		s, ok := r.Sample(v, rw.metric)
		if !ok {
			out.Reason = fmt.Sprintf("no sample of %s for version %s: probabilities need a metric with per-request samples, such as http/error-rate or http/latency-mean", rw.metric, experiment.VersionName(v))
			return
		}
		samples[i] = s
	}
	b, err := stats.Best(samples, rw.direction == experiment.DirectionMax, stats.BestOptions{Seed: bestSeed})
	if err != nil {
		out.Reason = err.Error()
		return
	}
	out.ProbabilityBest, out.ExpectedLoss = map[string]float64{}, map[string]float64{}
	for i, v := range versions {
		out.ProbabilityBest[v], out.ExpectedLoss[v] = b.Probability[i], b.ExpectedLoss[i]
	}
}

// look is one comparison as this run sees it: the result's entry, and the
// statistics behind it when it could be made.
type look struct {
	out   experiment.Comparison
	stats *stats.Comparison
	// scale is the minimum effect on the test's own scale: what a
	// sequential test is tuned to find; data names the data compared.
	scale float64
	data  string
	// p is the p-value the verdict rests on (before Holm), or NaN when the
	// comparison could not be made and has no evidence from earlier loops.
	p float64
	// cumulative: the data hold every earlier loop's (measurement).
	cumulative bool
}

// compare runs one planned comparison on the result.
func (t *Task) compare(r *experiment.Result, c comparison) look {
	l := look{p: math.NaN(), out: experiment.Comparison{
		Metric: c.metric, Baseline: t.baseline, Candidate: c.candidate,
		Confidence: t.confidence, Verdict: experiment.VerdictInconclusive,
	}}
	m, err := t.measure(r, c)
	if err != nil {
		l.out.Reason = err.Error()
		return l
	}
	s := m.stats
	l.stats, l.scale, l.data, l.p, l.cumulative = &s, m.scale, m.data, s.PValue, m.cumulative
	o := &l.out
	o.Test, o.Relative = s.Test, s.Relative
	o.Effect, o.Low, o.High = finite(s.Effect), finite(s.Low), finite(s.High)
	o.PValue, o.BaselineCount, o.CandidateCount = ptr(s.PValue), s.BaselineCount, s.CandidateCount
	o.Needed, o.Blocks, o.Threshold = s.Needed, s.Blocks, s.Threshold
	if s.DesignEffect > 1 {
		o.DesignEffect = s.DesignEffect
	}
	return l
}

// measurement is a comparison's statistics with what a sequential test
// needs besides: the minimum effect on the test's own scale, and a name for
// the data compared, so that a loop that measured nothing new (its load was
// skipped, or a second assess task) adds no evidence.
type measurement struct {
	stats stats.Comparison
	scale float64
	data  string
	// cumulative: the data hold every earlier loop's (A/B/n summaries),
	// so a look replaces the sequential evidence instead of adding to it.
	cumulative bool
}

// measure compares the candidate with the baseline on the evidence behind
// the metric. A load's rates and means are compared through the time blocks
// of its latency histogram when both versions have them.
func (t *Task) measure(r *experiment.Result, c comparison) (measurement, error) {
	histograms := func(metric string) (*stats.Histogram, *stats.Histogram, error) {
		hb, hc := r.Histogram(t.baseline, metric), r.Histogram(c.candidate, metric)
		if hb == nil || hc == nil {
			return nil, nil, missing(c.metric, t.baseline, hb != nil, c.candidate)
		}
		return hb, hc, nil
	}
	switch c.kind {
	case experiment.EvidenceHistogram:
		hb, hc, err := histograms(c.metric)
		if err != nil {
			return measurement{}, err
		}
		s, err := stats.CompareLatencies(hb, hc, t.confidence, c.minEffect)
		return measurement{s, math.Log1p(c.minEffect), loads(hb, hc), false}, err
	case experiment.EvidencePercentile:
		prefix, pc, ok := splitPercentile(c.metric)
		if !ok {
			return measurement{}, fmt.Errorf("%s: not a latency percentile such as http/latency-p90", c.metric)
		}
		hb, hc, err := histograms(prefix + "/latency")
		if err != nil {
			return measurement{}, err
		}
		s, err := stats.ComparePercentiles(hb, hc, pc, t.confidence, c.minEffect)
		return measurement{s, c.minEffect, loads(hb, hc), false}, err
	case experiment.EvidenceRate, experiment.EvidenceMean:
		if prefix, ok := loadPrefix(c.metric); ok {
			hb, hc := r.Histogram(t.baseline, prefix+"/latency"), r.Histogram(c.candidate, prefix+"/latency")
			if hb != nil && hc != nil && hb.Series != nil && hc.Series != nil {
				if c.kind == experiment.EvidenceRate {
					s, err := stats.CompareErrorRates(hb, hc, t.confidence, c.minEffect)
					return measurement{s, c.minEffect, loads(hb, hc), false}, err
				}
				s, err := stats.CompareLatencyMeans(hb, hc, t.confidence, c.minEffect)
				return measurement{s, c.minEffect * math.Abs(s.Baseline), loads(hb, hc), false}, err
			}
		}
		sb, okB := r.Sample(t.baseline, c.metric)
		sc, okC := r.Sample(c.candidate, c.metric)
		if !okB || !okC {
			return measurement{}, missing(c.metric, t.baseline, okB, c.candidate)
		}
		// Samples carry no start: a loop's samples are that loop's data,
		// or all data so far when cumulative.
		data, cumulative := fmt.Sprint("loop ", r.Loop), sb.Cumulative && sc.Cumulative
		switch {
		case c.kind == experiment.EvidenceRate:
			s, err := stats.CompareRates(sb, sc, t.confidence, c.minEffect)
			return measurement{s, c.minEffect, data, cumulative}, err
		case cumulative:
			// Cumulative means (revenue per user) grow from loop to loop;
			// their ratio does not.
			s, err := stats.CompareMeanRatio(sb, sc, t.confidence, c.minEffect)
			return measurement{s, math.Log1p(c.minEffect), data, true}, err
		}
		s, err := stats.CompareMeans(sb, sc, t.confidence, c.minEffect)
		return measurement{s, c.minEffect * math.Abs(sb.Mean), data, false}, err
	}
	return measurement{}, fmt.Errorf("no evidence of %s for version %s: no task measured it", c.metric, experiment.VersionName(t.baseline))
}

// loads names the data of two latency histograms by their loads' starts.
func loads(hb, hc *stats.Histogram) string {
	if hb.Series == nil || hc.Series == nil {
		return ""
	}
	return hb.Series.Start.Format(time.RFC3339Nano) + " " + hc.Series.Start.Format(time.RFC3339Nano)
}

// loadPrefix returns the load prefix (http, http-<endpoint>) of a load's
// error rate or mean latency.
func loadPrefix(metric string) (string, bool) {
	for _, suffix := range []string{"/error-rate", "/latency-mean"} {
		if p, ok := strings.CutSuffix(metric, suffix); ok {
			return p, true
		}
	}
	return "", false
}

// splitPercentile splits http/latency-p90 into http and 90.
func splitPercentile(metric string) (string, float64, bool) {
	prefix, pc, ok := strings.Cut(metric, "/latency-p")
	if !ok {
		return "", 0, false
	}
	v, err := strconv.ParseFloat(pc, 64)
	return prefix, v, err == nil && v > 0 && v < 100
}

// addLook adds this run's comparison to the sequential evidence of the
// same comparison in the run's earlier loops. A comparison that could not
// be made in this loop keeps its earlier evidence.
func (t *Task) addLook(l *look, at int, c comparison, pooling stats.Pooling, earlier []experiment.Comparison) {
	ev := stats.Evidence{Pooling: pooling}
	same := func(e *experiment.Comparison) bool {
		return e.Metric == c.metric && e.Candidate == c.candidate && e.Baseline == t.baseline &&
			e.Confidence == t.confidence && e.Sequential != nil && e.Sequential.Pooling == pooling
	}
	// The entry at the same place in the plan, else the last that matches.
	var prev *experiment.Comparison
	for i := range earlier {
		if same(&earlier[i]) {
			prev = &earlier[i]
		}
	}
	if at < len(earlier) && same(&earlier[at]) {
		prev = &earlier[at]
	}
	if prev != nil {
		ev = *prev.Sequential
	}
	if l.stats == nil {
		// Nothing new this loop: the evidence so far stands, with the
		// estimate it gave.
		if prev != nil && prev.Effect != nil {
			reason := l.out.Reason
			l.out = *prev
			l.out.Reason, l.p = reason, ev.PValue
		}
		return
	}
	add := ev.Add
	if l.cumulative {
		add = ev.Replace
	}
	next, err := add(*l.stats, t.confidence, l.scale, l.data)
	if err != nil {
		l.out.Reason, l.p = err.Error(), math.NaN()
		return
	}
	l.out.Sequential, l.p = &next.Evidence, next.Evidence.PValue
	l.out.PValue = ptr(next.Evidence.PValue)
	effect, low, high := next.Estimate, next.Low, next.High
	if l.stats.Relative {
		effect, low, high = math.Expm1(effect), math.Expm1(low), math.Expm1(high)
	}
	l.out.Effect, l.out.Low, l.out.High = finite(effect), finite(low), finite(high)
}

// finite points at f, or is nil when f is not finite (an interval too wide
// for float64): JSON has no infinities, and a result must always encode.
func finite(f float64) *float64 {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil
	}
	return &f
}

// judge gives every comparison its verdict, correcting the p-values of all
// comparisons planned together with Holm's method. A comparison that could
// not be made counts in the family with a p-value of 1, so that a failed
// one does not weaken the correction of the others.
func (t *Task) judge(looks []look) {
	ps := make([]float64, len(looks))
	for i, l := range looks {
		ps[i] = l.p
		if math.IsNaN(l.p) {
			ps[i] = 1
		}
	}
	adjusted := ps
	if len(ps) > 1 {
		adjusted = stats.Holm(ps)
	}
	for i, l := range looks {
		if math.IsNaN(l.p) {
			continue
		}
		o := &looks[i].out
		if len(ps) > 1 {
			o.AdjustedPValue, o.Family = ptr(adjusted[i]), len(ps)
		}
		t.verdict(o, t.comparisons[i], l.p, adjusted[i])
	}
}

// verdict sets a made comparison's verdict from its p-value p (adjusted
// for the family) and explains an inconclusive one.
func (t *Task) verdict(o *experiment.Comparison, c comparison, p, adjusted float64) {
	alpha := 1 - t.confidence
	significant := adjusted < alpha && o.Effect != nil
	higher := o.Effect != nil && *o.Effect > 0
	switch {
	case significant && higher == c.higherIsBetter:
		o.Verdict = experiment.VerdictBetter
	case significant:
		o.Verdict = experiment.VerdictWorse
	case o.Reason != "":
	case p < alpha:
		o.Reason = fmt.Sprintf("p-value %s alone, but not below %s after Holm's correction over %d comparisons", strconv.FormatFloat(p, 'g', 2, 64), strconv.FormatFloat(alpha, 'g', 3, 64), o.Family)
	case o.Sequential != nil:
		o.Reason = fmt.Sprintf("no verdict yet after %d loops (%s sequential test at %s confidence)", o.Sequential.Looks, o.Sequential.Pooling, percent(t.confidence))
	case o.Needed == 0:
		o.Reason = fmt.Sprintf("no difference at %s confidence; too little variation to plan how many requests would detect a change of %s", percent(t.confidence), effect(c))
	case o.Needed > min(o.BaselineCount, o.CandidateCount):
		o.Reason = fmt.Sprintf("need %d more requests per version to detect a change of %s", o.Needed-min(o.BaselineCount, o.CandidateCount), effect(c))
	default:
		o.Reason = fmt.Sprintf("no difference at %s confidence; a change of %s would have been found 80%% of the time", percent(t.confidence), effect(c))
	}
}

func missing(metric, baseline string, hasBaseline bool, candidate string) error {
	v := candidate
	if !hasBaseline {
		v = baseline
	}
	return fmt.Errorf("no evidence of %s for version %s: its task failed, was skipped or measured nothing", metric, experiment.VersionName(v))
}

func effect(c comparison) string {
	if c.kind == experiment.EvidenceRate || c.kind == experiment.EvidencePercentile {
		return strconv.FormatFloat(c.minEffect, 'g', 3, 64)
	}
	return percent(c.minEffect)
}

func percent(f float64) string { return strconv.FormatFloat(100*f, 'g', 3, 64) + "%" }

func ptr(f float64) *float64 { return &f }

func verdict(r *experiment.Result, s SLO, version string) experiment.SLOVerdict {
	out := experiment.SLOVerdict{Metric: s.Metric, Version: version, Upper: s.Upper, Lower: s.Lower}
	val, ok := r.Value(version, s.Metric)
	if !ok {
		out.Reason = "no value: no task measured it for this version"
		return out
	}
	out.Value = &val
	out.Satisfied = (s.Upper == nil || val <= *s.Upper) && (s.Lower == nil || val >= *s.Lower)
	return out
}

func meetsSLOs(r *experiment.Result, version string) bool {
	for _, v := range r.SLOs {
		if v.Version == version && !v.Satisfied {
			return false
		}
	}
	return true
}

// best returns the version with the best value of the reward metric among
// those that pass keep (nil keeps all); ties go to the earlier version.
func best(r *experiment.Result, versions []string, rw reward, keep func(string) bool) string {
	winner, found := "", false
	var bestVal float64
	for _, v := range versions {
		if keep != nil && !keep(v) {
			continue
		}
		val, ok := r.Value(v, rw.metric)
		if !ok {
			continue
		}
		if !found || (rw.direction == experiment.DirectionMax && val > bestVal) || (rw.direction == experiment.DirectionMin && val < bestVal) {
			winner, bestVal, found = v, val, true
		}
	}
	return winner
}
