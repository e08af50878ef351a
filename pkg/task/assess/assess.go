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
}

// DefaultConfidence is the confidence of comparisons unless the spec sets one.
const DefaultConfidence = 0.95

// Default smallest effects worth detecting, by the kind of evidence.
const (
	DefaultMinEffectRelative = 0.1
	DefaultMinEffectRate     = 0.01
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
		if kind == experiment.EvidenceRate {
			minEffect = DefaultMinEffectRate
		}
		if c.MinEffect != nil {
			minEffect = *c.MinEffect
			if !(minEffect > 0) || (kind == experiment.EvidenceRate && minEffect >= 1) {
				errs = append(errs, field.Invalid(p.Child("minEffect"), minEffect, "must be above 0 (and below 1 for a rate)"))
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
	r.Comparisons = nil
	for _, c := range t.comparisons {
		r.Comparisons = append(r.Comparisons, t.compare(r, c))
	}
	return nil
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

// compare runs one planned comparison on the result.
func (t *Task) compare(r *experiment.Result, c comparison) experiment.Comparison {
	out := experiment.Comparison{Metric: c.metric, Baseline: t.baseline, Candidate: c.candidate, Confidence: t.confidence, Verdict: experiment.VerdictInconclusive}
	kind := c.kind
	var significant, higher bool
	var needed int64
	switch kind {
	case experiment.EvidenceHistogram:
		hb, hc := r.Histogram(t.baseline, c.metric), r.Histogram(c.candidate, c.metric)
		if hb == nil || hc == nil {
			out.Reason = missing(c.metric, t.baseline, hb != nil, c.candidate, hc != nil)
			return out
		}
		s, err := stats.CompareLatencies(hb, hc, t.confidence, c.minEffect)
		if err != nil {
			out.Reason = err.Error()
			return out
		}
		out.Test, out.Relative = stats.MannWhitney, true
		out.Effect, out.Low, out.High = ptr(s.Ratio-1), ptr(s.Low-1), ptr(s.High-1)
		out.PValue, out.BaselineCount, out.CandidateCount = ptr(s.PValue), s.BaselineCount, s.CandidateCount
		significant, higher, needed = s.Significant, s.Ratio > 1, s.Needed
		if s.Inflation > 1 {
			out.Inflation = s.Inflation
		}
	case experiment.EvidenceRate, experiment.EvidenceMean:
		sb, okB := r.Sample(t.baseline, c.metric)
		sc, okC := r.Sample(c.candidate, c.metric)
		if !okB || !okC {
			out.Reason = missing(c.metric, t.baseline, okB, c.candidate, okC)
			return out
		}
		compare, test := stats.CompareRates, stats.TwoProportion
		if kind == experiment.EvidenceMean {
			compare, test = stats.CompareMeans, stats.Welch
		}
		d, err := compare(sb, sc, t.confidence, c.minEffect)
		if err != nil {
			out.Reason = err.Error()
			return out
		}
		out.Test = test
		out.Effect, out.Low, out.High = ptr(d.Difference), ptr(d.Low), ptr(d.High)
		out.PValue, out.BaselineCount, out.CandidateCount = ptr(d.PValue), sb.N(), sc.N()
		significant, higher, needed = d.Significant, d.Difference > 0, d.Needed
	default:
		out.Reason = fmt.Sprintf("no evidence of %s for version %s: no task measured it", c.metric, experiment.VersionName(t.baseline))
		return out
	}
	out.Needed = needed
	switch {
	case significant && higher == c.higherIsBetter:
		out.Verdict = experiment.VerdictBetter
	case significant:
		out.Verdict = experiment.VerdictWorse
	case needed > min(out.BaselineCount, out.CandidateCount):
		out.Reason = fmt.Sprintf("need %d more requests per version to detect a change of %s", needed-min(out.BaselineCount, out.CandidateCount), effect(c))
	default:
		out.Reason = fmt.Sprintf("no difference at %s confidence; a change of %s would have been found 80%% of the time", percent(t.confidence), effect(c))
	}
	return out
}

func missing(metric, baseline string, hasBaseline bool, candidate string, hasCandidate bool) string {
	v := candidate
	if !hasBaseline {
		v = baseline
	}
	return fmt.Sprintf("no evidence of %s for version %s: its task failed, was skipped or measured nothing", metric, experiment.VersionName(v))
}

func effect(c comparison) string {
	if c.kind == experiment.EvidenceRate {
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
